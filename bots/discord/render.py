"""What ember shows on Discord. The core's neutral markup (`core.markup`) is Discord's own
spelling, so core text renders as written; every message still carries
`AllowedMentions.none()` (`NO_PINGS`), so a mention in it names someone without pinging."""

from __future__ import annotations

import discord

from core import markup

NO_PINGS = discord.AllowedMentions.none()


def rendered(text: str) -> str:
    """Core text (command answers, notices, decisions) as Discord Markdown."""
    return markup.plain(markup.parse(text))
