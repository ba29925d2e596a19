"""`serve(runtime)`: run the Discord bot until cancelled, then close the connection cleanly."""

from __future__ import annotations

import os
from collections.abc import Mapping

import discord

from bots.discord.app import make_client
from bots.discord.endpoints import point_discord_at, restore_endpoints
from core import ConfigError, Runtime, Settings, secret
from core.ops.http_trace import api_call_trace


def configured(settings: Settings, environ: Mapping[str, str] | None = None) -> bool:
    """Discord runs when its token's environment variable is set."""
    env = os.environ if environ is None else environ
    return bool(env.get(settings.discord.token_env))


async def serve(runtime: Runtime) -> None:
    settings = runtime.settings
    config = settings.discord
    token = secret(config.token_env, "discord.token_env", settings.source)
    try:
        previous = point_discord_at(config.api_base_url, config.gateway_url)
    except ValueError as error:
        raise ConfigError(settings.source, "discord", str(error)) from None
    try:
        async with make_client(runtime, http_trace=api_call_trace(runtime.metrics, "discord")) as client:
            # /readyz: connected once the gateway said READY, until the client closes.
            runtime.readiness.register("discord", lambda: client.is_ready() and not client.is_closed())
            await client.start(token)
    except discord.LoginFailure:
        raise ConfigError(
            settings.source,
            "discord.token_env",
            f"Discord refused the token in {config.token_env}",
            "reset the bot token in the Developer Portal and export it again",
        ) from None
    finally:
        restore_endpoints(previous)
