"""The database: one async engine, its sessions, and migrations applied on start."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from core.errors import StoreError
from core.store.hot_reads import HotReads
from core.store.migrations.sqlite_file import upgrade_sqlite_file
from core.store.sqlite_thread import SqliteThread, writer_pragmas

log = logging.getLogger(__name__)
T = TypeVar("T")
MIGRATIONS = Path(__file__).parent / "migrations"
# Any fixed number: several hosts starting at once take turns migrating PostgreSQL.
_MIGRATION_LOCK = 7_351_001
_NAMES_REMEMBERED = 50_000


def _check_sqlite_folder(database: str | None) -> None:
    """SQLite creates the file but not its folder. Say so up front: a failed connect would only
    report "unable to open database file"."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    folder = Path(database).expanduser().parent
    if not folder.is_dir():
        raise StoreError(
            f"the SQLite database's folder {folder} does not exist: create it, or change [database] url"
        )


class Store:
    """Owns the engine. Create with `Store.open(url)`, close with `await store.close()`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
        # SQLite has one writer. Left to itself, a crowd of transactions meets SQLite's busy
        # handler, which sleeps in growing steps (seconds of latency under load), and a read
        # transaction that then writes can fail at once with "database is locked". So on
        # SQLite this process's transactions take turns here instead: first come, first served,
        # handed over without sleeping. A session opened inside a session (same task) does not
        # wait for itself. PostgreSQL needs none of this.
        is_sqlite = engine.dialect.name == "sqlite"
        self._turns: asyncio.Lock | None = asyncio.Lock() if is_sqlite else None
        self._holding: ContextVar[bool] = ContextVar(f"ember-store-{id(self)}", default=False)
        # Names last written per person: an unchanged name is not rewritten with every message.
        self._names: OrderedDict[tuple[str, str, str], str] = OrderedDict()
        # Chat-path writes (see `write`) and hot reads each run whole on a thread of their own.
        self._writer = (
            SqliteThread(engine.url, writer_pragmas, "ember-store-writes") if self.is_sqlite_file else None
        )
        self.reads = HotReads(engine, sqlite_file=self.is_sqlite_file)

    @classmethod
    def open(cls, url: str, *, echo: bool = False) -> Store:
        parsed = make_url(url)
        is_sqlite = parsed.get_backend_name() == "sqlite"
        if is_sqlite:
            _check_sqlite_folder(parsed.database)
        options: dict[str, Any] = {"echo": echo}
        if not is_sqlite:
            options.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
        engine = create_async_engine(url, **options)
        if is_sqlite:
            event.listen(engine.sync_engine, "connect", writer_pragmas)
        return cls(engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_sqlite_file(self) -> bool:
        """A SQLite file (not in memory): other connections, on other threads, can open it too.
        Hot paths use such connections to do a whole transaction in one thread hop."""
        url = self.engine.url
        in_memory = url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"
        return self.dialect == "sqlite" and not in_memory

    def name_known(self, person: tuple[str, str, str], name: str) -> bool:
        """True when this process last committed exactly `name` for `person`."""
        return self._names.get(person) == name

    def forget_names(self, platform: str, user_id: str) -> None:
        """After a person's rows are deleted, their name must be written again."""
        for person in [p for p in self._names if p[0] == platform and p[2] == user_id]:
            del self._names[person]

    def remember_name(self, person: tuple[str, str, str], name: str) -> None:
        """`name` is committed for `person`."""
        self._names[person] = name
        self._names.move_to_end(person)
        while len(self._names) > _NAMES_REMEMBERED:
            self._names.popitem(last=False)

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` (plain SQLAlchemy Core on a sync connection) as one transaction.

        Through aiosqlite each statement is several thread hops, and on SQLite the writers'
        turn is held for all of them; here, on a SQLite file, the whole transaction is one hop,
        so the turn is short even when the event loop is busy. Elsewhere it is the async engine.
        """
        if self._writer is None:
            async with self.engine.begin() as conn:
                return await conn.run_sync(work)
        async with self._turn():
            return await self._writer.run(work, transaction=True)

    def insert(self, table: Any) -> Any:
        """This database's INSERT, which offers `on_conflict_do_nothing/do_update` (SQLite and
        PostgreSQL spell them alike, but each dialect has its own construct)."""
        return (pg_insert if self.dialect == "postgresql" else sqlite_insert)(table)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on success and rolls back on any error."""
        async with self._turn(), self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only. It does not wait for the writers' turn: SQLite (in WAL
        mode) lets readers work beside the one writer. Writing in it is a mistake."""
        async with self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        if self._turns is None or self._holding.get():
            yield
            return
        async with self._turns:
            token = self._holding.set(True)
            try:
                yield
            finally:
                self._holding.reset(token)

    async def upgrade(self) -> None:
        """Apply every pending migration in one transaction (idempotent; safe from several hosts
        at once; a process killed part-way leaves the database as it was before)."""
        try:
            if self.is_sqlite_file:
                # Python's sqlite3 keeps DDL out of transactions: see migrations/sqlite_file.py.
                await asyncio.to_thread(upgrade_sqlite_file, self.engine.url, _upgrade_sync)
                return
            async with self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    await conn.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
                await conn.run_sync(_upgrade_sync)
        except (SQLAlchemyError, OSError) as exc:
            # asyncpg lets a refused or timed-out connection through as a bare OSError.
            url = self.engine.url.render_as_string(hide_password=True)
            raise StoreError(f"could not migrate the database at {url}: {exc}") from exc

    async def close(self) -> None:
        await self.reads.close()
        if self._writer is not None:
            await self._writer.close()
        await self.engine.dispose()


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade_sync(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")
