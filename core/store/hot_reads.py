"""Reads on a hot path (the access check on every message) in one hop.

A point read costs SQLite a few microseconds, but through aiosqlite every cursor call is handed
to its thread and back, and SQLAlchemy makes several such calls per query: over a millisecond on
a small server. For a SQLite file, HotReads keeps its own synchronous, query-only connection on
one worker thread and runs the whole statement there, so a read is one hop. WAL lets it read
while other connections write, and it sees each commit as soon as it is made.

Elsewhere (PostgreSQL, in-memory SQLite) the async engine is the right tool and is used as is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Engine, Row, Select

from core.store.engine import Store, sqlite_thread_engine


def _read_only_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA query_only=ON")  # this connection never writes, whatever asks it to
    cursor.close()


class HotReads:
    """`await reads.first(select(...))`; `await reads.close()` when done."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._sqlite_file = store.is_sqlite_file
        self._executor: ThreadPoolExecutor | None = None
        self._engine: Engine | None = None

    async def first(self, statement: Select[Any], params: Mapping[str, Any] | None = None) -> Row[Any] | None:
        """The first row of `statement`. Build statements once with bind parameters and pass
        the values here: constructing a statement costs more than SQLite takes to run it."""
        if not self._sqlite_file:
            async with self.store.engine.connect() as conn:
                row: Row[Any] | None = (await conn.execute(statement, params)).first()
                return row
        return await asyncio.get_running_loop().run_in_executor(self._worker(), self._read, statement, params)

    async def all_of(self, *statements: Select[Any]) -> list[list[Row[Any]]]:
        """Every row of each statement, all in one hop (the chat path reads context this way)."""
        if not self._sqlite_file:
            async with self.store.engine.connect() as conn:
                return [list((await conn.execute(s)).all()) for s in statements]
        return await asyncio.get_running_loop().run_in_executor(self._worker(), self._read_all, statements)

    def _worker(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ember-hot-reads")
        return self._executor

    def _sync_engine(self) -> Engine:
        # Runs on the worker thread only, so the one connection is never shared between threads.
        if self._engine is None:
            self._engine = sqlite_thread_engine(self.store.engine.url, _read_only_pragmas)
        return self._engine

    def _read(self, statement: Select[Any], params: Mapping[str, Any] | None) -> Row[Any] | None:
        with self._sync_engine().connect() as conn:
            return conn.execute(statement, params).first()

    def _read_all(self, statements: tuple[Select[Any], ...]) -> list[list[Row[Any]]]:
        with self._sync_engine().connect() as conn:
            return [list(conn.execute(s).all()) for s in statements]

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        engine = self._engine
        if engine is not None:
            await asyncio.get_running_loop().run_in_executor(executor, engine.dispose)
        executor.shutdown(wait=True)
