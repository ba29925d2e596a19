"""Stand-ins for what a platform adapter gives access by request (a notifier, a directory),
a clock tests can move, and helpers to look at the access tables directly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import select

from core.access import RequestView
from core.events import User
from core.store import Store, Usage

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class RecordingNotifier:
    """Records what the adapter would post to moderators and DM to members."""

    def __init__(self, *, dms_open: bool = True) -> None:
        self.dms_open = dms_open
        self.posted: list[tuple[str, RequestView]] = []
        self.told: list[tuple[str, str, str]] = []

    async def notify_moderators(self, workspace_id: str, request: RequestView) -> None:
        self.posted.append((workspace_id, request))

    async def tell_member(self, workspace_id: str, user_id: str, text: str) -> bool:
        self.told.append((workspace_id, user_id, text))
        return self.dms_open

    def told_to(self, user_id: str) -> list[str]:
        return [t for _, who, t in self.told if who == user_id]


class BrokenNotifier:
    """An adapter whose platform calls all fail."""

    async def notify_moderators(self, workspace_id: str, request: RequestView) -> None:
        raise RuntimeError("platform is down")

    async def tell_member(self, workspace_id: str, user_id: str, text: str) -> bool:
        raise RuntimeError("platform is down")


class Members:
    """A directory of the people in each workspace, as an adapter would answer."""

    def __init__(self, *users: User) -> None:
        self._users = {(u.workspace_id, u.id): u for u in users}

    async def lookup_user(self, workspace_id: str, user_id: str) -> User | None:
        return self._users.get((workspace_id, user_id))


async def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the access tables, to prove a refused command changed nothing."""
    tables = {}
    async with store.engine.connect() as conn:
        for table in ("access_grants", "access_requests", "access_audit"):
            rows = (await conn.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2, 3"))).all()
            tables[table] = [tuple(row) for row in rows]
    return tables


async def add_usage(
    store: Store,
    *,
    user_id: str,
    workspace_id: str,
    at: datetime,
    platform: str = "discord",
    count: int = 1,
    tokens: int = 100,
    cost_micros: int = 1000,
) -> None:
    async with store.session() as session:
        for n in range(count):
            session.add(
                Usage(
                    created_at=at,
                    platform=platform,
                    workspace_id=workspace_id,
                    user_id=user_id,
                    place_key=f"{platform}:{workspace_id}:C1:-",
                    alias="opus-3",
                    provider="anthropic",
                    model="claude-3-opus-20240229",
                    input_tokens=tokens,
                    cost_micros=cost_micros,
                    trace_id=f"t{n}",
                    outcome="done",
                )
            )


def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """SQLite in tmp_path, or a fresh PostgreSQL database from the shared fixture."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'ember.db'}"
    try:
        return str(request.getfixturevalue("postgres_db_url"))
    except pytest.FixtureLookupError:
        pytest.skip("the postgres_db_url fixture is not available")


class RecordingSink:
    """A reply sink as an adapter would give: keeps what was posted and noticed."""

    max_chars = 2000
    edit_interval = 0.0

    def __init__(self) -> None:
        self.messages: dict[str, str] = {}
        self.notices: list[str] = []

    async def post(self, text: str) -> str:
        handle = f"m{len(self.messages) + 1}"
        self.messages[handle] = text
        return handle

    async def edit(self, handle: str, text: str, *, final: bool = False) -> None:
        self.messages[handle] = text

    async def notice(self, text: str) -> None:
        self.notices.append(text)


async def table_rows(store: Store, table: Any) -> list[Any]:
    """Every row of an ORM table, as the store holds it now."""
    async with store.reading() as session:
        return list((await session.exec(select(table))).all())
