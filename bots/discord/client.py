"""The Discord client: intents, no pings, slash commands, event wiring.

Everything the client does is delegated: events to `DiscordInbound`, commands to
`SlashCommands`, context to `DiscordHistory`. Only this module subclasses `discord.Client`.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands

from bots.discord.announcer import DiscordAnnouncer
from bots.discord.commands import SlashCommands
from bots.discord.history import DiscordHistory
from bots.discord.inbound import DiscordInbound
from bots.discord.render import NO_PINGS
from bots.discord.studio import DiscordReviewDesk
from bots.discord.traits import discord_traits
from core import Ember

log = logging.getLogger(__name__)


def wanted_intents() -> discord.Intents:
    """Guilds, guild and DM messages, and message content when the application may have it.
    Members and presences are never needed."""
    intents = discord.Intents.default()
    intents.message_content = True
    return intents


def content_intent_allowed(flags: discord.ApplicationFlags) -> bool:
    return flags.gateway_message_content or flags.gateway_message_content_limited


class EmberClient(discord.AutoShardedClient):
    """discord.py's sharded client, its events handed to `DiscordInbound` (messages, edits,
    deletions, reply buttons) and its slash commands to `SlashCommands`. Built by
    `bots.discord.app`. It runs the shards `[discord] shard_ids` names, of `shard_count` (by
    default every shard of Discord's recommended count), so several hosts can split one bot."""

    def __init__(self, ember: Ember, **options: Any) -> None:
        # Kept so setup_hook can drop the content intent before the gateway is identified:
        # discord.py sends this very object's value when it connects.
        self.intents_wanted = options.pop("intents", None) or wanted_intents()
        settings = ember.settings.discord
        if settings.shard_ids:  # else discord.py runs every shard of the count
            options["shard_ids"] = list(settings.shard_ids)
        super().__init__(
            intents=self.intents_wanted,
            allowed_mentions=NO_PINGS,
            shard_count=settings.shard_count or None,
            **options,
        )
        self.ember = ember
        self.traits = discord_traits(settings)
        self.tree = app_commands.CommandTree(self)
        self.history = DiscordHistory(self, settings.moderator_roles, settings.room_channels)
        self.inbound = DiscordInbound(self, ember, self.history)
        self.slash = SlashCommands(self, ember, ember.commands(f"/{settings.command}"), self.inbound)
        self._announcing = False

    async def launch_shards(self) -> None:
        # discord.py connects to the URL `/gateway/bot` returns when it asks for the count; ask
        # for the count alone, so the gateway is `DEFAULT_GATEWAY` (a configured proxy) either way.
        if self.shard_count is None:
            self.shard_count, _, _ = await self.http.get_bot_gateway()
        await super().launch_shards()

    async def setup_hook(self) -> None:
        self._settle_content_intent()
        await self.sync_commands()

    def _settle_content_intent(self) -> None:
        if not self.intents_wanted.message_content or content_intent_allowed(self.application_flags):
            return
        self.intents_wanted.message_content = False  # else Discord refuses the connection (4014)
        rooms = ", ".join(self.ember.settings.discord.room_channels) or "none configured"
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
        log.info("registered /%s with %d commands", self.ember.settings.discord.command, len(synced))

    # ------------------------------------------------------------------ events

    async def on_ready(self) -> None:
        log.info("connected to Discord as %s in %d servers", self.user, len(self.guilds))
        if self._announcing:
            return  # a reconnect: keep the announcer and its pacer (a 429's pause must hold)
        self._announcing = True
        # Essay deliveries for Discord flow from now on (the channel cache is filled).
        announcer = DiscordAnnouncer(
            self, self.ember.settings.discord, self.ember.scheduler(self.traits.platform)
        )
        self.ember.announce_with(self.traits, announcer)
        # So are essay drafts for the studio's reviewers.
        platform = self.traits.platform
        self.ember.review_with(self.traits, DiscordReviewDesk(self, lambda: self.ember.scheduler(platform)))

    async def on_message(self, message: discord.Message) -> None:
        await self.inbound.message_arrived(message)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        await self.inbound.message_edited(payload)

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        await self.inbound.message_deleted(payload.channel_id, payload.guild_id, payload.message_id)

    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        for message_id in payload.message_ids:
            await self.inbound.message_deleted(payload.channel_id, payload.guild_id, message_id)
