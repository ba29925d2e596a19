"""The essay studio's reads: drafts as values, published essays for the feed and pages, and
whether a schedule slot is drafted. Writes are core.store.studio_repo's."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.store.engine import Store
from core.store.essay_tables import Essay
from core.store.studio_records import DraftState, DraftView, PublishedEssay, Verdict
from core.store.studio_tables import StudioDecision, StudioDraft


class StudioReads:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def slot_taken(self, slot: str) -> bool:
        query = select(col(StudioDraft.id)).where(col(StudioDraft.slot) == slot)
        async with self._store.reading() as session:
            return (await session.exec(query)).first() is not None

    async def get(self, draft_id: int) -> DraftView | None:
        async with self._store.reading() as session:
            row = await session.get(StudioDraft, draft_id)
            return await draft_view(session, row) if row is not None else None

    async def in_states(self, states: Sequence[DraftState], limit: int = 50) -> list[DraftView]:
        """Drafts in `states`, newest first."""
        query = (
            select(StudioDraft)
            .where(col(StudioDraft.state).in_([s.value for s in states]))
            .order_by(col(StudioDraft.created_at).desc(), col(StudioDraft.id).desc())
            .limit(limit)
        )
        async with self._store.reading() as session:
            return [await draft_view(session, row) for row in (await session.exec(query)).all()]

    async def published_texts(self, count: int) -> list[str]:
        """The last `count` published essays' texts, oldest first."""
        query = (
            select(col(StudioDraft.text))
            .where(col(StudioDraft.state) == DraftState.PUBLISHED.value)
            .order_by(col(StudioDraft.published_at).desc(), col(StudioDraft.id).desc())
            .limit(count)
        )
        async with self._store.reading() as session:
            return list(reversed((await session.exec(query)).all()))

    async def published(self, limit: int = 50) -> list[PublishedEssay]:
        """Published essays, newest first, with the title and author their essay row carries."""
        query = (
            select(StudioDraft, Essay)
            .join(Essay, col(Essay.id) == col(StudioDraft.essay_id))
            .where(col(StudioDraft.state) == DraftState.PUBLISHED.value)
            .order_by(col(StudioDraft.published_at).desc(), col(StudioDraft.id).desc())
            .limit(limit)
        )
        async with self._store.reading() as session:
            return [
                _published(draft, essay.title, essay.author)
                for draft, essay in (await session.exec(query)).all()
            ]

    async def published_by_slug(self, slug: str) -> PublishedEssay | None:
        query = (
            select(StudioDraft, Essay)
            .join(Essay, col(Essay.id) == col(StudioDraft.essay_id))
            .where(col(StudioDraft.slug) == slug, col(StudioDraft.state) == DraftState.PUBLISHED.value)
        )
        async with self._store.reading() as session:
            found = (await session.exec(query)).first()
        return _published(found[0], found[1].title, found[1].author) if found else None


async def approvers(session: AsyncSession, draft_id: int) -> list[str]:
    query = (
        select(col(StudioDecision.reviewer_name))
        .where(col(StudioDecision.draft_id) == draft_id, col(StudioDecision.verdict) == Verdict.APPROVE.value)
        .order_by(col(StudioDecision.at), col(StudioDecision.id))
    )
    return list((await session.exec(query)).all())


async def draft_view(session: AsyncSession, row: StudioDraft) -> DraftView:
    return DraftView(
        id=row.id or 0,
        uid=row.uid,
        slot=row.slot,
        strategy=row.strategy,
        alias=row.alias,
        request_json=row.request_json,
        provider=row.provider,
        model=row.model,
        stop_reason=row.stop_reason,
        text=row.text,
        sha256=row.sha256,
        created_by=row.created_by,
        created_at=row.created_at,
        state=DraftState(row.state),
        decided_at=row.decided_at,
        decided_by=row.decided_by,
        veto_reason=row.veto_reason,
        slug=row.slug,
        essay_id=row.essay_id,
        published_at=row.published_at,
        withheld_reason=row.withheld_reason,
        approvals=tuple(await approvers(session, row.id or 0)),
    )


def _published(draft: StudioDraft, title: str, author: str) -> PublishedEssay:
    return PublishedEssay(
        draft_id=draft.id or 0,
        uid=draft.uid,
        slug=draft.slug or "",
        title=title,
        author=author,
        text=draft.text,
        published_at=draft.published_at or draft.created_at,
    )
