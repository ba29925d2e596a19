"""What ember shows on Discord. The core's neutral markup (`core.markup`) is Discord's own
spelling, so core text renders as written; the model's text shows every link's destination
(`core.markup.visible_links`). Every message still carries `AllowedMentions.none()`
(`NO_PINGS`), so a mention in it names someone without pinging."""

from __future__ import annotations

import discord

from bots.discord.traits import MAX_MESSAGE_CHARS
from core import markup

NO_PINGS = discord.AllowedMentions.none()
# Unmasking a link adds one space; the sink leaves this much room under Discord's limit for it.
LINK_ROOM = 100


def rendered(text: str) -> str:
    """Core text (command answers, notices, decisions) as Discord Markdown."""
    return markup.plain(markup.parse(text))


def model_text(text: str) -> str:
    """The model's words as Discord Markdown: no masked links, every destination shown.

    A message the core cut to `MAX_MESSAGE_CHARS - LINK_ROOM` fits unless it held more than
    LINK_ROOM links; past Discord's limit the rest is cut rather than the message refused.
    """
    return markup.visible_links(text)[:MAX_MESSAGE_CHARS]
