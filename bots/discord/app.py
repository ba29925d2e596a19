"""Building the Discord adapter: the facade over a runtime, the client, and `register`, which
attaches Discord to the core (traits, history, access notifier) and routes persistent buttons."""

from __future__ import annotations

from typing import Any

from bots.discord.buttons import ReplyButton
from bots.discord.client import EmberClient
from bots.discord.menus import show_prompt_menu
from bots.discord.notifier import AccessButton, DiscordNotifier
from core import Ember, Runtime


def make_client(runtime: Runtime, **options: Any) -> EmberClient:
    """The client for a runtime, registered with its facade. Options go to `discord.Client`
    (tests pass a short `guild_ready_timeout`, for instance)."""
    ember = Ember(runtime)
    client = EmberClient(ember, **options)
    register(client, ember)
    return client


def register(client: EmberClient, ember: Ember) -> None:
    """Reply and access buttons are routed (also on messages posted before a restart: their ids
    say everything); the core reads Discord conversations through the client's history and
    posts access requests and DMs through it; `/opus` joins the command tree (synced once
    logged in), and so does the "Show the prompt" message menu command."""
    client.add_dynamic_items(ReplyButton, AccessButton)
    notifier = DiscordNotifier(client, ember.settings.discord.mod_channel)
    ember.attach(client.traits, history=client.history, notifier=notifier)
    client.tree.add_command(client.slash.group())
    client.tree.add_command(show_prompt_menu(client, ember))
