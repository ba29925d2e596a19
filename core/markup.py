"""The small neutral markup the core writes, and a parser adapters render it from.

Every text the core writes for people (command answers, notices, decisions) uses exactly this:

| neutral                  | means                                  |
| ------------------------ | -------------------------------------- |
| `**bold**`               | bold (may hold mentions)               |
| `_italic_`               | italic (left as written: every platform reads it alike) |
| `` `code` ``             | inline code, shown as written          |
| ```` ```\\nblock\\n``` ```` | a code block, shown as written         |
| `<@ID>`                  | a person, by platform id               |
| `<@&ID>`                 | a role / user group, by platform id    |
| `<#ID>`                  | a channel, by platform id              |

Everything else is plain text. These are the spellings the core already wrote, so Discord
renders them as they are and Slack translates them (`bots/slack/render.py`); the model's own
replies are not core text and never go through `parse`. They go through `visible_links` alone,
on every platform, so no link the model writes can hide where it goes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

MentionKind = Literal["user", "role", "channel"]

# `](` joins a Markdown link's words to its destination; `[label]:` at a line's start (after
# indentation, quote or list markers) defines a reference link's destination.
_LINK_DESTINATION = re.compile(r"\]\(")
_REFERENCE_DEFINITION = re.compile(r"^(?P<lead>[ \t>*+\-0-9.]*\[[^\]\n]*\]):", re.MULTILINE)


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Code:
    text: str
    block: bool = False


@dataclass(frozen=True)
class Mention:
    kind: MentionKind
    id: str


@dataclass(frozen=True)
class Bold:
    parts: tuple[Span, ...]


Span = Text | Code | Mention | Bold

_SIGILS: dict[str, MentionKind] = {"@": "user", "@&": "role", "#": "channel"}
# Code first (nothing inside it is markup), then mentions and bold markers.
_TOKEN = re.compile(
    r"(?P<block>```.*?```)"
    r"|(?P<code>`[^`\n]+`)"
    r"|(?P<mention><(?P<sigil>@&|@|#)(?P<id>[A-Za-z0-9]+)>)"
    r"|(?P<bold>\*\*)",
    re.DOTALL,
)


def parse(text: str) -> tuple[Span, ...]:
    """Neutral markup as spans; a `**` without its partner is plain text."""
    spans, _, _ = _parse(text, 0, inside_bold=False)
    return spans


def _parse(text: str, at: int, *, inside_bold: bool) -> tuple[tuple[Span, ...], int, bool]:
    """Spans from `at` to the end, or (inside bold) to the closing `**`: (spans, end, closed)."""
    spans: list[Span] = []
    plain_from = at
    while (match := _TOKEN.search(text, at)) is not None:
        if match.start() > plain_from:
            spans.append(Text(text[plain_from : match.start()]))
        at = plain_from = match.end()
        if match.group("block"):
            spans.append(Code(match.group("block")[3:-3], block=True))
        elif match.group("code"):
            spans.append(Code(match.group("code")[1:-1]))
        elif match.group("mention"):
            spans.append(Mention(_SIGILS[match.group("sigil")], match.group("id")))
        elif inside_bold:
            return tuple(spans), at, True
        else:
            inner, at, closed = _parse(text, at, inside_bold=True)
            spans.extend([Bold(inner)] if closed else [Text("**"), *inner])
            plain_from = at
    if plain_from < len(text):
        spans.append(Text(text[plain_from:]))
    return tuple(spans), len(text), False


_SPELLING: dict[MentionKind, str] = {kind: sigil for sigil, kind in _SIGILS.items()}


def plain(spans: tuple[Span, ...]) -> str:
    """The neutral spelling back: `plain(parse(text)) == text` for any text."""
    out: list[str] = []
    for span in spans:
        if isinstance(span, Text):
            out.append(span.text)
        elif isinstance(span, Code):
            out.append(f"```{span.text}```" if span.block else f"`{span.text}`")
        elif isinstance(span, Mention):
            out.append(f"<{_SPELLING[span.kind]}{span.id}>")
        else:
            out.append(f"**{plain(span.parts)}**")
    return "".join(out)


def visible_links(text: str) -> str:
    """Model text with no masked links: `[words](https://elsewhere)` shows as
    `[words] (https://elsewhere)`, whose bare URL stays clickable, and a reference definition
    `[ref]: url` becomes text, so `[words][ref]` links nowhere.

    A space is the whole change, and it depends only on the characters before it, so the
    rendering of a reply's first words is a prefix of the rendering of all of it: a native
    stream (Slack) can keep appending. Code is treated alike (`f[i](x)` shows as `f[i] (x)`):
    whether a fence is closed is not known until later, and an unclosed one is code on one
    platform but not the other.
    """
    spaced = _LINK_DESTINATION.sub("] (", text)
    return _REFERENCE_DEFINITION.sub(r"\g<lead> :", spaced)
