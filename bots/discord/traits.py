"""Discord's facts, as the core reads them (`core.ports.PlatformTraits`), and its request budget.

The budget's figures (see the README's "Request budgets"): Discord publishes the global limit,
50 requests a second per bot token (more for bots Discord granted it: `[discord]
requests_per_second`), and that interaction responses are exempt from it. The per-channel
window for message creates and edits, 5 per 5 s, is observed (Discord reports it only in each
answer's X-RateLimit headers), as is the latency margin added to the global window.
"""

from __future__ import annotations

from core import DiscordSettings, Platform, PlatformTraits
from core.budget import GLOBAL, BudgetPolicy, Window

PLATFORM: Platform = "discord"
MAX_MESSAGE_CHARS = 2000
# Least seconds between two edits of one message: the channel window allows five writes in five
# seconds, so this keeps a single reply's updates smooth; the budget paces several replies.
EDIT_INTERVAL = 1.0
# Essay deliveries sent at once: the global window (50 a second) is the pace; 32 in flight keep
# it busy across each request's round trip.
ANNOUNCE_CONCURRENCY = 32
# The budget counts each request from its answer (core.budget.windows), which covers the
# network's delay; the twentieth of a second more is for Discord's clock and ours disagreeing.
GLOBAL_SECONDS = 1.05
CHANNEL_WRITES = Window(limit=5, seconds=5.0)


def channel_keys(channel_id: int) -> tuple[str, ...]:
    """The windows a message create, edit or typing call in a channel spends from."""
    return (GLOBAL, f"channel:{channel_id}")


def discord_budget(requests_per_second: int) -> BudgetPolicy:
    return BudgetPolicy(
        windows={GLOBAL: Window(requests_per_second, GLOBAL_SECONDS), "channel": CHANNEL_WRITES},
        # A message's final text and its buttons: two writes no intermediate edit may take.
        kept_for_final={"channel": 2},
        # Replies in flight hold their own slots (core.budget.holds); this small standing
        # reserve is for questions not yet asked, so a reply's first text finds a slot at once.
        kept_for_replies={GLOBAL: max(1, requests_per_second // 50)},
        typing_headroom=max(1, requests_per_second // 2),
        # The global limit is the bot token's: several hosts split it.
        shared=frozenset({GLOBAL}),
    )


def discord_traits(settings: DiscordSettings) -> PlatformTraits:
    return PlatformTraits(
        platform=PLATFORM,
        space_word="server",
        user_mention="<@{id}>",
        role_mention="<@&{id}>",
        allow_dms=settings.allow_dms,
        max_message_chars=MAX_MESSAGE_CHARS,
        edit_interval=EDIT_INTERVAL,
        budget=discord_budget(settings.requests_per_second),
        announce_concurrency=ANNOUNCE_CONCURRENCY,
    )
