"""The operator's HTTP endpoints: `/healthz` (the event loop turns), `/readyz` (store and
platforms) and `/metrics` (Prometheus text); with the studio, its published essays too
(`/essays/feed.xml`, `/essays/<slug>`: core.studio.web). Serves until cancelled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from core.ops.metrics import Metrics
from core.ops.readiness import Readiness
from core.studio import StudioService
from core.studio.web import add_routes

log = logging.getLogger(__name__)
METRICS = web.AppKey("metrics", Metrics)
READINESS = web.AppKey("readiness", Readiness)


async def healthz(request: web.Request) -> web.Response:
    # Answering at all proves the loop turns: the handler runs on it.
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    readiness = request.app[READINESS]
    problems = await readiness.not_ready()
    body = {"ready": not problems, "platforms": readiness.platforms(), "not_ready": problems}
    return web.json_response(body, status=503 if problems else 200)


async def metrics(request: web.Request) -> web.Response:
    registry = request.app[METRICS]
    try:
        await registry.refresh()
    except Exception as error:
        # The process's own counters are still worth serving when the store is down.
        log.warning("metrics: could not read the store at scrape time: %s", type(error).__name__)
    body = registry.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def build_app(
    metrics_: Metrics, readiness: Readiness, studio: StudioService | None = None
) -> web.Application:
    app = web.Application()
    if studio is not None:
        add_routes(app, studio)
    app[METRICS] = metrics_
    app[READINESS] = readiness
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


@asynccontextmanager
async def listening(
    metrics_: Metrics, readiness: Readiness, host: str, port: int, studio: StudioService | None = None
) -> AsyncIterator[str]:
    """The endpoints on `host:port` (0: any free port); yields the base URL."""
    runner = web.AppRunner(build_app(metrics_, readiness, studio), handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
        yield f"http://{host}:{bound}"
    finally:
        await runner.cleanup()


async def serve(
    metrics_: Metrics, readiness: Readiness, host: str, port: int, studio: StudioService | None = None
) -> None:
    async with listening(metrics_, readiness, host, port, studio) as url:
        log.info("health: /healthz, /readyz and /metrics at %s", url)
        if studio is not None:
            log.info("essays: the feed at %s/essays/feed.xml", url)
        await asyncio.Event().wait()
