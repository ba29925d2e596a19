"""The Discord facts behind `core.chat.triggers.Trigger`: one small predicate each.

The rule itself (who is answered, bots and the loop guard) lives in the core; here we only
read what Discord says about a message.
"""

from __future__ import annotations

from collections.abc import Collection

import discord

from core import ChatSettings, Trigger


def is_from_me(message: discord.Message, me: discord.abc.Snowflake) -> bool:
    return message.author.id == me.id


def mentions_me(message: discord.Message, me: discord.abc.Snowflake) -> bool:
    # `mentions` holds only users named in the text, never @everyone or @here.
    return any(user.id == me.id for user in message.mentions)


def replied_message(message: discord.Message) -> discord.Message | None:
    """The message this one replies to, as the gateway delivered it (None if unknown/deleted)."""
    resolved = message.reference.resolved if message.reference else None
    return resolved if isinstance(resolved, discord.Message) else None


def replies_to_me(message: discord.Message, me: discord.abc.Snowflake) -> bool:
    parent = replied_message(message)
    return parent is not None and parent.author.id == me.id


def in_my_thread(message: discord.Message, me: discord.abc.Snowflake) -> bool:
    channel = message.channel
    return isinstance(channel, discord.Thread) and channel.owner_id == me.id


def is_direct(message: discord.Message) -> bool:
    return message.guild is None


def in_room(message: discord.Message, rooms: Collection[str]) -> bool:
    """A room channel, or a thread inside one: every message there is for the model."""
    channel = message.channel
    parent = channel.parent_id if isinstance(channel, discord.Thread) else None
    return str(channel.id) in rooms or str(parent) in rooms


async def bot_depth(message: discord.Message, limit: int) -> int:
    """How many bot-written messages precede this one in its reply chain, counting no further
    than `limit` (the loop guard only needs to know whether the chain is too deep)."""
    depth = 0
    current = message
    while depth < limit and current.reference and current.reference.message_id:
        parent = replied_message(current)
        if parent is None:
            try:
                parent = await current.channel.fetch_message(current.reference.message_id)
            except discord.HTTPException:
                break
        if not parent.author.bot:
            break
        depth += 1
        current = parent
    return depth


async def trigger_of(
    message: discord.Message, me: discord.abc.Snowflake, chat: ChatSettings, rooms: Collection[str]
) -> Trigger:
    from_bot = message.author.bot and not is_from_me(message, me)
    # Walking the chain costs requests: only when another bot's message might be answered.
    depth = await bot_depth(message, chat.max_bot_depth) if from_bot and chat.allow_bots else 0
    return Trigger(
        mentions_bot=mentions_me(message, me),
        replies_to_bot=replies_to_me(message, me),
        in_bot_thread=in_my_thread(message, me),
        is_direct=is_direct(message),
        in_room_channel=in_room(message, rooms),
        from_self=is_from_me(message, me),
        from_bot=from_bot,
        bot_depth=depth,
    )
