"""Prompt strategies: how the model is invited to write an essay.

Its stewards experiment with the context an essay is written in, so each strategy is a small
function from what is at hand to one Messages API request:

- `minimal`: a short invitation to write, nothing else;
- `past_entries`: the last N published essays in context, oldest first;
- `with_news`: recent items from the configured news feeds in context.

The request is kept whole with the draft (core.store.studio_repo), so a reader can always see
exactly what the model was asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from core.studio import wording

Strategy = Literal["minimal", "past_entries", "with_news"]
STRATEGIES: tuple[Strategy, ...] = ("minimal", "past_entries", "with_news")


@dataclass(frozen=True)
class NewsItem:
    title: str
    summary: str
    link: str
    published_at: datetime | None


@dataclass(frozen=True)
class Context:
    """What a strategy may put before the model."""

    now: datetime
    past_entries: Sequence[str] = ()
    news: Sequence[NewsItem] = ()


def build_request(
    strategy: Strategy, context: Context, *, max_tokens: int, temperature: float
) -> dict[str, Any]:
    """The Messages API request for `strategy` (without the model: each backend names its own)."""
    parts = [wording.invitation(context.now)]
    if strategy == "past_entries":
        parts.insert(0, wording.past_entries(context.past_entries))
    elif strategy == "with_news":
        parts.insert(0, wording.news(context.news))
    return {
        "system": wording.STUDIO_SYSTEM,
        "messages": [{"role": "user", "content": "\n\n".join(parts)}],
        "max_tokens": max_tokens,
        "temperature": temperature,
    }
