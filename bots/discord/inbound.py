"""Discord events → the core: messages, edits, deletions and reply-button presses become
neutral values and small ports (`core.ports`), handed to `Ember`, which runs the flow.

Only what Discord knows is here: the facts about a message (`bots.discord.triggers`), how to
read it and its context (`bots.discord.history`), and where an answer goes (`DiscordSink`).
"""

from __future__ import annotations

import logging

import discord

from bots.discord.convert import message_of, place_of, user_of
from bots.discord.history import DiscordHistory
from bots.discord.render import NO_PINGS, rendered
from bots.discord.sink import DiscordSink
from bots.discord.traits import EDIT_INTERVAL, PLATFORM, channel_keys
from bots.discord.triggers import trigger_of
from core import Ember, Place, Said, Trigger, User
from core.budget import Priority, RequestScheduler

log = logging.getLogger(__name__)

Interaction = discord.Interaction[discord.Client]


def has_words(message: discord.Message) -> bool:
    """Something for the model to read. Without the message-content intent, messages that
    don't mention ember arrive blank; those are not questions."""
    return bool(message.content.strip() or message.attachments)


class DiscordInbound:
    def __init__(self, client: discord.Client, ember: Ember, history: DiscordHistory) -> None:
        self._client = client
        self._ember = ember
        self.history = history
        self.settings = ember.settings
        # Seconds between intermediate edits of one message (Discord's own limit is about five
        # per five seconds per channel); the benchmark and tests may shorten it.
        self.edit_interval = EDIT_INTERVAL

    @property
    def me(self) -> discord.ClientUser:
        assert self._client.user is not None, "events arrive only once logged in"
        return self._client.user

    def channel(self, place: Place) -> discord.PartialMessageable:
        guild = int(place.workspace_id) if place.workspace_id else None
        return self._client.get_partial_messageable(int(place.thread_id or place.channel_id), guild_id=guild)

    def sink(self, place: Place, reply_id: str, *, reply_to: int | None) -> DiscordSink:
        return DiscordSink(
            self.channel(place),
            reply_id,
            scheduler=self.scheduler,
            reply_to=reply_to,
            pace=self.edit_interval,
        )

    def reopen(self, place: Place, reply_id: str, *, requester_id: str, after: str) -> DiscordSink:
        """A reply another host began (it stopped: `core.chat.takeover`), over the REST API,
        which reaches any channel whichever host holds its shard."""
        return self.sink(place, reply_id, reply_to=int(after) if after else None)

    @property
    def scheduler(self) -> RequestScheduler:
        """Discord's one request budget, shared with commands, notices and announcements."""
        return self._ember.scheduler(PLATFORM)

    # ------------------------------------------------------------------ events

    async def message_arrived(self, message: discord.Message) -> None:
        settings = self.settings
        trigger = await trigger_of(message, self.me, settings.chat, settings.discord.room_channels)
        await self._ember.message_arrived(ArrivedDiscordMessage(self, message, trigger))

    async def message_edited(self, payload: discord.RawMessageUpdateEvent) -> None:
        message = payload.message
        if "content" not in payload.data or message.author.id == self.me.id:
            return  # a link preview arriving, or ember's own streaming: not an edit of anyone's words
        await self._ember.message_edited(place_of(message.channel), str(message.id), message.clean_content)

    async def message_deleted(self, channel_id: int, guild_id: int | None, message_id: int) -> None:
        client = self._client
        channel = client.get_channel(channel_id) or client.get_partial_messageable(
            channel_id, guild_id=guild_id
        )
        if isinstance(channel, discord.abc.Messageable):
            await self._ember.message_deleted(place_of(channel), str(message_id))

    async def reply_button_pressed(self, interaction: Interaction, button_id: str) -> None:
        # Acknowledge at once (a silent "deferred update"): a regenerate takes far longer than
        # Discord's three seconds, and the answer shows in the messages themselves.
        await interaction.response.defer()
        roles = self.settings.discord.moderator_roles
        presser = user_of(interaction.user, roles, interaction.permissions)
        await self._ember.reply_button_pressed(PressedDiscordButton(self, interaction, button_id, presser))


class ArrivedDiscordMessage:
    """`core.ports.ArrivedMessage` over a gateway message."""

    def __init__(self, inbound: DiscordInbound, message: discord.Message, trigger: Trigger) -> None:
        self._inbound = inbound
        self._message = message
        self.trigger = trigger
        self.place = place_of(message.channel)
        self.speaker_id = str(message.author.id)
        self.has_words = has_words(message)
        self.in_thread = isinstance(message.channel, discord.Thread)

    def first_delivery(self) -> bool:
        return True  # the gateway delivers a message once, to one connection

    async def read(self) -> Said | None:
        inbound, message, place = self._inbound, self._message, self.place
        settings = inbound.settings
        try:
            prompt = await message_of(
                message, inbound.me, settings.discord.moderator_roles, place=place, images=True
            )
            context = await inbound.history.before(message, place, settings.chat.history_messages)
        except discord.HTTPException as error:
            log.error("could not read message %s in %s: %s", message.id, place.key, error)
            return None
        return Said(prompt, context)

    def open_reply(self, reply_id: str) -> DiscordSink:
        sink = self._inbound.sink(self.place, reply_id, reply_to=self._message.id)
        sink.start_typing()
        return sink

    async def say(self, text: str) -> None:
        try:
            channel = self._message.channel
            await self._inbound.scheduler.send(
                Priority.ANSWER,
                lambda: channel.send(rendered(text), allowed_mentions=NO_PINGS),
                keys=channel_keys(channel.id),
            )
        except discord.HTTPException as error:
            log.warning("could not tell %s: %r: %s", self._message.author.id, text, error)


class PressedDiscordButton:
    """`core.ports.PressedReplyButton` over a component interaction."""

    def __init__(
        self, inbound: DiscordInbound, interaction: Interaction, button_id: str, presser: User
    ) -> None:
        self._inbound = inbound
        self._interaction = interaction
        self.button_id = button_id
        self.presser = presser
        pressed = interaction.message
        self.message_id = str(pressed.id) if pressed else ""
        self._sink: DiscordSink | None = None

    def open_reply(self, reply_id: str, *, after: str) -> DiscordSink:
        interaction = self._interaction
        channel = interaction.client.get_partial_messageable(
            interaction.channel_id or 0, guild_id=interaction.guild_id
        )
        self._sink = DiscordSink(
            channel,
            reply_id,
            scheduler=self._inbound.scheduler,
            reply_to=int(after) if after else None,
            interaction=interaction,
            pace=self._inbound.edit_interval,
        )
        return self._sink

    async def tell_presser(self, text: str) -> None:
        await self._interaction.followup.send(rendered(text), ephemeral=True, allowed_mentions=NO_PINGS)

    async def retire_pressed(self) -> None:
        if self._sink is not None and self.message_id:
            await self._sink.set_controls(self.message_id, [], self._sink.reply_id)
