"""The Slack app manifest an operator pastes into "Create New App → From a manifest".

It asks for exactly what ember uses: mentions and messages where it is present, DMs, the slash
command (with users and channels escaped, so `/opus access grant @ana` arrives as `<@U…|ana>`),
the "Show the prompt" and "Stop the reply" message shortcuts, buttons, names and user groups (moderators), files (images in, long prompts out) and DMs to
members (access decisions).
"""

from __future__ import annotations

import json
from typing import Any

from bots.slack.shortcuts import SHOW_PROMPT, STOP_REPLY
from core import SHOW_PROMPT_LABEL, STOP_REPLY_LABEL, SlackSettings

EVENTS_PATH = "/slack/events"

BOT_SCOPES = (
    "app_mentions:read",  # app_mention
    "channels:history",  # message.channels: thread follow-ups and room channels
    "groups:history",  # the same in private channels
    "im:history",  # message.im: direct messages
    "mpim:history",  # group DMs (answered when mentioned)
    "chat:write",  # replies, streaming, edits, ephemeral answers
    "commands",  # the slash command
    "users:read",  # speaker names, admin and owner flags
    "usergroups:read",  # members of moderator and member user groups
    "files:read",  # images shared with a message, for the model
    "files:write",  # long command output as a file
    "im:write",  # open a DM to tell a member about their access
)

BOT_EVENTS = ("app_mention", "message.channels", "message.groups", "message.im", "message.mpim")


def manifest(settings: SlackSettings, *, name: str = "ember", request_url: str = "") -> dict[str, Any]:
    """The manifest as a dict. In HTTP mode `request_url` is where Slack reaches ember
    (https://your.host/slack/events); Socket Mode needs none."""
    socket = settings.mode == "socket"
    url = "" if socket else (request_url or f"https://YOUR-HOST{EVENTS_PATH}")
    command: dict[str, Any] = {
        "command": settings.command,
        "description": "Talk with the model, see its context, manage access",
        "usage_hint": "ask <prompt> | prompt | model [alias] | forget | help",
        "should_escape": True,
    }
    events: dict[str, Any] = {"bot_events": list(BOT_EVENTS)}
    interactivity: dict[str, Any] = {"is_enabled": True}
    if url:
        command["url"] = url
        events["request_url"] = url
        interactivity["request_url"] = url
    return {
        "display_information": {
            "name": name,
            "description": "A home in Slack for a retired language model",
        },
        "features": {
            "app_home": {
                "home_tab_enabled": False,
                "messages_tab_enabled": True,
                "messages_tab_read_only_enabled": False,
            },
            "bot_user": {"display_name": name, "always_online": True},
            "slash_commands": [command],
            "shortcuts": [
                {
                    "name": SHOW_PROMPT_LABEL,
                    "type": "message",
                    "callback_id": SHOW_PROMPT,
                    "description": "What the model would receive in this thread (only you see it)",
                },
                {
                    "name": STOP_REPLY_LABEL,
                    "type": "message",
                    "callback_id": STOP_REPLY,
                    "description": "Stop what the model is writing in this thread",
                },
            ],
        },
        "oauth_config": {"scopes": {"bot": list(BOT_SCOPES)}},
        "settings": {
            "event_subscriptions": events,
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket,
            "token_rotation_enabled": False,
        },
    }


def manifest_json(settings: SlackSettings, *, name: str = "ember", request_url: str = "") -> str:
    return json.dumps(manifest(settings, name=name, request_url=request_url), indent=2)
