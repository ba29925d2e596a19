"""Access by request in Slack: the `core.access.Notifier` (requests go to the moderators'
channel with Approve and Deny buttons; decisions reach the member by DM) and those buttons'
presses, decided by the core.

Every call waits its turn in Slack's one request scheduler (core.budget), as an access notice:
after a reply's first and final text and command answers, before essay posts and intermediate
updates; the decided request's buttons are a button answer."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack import render
from bots.slack.bot import SlackBot
from bots.slack.inbound import team_of
from bots.slack.traits import PLATFORM, method_key
from core import ACCESS_BUTTON_PREFIX, RequestView, User
from core.budget import Priority, RequestScheduler

log = logging.getLogger(__name__)

Payload = dict[str, Any]
ACCESS_BUTTON = re.compile(rf"^{re.escape(ACCESS_BUTTON_PREFIX)}")
T = TypeVar("T")


async def in_turn(
    scheduler: RequestScheduler,
    priority: Priority,
    method: str,
    call: Callable[[], Awaitable[T]],
    *,
    workspace_id: str,
    channel_id: str = "",
) -> T:
    """Make one Web API call when Slack's budget gives it its turn (the key `method` spends)."""
    sent = await scheduler.send(priority, call, keys=(method_key(method, workspace_id, channel_id),))
    assert sent is not None, "only merged calls and typing come back empty"
    return sent


class SlackNotifier:
    def __init__(
        self, client: AsyncWebClient, mod_channel: str, budget: Callable[[], RequestScheduler]
    ) -> None:
        self._client = client
        self._mod_channel = mod_channel
        self._budget = budget  # Slack's scheduler, which exists once the adapter is attached

    async def notify_moderators(self, workspace_id: str, request: RequestView) -> None:
        if not self._mod_channel:
            raise LookupError("no moderators' channel: set [slack] mod_channel to a channel id")
        await in_turn(
            self._budget(),
            Priority.ACCESS_NOTICE,
            "chat.postMessage",
            lambda: self._client.chat_postMessage(
                channel=self._mod_channel,
                text=f"Access request from <@{request.user_id}>",
                blocks=render.access_request_blocks(request),
                unfurl_links=False,
                unfurl_media=False,
            ),
            workspace_id=workspace_id,
            channel_id=self._mod_channel,
        )

    async def tell_member(self, workspace_id: str, user_id: str, text: str) -> bool:
        budget = self._budget()
        try:
            opened = await in_turn(
                budget,
                Priority.ACCESS_NOTICE,
                "conversations.open",
                lambda: self._client.conversations_open(users=user_id),
                workspace_id=workspace_id,
            )
            channel = str(opened["channel"]["id"])
            await in_turn(
                budget,
                Priority.ACCESS_NOTICE,
                "chat.postMessage",
                lambda: self._client.chat_postMessage(
                    channel=channel, text=render.trusted(text), unfurl_links=False
                ),
                workspace_id=workspace_id,
                channel_id=channel,
            )
        except SlackApiError as error:
            log.info("could not DM %s: %s", user_id, error.response.get("error"))
            return False
        return True


def register(app: AsyncApp, bot: SlackBot) -> None:
    """Approve and Deny presses go to the core; whoever may not decide is told so privately."""

    @app.action(ACCESS_BUTTON)
    async def on_access_button(ack: AsyncAck, body: Payload, action: Payload, respond: AsyncRespond) -> None:
        await ack()
        await bot.run(access_button_pressed(bot, body, action, respond))


async def access_button_pressed(bot: SlackBot, body: Payload, action: Payload, respond: AsyncRespond) -> None:
    presser = await bot.people.user(team_of(body), str(body["user"]["id"]))
    pressed = PressedSlackAccess(bot, body, str(action.get("action_id") or ""), presser, respond)
    await bot.ember.access_button_pressed(pressed)


class PressedSlackAccess:
    """`core.ports.PressedAccessButton` over a block action."""

    def __init__(
        self, bot: SlackBot, body: Payload, button_id: str, presser: User, respond: AsyncRespond
    ) -> None:
        self._bot = bot
        self._respond = respond
        self._channel = str((body.get("channel") or {}).get("id") or "")
        self._ts = str((body.get("message") or {}).get("ts") or "")
        self.button_id = button_id
        self.presser = presser

    async def tell_presser(self, text: str) -> None:
        await self._respond(text=render.trusted(text), response_type="ephemeral", replace_original=False)

    async def retire_request(self, request: RequestView, summary: str) -> None:
        """The buttons give way to who decided, for every moderator who looks later."""
        if not (self._channel and self._ts):
            return
        shown = render.trusted(summary)
        await in_turn(
            self._bot.ember.scheduler(PLATFORM),
            Priority.ANSWER,
            "chat.update",
            lambda: self._bot.client.chat_update(
                channel=self._channel,
                ts=self._ts,
                text=shown,
                blocks=render.access_request_blocks(request, decided=shown),
            ),
            workspace_id=self.presser.workspace_id,
            channel_id=self._channel,
        )
