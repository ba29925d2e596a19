"""Leases: a named thing one holder keeps until it lets go or its time runs out.

Taking a lease is race-free on PostgreSQL and SQLite alike: the name is the primary key, so of
two hosts inserting it at once one gets it; an expired lease is taken over by an UPDATE whose
condition the database re-checks on the row it locks, so of two hosts taking it over one wins.
Times are the holders' clocks (UTC); leases last tens of seconds, so clocks a little apart
matter little.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import CursorResult, delete, or_, update
from sqlmodel import col, select

from core.store.engine import Store
from core.store.host_tables import Lease
from core.store.models import db_now


class LeasesRepo:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def take(self, name: str, holder: str, seconds: float) -> bool:
        """Hold `name` for `seconds` (also when `holder` already holds it). False when another
        holder's lease on it is still running."""
        now = db_now()
        row = {"name": name, "holder": holder, "expires_at": now + timedelta(seconds=seconds)}
        fresh = self._store.insert(Lease).values(row).on_conflict_do_nothing(index_elements=["name"])
        takeover = (
            update(Lease)
            .where(col(Lease.name) == name)
            .where(or_(col(Lease.expires_at) < now, col(Lease.holder) == holder))
            .values(holder=holder, expires_at=row["expires_at"])
        )
        async with self._store.session() as session:
            if _changed(await session.exec(fresh)):
                return True
            return _changed(await session.exec(takeover))

    async def renew(self, names: list[str], holder: str, seconds: float) -> int:
        """Extend the leases `holder` still holds among `names`; how many it still holds."""
        if not names:
            return 0
        extend = (
            update(Lease)
            .where(col(Lease.name).in_(names), col(Lease.holder) == holder)
            .values(expires_at=db_now() + timedelta(seconds=seconds))
        )
        async with self._store.session() as session:
            return _rows(await session.exec(extend))

    async def release(self, name: str, holder: str) -> None:
        async with self._store.session() as session:
            await session.exec(delete(Lease).where(col(Lease.name) == name, col(Lease.holder) == holder))

    async def held(self, prefix: str) -> list[str]:
        """The names under `prefix` whose leases are running (for status and tests)."""
        query = select(col(Lease.name)).where(
            col(Lease.name).startswith(prefix, autoescape=True), col(Lease.expires_at) >= db_now()
        )
        async with self._store.reading() as session:
            return list((await session.exec(query)).all())


def _rows(result: Any) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0


def _changed(result: Any) -> bool:
    return _rows(result) == 1
