"""`/opus access …` and `/opus usage` through the real command table, runtime and database."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bots.discord.traits import discord_traits
from core.access import AccessService
from core.chat.commands import build_commands
from core.commands import CommandContext, CommandResult
from core.config import settings_from_dict
from core.events import Message, Place, User
from core.runtime import Runtime, open_runtime
from tests.access_support import (
    Clock,
    Members,
    RecordingNotifier,
    RecordingSink,
    add_usage,
    database_url,
    snapshot,
)
from tests.fakes.anthropic_server import FakeAnthropic, Reply

G1 = "G1"
CHANNEL = Place("discord", G1, "C1")
ALICE = User("U1", "Alice", "discord", G1)
BOB = User("U2", "Bob", "discord", G1)
PATRON = User("U5", "Pat", "discord", G1, role_ids=("R-patron",))
HELPER_BOT = User("B1", "Helper", "discord", G1, is_bot=True)
MOD = User("M1", "Mia", "discord", G1, is_moderator=True)
MEMBERS = Members(ALICE, BOB, PATRON, HELPER_BOT, MOD)
COMMANDS = build_commands("/opus")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_url(request, tmp_path)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
async def runtime(db_url: str, clock: Clock, notifier: RecordingNotifier) -> AsyncIterator[Runtime]:
    settings = settings_from_dict(
        {
            "database": {"url": db_url},
            "access": {"member_roles": ["R-patron"], "daily_messages": 20, "monthly_spend_usd": 50},
        }
    )
    async with open_runtime(settings) as runtime:
        runtime.platforms.attach(discord_traits(settings.discord))
        runtime.access = AccessService(settings, runtime.store, clock=clock, platforms=runtime.platforms)
        runtime.access.register_notifier("discord", notifier)
        yield runtime


async def run(runtime: Runtime, who: User, text: str, place: Place = CHANNEL) -> CommandResult:
    return await COMMANDS.execute(text, CommandContext(who, place, runtime, directory=MEMBERS))


async def test_request_pending_grant_status_through_the_commands(
    runtime: Runtime, notifier: RecordingNotifier
) -> None:
    asked = await run(runtime, ALICE, "access request I write poems about tides")
    assert asked.ephemeral and "with the moderators" in asked.text
    assert notifier.posted[0][1].reason == "I write poems about tides"
    twice = await run(runtime, ALICE, "access request again")
    assert "already asked" in twice.text

    pending = await run(runtime, MOD, "access pending")
    assert '#1 <@U1>, asked 2026-03-10 12:00 UTC — "I write poems about tides"' in pending.text
    assert "waiting for the moderators" in (await run(runtime, ALICE, "access status")).text

    granted = await run(runtime, MOD, "access grant <@U1> 30 welcome aboard")
    assert granted.text == (
        "Approved request #1: <@U1> now has access until 2026-04-09 12:00 UTC. They've been told by DM."
    )
    assert (await run(runtime, MOD, "access pending")).text == "No requests are waiting."
    status = await run(runtime, ALICE, "access status")
    assert (
        status.text == "You have access to Claude Opus 3 here until 2026-04-09 12:00 UTC, granted by <@M1>."
    )
    other = await run(runtime, MOD, "access status <@U1>")
    assert other.text.startswith("<@U1> has access")


async def test_list_shows_when_grants_expire(runtime: Runtime) -> None:
    await run(runtime, MOD, "access grant <@U1> 3")
    await run(runtime, MOD, "access grant <@U2>")
    listing = (await run(runtime, MOD, "access list")).text
    assert listing.splitlines() == [
        "2 with access:",
        "<@U1>: expires 2026-03-13 12:00 UTC (in 3 days), granted by <@M1>",
        "<@U2>: no end date, granted by <@M1>",
    ]


async def test_deny_and_revoke_through_the_commands(runtime: Runtime, notifier: RecordingNotifier) -> None:
    await run(runtime, ALICE, "access request")
    denied = await run(runtime, MOD, "access deny <@U1> not this month")
    assert denied.text.startswith("Denied request #1 from <@U1>.")
    assert notifier.told_to("U1")[-1].endswith("Reason: not this month")

    await run(runtime, MOD, "access grant <@U2>")
    revoked = await run(runtime, MOD, "access revoke <@U2> moved away")
    assert revoked.text == "Revoked <@U2>'s access. They've been told by DM."
    again = await run(runtime, MOD, "access revoke <@U2>")
    assert again.text == "<@U2> has no access grant here to revoke; nothing changed."
    by_role = await run(runtime, MOD, "access revoke <@U5>")
    assert "through a member role" in by_role.text


async def test_the_log_shows_recent_changes(runtime: Runtime, clock: Clock) -> None:
    await run(runtime, ALICE, "access request hello")
    clock.advance(minutes=3)
    await run(runtime, MOD, "access grant <@U1> 7")
    await run(runtime, MOD, "access grant <@U2>")
    everyone = (await run(runtime, MOD, "access log")).text.splitlines()
    assert everyone[0] == "Newest first:" and len(everyone) == 4
    alice = (await run(runtime, MOD, "access log <@U1>")).text.splitlines()
    assert alice[1:] == [
        "2026-03-10 12:03 UTC approve: <@M1> → <@U1> (request #1; until 2026-03-17 12:03 UTC)",
        "2026-03-10 12:00 UTC request: <@U1> (hello)",
    ]


MODERATOR_COMMANDS = [
    "access grant <@U1> 7 hi",
    "access deny <@U1> no",
    "access revoke <@U3>",
    "access pending",
    "access list",
    "access log",
    "access status <@U3>",
    "usage <@U3>",
]


@pytest.mark.parametrize("text", MODERATOR_COMMANDS)
async def test_members_cannot_run_moderator_commands(runtime: Runtime, text: str) -> None:
    await run(runtime, ALICE, "access request")
    await run(runtime, MOD, "access grant <@U3>")
    before = await snapshot(runtime.store)
    result = await run(runtime, BOB, text)
    assert result.text == "That command is for moderators only; nothing was changed." and result.ephemeral
    assert await snapshot(runtime.store) == before


def test_every_moderator_command_is_covered() -> None:
    covered = {
        tuple(t.split()[:2]) if t.startswith("access") else (t.split()[0],) for t in MODERATOR_COMMANDS
    }
    marked = {spec.path for spec in COMMANDS.specs if spec.moderator_only and spec.path[0] == "access"}
    assert marked <= covered


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("access grant <@U404>", "I can't find <@U404> here; please check the mention."),
        ("access grant <@B1>", "<@B1> is a bot; access is for people."),
        ("access deny <@B1>", "<@B1> is a bot; access is for people."),
        ("access grant <@U1> 0", "days should be a whole number from 1 to 3650, not 0"),
        ("access grant <@U1> -5", "not -5"),
        ("access grant <@U1> soon", "days should be a whole number, not 'soon'"),
        ("access grant <@U1> 3 " + "x" * 501, "the note is 501 characters long; please keep it to 500"),
        ("access deny <@U2>", "<@U2> has no pending request here; nothing changed."),
        ("access revoke <@U404>", "<@U404> has no access grant here to revoke; nothing changed."),
        ("access grant", "missing user"),
    ],
)
async def test_bad_input_is_answered_and_changes_nothing(runtime: Runtime, text: str, answer: str) -> None:
    before = await snapshot(runtime.store)
    result = await run(runtime, MOD, text)
    assert answer in result.text and result.ephemeral
    assert await snapshot(runtime.store) == before


async def test_a_long_reason_is_refused(runtime: Runtime) -> None:
    result = await run(runtime, ALICE, "access request " + "please " * 100)
    assert "the reason is 699 characters long" in result.text
    assert (await snapshot(runtime.store))["access_requests"] == []


async def test_access_commands_in_a_dm_point_to_a_channel(runtime: Runtime) -> None:
    dm = Place("discord", "", "D1", is_direct=True)
    lonely = User("U9", "Ned", "discord", "")
    result = await run(runtime, lonely, "access request", dm)
    assert result.text == "Access is per server: please run this in a channel there, not in a DM."


async def test_usage_shows_today_and_this_month(runtime: Runtime, clock: Clock) -> None:
    await add_usage(runtime.store, user_id="U1", workspace_id=G1, at=clock.now, count=2, cost_micros=250_000)
    await add_usage(
        runtime.store, user_id="U1", workspace_id=G1, at=clock.now.replace(day=2), cost_micros=1_000_000
    )
    own = (await run(runtime, ALICE, "usage")).text.splitlines()
    assert own == [
        "Your use of Claude Opus 3 here (UTC days and months):",
        "Today: 2 messages, 200 tokens, $0.5000.",
        "This month: 3 messages, 300 tokens, $1.5000.",
        "Daily limit: 20 messages; it resets in 12 h 0 min.",
    ]
    theirs = (await run(runtime, MOD, "usage <@U1>")).text.splitlines()
    assert theirs[0] == "<@U1>'s use of Claude Opus 3 here (UTC days and months):"
    assert theirs[-1] == "This server has spent $1.5000 of its $50.00 monthly budget."


async def test_help_lists_the_access_commands(runtime: Runtime) -> None:
    text = (await run(runtime, ALICE, "help")).text
    for name in ("request", "grant", "deny", "revoke", "pending", "list", "status", "log"):
        assert f"/opus access {name}" in text
    assert "`/opus usage [user]`" in text


# ---------------------------------------------------------------- the operator's command line


def ember(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bots.cli", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent.parent,
        env={**os.environ, "EMBER_CONFIG": ""},
    )


def test_the_operator_grants_lists_and_revokes_from_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "ember.db"
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{db}"\n')
    where = ["--platform", "slack", "--workspace", "T1"]

    granted = ember(
        config, "access", "grant", *where, "--user", "U7", "--days", "14", "--note", "beta tester"
    )
    assert granted.returncode == 0, granted.stderr
    assert granted.stdout.startswith("U7 now has access until ")
    listed = ember(config, "access", "list", *where)
    assert listed.returncode == 0 and listed.stdout.startswith("U7: expires ")
    assert "(in 14 days), granted by the operator" in listed.stdout
    revoked = ember(config, "access", "revoke", *where, "--user", "U7", "--reason", "beta over")
    assert revoked.returncode == 0 and revoked.stdout.startswith("Revoked U7's access.")

    again = ember(config, "access", "revoke", *where, "--user", "U7")
    assert again.returncode == 1
    assert "ember: U7 has no access grant here to revoke; nothing changed." in again.stderr
    bad = ember(config, "access", "grant", *where, "--user", "U7", "--days", "-1")
    assert bad.returncode == 1 and "days should be a whole number from 1 to 3650" in bad.stderr

    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT actor_id, action, target_id, detail FROM access_audit ORDER BY id"
        ).fetchall()
    assert [r[:3] for r in rows] == [("operator", "grant", "U7"), ("operator", "revoke", "U7")]
    assert rows[0][3].endswith("note: beta tester") and rows[1][3] == "reason: beta over"


# ---------------------------------------------------------------- end to end, with the model


async def test_only_members_with_access_reach_the_model(
    tmp_path: Path, fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMBER_TEST_KEY", "test-key")
    settings = settings_from_dict(
        {
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'ember.db'}"},
            "providers": {"anthropic": {"base_url": fake_anthropic.url, "api_key_env": "EMBER_TEST_KEY"}},
        }
    )
    fake_anthropic.script.append(Reply.text(["Hello, ", "Alice."]))
    async with open_runtime(settings) as runtime:
        refused = RecordingSink()
        outcome = await runtime.engine.respond(Message("1", CHANNEL, ALICE, "hi there"), refused)
        assert outcome.status == "denied" and refused.messages == {}
        assert "/opus access request [reason]" in refused.notices[0]
        assert fake_anthropic.requests == []

        await run(runtime, MOD, "access grant <@U1>")
        answered = RecordingSink()
        outcome = await runtime.engine.respond(Message("2", CHANNEL, ALICE, "hi again"), answered)
        assert outcome.status == "done" and answered.notices == []
        assert list(answered.messages.values()) == ["Hello, Alice."]
        assert len(fake_anthropic.requests) == 1


async def test_moderators_see_the_month_by_member_and_by_backend(runtime: Runtime, clock: Clock) -> None:
    await add_usage(runtime.store, user_id="U1", workspace_id=G1, at=clock.now, count=2, cost_micros=250_000)
    await add_usage(runtime.store, user_id="U2", workspace_id=G1, at=clock.now, cost_micros=1_000_000)
    last_month = clock.now.replace(month=clock.now.month - 1)
    await add_usage(runtime.store, user_id="U2", workspace_id=G1, at=last_month, cost_micros=9_000_000)
    await add_usage(runtime.store, user_id="U2", workspace_id="G2", at=clock.now, cost_micros=9_000_000)
    lines = (await run(runtime, MOD, "usage")).text.splitlines()
    report = lines[lines.index("") + 1 :]
    assert report == [
        "This server in March 2026 (UTC): 3 replies, 300 tokens, $1.5000.",
        "By member:",
        "- <@U2>: 1 reply, 100 tokens, $1.0000",
        "- <@U1>: 2 replies, 200 tokens, $0.5000",
        "By model and backend:",
        "- opus-3 on anthropic (claude-3-opus-20240229): 3 replies, 300 tokens, $1.5000",
    ]
    own = (await run(runtime, ALICE, "usage")).text
    assert "By member:" not in own  # members see only their own figures
