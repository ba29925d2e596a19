"""Telling a first request from its replay, across hosts (see core.store.replay_tables)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, delete
from sqlmodel import col

from core.store.engine import Store
from core.store.replay_tables import SeenRequest

# A signed request's timestamp is honoured this long; its row is kept a little longer for skew.
KEEP = timedelta(minutes=10)


async def first_sighting(store: Store, key: str, now: datetime) -> bool:
    """Remember `key`; True when no host had seen it before (within `KEEP`)."""
    insert = store.insert(SeenRequest).values(key=key[:100], seen_at=now).on_conflict_do_nothing()
    expired = delete(SeenRequest).where(col(SeenRequest.seen_at) < now - KEEP)

    def run(conn: Connection) -> bool:
        conn.execute(expired)
        return bool(conn.execute(insert).rowcount)

    return await store.write(run)
