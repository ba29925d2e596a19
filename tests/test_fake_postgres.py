"""The throwaway PostgreSQL cluster, checked with asyncpg and SQLAlchemy."""

from __future__ import annotations

from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.fakes.postgres import PostgresCluster, PostgresError, database_name, unavailable_reason


def plain(url: str) -> str:
    """asyncpg takes the libpq form of an SQLAlchemy URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def test_the_shared_database_answers_asyncpg(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+asyncpg://postgres@127.0.0.1:")
    connection = await asyncpg.connect(plain(postgres_url))
    try:
        assert await connection.fetchval("select current_database()") == "ember"
        assert await connection.fetchval("show fsync") == "off"
        assert str(await connection.fetchval("select inet_server_addr()")) == "127.0.0.1"
        assert connection.get_server_version().major >= 13  # dropdb --force needs 13
    finally:
        await connection.close()


async def test_each_test_gets_its_own_empty_database(postgres_url: str, postgres_db_url: str) -> None:
    name = database_name(postgres_db_url)
    assert name.startswith("test_") and postgres_db_url != postgres_url
    connection = await asyncpg.connect(plain(postgres_db_url))
    try:
        assert await connection.fetchval("select current_database()") == name
        tables = await connection.fetchval("select count(*) from pg_tables where schemaname = 'public'")
        assert tables == 0
        await connection.execute("create table note (id serial primary key, body text not null)")
        await connection.execute("insert into note (body) values ($1)", "héllo ✓")
        assert await connection.fetchval("select body from note") == "héllo ✓"
    finally:
        await connection.close()


async def test_sqlalchemy_accepts_the_url(postgres_db_url: str) -> None:
    engine = create_async_engine(postgres_db_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("create table t (n int)"))
            await connection.execute(text("insert into t values (1), (2)"))
            total = (await connection.execute(text("select sum(n) from t"))).scalar_one()
    finally:
        await engine.dispose()
    assert total == 3


async def test_drop_database_disconnects_its_users(postgres_cluster: PostgresCluster) -> None:
    url = postgres_cluster.create_database()
    lingering = await asyncpg.connect(plain(url))
    postgres_cluster.drop_database(database_name(url))
    admin = await asyncpg.connect(postgres_cluster.dsn)
    try:
        exists = await admin.fetchval("select 1 from pg_database where datname = $1", database_name(url))
    finally:
        await admin.close()
    assert exists is None
    with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)):
        await lingering.fetchval("select 1")
    lingering.terminate()


async def test_a_cluster_of_its_own_is_deleted_on_exit(postgres_cluster: PostgresCluster) -> None:
    async with PostgresCluster() as pg:
        root = pg.root
        assert root is not None and (root / "data" / "PG_VERSION").exists()
        assert pg.port != postgres_cluster.port
        connection = await asyncpg.connect(pg.dsn)
        assert await connection.fetchval("select 41 + 1") == 42
        await connection.close()
    assert pg.root is None and not root.exists()
    with pytest.raises(OSError):
        await asyncpg.connect(pg.dsn)


def test_missing_binaries_are_a_stated_reason(tmp_path: Path) -> None:
    reason = unavailable_reason(tmp_path)
    assert reason is not None and "initdb" in reason and str(tmp_path) in reason
    with pytest.raises(PostgresError, match="missing"):
        PostgresCluster(bindir=tmp_path).start()
