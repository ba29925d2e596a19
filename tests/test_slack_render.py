"""Slack rendering and conversion: pure functions, no network."""

from __future__ import annotations

import json

import pytest

from bots.slack import convert, render
from bots.slack.manifest import manifest
from bots.slack.recent import RecentKeys
from core.chat.controls import Control, control_id
from core.config_platforms import SlackSettings

SPECIAL = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U0123ABC>",
    "<@U0123ABC|admin>",
    "<#C0123|general>",
    "<!subteam^S0123|@mods>",
    "<https://evil.example|https://bank.example>",
    "<mailto:a@b.c|support>",
    "<!date^1392734382^{date}|Feb 18>",
]


@pytest.mark.parametrize("sequence", SPECIAL)
def test_escape_leaves_no_markup(sequence: str) -> None:
    escaped = render.escape(f"hi {sequence} & bye")
    assert "<" not in escaped and ">" not in escaped
    assert convert.unescape(escaped) == f"hi {sequence} & bye"  # what people see is what was said


def test_escape_is_entity_safe() -> None:
    # An entity the model writes must show as written, not as the character it names.
    assert render.escape("&lt;!channel&gt;") == "&amp;lt;!channel&amp;gt;"


def test_fit_keeps_escaped_pieces_within_the_limit() -> None:
    text = "&" * 5000 + " tail"
    pieces = render.fit(text, 1000)
    assert all(len(render.escape(p)) <= 1000 for p in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")


def test_fit_keeps_code_fences_balanced() -> None:
    text = "```python\n" + "x = 1 < 2\n" * 400 + "```"
    pieces = render.fit(text, 1500)
    assert len(pieces) > 1
    assert all(p.count("```") % 2 == 0 for p in pieces)


def test_trusted_keeps_person_mentions_and_escapes_broadcasts() -> None:
    text = render.trusted("Granted **<@U1>** access; reason: <!channel> & <https://x|y>")
    assert text == "Granted *<@U1>* access; reason: &lt;!channel&gt; &amp; &lt;https://x|y&gt;"


def test_reply_blocks_carry_buttons_named_by_reply() -> None:
    blocks = render.reply_blocks("hello", "r1", [Control.REGENERATE, Control.CONTINUE])
    assert blocks[0] == {"type": "markdown", "text": "hello"}
    ids = [e["action_id"] for e in blocks[1]["elements"]]
    assert ids == [control_id(Control.REGENERATE, "r1"), control_id(Control.CONTINUE, "r1")]
    assert render.reply_blocks("x", "r1", []) == [{"type": "markdown", "text": "x"}]


def test_asked_quotes_the_prompt_inertly() -> None:
    assert render.asked("U1", "hi <!here>\nline two") == "<@U1> asked:\n>hi &lt;!here&gt;\n>line two"


def test_readable_turns_slack_markup_into_what_people_read() -> None:
    raw = "<@UBOT> hey <@U1>, see <#C1|general> and <https://x.example|the doc> &amp; <!here> &lt;3"
    text = convert.readable(raw, {"U1": "Ana", "UBOT": "Opus"}, bot_user_id="UBOT")
    assert text == "hey @Ana, see #general and the doc (https://x.example) & @here <3"
    assert convert.readable("well <@UBOT> said", {"UBOT": "Opus"}, bot_user_id="UBOT") == "well @Opus said"


def test_place_of_threads_mentions_and_keeps_dms_and_rooms_whole() -> None:
    # The place's thread is also where the answer goes: "" answers in the channel itself.
    mention = convert.place_of("T1", "C1", "5.0", "", is_direct=False, in_room=False)
    assert (mention.channel_id, mention.thread_id) == ("C1", "5.0")
    follow_up = convert.place_of("T1", "C1", "7.0", "5.0", is_direct=False, in_room=False)
    assert follow_up == mention
    dm = convert.place_of("T1", "D1", "5.0", "", is_direct=True, in_room=False)
    assert (dm.thread_id, dm.is_direct) == ("", True)
    room = convert.place_of("T1", "C9", "5.0", "", is_direct=False, in_room=True)
    assert room.thread_id == ""


def test_recent_keys_claim_once_within_the_window() -> None:
    now = [0.0]
    keys = RecentKeys(ttl=10, clock=lambda: now[0])
    assert keys.claim("a") and not keys.claim("a")
    now[0] = 11
    assert keys.claim("a")


@pytest.mark.parametrize("mode", ["socket", "http"])
def test_manifest(mode: str) -> None:
    data = manifest(SlackSettings(mode=mode), request_url="https://ember.example/slack/events")  # type: ignore[arg-type]
    json.dumps(data)
    command = data["features"]["slash_commands"][0]
    assert command["command"] == "/opus" and command["should_escape"] is True
    assert data["settings"]["socket_mode_enabled"] is (mode == "socket")
    assert "app_mention" in data["settings"]["event_subscriptions"]["bot_events"]
    assert {"chat:write", "users:read", "usergroups:read", "files:read"} <= set(
        data["oauth_config"]["scopes"]["bot"]
    )
    if mode == "http":
        assert command["url"] == data["settings"]["interactivity"]["request_url"]
    else:
        assert "url" not in command and "request_url" not in data["settings"]["interactivity"]
