"""Access by request on Discord: the `core.access.Notifier` and the Approve / Deny buttons.

Requests go to `[discord] mod_channel` (only when that channel is in the requester's server, so
one server's requests never show in another's) with two persistent buttons whose custom ids
name the stored request (`core.access_button_id`): a press after a restart still decides it.
Members hear the outcome by DM. Whether the presser is a moderator is Discord's answer (Manage
Server, or a role in `moderator_roles`); the decision itself is the core's.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, Self

import discord

from bots.discord.convert import user_of
from bots.discord.render import NO_PINGS, rendered
from bots.discord.traits import channel_keys
from core import (
    ACCESS_BUTTON_PREFIX,
    ButtonAction,
    Ember,
    RequestView,
    User,
    access_button_id,
    parse_access_button_id,
)
from core.budget import GLOBAL, Priority, RequestScheduler

log = logging.getLogger(__name__)

TEMPLATE = rf"{re.escape(ACCESS_BUTTON_PREFIX)}(?:approve|deny):[0-9]+"
LABELS: dict[ButtonAction, tuple[str, discord.ButtonStyle]] = {
    "approve": ("Approve", discord.ButtonStyle.success),
    "deny": ("Deny", discord.ButtonStyle.danger),
}
EMBED_TEXT = 4000  # under Discord's 4096 for an embed description


# ---------------------------------------------------------------- what moderators see


def request_text(request: RequestView) -> str:
    return f"Access request #{request.id} from <@{request.user_id}> ({discord.utils.escape_markdown(request.user_name)})"


def request_embed(request: RequestView, decided: str = "") -> discord.Embed:
    reason = discord.utils.escape_markdown(request.reason) if request.reason else "*(no reason given)*"
    embed = discord.Embed(title=f"Access request #{request.id}", description=reason[:EMBED_TEXT])
    embed.add_field(name="Member", value=f"<@{request.user_id}>")
    embed.add_field(name="Asked", value=discord.utils.format_dt(request.created_at, "f"))
    if decided:
        embed.add_field(name="Decision", value=decided, inline=False)
    return embed


def decision_view(request: RequestView) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(AccessButton("approve", request.id))
    view.add_item(AccessButton("deny", request.id))
    return view


async def moderators_channel(
    client: discord.Client, mod_channel: str, workspace_id: str
) -> discord.abc.Messageable:
    """`[discord] mod_channel`, if it belongs to this server: one server's requests and delivery
    failures never show in another's. Otherwise LookupError, which the core logs."""
    if not mod_channel:
        raise LookupError("no moderators' channel: set [discord] mod_channel to a channel id")
    number = int(mod_channel)  # digits only: the configuration is validated
    channel = client.get_channel(number) or await client.fetch_channel(number)
    guild = getattr(channel, "guild", None)
    if guild is None or str(guild.id) != workspace_id or not isinstance(channel, discord.abc.Messageable):
        raise LookupError(f"[discord] mod_channel {number} is not a channel of server {workspace_id}")
    return channel


class DiscordNotifier:
    """Posts and DMs spend Discord's budget as access notices: after replies and command
    answers, before essay posts and intermediate edits. `budget` gives Discord's scheduler
    (asked when sending: it exists once the adapter is attached)."""

    def __init__(
        self, client: discord.Client, mod_channel: str, budget: Callable[[], RequestScheduler]
    ) -> None:
        self._client = client
        self._mod_channel = mod_channel.strip()
        self._budget = budget

    async def notify_moderators(self, workspace_id: str, request: RequestView) -> None:
        channel = await moderators_channel(self._client, self._mod_channel, workspace_id)
        keys = channel_keys(channel.id) if isinstance(channel, discord.abc.Snowflake) else (GLOBAL,)
        await self._budget().send(
            Priority.ACCESS_NOTICE,
            lambda: channel.send(
                request_text(request),
                embed=request_embed(request),
                view=decision_view(request),
                allowed_mentions=NO_PINGS,
            ),
            keys=keys,
        )

    async def tell_member(self, workspace_id: str, user_id: str, text: str) -> bool:
        try:
            number = int(user_id)
            user = self._client.get_user(number) or await self._client.fetch_user(number)
            # Two requests when the DM channel is new (open it, then post): both count.
            await self._budget().send(
                Priority.ACCESS_NOTICE,
                lambda: user.send(rendered(text), allowed_mentions=NO_PINGS),
                keys=(GLOBAL,),
            )
        except (ValueError, discord.HTTPException) as error:
            # Forbidden (50007) is a member who closed DMs; the moderator is told to say it instead.
            log.info("could not DM %s: %s", user_id, error)
            return False
        return True


# ---------------------------------------------------------------- the buttons


class AccessButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=TEMPLATE):
    def __init__(self, action: ButtonAction, request_id: int) -> None:
        label, style = LABELS[action]
        super().__init__(
            discord.ui.Button(label=label, style=style, custom_id=access_button_id(action, request_id))
        )

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        parsed = parse_access_button_id(match.string)
        assert parsed is not None, "the template only matches ids parse_access_button_id accepts"
        return cls(*parsed)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        ember = getattr(interaction.client, "ember", None)
        if not isinstance(ember, Ember):
            return
        # Acknowledge first (a silent deferred update): deciding writes to the store and DMs the
        # member, which may take longer than Discord's three seconds.
        await interaction.response.defer()
        presser = user_of(interaction.user, ember.settings.discord.moderator_roles, interaction.permissions)
        await ember.access_button_pressed(PressedAccessButton(interaction, self.custom_id, presser))


class PressedAccessButton:
    """`core.ports.PressedAccessButton` over a component interaction. What Discord refuses
    here is logged: the decision itself is made and stored either way."""

    def __init__(self, interaction: discord.Interaction[Any], button_id: str, presser: User) -> None:
        self._interaction = interaction
        self.button_id = button_id
        self.presser = presser

    async def tell_presser(self, text: str) -> None:
        try:
            await self._interaction.followup.send(rendered(text), ephemeral=True, allowed_mentions=NO_PINGS)
        except discord.HTTPException as error:
            log.error("could not answer an access button press (%s): %s", text, error)

    async def retire_request(self, request: RequestView, summary: str) -> None:
        """Once a request is decided, its message says by whom and loses its buttons."""
        if self._interaction.message is None:
            return
        try:
            await self._interaction.edit_original_response(
                content=request_text(request),
                embed=request_embed(request, rendered(summary)),
                view=None,
                allowed_mentions=NO_PINGS,
            )
        except discord.HTTPException as error:
            log.error("could not retire the buttons of access request #%d: %s", request.id, error)
