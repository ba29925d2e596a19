"""Metering: tokens in, integer micro-dollars out, one row per model request (written by the
chat repository with the reply), and the calendar periods that daily and monthly limits use."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from core.config import Price
from core.store import Store
from core.store.chat_repo import ChatRepo, UsageTotals
from core.store.usage_report import UsageReport, usage_report

__all__ = [
    "Tokens",
    "UsageReport",
    "UsageTotals",
    "cost_micros",
    "day_start",
    "format_dollars",
    "month_report",
    "month_start",
    "next_day",
    "next_month",
    "totals",
    "unreported_output",
]


@dataclass(frozen=True)
class Tokens:
    input: int = 0
    output: int = 0
    cache_write: int = 0
    cache_read: int = 0

    def __add__(self, other: Tokens) -> Tokens:
        return Tokens(
            self.input + other.input,
            self.output + other.output,
            self.cache_write + other.cache_write,
            self.cache_read + other.cache_read,
        )

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_write + self.cache_read


def cost_micros(tokens: Tokens, price: Price) -> int:
    """Cost in micro-dollars. A price in $/M tokens is exactly micro-dollars per token."""
    total = (
        Decimal(tokens.input) * Decimal(str(price.input))
        + Decimal(tokens.output) * Decimal(str(price.output))
        + Decimal(tokens.cache_write) * Decimal(str(price.cache_write))
        + Decimal(tokens.cache_read) * Decimal(str(price.cache_read))
    )
    return int(total.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def unreported_output(reported: Tokens, streamed: str) -> Tokens:
    """A request that ended before `message_delta` (stopped, or broken mid-stream) was billed
    for the output it generated, but the API only reported `message_start`'s count. Count at
    least what arrived, at the context estimate's rate (4 characters a token, rounded up)."""
    estimate = -(-len(streamed) // 4)
    return replace(reported, output=max(reported.output, estimate))


def format_dollars(micros: int) -> str:
    return f"${Decimal(micros) / Decimal(1_000_000):,.4f}"


def day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(now: datetime) -> datetime:
    return day_start(now).replace(day=1)


def next_day(now: datetime) -> datetime:
    return day_start(now) + timedelta(days=1)


def next_month(now: datetime) -> datetime:
    start = month_start(now)
    return (start + timedelta(days=32)).replace(day=1)


async def month_report(
    store: Store, *, platform: str, workspace_id: str, month: datetime, top: int = 10
) -> UsageReport:
    """A workspace's calendar month (the one `month` falls in): totals, the `top` members by
    spend, and every model and backend."""
    start = month_start(month)
    return await usage_report(
        store, platform=platform, workspace_id=workspace_id, since=start, until=next_month(start), top=top
    )


async def totals(
    store: Store, *, platform: str, workspace_id: str, since: datetime, user_id: str | None = None
) -> UsageTotals:
    """Requests, tokens and spend since a moment, for one member or a whole workspace."""
    return await ChatRepo(store).usage_totals(
        platform=platform, workspace_id=workspace_id, since=since, user_id=user_id
    )
