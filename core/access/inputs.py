"""Checks on what people type into access commands: reasons, notes, days, the workspace."""

from __future__ import annotations

from core.access import wording
from core.errors import CommandError, UsageError

REASON_MAX = 500
DAYS_MAX = 3650


def clean_text(value: str, what: str) -> str:
    """Trim a reason or note, refusing one too long to read at a glance."""
    text = " ".join(value.split())
    if len(text) > REASON_MAX:
        raise UsageError(wording.too_long(what, len(text), REASON_MAX), "")
    return text


def check_days(days: int | None) -> int | None:
    if days is not None and not 1 <= days <= DAYS_MAX:
        raise UsageError(wording.bad_days(days, DAYS_MAX), "")
    return days


def require_workspace(space: str, workspace_id: str) -> str:
    """`workspace_id`, or a clear CommandError where there is none (a DM)."""
    if not workspace_id:
        raise CommandError(wording.run_in_a_channel(space))
    return workspace_id
