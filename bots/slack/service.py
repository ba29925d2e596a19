"""Running the Slack adapter: Socket Mode (an outgoing WebSocket, no public URL) or HTTP (events,
commands and buttons POSTed to `http_port`, each verified with the signing secret — for several
hosts behind a load balancer).

Shutdown is orderly: stop receiving, stop the replies in flight (their text stays, with buttons),
then close the connections.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack.app import build_app, register
from bots.slack.bot import SlackBot
from bots.slack.client import build_client
from bots.slack.credentials import prove_credentials
from bots.slack.files import FileFetcher
from bots.slack.http_guard import RequestGuard
from bots.slack.manifest import EVENTS_PATH
from core import Ember, Runtime, Settings, secret
from core.ops.http_trace import api_call_trace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Running:
    bot: SlackBot
    app: AsyncApp
    # HTTP mode: where Slack must send requests (the manifest's request URL); "" in Socket Mode.
    url: str = ""


def configured(settings: Settings, environ: Mapping[str, str] | None = None) -> bool:
    """True when the secrets this mode needs are in the environment (then `ember run` starts
    Slack). A bot token without its partner is a likely mistake, so it is logged."""
    env = os.environ if environ is None else environ
    slack = settings.slack
    partner = slack.app_token_env if slack.mode == "socket" else slack.signing_secret_env
    if not env.get(slack.bot_token_env):
        return False
    if not env.get(partner):
        log.warning(
            "%s is set but %s is not, so Slack (%s mode) stays off; set it or change [slack] mode",
            slack.bot_token_env,
            partner,
            slack.mode,
        )
        return False
    return True


async def serve(runtime: Runtime) -> None:
    """Run the Slack adapter until cancelled."""
    async with running(runtime):
        await asyncio.Event().wait()


@asynccontextmanager
async def running(
    runtime: Runtime,
    *,
    environ: Mapping[str, str] | None = None,
    host: str = "0.0.0.0",
    port: int | None = None,
) -> AsyncIterator[Running]:
    """The adapter, connected (Socket Mode) or listening (HTTP, on `port` or `http_port`)."""
    settings = runtime.settings
    async with aiohttp.ClientSession(trace_configs=[api_call_trace(runtime.metrics, "slack")]) as session:
        client = build_client(settings, session, environ)
        await prove_credentials(client, settings, environ)
        app = build_app(settings, client, environ)
        files = FileFetcher(session, client.token or "", api_base_url=settings.slack.api_base_url)
        ember = Ember(runtime)
        bot = register(app, ember, client, files=files)
        try:
            if settings.slack.mode == "socket":
                async with socket_mode(app, client, settings, environ) as connected:
                    runtime.readiness.register("slack", connected)
                    yield Running(bot, app)
            else:
                listen = settings.slack.http_port if port is None else port
                signing_secret = secret(
                    settings.slack.signing_secret_env, "slack.signing_secret_env", settings.source, environ
                )
                guard = RequestGuard(app, signing_secret, ember.first_sighting)
                async with http_server(guard, host, listen) as url:
                    runtime.readiness.register("slack", lambda: True)  # listening is all it needs
                    yield Running(bot, app, url)
        finally:
            await bot.shutdown()


@asynccontextmanager
async def socket_mode(
    app: AsyncApp, client: AsyncWebClient, settings: Settings, environ: Mapping[str, str] | None
) -> AsyncIterator[Callable[[], bool]]:
    """Connected in Socket Mode; yields a check that the WebSocket is open (for /readyz)."""
    app_token = secret(settings.slack.app_token_env, "slack.app_token_env", settings.source, environ)
    handler = AsyncSocketModeHandler(app, app_token=app_token, web_client=client)
    await handler.connect_async()  # type: ignore[no-untyped-call]
    log.info("Slack: connected in Socket Mode")

    def connected() -> bool:
        session = handler.client.current_session
        return session is not None and not session.closed and not handler.client.closed

    try:
        yield connected
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]


@asynccontextmanager
async def http_server(guard: RequestGuard, host: str, port: int) -> AsyncIterator[str]:
    web_app = web.Application()
    web_app.add_routes([web.post(EVENTS_PATH, guard.handle)])
    runner = web.AppRunner(web_app, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{bound}{EVENTS_PATH}"
        log.info("Slack: listening for events, commands and buttons at %s", url)
        yield url
    finally:
        await runner.cleanup()
