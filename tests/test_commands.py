"""The one command grammar: parsing, usage lines, and the moderator check."""

from __future__ import annotations

from typing import Any

import pytest

from core.chat.commands import build_commands
from core.commands import CommandContext, CommandResult, Commands, CommandSpec, Param
from core.errors import NotModerator, UsageError
from core.events import Place, User


async def echo(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    return CommandResult(repr(sorted(args.items())))


SPECS = [
    CommandSpec(
        ("access", "grant"),
        "grant access",
        echo,
        (
            Param("user", "user", "who", required=True),
            Param("days", "int", "how long"),
            Param("note", "text", "why", rest=True),
        ),
        moderator_only=True,
    ),
    CommandSpec(
        ("essays", "subscribe"),
        "subscribe",
        echo,
        (Param("channel", "channel", "where"), Param("role", "role", "ping")),
    ),
    CommandSpec(("ask",), "ask", echo, (Param("prompt", "text", "what", required=True, rest=True),)),
]
PLACE = Place("slack", "T1", "C1")
MOD = User("U1", "Mod", "slack", "T1", is_moderator=True)
MEMBER = User("U2", "Member", "slack", "T1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("access grant <@U123|alice> 7 welcome back", {"user": "U123", "days": 7, "note": "welcome back"}),
        ("access grant <@!456>", {"user": "456"}),
        ("Access Grant U999 30", {"user": "U999", "days": 30}),
        ("essays subscribe <#C42|general> <!subteam^S7|@readers>", {"channel": "C42", "role": "S7"}),
        ("essays subscribe <#123> <@&77>", {"channel": "123", "role": "77"}),
        ("ask what is 'a koan'?", {"prompt": "what is a koan?"}),
        ("ask it's fine", {"prompt": "it's fine"}),
    ],
)
def test_parse(text: str, expected: dict[str, Any]) -> None:
    _, args = Commands(SPECS).parse(text)
    assert args == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("access grant", "missing user\nUsage: /opus access grant <user> [days] [note...]"),
        ("access grant <@U1> seven", "days should be a whole number, not 'seven'"),
        ("access grant #general", "user should be a user mention"),
        ("essays subscribe <#C1> <@&2> extra", "too many arguments: 'extra'"),
        ("dance", "unknown command 'dance'"),
        ("", "unknown command '(nothing)'"),
    ],
)
def test_malformed_input_gets_a_usage_line(text: str, fragment: str) -> None:
    with pytest.raises(UsageError) as caught:
        Commands(SPECS).parse(text)
    assert fragment in str(caught.value)


async def test_moderator_only_commands_are_checked_in_the_core() -> None:
    commands = Commands(SPECS)
    spec, args = commands.parse("access grant <@U5>")
    with pytest.raises(NotModerator):
        await commands.run(spec, args, CommandContext(MEMBER, PLACE, runtime=None))
    result = await commands.execute("access grant <@U5>", CommandContext(MEMBER, PLACE, runtime=None))
    assert result.text == "That command is for moderators only; nothing was changed." and result.ephemeral
    ok = await commands.execute("access grant <@U5> 3", CommandContext(MOD, PLACE, runtime=None))
    assert ok.text == "[('days', 3), ('user', 'U5')]"


async def test_help_lists_every_command() -> None:
    commands = build_commands("/opus")
    result = await commands.execute("help", CommandContext(MEMBER, PLACE, runtime=None))
    for name in ("ask", "prompt", "model", "forget", "help"):
        assert f"/opus {name}" in result.text


async def test_a_command_that_breaks_answers_privately_with_a_trace_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
        raise RuntimeError("the database went away")

    commands = Commands([CommandSpec(("status",), "status", broken, ())])
    result = await commands.execute("status", CommandContext(MEMBER, PLACE, runtime=None))
    assert result.ephemeral
    assert result.text.startswith("Sorry, that command failed on ember's side (trace ")
    trace = result.text.removesuffix(").").rsplit(" ", 1)[-1]
    assert any(trace in r.getMessage() and r.exc_info for r in caplog.records), "the log carries the trace"
    assert "database went away" not in result.text
