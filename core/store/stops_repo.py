"""Stop requests between hosts: the host where Stop was pressed writes a row; the host
streaming the reply reads the rows of its replies and deletes the ones it acted on."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete
from sqlmodel import col, select

from core.store.engine import Store
from core.store.host_tables import ReplyStop
from core.store.models import db_now


class StopsRepo:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def request(self, reply_id: str) -> None:
        row = {"reply_id": reply_id, "requested_at": db_now()}
        upsert = (
            self._store.insert(ReplyStop)
            .values(row)
            .on_conflict_do_update(index_elements=["reply_id"], set_={"requested_at": row["requested_at"]})
        )
        async with self._store.session() as session:
            await session.exec(upsert)

    async def requested(self, reply_ids: list[str]) -> dict[str, datetime]:
        """When Stop was requested, for those of `reply_ids` that have a request (UTC)."""
        query = select(col(ReplyStop.reply_id), col(ReplyStop.requested_at)).where(
            col(ReplyStop.reply_id).in_(reply_ids)
        )
        async with self._store.reading() as session:
            rows = (await session.exec(query)).all()
        return {reply_id: _utc(at) for reply_id, at in rows}

    async def clear(self, reply_ids: list[str]) -> None:
        async with self._store.session() as session:
            await session.exec(delete(ReplyStop).where(col(ReplyStop.reply_id).in_(reply_ids)))


def _utc(moment: datetime) -> datetime:
    # SQLite hands back the UTC moment it was given without its zone.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
