"""Migrations survive `kill -9` at any step, on SQLite and PostgreSQL.

`ember db upgrade` runs in a child process killed with SIGKILL just before each of its SQL
statements in turn (tests/kill_at_statement.py: exact, no sleeps). Each time the database is
left as it was (every revision is in one transaction), the next start completes the upgrade, and
the schema is exactly a clean upgrade's.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Engine

from core.store import Store

ROOT = Path(__file__).resolve().parents[1]
NewDatabase = Callable[[], str]


@pytest.fixture(params=["sqlite", "postgresql"])
def new_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NewDatabase]:
    """Makes empty databases of one kind: the SQLAlchemy URL of a new one per call."""
    made: list[str] = []
    if request.param == "sqlite":

        def sqlite() -> str:
            made.append(f"sqlite+aiosqlite:///{tmp_path / f'ember-{len(made)}.db'}")
            return made[-1]

        yield sqlite
        return
    cluster = request.getfixturevalue("postgres_cluster")

    def postgresql() -> str:
        made.append(cluster.create_database())
        return made[-1]

    yield postgresql
    asyncio.run(_drop_databases(cluster.dsn, [url.rsplit("/", 1)[1] for url in made]))


async def _drop_databases(dsn: str, names: list[str]) -> None:
    """Dropped over one connection: a `dropdb` per database made teardown take seconds."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# The database's own account of its schema, as DDL where it keeps it: exact, and one query each.
SCHEMA_QUERIES = {
    "sqlite": [
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
    ],
    "postgresql": [
        "SELECT table_name, column_name, data_type, character_maximum_length, is_nullable, column_default"
        " FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname",
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE connamespace = 'public'::regnamespace ORDER BY conname",
    ],
}


def schema(url: str) -> dict[str, Any]:
    """Everything a migration decides: tables, columns, keys, indexes, and the version."""

    async def go() -> dict[str, Any]:
        store = Store.open(url)
        try:
            async with store.engine.connect() as conn:
                found: dict[str, Any] = {}
                for query in SCHEMA_QUERIES[store.dialect]:
                    found[query] = [tuple(row) for row in await conn.execute(text(query))]
                stamped = await conn.run_sync(lambda sync: inspect(sync).has_table("alembic_version"))
                versions = (
                    await conn.execute(text("SELECT version_num FROM alembic_version")) if stamped else None
                )
                found["version"] = versions.scalars().all() if versions else None
                return found
        finally:
            await store.close()

    return asyncio.run(go())


def upgrade(url: str) -> int:
    """Upgrade `url` as ember starts (in this process); the number of statements it sent."""
    sent = 0

    def count(*_: Any) -> None:
        nonlocal sent
        sent += 1

    async def go() -> None:
        store = Store.open(url)
        try:
            await store.upgrade()
        finally:
            await store.close()

    event.listen(Engine, "before_cursor_execute", count)
    try:
        asyncio.run(go())
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    return sent


def _dialect(url: str) -> str:
    return url.split("+", 1)[0]


def config_for(url: str, folder: Path, step: int) -> str:
    path = folder / f"step-{step}.toml"
    path.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    return str(path)


def test_a_kill_at_any_step_leaves_a_database_the_next_start_completes(
    new_database: NewDatabase, tmp_path: Path
) -> None:
    clean_url = new_database()
    steps = upgrade(clean_url)
    clean = schema(clean_url)
    assert clean["version"] and len(clean[SCHEMA_QUERIES[_dialect(clean_url)][0]]) > 10, (
        "a clean upgrade builds"
    )

    # One database per step, plus one more where nothing is killed: proof that `steps` counts
    # every statement the command sends, so every step really was interrupted.
    urls = [new_database() for _ in range(steps + 1)]
    configs = [config_for(url, tmp_path, step) for step, url in enumerate(urls, start=1)]
    result = subprocess.run(
        [sys.executable, "-m", "tests.kill_at_statement", *configs],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "ANTHROPIC_API_KEY": "unused"},
        cwd=ROOT,
        timeout=600,
    )
    outcomes = re.findall(r"^(\d+) (killed|exit \d+)$", result.stdout, re.MULTILINE)
    expected = [(str(step), "killed") for step in range(1, steps + 1)] + [(str(steps + 1), "exit 0")]
    assert outcomes == expected, result.stdout + result.stderr

    untouched = schema(new_database())
    for step, url in enumerate(urls[:-1], start=1):
        # All revisions are one transaction: a kill anywhere leaves the database as it was.
        assert schema(url) == untouched, f"killed before statement {step} of {steps}: half-migrated"
        upgrade(url)  # the next start
        assert schema(url) == clean, f"killed before statement {step} of {steps}: not completed"
    assert schema(urls[-1]) == clean


def test_a_database_an_older_ember_left_half_built_is_completed(new_database: NewDatabase) -> None:
    """Before upgrades were one transaction, a kill left some tables and an empty version
    table; every start then failed with "table ... already exists". Such a file starts now."""
    clean_url, broken_url = new_database(), new_database()
    upgrade(clean_url)
    upgrade(broken_url)

    async def break_it() -> None:
        store = Store.open(broken_url)
        try:
            async with store.engine.begin() as conn:
                await conn.execute(text("DELETE FROM alembic_version"))
                for table in ("essay_threads", "essay_deliveries", "access_audit", "usage"):
                    await conn.execute(text(f"DROP TABLE {table}"))
                await conn.execute(text("DROP INDEX ix_turns_author"))
        finally:
            await store.close()

    asyncio.run(break_it())
    assert schema(broken_url)["version"] == []
    upgrade(broken_url)
    assert schema(broken_url) == schema(clean_url)
