"""Shared fixtures: loopback fakes of every network peer ember talks to, and request budgets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from core.budget import Budgets
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.feed_server import FeedServer
from tests.fakes.postgres import PostgresCluster, database_name, unavailable_reason
from tests.fakes.slack_server import FakeSlack


# --- fake Anthropic (tests/fakes/anthropic_server.py) -----------------------------------
@pytest.fixture
async def fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    """A fresh fake Messages API (direct, Vertex and Bedrock paths) for one test."""
    async with FakeAnthropic() as fake:
        yield fake


# --- throwaway PostgreSQL (tests/fakes/postgres.py) -------------------------------------
# Synchronous on purpose: no event loop is shared across tests, and a sync fixture can ask
# for these through request.getfixturevalue.
@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One PostgreSQL server for the whole run; skipped where it cannot run."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"no throwaway PostgreSQL here: {reason}")
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """SQLAlchemy URL (postgresql+asyncpg) of the database `ember`, shared by the whole run."""
    return postgres_cluster.url


@pytest.fixture
def postgres_db_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """SQLAlchemy URL of a new, empty database for this test only; dropped afterwards."""
    url = postgres_cluster.create_database()
    yield url
    postgres_cluster.drop_database(database_name(url))


# --- newsletter host (tests/fakes/feed_server.py) ---------------------------------------
@pytest.fixture
async def feed_server() -> AsyncIterator[FeedServer]:
    """A loopback host serving Substack-shaped RSS feeds, with scripted faults."""
    async with FeedServer() as server:
        yield server


# --- fake Discord (tests/fakes/discord_server.py) ----------------------------------------
@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """A fresh fake Discord (REST + gateway) with discord.py pointed at it for this test only:
    `Route.BASE` and `DiscordWebSocket.DEFAULT_GATEWAY` are restored afterwards. Connect a
    client with `tests.fakes.discord_server.run_client(client, fake)`."""
    async with FakeDiscord() as fake:
        with fake.pointed():
            yield fake


# --- fake Slack (tests/fakes/slack_server.py) --------------------------------------------
@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    """A fresh fake Slack (Web API, Socket Mode, signed HTTP) with users U1 alice and U2 bob
    (an admin) and channel C1 #general. Run ember on it with tests.slack_support.running_ember."""
    async with FakeSlack() as fake:
        yield fake


# --- request budgets (core.budget) -------------------------------------------------------


@pytest.fixture
async def budgets() -> AsyncIterator[Budgets]:
    """Request schedulers for a test's platforms, closed afterwards. `for_platform(name)` with no
    policy gives one with no windows: nothing waits (the scheduler's pace has its own tests)."""
    budgets = Budgets()
    yield budgets
    await budgets.aclose()
