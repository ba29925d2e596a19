"""Moderators (and the operator) give, extend and end access.

Granting someone with a waiting request approves the request with it, so the request never
lingers beside a grant. Granting again extends a live grant from its end, not from now.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.access import wording
from core.access.inputs import check_days, clean_text, require_workspace
from core.access.notices import Notices
from core.access.requests import RequestWorkflow
from core.access.values import Clock
from core.config import Settings
from core.errors import CommandError, NotModerator
from core.events import User
from core.platforms import Platforms

if TYPE_CHECKING:  # the repository imports core.access's values; at run time it is handed in
    from core.store.access_repo import AccessRepository


class GrantDesk:
    """grant and revoke: the writes behind `/opus access grant|revoke` and `ember access`."""

    def __init__(
        self,
        settings: Settings,
        repo: AccessRepository,
        requests: RequestWorkflow,
        notices: Notices,
        clock: Clock,
        platforms: Platforms,
    ) -> None:
        self.settings = settings
        self._platforms = platforms
        self._repo = repo
        self._requests = requests
        self._notices = notices
        self._clock = clock

    async def grant(
        self, moderator: User, workspace_id: str, target_id: str, days: int | None = None, note: str = ""
    ) -> str:
        """Give (or extend) access; a pending request by the member is approved with it."""
        if not moderator.is_moderator:
            raise NotModerator()
        note, days = clean_text(note, "note"), check_days(days)
        require_workspace(self._platforms.of(moderator.platform).space_word, workspace_id)
        pending = await self._repo.pending_request(moderator.platform, workspace_id, target_id)
        if pending is not None:
            decision = await self._requests.decide(pending.id, moderator, True, note, days=days)
            if decision.decided:
                return decision.text
        key = (moderator.platform, workspace_id, target_id)
        change = await self._repo.grant(
            key, moderator, days, note, self._clock(), lambda change: wording.grant_audit(change, note)
        )
        if change.action == "kept":
            return wording.already_forever(target_id)
        dm = wording.granted_dm(wording.model_name(self.settings), change)
        told = await self._notices.to_member(moderator.platform, workspace_id, target_id, dm)
        return wording.granted(target_id, change, told)

    async def revoke(self, moderator: User, workspace_id: str, target_id: str, reason: str = "") -> str:
        if not moderator.is_moderator:
            raise NotModerator()
        reason = clean_text(reason, "reason")
        key = (moderator.platform, workspace_id, target_id)
        if not await self._repo.revoke(key, moderator, self._clock(), wording.reason_audit(reason)):
            raise CommandError(wording.nothing_to_revoke(target_id))
        dm = wording.revoked_dm(wording.model_name(self.settings), reason)
        told = await self._notices.to_member(moderator.platform, workspace_id, target_id, dm)
        return wording.revoked(target_id, told)
