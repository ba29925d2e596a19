"""The Discord client: intents, no pings, slash commands and persistent buttons, event wiring.

Everything the client does is delegated: conversations to `Responder`, commands to
`SlashCommands`, context to `DiscordHistory`. Only this module subclasses `discord.Client`.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands

from bots.discord.announcer import DiscordAnnouncer
from bots.discord.buttons import ReplyButton
from bots.discord.commands import SlashCommands
from bots.discord.convert import PLATFORM, place_of
from bots.discord.history import DiscordHistory
from bots.discord.notifier import install as install_access
from bots.discord.responder import Responder
from bots.discord.traits import RATE_LIMIT
from core import transcript
from core.chat_commands import build_commands
from core.runtime import Runtime

log = logging.getLogger(__name__)


def wanted_intents() -> discord.Intents:
    """Guilds, guild and DM messages, and message content when the application may have it.
    Members and presences are never needed."""
    intents = discord.Intents.default()
    intents.message_content = True
    return intents


def content_intent_allowed(flags: discord.ApplicationFlags) -> bool:
    return flags.gateway_message_content or flags.gateway_message_content_limited


class EmberClient(discord.Client):
    def __init__(self, runtime: Runtime, **options: Any) -> None:
        # Kept so setup_hook can drop the content intent before the gateway is identified:
        # discord.py sends this very object's value when it connects.
        self.intents_wanted = options.pop("intents", None) or wanted_intents()
        super().__init__(
            intents=self.intents_wanted, allowed_mentions=discord.AllowedMentions.none(), **options
        )
        settings = runtime.settings.discord
        self.runtime = runtime
        self.tree = app_commands.CommandTree(self)
        self.history = DiscordHistory(self, settings.moderator_roles, settings.room_channels)
        self.responder = Responder(self, runtime, self.history)
        commands = build_commands(f"/{settings.command}")
        self.slash = SlashCommands(self, runtime, commands, self.responder)
        self._announcing = False

    async def setup_hook(self) -> None:
        self._settle_content_intent()
        self.add_dynamic_items(ReplyButton)
        install_access(self, self.runtime)  # access requests: mod-channel posts, DMs, Approve/Deny
        self.runtime.engine.set_history_reader(PLATFORM, self.history)
        self.tree.add_command(self.slash.group())
        await self.sync_commands()

    def _settle_content_intent(self) -> None:
        if not self.intents_wanted.message_content or content_intent_allowed(self.application_flags):
            return
        self.intents_wanted.message_content = False  # else Discord refuses the connection (4014)
        rooms = ", ".join(self.runtime.settings.discord.room_channels) or "none configured"
        log.warning(
            "The message content intent is not enabled for this application, so ember cannot see "
            "the text of messages that don't mention it: room channels (%s) and threads it opened "
            "answer only when mentioned, and earlier messages read for context arrive blank. "
            "Mentions, replies that mention ember, DMs and slash commands work. To see everything, "
            "enable Message Content Intent under Bot in the Discord Developer Portal.",
            rooms,
        )

    async def sync_commands(self) -> None:
        try:
            synced = await self.tree.sync()
        except discord.HTTPException as error:
            log.error(
                "could not register the slash commands (%s): invite ember with the "
                "applications.commands scope; chat by mention still works",
                error,
            )
            return
        log.info("registered /%s with %d commands", self.runtime.settings.discord.command, len(synced))

    # ------------------------------------------------------------------ events

    async def on_ready(self) -> None:
        log.info("connected to Discord as %s in %d servers", self.user, len(self.guilds))
        if self._announcing:
            return  # a reconnect: keep the announcer and its pacer (a 429's pause must hold)
        self._announcing = True
        # Essay deliveries for Discord flow from now on (the channel cache is filled).
        self.runtime.essays.register_announcer(
            PLATFORM, DiscordAnnouncer(self, self.runtime.settings.discord), RATE_LIMIT
        )

    async def on_message(self, message: discord.Message) -> None:
        await self.responder.on_message(message)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        message = payload.message
        if "content" not in payload.data or (self.user and message.author.id == self.user.id):
            return  # a link preview arriving, or ember's own streaming: not an edit of anyone's words
        place = place_of(message.channel)
        await transcript.edit_message(self.runtime.store, place, str(message.id), message.clean_content)

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        await self._forget_message(payload.channel_id, payload.guild_id, payload.message_id)

    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        for message_id in payload.message_ids:
            await self._forget_message(payload.channel_id, payload.guild_id, message_id)

    async def _forget_message(self, channel_id: int, guild_id: int | None, message_id: int) -> None:
        channel = self.get_channel(channel_id) or self.get_partial_messageable(channel_id, guild_id=guild_id)
        if isinstance(channel, discord.abc.Messageable):
            await transcript.delete_message(self.runtime.store, place_of(channel), str(message_id))


def make_client(runtime: Runtime, **options: Any) -> EmberClient:
    """The client for a runtime. Options go to `discord.Client` (tests pass a short
    `guild_ready_timeout`, for instance)."""
    return EmberClient(runtime, **options)
