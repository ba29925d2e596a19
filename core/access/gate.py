"""The access check on every message's path (`MessageGate.admit`), and `standing`, the same
question asked by `/opus access status`.

It is cheap: no query at all in open mode or for member roles and moderators (without daily
limits); otherwise one prepared statement, run in one hop, that reads the grant by primary key
and the member's usage today by index. The workspace's spend this month comes from a short
cache. Replies in flight are counted per process; where several hosts share the database,
their slots are also held in it, and the spend is brought up to date at each check
(`core.access.shared_limits`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from core.access import wording
from core.access.shared_limits import SlotLeases, SpendTally
from core.access.values import AdmittedBecause, Clock, GateFacts, Standing
from core.chat import usage
from core.config import Settings
from core.errors import AccessDenied
from core.events import Place, User
from core.platforms import Platforms

if TYPE_CHECKING:  # the repository imports core.access's values; at run time it is handed in
    from core.store.access_repo import AccessRepository

# The workspace id charged for direct messages that nothing else pays for (see charged_workspace).
DM_BUDGET = "dm"
# Spend caps are monthly; totals this fresh are plenty and spare the hot path a large sum.
SPEND_CACHE = timedelta(seconds=30)


@dataclass(frozen=True)
class _Spend:
    month: datetime
    fetched_at: datetime
    micros: int


class MessageGate:
    """Admits a member's message (grant, daily limits, spend cap, one reply slot) or refuses
    it with a kind explanation."""

    def __init__(
        self,
        settings: Settings,
        repo: AccessRepository,
        clock: Clock,
        platforms: Platforms,
        spend_cache: timedelta = SPEND_CACHE,
        *,
        slots: SlotLeases | None = None,
        tally: SpendTally | None = None,
    ) -> None:
        self.settings = settings
        self.platforms = platforms
        self._repo = repo
        self._clock = clock
        self._spend_cache = spend_cache
        self._member_roles = frozenset(settings.access.member_roles)
        self._running: dict[tuple[str, str], int] = {}
        # Members told "still writing" since their last reply slot was freed: a flood of
        # messages while a reply is written earns one notice, not one per message.
        self._told: set[tuple[str, str]] = set()
        self._spend: dict[tuple[str, str], _Spend] = {}
        # Several hosts: slots and spend as every host sees them (None: this process alone).
        self._slots = slots
        self._tally = tally

    @asynccontextmanager
    async def admit(self, user: User, place: Place, *, taken_over: bool = False) -> AsyncIterator[None]:
        """Raise AccessDenied with a kind explanation, or hold a reply slot while the body runs.
        A reply `taken_over` from a host that died takes none: the dead host's lease is its
        slot until it lapses."""
        now = self._clock()
        if place.is_direct and not self._dms_allowed(place.platform):
            raise AccessDenied(wording.NO_DIRECT_MESSAGES)
        via = self.via_without_lookup(user, place.platform)
        limits = self.settings.access
        daily = limits.daily_messages > 0 or limits.daily_tokens > 0
        facts = GateFacts(granted=bool(via))
        # Limits and the spend cap are those of the workspace the reply is charged to.
        charged = await self.charged_workspace(user, place)
        if not via or daily:
            facts = await self._repo.gate_facts(
                user.id,
                place.platform,
                charged,
                now,
                scoped=not place.is_direct,
                grant=not via,
                daily=daily,
            )
        if not facts.granted:
            raise AccessDenied(self._refusal(user, place, pending=facts.pending))
        self._check_daily(facts, now)
        await self._check_spend(place.platform, charged, now)
        if taken_over:
            yield
            return
        key = (user.platform, user.id)
        self._take_slot(key)
        try:
            async with self._shared_slot(user):
                yield
        finally:
            self._release_slot(key)

    def _shared_slot(self, user: User) -> AbstractAsyncContextManager[None]:
        if self._slots is None:
            return nullcontext()
        return self._slots.hold(user.platform, user.id, self.settings.access.max_concurrent)

    def via_without_lookup(self, user: User, platform: str) -> AdmittedBecause:
        """The reasons to admit someone that need no database, cheapest first."""
        if self.platforms.of(platform).operator_seat:
            return "operator"  # the terminal is the operator's own seat
        if self.settings.access.mode == "open":
            return "open"
        if user.is_bot and self.settings.chat.allow_bots:
            return "bot"  # the operator let bots talk; bot depth and limits still bound them
        if user.is_moderator:
            return "moderator"
        if self._member_roles.intersection(user.role_ids):
            return "role"
        return ""

    async def allowed_by(
        self, user: User, platform: str, workspace_id: str | None, now: datetime
    ) -> AdmittedBecause:
        """How `user` may talk to the model ('' for not at all). `workspace_id` None means a
        direct message: access in any workspace counts."""
        via = self.via_without_lookup(user, platform)
        if via:
            return via
        scoped = workspace_id is not None
        facts = await self._repo.gate_facts(
            user.id, platform, workspace_id or "", now, scoped=scoped, grant=True, daily=False
        )
        return "grant" if facts.granted else ""

    async def standing(self, user: User, place: Place) -> Standing:
        """Whether and why `user` may talk in `place`, with their grant and pending request."""
        now = self._clock()
        # In a direct message, a grant in any workspace counts.
        scope = None if place.is_direct else place.workspace_id
        via = await self.allowed_by(user, place.platform, scope, now)
        if place.is_direct or not place.workspace_id:
            return Standing(via)
        return Standing(
            via,
            await self._repo.live_grant(place.platform, place.workspace_id, user.id, now),
            await self._repo.pending_request(place.platform, place.workspace_id, user.id),
        )

    def _dms_allowed(self, platform: str) -> bool:
        return self.platforms.of(platform).allow_dms

    def _refusal(self, user: User, place: Place, *, pending: bool) -> str:
        model = wording.model_name(self.settings)
        if self.settings.access.mode == "closed":
            return wording.by_invitation(user.name, model)
        if pending:
            return wording.request_waiting(user.name, model)
        command = self.settings.command_for(place.platform)
        return wording.how_to_ask(
            user.name, model, command, self._space(place.platform), direct=place.is_direct
        )

    def _check_daily(self, facts: GateFacts, now: datetime) -> None:
        limits = self.settings.access
        until_reset = usage.next_day(now) - now
        if 0 < limits.daily_messages <= facts.requests_today:
            model = wording.model_name(self.settings)
            raise AccessDenied(wording.daily_messages_reached(limits.daily_messages, model, until_reset))
        if 0 < limits.daily_tokens <= facts.tokens_today:
            model = wording.model_name(self.settings)
            raise AccessDenied(wording.daily_tokens_reached(limits.daily_tokens, model, until_reset))

    async def charged_workspace(self, user: User, place: Place) -> str:
        """A direct message that names no workspace (Discord) is charged to the workspace of
        the member's grant (the latest, if several), else to `[access] dm_workspace`, else to
        the platform's "dm" budget: never to nobody."""
        if not place.is_direct or place.workspace_id:
            return place.workspace_id
        granted = await self._repo.granting_workspace(place.platform, user.id, self._clock())
        return granted or self.settings.access.dm_workspace or DM_BUDGET

    async def _check_spend(self, platform: str, workspace_id: str, now: datetime) -> None:
        limits = self.settings.access
        cap = round(limits.monthly_spend_usd * 1_000_000)
        if cap > 0 and await self._month_spend(platform, workspace_id, now) >= cap:
            model = wording.model_name(self.settings)
            renews = usage.next_month(now)
            raise AccessDenied(
                wording.monthly_budget_spent(
                    self._space(platform), limits.monthly_spend_usd, model, renews, now
                )
            )

    def _space(self, platform: str) -> str:
        return self.platforms.of(platform).space_word

    async def _month_spend(self, platform: str, workspace_id: str, now: datetime) -> int:
        month = usage.month_start(now)
        if self._tally is not None:
            return await self._tally.spent(platform, workspace_id, month, now)
        cached = self._spend.get((platform, workspace_id))
        if cached and cached.month == month and now - cached.fetched_at < self._spend_cache:
            return cached.micros
        micros = await self._repo.spent_micros(platform, workspace_id, month)
        self._spend[(platform, workspace_id)] = _Spend(month, now, micros)
        return micros

    def _take_slot(self, key: tuple[str, str]) -> None:
        limit = self.settings.access.max_concurrent
        running = self._running.get(key, 0)
        if 0 < limit <= running:
            if key in self._told:
                raise AccessDenied("")  # told once this burst: refused in silence
            self._told.add(key)
            raise AccessDenied(wording.still_writing(running))
        self._running[key] = running + 1

    def _release_slot(self, key: tuple[str, str]) -> None:
        self._told.discard(key)  # a slot is free: the next refusal starts a new burst
        left = self._running.get(key, 1) - 1
        if left > 0:
            self._running[key] = left
        else:
            self._running.pop(key, None)
