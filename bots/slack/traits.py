"""Slack's facts, as the core reads them (`core.ports.PlatformTraits`), and its request budget.

The budget's figures (see the README's "Request budgets"): Slack publishes its Web API tiers as
floors per method, per workspace and app: Tier 2 (chat.startStream, chat.stopStream) 20 a
minute, Tier 3 (chat.update, chat.delete) 50, Tier 4 (chat.appendStream, chat.postEphemeral)
100; chat.postMessage about one a second per channel, with short bursts. ember keeps to the
floors.
"""

from __future__ import annotations

from core import Platform, PlatformTraits, SlackSettings
from core.budget import GLOBAL, BudgetPolicy, Window

PLATFORM: Platform = "slack"
# What the core splits at: a screenful, like a long chat message. Parts are cut finer if needed.
MAX_MESSAGE_CHARS = 3_000
# chat.update resends the whole text: about once a second (native streams go a little faster).
EDIT_INTERVAL = 1.0
# Essay deliveries sent at once; the budget's global window (20 a second) and each channel's one
# post a second set their pace.
ANNOUNCE_CONCURRENCY = 16


# Per workspace (the key is "<method>:<workspace id>"), except chat.postMessage: per channel
# ("channel:<id>", which essay posts spend too). The global window paces essay fan-out only,
# as before: Slack publishes no global figure; 20 a second is ember's own assumption.
TIERS = {
    GLOBAL: Window(20, 1.0),
    "channel": Window(1, 1.0),
    "chat.startStream": Window(20, 60.0),
    "chat.stopStream": Window(20, 60.0),
    "chat.update": Window(50, 60.0),
    "chat.delete": Window(50, 60.0),
    "chat.appendStream": Window(100, 60.0),
    "chat.postEphemeral": Window(100, 60.0),
    "users.info": Window(100, 60.0),
}
BUDGET = BudgetPolicy(
    windows=TIERS,
    # Room intermediate writes leave for the writes that end replies: a stream's last append
    # (as many as streams may run: Tier 2 allows 20 a minute), an ordinary message's final
    # update (half the tier), and a stop for every stream started.
    kept_for_final={"chat.update": 25, "chat.stopStream": 2, "chat.appendStream": 20},
    typing_headroom=0,
    # The tiers are the workspace's (and ember's global pace with them): several hosts split
    # them. A channel's one post a second stays whole: its replies come from one host.
    shared=frozenset(TIERS) - {"channel"},
)


def method_key(method: str, workspace_id: str, channel_id: str) -> str:
    """The budget key a Slack Web API call spends from."""
    return f"channel:{channel_id}" if method == "chat.postMessage" else f"{method}:{workspace_id}"


def slack_traits(settings: SlackSettings) -> PlatformTraits:
    return PlatformTraits(
        platform=PLATFORM,
        space_word="workspace",
        user_mention="<@{id}>",
        role_mention="<!subteam^{id}>",
        allow_dms=settings.allow_dms,
        max_message_chars=MAX_MESSAGE_CHARS,
        edit_interval=EDIT_INTERVAL,
        budget=BUDGET,
        announce_concurrency=ANNOUNCE_CONCURRENCY,
        # Slack retries events, and in HTTP mode several hosts may each receive one.
        redelivers=True,
    )
