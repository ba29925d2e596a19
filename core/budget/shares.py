"""A host's share of budgets that belong to the token or the workspace, not to one host.

Discord's global limit is per bot token, and Slack's method tiers are per workspace and app:
hosts running one bot spend from the same windows. Each live host (`core.ops.liveness`) takes
an equal share: the windows of the kinds a policy marks `shared` are divided by the number of
live hosts, and so is the room those windows keep for what people wait for, so a host's
priorities hold within its share as they did within the whole. Windows of other kinds (a
channel's) stay whole: a channel is written by the host that answers in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from core.budget.windows import Window

if TYPE_CHECKING:
    from core.budget.scheduler import BudgetPolicy


def share_of(policy: BudgetPolicy, hosts: int) -> BudgetPolicy:
    """`policy` as one of `hosts` live hosts spends it (the whole when `hosts` is 1)."""
    if hosts <= 1 or not policy.shared:
        return policy
    windows = {
        kind: Window(max(1, window.limit // hosts), window.seconds) if kind in policy.shared else window
        for kind, window in policy.windows.items()
    }
    return replace(
        policy,
        windows=windows,
        kept_for_final=_kept(policy.kept_for_final, policy, windows),
        kept_for_replies=_kept(policy.kept_for_replies, policy, windows),
        typing_headroom=policy.typing_headroom // hosts,
    )


def _kept(kept: Mapping[str, int], whole: BudgetPolicy, shared: Mapping[str, Window]) -> dict[str, int]:
    """Room kept in a window, in proportion to what is left of it, and always less than it."""
    scaled = {}
    for kind, slots in kept.items():
        window = whole.windows.get(kind)
        if window is None or kind not in whole.shared:
            scaled[kind] = slots
            continue
        share = shared[kind].limit
        scaled[kind] = min(slots * share // window.limit, share - 1)
    return scaled
