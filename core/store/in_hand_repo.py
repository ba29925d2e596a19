"""The replies each host has in hand (`replies_in_hand`), and the takeover of a stopped host's.

A host writes the row in the transaction that claims the message it will answer, so a claimed
message always has a host answering it; the row goes once the reply is finished. A host that
dies (kill -9, a power cut) leaves its rows behind, and its liveness lease (`host:<id>` in the
leases table) lapses: another host then takes each row with an UPDATE conditional on the old
holder, which the database re-checks on the row it locks, so of two survivors one wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, Executable, delete, exists, literal, update
from sqlmodel import col, select

from core.events import Message
from core.store.engine import Store
from core.store.host_tables import Lease, ReplyInHand
from core.store.models import db_now
from core.store.transcript_repo import TranscriptRepo

HOST_LEASE_PREFIX = "host:"


@dataclass(frozen=True)
class InHand:
    """A reply some host took on: the message it answers, and who answers it now."""

    reply_id: str
    place_key: str
    message_id: str
    host: str
    takeovers: int


def host_lease(host: str) -> str:
    """The name of a host's liveness lease."""
    return HOST_LEASE_PREFIX + host


class InHandRepo:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def claim_message(self, message: Message, reply_id: str, host: str) -> bool:
        """Store `message` (its claim, as `TranscriptRepo.record`) and, when this call stored it,
        the row saying `host` answers it with reply `reply_id`: one transaction, so no claimed
        message is without a host answering it."""
        in_hand = self._row(reply_id, message.place.key, message.id, host)
        return await TranscriptRepo(self._store).record(message, if_stored=[in_hand])

    def _row(self, reply_id: str, place_key: str, message_id: str, host: str) -> Executable:
        row = {
            "reply_id": reply_id,
            "place_key": place_key,
            "message_id": message_id,
            "host": host,
            "taken_at": db_now(),
            "takeovers": 0,
        }
        statement: Executable = self._store.insert(ReplyInHand).values(row).on_conflict_do_nothing()
        return statement

    async def release(self, reply_id: str, host: str) -> None:
        """The reply is finished (or ended): nobody needs to take it over."""
        async with self._store.session() as session:
            await session.exec(
                delete(ReplyInHand).where(
                    col(ReplyInHand.reply_id) == reply_id, col(ReplyInHand.host) == host
                )
            )

    async def orphans(self, *, taken_before: datetime, platforms: list[str]) -> list[InHand]:
        """Rows whose host's liveness lease is not running, taken before `taken_before` (a
        host's lease is written as it starts: a claim younger than a lease is never orphaned
        by a host still starting), in the given platforms."""
        alive = exists().where(
            col(Lease.name) == literal(HOST_LEASE_PREFIX) + col(ReplyInHand.host),
            col(Lease.expires_at) >= db_now(),
        )
        query = select(ReplyInHand).where(~alive, col(ReplyInHand.taken_at) < taken_before)
        async with self._store.reading() as session:
            rows = (await session.exec(query)).all()
        return [
            InHand(row.reply_id, row.place_key, row.message_id, row.host, row.takeovers)
            for row in rows
            if row.place_key.partition(":")[0] in platforms
        ]

    async def take(self, orphan: InHand, host: str) -> bool:
        """Take `orphan` from its stopped host for `host`; False when another host took it first."""
        takeover = (
            update(ReplyInHand)
            .where(col(ReplyInHand.reply_id) == orphan.reply_id, col(ReplyInHand.host) == orphan.host)
            .values(host=host, taken_at=db_now(), takeovers=col(ReplyInHand.takeovers) + 1)
        )
        async with self._store.session() as session:
            return _rows(await session.exec(takeover)) == 1

    async def held_by(self, host: str) -> list[str]:
        """The replies `host` has in hand (for tests and status)."""
        query = select(col(ReplyInHand.reply_id)).where(col(ReplyInHand.host) == host)
        async with self._store.reading() as session:
            return list((await session.exec(query)).all())


def _rows(result: Any) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0
