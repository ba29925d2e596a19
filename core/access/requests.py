"""Members ask, moderators decide: the request workflow, by command or by button.

The first moderator to decide wins (the repository claims the request with compare-and-set);
later ones are told who decided and when. After a denial a member waits a day before asking
again, so moderators aren't pestered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from core.access import wording
from core.access.gate import MessageGate
from core.access.grant_plan import GrantChange
from core.access.inputs import check_days, clean_text
from core.access.notices import Notices
from core.access.values import Clock, RequestView, parse_button_id
from core.config import Settings
from core.errors import CommandError, NotModerator
from core.events import User

if TYPE_CHECKING:  # the repository imports core.access's values; at run time it is handed in
    from core.store.access_repo import AccessRepository

REQUEST_COOLDOWN = timedelta(days=1)


@dataclass(frozen=True)
class Decision:
    """The answer to a moderator's decision (command or button)."""

    text: str  # for the moderator who acted, privately
    decided: bool  # True when this call made the decision; False when it changed nothing
    request: RequestView | None  # the request as it now stands; None when there is none
    member_told: bool = False

    @property
    def settled(self) -> bool:
        """The request is decided (now or earlier): the adapter can retire its buttons."""
        return self.request is not None and self.request.status != "pending"

    @property
    def summary(self) -> str:
        """One line for the moderators' channel message, e.g. "Approved by <@U1> at …"."""
        return wording.decision_summary(self.request)


class RequestWorkflow:
    """request, withdraw, decide (and its button, `press`), deny."""

    def __init__(
        self,
        settings: Settings,
        repo: AccessRepository,
        gate: MessageGate,
        notices: Notices,
        clock: Clock,
        counted: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        # Told "approved" or "request_denied" once per decision made (the operator's metrics).
        self._counted = counted
        self._repo = repo
        self._gate = gate
        self._notices = notices
        self._clock = clock

    # ------------------------------------------------------------ members

    async def request(self, user: User, workspace_id: str, reason: str = "") -> str:
        """Record a pending request and tell the moderators; the answer is for the member."""
        reason = clean_text(reason, "reason")
        model = wording.model_name(self.settings)
        if not workspace_id:
            raise CommandError(wording.ask_from_a_channel(self._gate.platforms.of(user.platform).space_word))
        if user.is_bot:
            raise CommandError(wording.BOTS_CANNOT_REQUEST)
        mode = self.settings.access.mode
        if mode == "open":
            return wording.no_need_to_ask(model)
        if mode == "closed":
            return wording.requests_closed(model)
        now = self._clock()
        refusal = await self._cannot_request(user, workspace_id, now)
        if refusal:
            return refusal
        view = await self._repo.add_request(user, workspace_id, reason, now)
        if view is None:
            return wording.ALREADY_ASKED  # a second request raced the first: the index said no
        moderators_told = await self._notices.to_moderators(view)
        return wording.request_filed(user.name, moderators_told=moderators_told)

    async def _cannot_request(self, user: User, workspace_id: str, now: datetime) -> str:
        """Why this member should not file a request now ('' when they may)."""
        if await self._gate.allowed_by(user, user.platform, workspace_id, now):
            grant = await self._repo.live_grant(user.platform, workspace_id, user.id, now)
            return wording.already_has_access(
                wording.model_name(self.settings), grant.expires_at if grant else None
            )
        if await self._repo.pending_request(user.platform, workspace_id, user.id):
            return wording.ALREADY_ASKED
        denied = await self._repo.last_denial(user.platform, workspace_id, user.id)
        if denied is not None and now < denied + REQUEST_COOLDOWN:
            return wording.cooling_down(denied, denied + REQUEST_COOLDOWN)
        return ""

    async def withdraw(self, user: User, workspace_id: str) -> str:
        if not await self._repo.withdraw(user, workspace_id, self._clock()):
            raise CommandError(wording.NOTHING_TO_WITHDRAW)
        return wording.WITHDRAWN

    # ------------------------------------------------------------ moderators

    async def decide(
        self, request_id: int, moderator: User, approve: bool, reason: str = "", *, days: int | None = None
    ) -> Decision:
        """Approve or deny a pending request. The first moderator wins; later ones are told."""
        if not moderator.is_moderator:
            raise NotModerator()
        reason, days = clean_text(reason, "reason"), check_days(days)
        claimed, view, change = await self._repo.decide(
            request_id,
            moderator,
            approve=approve,
            reason=reason,
            days=days,
            now=self._clock(),
            note=wording.approval_note(request_id, reason),
            detail=lambda change: wording.decision_audit(request_id, change, reason),
        )
        if view is None or (view.platform, view.workspace_id) != (moderator.platform, moderator.workspace_id):
            raise CommandError(wording.no_such_request(request_id))
        if not claimed:
            return Decision(wording.too_late(view), decided=False, request=view)
        return await self._announce(view, approve, reason, change)

    async def _announce(
        self, request: RequestView, approve: bool, reason: str, change: GrantChange | None
    ) -> Decision:
        model = wording.model_name(self.settings)
        where = (request.platform, request.workspace_id, request.user_id)
        if self._counted is not None:
            self._counted("approved" if approve and change is not None else "request_denied")
        if approve and change is not None:
            told = await self._notices.to_member(*where, wording.granted_dm(model, change))
            text = wording.approved(request, change, told)
        else:
            told = await self._notices.to_member(*where, wording.denied_dm(model, reason))
            text = wording.denied(request, told)
        return Decision(text, decided=True, request=request, member_told=told)

    async def press(self, custom_id: str, moderator: User) -> Decision:
        """A moderator pressed Approve or Deny; every outcome is an answer, never an exception."""
        parsed = parse_button_id(custom_id)
        if parsed is None:
            return Decision(wording.NOT_MY_BUTTON, decided=False, request=None)
        action, request_id = parsed
        if not moderator.is_moderator:
            return Decision(wording.MODERATORS_ONLY, decided=False, request=None)
        try:
            return await self.decide(request_id, moderator, approve=action == "approve")
        except CommandError as error:
            return Decision(error.user_message, decided=False, request=None)

    async def deny(self, moderator: User, workspace_id: str, target_id: str, reason: str = "") -> str:
        """Turn down the member's pending request in this workspace."""
        if not moderator.is_moderator:
            raise NotModerator()
        reason = clean_text(reason, "reason")
        pending = await self._repo.pending_request(moderator.platform, workspace_id, target_id)
        if pending is None:
            raise CommandError(wording.no_pending_request(target_id))
        return (await self.decide(pending.id, moderator, False, reason)).text
