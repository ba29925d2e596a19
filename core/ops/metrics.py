"""Every metric ember exports, on one registry per process (held by `Metrics`, never global).

Counters and histograms are fed where things happen; values that live in the store (essay
deliveries, feeds) or in other objects (breakers) are read at scrape time by `refresh`, which the
`/metrics` handler awaits just before rendering.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Seconds: chat latency spans sub-second first words to minute-long replies.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 60.0, 120.0)
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True)
class StoreFacts:
    """What the store says at scrape time (see core.store.ops_repo)."""

    deliveries: dict[str, int]
    oldest_owed_seconds: float
    failing_feeds: dict[str, int]  # feed url -> consecutive failures


Refresher = Callable[[], Awaitable[StoreFacts]]
BreakerStates = Callable[[], dict[str, bool]]  # backend name -> is open


class Metrics:
    """The process's metrics. Tests and `ember run` each build their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.replies = Counter(
            "ember_replies", "Replies finished, by platform and outcome", ["platform", "outcome"], registry=r
        )
        self.first_text_seconds = Histogram(
            "ember_first_visible_text_seconds",
            "From a message arriving to the reply's first words on the platform",
            ["platform"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_first_token_seconds = Histogram(
            "ember_model_first_token_seconds",
            "From a model request to its first token",
            ["backend"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_duration_seconds = Histogram(
            "ember_model_duration_seconds",
            "A model request from start to its last token",
            ["backend"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "ember_model_tokens",
            "Tokens used, by alias, backend and kind",
            ["alias", "backend", "kind"],
            registry=r,
        )
        self.cost_dollars = Counter(
            "ember_model_cost_dollars",
            "Spend in dollars, by alias and backend",
            ["alias", "backend"],
            registry=r,
        )
        self.failovers = Counter(
            "ember_model_failovers",
            "A backend failed and the next was tried",
            ["alias", "backend"],
            registry=r,
        )
        self.breaker_open = Gauge(
            "ember_backend_breaker_open",
            "1 while a backend rests after repeated failures",
            ["backend"],
            registry=r,
        )
        self.platform_calls = Counter(
            "ember_platform_api_calls", "Calls to a platform's API", ["platform"], registry=r
        )
        self.platform_429s = Counter(
            "ember_platform_rate_limited", "Platform API calls answered 429", ["platform"], registry=r
        )
        self.loop_lag_seconds = Histogram(
            "ember_event_loop_lag_seconds",
            "How late the event loop ran a timer",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.deliveries = Gauge("ember_essay_deliveries", "Essay deliveries by state", ["state"], registry=r)
        self.oldest_owed_seconds = Gauge(
            "ember_essay_oldest_owed_seconds", "Age of the oldest delivery not yet sent (0: none)", registry=r
        )
        self.feed_failures = Gauge(
            "ember_feed_consecutive_failures", "Consecutive failures of each feed", ["feed"], registry=r
        )
        self.access_decisions = Counter(
            "ember_access_decisions",
            "Access checks and moderator decisions, by result",
            ["decision"],
            registry=r,
        )
        self.essay_delivery_outcomes = Counter(
            "ember_essay_delivery_outcomes",
            "Essay delivery attempts by outcome (sent, retrying, failed, disabled, rate_limited)",
            ["outcome"],
            registry=r,
        )
        self.feed_poll_failures = Counter(
            "ember_feed_poll_failures", "Feed polls that failed, by feed", ["feed"], registry=r
        )
        self._store_facts: Refresher | None = None
        self._breakers: BreakerStates | None = None

    def read_at_scrape(self, store_facts: Refresher | None, breakers: BreakerStates | None) -> None:
        """Where `refresh` reads the store's and the router's state."""
        self._store_facts, self._breakers = store_facts, breakers

    async def refresh(self) -> None:
        if self._breakers is not None:
            for backend, is_open in self._breakers().items():
                self.breaker_open.labels(backend).set(1 if is_open else 0)
        if self._store_facts is None:
            return
        facts = await self._store_facts()
        for state in ("pending", "sending", "sent", "failed", "disabled"):
            self.deliveries.labels(state).set(facts.deliveries.get(state, 0))
        self.oldest_owed_seconds.set(facts.oldest_owed_seconds)
        self.feed_failures.clear()
        for feed, failures in facts.failing_feeds.items():
            self.feed_failures.labels(feed).set(failures)

    def render(self) -> bytes:
        return generate_latest(self.registry)


@dataclass
class LoopLagSampler:
    """Sleeps a fixed interval and records how much later than asked it woke: a busy or
    blocked event loop shows here before anyone notices slow replies."""

    metrics: Metrics
    interval: float = 0.5
    last_lag: float = field(default=0.0, init=False)

    async def run(self) -> None:
        while True:
            asked = time.monotonic()
            await asyncio.sleep(self.interval)
            self.last_lag = max(0.0, time.monotonic() - asked - self.interval)
            self.metrics.loop_lag_seconds.observe(self.last_lag)
