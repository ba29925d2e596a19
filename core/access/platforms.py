"""The one place access by request branches on a platform's name.

Every platform fact access needs (what a workspace is called, whether direct messages are
answered, whether a place is the operator's own terminal) goes through `per_platform`, so
these facts can later arrive from the adapters instead, changing only the callers of this."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def per_platform(platform: str, *, discord: T, slack: T, console: T, other: T) -> T:
    """The value for `platform`; `other` for a name ember does not know."""
    if platform == "discord":
        return discord
    if platform == "slack":
        return slack
    if platform == "console":
        return console
    return other
