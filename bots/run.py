"""`ember run` and `ember status`: the commands that run ember as a service and look at it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from core.config import Settings, check_environment, database_url
from core.events import utcnow
from core.ops import status
from core.ops.supervisor import Platform, background_parts, platform_parts, run_parts, stop_on_signals
from core.runtime import Runtime, open_runtime
from core.store import Store

log = logging.getLogger("ember")


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from bots import console

    check_environment(settings)
    async with open_runtime(settings) as runtime:
        platforms = _platforms(runtime)
        if not platforms:
            log.warning("no Discord or Slack token is set; chatting in this terminal instead")
            return await console.chat(runtime, name=None, alias=None, stdin=sys.stdin, out=sys.stdout)
        stop = asyncio.Event()
        with stop_on_signals(stop):
            parts = [*platform_parts(runtime, platforms), *background_parts(runtime)]
            await run_parts(runtime, parts, stop)
    return 0


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    """One screen: version, database, platforms, backends, today's use, deliveries, feeds.
    Exits 1 when something needs attention."""
    from bots.discord import service as discord
    from bots.slack import service as slack

    configured = [
        name for name, adapter in (("discord", discord), ("slack", slack)) if adapter.configured(settings)
    ]
    store = Store.open(database_url(settings))
    try:
        await store.upgrade()
        report = await status.read_status(store, settings, configured, utcnow())
    finally:
        await store.close()
    print("\n".join(report.lines()))
    return 1 if report.attention else 0


@dataclass(frozen=True)
class ServicePlatform:
    """A platform adapter's `serve(runtime)`, named for `ember run`'s parts and /readyz."""

    name: str
    where: str
    serve: Callable[[Runtime], Awaitable[None]]


def _platforms(runtime: Runtime) -> list[Platform]:
    """The platforms whose credentials are present."""
    from bots.discord import service as discord
    from bots.slack import service as slack

    settings = runtime.settings
    platforms: list[Platform] = []
    if discord.configured(settings):
        gateway = settings.discord.gateway_url or "Discord's gateway"
        platforms.append(ServicePlatform("discord", f"connects to {gateway}", discord.serve))
    if slack.configured(settings):
        mode = settings.slack.mode
        where = "Socket Mode" if mode == "socket" else f"listens on port {settings.slack.http_port}"
        platforms.append(ServicePlatform("slack", where, slack.serve))
    return platforms
