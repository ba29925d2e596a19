"""Building the Discord adapter: the facade over a runtime, the client, and `register`, which
attaches Discord to the core (traits, history, access notifier) and routes persistent buttons."""

from __future__ import annotations

from typing import Any

import aiohttp

from bots.discord.buttons import ReplyButton
from bots.discord.client import EmberClient
from bots.discord.menus import show_prompt_menu
from bots.discord.notifier import AccessButton, DiscordNotifier
from bots.discord.studio import StudioButton
from bots.discord.traits import PLATFORM
from core import Ember, Runtime
from core.budget.outside import count_outside_calls


def make_client(runtime: Runtime, **options: Any) -> EmberClient:
    """The client for a runtime, registered with its facade. Options go to `discord.Client`
    (tests pass a short `guild_ready_timeout`, for instance)."""
    ember = Ember(runtime)
    # discord.py's own requests (login, command sync, history reads) spend the budget too.
    trace = options.pop("http_trace", None) or aiohttp.TraceConfig()
    count_outside_calls(trace, lambda: ember.scheduler(PLATFORM))
    client = EmberClient(ember, http_trace=trace, **options)
    register(client, ember)
    return client


def register(client: EmberClient, ember: Ember) -> None:
    """Reply and access buttons are routed (also on messages posted before a restart: their ids
    say everything); the core reads Discord conversations through the client's history and
    posts access requests and DMs through it; `/opus` joins the command tree (synced once
    logged in), and so does the "Show the prompt" message menu command."""
    client.add_dynamic_items(ReplyButton, AccessButton, StudioButton)
    notifier = DiscordNotifier(
        client, ember.settings.discord.mod_channel, budget=lambda: ember.scheduler(client.traits.platform)
    )
    ember.attach(client.traits, history=client.history, notifier=notifier, reopen=client.inbound.reopen)
    client.tree.add_command(client.slash.group())
    client.tree.add_command(show_prompt_menu(client, ember))
