"""The neutral values of access by request: what adapters, commands and the repository pass
around. A leaf module (it imports nothing else from core.access), so the repository in
core.store can build these without importing the services that use it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Clock = Callable[[], datetime]
ButtonAction = Literal["approve", "deny"]
# Why someone may talk to the model; "" for not at all.
AdmittedBecause = Literal["", "operator", "open", "bot", "moderator", "role", "grant"]

BUTTON_PREFIX = "ember:access:"
# The actor id of `ember access grant|revoke` on the terminal.
OPERATOR = "operator"
# The actor id of the expiry sweep in the audit log.
SWEEPER = "ember"


def button_id(action: ButtonAction, request_id: int) -> str:
    """`ember:access:approve:42`: survives restarts because it names the stored request."""
    return f"{BUTTON_PREFIX}{action}:{request_id}"


def parse_button_id(custom_id: str) -> tuple[ButtonAction, int] | None:
    if not custom_id.startswith(BUTTON_PREFIX):
        return None
    action, _, number = custom_id.removeprefix(BUTTON_PREFIX).partition(":")
    if action not in ("approve", "deny") or not number.isdigit():
        return None
    return ("approve" if action == "approve" else "deny"), int(number)


@dataclass(frozen=True)
class RequestView:
    """An access request, neutral: what the moderators' channel shows."""

    id: int
    platform: str
    workspace_id: str
    user_id: str
    user_name: str
    reason: str
    created_at: datetime
    status: str = "pending"
    decided_by: str = ""
    decided_at: datetime | None = None

    @property
    def approve_id(self) -> str:
        return button_id("approve", self.id)

    @property
    def deny_id(self) -> str:
        return button_id("deny", self.id)


@dataclass(frozen=True)
class GrantView:
    platform: str
    workspace_id: str
    user_id: str
    granted_by: str
    note: str
    granted_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class DueGrant:
    """A live grant whose end has come, with the version the sweep must find to expire it."""

    platform: str
    workspace_id: str
    user_id: str
    expires_at: datetime | None
    version: int


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor_id: str
    actor_name: str
    target_id: str
    action: str
    detail: str


@dataclass(frozen=True)
class Standing:
    """Whether and why someone may talk to the model in a place."""

    via: AdmittedBecause
    grant: GrantView | None = None
    pending: RequestView | None = None

    @property
    def allowed(self) -> bool:
        return bool(self.via)


@dataclass(frozen=True)
class GateFacts:
    """What the access check read: a live grant (or another reason), and today's usage."""

    granted: bool
    pending: bool = False  # looked up with the grant, so a refusal needs no second trip
    requests_today: int = 0
    tokens_today: int = 0
