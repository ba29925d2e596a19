"""A reply on Discord: the core's `ReplySurface` over messages in one channel.

The core decides what to write and when (`core.chat.streaming`); this only renders. Every message
ember sends or edits carries `AllowedMentions.none()`, so model text such as `@everyone` or
`<@123>` pings no one. The parts of a long reply each reply to the one before, so a reply
chain read later walks through all of them back to the question.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import discord

from bots.discord.buttons import controls_view
from bots.discord.render import LINK_ROOM, NO_PINGS, model_text, rendered
from bots.discord.traits import EDIT_INTERVAL, MAX_MESSAGE_CHARS
from core import Control, Outcome, controls_for

log = logging.getLogger(__name__)

# Discord shows "typing…" for about ten seconds after each request.
TYPING_EVERY = 8.0


class DiscordSink:
    max_chars = MAX_MESSAGE_CHARS - LINK_ROOM  # room for the spaces that unmask links
    edit_interval = EDIT_INTERVAL

    def __init__(
        self,
        channel: discord.PartialMessageable,
        reply_id: str,
        *,
        reply_to: int | None = None,
        interaction: discord.Interaction[discord.Client] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._channel = channel
        self.reply_id = reply_id
        self._previous = reply_to
        self._interaction = interaction  # notices go to the presser privately when there is one
        self._clock = clock or asyncio.get_running_loop().time
        self._last_write: dict[str, float] = {}
        self._typing: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ ReplySink

    async def post(self, text: str) -> str:
        self.stop_typing()
        try:
            message = await self._channel.send(
                model_text(text),
                **self._reference(),
                allowed_mentions=NO_PINGS,
                view=controls_view([Control.STOP], self.reply_id),  # type: ignore[arg-type]
            )
        except discord.Forbidden as error:
            # The core logs the failure with its trace id; this line says what to fix.
            log.error(
                "Discord refused ember's reply in channel %s (%s): give ember the View Channel, "
                "Send Messages, Send Messages in Threads and Read Message History permissions there",
                self._channel.id,
                error.text or error,
            )
            raise
        self._previous = message.id
        return self._written(str(message.id))

    async def edit(self, handle: str, text: str) -> None:
        await self._channel.get_partial_message(int(handle)).edit(
            content=model_text(text), allowed_mentions=NO_PINGS
        )
        self._written(handle)

    async def notice(self, text: str) -> None:
        self.stop_typing()
        text = rendered(text)
        try:
            if self._interaction is not None:
                await self._interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_PINGS)
            else:
                await self._channel.send(
                    text,
                    **self._reference(),
                    allowed_mentions=NO_PINGS,
                )
        except discord.HTTPException as error:
            log.error("could not tell channel %s: %r: %s", self._channel.id, text, error)

    # ------------------------------------------------------------------ around the reply

    def start_typing(self) -> None:
        """Show "ember is typing…" until the first text is posted."""
        self._typing = asyncio.create_task(self._keep_typing(), name="ember-typing")

    def stop_typing(self) -> None:
        if self._typing is not None:
            self._typing.cancel()
            self._typing = None

    async def finish(self, outcome: Outcome, leftover: Sequence[str] = ()) -> None:
        """Swap Stop for the finished reply's buttons on its last message; remove a regenerated
        reply's messages it no longer needs. A refusal here is logged, never raised: the reply
        itself is already shown."""
        self.stop_typing()
        try:
            for handle in leftover:
                await self._channel.get_partial_message(int(handle)).delete()
            for handle in outcome.handles[:-1]:
                await self.set_controls(handle, [], outcome.reply_id)
            if outcome.handles:
                final = controls_for(outcome, streaming=False)
                await self.set_controls(outcome.handles[-1], final, outcome.reply_id)
        except discord.HTTPException as error:
            log.error(
                "could not update the buttons of reply %s in channel %s [trace %s]: %s",
                outcome.reply_id,
                self._channel.id,
                outcome.trace_id,
                error,
            )

    async def abandon(self) -> None:
        """The answer broke off unexpectedly: take Stop off whatever was shown, so no button
        promises a generation that is no longer running."""
        self.stop_typing()
        for handle in list(self._last_write):
            try:
                await self.set_controls(handle, [], self.reply_id)
            except discord.HTTPException as error:
                log.error("could not remove the buttons of message %s: %s", handle, error)

    # ------------------------------------------------------------------ helpers

    def _reference(self) -> dict[str, Any]:
        """`send`'s reference: the message the next one replies to, or none at all (the first
        message of an answer in a thread). discord.py rejects MISSING here, so leave it out."""
        if self._previous is None:
            return {}
        # If the question was deleted meanwhile, post anyway rather than fail.
        reference = discord.MessageReference(
            message_id=self._previous, channel_id=self._channel.id, fail_if_not_exists=False
        )
        return {"reference": reference}

    def _written(self, handle: str) -> str:
        self._last_write[handle] = self._clock()
        return handle

    async def set_controls(self, handle: str, controls: list[Control], reply_id: str) -> None:
        # A button change is an edit too: keep to one edit per message per interval.
        wait = self._last_write.get(handle, -1e9) + self.edit_interval - self._clock()
        if wait > 0:
            await asyncio.sleep(wait)
        view = controls_view(controls, reply_id)
        await self._channel.get_partial_message(int(handle)).edit(view=view, allowed_mentions=NO_PINGS)
        self._written(handle)

    async def _keep_typing(self) -> None:
        with contextlib.suppress(discord.HTTPException):  # typing is a courtesy, never a failure
            while True:
                await self._channel.typing()
                await asyncio.sleep(TYPING_EVERY)
