"""Messages in: mentions, thread follow-ups, DMs and room channels become core messages.

Whether to answer is the core's one rule (`core.chat.triggers.should_answer`); this module only
gathers the facts. A message is answered once however often it arrives: Slack's retries and
the `app_mention`/`message` pair are caught by event id and by (channel, ts) in memory, and
across hosts by the transcript's unique row for the message.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError

from bots.slack import convert
from bots.slack.bot import SlackBot
from bots.slack.convert import Where
from core.chat import transcript
from core.chat.triggers import Trigger, refuses_direct, should_answer
from core.chat.wording import DMS_OFF
from core.events import Message, User

Event = dict[str, Any]

log = logging.getLogger(__name__)


def register(app: AsyncApp, bot: SlackBot) -> None:
    @app.event("app_mention")
    async def on_mention(body: Event, event: Event, context: AsyncBoltContext) -> None:
        await bot.run(on_message_event(bot, body, event, context))

    @app.event("message")
    async def on_message(body: Event, event: Event, context: AsyncBoltContext) -> None:
        await bot.run(on_message_event(bot, body, event, context))


async def on_message_event(bot: SlackBot, body: Event, event: Event, context: AsyncBoltContext) -> None:
    event_id = str(body.get("event_id") or "")
    if event_id and not bot.recent.claim(f"event:{event_id}"):
        return  # Slack delivered this event again
    subtype = event.get("subtype")
    if subtype in ("message_changed", "message_deleted"):
        await follow_change(bot, body, event, context)
        return
    if subtype not in convert.SPOKEN_SUBTYPES or event.get("hidden"):
        return
    heard = await hear(bot, body, event, context)
    if heard is not None:
        await bot.answer(*heard, recorded=True)  # `heard` recorded it to claim it


def place_of(bot: SlackBot, body: Event, channel: str, ts: str, thread_ts: str, channel_type: str) -> Where:
    team = str(body.get("team_id") or "")
    is_direct = channel_type == "im" or channel.startswith("D")
    in_room = channel in bot.settings.room_channels
    return convert.where(team, channel, ts, thread_ts, is_direct=is_direct, in_room=in_room)


async def hear(
    bot: SlackBot, body: Event, event: Event, context: AsyncBoltContext
) -> tuple[Message, Where] | None:
    """The message to answer and where, or None when ember should stay quiet."""
    channel, ts = str(event["channel"]), str(event["ts"])
    thread_ts = str(event.get("thread_ts") or "")
    where = place_of(bot, body, channel, ts, thread_ts, str(event.get("channel_type") or ""))
    trigger = await trigger_for(bot, event, where, context)
    allow_dms = bot.settings.allow_dms
    if not should_answer(trigger, bot.runtime.settings.chat, allow_dms=allow_dms):
        if refuses_direct(trigger, allow_dms=allow_dms) and bot.recent.claim(f"message:{channel}:{ts}"):
            await _say_dms_are_off(bot, channel)
        return None
    if not bot.recent.claim(f"message:{channel}:{ts}"):
        return None  # the app_mention and message events of one message
    message = await to_message(bot, event, where, context)
    if not await transcript.record_message(bot.runtime.store, message):
        return None  # stored already: another delivery (or another host) has it
    return message, where


async def _say_dms_are_off(bot: SlackBot, channel: str) -> None:
    try:
        await bot.client.chat_postMessage(channel=channel, text=DMS_OFF)
    except SlackApiError as error:
        log.warning("could not tell %s that DMs are off: %s", channel, error)


async def trigger_for(bot: SlackBot, event: Event, where: Where, context: AsyncBoltContext) -> Trigger:
    own_user, own_bot = context.bot_user_id or "", context.bot_id or ""
    sender = str(event.get("user") or "")
    bot_id = str(event.get("bot_id") or "")
    from_bot = bool(bot_id) or event.get("subtype") == "bot_message"
    trigger = Trigger(
        mentions_bot=convert.mentions(str(event.get("text") or ""), own_user),
        is_direct=where.place.is_direct,
        in_room_channel=where.channel in bot.settings.room_channels,
        from_self=bool(sender and sender == own_user) or bool(bot_id and bot_id == own_bot),
        from_bot=from_bot,
    )
    if trigger.from_self:
        return trigger
    if event.get("parent_user_id") and event.get("parent_user_id") == own_user:
        # A thread under ember's own message (an `ask` question, an essay announcement).
        trigger = dataclasses.replace(trigger, in_bot_thread=True)
    addressed = trigger.mentions_bot or trigger.is_direct or trigger.in_room_channel or trigger.in_bot_thread
    in_thread = bool(event.get("thread_ts"))
    store = bot.runtime.store
    if in_thread and not addressed and await transcript.has_spoken(store, where.place):
        trigger = dataclasses.replace(trigger, in_bot_thread=True)  # a thread ember talks in
    if from_bot and bot.runtime.settings.chat.allow_bots:
        history = await transcript.load_history(
            store, where.place, limit=bot.runtime.settings.chat.history_messages
        )
        speaker = sender or bot_id
        # Loop guard: how often this bot already spoke here.
        trigger = dataclasses.replace(trigger, bot_depth=sum(1 for m in history if m.author.id == speaker))
    return trigger


async def to_message(bot: SlackBot, event: Event, where: Where, context: AsyncBoltContext) -> Message:
    team = where.place.workspace_id
    text = str(event.get("text") or "")
    author = await author_of(bot, event, team)
    names = await bot.people.names(convert.mentioned_users(text))
    refs = convert.files(event)
    attachments = await bot.files.attachments(refs) if bot.files else tuple(ref.attachment() for ref in refs)
    thread_ts = str(event.get("thread_ts") or "")
    return Message(
        id=str(event["ts"]),
        place=where.place,
        author=author,
        text=convert.readable(text, names, bot_user_id=context.bot_user_id or ""),
        attachments=attachments,
        reply_to=thread_ts if thread_ts != event["ts"] else "",
        created_at=convert.slack_time(str(event["ts"])),
        is_bot=author.is_bot,
    )


async def author_of(bot: SlackBot, event: Event, team: str) -> User:
    sender = str(event.get("user") or "")
    if sender and event.get("subtype") != "bot_message":
        return await bot.people.user(team, sender)
    profile = event.get("bot_profile") or {}
    name = str(event.get("username") or profile.get("name") or "a bot")
    return User(
        id=str(event.get("bot_id") or sender), name=name, platform="slack", workspace_id=team, is_bot=True
    )


async def follow_change(bot: SlackBot, body: Event, event: Event, context: AsyncBoltContext) -> None:
    """Keep stored turns true to Slack: an edited message is re-read, a deleted one forgotten."""
    channel = str(event.get("channel") or "")
    channel_type = str(event.get("channel_type") or "")
    store = bot.runtime.store
    if event.get("subtype") == "message_deleted":
        gone = event.get("previous_message") or {}
        ts = str(event.get("deleted_ts") or gone.get("ts") or "")
        where = place_of(bot, body, channel, ts, str(gone.get("thread_ts") or ""), channel_type)
        await transcript.delete_message(store, where.place, ts)
        return
    changed = event.get("message") or {}
    if changed.get("bot_id") or changed.get("user") == context.bot_user_id:
        return  # ember's own edits while it streams; its replies are stored whole already
    ts = str(changed.get("ts") or "")
    where = place_of(bot, body, channel, ts, str(changed.get("thread_ts") or ""), channel_type)
    text = str(changed.get("text") or "")
    names = await bot.people.names(convert.mentioned_users(text))
    await transcript.edit_message(
        store, where.place, ts, convert.readable(text, names, bot_user_id=context.bot_user_id or "")
    )
