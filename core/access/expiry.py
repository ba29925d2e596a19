"""The expiry sweep: grants whose time has come are marked expired, audited, and their members
told once. Access never waits for it: an expired grant stops counting at its moment (see the
repository's definition of a live grant); the sweep only tidies and tells."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from core.access import wording
from core.access.notices import Notices
from core.access.values import SWEEPER, Clock
from core.config import Settings

if TYPE_CHECKING:  # the repository imports core.access's values; at run time it is handed in
    from core.store.access_repo import AccessRepository

log = logging.getLogger(__name__)


class ExpirySweep:
    def __init__(self, settings: Settings, repo: AccessRepository, notices: Notices, clock: Clock) -> None:
        self.settings = settings
        self._repo = repo
        self._notices = notices
        self._clock = clock

    async def expire_due(self, batch: int = 500) -> int:
        """Expire up to `batch` due grants; how many this call expired (another host's sweep
        may have recorded some first)."""
        now = self._clock()
        expired = 0
        for grant in await self._repo.due_grants(now, batch):
            if await self._repo.expire(grant, SWEEPER, now, wording.expiry_audit(grant.expires_at)):
                expired += 1
                model, command = wording.model_name(self.settings), self.settings.command_for(grant.platform)
                await self._notices.to_member(
                    grant.platform, grant.workspace_id, grant.user_id, wording.expired_dm(model, command)
                )
        return expired

    async def sweep_forever(self, every: float = 60.0) -> None:
        """Run `expire_due` periodically; a database hiccup is logged and retried next time."""
        while True:
            try:
                await self.expire_due()
            except Exception:
                log.exception("the access expiry sweep failed; retrying in %.0f s", every)
            await asyncio.sleep(every)
