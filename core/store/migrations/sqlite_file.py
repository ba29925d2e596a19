"""Migrating a SQLite file in one real transaction, so that a kill leaves it as it was.

SQLite itself rolls back DDL like any other statement, but Python's sqlite3 module (under
aiosqlite too) opens a transaction only before INSERT/UPDATE/DELETE: each CREATE TABLE ran on
its own and stayed. A process killed mid-upgrade left some tables and an empty version table,
and every later start failed with "table ... already exists". Here the driver's own transaction
handling is off and the transaction is begun explicitly, so every revision, and the version
stamp with it, commits together or not at all.

`BEGIN IMMEDIATE` takes SQLite's write lock at once: two processes upgrading the same file take
turns (the second waits, then finds the file at head), as PostgreSQL's advisory lock does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection
from sqlalchemy.pool import NullPool

# Long enough for another host's whole upgrade; a busy file is waited for, not failed.
_BUSY_TIMEOUT_MS = 60_000


def upgrade_sqlite_file(url: URL, migrate: Callable[[Connection], None]) -> None:
    """Run `migrate(connection)` on the SQLite file at `url`, inside one transaction.
    Blocking: call it in a worker thread."""
    engine = create_engine(url.set(drivername="sqlite"), poolclass=NullPool)
    event.listen(engine, "connect", _manual_transactions)
    event.listen(engine, "begin", _begin_immediate)
    try:
        with engine.begin() as connection:
            connection.info["transactional_ddl"] = True  # read by env.py: alembic logs it
            migrate(connection)
    finally:
        engine.dispose()


def _manual_transactions(dbapi_connection: Any, _record: Any) -> None:
    # isolation_level None: the sqlite3 module never begins or commits on its own.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # as every other connection ember opens uses
    cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    cursor.close()


def _begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")
