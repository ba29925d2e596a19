"""Slack's credentials, proven before ember says it is connected: `auth.test` with the bot
token and, in Socket Mode, `apps.connections.open` with the app token. A token Slack refuses
stops start-up with a configuration error naming its `*_env` key (exit 2), instead of a bot that
connects and then never answers."""

from __future__ import annotations

from collections.abc import Mapping

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from core import ConfigError, Settings, secret

# Slack's answers for a token it will not accept (anything else, e.g. a network error, is not
# the operator's token and is raised as it is).
REFUSED = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "not_allowed_token_type",
    }
)


async def prove_credentials(
    client: AsyncWebClient, settings: Settings, environ: Mapping[str, str] | None = None
) -> None:
    slack = settings.slack
    try:
        await client.auth_test()
    except SlackApiError as error:
        _raise_if_refused(error, settings, "slack.bot_token_env", slack.bot_token_env, "xoxb-")
        raise
    if slack.mode != "socket":
        return
    app_token = secret(slack.app_token_env, "slack.app_token_env", settings.source, environ)
    try:
        await client.apps_connections_open(app_token=app_token)
    except SlackApiError as error:
        _raise_if_refused(error, settings, "slack.app_token_env", slack.app_token_env, "xapp-")
        raise


def _raise_if_refused(error: SlackApiError, settings: Settings, key: str, env: str, prefix: str) -> None:
    code = str(error.response.get("error") or "")
    if code in REFUSED:
        raise ConfigError(
            settings.source,
            key,
            f"Slack refused the token in {env} ({code})",
            f"copy the {prefix}… token from the app's settings page at api.slack.com and export it again",
        ) from None
