"""Slack's facts, as the core reads them (`core.ports.PlatformTraits`)."""

from __future__ import annotations

from core import Platform, PlatformTraits, RateLimit, SlackSettings

PLATFORM: Platform = "slack"
# What the core splits at: a screenful, like a long chat message. Parts are cut finer if needed.
MAX_MESSAGE_CHARS = 3_000
# chat.update resends the whole text: about once a second (native streams go a little faster).
EDIT_INTERVAL = 1.0
# chat.postMessage: about one message per second per channel (short bursts allowed).
RATE_LIMIT = RateLimit(per_second=20.0, burst=5.0, per_channel_seconds=1.0, concurrency=16)


def slack_traits(settings: SlackSettings) -> PlatformTraits:
    return PlatformTraits(
        platform=PLATFORM,
        space_word="workspace",
        user_mention="<@{id}>",
        role_mention="<!subteam^{id}>",
        allow_dms=settings.allow_dms,
        max_message_chars=MAX_MESSAGE_CHARS,
        edit_interval=EDIT_INTERVAL,
        rate_limit=RATE_LIMIT,
        # Slack retries events, and in HTTP mode several hosts may each receive one.
        redelivers=True,
    )
