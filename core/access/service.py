"""`AccessService`: access by request behind one object, as the runtime, the chat engine (its
`admit` is the `core.chat.AccessGate`), the commands and the adapters use it. It composes the
parts and adds nothing of its own: each method says which part answers."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta

from core.access import wording
from core.access.expiry import ExpirySweep
from core.access.gate import SPEND_CACHE, MessageGate
from core.access.grants import GrantDesk
from core.access.notices import Notices
from core.access.requests import Decision, RequestWorkflow
from core.access.shared_limits import SlotLeases, SpendTally
from core.access.values import AuditEntry, Clock, GrantView, RequestView, Standing
from core.config import Settings
from core.events import Place, User, utcnow
from core.platforms import Platforms
from core.ports import Notifier
from core.store import Store


class AccessService:
    """The access gate (`admit`) and everything members and moderators do about access."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        clock: Clock = utcnow,
        spend_cache: timedelta = SPEND_CACHE,
        platforms: Platforms | None = None,
        decisions: Callable[[str], None] | None = None,
    ) -> None:
        """`decisions` is told each moderator decision as it is made ("approved" or
        "request_denied"), for the operator's metrics."""
        self.settings = settings
        # What each platform calls a workspace, whether it answers DMs: told by the adapters.
        self.platforms = platforms or Platforms()
        self.store = store
        self._clock = clock
        # Imported here, not above: the repository builds core.access's values, so importing it
        # while core.access itself loads would go round in a circle.
        from core.store.access_repo import AccessRepository

        self._repo = AccessRepository(store)
        self._notices = Notices()
        slots, tally = shared_limits(store, spend_cache)
        self._gate = MessageGate(
            settings, self._repo, clock, self.platforms, spend_cache, slots=slots, tally=tally
        )
        self._requests = RequestWorkflow(settings, self._repo, self._gate, self._notices, clock, decisions)
        self._grants = GrantDesk(settings, self._repo, self._requests, self._notices, clock, self.platforms)
        self._expiry = ExpirySweep(settings, self._repo, self._notices, clock)

    def register_notifier(self, platform: str, notifier: Notifier) -> None:
        self._notices.register(platform, notifier)

    @property
    def mode(self) -> str:
        return self.settings.access.mode

    def now(self) -> datetime:
        return self._clock()

    @property
    def model_name(self) -> str:
        return wording.model_name(self.settings)

    def command(self, platform: str) -> str:
        """The top-level command as members type it on this platform."""
        return self.settings.command_for(platform)

    # ------------------------------------------------------------ the gate (gate.py)

    def admit(
        self, user: User, place: Place, *, taken_over: bool = False
    ) -> AbstractAsyncContextManager[None]:
        """Raise AccessDenied with a kind explanation, or hold a reply slot while the body runs."""
        # The gate's own, not a wrapper: this is the hot path.
        return self._gate.admit(user, place, taken_over=taken_over)

    async def charged_workspace(self, user: User, place: Place) -> str:
        return await self._gate.charged_workspace(user, place)

    async def standing(self, user: User, place: Place) -> Standing:
        return await self._gate.standing(user, place)

    # ------------------------------------------------------------ requests (requests.py)

    async def request(self, user: User, workspace_id: str, reason: str = "") -> str:
        return await self._requests.request(user, workspace_id, reason)

    async def withdraw(self, user: User, workspace_id: str) -> str:
        return await self._requests.withdraw(user, workspace_id)

    async def decide(
        self, request_id: int, moderator: User, approve: bool, reason: str = "", *, days: int | None = None
    ) -> Decision:
        return await self._requests.decide(request_id, moderator, approve, reason, days=days)

    async def press(self, custom_id: str, moderator: User) -> Decision:
        return await self._requests.press(custom_id, moderator)

    async def deny(self, moderator: User, workspace_id: str, target_id: str, reason: str = "") -> str:
        return await self._requests.deny(moderator, workspace_id, target_id, reason)

    # ------------------------------------------------------------ grants (grants.py)

    async def grant(
        self, moderator: User, workspace_id: str, target_id: str, days: int | None = None, note: str = ""
    ) -> str:
        return await self._grants.grant(moderator, workspace_id, target_id, days, note)

    async def revoke(self, moderator: User, workspace_id: str, target_id: str, reason: str = "") -> str:
        return await self._grants.revoke(moderator, workspace_id, target_id, reason)

    # ------------------------------------------------------------ expiry (expiry.py)

    async def expire_due(self, batch: int = 500) -> int:
        return await self._expiry.expire_due(batch)

    async def sweep_forever(self, every: float = 60.0) -> None:
        await self._expiry.sweep_forever(every)

    # ------------------------------------------------------------ listings (the repository)

    async def pending(self, platform: str, workspace_id: str) -> list[RequestView]:
        """Waiting requests, oldest first."""
        return await self._repo.pending_requests(platform, workspace_id)

    async def grants(self, platform: str, workspace_id: str) -> list[GrantView]:
        """Live grants in a workspace, those ending soonest first, then those without an end."""
        return await self._repo.live_grants(platform, workspace_id, self._clock())

    async def audit_log(
        self, platform: str, workspace_id: str, target_id: str | None = None, limit: int = 20
    ) -> list[AuditEntry]:
        """The newest entries first."""
        return await self._repo.audit_entries(platform, workspace_id, target_id, limit)


def shared_limits(store: Store, spend_cache: timedelta) -> tuple[SlotLeases | None, SpendTally | None]:
    """On PostgreSQL (the database several hosts share), reply slots and the spend total are
    kept as every host sees them; on SQLite (one host), in this process."""
    if store.dialect != "postgresql":
        return None, None
    from core.store.leases_repo import LeasesRepo
    from core.store.spend_repo import SpendRepo

    return SlotLeases(LeasesRepo(store)), SpendTally(SpendRepo(store), spend_cache)
