"""The "Show the prompt" message shortcut: on any message, the prompt of that message's
conversation (its thread; in a DM or room channel, the channel), shown only to whoever asked.

Slash commands carry no `thread_ts`, so `/opus prompt` cannot see a thread; a message shortcut
carries the message, and with it the thread. The flow is the core's (`Ember.show_prompt`);
this translates the payload to a place and shows the answer in that thread, privately.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.errors import SlackApiError

from bots.slack import convert
from bots.slack.bot import SlackBot
from bots.slack.commands import answer_text
from bots.slack.inbound import channel_of, team_of
from core import Place

log = logging.getLogger(__name__)

Payload = dict[str, Any]
# The shortcut's id in the app manifest (`bots/slack/manifest.py`) and in its payloads.
SHOW_PROMPT = "ember_show_prompt"


def register(app: AsyncApp, bot: SlackBot) -> None:
    @app.message_shortcut(SHOW_PROMPT)
    async def on_show_prompt(ack: AsyncAck, body: Payload) -> None:
        await ack()
        await bot.run(show_prompt(bot, body))


def place_of_shortcut(bot: SlackBot, body: Payload) -> Place:
    """The conversation the chosen message belongs to, as a message event there would find it."""
    channel = channel_of(body)
    message: Payload = body.get("message") or {}
    ts = str(message.get("ts") or body.get("message_ts") or "")
    is_direct = channel.startswith("D")
    in_room = channel in bot.settings.room_channels
    thread_ts = str(message.get("thread_ts") or "")
    return convert.place_of(team_of(body), channel, ts, thread_ts, is_direct=is_direct, in_room=in_room)


async def show_prompt(bot: SlackBot, body: Payload) -> None:
    place = place_of_shortcut(bot, body)
    invoker = await bot.people.user(place.workspace_id, str(body["user"]["id"]))
    result = await bot.ember.show_prompt(place)
    text = await answer_text(bot, invoker, result)
    try:
        await bot.client.chat_postEphemeral(
            channel=place.channel_id, user=invoker.id, text=text, thread_ts=place.thread_id or None
        )
    except SlackApiError as error:
        # Not in that channel (so there is no conversation of ember's there), or it is gone.
        log.info("could not show the prompt in %s: %s", place.key, error.response.get("error"))
