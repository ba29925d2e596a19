"""Reply buttons as persistent Discord components.

A `DynamicItem` matches custom ids by a template, so a button pressed after a restart — when no
view object remembers it — is still routed: the id (`core.chat.controls.control_id`) carries the
action and the reply id, and everything else is in the store.
"""

from __future__ import annotations

import re
from typing import Any, Protocol, Self, runtime_checkable

import discord

from core import REPLY_BUTTON_PREFIX, Control, control_id, parse_control_id

STYLES = {
    Control.STOP: discord.ButtonStyle.danger,
    Control.REGENERATE: discord.ButtonStyle.secondary,
    Control.CONTINUE: discord.ButtonStyle.primary,
}
ACTIONS = "|".join(re.escape(c.value) for c in Control)
TEMPLATE = rf"{re.escape(REPLY_BUTTON_PREFIX)}:(?:{ACTIONS}):[0-9A-Za-z_-]+"


@runtime_checkable
class ReplyButtonPresses(Protocol):
    """The client's `inbound`: what happens when someone presses a reply button."""

    async def reply_button_pressed(self, interaction: discord.Interaction[Any], button_id: str) -> None: ...


class ReplyButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=TEMPLATE):
    def __init__(self, control: Control, reply_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label=control.label, style=STYLES[control], custom_id=control_id(control, reply_id)
            )
        )
        self.control = control
        self.reply_id = reply_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        parsed = parse_control_id(match.string)
        assert parsed is not None, "the template only matches ids parse_control_id accepts"
        return cls(*parsed)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        inbound = getattr(interaction.client, "inbound", None)
        if isinstance(inbound, ReplyButtonPresses):
            await inbound.reply_button_pressed(interaction, self.custom_id)


def controls_view(controls: list[Control], reply_id: str) -> discord.ui.View | None:
    """A view holding only dynamic items: discord.py keeps nothing per message for it."""
    if not controls:
        return None
    view = discord.ui.View(timeout=None)
    for control in controls:
        view.add_item(ReplyButton(control, reply_id))
    return view
