"""The core's neutral markup: parsed once, rendered by each adapter. Pure functions."""

from __future__ import annotations

import pytest

from bots.discord.render import rendered
from bots.slack.render import trusted
from core.markup import Bold, Code, Mention, Text, parse, plain

SAMPLES = [
    "This channel talks to **Opus** (`opus-3`). Available: `a`, `b`.",
    "Granted **<@U1>** access until <#C9>; ask the <@&S1> group",
    "a lone ** star and `code **not bold**`",
    "```\nx = 1 ** 2 < 3\n```\nthen **more",
    "",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_parse_then_plain_gives_the_text_back(text: str) -> None:
    assert plain(parse(text)) == text


@pytest.mark.parametrize("text", SAMPLES)
def test_discord_renders_the_neutral_markup_as_written(text: str) -> None:
    assert rendered(text) == text


def test_parse_names_each_span() -> None:
    assert parse("Hi **<@U1> and `x`** in <#C2>, <@&S3>") == (
        Text("Hi "),
        Bold((Mention("user", "U1"), Text(" and "), Code("x"))),
        Text(" in "),
        Mention("channel", "C2"),
        Text(", "),
        Mention("role", "S3"),
    )
    assert parse("```\n**a**\n```") == (Code("\n**a**\n", block=True),)
    assert parse("**open") == (Text("**"), Text("open"))


def test_slack_renders_bold_code_and_mentions_and_escapes_the_rest() -> None:
    assert (
        trusted("**<@U1>** in <#C1>: <!channel> & <@&S1>") == "*<@U1>* in <#C1>: &lt;!channel&gt; &amp; @S1"
    )
    # Inside code nothing is markup, but Slack's three characters are still escaped.
    assert trusted("`a **b** <c>`") == "`a **b** &lt;c&gt;`"
    assert trusted("```\n1 < 2\n```") == "```\n1 &lt; 2\n```"
    # Ids that are not Slack's (a Discord id in shared text) are shown, not parsed.
    assert trusted("<@123> <#456>") == "&lt;@123&gt; &lt;#456&gt;"
