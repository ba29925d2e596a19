"""Reads on a hot path (the access check on every message) in one hop.

A point read costs SQLite a few microseconds, but through aiosqlite every cursor call is handed
to its thread and back, and SQLAlchemy makes several such calls per query: over a millisecond on
a small server. For a SQLite file, HotReads keeps its own synchronous, query-only connection on
one worker thread and runs the whole statement there, so a read is one hop. WAL lets it read
while other connections write, and it sees each commit as soon as it is made.

Elsewhere (PostgreSQL, in-memory SQLite) the async engine is the right tool and is used as is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Row, Select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.store.sqlite_thread import SqliteThread, reader_pragmas


class HotReads:
    """`await reads.first(select(...))`; the store that owns it closes it."""

    def __init__(self, engine: AsyncEngine, *, sqlite_file: bool) -> None:
        self._engine = engine
        self._thread = SqliteThread(engine.url, reader_pragmas, "ember-hot-reads") if sqlite_file else None

    async def first(self, statement: Select[Any], params: Mapping[str, Any] | None = None) -> Row[Any] | None:
        """The first row of `statement`. Build statements once with bind parameters and pass
        the values here: constructing a statement costs more than SQLite takes to run it."""
        if self._thread is None:
            async with self._engine.connect() as conn:
                row: Row[Any] | None = (await conn.execute(statement, params)).first()
                return row
        return await self._thread.run(lambda conn: conn.execute(statement, params).first(), transaction=False)

    async def all_of(
        self, *statements: Select[Any], params: Mapping[str, Any] | None = None
    ) -> list[list[Row[Any]]]:
        """Every row of each statement, all in one hop (the chat path reads context this way).
        `params` binds the statements' parameters (one mapping; give each a distinct name)."""
        if self._thread is None:
            async with self._engine.connect() as conn:
                return [list((await conn.execute(s, params)).all()) for s in statements]
        return await self._thread.run(
            lambda conn: [list(conn.execute(s, params).all()) for s in statements], transaction=False
        )

    async def close(self) -> None:
        if self._thread is not None:
            await self._thread.close()
