"""Access by request: who may talk to the model, and everything members and moderators do
about it. `AccessService` is the one object callers hold; its `admit` is the check on every
message (core.chat.AccessGate).

Modules, one concept each:
  values         the neutral values (RequestView, GrantView, Standing, …) and button ids
  grant_plan     what granting does to a current grant (fresh, extend, or nothing)
  gate           the per-message check: grant, daily limits, spend cap, one reply slot
  requests       request, withdraw, decide (by command or button), deny
  grants         grant and revoke
  expiry         the expiry sweep
  notices        the adapter's Notifier, and delivery that never fails a change
  wording        everything said to people; command_wording, what the commands print
  platforms      the one place that branches on a platform's name
  inputs         checks on reasons, notes, days and the workspace
  commands       `/opus access …` and `/opus usage`
  service        AccessService, composing the above
Every SQL statement lives in core.store.access_repo.
"""

from core.access.command_wording import grant_line
from core.access.inputs import check_days, clean_text, require_workspace
from core.access.requests import Decision
from core.access.service import AccessService
from core.access.values import (
    BUTTON_PREFIX,
    OPERATOR,
    AdmittedBecause,
    AuditEntry,
    ButtonAction,
    Clock,
    GrantView,
    RequestView,
    Standing,
    button_id,
    parse_button_id,
)
from core.access.wording import MODERATORS_ONLY, in_text, mention, when_text

__all__ = [
    "BUTTON_PREFIX",
    "MODERATORS_ONLY",
    "OPERATOR",
    "AccessService",
    "AdmittedBecause",
    "AuditEntry",
    "ButtonAction",
    "Clock",
    "Decision",
    "GrantView",
    "RequestView",
    "Standing",
    "button_id",
    "check_days",
    "clean_text",
    "grant_line",
    "in_text",
    "mention",
    "parse_button_id",
    "require_workspace",
    "when_text",
]
