"""What a platform adapter sees of essay announcements: the values it renders and the one
Protocol it implements.

- `Announcement`: one essay, platform-neutral plain text.
- `Delivery`: one announcement for one channel, with its idempotency key and its pacing.
- `Announcer`: the adapter's part (post, open a discussion thread, tell the moderators).
- `DeliveryReport`: what one round of delivering did.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from core.essays import wording
from core.store.essay_records import EssayRecord

T = TypeVar("T")
KEY_PREFIX = "ember-essay-"  # + the row id: at most 25 characters, Discord's nonce limit


@dataclass(frozen=True)
class Announcement:
    """One essay, platform-neutral, for an adapter to render (Discord embed, Slack Block Kit).

    Every text field is plain text exactly as the newsletter wrote it: no HTML, no Markdown,
    no escaping of any kind. It may contain "@everyone", "<!channel>", "<@123>", "*", "_", "<"
    or "&". Adapters must escape it for their markup and allow no mention in it: the only
    thing an announcement may ping is `Delivery.role_id`.
    """

    essay_id: int
    title: str  # one line, at most 256 characters
    link: str  # an absolute http(s) URL, or ""
    summary: str  # one paragraph, at most 300 characters
    author: str
    published_at: datetime | None  # aware UTC
    image_url: str  # the cover image: an absolute http(s) URL, or ""
    # The whole essay as plain text, kept for discussion threads; not meant to be posted.
    full_text: str = field(repr=False)
    # A line to show with it, plain text ("" for none): the studio's disclaimer on essays the
    # model wrote in ember (`[studio] disclaimer`).
    note: str = ""


class Turns(Protocol):
    """A platform's pace for deliveries: its request scheduler's (core.budget.BudgetPacer)."""

    async def send(self, channel_id: str, call: Callable[[], Awaitable[T]]) -> T: ...


class Unpaced:
    """Where nothing paces: every request goes at once."""

    async def send(self, channel_id: str, call: Callable[[], Awaitable[T]]) -> T:
        return await call()


@dataclass(frozen=True)
class Delivery:
    """One announcement for one channel, as handed to `Announcer.announce`."""

    id: int
    # The same on every attempt at this delivery, across restarts and hosts; at most 25 characters.
    idempotency_key: str
    platform: str
    workspace_id: str
    channel_id: str
    role_id: str  # ping this role and nothing else; "" pings nobody
    attempt: int  # 1 on the first try
    # An earlier attempt may have posted (ember stopped, or the call failed without an answer):
    # look for `idempotency_key` before posting again.
    uncertain: bool
    announcement: Announcement
    # The platform's pace, shared with every other delivery of the platform (and, where the
    # platform has a request scheduler, with everything else ember sends there).
    turns: Turns = field(default_factory=Unpaced, repr=False, compare=False)

    async def send(self, call: Callable[[], Awaitable[T]]) -> T:
        """Make one platform request for this delivery when its turn comes. With a request
        scheduler, the request is made inside it: the budget counts it once, from its answer."""
        return await self.turns.send(self.channel_id, call)


@dataclass
class DeliveryReport:
    """What one `deliver_pending` did, for the CLI, the log and tests."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    disabled: int = 0
    rate_limited: int = 0
    # Due rows left for platforms without a registered adapter in this process.
    waiting: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        return wording.delivery_report(self)


def delivery_key(delivery_id: int) -> str:
    return f"{KEY_PREFIX}{delivery_id}"


def announcement_of(essay: EssayRecord, note: str = "") -> Announcement:
    return Announcement(
        essay_id=essay.id,
        title=essay.title,
        link=essay.link,
        summary=essay.summary,
        author=essay.author,
        published_at=essay.published_at,
        image_url=essay.image_url,
        full_text=essay.full_text,
        note=note,
    )
