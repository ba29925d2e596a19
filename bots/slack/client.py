"""The Slack Web API client ember uses, built from settings: one place for the token, the
server and the retry policy."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from core import Settings, secret

# A 429 is retried after its Retry-After this many times before the call fails.
RATE_LIMIT_RETRIES = 3


def build_client(
    settings: Settings, session: aiohttp.ClientSession | None = None, environ: Mapping[str, str] | None = None
) -> AsyncWebClient:
    """The Web API client: the bot token from the environment, Slack (or `api_base_url`) as the
    server, one shared connection pool, and Retry-After honoured on rate limits."""
    slack = settings.slack
    token = secret(slack.bot_token_env, "slack.bot_token_env", settings.source, environ)
    return AsyncWebClient(
        token=token,
        base_url=slack.api_base_url or AsyncWebClient.BASE_URL,
        session=session,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(),
            AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
        ],
    )
