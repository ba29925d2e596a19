"""Counting a platform's API calls and its 429s where its SDK sends them: both discord.py
(`http_trace=`) and the Slack client (its aiohttp session's `trace_configs`) accept an aiohttp
TraceConfig, so one small tracer serves both."""

from __future__ import annotations

from types import SimpleNamespace

import aiohttp

from core.ops.metrics import Metrics


def api_call_trace(metrics: Metrics, platform: str) -> aiohttp.TraceConfig:
    calls = metrics.platform_calls.labels(platform)
    limited = metrics.platform_429s.labels(platform)

    async def ended(
        session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        calls.inc()
        if params.response.status == 429:
            limited.inc()

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(ended)
    return trace
