"""The "Show the prompt" message menu command (right-click a message → Apps): the prompt of
the conversation that message is in (its thread, DM or channel), shown only to whoever chose it.

The same flow as `/opus prompt` and Slack's message shortcut (`Ember.show_prompt`); this only
finds the place and answers the interaction privately, within Discord's three seconds.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from bots.discord.commands import Interaction, render, within_ack_window
from bots.discord.convert import place_of
from core import SHOW_PROMPT_LABEL, Ember

log = logging.getLogger(__name__)


def show_prompt_menu(client: discord.Client, ember: Ember) -> app_commands.ContextMenu:
    async def show_prompt(interaction: Interaction, message: discord.Message) -> None:
        # The menu is opened on a message in the channel (or thread) the interaction comes from.
        channel = interaction.channel or client.get_partial_messageable(message.channel.id)
        place = place_of(channel)
        result = await within_ack_window(interaction, ember.show_prompt(place))
        try:
            await render(interaction, result)
        except discord.HTTPException as error:
            log.error("could not show the prompt of %s: %s", place.key, error)

    return app_commands.ContextMenu(name=SHOW_PROMPT_LABEL, callback=show_prompt)
