"""Context read fresh from Discord, so an edited message reads as edited and a deleted one is gone.

Which messages make the context:
- in a thread: the thread's history, with the message that started it when we reach the start;
- a reply: its reply chain;
- in a DM or a room channel: the recent messages there;
- otherwise (a mention in an ordinary channel): nothing before it — only what was addressed to
  ember is read.

`DiscordHistory` is also the core's `HistoryReader` for Discord (regenerate, continue and
`/opus prompt`), which knows only places and message ids.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from typing import Literal

import discord

from bots.discord.convert import message_of
from core import Message, Place

log = logging.getLogger(__name__)

Kind = Literal["thread", "chain", "recent", "none"]


def context_kind(place: Place, *, is_reply: bool, rooms: Collection[str]) -> Kind:
    if place.thread_id:
        return "thread"
    if is_reply:
        return "chain"
    if not place.workspace_id or place.channel_id in rooms:
        return "recent"
    return "none"


def shown(message: discord.Message) -> bool:
    """Worth putting in context: a person's or bot's words, not a join or pin notice, and not
    empty (without the message-content intent others' messages arrive blank)."""
    return not message.is_system() and bool(message.content or message.attachments or message.embeds)


class DiscordHistory:
    def __init__(
        self, client: discord.Client, moderator_roles: Collection[str], rooms: Collection[str]
    ) -> None:
        self._client = client
        self._moderator_roles = moderator_roles
        self._rooms = rooms

    @property
    def _me(self) -> discord.ClientUser:
        assert self._client.user is not None, "history is read only once logged in"
        return self._client.user

    # ------------------------------------------------------------------ a live message

    async def before(self, message: discord.Message, place: Place, limit: int) -> list[Message]:
        """The context for `message` (oldest first, without the message itself)."""
        kind = context_kind(place, is_reply=message.reference is not None, rooms=self._rooms)
        try:
            if kind == "thread":
                if str(message.id) == place.thread_id:
                    return []  # the thread's starter: nothing comes before it
                return await self._thread(self._channel(place), place, before=message, limit=limit)
            if kind == "chain":
                return await self._chain(message, place, limit)
            if kind == "recent":
                return await self._recent(message.channel, place, before=message, limit=limit)
        except discord.Forbidden as error:
            log.warning(
                "cannot read history in %s (%s); answering without earlier context. "
                "Give ember the Read Message History permission there.",
                place.key,
                error.text or error,
            )
        return []

    # ------------------------------------------------------------------ core.chat.HistoryReader

    async def __call__(self, place: Place, upto: str, limit: int) -> Sequence[Message]:
        channel = self._channel(place)
        try:
            if not upto:
                return await self._latest(channel, place, limit)
            message = await self._fetch(place, upto)
            if message is None:
                return []
            earlier = await self.before(message, place, limit - 1)
            return [*earlier, await self._convert(message, place, images=True)]
        except discord.HTTPException as error:
            log.warning("cannot read history in %s: %s", place.key, error)
            return []

    async def _latest(self, channel: discord.PartialMessageable, place: Place, limit: int) -> list[Message]:
        kind = context_kind(place, is_reply=False, rooms=self._rooms)
        if kind == "thread":
            return await self._thread(channel, place, before=None, limit=limit)
        if kind == "recent":
            return await self._recent(channel, place, before=None, limit=limit)
        return []

    # ------------------------------------------------------------------ the three sources

    async def _thread(
        self,
        channel: discord.abc.Messageable,
        place: Place,
        *,
        before: discord.abc.Snowflake | None,
        limit: int,
    ) -> list[Message]:
        found = [m async for m in channel.history(limit=limit, before=before) if shown(m)]
        found.reverse()
        if len(found) < limit:
            # We reached the thread's start: the message it was opened from (same id, in the
            # parent channel) is the opening words — for `/opus ask`, the question itself.
            starter = await self._fetch(place, place.thread_id)
            if starter is not None and shown(starter):
                found.insert(0, starter)
        return [await self._convert(m, place) for m in found]

    async def _chain(self, message: discord.Message, place: Place, limit: int) -> list[Message]:
        chain: list[discord.Message] = []
        current = message
        while len(chain) < limit and current.reference and current.reference.message_id:
            parent = current.reference.resolved
            if not isinstance(parent, discord.Message):
                parent = await self._fetch(place, str(current.reference.message_id))
            if parent is None:
                break  # deleted: the chain ends where the conversation is gone
            chain.append(parent)
            current = parent
        chain.reverse()
        # The message replied to is what the asker points at: its images are worth sending.
        last = len(chain) - 1
        return [await self._convert(m, place, images=i == last) for i, m in enumerate(chain) if shown(m)]

    async def _recent(
        self,
        channel: discord.abc.Messageable,
        place: Place,
        *,
        before: discord.abc.Snowflake | None,
        limit: int,
    ) -> list[Message]:
        found = [m async for m in channel.history(limit=limit, before=before) if shown(m)]
        found.reverse()
        return [await self._convert(m, place) for m in found]

    # ------------------------------------------------------------------ helpers

    def _channel(self, place: Place) -> discord.PartialMessageable:
        guild = int(place.workspace_id) if place.workspace_id else None
        return self._client.get_partial_messageable(int(place.thread_id or place.channel_id), guild_id=guild)

    async def _fetch(self, place: Place, message_id: str) -> discord.Message | None:
        """A message by id, read now. A thread's starter lives in the parent channel."""
        in_parent = message_id == place.thread_id
        channel_id = place.channel_id if in_parent else place.thread_id or place.channel_id
        guild = int(place.workspace_id) if place.workspace_id else None
        channel = self._client.get_partial_messageable(int(channel_id), guild_id=guild)
        try:
            return await channel.fetch_message(int(message_id))
        except discord.NotFound:
            return None

    async def _convert(self, message: discord.Message, place: Place, *, images: bool = False) -> Message:
        return await message_of(message, self._me, self._moderator_roles, place=place, images=images)
