"""Rules for single settings values, attached to the schema as `Annotated` metadata.

A field's type says what TOML value it takes; its rules say which of those values make sense:
`http_port: Port = 3000`. Each rule returns the value to keep (a command may be normalised) or
raises `Invalid` with the problem and a fix; the schema walker adds the file and the key. Rules
that belong to one platform (a Discord snowflake, a Slack channel id, each platform's command
grammar) are attached to that platform's own settings section, so no shared code asks which
platform it is looking at.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl, urlsplit


class Invalid(ValueError):
    """A value its rule refuses; the walker turns it into a ConfigError at the key."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


@dataclass(frozen=True)
class Range:
    """A number within bounds: `low`/`high` inclusive, `above` exclusive. NaN and infinity are
    always refused by the walker, before any range is looked at."""

    low: float | None = None
    high: float | None = None
    above: float | None = None
    example: str = ""

    def __call__(self, value: float) -> float:
        too_low = (self.low is not None and value < self.low) or (
            self.above is not None and value <= self.above
        )
        too_high = self.high is not None and value > self.high
        if too_low or too_high:
            raise Invalid(f"{value!r} is {self._wanted()}", self._fix())
        return value

    def _wanted(self) -> str:
        if self.low is not None and self.high is not None:
            return f"not between {_number(self.low)} and {_number(self.high)}"
        if self.above is not None:
            return "not above zero" if self.above == 0 else f"not above {_number(self.above)}"
        if self.low == 0:
            return "negative"
        return f"less than {_number(self.low or 0)}"

    def _fix(self) -> str:
        example = f", e.g. {self.example}" if self.example else ""
        if self.low is not None and self.high is not None:
            return f"use a value from {_number(self.low)} to {_number(self.high)}{example}"
        if self.above is not None:
            return f"use a number above {_number(self.above)}{example}"
        if self.low == 0:
            return f"use 0 or more{example}"
        return f"use {_number(self.low or 0)} or more{example}"


def _number(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


@dataclass(frozen=True)
class NonEmpty:
    """A string that must say something; `fix` tells what belongs there."""

    fix: str

    def __call__(self, value: str) -> str:
        if not value.strip():
            raise Invalid("is empty", self.fix)
        return value


# A POSIX-portable environment variable name. The value is never echoed when it is not one:
# someone who pasted the secret itself into a `*_env` key must not see it printed back.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class EnvName:
    """The name of an environment variable that holds a secret; `optional` allows "" (unused)."""

    example: str
    optional: bool = False

    def __call__(self, value: str) -> str:
        if value == "" and self.optional:
            return value
        if value == "":
            raise Invalid("is empty", f"name the environment variable that holds it, e.g. {self.example!r}")
        if not _ENV_NAME.fullmatch(value):
            raise Invalid(
                "is not an environment variable name (letters, digits and _)",
                f"name the variable that holds the secret, e.g. {self.example!r}, never the secret itself",
            )
        return value


@dataclass(frozen=True)
class WebUrl:
    """An absolute URL with one of `schemes` and a host; `optional` allows "" (the default)."""

    schemes: tuple[str, ...]
    example: str
    optional: bool = False

    def __call__(self, value: str) -> str:
        if value == "" and self.optional:
            return value
        try:
            parts = urlsplit(value)
            absolute = parts.scheme in self.schemes and bool(parts.hostname)
            secret = bool(parts.password) or has_password_parameter(parse_qsl(parts.query))
        except ValueError:  # e.g. a port that is not a number
            absolute, secret = False, False
        if secret:  # checked first: a URL with a password in it is never echoed
            raise Invalid("contains a password", "secrets never go in the file: remove it from the URL")
        if not absolute:
            wanted = " or ".join(f"{s}://" for s in self.schemes)
            problem = f"{value!r} is not an absolute {wanted} URL"
            raise Invalid(problem, f"write it in full, e.g. {self.example!r}")
        return value


# Query parameters that carry a password in the URLs people paste (libpq, asyncpg, and others).
_PASSWORD_PARAMETERS = frozenset({"password", "passwd", "pass", "pwd", "sslpassword"})


def has_password_parameter(query: Iterable[tuple[str, object]]) -> bool:
    return any(name.lower() in _PASSWORD_PARAMETERS for name, _ in query)


# ---------------------------------------------------------------- Discord


@dataclass(frozen=True)
class DiscordId:
    """A Discord snowflake: a 64-bit number written as digits (quoted in TOML)."""

    what: str  # "channel" or "role"
    optional: bool = False

    def __call__(self, value: str) -> str:
        if value == "" and self.optional:
            return value
        if not (value.isascii() and value.isdigit() and 0 < int(value) < 2**64):
            raise Invalid(
                f"{value!r} is not a {self.what} id",
                f"in Discord, right-click the {self.what} → Copy {self.what.title()} ID "
                "(Developer Mode on), and quote it",
            )
        return value


def discord_command(value: str) -> str:
    """Discord's grammar for a command name: 1 to 32 letters, digits, `-` or `_`, lowercase
    where the letter has a lowercase form (Discord refuses the whole command tree otherwise).
    Written with or without the slash; kept without it, as Discord registers it."""
    name = value.strip().removeprefix("/")
    allowed = all(_discord_name_char(ch) for ch in name)
    if not (1 <= len(name) <= 32 and allowed and name == name.lower()):
        raise Invalid(
            f"{value!r} is not a Discord command name",
            'use 1 to 32 lowercase letters, digits, - or _, e.g. "opus"',
        )
    return name


def _discord_name_char(ch: str) -> bool:
    # Discord's own pattern: [-_\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]; those two scripts bring
    # their combining marks.
    category = unicodedata.category(ch)
    if ch in "-_" or category[0] in "LN":
        return True
    return category[0] == "M" and unicodedata.name(ch, "").startswith(("DEVANAGARI", "THAI"))


# ---------------------------------------------------------------- Slack


@dataclass(frozen=True)
class SlackId:
    """A Slack id: one of `prefixes`, then uppercase letters and digits (C012AB3CD)."""

    what: str  # "channel" or "user group"
    prefixes: str
    optional: bool = False

    def __call__(self, value: str) -> str:
        if value == "" and self.optional:
            return value
        if not (value[:1] in self.prefixes and _SLACK_ID_BODY.fullmatch(value[1:])):
            raise Invalid(
                f"{value!r} is not a Slack {self.what} id",
                f"Slack {self.what} ids start with {' or '.join(self.prefixes)}: {_SLACK_WHERE[self.what]}",
            )
        return value


_SLACK_ID_BODY = re.compile(r"[A-Z0-9]+")
_SLACK_WHERE = {
    "channel": "open the channel's details; the id is at the bottom",
    "user": "open the member's profile, ⋮ More → Copy member ID",
    "user group": "open the group under People → User groups; the id is in its link",
}


def slack_command(value: str) -> str:
    """Slack's grammar for a slash command: `/` then a lowercase word without spaces, 32
    characters in all. Written with or without the slash; kept with it, as Slack sends it."""
    name = value.strip().removeprefix("/")
    allowed = all(ch in "-_" or unicodedata.category(ch)[0] in "LN" for ch in name)
    if not (1 <= len(name) <= 31 and allowed and name == name.lower()):
        raise Invalid(
            f"{value!r} is not a Slack slash command",
            'use "/" and a lowercase word of at most 31 letters, digits, - or _, e.g. "/opus"',
        )
    return "/" + name


# ---------------------------------------------------------------- times of day


_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def clock_time(value: str) -> str:
    """A time of day in UTC as HH:MM, 24-hour ("09:00")."""
    if not _CLOCK.fullmatch(value.strip()):
        raise Invalid(f"{value!r} is not a time of day", 'write HH:MM in UTC, 24-hour, e.g. "09:00"')
    return value.strip()


# ---------------------------------------------------------------- the shapes the schema uses

Port = Annotated[int, Range(low=1, high=65535, example="3000")]
Seconds = Annotated[float, Range(above=0, example="60")]
PositiveInt = Annotated[int, Range(low=1)]
CountOrZero = Annotated[int, Range(low=0)]  # where 0 means "none" or "no limit"
ShardId = Annotated[int, Range(low=0, example="0")]
DollarsOrZero = Annotated[float, Range(low=0)]
Temperature = Annotated[float, Range(low=0.0, high=1.0, example="1.0")]

HttpUrl = Annotated[str, WebUrl(("http", "https"), "https://example.substack.com/feed")]
OptionalHttpUrl = Annotated[str, WebUrl(("http", "https"), "https://proxy.internal:8080", optional=True)]
OptionalWsUrl = Annotated[str, WebUrl(("ws", "wss"), "ws://proxy:8081", optional=True)]

DiscordChannel = Annotated[str, DiscordId("channel")]
DiscordRole = Annotated[str, DiscordId("role")]
SlackChannel = Annotated[str, SlackId("channel", "CG")]
SlackUserGroup = Annotated[str, SlackId("user group", "S")]
SlackUser = Annotated[str, SlackId("user", "UW")]
DiscordUser = Annotated[str, DiscordId("user")]
