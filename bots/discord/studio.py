"""The essay studio on Discord: drafts posted for review, and the Approve / Veto buttons.

A draft goes to `[studio.discord] review_channel` as a header (core-written) with two persistent
buttons whose ids name the draft (`ember:studio:approve:<id>`), and a thread beneath it holding
the whole text (as a file when long). The model's words carry `AllowedMentions.none()` and show
every link's destination. Veto opens a modal asking for the reason; everything decided is the
core's (`Ember.studio_button_pressed`). Reviewers are whom Discord proves: the presser's roles.
"""

from __future__ import annotations

import functools
import io
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any, Self

import discord

from bots.discord.convert import user_of
from bots.discord.render import LINK_ROOM, NO_PINGS, model_text, rendered
from bots.discord.traits import MAX_MESSAGE_CHARS, channel_keys
from core import STUDIO_BUTTON_PREFIX, DraftPreview, Ember, User, parse_studio_button_id, split_all
from core.budget import Priority, RequestScheduler

log = logging.getLogger(__name__)

TEMPLATE = rf"{re.escape(STUDIO_BUTTON_PREFIX)}:(?:approve|veto):[0-9]+"
THREAD_NAME = 100
# Past this many messages the text goes in the thread as one file instead.
MOST_PIECES = 6
MODAL_TITLE = 45
# Discord's limit for a nonce; and how far back a lapsed claim's post is looked for.
NONCE = 25
HISTORY_LOOKBACK = 50
REASON_FIELD = "reason"


def preview_view(preview: DraftPreview) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(StudioButton(preview.approve_id, preview.approve_label, discord.ButtonStyle.success))
    view.add_item(StudioButton(preview.veto_id, preview.veto_label, discord.ButtonStyle.danger))
    return view


class DiscordReviewDesk:
    """`core.ports.ReviewDesk`: posts spend Discord's budget as access notices do."""

    def __init__(self, client: discord.Client, budget: Callable[[], RequestScheduler]) -> None:
        self._client = client
        self._budget = budget

    async def post_draft(self, preview: DraftPreview) -> str:
        number = int(preview.channel_id)  # digits only: the configuration is validated
        channel = self._client.get_channel(number) or await self._client.fetch_channel(number)
        if not isinstance(channel, discord.TextChannel):
            raise LookupError(f"[studio.discord] review_channel {number} is not a text channel")
        header = await self._earlier_post(channel, preview) if preview.uncertain else None
        if header is None:
            header = await self._send(
                channel.id,
                lambda: channel.send(
                    rendered(preview.header),
                    view=preview_view(preview),
                    allowed_mentions=NO_PINGS,
                    # A retry within Discord's nonce window returns the first post, not a second.
                    nonce=f"studio-{preview.draft_id}"[:NONCE],
                ),
            )
        elif header.thread is not None and await self._has_messages(header.thread):
            return str(header.id)  # posted whole by an earlier attempt
        thread = header.thread or await self._send(
            channel.id, lambda: header.create_thread(name=preview.title[:THREAD_NAME] or "Draft")
        )
        await self._post_text(thread, preview)
        return str(header.id)

    async def _post_text(self, thread: discord.Thread, preview: DraftPreview) -> None:
        pieces = split_all(preview.text, MAX_MESSAGE_CHARS - LINK_ROOM)
        if len(pieces) > MOST_PIECES:
            data = io.BytesIO(preview.text.encode("utf-8"))
            name = f"draft-{preview.draft_id}.txt"
            await self._send(thread.id, lambda: thread.send(file=discord.File(data, filename=name)))
            return
        for piece in pieces:
            await self._send(
                thread.id, functools.partial(thread.send, model_text(piece), allowed_mentions=NO_PINGS)
            )

    async def show_outcome(self, channel_id: str, message_id: str, summary: str) -> None:
        message = self._client.get_partial_messageable(int(channel_id)).get_partial_message(int(message_id))
        await self._send(
            int(channel_id),
            lambda: message.edit(content=rendered(summary), view=None, allowed_mentions=NO_PINGS),
        )

    async def _earlier_post(
        self, channel: discord.TextChannel, preview: DraftPreview
    ) -> discord.Message | None:
        """ember's own message carrying this draft's Approve button, if an earlier attempt
        posted it (Discord's history shows no nonces; the button's id names the draft). A
        refusal to read leaves it to the post's nonce."""
        me = self._client.user
        try:
            recent: list[discord.Message] = await self._send(
                channel.id, lambda: _listed(channel.history(limit=HISTORY_LOOKBACK))
            )
        except discord.HTTPException as error:
            log.warning("studio: could not read %s for draft #%d (%s)", channel.id, preview.draft_id, error)
            return None
        for message in recent:
            if me is not None and message.author.id == me.id and _has_button(message, preview.approve_id):
                log.info("studio: draft #%d was already posted in %s", preview.draft_id, channel.id)
                return message
        return None

    async def _has_messages(self, thread: discord.Thread) -> bool:
        return bool(await self._send(thread.id, lambda: _listed(thread.history(limit=1))))

    async def _send(self, channel_id: int, call: Callable[[], Any]) -> Any:
        sent = await self._budget().send(Priority.ACCESS_NOTICE, call, keys=channel_keys(channel_id))
        assert sent is not None, "only merged edits and typing come back empty"
        return sent


async def _listed(history: AsyncIterator[discord.Message]) -> list[discord.Message]:
    return [message async for message in history]


def _has_button(message: discord.Message, custom_id: str) -> bool:
    return any(
        getattr(child, "custom_id", None) == custom_id
        for row in message.components
        for child in getattr(row, "children", ())
    )


class StudioButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=TEMPLATE):
    def __init__(
        self, custom_id: str, label: str = "", style: discord.ButtonStyle = discord.ButtonStyle.secondary
    ) -> None:
        super().__init__(discord.ui.Button(label=label or None, style=style, custom_id=custom_id))

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        return cls(match.string)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        ember = getattr(interaction.client, "ember", None)
        parsed = parse_studio_button_id(self.custom_id)
        if not isinstance(ember, Ember) or parsed is None:
            return
        if parsed[0].value == "approve":
            # Deciding writes to the store and may publish: acknowledge first. Veto must answer
            # with its modal, so it is not deferred (the core answers it at once).
            await interaction.response.defer()
        await ember.studio_button_pressed(
            PressedStudioButton(interaction, self.custom_id, presser_of(ember, interaction))
        )


def presser_of(ember: Ember, interaction: discord.Interaction[Any]) -> User:
    return user_of(interaction.user, ember.settings.discord.moderator_roles, interaction.permissions)


class VetoReason(discord.ui.Modal):
    """The veto's reason. Its custom id names the draft; the submission goes to the core."""

    def __init__(self, custom_id: str, title: str, label: str) -> None:
        super().__init__(title=title[:MODAL_TITLE], custom_id=custom_id, timeout=None)
        self.reason: discord.ui.TextInput[VetoReason] = discord.ui.TextInput(
            label=label[:MODAL_TITLE],
            custom_id=REASON_FIELD,
            style=discord.TextStyle.paragraph,
            max_length=1000,
        )
        self.add_item(self.reason)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        ember = getattr(interaction.client, "ember", None)
        if not isinstance(ember, Ember):
            return
        await interaction.response.defer()
        pressed = PressedStudioButton(
            interaction, self.custom_id, presser_of(ember, interaction), self.reason.value
        )
        await ember.studio_button_pressed(pressed)


class PressedStudioButton:
    """`core.ports.PressedStudioButton` over a button press or a submitted modal. What Discord
    refuses here is logged: the decision itself is made and stored either way."""

    def __init__(
        self, interaction: discord.Interaction[Any], button_id: str, presser: User, reason: str = ""
    ) -> None:
        self._interaction = interaction
        self.button_id = button_id
        self.presser = presser
        self.reason = reason

    async def ask_reason(self, form_id: str, title: str, label: str) -> None:
        await self._interaction.response.send_modal(VetoReason(form_id, title, label))

    async def tell_presser(self, text: str) -> None:
        try:
            if self._interaction.response.is_done():
                await self._interaction.followup.send(
                    rendered(text), ephemeral=True, allowed_mentions=NO_PINGS
                )
            else:
                await self._interaction.response.send_message(
                    rendered(text), ephemeral=True, allowed_mentions=NO_PINGS
                )
        except discord.HTTPException as error:
            log.error("could not answer a studio button press (%s): %s", text, error)

    async def retire_preview(self, summary: str) -> None:
        if self._interaction.message is None:
            return
        response, content = self._interaction.response, rendered(summary)
        try:
            if response.is_done():
                await self._interaction.edit_original_response(
                    content=content, view=None, allowed_mentions=NO_PINGS
                )
            else:  # a Veto press, not deferred (it might have opened a modal)
                await response.edit_message(content=content, view=None, allowed_mentions=NO_PINGS)
        except discord.HTTPException as error:
            log.error("could not retire the buttons of a studio draft: %s", error)
