"""Messages in, replies out: the Discord side of a conversation with the model.

Each step is one small method: decide whether to answer (`core.triggers`), turn the message
and its context into neutral values, hand them to the engine with a sink, then put the right
buttons on the result. Button presses come back through `on_control`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import discord

from bots.discord.convert import message_of, place_of, user_of
from bots.discord.history import DiscordHistory
from bots.discord.render import NO_PINGS, rendered
from bots.discord.sink import DiscordSink
from bots.discord.triggers import gather
from core.chat import Outcome, new_reply_id
from core.controls import Control, press
from core.events import Message, Place
from core.runtime import Runtime
from core.streaming import ReusingSink
from core.triggers import DMS_OFF, refuses_direct, should_answer

log = logging.getLogger(__name__)


def has_words(message: discord.Message) -> bool:
    """Something for the model to read. Without the message-content intent, messages that
    don't mention ember arrive blank; those are not questions."""
    return bool(message.content.strip() or message.attachments)


class Responder:
    def __init__(self, client: discord.Client, runtime: Runtime, history: DiscordHistory) -> None:
        self._client = client
        self._runtime = runtime
        self.history = history
        self._settings = runtime.settings
        # Seconds between edits of one message (Discord's own limit is about five per five
        # seconds per channel); the benchmark and tests may shorten it.
        self.edit_interval = DiscordSink.edit_interval

    @property
    def _me(self) -> discord.ClientUser:
        assert self._client.user is not None, "messages arrive only once logged in"
        return self._client.user

    # ------------------------------------------------------------------ messages

    async def on_message(self, message: discord.Message) -> None:
        settings = self._settings
        trigger = await gather(message, self._me, settings.chat, settings.discord.room_channels)
        allow_dms = settings.discord.allow_dms
        if not (should_answer(trigger, settings.chat, allow_dms=allow_dms) and has_words(message)):
            if refuses_direct(trigger, allow_dms=allow_dms):
                await self._refuse_dm(message)
            return
        place = place_of(message.channel)
        roles = self._settings.discord.moderator_roles
        try:
            prompt = await message_of(message, self._me, roles, place=place, images=True)
            history = await self.history.before(message, place, self._settings.chat.history_messages)
        except discord.HTTPException as error:
            log.error("could not read message %s in %s: %s", message.id, place.key, error)
            return
        await self.reply(prompt, history, reply_to=message.id)

    async def _refuse_dm(self, message: discord.Message) -> None:
        try:
            await message.channel.send(DMS_OFF, allowed_mentions=NO_PINGS)
        except discord.HTTPException as error:
            log.warning("could not tell %s that DMs are off: %s", message.author.id, error)

    async def reply(self, prompt: Message, history: Sequence[Message], *, reply_to: int | None) -> Outcome:
        """Answer `prompt` where it was said (a thread, a channel or a DM)."""
        reply_id = new_reply_id()
        sink = DiscordSink(self.channel(prompt.place), reply_id, reply_to=reply_to)
        sink.edit_interval = self.edit_interval
        sink.start_typing()
        try:
            outcome = await self._runtime.engine.respond(prompt, sink, history=history, reply_id=reply_id)
        except Exception as error:
            # Unexpected (the store failing, say); discord.py logs the traceback. The text shown
            # stays, but no Stop button may outlive the generation.
            log.error(
                "answering %s in %s broke off [reply %s]: %r", prompt.id, prompt.place.key, reply_id, error
            )
            await sink.abandon()
            raise
        finally:
            sink.stop_typing()
        await sink.finish(outcome)
        return outcome

    def channel(self, place: Place) -> discord.PartialMessageable:
        guild = int(place.workspace_id) if place.workspace_id else None
        return self._client.get_partial_messageable(int(place.thread_id or place.channel_id), guild_id=guild)

    # ------------------------------------------------------------------ buttons

    async def on_control(
        self, interaction: discord.Interaction[discord.Client], control: Control, reply_id: str
    ) -> None:
        # Acknowledge at once (a silent "deferred update"): a regenerate takes far longer than
        # Discord's three seconds, and the answer shows in the messages themselves.
        await interaction.response.defer()
        user = user_of(interaction.user, self._settings.discord.moderator_roles, interaction.permissions)
        pressed = interaction.message
        channel = self._client.get_partial_messageable(
            interaction.channel_id or 0, guild_id=interaction.guild_id
        )
        old = await self._runtime.engine.reply_handles(reply_id) if control is Control.REGENERATE else []
        after = int(old[-1]) if old else pressed.id if pressed else None
        sink = DiscordSink(channel, reply_id, reply_to=after, interaction=interaction)
        sink.edit_interval = self.edit_interval
        reusing = ReusingSink(sink, old)
        result = await press(self._runtime.engine, control, reply_id, user, reusing)
        if result.notice:
            await interaction.followup.send(
                rendered(result.notice), ephemeral=True, allowed_mentions=NO_PINGS
            )
        if result.outcome is None:
            return
        if control is Control.CONTINUE and pressed is not None:
            await sink.set_controls(str(pressed.id), [], reply_id)  # continued: its buttons are spent
        await sink.finish(result.outcome, leftover=reusing.leftover)
