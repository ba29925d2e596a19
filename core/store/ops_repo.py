"""Read-only queries for operating ember: the health check, `/metrics` and `ember status`.

Nothing here writes; each function is one short read the operator's tools need.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, Table, case, func, select, text
from sqlmodel import SQLModel

from core.store.engine import Store
from core.store.essay_tables import EssayDelivery, EssayFeed
from core.store.models import Usage

OWED = ("pending", "sending")


def _table(model: type[SQLModel]) -> Table:
    # Plain Core columns: typed for SQLAlchemy's select(), unlike the models' attributes.
    return SQLModel.metadata.tables[str(model.__tablename__)]


@dataclass(frozen=True)
class FeedRow:
    url: str
    failures: int
    last_error: str
    last_success_at: datetime | None


@dataclass(frozen=True)
class BackendDay:
    backend: str
    requests: int
    failures: int


@dataclass(frozen=True)
class UsageDay:
    replies: int
    tokens: int
    cost_micros: int
    backends: tuple[BackendDay, ...]


async def ping(store: Store) -> None:
    """Raises when the database does not answer `SELECT 1`."""
    async with store.engine.connect() as session:
        await session.execute(text("SELECT 1"))


async def delivery_counts(store: Store) -> dict[str, int]:
    state = _table(EssayDelivery).c.state
    query = select(state, func.count()).group_by(state)
    async with store.engine.connect() as session:
        rows = (await session.execute(query)).all()
    return {state: count for state, count in rows}


async def oldest_owed(store: Store) -> datetime | None:
    """When the oldest delivery not yet sent was written (None: nothing is owed)."""
    deliveries = _table(EssayDelivery).c
    query = select(func.min(deliveries.created_at)).where(deliveries.state.in_(OWED))
    async with store.engine.connect() as session:
        value: datetime | None = (await session.execute(query)).scalar()
    return value


async def feeds(store: Store) -> list[FeedRow]:
    feed = _table(EssayFeed).c
    query = select(feed.url, feed.failures, feed.last_error, feed.last_success_at).order_by(feed.url)
    async with store.engine.connect() as session:
        rows = (await session.execute(query)).all()
    return [FeedRow(*row) for row in rows]


async def usage_since(store: Store, since: datetime) -> UsageDay:
    """Model requests since `since`: replies (those whose last request did not fail), tokens and
    spend of every request (a broken one is billed too), and per backend how many requests and
    how many failed."""
    usage = _table(Usage).c
    tokens = usage.input_tokens + usage.output_tokens + usage.cache_write_tokens + usage.cache_read_tokens
    failed = func.sum(func.cast(usage.outcome == "error", Integer))
    answered = func.count(func.distinct(case((usage.outcome != "error", usage.trace_id))))
    totals = select(
        answered, func.coalesce(func.sum(tokens), 0), func.coalesce(func.sum(usage.cost_micros), 0)
    ).where(usage.created_at >= since)
    per_backend = (
        select(usage.provider, usage.model, func.count(), func.coalesce(failed, 0))
        .where(usage.created_at >= since)
        .group_by(usage.provider, usage.model)
    )
    async with store.engine.connect() as session:
        replies, token_sum, cost = (await session.execute(totals)).one()
        backends = (await session.execute(per_backend)).all()
    return UsageDay(
        int(replies),
        int(token_sum),
        int(cost),
        tuple(BackendDay(f"{p}:{m}", int(n), int(f)) for p, m, n, f in backends),
    )
