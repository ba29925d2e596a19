"""Publication: an approved draft becomes an essay in the store, in ember's own feed and pages,
and is owed to every subscribed channel through the essays' outbox, once.

Before anything is published the draft's text is hashed again and compared with the hash taken
when the model answered: what is published is byte for byte what the model wrote, or nothing
is: the draft is withheld (a terminal state, audited and logged once; `ember studio list`
shows it with why) and DraftTampered is raised. The essay row carries the feed entry's id as its
guid and its page's path as its post path, so a community that also lists ember's own feed in
`[essays] feeds` knows the item already and does not announce it twice.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from datetime import datetime

from core.config import Settings
from core.errors import EmberError
from core.essays.feed_parsing import post_path
from core.essays.plain_text import summarize
from core.store.essay_records import NewEssay
from core.store.studio_records import DraftState, DraftView
from core.store.studio_repo import StudioRepo
from core.studio.drafting import text_hash
from core.studio.wording import title_of

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
FEED_PATH = "/essays/feed.xml"
SLUG_WORDS = 60


class DraftTampered(EmberError):
    """A draft's text no longer matches the hash taken when the model wrote it."""


def base_url(settings: Settings) -> str:
    """Where ember's pages are reached: `[studio] public_url`, else the `[server]` address."""
    public = settings.studio.public_url.rstrip("/")
    return public or f"http://{settings.server.host}:{settings.server.health_port}"


def essay_path(slug: str) -> str:
    return f"/essays/{slug}"


def feed_family(settings: Settings) -> str:
    """The newsletter name the essay poller would give ember's own feed (its title)."""
    return settings.studio.title.casefold()[:200]


def entry_id(uid: str) -> str:
    return f"urn:uuid:{uid}"


def slug_for(draft: DraftView) -> str:
    """`<id>-<title words>`: unique by the id, readable by the title."""
    ascii_title = unicodedata.normalize("NFKD", title_of(draft.text)).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:SLUG_WORDS].strip("-")
    return f"{draft.id}-{words}" if words else str(draft.id)


class Publisher:
    def __init__(
        self, settings: Settings, repo: StudioRepo, clock: Clock, delivered: Callable[[], None]
    ) -> None:
        self._settings = settings
        self._repo = repo
        self._clock = clock
        self._delivered = delivered  # wakes the essays' outbox

    async def publish(self, draft_id: int) -> bool:
        """Publish an approved draft; False when it is not one (or another host just did)."""
        draft = await self._repo.get(draft_id)
        if draft is None or draft.state is not DraftState.APPROVED:
            return False
        found = text_hash(draft.text)
        if found != draft.sha256:
            # Withheld for good, once: this host (or another) logs it once, never each pass.
            if await self._repo.withhold(draft.id, draft.sha256, found, self._clock()):
                log.error(
                    "studio: draft #%d does not match its hash %s (now %s); withheld, NOT published",
                    draft.id,
                    draft.sha256,
                    found,
                )
            raise DraftTampered(f"draft #{draft.id} changed since the model wrote it")
        slug = slug_for(draft)
        queued = await self._repo.publish(
            draft.id, draft.sha256, slug, self._essay(draft, slug), self._clock()
        )
        if queued is None:
            return False
        log.info(
            "studio: draft #%d published at %s; owed to %d channel(s)", draft.id, essay_path(slug), queued
        )
        self._delivered()
        return True

    async def publish_approved(self) -> int:
        """Publish every approved draft still waiting (a host that stopped between the two)."""
        published = 0
        for draft_id in await self._repo.approved_unpublished():
            try:
                published += await self.publish(draft_id)
            except DraftTampered:
                continue  # withheld and logged; the operator decides
        return published

    def _essay(self, draft: DraftView, slug: str) -> NewEssay:
        link = base_url(self._settings) + essay_path(slug)
        model = self._settings.models.get(draft.alias)
        return NewEssay(
            feed_url=base_url(self._settings) + FEED_PATH,
            family=feed_family(self._settings),
            guid=entry_id(draft.uid),
            post_path=post_path(link),
            title=title_of(draft.text),
            link=link,
            summary=summarize(draft.text),
            author=(model.display_name if model else "") or draft.alias,
            published_at=self._clock(),
            image_url="",
            full_text=draft.text,
            announced=True,
        )
