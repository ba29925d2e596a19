"""Slack events → the core: messages, edits, deletions and reply-button presses become
neutral values and small ports (`core.ports`), handed to `Ember`, which runs the flow.

A message is answered once however often it arrives: Slack's retries and the
`app_mention`/`message` pair are caught here by event id and by (channel, ts) in memory, and
across hosts by the core, which claims the message in its store before answering.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError

from bots.slack import convert, render
from bots.slack.bot import SlackBot
from bots.slack.sink import SlackSink
from core import REPLY_BUTTON_PREFIX, Control, Message, Place, Said, Trigger, User

Payload = dict[str, Any]

log = logging.getLogger(__name__)

REPLY_BUTTON = re.compile(rf"^{REPLY_BUTTON_PREFIX}:(?:{'|'.join(c.value for c in Control)}):")


def register(app: AsyncApp, bot: SlackBot) -> None:
    @app.event("app_mention")
    async def on_mention(body: Payload, event: Payload, context: AsyncBoltContext) -> None:
        await bot.run(message_event(bot, body, event, context))

    @app.event("message")
    async def on_message(body: Payload, event: Payload, context: AsyncBoltContext) -> None:
        await bot.run(message_event(bot, body, event, context))

    @app.action(REPLY_BUTTON)
    async def on_reply_button(ack: AsyncAck, body: Payload, action: Payload, respond: AsyncRespond) -> None:
        await ack()
        await bot.run(reply_button_pressed(bot, body, action, respond))


async def message_event(bot: SlackBot, body: Payload, event: Payload, context: AsyncBoltContext) -> None:
    event_id = str(body.get("event_id") or "")
    if event_id and not bot.recent.claim(f"event:{event_id}"):
        return  # Slack delivered this event again
    subtype = event.get("subtype")
    if subtype in ("message_changed", "message_deleted"):
        await follow_change(bot, body, event, context)
        return
    if subtype not in convert.SPOKEN_SUBTYPES or event.get("hidden"):
        return
    channel, ts = str(event["channel"]), str(event["ts"])
    place = place_of(bot, body, channel, ts, str(event.get("thread_ts") or ""), event)
    await bot.ember.message_arrived(ArrivedSlackMessage(bot, event, place, context))


def place_of(bot: SlackBot, body: Payload, channel: str, ts: str, thread_ts: str, event: Payload) -> Place:
    team = str(body.get("team_id") or "")
    is_direct = event.get("channel_type") == "im" or channel.startswith("D")
    in_room = channel in bot.settings.room_channels
    return convert.place_of(team, channel, ts, thread_ts, is_direct=is_direct, in_room=in_room)


def slack_facts(bot: SlackBot, event: Payload, place: Place, context: AsyncBoltContext) -> Trigger:
    """What Slack itself says about a message; the core adds what only its store knows."""
    own_user, own_bot = context.bot_user_id or "", context.bot_id or ""
    sender = str(event.get("user") or "")
    bot_id = str(event.get("bot_id") or "")
    from_self = bool(sender and sender == own_user) or bool(bot_id and bot_id == own_bot)
    return Trigger(
        mentions_bot=convert.mentions(str(event.get("text") or ""), own_user),
        # A thread under ember's own message (an `ask` question, an essay announcement).
        in_bot_thread=not from_self
        and bool(event.get("parent_user_id"))
        and event.get("parent_user_id") == own_user,
        is_direct=place.is_direct,
        in_room_channel=place.channel_id in bot.settings.room_channels,
        from_self=from_self,
        from_bot=bool(bot_id) or event.get("subtype") == "bot_message",
    )


class ArrivedSlackMessage:
    """`core.ports.ArrivedMessage` over a Slack message event."""

    def __init__(self, bot: SlackBot, event: Payload, place: Place, context: AsyncBoltContext) -> None:
        self._bot = bot
        self._event = event
        self._context = context
        self.place = place
        self.trigger = slack_facts(bot, event, place, context)
        self.speaker_id = str(event.get("user") or event.get("bot_id") or "")
        self.has_words = True
        self.in_thread = bool(event.get("thread_ts"))
        self._author_id = self.speaker_id

    def first_delivery(self) -> bool:
        # The app_mention and message events of one message share this key.
        return self._bot.recent.claim(f"message:{self.place.channel_id}:{self._event['ts']}")

    async def read(self) -> Said:
        message = await to_message(self._bot, self._event, self.place, self._context)
        self._author_id = message.author.id
        return Said(message, None)

    def open_reply(self, reply_id: str) -> SlackSink:
        return self._bot.sink(self.place, self._author_id, reply_id)

    async def say(self, text: str) -> None:
        try:
            await self._bot.client.chat_postMessage(channel=self.place.channel_id, text=render.trusted(text))
        except SlackApiError as error:
            log.warning("could not tell %s: %r: %s", self.place.channel_id, text, error)


async def to_message(bot: SlackBot, event: Payload, place: Place, context: AsyncBoltContext) -> Message:
    team = place.workspace_id
    text = str(event.get("text") or "")
    author = await author_of(bot, event, team)
    names = await bot.people.names(convert.mentioned_users(text))
    refs = convert.files(event)
    attachments = await bot.files.attachments(refs) if bot.files else tuple(ref.attachment() for ref in refs)
    thread_ts = str(event.get("thread_ts") or "")
    return Message(
        id=str(event["ts"]),
        place=place,
        author=author,
        text=convert.readable(text, names, bot_user_id=context.bot_user_id or ""),
        attachments=attachments,
        reply_to=thread_ts if thread_ts != event["ts"] else "",
        created_at=convert.slack_time(str(event["ts"])),
        is_bot=author.is_bot,
    )


async def author_of(bot: SlackBot, event: Payload, team: str) -> User:
    sender = str(event.get("user") or "")
    if sender and event.get("subtype") != "bot_message":
        return await bot.people.user(team, sender)
    profile = event.get("bot_profile") or {}
    name = str(event.get("username") or profile.get("name") or "a bot")
    return User(
        id=str(event.get("bot_id") or sender), name=name, platform="slack", workspace_id=team, is_bot=True
    )


async def follow_change(bot: SlackBot, body: Payload, event: Payload, context: AsyncBoltContext) -> None:
    """Keep stored turns true to Slack: an edited message is re-read, a deleted one forgotten."""
    channel = str(event.get("channel") or "")
    if event.get("subtype") == "message_deleted":
        gone = event.get("previous_message") or {}
        ts = str(event.get("deleted_ts") or gone.get("ts") or "")
        place = place_of(bot, body, channel, ts, str(gone.get("thread_ts") or ""), event)
        await bot.ember.message_deleted(place, ts)
        return
    changed = event.get("message") or {}
    if changed.get("bot_id") or changed.get("user") == context.bot_user_id:
        return  # ember's own edits while it streams; its replies are stored whole already
    ts = str(changed.get("ts") or "")
    place = place_of(bot, body, channel, ts, str(changed.get("thread_ts") or ""), event)
    text = str(changed.get("text") or "")
    names = await bot.people.names(convert.mentioned_users(text))
    readable = convert.readable(text, names, bot_user_id=context.bot_user_id or "")
    await bot.ember.message_edited(place, ts, readable)


# ---------------------------------------------------------------- reply buttons


def team_of(body: Payload) -> str:
    return str((body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id") or "")


def channel_of(body: Payload) -> str:
    return str((body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or "")


async def reply_button_pressed(bot: SlackBot, body: Payload, action: Payload, respond: AsyncRespond) -> None:
    presser = await bot.people.user(team_of(body), str(body["user"]["id"]))
    pressed = PressedSlackButton(bot, body, str(action.get("action_id") or ""), presser, respond)
    await bot.ember.reply_button_pressed(pressed)


class PressedSlackButton:
    """`core.ports.PressedReplyButton` over a block action."""

    def __init__(
        self, bot: SlackBot, body: Payload, button_id: str, presser: User, respond: AsyncRespond
    ) -> None:
        self._bot = bot
        self._respond = respond
        self._message: Payload = body.get("message") or {}
        self._team = team_of(body)
        self._channel = channel_of(body)
        self.button_id = button_id
        self.presser = presser
        self.message_id = str(self._message.get("ts") or "")
        self._sink: SlackSink | None = None

    def open_reply(self, reply_id: str, *, after: str) -> SlackSink:
        # A new answer goes where the old one is: its thread, or the channel itself.
        thread_ts = str(self._message.get("thread_ts") or "")
        place = Place("slack", self._team, self._channel, thread_id=thread_ts)
        self._sink = self._bot.sink(place, self.presser.id, reply_id)
        return self._sink

    async def tell_presser(self, text: str) -> None:
        await self._respond(text=render.trusted(text), response_type="ephemeral", replace_original=False)

    async def retire_pressed(self) -> None:
        if self._sink is not None and self.message_id:
            await self._sink.clear_buttons(self.message_id, str(self._message.get("text") or ""))
