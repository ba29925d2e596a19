"""The essay studio, composed: the model writes, reviewers decide, ember publishes.

    schedule slot / `ember studio draft` ──▶ drafting (the alias's backends) ──▶ studio_drafts
        └──▶ previews owed to each review channel ──▶ ReviewDesk (the platform adapter)
    Approve / Veto (buttons, `/opus studio …`) ──▶ review (reviewers only; first to settle wins)
        └──▶ approved by quorum ──▶ publication (hash re-checked) ──▶ essays + outbox, feed, pages

`StudioService` is what the rest of ember holds (core.runtime, the facade, the CLI); `run` is
the loop `ember run` starts: it drafts the due slot (under a lease, and the slot's unique key,
so one host drafts it), posts owed previews, and publishes approved drafts left waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from core.chat.routing import Router
from core.config import Settings
from core.events import User, utcnow
from core.ports import ReviewDesk
from core.store import Store
from core.store.leases_repo import LeasesRepo
from core.store.studio_previews import PreviewView
from core.store.studio_records import DecisionResult, DraftState, DraftView, PublishedEssay, Verdict
from core.store.studio_repo import StudioRepo
from core.studio import review, wording
from core.studio.drafting import Drafter
from core.studio.news import recent_news
from core.studio.preview import DraftPreview
from core.studio.previews import Previews
from core.studio.prompts import Context, Strategy, build_request
from core.studio.publication import DraftTampered, Publisher
from core.studio.schedule import due, next_slot_at

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
IDLE_MAX = 60.0
# Held while a slot is drafted: longer than a model takes to write an essay.
SLOT_LEASE_SECONDS = 600.0


class StudioService:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        router: Router,
        *,
        clock: Clock = utcnow,
        delivered: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self._repo = StudioRepo(store)
        self._leases = LeasesRepo(store)
        self._clock = clock
        self._drafter = Drafter(router, self._repo, clock)
        self.publisher = Publisher(settings, self._repo, clock, delivered)
        self._previews = Previews(settings, self._repo, clock)
        self._wake = asyncio.Event()
        self._holder = secrets.token_hex(8)

    @property
    def enabled(self) -> bool:
        return self.settings.studio.enabled

    @property
    def quorum(self) -> int:
        return self.settings.studio.approvals

    def register_desk(self, platform: str, desk: ReviewDesk) -> None:
        """An adapter is ready to show drafts to its reviewers."""
        self._previews.register(platform, desk)
        self._wake.set()

    def review_platforms(self) -> list[str]:
        """The platforms with a review channel configured (previews are owed there)."""
        return self.settings.studio.review_platforms()

    # ------------------------------------------------------------ drafting

    async def draft_now(self, by: str, strategy: Strategy | None = None) -> DraftView:
        """`ember studio draft`: one draft now, outside the schedule."""
        chosen = strategy or self.settings.studio.strategy
        draft = await self._drafter.draft(
            self._alias(),
            chosen,
            await self._request(chosen),
            slot=None,
            by=by,
            review_on=self.review_platforms(),
        )
        assert draft is not None, "only a slot can be taken already"
        self._wake.set()
        return draft

    async def draft_due_slot(self) -> DraftView | None:
        """Draft the schedule's current slot unless it is drafted (here or on another host)."""
        slot = due(self.settings.studio, self._clock())
        if slot is None or await self._repo.reads.slot_taken(slot.key):
            return None
        lease = f"studio-slot:{slot.key}"
        if not await self._leases.take(lease, self._holder, SLOT_LEASE_SECONDS):
            return None  # another host is writing it
        try:
            if await self._repo.reads.slot_taken(slot.key):
                return None
            strategy = self.settings.studio.strategy
            request = await self._request(strategy)
            return await self._drafter.draft(
                self._alias(),
                strategy,
                request,
                slot=slot.key,
                by="schedule",
                review_on=self.review_platforms(),
            )
        finally:
            await self._leases.release(lease, self._holder)

    def _alias(self) -> str:
        return self.settings.studio.writer(self.settings)

    async def _request(self, strategy: Strategy) -> dict[str, object]:
        studio = self.settings.studio
        model = self.settings.models[self._alias()]
        past = (
            await self._repo.reads.published_texts(studio.past_entries) if strategy == "past_entries" else []
        )
        news = await recent_news(studio.news_feeds, studio.news_items) if strategy == "with_news" else []
        context = Context(self._clock(), past, news)
        return build_request(strategy, context, max_tokens=studio.max_tokens, temperature=model.temperature)

    # ------------------------------------------------------------ review

    def may_review(self, user: User) -> bool:
        return review.is_reviewer(self.settings.studio, user)

    async def decide(self, user: User, draft_id: int, verdict: Verdict, reason: str = "") -> review.Decided:
        """A reviewer's approval or veto; everything they are told. Settling by quorum publishes."""
        if not self.may_review(user):
            return review.Decided(wording.NOT_A_REVIEWER, settled=False)
        if review.needs_reason(verdict, reason):
            draft = await self._repo.get(draft_id)
            if draft is not None and draft.state is not DraftState.PENDING:
                return review.answer(DecisionResult(recorded=False, settled=False, draft=draft), self.quorum)
            return review.Decided(wording.VETO_NEEDS_REASON, settled=False)
        result = await self._repo.decide(
            draft_id, review.reviewer_of(user), verdict, reason.strip(), self.quorum, self._clock()
        )
        if not result.settled:
            return review.answer(result, self.quorum)
        withheld = False
        if verdict is Verdict.APPROVE:
            try:
                await self.publisher.publish(draft_id)
            except DraftTampered:
                withheld = True
        # Tell of the draft as it is now (published, maybe by another host meanwhile, or
        # withheld), here and on every preview of it.
        result = dataclasses.replace(result, draft=await self._repo.get(draft_id))
        await self._previews.show_outcomes(draft_id)
        if withheld:
            return review.Decided(wording.tampered(draft_id), settled=True, result=result)
        return review.answer(result, self.quorum)

    async def draft(self, draft_id: int) -> DraftView | None:
        return await self._repo.get(draft_id)

    async def pending(self) -> list[DraftView]:
        """Drafts waiting for review, and those withheld (approved, never to be published)."""
        return await self._repo.reads.in_states([DraftState.PENDING, DraftState.WITHHELD])

    async def by_state(self) -> dict[DraftState, list[DraftView]]:
        """Every draft (the latest 50 of each state), by state."""
        return {state: await self._repo.reads.in_states([state]) for state in DraftState}

    # ------------------------------------------------------------ previews

    async def post_previews(self) -> int:
        return await self._previews.post_owed()

    def preview(self, draft: DraftView, channel_id: str) -> DraftPreview:
        return self._previews.preview(draft, channel_id)

    async def not_posted(self) -> list[PreviewView]:
        """Previews left failed: drafts no reviewer on that platform has seen."""
        return await self._repo.previews.not_posted()

    async def repost(self, draft_id: int, by: str) -> list[str]:
        """Owe a draft's failed previews again (`ember studio repost`); the platforms."""
        platforms = await self._repo.previews.repost(draft_id, by, self._clock())
        self._wake.set()
        return platforms

    # ------------------------------------------------------------ published essays

    async def published(self, limit: int = 50) -> list[PublishedEssay]:
        return await self._repo.reads.published(limit)

    async def published_essay(self, slug: str) -> PublishedEssay | None:
        return await self._repo.reads.published_by_slug(slug)

    # ------------------------------------------------------------ the loop

    async def run_once(self) -> None:
        if self.enabled:
            await self.draft_due_slot()
        await self.post_previews()
        await self.publisher.publish_approved()
        await self._previews.show_outcomes()

    async def run(self) -> None:
        """Draft each slot, post previews, publish what waits, until cancelled."""
        while True:
            try:
                await self.run_once()
                pause = self._idle_seconds()
            except Exception:
                log.exception("the studio loop failed; trying again in %.0f s", IDLE_MAX * 5)
                pause = IDLE_MAX * 5
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._wake.wait()

    def _idle_seconds(self) -> float:
        now = self._clock()
        upcoming = next_slot_at(self.settings.studio, now) if self.enabled else None
        soonest = upcoming or now + timedelta(seconds=IDLE_MAX)
        return min(IDLE_MAX, max(1.0, (soonest - now).total_seconds()))
