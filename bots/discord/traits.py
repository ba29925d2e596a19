"""Discord's facts, as the core reads them (`core.ports.PlatformTraits`)."""

from __future__ import annotations

from core import DiscordSettings, Platform, PlatformTraits, RateLimit

PLATFORM: Platform = "discord"
MAX_MESSAGE_CHARS = 2000
# Discord's own limit is about five edits per five seconds per channel.
EDIT_INTERVAL = 1.0
# 50 requests/s globally per bot; live chat replies share that budget, so announcements keep under.
RATE_LIMIT = RateLimit(per_second=45.0, burst=5.0, concurrency=32)


def discord_traits(settings: DiscordSettings) -> PlatformTraits:
    return PlatformTraits(
        platform=PLATFORM,
        space_word="server",
        user_mention="<@{id}>",
        role_mention="<@&{id}>",
        allow_dms=settings.allow_dms,
        max_message_chars=MAX_MESSAGE_CHARS,
        edit_interval=EDIT_INTERVAL,
        rate_limit=RATE_LIMIT,
    )
