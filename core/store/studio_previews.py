"""The previews a draft owes to each platform's review channel (studio_previews), reached as
`StudioRepo.previews`.

A preview row goes pending (due at `updated_at`) → posting → posted, or back to pending after a
failed post (due again later) and, after PREVIEW_TRIES, failed until the operator asks for it
again (`ember studio repost`). Posting is a lease, as the essays outbox's claimed deliveries
are: `claim` moves a row to `posting` with `updated_at` set to when the claim lapses, by a
conditional UPDATE (two hosts never hold one claim). A host that stops mid-post leaves the row
posting; once the lease lapses another host (or the restarted one) claims it again, told the
post is uncertain (as it is after a failed attempt, which may have posted the header before
failing) so the adapter looks for the earlier post instead of posting twice.
A posted row keeps the channel and message it was posted as, so the preview can be edited to
show the draft's outcome however the draft was settled: posted → showing (claimed the same way)
→ shown; an edit that failed is due again later, and after PREVIEW_TRIES is given up
(outcome-failed, `last_error` says why).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, CursorResult, or_, update
from sqlmodel import col, select

from core.store.access_sql import add_audit
from core.store.engine import Store
from core.store.studio_records import DraftState
from core.store.studio_tables import StudioDraft, StudioPreview

# A preview that could not be posted is tried again after 5, 10, 15… minutes, this often in all.
PREVIEW_TRIES = 5
PREVIEW_PAUSE = timedelta(minutes=5)
# How long a claim holds: far longer than posting a header, a thread and its text takes.
PREVIEW_LEASE = timedelta(minutes=5)


class PreviewState:
    PENDING = "pending"
    POSTING = "posting"
    POSTED = "posted"
    FAILED = "failed"
    # Once the draft is settled: its outcome being shown (claimed), shown, or given up on.
    SHOWING = "showing"
    SHOWN = "shown"
    OUTCOME_FAILED = "outcome-failed"


@dataclass(frozen=True)
class PreviewClaim:
    draft_id: int
    platform: str
    # A claim that lapsed held it before, or an earlier attempt failed: either may have posted
    # it, in part or whole.
    uncertain: bool


@dataclass(frozen=True)
class PreviewView:
    draft_id: int
    platform: str
    state: str
    attempts: int
    last_error: str
    channel_id: str
    message_id: str


class StudioPreviews:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def claim(self, platform: str, limit: int, now: datetime) -> list[PreviewClaim]:
        """Previews `platform` owes for drafts still pending (due, or whose claim lapsed), each
        claimed by this call alone until PREVIEW_LEASE from `now`."""
        owed = or_(
            col(StudioPreview.state) == PreviewState.PENDING,
            col(StudioPreview.state) == PreviewState.POSTING,
        )
        query = (
            select(col(StudioPreview.draft_id), col(StudioPreview.state), col(StudioPreview.attempts))
            .join(StudioDraft, col(StudioDraft.id) == col(StudioPreview.draft_id))
            .where(
                col(StudioPreview.platform) == platform,
                owed,
                col(StudioPreview.updated_at) <= now,
                col(StudioDraft.state) == DraftState.PENDING.value,
            )
            .order_by(col(StudioPreview.draft_id))
            .limit(limit)
        )
        claimed: list[PreviewClaim] = []
        async with self._store.session() as session:
            for draft_id, state, attempts in (await session.exec(query)).all():
                take = (
                    update(StudioPreview)
                    .where(
                        *_row(draft_id, platform),
                        col(StudioPreview.state) == state,
                        col(StudioPreview.updated_at) <= now,  # a claim just taken is not due
                    )
                    .values(state=PreviewState.POSTING, updated_at=now + PREVIEW_LEASE)
                )
                if _rows(await session.exec(take)) == 1:
                    uncertain = state == PreviewState.POSTING or attempts > 0
                    claimed.append(PreviewClaim(draft_id, platform, uncertain))
        return claimed

    async def claim_outcomes(
        self, platform: str, limit: int, now: datetime, draft_id: int | None = None
    ) -> list[PreviewView]:
        """Posted previews of settled drafts (of `draft_id`'s alone, when given) whose outcome
        `platform` has not shown yet, due or whose claim lapsed, each claimed by this call alone
        until PREVIEW_LEASE from `now`."""
        owed = or_(
            col(StudioPreview.state) == PreviewState.POSTED,
            col(StudioPreview.state) == PreviewState.SHOWING,
        )
        query = (
            select(StudioPreview)
            .join(StudioDraft, col(StudioDraft.id) == col(StudioPreview.draft_id))
            .where(
                col(StudioPreview.platform) == platform,
                owed,
                col(StudioPreview.updated_at) <= now,
                col(StudioDraft.state) != DraftState.PENDING.value,
            )
            .order_by(col(StudioPreview.draft_id))
            .limit(limit)
        )
        if draft_id is not None:
            query = query.where(col(StudioPreview.draft_id) == draft_id)
        claimed: list[PreviewView] = []
        async with self._store.session() as session:
            for row in (await session.exec(query)).all():
                take = (
                    update(StudioPreview)
                    .where(
                        *_row(row.draft_id, platform),
                        col(StudioPreview.state) == row.state,
                        col(StudioPreview.updated_at) <= now,
                    )
                    .values(state=PreviewState.SHOWING, updated_at=now + PREVIEW_LEASE)
                )
                if _rows(await session.exec(take)) == 1:
                    claimed.append(_view(row))
        return claimed

    async def outcome_shown(self, draft_id: int, platform: str, now: datetime) -> None:
        async with self._store.session() as session:
            await session.exec(
                update(StudioPreview)
                .where(*_row(draft_id, platform))
                .values(state=PreviewState.SHOWN, updated_at=now)
            )

    async def outcome_failed(self, draft_id: int, platform: str, error: str, now: datetime) -> bool:
        """The edit failed: due again after a growing pause, until PREVIEW_TRIES are spent
        (then given up). True while it will be tried again."""
        return await self._failed_try(
            draft_id, platform, error, now, "outcome_tries", PreviewState.POSTED, PreviewState.OUTCOME_FAILED
        )

    async def posted(
        self, draft_id: int, platform: str, channel_id: str, message_id: str, now: datetime
    ) -> None:
        async with self._store.session() as session:
            await session.exec(
                update(StudioPreview)
                .where(*_row(draft_id, platform))
                .values(
                    state=PreviewState.POSTED,
                    channel_id=channel_id[:64],
                    message_id=message_id[:64],
                    last_error="",
                    updated_at=now,
                )
            )

    async def failed(self, draft_id: int, platform: str, error: str, now: datetime) -> bool:
        """The post failed: due again after a pause that grows with each try, until
        PREVIEW_TRIES are spent (then left failed). True while it will be tried again."""
        return await self._failed_try(
            draft_id, platform, error, now, "attempts", PreviewState.PENDING, PreviewState.FAILED
        )

    async def _failed_try(
        self,
        draft_id: int,
        platform: str,
        error: str,
        now: datetime,
        tries_column: Literal["attempts", "outcome_tries"],
        again_state: str,
        given_up_state: str,
    ) -> bool:
        """Count a failed try in `tries_column`: due again (`again_state`) after a pause that
        grows with each try, or `given_up_state` once PREVIEW_TRIES are spent."""
        async with self._store.session() as session:
            row = (await session.exec(select(StudioPreview).where(*_row(draft_id, platform)))).first()
            tries: int = (getattr(row, tries_column) if row else 0) + 1
            again = tries < PREVIEW_TRIES
            await session.exec(
                update(StudioPreview)
                .where(*_row(draft_id, platform))
                .values(
                    {
                        "state": again_state if again else given_up_state,
                        tries_column: tries,
                        "last_error": error[:500],
                        "updated_at": now + PREVIEW_PAUSE * tries,
                    }
                )
            )
        return again

    async def repost(self, draft_id: int, by: str, now: datetime) -> list[str]:
        """The operator asks again for the draft's failed previews: due now, tries afresh.
        Returns the platforms owed again (none: nothing of this draft's had failed)."""
        where = (col(StudioPreview.draft_id) == draft_id, col(StudioPreview.state) == PreviewState.FAILED)
        async with self._store.session() as session:
            platforms = list((await session.exec(select(col(StudioPreview.platform)).where(*where))).all())
            if not platforms:
                return []
            await session.exec(
                update(StudioPreview)
                .where(*where)
                .values(state=PreviewState.PENDING, attempts=0, updated_at=now)
            )
            detail = "preview owed again to " + ", ".join(platforms)
            add_audit(session, "ember", "", by[:64], by, f"draft:{draft_id}", "studio-repost", detail, now)
        return platforms

    async def of_draft(self, draft_id: int) -> list[PreviewView]:
        query = select(StudioPreview).where(col(StudioPreview.draft_id) == draft_id)
        async with self._store.reading() as session:
            return [_view(row) for row in (await session.exec(query)).all()]

    async def not_posted(self, limit: int = 50) -> list[PreviewView]:
        """Previews no reviewer has seen because posting them failed for good, newest first."""
        query = (
            select(StudioPreview)
            .where(col(StudioPreview.state) == PreviewState.FAILED)
            .order_by(col(StudioPreview.draft_id).desc())
            .limit(limit)
        )
        async with self._store.reading() as session:
            return [_view(row) for row in (await session.exec(query)).all()]


def _row(draft_id: int, platform: str) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return col(StudioPreview.draft_id) == draft_id, col(StudioPreview.platform) == platform


def _view(row: StudioPreview) -> PreviewView:
    return PreviewView(
        draft_id=row.draft_id,
        platform=row.platform,
        state=row.state,
        attempts=row.attempts,
        last_error=row.last_error,
        channel_id=row.channel_id,
        message_id=row.message_id,
    )


def _rows(result: object) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0
