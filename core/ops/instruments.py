"""Metering at the boundaries the runtime owns: each model client (first token, duration,
tokens, cost, failures) and the access gate (decisions, replies in flight, and refusing new work
while ember shuts down)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from core.chat import AccessGate
from core.chat.providers import BackendError, Delta, ModelClient, TextDelta, UsageSeen
from core.chat.routing import ClientFactory
from core.chat.usage import Tokens, cost_micros, unreported_output
from core.config import Backend, Settings
from core.errors import AccessDenied
from core.essays.delivery import DeliveryReport
from core.essays.poller import FeedReport
from core.events import Place, User
from core.logs import log_context
from core.ops.metrics import Metrics

DRAINING = "ember is restarting and takes no new questions right now; please ask again in a minute."


class MeteredClient:
    """A model client that reports each request's first token, duration, tokens and cost."""

    def __init__(self, inner: ModelClient, provider: str, settings: Settings, metrics: Metrics) -> None:
        self._inner = inner
        self._provider = provider
        self._settings = settings
        self._metrics = metrics

    async def stream(self, model: str, request: Mapping[str, Any]) -> AsyncIterator[Delta]:
        backend = f"{self._provider}:{model}"
        alias = self._alias_of(model)
        started = time.monotonic()
        first = True
        billed, streamed, finished = Tokens(), "", False
        try:
            async for delta in self._inner.stream(model, request):
                if isinstance(delta, TextDelta):
                    streamed += delta.text
                    if first:
                        first = False
                        self._metrics.model_first_token_seconds.labels(backend).observe(
                            time.monotonic() - started
                        )
                elif isinstance(delta, UsageSeen):
                    billed = delta.tokens
                else:
                    billed, finished = delta.tokens, True
                yield delta
        except BackendError as error:
            # The engine tries the next backend (or resumes this one) after every such failure.
            self._metrics.failovers.labels(alias, backend).inc()
            billed = error.billed
            raise
        finally:
            # Every request is billed, however it ended: counted as the usage rows count it.
            self._count(alias, backend, billed if finished else unreported_output(billed, streamed))
            self._metrics.model_duration_seconds.labels(backend).observe(time.monotonic() - started)

    def _count(self, alias: str, backend: str, tokens: Tokens) -> None:
        for kind, value in (
            ("input", tokens.input),
            ("output", tokens.output),
            ("cache_write", tokens.cache_write),
            ("cache_read", tokens.cache_read),
        ):
            self._metrics.tokens.labels(alias, backend, kind).inc(value)
        if alias in self._settings.models:
            micros = cost_micros(tokens, self._settings.models[alias].price)
            self._metrics.cost_dollars.labels(alias, backend).inc(micros / 1_000_000)

    def _alias_of(self, model: str) -> str:
        """The alias serving `model` here (clients are shared per provider, so the request does
        not say; the first alias listing this provider and model is the one priced)."""
        for alias, settings in self._settings.models.items():
            if any(b.provider == self._provider and b.model == model for b in settings.backends):
                return alias
        return ""

    async def close(self) -> None:
        await self._inner.close()


def metered_factory(factory: ClientFactory, settings: Settings, metrics: Metrics) -> ClientFactory:
    def build(backend: Backend) -> ModelClient:
        return MeteredClient(factory(backend), backend.provider, settings, metrics)

    return build


class MeteredGate:
    """Wraps the access gate: counts its decisions and the replies in flight, sets the log
    context of each reply, and once `drain()` is called refuses new replies with a short line
    (replies already admitted go on)."""

    def __init__(self, inner: AccessGate, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self._draining = False
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        # The tasks that asked for a reply: after the engine is done they still finish it on the
        # platform (the final edit and its buttons), so shutdown waits for them too.
        self._callers: set[asyncio.Task[object]] = set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def drain(self) -> None:
        self._draining = True

    async def idle(self) -> None:
        """Until no admitted reply is running."""
        await self._idle.wait()

    async def callers_done(self) -> None:
        """Until every task that was admitted has ended."""
        if self._callers:
            await asyncio.wait(set(self._callers))

    def _note_caller(self) -> None:
        task = asyncio.current_task()
        if task is not None and task not in self._callers:
            self._callers.add(task)
            task.add_done_callback(self._callers.discard)

    async def charged_workspace(self, user: User, place: Place) -> str:
        return await self._inner.charged_workspace(user, place)

    @asynccontextmanager
    async def admit(self, user: User, place: Place, *, taken_over: bool = False) -> AsyncIterator[None]:
        if self._draining:
            self._metrics.access_decisions.labels("draining").inc()
            raise AccessDenied(DRAINING)
        # Every line logged while this reply is worked on says where and for whom (the engine
        # adds the trace id to its own messages).
        channel = place.thread_id or place.channel_id
        ids = {
            "platform": place.platform,
            "workspace": place.workspace_id,
            "channel": channel,
            "user": user.id,
        }
        try:
            with log_context(**ids):
                async with self._admitted(user, place, taken_over):
                    yield
        except AccessDenied:
            self._metrics.access_decisions.labels("denied").inc()
            raise

    @asynccontextmanager
    async def _admitted(self, user: User, place: Place, taken_over: bool) -> AsyncIterator[None]:
        # A gate of two arguments (an embedder's) still admits every reply but a taken-over one.
        admitting = (
            self._inner.admit(user, place, taken_over=True) if taken_over else self._inner.admit(user, place)
        )
        async with admitting:
            self._metrics.access_decisions.labels("admitted").inc()
            self._note_caller()
            self._in_flight += 1
            self._idle.clear()
            try:
                yield
            finally:
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._idle.set()


class EssayMeter:
    """Counts what the essay service did: each failed feed poll and each delivery's outcome."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def polled(self, reports: Sequence[FeedReport]) -> None:
        for report in reports:
            if not report.ok:
                self._metrics.feed_poll_failures.labels(report.url).inc()

    def delivered(self, report: DeliveryReport) -> None:
        outcomes = self._metrics.essay_delivery_outcomes
        for outcome, count in (
            ("sent", report.sent),
            ("retrying", report.retrying),
            ("failed", report.failed),
            ("disabled", report.disabled),
            ("rate_limited", report.rate_limited),
        ):
            if count:
                outcomes.labels(outcome).inc(count)


def count_decision(metrics: Metrics) -> Callable[[str], None]:
    """Counts moderators' decisions on access requests ("approved", "request_denied")."""

    def counted(decision: str) -> None:
        metrics.access_decisions.labels(decision).inc()

    return counted
