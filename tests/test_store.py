"""Storage: migrations from empty, no drift between tables and migrations, transcripts, chat records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from core.chat import transcript
from core.errors import StoreError
from core.events import Message, Place, User
from core.store import Store, Usage
from core.store.chat_repo import ChatRepo, UsageEntry, UsageTotals
from core.store.engine import alembic_config


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Every storage test runs on both databases ember supports."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'ember.db'}"
    else:
        url = str(request.getfixturevalue("postgres_db_url"))
    store = Store.open(url)
    await store.upgrade()
    yield store
    await store.close()


async def test_migrations_from_empty_create_every_table(store: Store) -> None:
    async with store.engine.connect() as conn:
        tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
        if store.dialect == "sqlite":
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
            assert mode == "wal", "readers must not wait for the writer"
    assert set(SQLModel.metadata.tables) <= tables
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert version == [head], "one line of migrations, stamped at its head"
    await store.upgrade()  # idempotent


async def test_migrations_match_the_models(store: Store) -> None:
    def diff(connection):  # type: ignore[no-untyped-def]
        return compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)

    async with store.engine.connect() as conn:
        changes = await conn.run_sync(diff)
    assert changes == [], "models and migrations drifted: add a migration"


def test_sqlite_file_in_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    from core.errors import StoreError

    with pytest.raises(StoreError, match=r"folder .*missing-dir does not exist.*\[database\] url"):
        Store.open(f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'x.db'}")


async def test_unreachable_database_is_a_clear_error() -> None:
    from core.errors import StoreError

    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    bad = Store.open("postgresql+asyncpg://ember:secret-pw@127.0.0.1:1/ember")
    with pytest.raises(StoreError, match="could not migrate the database") as raised:
        await bad.upgrade()
    await bad.close()
    assert "secret-pw" not in str(raised.value), "the password must never reach a message"


PLACE = Place("slack", "T1", "C1", thread_id="100.1")
ALICE = User("U1", "Alice", "slack", "T1")


def message(n: int, text: str, author: User = ALICE) -> Message:
    return Message(id=f"{n}.0", place=PLACE, author=author, text=text)


async def test_a_write_after_the_store_closed_is_a_clear_error(tmp_path: Path) -> None:
    """A late write (a bug of its caller) is refused plainly: on a SQLite file a second worker
    thread on the store's connection would crash the whole process instead."""
    store = Store.open(f"sqlite+aiosqlite:///{tmp_path / 'ember.db'}")
    await store.upgrade()
    await transcript.record_message(store, message(1, "before"))
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await transcript.record_message(store, message(2, "after"))


async def test_transcript_records_once_and_reads_back_in_order(store: Store) -> None:
    for n in range(1, 6):
        await transcript.record_message(store, message(n, f"m{n}"))
    await transcript.record_message(store, message(3, "duplicate delivery"))
    history = await transcript.load_history(store, PLACE, limit=3)
    assert [m.text for m in history] == ["m3", "m4", "m5"]
    before = await transcript.load_history(store, PLACE, limit=10, before_id="2.0")
    assert [m.text for m in before] == ["m1", "m2"]
    await transcript.edit_message(store, PLACE, "4.0", "m4 edited")
    await transcript.delete_message(store, PLACE, "5.0")
    assert [m.text for m in await transcript.load_history(store, PLACE, limit=10)][-2:] == ["m3", "m4 edited"]
    renamed = User("U1", "Alice B.", "slack", "T1")
    await transcript.record_message(store, message(6, "hi", renamed))
    assert await transcript.display_name(store, "slack", "T1", "U1") == "Alice B."


def usage_row(user_id: str, cost: int, at: datetime) -> Usage:
    return Usage(
        created_at=at,
        platform="slack",
        workspace_id="T1",
        user_id=user_id,
        place_key=PLACE.key,
        alias="opus-3",
        provider="anthropic",
        model="m",
        cost_micros=cost,
        trace_id="t",
        outcome="ok",
    )


async def test_forget_removes_a_person_but_keeps_spend(store: Store) -> None:
    await transcript.record_message(store, message(1, "secret"))
    await transcript.record_message(store, message(2, "other", User("U2", "Bob", "slack", "T1")))
    now = datetime.now(UTC)
    last_year = now.replace(year=now.year - 1)
    async with store.session() as session:
        session.add(usage_row("U1", 500, last_year))
        session.add(usage_row("U1", 700, now))
    gone = await transcript.forget_user(store, "slack", "U1")
    assert (gone.messages, gone.usage_rows) == (1, 2)
    assert [m.text for m in await transcript.load_history(store, PLACE, limit=10)] == ["other"]
    assert await transcript.display_name(store, "slack", "T1", "U1") is None
    async with store.session() as session:
        query = text("SELECT user_id, cost_micros FROM usage ORDER BY created_at")
        older, recent = (await session.exec(query)).all()  # type: ignore[call-overload]
    assert tuple(older) == ("forgotten", 500)
    # This month's row names nobody, yet still counts for the member it was.
    assert recent.user_id.startswith("~") and "U1" not in recent.user_id
    mine = await ChatRepo(store).usage_totals(platform="slack", workspace_id="T1", since=now, user_id="U1")
    assert (mine.requests, mine.cost_micros) == (1, 700)
    theirs = await ChatRepo(store).usage_totals(platform="slack", workspace_id="T1", since=now, user_id="U2")
    assert theirs.requests == 0


async def test_names_are_written_when_new_changed_or_forgotten(store: Store) -> None:

    async def name() -> str | None:
        return await transcript.display_name(store, "slack", "T1", "U1")

    await transcript.record_message(store, message(1, "hi"))
    assert await name() == "Alice"
    alicia = User("U1", "Alicia", "slack", "T1")
    await transcript.record_message(store, message(2, "call me Alicia", alicia))
    assert await name() == "Alicia"
    await transcript.forget_user(store, "slack", "U1")
    assert await name() is None
    await transcript.record_message(store, message(3, "back again", alicia))
    assert await name() == "Alicia", "after forget, the next message writes the name again"


async def test_chat_repository_keeps_channel_models_replies_and_usage(store: Store) -> None:
    repo = ChatRepo(store)
    other_thread = Place("slack", "T1", "C1", thread_id="9.0")  # the same channel
    assert await repo.channel_alias(PLACE) is None
    await repo.set_channel_alias(PLACE, "opus-3", "U9")
    await repo.set_channel_alias(other_thread, "sonnet", "U9")  # one setting per channel
    for n in range(1, 4):
        await transcript.record_message(store, message(n, f"m{n}"))
    alias, history = await repo.channel_alias_and_history(PLACE, history_limit=2)
    assert (alias, [m.text for m in history]) == ("sonnet", ["m2", "m3"])
    assert await repo.channel_alias(Place("slack", "T1", "C2")) is None

    await repo.start_reply("r1", message(3, "m3"), "opus-3", status="streaming")
    usage = UsageEntry("U1", "opus-3", "anthropic", "m", 10, 5, 2, 1, 40, 700, "t1", "done")
    said = Message(
        id="4.0", place=PLACE, author=User("ember", "ember", "slack", "T1"), text="hi", from_self=True
    )
    await repo.finish_reply(
        "r1",
        PLACE,
        charged_to=PLACE.workspace_id,
        text="hi",
        handles=["4.0"],
        status="done",
        stop_reason="end_turn",
        usage=[usage],
        own_turn=said,
    )
    reply = await repo.reply("r1", in_writers_turn=True)
    assert reply is not None and reply.place == PLACE
    assert (reply.requester_id, reply.prompt_message_id, reply.handles) == ("U1", "3.0", ["4.0"])
    assert (reply.text, reply.status, reply.stop_reason) == ("hi", "done", "end_turn")
    assert await repo.reply("r2") is None
    assert await transcript.has_spoken(store, PLACE)
    since = datetime(2000, 1, 1, tzinfo=UTC)
    assert await repo.usage_totals(platform="slack", workspace_id="T1", since=since) == UsageTotals(
        1, 18, 700
    )
    assert await repo.usage_totals(platform="slack", workspace_id="T1", since=since, user_id="U2") == (
        UsageTotals(0, 0, 0)
    )
