"""Links the model writes show where they go, on Discord and on Slack, on every reply path:
the real discord.py and slack-bolt against the fakes, and the one neutral rule they share."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bots.slack.convert import unescape
from core.markup import visible_links
from tests import discord_support, slack_support
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.slack_server import FakeSlack

DISGUISED = (
    "Read [the official docs](https://evil.example/steal) or [this][ref].\n"
    "[ref]: https://evil.example/ref\n"
    "Plain https://docs.example.com/page stays as it is."
)
# A Markdown inline link: `[words](` with nothing between `]` and `(`.
MASKED = re.compile(r"\[[^\]]*\]\(")
# A reference definition at a line's start: `[label]:` with nothing between `]` and `:`.
DEFINITION = re.compile(r"^[ \t>*+\-0-9.]*\[[^\]\n]*\]:", re.MULTILINE)


def assert_every_destination_shows(shown: str) -> None:
    assert not MASKED.search(shown) and not DEFINITION.search(shown), shown
    for url in ("https://evil.example/steal", "https://evil.example/ref", "https://docs.example.com/page"):
        assert url in shown  # in full, where a platform makes it a plain, clickable URL


def test_the_rule_is_a_prefix_of_itself_so_a_stream_can_keep_appending() -> None:
    whole = visible_links(DISGUISED)
    for end in range(len(DISGUISED) + 1):
        assert whole.startswith(visible_links(DISGUISED[:end])), DISGUISED[:end]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("[a](https://x)", "[a] (https://x)"),
        ("[a](<https://x>)", "[a] (<https://x>)"),
        ("> [r]: https://x", "> [r] : https://x"),
        ("def f() -> list[int]:\n    return [1]", "def f() -> list[int]:\n    return [1]"),
        ("see https://x.example/a_(b)", "see https://x.example/a_(b)"),
    ],
)
def test_only_link_syntax_changes(text: str, shown: str) -> None:
    assert visible_links(text) == shown


async def test_discord_replies_show_every_link_destination(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    half = len(DISGUISED) // 2  # the link arrives in two deltas: the edit shows it unmasked too
    fake_anthropic.script.append(Reply.text([DISGUISED[:half], DISGUISED[half:]]))
    settings = discord_support.ember_settings(tmp_path, fake_anthropic)
    async with discord_support.running_ember(fake_discord, fake_anthropic, settings) as ember:
        general = fake_discord.channel("general")
        await fake_discord.say(fake_discord.user("alice"), general, f"{fake_discord.bot.mention} links?")
        await ember.wait(discord_support.finished)
        [answer] = discord_support.bot_messages(fake_discord, general)
    assert_every_destination_shows(answer["content"])
    for write in discord_support.message_writes(fake_discord.requests):
        content = write.body.get("content") if isinstance(write.body, dict) else None
        if content:
            assert not MASKED.search(content), content


@pytest.mark.parametrize("streaming", [True, False], ids=["native-stream", "post-and-update"])
async def test_slack_replies_show_every_link_destination(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, streaming: bool
) -> None:
    if not streaming:
        fake_slack.disable_streaming("unknown_method")
    half = len(DISGUISED) // 2
    fake_anthropic.script.append(Reply.text([DISGUISED[:half], DISGUISED[half:]]))
    settings = slack_support.ember_settings(tmp_path, fake_anthropic, fake_slack)
    async with slack_support.running_ember(fake_slack, fake_anthropic, settings) as ember:
        mention = fake_slack.app_mention("C1", "U1", "links?")
        await ember.deliver(mention)
        await ember.wait(slack_support.finished)
        await ember.idle()
    assert_every_destination_shows(unescape(slack_support.shown_text(fake_slack, "C1", mention["ts"])))
    writes = slack_support.message_writes(fake_slack.calls)
    assert bool(fake_slack.calls_to("chat.postMessage")) is not streaming  # the path under test
    # Every write, the stream's appended pieces and the blocks alike, carries no masked link.
    for call in writes:
        for key in ("text", "markdown_text"):
            assert not MASKED.search(unescape(str(call.args.get(key) or "")))
        for block in call.args.get("blocks") or []:
            assert not MASKED.search(unescape(str(block.get("text", ""))))
    if streaming:  # the stream kept appending: the unmasked text grew as a prefix of itself
        assert not fake_slack.calls_to("chat.update")
