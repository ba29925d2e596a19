"""Access by request in Slack (core.access.Notifier): requests go to the moderators' channel
with Approve and Deny buttons; decisions reach the member by DM."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack import render
from core.access import RequestView

log = logging.getLogger(__name__)


class SlackNotifier:
    def __init__(self, client: AsyncWebClient, mod_channel: str) -> None:
        self._client = client
        self._mod_channel = mod_channel

    async def notify_moderators(self, workspace_id: str, request: RequestView) -> None:
        if not self._mod_channel:
            raise LookupError("no moderators' channel: set [slack] mod_channel to a channel id")
        await self._client.chat_postMessage(
            channel=self._mod_channel,
            text=f"Access request from <@{request.user_id}>",
            blocks=render.access_request_blocks(request),
            unfurl_links=False,
            unfurl_media=False,
        )

    async def tell_member(self, workspace_id: str, user_id: str, text: str) -> bool:
        try:
            opened = await self._client.conversations_open(users=user_id)
            await self._client.chat_postMessage(
                channel=str(opened["channel"]["id"]), text=render.trusted(text), unfurl_links=False
            )
        except SlackApiError as error:
            log.info("could not DM %s: %s", user_id, error.response.get("error"))
            return False
        return True
