"""A SQLite file worked on from one thread, a whole unit of work per hop.

Through aiosqlite every cursor call is handed to its thread and back, and SQLAlchemy makes
several such calls per statement: over a millisecond per statement on a small server, and on
the writers' turn that time is everyone's. A `SqliteThread` keeps one plain sqlite3 connection
on one worker thread and runs a whole function there, so a transaction is one hop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection
from sqlalchemy.pool import StaticPool

from core.errors import StoreError

T = TypeVar("T")
Pragmas = Callable[[Any, Any], None]


def writer_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers proceed while one writer commits; the busy timeout makes writers queue
    # instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def reader_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA query_only=ON")  # this connection never writes, whatever asks it to
    cursor.close()


class SqliteThread:
    """`await thread.run(work, transaction=...)` runs `work(connection)` on the worker thread."""

    def __init__(self, url: URL, pragmas: Pragmas, name: str) -> None:
        self._url = url.set(drivername="sqlite")
        self._pragmas = pragmas
        self._name = name
        self._executor: ThreadPoolExecutor | None = None
        self._engine: Engine | None = None
        self._closed = False

    async def run(self, work: Callable[[Connection], T], *, transaction: bool) -> T:
        if self._closed:
            # A second worker thread on the same connection would crash the process; a unit of
            # work that comes this late is a bug of its caller, told plainly.
            raise StoreError(
                f"the store's {self._name} thread is closed: nothing more can be written or read"
            )
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._run, work, transaction)

    def _run(self, work: Callable[[Connection], T], transaction: bool) -> T:
        # Only ever on the one worker thread, so its connection is never shared between threads.
        if self._engine is None:
            self._engine = create_engine(
                self._url, poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
            event.listen(self._engine, "connect", self._pragmas)
        with self._engine.begin() if transaction else self._engine.connect() as conn:
            return work(conn)

    async def close(self) -> None:
        self._closed = True
        executor, self._executor = self._executor, None
        if executor is None:
            return
        engine = self._engine
        if engine is not None:
            await asyncio.get_running_loop().run_in_executor(executor, engine.dispose)
        executor.shutdown(wait=True)
