"""The store's operational facts, read at scrape time for `/metrics` and by `ember status`."""

from __future__ import annotations

from datetime import UTC, datetime

from core.chat.routing import Router
from core.config import Settings
from core.ops.metrics import StoreFacts
from core.store import Store, ops_repo


def as_utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; ember only ever writes UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def store_facts(store: Store, now: datetime) -> StoreFacts:
    oldest = await ops_repo.oldest_owed(store)
    age = (now - as_utc(oldest)).total_seconds() if oldest else 0.0
    failing = {f.url: f.failures for f in await ops_repo.feeds(store) if f.failures}
    return StoreFacts(await ops_repo.delivery_counts(store), max(0.0, age), failing)


def breaker_states(router: Router, settings: Settings) -> dict[str, bool]:
    """Each configured backend (`provider:model`) and whether its breaker is open now."""
    return {
        f"{b.provider}:{b.model}": router.breaker(b).is_open
        for model in settings.models.values()
        for b in model.backends
    }
