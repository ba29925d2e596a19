"""What granting does to a member's current grant: the one rule behind grants and approvals.

Pure, and a leaf of core.access, so the repository can apply it inside its compare-and-set
loop (it re-plans after every lost race)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal


@dataclass(frozen=True)
class GrantChange:
    action: Literal["grant", "extend", "kept"]
    expires_at: datetime | None
    previous_expiry: datetime | None = None


def plan_grant(
    status: str | None, expires_at: datetime | None, days: int | None, now: datetime
) -> GrantChange:
    """What granting `days` (None: no end) does to a grant in `status` (None: no row yet): a
    fresh grant, an extension of a live one (from its end, not from now), or nothing when it
    already never ends."""
    live = status == "active"
    if live and expires_at is None:
        return GrantChange("kept", None)
    if live and expires_at is not None and expires_at > now:
        extended = None if days is None else expires_at + timedelta(days=days)
        return GrantChange("extend", extended, expires_at)
    return GrantChange("grant", now + timedelta(days=days) if days else None)
