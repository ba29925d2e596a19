"""Requests a platform's SDK makes on its own (logging in, registering commands, reading history)
spend the same budget as ember's scheduled calls. An aiohttp tracer on the SDK's session counts
them into the scheduler's windows, and a global 429 pauses the scheduler for its Retry-After."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import aiohttp

from core.budget.scheduler import GLOBAL, RequestScheduler, scheduled_here


def retry_after(headers: object) -> float:
    """Seconds from a Retry-After header; 0 when missing or unreadable."""
    value = getattr(headers, "get", lambda _key: None)("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else 0.0
    except ValueError:
        return 0.0


def count_outside_calls(trace: aiohttp.TraceConfig, scheduler: Callable[[], RequestScheduler]) -> None:
    """Add to `trace`: every request not made by the scheduler counts in its global window, and
    every 429 that says it is global pauses the scheduler. `scheduler` is asked per request (it
    exists once the platform's adapter is attached)."""

    async def started(
        session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestStartParams
    ) -> None:
        context.outside = not scheduled_here()
        if context.outside:
            scheduler().outside_call_started(GLOBAL)

    async def ended(
        session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        finish(context)
        headers = params.response.headers
        if params.response.status == 429 and (
            headers.get("X-RateLimit-Global") == "true" or headers.get("X-RateLimit-Scope") == "global"
        ):
            scheduler().pause(GLOBAL, retry_after(headers))

    async def failed(
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestExceptionParams,
    ) -> None:
        finish(context)

    def finish(context: SimpleNamespace) -> None:
        if getattr(context, "outside", False):
            context.outside = False
            scheduler().outside_call_ended(GLOBAL)

    trace.on_request_start.append(started)
    trace.on_request_end.append(ended)
    trace.on_request_exception.append(failed)
