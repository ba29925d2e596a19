"""A reply on Discord: the core's `ReplySurface` over messages in one channel.

The core decides what to write (`core.chat.streaming`); this renders it and spends Discord's
budget for it (`core.budget`, one scheduler for the bot token): the first post of a message goes
at once (`FIRST_TEXT`), intermediate edits wait at least `pace` after the message's last write
and then for the budget (`EDIT`, the newest text at the moment of sending, so edits merge while
they wait), and a message's final text and its buttons go ahead of every intermediate edit
(`FINAL_TEXT`), into the channel slots the intermediate edits leave free. Typing shows only when
the model is slow to start and the budget has room.

A reply holds a slot of the global budget from its question to its final buttons
(core.budget.holds). When the budget is tight, a reply's end is one request: the final text
waits a moment for the buttons that follow it (`FINAL_GRACE`) and goes with them, so a burst of
replies ending together needs one slot each, not two; with slots to spare it goes at once.

Every message ember sends or edits carries `AllowedMentions.none()`, so model text such as
`@everyone` or `<@123>` pings no one. The parts of a long reply each reply to the one before, so
a reply chain read later walks through all of them back to the question.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import discord

from bots.discord.buttons import controls_view
from bots.discord.render import LINK_ROOM, NO_PINGS, model_text, rendered
from bots.discord.traits import EDIT_INTERVAL, MAX_MESSAGE_CHARS, channel_keys
from core import Control, Outcome, controls_for
from core.budget import Hold, Priority, RequestScheduler

log = logging.getLogger(__name__)
T = TypeVar("T")

# Discord shows "typing…" for about ten seconds after each request.
TYPING_EVERY = 8.0
# Typing is a courtesy for a slow model: when the first words come sooner, none is sent, and the
# budget stays with the first posts. Without headroom, it is tried again a little later.
TYPING_AFTER = 1.0
TYPING_RETRY = 1.0
# How long a message's final text waits for its buttons before going alone. A reply's buttons
# follow its end at once (its records are written meanwhile); those of a reply taken over from a
# host that died follow its records: milliseconds when quiet, more when many replies end at once.
# Going alone would cost a burst a second request per reply, and a window.
FINAL_GRACE = 2.0


class DiscordSink:
    max_chars = MAX_MESSAGE_CHARS - LINK_ROOM  # room for the spaces that unmask links
    # The streamer hands over every change at once: this sink paces its own edits (`pace`) and
    # the budget merges them, so the final text never waits behind a throttle.
    edit_interval = 0.0

    def __init__(
        self,
        channel: discord.PartialMessageable,
        reply_id: str,
        *,
        scheduler: RequestScheduler,
        reply_to: int | None = None,
        interaction: discord.Interaction[discord.Client] | None = None,
        pace: float = EDIT_INTERVAL,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._channel = channel
        self.reply_id = reply_id
        self._scheduler = scheduler
        self._keys = channel_keys(channel.id)
        self._previous = reply_to
        self._interaction = interaction  # notices go to the presser privately when there is one
        self._pace = pace
        self._clock = clock or asyncio.get_running_loop().time
        self._last_write: dict[str, float] = {}
        self._typing: asyncio.Task[None] | None = None
        # Per message: the newest text asked for, the text Discord has, the edit waiting for its
        # pace, and a lock so two writes of one message never cross on the way.
        self._wanted: dict[str, str] = {}
        self._shown: dict[str, str] = {}
        self._waiting: dict[str, asyncio.Task[None]] = {}
        self._writing: dict[str, asyncio.Lock] = {}
        self._failure: discord.HTTPException | None = None
        self._hold: Hold | None = None

    # ------------------------------------------------------------------ ReplySink

    async def post(self, text: str) -> str:
        self.stop_typing()
        self._hold_slot()
        try:
            message = await self._spend(
                Priority.FIRST_TEXT,
                lambda: self._channel.send(
                    model_text(text),
                    **self._reference(),
                    allowed_mentions=NO_PINGS,
                    view=controls_view([Control.STOP], self.reply_id),  # type: ignore[arg-type]
                ),
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
        handle = str(message.id)
        self._wanted[handle] = self._shown[handle] = text
        return self._written(handle)

    async def edit(self, handle: str, text: str, *, final: bool = False) -> None:
        self._raise_failure()
        self._wanted[handle] = text
        if final:
            # Sent ahead of every intermediate edit, without holding up the reply's end; when
            # the budget is tight it waits for the buttons, which carry it (`_final_edit`).
            self._cancel_waiting(handle)
            self._waiting[handle] = asyncio.create_task(self._final_edit(handle), name="ember-final-edit")
        elif handle not in self._waiting:
            self._waiting[handle] = asyncio.create_task(self._paced_edit(handle), name="ember-edit")

    async def notice(self, text: str) -> None:
        self.stop_typing()
        text = rendered(text)
        try:
            if self._interaction is not None:  # interaction answers spend no budget
                await self._interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_PINGS)
            else:
                await self._spend(
                    Priority.ANSWER,
                    lambda: self._channel.send(text, **self._reference(), allowed_mentions=NO_PINGS),
                )
        except discord.HTTPException as error:
            log.error("could not tell channel %s: %r: %s", self._channel.id, text, error)

    # ------------------------------------------------------------------ around the reply

    def start_typing(self) -> None:
        """Show "ember is typing…" until the first text is posted, when the model is slow.
        The question has arrived: from now on the reply holds its slot in the budget."""
        self._hold_slot()
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
                message = self._channel.get_partial_message(int(handle))
                await self._spend(Priority.FINAL_TEXT, message.delete, channel=False)
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
        finally:
            self._release_slot()

    async def abandon(self) -> None:
        """The answer broke off unexpectedly: take Stop off whatever was shown, so no button
        promises a generation that is no longer running."""
        self.stop_typing()
        try:
            for handle in list(self._last_write):
                try:
                    await self.set_controls(handle, [], self.reply_id)
                except discord.HTTPException as error:
                    log.error("could not remove the buttons of message %s: %s", handle, error)
        finally:
            self._release_slot()

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

    def _hold_slot(self) -> None:
        if self._hold is None:
            self._hold = self._scheduler.hold()

    def _release_slot(self) -> None:
        if self._hold is not None:
            self._hold.release()
            self._hold = None

    def _written(self, handle: str) -> str:
        self._last_write[handle] = self._clock()
        return handle

    async def set_controls(self, handle: str, controls: list[Control], reply_id: str) -> None:
        """The message's buttons, with its newest text when an edit of it is still waiting: the
        two go as one request, ahead of intermediate edits."""
        self._cancel_waiting(handle)
        await self._write(handle, Priority.FINAL_TEXT, buttons=(controls_view(controls, reply_id),))

    # ------------------------------------------------------------------ spending the budget

    async def _spend(
        self, priority: Priority, call: Callable[[], Awaitable[T]], *, channel: bool = True
    ) -> T:
        keys = self._keys if channel else self._keys[:1]
        result = await self._scheduler.send(priority, call, keys=keys)
        assert result is not None, "only merged edits and typing come back empty"
        return result

    async def _paced_edit(self, handle: str) -> None:
        """An intermediate edit: at least `pace` after the message's last write, then when the
        budget allows; it carries whatever text is newest when it goes."""
        wait = self._last_write.get(handle, -1e9) + self._pace - self._clock()
        if wait > 0:
            await asyncio.sleep(wait)
        try:
            await self._write(handle, Priority.EDIT)
        except discord.HTTPException as error:
            self._failure = error  # told to the streamer at its next write: the reply failed
        finally:
            if self._waiting.get(handle) is asyncio.current_task():
                del self._waiting[handle]

    async def _final_edit(self, handle: str) -> None:
        """A message's final text: at once when the budget has slots to spare beyond those
        replies hold (a second write for the buttons costs nothing then); otherwise when its
        buttons come within `FINAL_GRACE` and carry it (`set_controls` cancels this task while
        it waits), or alone after that."""
        if not self._slots_to_spare():
            await asyncio.sleep(FINAL_GRACE)
        try:
            await self._write(handle, Priority.FINAL_TEXT)
        except discord.HTTPException as error:
            log.error(
                "could not show the final text of message %s in channel %s: %s",
                handle,
                self._channel.id,
                error,
            )
        finally:
            if self._waiting.get(handle) is asyncio.current_task():
                del self._waiting[handle]

    def _slots_to_spare(self) -> bool:
        """Whether the final text and, later, its buttons can each have a write of their own:
        the global window has room beyond the slots replies hold (what a command answer needs),
        and the channel's beyond the writes kept for a final text (what an intermediate edit
        needs)."""
        global_key, channel_key = self._keys
        return self._scheduler.has_room(Priority.ANSWER, (global_key,)) and self._scheduler.has_room(
            Priority.EDIT, (channel_key,)
        )

    def _cancel_waiting(self, handle: str) -> None:
        """Cancel an edit still waiting out its pace; one already queued merges with the next
        write of the message (same coalescing key), one in flight finishes first (the lock)."""
        waiting = self._waiting.pop(handle, None)
        if waiting is not None:
            waiting.cancel()

    async def _write(
        self, handle: str, priority: Priority, *, buttons: tuple[discord.ui.View | None, ...] = ()
    ) -> None:
        """Send the message's newest text, if Discord lacks it, and `buttons` when given (one
        view; None takes every button away)."""

        async def call() -> bool:
            async with self._writing.setdefault(handle, asyncio.Lock()):
                text = self._wanted.get(handle)
                fields: dict[str, Any] = {"allowed_mentions": NO_PINGS}
                if text is not None and text != self._shown.get(handle):
                    fields["content"] = model_text(text)
                for view in buttons:
                    fields["view"] = view
                if len(fields) > 1:
                    await self._channel.get_partial_message(int(handle)).edit(**fields)
                    if text is not None:
                        self._shown[handle] = text
                    self._written(handle)
                return True

        await self._scheduler.send(priority, call, keys=self._keys, coalesce=f"message:{handle}")

    def _raise_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    async def _keep_typing(self) -> None:
        await asyncio.sleep(TYPING_AFTER)

        async def typing() -> bool:
            await self._channel.typing()
            return True

        with contextlib.suppress(discord.HTTPException):  # typing is a courtesy, never a failure
            while True:
                sent = await self._scheduler.send(Priority.TYPING, typing, keys=self._keys)
                await asyncio.sleep(TYPING_EVERY if sent else TYPING_RETRY)
