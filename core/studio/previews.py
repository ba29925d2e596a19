"""Previews on the review channels: posting the previews drafts owe, and editing them to show a
draft's outcome once it is settled, however it was settled (a button, `/opus studio approve|veto`
on any platform, the loop publishing what an earlier host approved): at once by the host that
settled it, else (no desk for that platform there, a refused edit, a restart) by the loop.

Posting is claimed as a lease (core.store.studio_previews): a host that stops mid-post loses no
preview, since another host, or the same one restarted, claims it again once the lease lapses,
and the adapter, told the post is uncertain, looks for the earlier post before posting again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from core.config import Settings
from core.ports import ReviewDesk
from core.store.studio_previews import PreviewClaim, PreviewView
from core.store.studio_records import DraftView
from core.store.studio_repo import StudioRepo
from core.studio import wording
from core.studio.preview import DraftPreview

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
CLAIMS_PER_PASS = 10


class Previews:
    def __init__(self, settings: Settings, repo: StudioRepo, clock: Clock) -> None:
        self._settings = settings
        self._repo = repo
        self._clock = clock
        self._desks: dict[str, ReviewDesk] = {}

    def register(self, platform: str, desk: ReviewDesk) -> None:
        self._desks[platform] = desk

    async def post_owed(self) -> int:
        """Post every preview owed to a platform this host has a desk for; the number posted."""
        posted = 0
        for platform, desk in list(self._desks.items()):
            section = self._settings.studio.reviewing(platform)
            if section is None or not section.review_channel:
                continue
            for claim in await self._repo.previews.claim(platform, CLAIMS_PER_PASS, self._clock()):
                posted += await self._post(desk, claim, section.review_channel)
        return posted

    async def _post(self, desk: ReviewDesk, claim: PreviewClaim, channel_id: str) -> int:
        draft = await self._repo.get(claim.draft_id)
        if draft is None:
            return 0
        try:
            message_id = await desk.post_draft(self.preview(draft, channel_id, uncertain=claim.uncertain))
        except Exception as error:  # the platform's to explain; the draft stays reviewable
            again = await self._repo.previews.failed(draft.id, claim.platform, repr(error), self._clock())
            log.exception(
                "studio: could not post draft #%d to %s; %s",
                draft.id,
                claim.platform,
                "trying again later" if again else "giving up (see `ember studio list`)",
            )
            return 0
        await self._repo.previews.posted(draft.id, claim.platform, channel_id, message_id, self._clock())
        return 1

    def preview(self, draft: DraftView, channel_id: str, *, uncertain: bool = False) -> DraftPreview:
        return DraftPreview(
            draft_id=draft.id,
            channel_id=channel_id,
            header=wording.preview_header(draft, self._settings.studio.approvals),
            title=wording.title_of(draft.text),
            text=draft.text,
            approve_label=wording.APPROVE_BUTTON,
            veto_label=wording.VETO_BUTTON,
            uncertain=uncertain,
        )

    async def show_outcomes(self, draft_id: int | None = None) -> int:
        """Edit every posted preview of a settled draft (of `draft_id` alone, when given) to say
        how it was settled, without its buttons, on the platforms this host has a desk for;
        the number edited. An edit the platform refuses is tried again later (the decision
        stands either way)."""
        shown = 0
        for platform, desk in list(self._desks.items()):
            for preview in await self._repo.previews.claim_outcomes(
                platform, CLAIMS_PER_PASS, self._clock(), draft_id
            ):
                shown += await self._show(desk, preview)
        return shown

    async def _show(self, desk: ReviewDesk, preview: PreviewView) -> int:
        draft = await self._repo.get(preview.draft_id)
        if draft is None:
            return 0
        try:
            await desk.show_outcome(preview.channel_id, preview.message_id, wording.settled_summary(draft))
        except Exception as error:  # the platform's to explain
            again = await self._repo.previews.outcome_failed(
                draft.id, preview.platform, repr(error), self._clock()
            )
            log.exception(
                "studio: could not show draft #%d's outcome on %s; %s",
                draft.id,
                preview.platform,
                "trying again later" if again else "giving up",
            )
            return 0
        await self._repo.previews.outcome_shown(draft.id, preview.platform, self._clock())
        return 1
