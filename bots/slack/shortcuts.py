"""Message shortcuts (a message's ⋮ "More actions" menu), for what a slash command or a button
cannot reach:

- "Show the prompt": the prompt of that message's conversation (its thread; in a DM or room
  channel, the channel), shown only to whoever chose it. Slash commands carry no `thread_ts`,
  so `/opus prompt` cannot see a thread; a shortcut carries the message, and with it the thread.
- "Stop the reply": stops what the model is writing in that message's conversation. A native
  stream (chat.startStream) takes Block Kit only when it stops, so it cannot carry a Stop button
  while it is written; the shortcut works on any message of the thread, the stream included.
  Only the asker or a moderator may stop it, as with the button.

The flows are the core's (`Ember.show_prompt`, `Ember.stop_reply_in`); this translates the
payload to a place and answers privately in that thread.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.errors import SlackApiError

from bots.slack import convert, render
from bots.slack.bot import SlackBot
from bots.slack.commands import answer_text
from bots.slack.inbound import channel_of, team_of
from core import Place, User

log = logging.getLogger(__name__)

Payload = dict[str, Any]
# The shortcuts' ids in the app manifest (`bots/slack/manifest.py`) and in their payloads.
SHOW_PROMPT = "ember_show_prompt"
STOP_REPLY = "ember_stop_reply"


def register(app: AsyncApp, bot: SlackBot) -> None:
    @app.message_shortcut(SHOW_PROMPT)
    async def on_show_prompt(ack: AsyncAck, body: Payload) -> None:
        await ack()
        await bot.run(show_prompt(bot, body))

    @app.message_shortcut(STOP_REPLY)
    async def on_stop_reply(ack: AsyncAck, body: Payload) -> None:
        await ack()
        await bot.run(stop_reply(bot, body))


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
    await tell_privately(bot, place, invoker, await answer_text(bot, invoker, result))


async def stop_reply(bot: SlackBot, body: Payload) -> None:
    place = place_of_shortcut(bot, body)
    presser = await bot.people.user(place.workspace_id, str(body["user"]["id"]))
    notice = await bot.ember.stop_reply_in(place, presser)
    if notice:  # stopped: the stream's end is the answer
        await tell_privately(bot, place, presser, render.trusted(notice))


async def tell_privately(bot: SlackBot, place: Place, user: User, text: str) -> None:
    """An ephemeral message for `user` in the conversation's thread (already mrkdwn)."""
    try:
        await bot.client.chat_postEphemeral(
            channel=place.channel_id, user=user.id, text=text, thread_ts=place.thread_id or None
        )
    except SlackApiError as error:
        # Not in that channel (so there is no conversation of ember's there), or it is gone.
        log.info("could not answer a shortcut in %s: %s", place.key, error.response.get("error"))
