"""The essay studio's writes: drafts kept whole, decisions settled once, publication once (its
reads are core.store.studio_reads, reached as `StudioRepo.reads`).

- A scheduled draft carries its slot's key, unique: of two hosts writing one slot, one insert
  stands and the other is told the slot is taken (`add_draft` returns None).
- A decision is written in one transaction that first locks the draft's row (PostgreSQL; SQLite
  has one writer), so a quorum is counted with every earlier approval in view, and the draft
  leaves `pending` by a conditional UPDATE: the first decision that settles it wins.
- Publication turns an approved draft into an essay and owes it to every subscribed channel in
  the same transaction (core.store.outbox_repo), conditioned on the draft still being approved
  with the hash the caller checked: it happens once.
- Every draft, approval, veto, publication and withholding is written to the audit log (access_audit) in the
  transaction that makes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import CursorResult, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.store.access_sql import add_audit
from core.store.engine import Store
from core.store.essay_records import NewEssay
from core.store.essays_repo import essay_row
from core.store.models import Usage
from core.store.outbox_repo import owe_to_subscribers
from core.store.studio_previews import StudioPreviews
from core.store.studio_reads import StudioReads, approvers, draft_view
from core.store.studio_records import (
    DecisionResult,
    DraftState,
    DraftView,
    NewDraft,
    Reviewer,
    Verdict,
)
from core.store.studio_tables import StudioDecision, StudioDraft, StudioPreview

# The audit log's platform for what ember itself or the operator did (a draft, a publication),
# and the usage rows' platform and workspace for what the studio spends.
EMBER = "ember"
STUDIO = "studio"


class StudioRepo:
    def __init__(self, store: Store) -> None:
        self._store = store
        self.reads = StudioReads(store)
        self.previews = StudioPreviews(store)

    # ------------------------------------------------------------ drafts

    async def add_draft(self, new: NewDraft, review_on: Sequence[str], now: datetime) -> DraftView | None:
        """Keep a draft, owe its preview to each platform in `review_on`, audited. None when its
        slot was drafted already (by another host, or earlier)."""
        row = StudioDraft(
            uid=new.uid,
            slot=new.slot,
            strategy=new.strategy,
            alias=new.alias,
            request_json=new.request_json,
            provider=new.provider,
            model=new.model[:200],
            stop_reason=new.stop_reason[:32],
            text=new.text,
            sha256=new.sha256,
            created_by=new.created_by[:200],
            created_at=now,
        )
        try:
            async with self._store.session() as session:
                session.add(row)
                await session.flush()
                draft_id = row.id or 0
                session.add_all(
                    StudioPreview(draft_id=draft_id, platform=p, updated_at=now) for p in review_on
                )
                session.add(_usage(new, draft_id, now))
                detail = (
                    f"{new.strategy} draft by {new.alias} ({new.provider}:{new.model}), sha256 {new.sha256}"
                )
                add_audit(
                    session,
                    EMBER,
                    "",
                    new.created_by[:64],
                    new.created_by,
                    _target(draft_id),
                    "studio-draft",
                    detail,
                    now,
                )
        except IntegrityError:
            return None
        return await self.get(draft_id)

    async def get(self, draft_id: int) -> DraftView | None:
        return await self.reads.get(draft_id)

    # ------------------------------------------------------------ decisions

    async def decide(
        self, draft_id: int, reviewer: Reviewer, verdict: Verdict, reason: str, quorum: int, now: datetime
    ) -> DecisionResult:
        async with self._store.session() as session:
            locked = select(StudioDraft).where(col(StudioDraft.id) == draft_id).with_for_update()
            row = (await session.exec(locked)).first()
            if row is None:
                return DecisionResult(recorded=False, settled=False, draft=None)
            if row.state != DraftState.PENDING.value:
                return DecisionResult(recorded=False, settled=False, draft=await draft_view(session, row))
            earlier = await _own_decision(session, draft_id, reviewer)
            if earlier is not None:
                return DecisionResult(False, False, await draft_view(session, row), already=earlier)
            session.add(
                StudioDecision(
                    draft_id=draft_id,
                    platform=reviewer.platform,
                    workspace_id=reviewer.workspace_id,
                    reviewer_id=reviewer.id,
                    reviewer_name=reviewer.name[:200],
                    verdict=verdict.value,
                    reason=reason[:1000],
                    at=now,
                )
            )
            action = "studio-veto" if verdict is Verdict.VETO else "studio-approve"
            add_audit(
                session,
                reviewer.platform,
                reviewer.workspace_id,
                reviewer.id,
                reviewer.name,
                _target(draft_id),
                action,
                reason,
                now,
            )
            await session.flush()
            settled = verdict is Verdict.VETO or len(await approvers(session, draft_id)) >= quorum
            if settled:
                state = DraftState.VETOED if verdict is Verdict.VETO else DraftState.APPROVED
                settled = await _settle(session, draft_id, state, reviewer.name, reason, now)
            await session.refresh(row)
            return DecisionResult(recorded=True, settled=settled, draft=await draft_view(session, row))

    # ------------------------------------------------------------ publication

    async def approved_unpublished(self) -> list[int]:
        query = select(col(StudioDraft.id)).where(col(StudioDraft.state) == DraftState.APPROVED.value)
        async with self._store.reading() as session:
            return [draft_id for draft_id in (await session.exec(query)).all() if draft_id is not None]

    async def withhold(self, draft_id: int, sha256: str, found: str, now: datetime) -> bool:
        """The approved draft's text no longer hashes to `sha256` (it hashes to `found`): it is
        withheld for good, audited. True for the one call that withheld it."""
        reason = f"its text no longer matches its hash (sha256 {sha256}, now {found})"
        async with self._store.session() as session:
            mark = (
                update(StudioDraft)
                .where(col(StudioDraft.id) == draft_id, col(StudioDraft.state) == DraftState.APPROVED.value)
                .values(state=DraftState.WITHHELD.value, withheld_reason=reason[:500])
            )
            if _rows(await session.exec(mark)) != 1:
                return False
            add_audit(session, EMBER, "", EMBER, EMBER, _target(draft_id), "studio-withhold", reason, now)
        return True

    async def publish(
        self, draft_id: int, sha256: str, slug: str, essay: NewEssay, now: datetime
    ) -> int | None:
        """The approved draft becomes an essay owed to every subscribed channel, in one
        transaction. Returns the deliveries queued; None when it was not (or no longer) an
        approved draft with that hash (another host published it)."""
        async with self._store.session() as session:
            mark = (
                update(StudioDraft)
                .where(
                    col(StudioDraft.id) == draft_id,
                    col(StudioDraft.state) == DraftState.APPROVED.value,
                    col(StudioDraft.sha256) == sha256,
                )
                .values(state=DraftState.PUBLISHED.value, slug=slug, published_at=now)
            )
            if _rows(await session.exec(mark)) != 1:
                return None
            row = essay_row(essay, now)
            session.add(row)
            await session.flush()
            await session.exec(
                update(StudioDraft).where(col(StudioDraft.id) == draft_id).values(essay_id=row.id)
            )
            queued = await owe_to_subscribers(session, row.id or 0, now)
            detail = f"published as /essays/{slug}, sha256 {sha256}, owed to {queued} channel(s)"
            add_audit(session, EMBER, "", EMBER, EMBER, _target(draft_id), "studio-publish", detail, now)
            return queued


def _usage(new: NewDraft, draft_id: int, now: datetime) -> Usage:
    """The draft's request as a usage row of ember's own (no member, no workspace of a platform)."""
    return Usage(
        created_at=now,
        platform=EMBER,
        workspace_id=STUDIO,
        user_id=STUDIO,
        place_key=f"{EMBER}:{STUDIO}:{draft_id}",
        alias=new.alias,
        provider=new.provider,
        model=new.model[:100],
        input_tokens=new.input_tokens,
        output_tokens=new.output_tokens,
        cache_write_tokens=new.cache_write_tokens,
        cache_read_tokens=new.cache_read_tokens,
        latency_ms=new.latency_ms,
        cost_micros=new.cost_micros,
        trace_id=new.uid.replace("-", "")[:32],
        outcome="done",
    )


def _target(draft_id: int) -> str:
    return f"draft:{draft_id}"


def _rows(result: object) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0


async def _own_decision(session: AsyncSession, draft_id: int, reviewer: Reviewer) -> Verdict | None:
    query = select(col(StudioDecision.verdict)).where(
        col(StudioDecision.draft_id) == draft_id,
        col(StudioDecision.platform) == reviewer.platform,
        col(StudioDecision.reviewer_id) == reviewer.id,
    )
    found = (await session.exec(query)).first()
    return Verdict(found) if found else None


async def _settle(
    session: AsyncSession, draft_id: int, state: DraftState, by: str, reason: str, now: datetime
) -> bool:
    settle = (
        update(StudioDraft)
        .where(col(StudioDraft.id) == draft_id, col(StudioDraft.state) == DraftState.PENDING.value)
        .values(state=state.value, decided_at=now, decided_by=by[:200], veto_reason=reason[:1000])
    )
    return _rows(await session.exec(settle)) == 1
