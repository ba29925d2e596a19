"""Who may talk to the model: modes, grants, requests, member roles, limits and the audit log.

The check (`AccessService.admit`) is on every message's path, so it is cheap: no query at all in
open mode or for member roles and moderators (without daily limits); otherwise one prepared
statement, run in one hop (core.store.hot_reads), that reads the grant by primary key and the
member's usage today by index. The workspace's spend this month comes from a short cache.

Every write is a compare-and-set (`UPDATE ... WHERE status = 'pending'`, a version column, a
partial unique index), so two moderators, two buttons or two hosts acting at once leave one
decision and a consistent store on SQLite and PostgreSQL alike. Each change adds its audit row
in the same transaction.

Adapters implement `Notifier` (post requests to the moderators' channel with Approve and Deny
buttons, DM a member) and register it per platform; the buttons' custom ids come from
`button_id` and go back through `AccessService.press`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import Delete, Select, Update, bindparam, exists, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.chat import usage
from core.config import Settings
from core.errors import AccessDenied, CommandError, NotModerator, StoreError, UsageError
from core.events import Place, Platform, User, utcnow
from core.store import AccessAudit, AccessGrant, AccessRequest, Store, Usage

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
ButtonAction = Literal["approve", "deny"]

REASON_MAX = 500
DAYS_MAX = 3650
# After a denial a member waits this long before asking again, so moderators aren't pestered.
REQUEST_COOLDOWN = timedelta(days=1)
# Spend caps are monthly; totals this fresh are plenty and spare the hot path a large sum.
SPEND_CACHE = timedelta(seconds=30)
BUTTON_PREFIX = "ember:access:"
OPERATOR = "operator"
MODERATORS_ONLY = "Approving and denying requests is for moderators only; nothing was changed."


# ---------------------------------------------------------------- what adapters see


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


class Notifier(Protocol):
    """What a platform adapter does for access by request. Register with
    `AccessService.register_notifier(platform, notifier)`."""

    async def notify_moderators(self, workspace_id: str, request: RequestView) -> None:
        """Post the request to the workspace's moderators' channel with two buttons whose
        custom ids are `request.approve_id` and `request.deny_id`."""
        ...

    async def tell_member(self, workspace_id: str, user_id: str, text: str) -> bool:
        """Send `text` to the member by DM; False when that is impossible (DMs closed)."""
        ...


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
        request = self.request
        if request is None or request.status == "pending":
            return ""
        when = f" at {when_text(request.decided_at)}" if request.decided_at else ""
        return f"{request.status.capitalize()} by {mention(request.decided_by)}{when}."


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
class AuditEntry:
    at: datetime
    actor_id: str
    actor_name: str
    target_id: str
    action: str
    detail: str


Via = Literal["", "operator", "open", "bot", "moderator", "role", "grant"]


@dataclass(frozen=True)
class Standing:
    """Whether and why someone may talk to the model in a place."""

    via: Via
    grant: GrantView | None = None
    pending: RequestView | None = None

    @property
    def allowed(self) -> bool:
        return bool(self.via)


@dataclass(frozen=True)
class _GrantChange:
    action: Literal["grant", "extend", "kept"]
    expires_at: datetime | None
    previous_expiry: datetime | None = None


@dataclass(frozen=True)
class _Facts:
    """What the access check read: a live grant (or another reason), and today's usage."""

    granted: bool
    pending: bool = False  # looked up with the grant, so a refusal needs no second trip
    requests_today: int = 0
    tokens_today: int = 0


@dataclass(frozen=True)
class _Spend:
    month: datetime
    fetched_at: datetime
    micros: int


# ---------------------------------------------------------------- small pure helpers


def mention(user_id: str) -> str:
    """`<@id>` renders as a mention on both Discord and Slack."""
    return f"<@{user_id}>" if user_id != OPERATOR else "the operator"


def when_text(moment: datetime | None) -> str:
    return "never" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


def in_text(delta: timedelta) -> str:
    """A friendly 'in …' for a reset time: days, else hours and minutes."""
    minutes = max(1, int(delta.total_seconds() // 60))
    if minutes >= 48 * 60:
        return f"in {(minutes + 12 * 60) // (24 * 60)} days"  # to the nearest day
    hours, minutes = divmod(minutes, 60)
    return f"in {hours} h {minutes} min" if hours else f"in {minutes} min"


def clean_text(value: str, what: str) -> str:
    """Trim a reason or note, refusing one too long to read at a glance."""
    text = " ".join(value.split())
    if len(text) > REASON_MAX:
        raise UsageError(f"the {what} is {len(text)} characters long; please keep it to {REASON_MAX}", "")
    return text


def check_days(days: int | None) -> int | None:
    if days is not None and not 1 <= days <= DAYS_MAX:
        raise UsageError(f"days should be a whole number from 1 to {DAYS_MAX}, not {days}", "")
    return days


def _request_view(row: AccessRequest) -> RequestView:
    return RequestView(
        id=row.id or 0,
        platform=row.platform,
        workspace_id=row.workspace_id,
        user_id=row.user_id,
        user_name=row.user_name,
        reason=row.reason,
        created_at=row.created_at,
        status=row.status,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
    )


def _grant_view(row: AccessGrant) -> GrantView:
    return GrantView(
        row.platform, row.workspace_id, row.user_id, row.granted_by, row.note, row.granted_at, row.expires_at
    )


def _active(now: datetime) -> Any:
    """The one definition of a live grant; it never depends on the expiry sweep having run."""
    return (col(AccessGrant.status) == "active") & or_(
        col(AccessGrant.expires_at).is_(None), col(AccessGrant.expires_at) > now
    )


def _check_statement(grant: bool, scoped: bool, daily: bool) -> Select[Any]:
    """The access check as one statement with bind parameters (:platform, :workspace, :user,
    :now, :day), built once per shape: building costs more than SQLite takes to run it.
    Unscoped (a direct message), a grant in any workspace of the platform counts."""
    columns: list[Any] = []
    if grant:
        where = [
            col(AccessGrant.platform) == bindparam("platform"),
            col(AccessGrant.user_id) == bindparam("user"),
            col(AccessGrant.status) == "active",
            or_(col(AccessGrant.expires_at).is_(None), col(AccessGrant.expires_at) > bindparam("now")),
        ]
        if scoped:
            where.append(col(AccessGrant.workspace_id) == bindparam("workspace"))
        columns.append(exists().where(*where))
        if scoped:
            columns.append(
                exists().where(
                    col(AccessRequest.platform) == bindparam("platform"),
                    col(AccessRequest.workspace_id) == bindparam("workspace"),
                    col(AccessRequest.user_id) == bindparam("user"),
                    col(AccessRequest.status) == "pending",
                )
            )
    if daily:
        tokens = Usage.input_tokens + Usage.output_tokens + Usage.cache_write_tokens + Usage.cache_read_tokens
        columns += [func.count(col(Usage.id)), func.coalesce(func.sum(tokens), 0)]
    statement: Select[Any] = select(*columns)
    if daily:
        statement = statement.where(
            col(Usage.platform) == bindparam("platform"),
            col(Usage.workspace_id) == bindparam("workspace"),
            col(Usage.user_id) == bindparam("user"),
            col(Usage.created_at) >= bindparam("day"),
        )
    return statement


def _cas(statement: Update | Delete) -> Any:
    # Bulk statements: nothing in the session needs synchronising, and rowcount is the answer.
    return statement.execution_options(synchronize_session=False)


# ---------------------------------------------------------------- the service


class AccessService:
    """The access gate (`admit`) and everything members and moderators do about access."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        clock: Clock = utcnow,
        spend_cache: timedelta = SPEND_CACHE,
    ) -> None:
        self.settings = settings
        self.store = store
        self._clock = clock
        self._spend_cache = spend_cache
        self._member_roles = frozenset(settings.access.member_roles)
        self._notifiers: dict[str, Notifier] = {}
        # Replies in flight per (platform, user): per process, like the replies themselves.
        self._running: dict[tuple[str, str], int] = {}
        self._spend: dict[tuple[str, str], _Spend] = {}
        self._statements: dict[tuple[bool, bool, bool], Select[Any]] = {}

    def register_notifier(self, platform: str, notifier: Notifier) -> None:
        self._notifiers[platform] = notifier

    @property
    def mode(self) -> str:
        return self.settings.access.mode

    def now(self) -> datetime:
        return self._clock()

    # ------------------------------------------------------------ the gate

    @asynccontextmanager
    async def admit(self, user: User, place: Place) -> AsyncIterator[None]:
        """Raise AccessDenied with a kind explanation, or hold a reply slot while the body runs."""
        now = self._clock()
        if place.is_direct and not self._dms_allowed(place.platform):
            raise AccessDenied("I don't answer direct messages here; please talk to me in a channel.")
        via = self._allowed_without_lookup(user, place.platform)
        limits = self.settings.access
        daily = limits.daily_messages > 0 or limits.daily_tokens > 0
        facts = _Facts(granted=bool(via))
        if not via or daily:
            facts = await self._lookup(
                user.id,
                place.platform,
                place.workspace_id,
                not place.is_direct,
                now,
                grant=not via,
                daily=daily,
            )
        if not facts.granted:
            raise AccessDenied(self._refusal(user, place, pending=facts.pending))
        self._check_daily(facts, now)
        await self._check_spend(place, now)
        key = (user.platform, user.id)
        self._take_slot(key)
        try:
            yield
        finally:
            self._release_slot(key)

    def _allowed_without_lookup(self, user: User, platform: str) -> Via:
        """The reasons to admit someone that need no database, cheapest first."""
        if platform == "console":
            return "operator"  # the terminal is the operator's own seat
        if self.mode == "open":
            return "open"
        if user.is_bot and self.settings.chat.allow_bots:
            return "bot"  # the operator let bots talk; bot depth and limits still bound them
        if user.is_moderator:
            return "moderator"
        if self._member_roles.intersection(user.role_ids):
            return "role"
        return ""

    async def _allowed_by(self, user: User, platform: str, workspace_id: str | None, now: datetime) -> Via:
        """How `user` may talk to the model ('' for not at all). `workspace_id` None means a
        direct message: access in any workspace counts."""
        via = self._allowed_without_lookup(user, platform)
        if via:
            return via
        scoped = workspace_id is not None
        facts = await self._lookup(
            user.id, platform, workspace_id or "", scoped, now, grant=True, daily=False
        )
        return "grant" if facts.granted else ""

    async def _lookup(
        self,
        user_id: str,
        platform: str,
        workspace_id: str,
        scoped: bool,
        now: datetime,
        *,
        grant: bool,
        daily: bool,
    ) -> _Facts:
        """Everything the check needs from the database in one prepared statement (one hop):
        a live grant (in this workspace, or in any when not `scoped`), a pending request, and
        what the member used today in this workspace."""
        key = (grant, scoped, daily)
        statement = self._statements.get(key)
        if statement is None:
            statement = self._statements[key] = _check_statement(*key)
        params = {
            "platform": platform,
            "workspace": workspace_id,
            "user": user_id,
            "now": now,
            "day": usage.day_start(now),
        }
        row = await self.store.reads.first(statement, params)
        # Without FROM, or with only aggregates, a select always has exactly one row.
        values: tuple[Any, ...] = tuple(row) if row is not None else ()
        granted = bool(values[0]) if grant else True
        pending = bool(values[1]) if grant and scoped else False
        requests, tokens_used = (int(values[-2]), int(values[-1])) if daily else (0, 0)
        return _Facts(granted, pending, requests, tokens_used)

    def _dms_allowed(self, platform: str) -> bool:
        if platform == "discord":
            return self.settings.discord.allow_dms
        if platform == "slack":
            return self.settings.slack.allow_dms
        return True

    def _refusal(self, user: User, place: Place, *, pending: bool) -> str:
        model, space = self.model_name, space_word(place.platform)
        if self.mode == "closed":
            return (
                f"Sorry, {user.name}: talking with {model} here is by invitation of the moderators, "
                "so I can't answer you yet. If you'd like to join in, please ask one of them."
            )
        if pending:
            return (
                f"Thanks for your patience, {user.name}: your request to talk with {model} is with "
                "the moderators. You'll hear back by DM."
            )
        where = f" in a channel of a {space} where I live" if place.is_direct else ""
        return (
            f"Hi {user.name}! Talking with {model} here is by request, because every reply costs "
            f"real money. You can ask with `{self.command(place.platform)} access request [reason]`"
            f"{where}, and the moderators will get back to you."
        )

    def _check_daily(self, facts: _Facts, now: datetime) -> None:
        limits = self.settings.access
        reset = f"It resets at 00:00 UTC, {in_text(usage.next_day(now) - now)}."
        if 0 < limits.daily_messages <= facts.requests_today:
            raise AccessDenied(
                f"You've reached today's limit of {limits.daily_messages} messages to "
                f"{self.model_name}. {reset}"
            )
        if 0 < limits.daily_tokens <= facts.tokens_today:
            raise AccessDenied(
                f"You've reached today's limit of {limits.daily_tokens:,} tokens with "
                f"{self.model_name}. {reset}"
            )

    async def _check_spend(self, place: Place, now: datetime) -> None:
        limits = self.settings.access
        cap = round(limits.monthly_spend_usd * 1_000_000)
        if cap > 0 and await self._month_spend(place.platform, place.workspace_id, now) >= cap:
            renews = usage.next_month(now)
            raise AccessDenied(
                f"This {space_word(place.platform)} has used its monthly budget of "
                f"${limits.monthly_spend_usd:,.2f} for {self.model_name}. It resets on "
                f"{renews.day} {renews:%B} at 00:00 UTC, {in_text(renews - now)}."
            )

    async def _month_spend(self, platform: str, workspace_id: str, now: datetime) -> int:
        month = usage.month_start(now)
        cached = self._spend.get((platform, workspace_id))
        if cached and cached.month == month and now - cached.fetched_at < self._spend_cache:
            return cached.micros
        totals = await usage.totals(self.store, platform=platform, workspace_id=workspace_id, since=month)
        self._spend[(platform, workspace_id)] = _Spend(month, now, totals.cost_micros)
        return totals.cost_micros

    def _take_slot(self, key: tuple[str, str]) -> None:
        limit = self.settings.access.max_concurrent
        running = self._running.get(key, 0)
        if 0 < limit <= running:
            replies = "a reply" if running == 1 else f"{running} replies"
            raise AccessDenied(
                f"I'm still writing {replies} for you; please wait until it's finished, then ask again."
            )
        self._running[key] = running + 1

    def _release_slot(self, key: tuple[str, str]) -> None:
        left = self._running.get(key, 1) - 1
        if left > 0:
            self._running[key] = left
        else:
            self._running.pop(key, None)

    # ------------------------------------------------------------ reading

    async def standing(self, user: User, place: Place) -> Standing:
        """Whether and why `user` may talk in `place`, with their grant and pending request."""
        now = self._clock()
        via = await self._allowed_by(user, place.platform, _scope(place), now)
        if place.is_direct or not place.workspace_id:
            return Standing(via)
        return Standing(
            via,
            await self._grant(place.platform, place.workspace_id, user.id, now),
            await self._pending(place.platform, place.workspace_id, user.id),
        )

    async def _grant(self, platform: str, workspace_id: str, user_id: str, now: datetime) -> GrantView | None:
        query = select(AccessGrant).where(
            AccessGrant.platform == platform,
            AccessGrant.workspace_id == workspace_id,
            AccessGrant.user_id == user_id,
            _active(now),
        )
        async with self.store.session() as session:
            row = (await session.exec(query)).first()
        return _grant_view(row) if row else None

    async def _pending(self, platform: str, workspace_id: str, user_id: str) -> RequestView | None:
        query = select(AccessRequest).where(
            AccessRequest.platform == platform,
            AccessRequest.workspace_id == workspace_id,
            AccessRequest.user_id == user_id,
            AccessRequest.status == "pending",
        )
        async with self.store.session() as session:
            row = (await session.exec(query)).first()
        return _request_view(row) if row else None

    async def pending(self, platform: str, workspace_id: str) -> list[RequestView]:
        query = (
            select(AccessRequest)
            .where(
                AccessRequest.platform == platform,
                AccessRequest.workspace_id == workspace_id,
                AccessRequest.status == "pending",
            )
            .order_by(col(AccessRequest.created_at))
        )
        async with self.store.session() as session:
            return [_request_view(row) for row in (await session.exec(query)).all()]

    async def grants(self, platform: str, workspace_id: str) -> list[GrantView]:
        """Live grants in a workspace, those ending soonest first, then those without an end."""
        query = (
            select(AccessGrant)
            .where(AccessGrant.platform == platform, AccessGrant.workspace_id == workspace_id)
            .where(_active(self._clock()))
            .order_by(
                col(AccessGrant.expires_at).is_(None), col(AccessGrant.expires_at), col(AccessGrant.user_id)
            )
        )
        async with self.store.session() as session:
            return [_grant_view(row) for row in (await session.exec(query)).all()]

    async def audit_log(
        self, platform: str, workspace_id: str, target_id: str | None = None, limit: int = 20
    ) -> list[AuditEntry]:
        """The newest entries first."""
        query = select(AccessAudit).where(
            AccessAudit.platform == platform, AccessAudit.workspace_id == workspace_id
        )
        if target_id is not None:
            query = query.where(AccessAudit.target_id == target_id)
        query = query.order_by(col(AccessAudit.at).desc(), col(AccessAudit.id).desc()).limit(limit)
        async with self.store.session() as session:
            rows = (await session.exec(query)).all()
        return [AuditEntry(r.at, r.actor_id, r.actor_name, r.target_id, r.action, r.detail) for r in rows]

    # ------------------------------------------------------------ members

    async def request(self, user: User, workspace_id: str, reason: str = "") -> str:
        """Record a pending request and tell the moderators; the answer is for the member."""
        reason = clean_text(reason, "reason")
        model = self.model_name
        if not workspace_id:
            raise CommandError(
                f"Access is given per {space_word(user.platform)}, so please ask from a channel there."
            )
        if user.is_bot:
            raise CommandError("Bots can't request access.")
        if self.mode == "open":
            return f"No need to ask: everyone may talk with {model} here."
        if self.mode == "closed":
            return (
                f"Requests are closed here: talking with {model} is by invitation of the moderators. "
                "If you'd like to join in, please ask one of them."
            )
        now = self._clock()
        refusal = await self._cannot_request(user, workspace_id, now)
        if refusal:
            return refusal
        try:
            view = await self._insert_request(user, workspace_id, reason, now)
        except IntegrityError:
            return self._already_asked()  # a second request raced the first: the index said no
        told = await self._notify_moderators(view)
        if not told:
            return f"Thanks, {user.name}! Your request is recorded; the moderators will see it and you'll hear back."
        return f"Thanks, {user.name}! Your request is with the moderators; you'll hear back by DM."

    async def _cannot_request(self, user: User, workspace_id: str, now: datetime) -> str:
        """Why this member should not file a request now ('' when they may)."""
        via = await self._allowed_by(user, user.platform, workspace_id, now)
        if via:
            grant = await self._grant(user.platform, workspace_id, user.id, now)
            until = f" until {when_text(grant.expires_at)}" if grant and grant.expires_at else ""
            return f"You already have access to {self.model_name} here{until}; no need to ask."
        if await self._pending(user.platform, workspace_id, user.id):
            return self._already_asked()
        denied = await self._last_denial(user.platform, workspace_id, user.id)
        if denied is not None and now < denied + REQUEST_COOLDOWN:
            return (
                f"The moderators decided on your last request at {when_text(denied)}. "
                f"You can ask again after {when_text(denied + REQUEST_COOLDOWN)}."
            )
        return ""

    @staticmethod
    def _already_asked() -> str:
        return "You've already asked, and the moderators haven't decided yet. You'll hear back by DM."

    async def _last_denial(self, platform: str, workspace_id: str, user_id: str) -> datetime | None:
        query = (
            select(AccessRequest.decided_at)
            .where(
                AccessRequest.platform == platform,
                AccessRequest.workspace_id == workspace_id,
                AccessRequest.user_id == user_id,
                AccessRequest.status == "denied",
            )
            .order_by(col(AccessRequest.decided_at).desc())
            .limit(1)
        )
        async with self.store.session() as session:
            return (await session.exec(query)).first()

    async def _insert_request(self, user: User, workspace_id: str, reason: str, now: datetime) -> RequestView:
        row = AccessRequest(
            platform=user.platform,
            workspace_id=workspace_id,
            user_id=user.id,
            user_name=user.name[:200],
            reason=reason,
            created_at=now,
        )
        async with self.store.session() as session:
            session.add(row)
            await session.flush()
            view = _request_view(row)
            self._audit(session, user.platform, workspace_id, user, user.id, "request", reason, now)
        return view

    async def withdraw(self, user: User, workspace_id: str) -> str:
        now = self._clock()
        async with self.store.session() as session:
            result = await session.exec(
                _cas(
                    update(AccessRequest)
                    .where(
                        col(AccessRequest.platform) == user.platform,
                        col(AccessRequest.workspace_id) == workspace_id,
                        col(AccessRequest.user_id) == user.id,
                        col(AccessRequest.status) == "pending",
                    )
                    .values(status="withdrawn", decided_by=user.id, decided_at=now)
                )
            )
            if result.rowcount:
                self._audit(session, user.platform, workspace_id, user, user.id, "withdraw", "", now)
        if not result.rowcount:
            raise CommandError("You have no request waiting, so there is nothing to withdraw.")
        return "Done: your request is withdrawn."

    # ------------------------------------------------------------ moderators

    async def decide(
        self,
        request_id: int,
        moderator: User,
        approve: bool,
        reason: str = "",
        *,
        days: int | None = None,
    ) -> Decision:
        """Approve or deny a pending request. The first moderator wins; later ones are told."""
        if not moderator.is_moderator:
            raise NotModerator()
        reason, days = clean_text(reason, "reason"), check_days(days)
        now = self._clock()
        status = "approved" if approve else "denied"
        change: _GrantChange | None = None
        async with self.store.session() as session:
            # The claim is the transaction's first statement: on SQLite it takes the write lock,
            # on PostgreSQL it waits for a rival's row lock and then sees its decision.
            claimed = await session.exec(
                _cas(
                    update(AccessRequest)
                    .where(
                        col(AccessRequest.id) == request_id,
                        col(AccessRequest.status) == "pending",
                        col(AccessRequest.platform) == moderator.platform,
                        col(AccessRequest.workspace_id) == moderator.workspace_id,
                    )
                    .values(status=status, decided_by=moderator.id, decided_at=now, decision_note=reason)
                )
            )
            row = await session.get(AccessRequest, request_id, populate_existing=True)
            if claimed.rowcount and row is not None:
                if approve:
                    key = (row.platform, row.workspace_id, row.user_id)
                    note = reason or f"request #{request_id}"
                    change = await self._put_grant(session, key, moderator, days, note, now)
                detail = f"request #{request_id}" + (f"; {_grant_detail(change)}" if change else "")
                detail += f"; reason: {reason}" if reason else ""
                action = "approve" if approve else "deny"
                self._audit(
                    session, row.platform, row.workspace_id, moderator, row.user_id, action, detail, now
                )
        if row is None or (row.platform, row.workspace_id) != (moderator.platform, moderator.workspace_id):
            raise CommandError(f"There is no access request #{request_id} here.")
        view = _request_view(row)
        if not claimed.rowcount:
            return Decision(self._too_late(view), decided=False, request=view)
        return await self._announce_decision(view, approve, reason, change)

    def _too_late(self, request: RequestView) -> str:
        if request.status == "withdrawn":
            return f"{mention(request.user_id)} withdrew request #{request.id}; nothing changed."
        return (
            f"Request #{request.id} from {mention(request.user_id)} was already {request.status} by "
            f"{mention(request.decided_by)} at {when_text(request.decided_at)}; nothing changed."
        )

    async def _announce_decision(
        self, request: RequestView, approve: bool, reason: str, change: _GrantChange | None
    ) -> Decision:
        who = mention(request.user_id)
        if approve and change is not None:
            told = await self._tell(
                request.platform, request.workspace_id, request.user_id, self._granted(change)
            )
            text = f"Approved request #{request.id}: {who} {_grant_outcome(change)}"
        else:
            told = await self._tell(
                request.platform, request.workspace_id, request.user_id, self._denied(reason)
            )
            text = f"Denied request #{request.id} from {who}."
        return Decision(f"{text} {_told(told)}", decided=True, request=request, member_told=told)

    async def press(self, custom_id: str, moderator: User) -> Decision:
        """A moderator pressed Approve or Deny; every outcome is an answer, never an exception."""
        parsed = parse_button_id(custom_id)
        if parsed is None:
            return Decision("That button isn't one of mine.", decided=False, request=None)
        action, request_id = parsed
        if not moderator.is_moderator:
            return Decision(MODERATORS_ONLY, decided=False, request=None)
        try:
            return await self.decide(request_id, moderator, approve=action == "approve")
        except CommandError as error:
            return Decision(error.user_message, decided=False, request=None)

    async def grant(
        self, moderator: User, workspace_id: str, target_id: str, days: int | None = None, note: str = ""
    ) -> str:
        """Give (or extend) access; a pending request by the member is approved with it."""
        if not moderator.is_moderator:
            raise NotModerator()
        note, days = clean_text(note, "note"), check_days(days)
        require_workspace(moderator.platform, workspace_id)
        pending = await self._pending(moderator.platform, workspace_id, target_id)
        if pending is not None:
            decision = await self.decide(pending.id, moderator, True, note, days=days)
            if decision.decided:
                return decision.text
        now = self._clock()
        key = (moderator.platform, workspace_id, target_id)
        async with self.store.session() as session:
            change = await self._put_grant(session, key, moderator, days, note, now)
            if change.action != "kept":
                detail = _grant_detail(change) + (f"; note: {note}" if note else "")
                self._audit(
                    session,
                    moderator.platform,
                    workspace_id,
                    moderator,
                    target_id,
                    change.action,
                    detail,
                    now,
                )
        if change.action == "kept":
            return f"{mention(target_id)} already has access here with no end date; nothing changed."
        told = await self._tell(moderator.platform, workspace_id, target_id, self._granted(change))
        return f"{mention(target_id)} {_grant_outcome(change)} {_told(told)}"

    async def deny(self, moderator: User, workspace_id: str, target_id: str, reason: str = "") -> str:
        if not moderator.is_moderator:
            raise NotModerator()
        reason = clean_text(reason, "reason")
        pending = await self._pending(moderator.platform, workspace_id, target_id)
        if pending is None:
            raise CommandError(f"{mention(target_id)} has no pending request here; nothing changed.")
        return (await self.decide(pending.id, moderator, False, reason)).text

    async def revoke(self, moderator: User, workspace_id: str, target_id: str, reason: str = "") -> str:
        if not moderator.is_moderator:
            raise NotModerator()
        reason = clean_text(reason, "reason")
        now = self._clock()
        async with self.store.session() as session:
            result = await session.exec(
                _cas(
                    update(AccessGrant)
                    .where(
                        col(AccessGrant.platform) == moderator.platform,
                        col(AccessGrant.workspace_id) == workspace_id,
                        col(AccessGrant.user_id) == target_id,
                        _active(now),
                    )
                    .values(
                        status="revoked",
                        ended_by=moderator.id,
                        ended_at=now,
                        version=col(AccessGrant.version) + 1,
                    )
                )
            )
            if result.rowcount:
                detail = f"reason: {reason}" if reason else ""
                self._audit(
                    session, moderator.platform, workspace_id, moderator, target_id, "revoke", detail, now
                )
        if not result.rowcount:
            raise CommandError(f"{mention(target_id)} has no access grant here to revoke; nothing changed.")
        because = f" Reason: {reason}" if reason else ""
        told = await self._tell(
            moderator.platform,
            workspace_id,
            target_id,
            f"A moderator has ended your access to {self.model_name}.{because}",
        )
        return f"Revoked {mention(target_id)}'s access. {_told(told)}"

    async def _put_grant(
        self,
        session: AsyncSession,
        key: tuple[str, str, str],
        by: User,
        days: int | None,
        note: str,
        now: datetime,
    ) -> _GrantChange:
        """Create, renew or extend a grant with compare-and-set on its version, retrying when a
        concurrent writer changed it between our read and our write."""
        for _ in range(5):
            current = await session.get(AccessGrant, key, populate_existing=True)
            change, values = _plan_grant(current, by, days, note, now)
            if change.action == "kept":
                return change
            if current is None:
                if await self._insert_grant(session, key, values):
                    return change
            elif await self._set_grant(session, key, current.version, values):
                return change
        raise StoreError(f"the grant for {key} kept changing while it was being written")

    async def _insert_grant(
        self, session: AsyncSession, key: tuple[str, str, str], values: dict[str, Any]
    ) -> bool:
        platform, workspace_id, user_id = key
        row = {"platform": platform, "workspace_id": workspace_id, "user_id": user_id, "version": 0, **values}
        result = await session.exec(self.store.insert(AccessGrant).values(row).on_conflict_do_nothing())
        return bool(result.rowcount)

    @staticmethod
    async def _set_grant(
        session: AsyncSession, key: tuple[str, str, str], version: int, values: dict[str, Any]
    ) -> bool:
        platform, workspace_id, user_id = key
        result = await session.exec(
            _cas(
                update(AccessGrant)
                .where(
                    col(AccessGrant.platform) == platform,
                    col(AccessGrant.workspace_id) == workspace_id,
                    col(AccessGrant.user_id) == user_id,
                    col(AccessGrant.version) == version,
                )
                .values(version=version + 1, **values)
            )
        )
        return bool(result.rowcount)

    # ------------------------------------------------------------ expiry

    async def expire_due(self, batch: int = 500) -> int:
        """Mark grants whose time has come as expired, audit and tell each member once.
        Access never waits for this: an expired grant stops counting at its moment."""
        now = self._clock()
        query = (
            select(AccessGrant)
            .where(col(AccessGrant.status) == "active", col(AccessGrant.expires_at) <= now)
            .limit(batch)
        )
        async with self.store.session() as session:
            due = list((await session.exec(query)).all())
        expired = 0
        for grant in due:
            if await self._expire_one(grant, now):
                expired += 1
                await self._tell(
                    grant.platform,
                    grant.workspace_id,
                    grant.user_id,
                    f"Your access to {self.model_name} has ended. If you'd like to keep talking, "
                    f"ask again with `{self.command(grant.platform)} access request`.",
                )
        return expired

    async def _expire_one(self, grant: AccessGrant, now: datetime) -> bool:
        key = (grant.platform, grant.workspace_id, grant.user_id)
        ember = User(
            id="ember", name="ember", platform=_platform(grant.platform), workspace_id=grant.workspace_id
        )
        async with self.store.session() as session:
            # The version check makes one host (or one sweep) the only one to record it.
            if not await self._set_grant(
                session, key, grant.version, {"status": "expired", "ended_at": grant.expires_at}
            ):
                return False
            detail = f"ended at {when_text(grant.expires_at)}"
            self._audit(
                session, grant.platform, grant.workspace_id, ember, grant.user_id, "expire", detail, now
            )
        return True

    async def sweep_forever(self, every: float = 60.0) -> None:
        """Run `expire_due` periodically; a database hiccup is logged and retried next time."""
        while True:
            try:
                await self.expire_due()
            except Exception:
                log.exception("the access expiry sweep failed; retrying in %.0f s", every)
            await asyncio.sleep(every)

    # ------------------------------------------------------------ audit and notices

    @staticmethod
    def _audit(
        session: AsyncSession,
        platform: str,
        workspace_id: str,
        actor: User,
        target_id: str,
        action: str,
        detail: str,
        now: datetime,
    ) -> None:
        session.add(
            AccessAudit(
                at=now,
                platform=platform,
                workspace_id=workspace_id,
                actor_id=actor.id,
                actor_name=actor.name[:200],
                target_id=target_id,
                action=action,
                detail=detail[:1200],
            )
        )

    async def _notify_moderators(self, request: RequestView) -> bool:
        notifier = self._notifiers.get(request.platform)
        if notifier is None:
            log.info(
                "no %s notifier: access request #%d waits in `access pending`", request.platform, request.id
            )
            return False
        try:
            await notifier.notify_moderators(request.workspace_id, request)
        except Exception:
            # The request is stored either way; moderators still find it with `access pending`.
            log.exception("could not post access request #%d to the moderators", request.id)
            return False
        return True

    async def _tell(self, platform: str, workspace_id: str, user_id: str, text: str) -> bool:
        notifier = self._notifiers.get(platform)
        if notifier is None:
            log.info("no %s notifier: could not tell %s: %s", platform, user_id, text)
            return False
        try:
            return await notifier.tell_member(workspace_id, user_id, text)
        except Exception:
            log.exception("could not tell %s about their access", user_id)
            return False

    def _granted(self, change: _GrantChange) -> str:
        until = f" until {when_text(change.expires_at)}" if change.expires_at else ""
        if change.action == "extend":
            return f"Your access to {self.model_name} has been extended{until or ' with no end date'}."
        return f"Good news: you may now talk with {self.model_name}{until}. Say hello whenever you like!"

    def _denied(self, reason: str) -> str:
        because = f" Reason: {reason}" if reason else ""
        return f"The moderators decided not to give you access to {self.model_name} for now.{because}"

    # ------------------------------------------------------------ names

    @property
    def model_name(self) -> str:
        alias = self.settings.chat.default_model
        return self.settings.models[alias].display_name or alias

    def command(self, platform: str) -> str:
        """The top-level command as members type it on this platform."""
        return self.settings.command_for(platform)


def _scope(place: Place) -> str | None:
    """The workspace whose grants count here; None (any workspace) in a direct message."""
    return None if place.is_direct else place.workspace_id


def _platform(name: str) -> Platform:
    return "discord" if name == "discord" else "slack" if name == "slack" else "console"


def space_word(platform: str) -> str:
    """What the platform calls the place grants belong to."""
    return "server" if platform == "discord" else "workspace"


def require_workspace(platform: str, workspace_id: str) -> str:
    """`workspace_id`, or a clear CommandError where there is none (a DM)."""
    if not workspace_id:
        raise CommandError(
            f"Access is per {space_word(platform)}: please run this in a channel there, not in a DM."
        )
    return workspace_id


def _plan_grant(
    current: AccessGrant | None, by: User, days: int | None, note: str, now: datetime
) -> tuple[_GrantChange, dict[str, Any]]:
    """What granting `days` (None: no end) does to the current row: a fresh grant, an extension
    of a live one (from its end, not from now), or nothing when it already never ends."""
    live = current is not None and current.status == "active"
    if current is not None and live and current.expires_at is None:
        return _GrantChange("kept", None), {}
    if current is not None and live and current.expires_at is not None and current.expires_at > now:
        expires = None if days is None else current.expires_at + timedelta(days=days)
        values: dict[str, Any] = {"expires_at": expires, "granted_by": by.id}
        if note:
            values["note"] = note
        return _GrantChange("extend", expires, current.expires_at), values
    expires = now + timedelta(days=days) if days else None
    fresh = {
        "status": "active",
        "granted_by": by.id,
        "note": note,
        "granted_at": now,
        "expires_at": expires,
        "ended_by": "",
        "ended_at": None,
    }
    return _GrantChange("grant", expires), fresh


def _grant_detail(change: _GrantChange) -> str:
    if change.action == "extend":
        return f"extended from {when_text(change.previous_expiry)} to {when_text(change.expires_at)}"
    return f"until {when_text(change.expires_at)}" if change.expires_at else "no end date"


def _grant_outcome(change: _GrantChange) -> str:
    if change.action == "extend":
        end = f"to {when_text(change.expires_at)}" if change.expires_at else "with no end date"
        return f"already had access until {when_text(change.previous_expiry)}; extended {end}."
    return f"now has access until {when_text(change.expires_at)}." if change.expires_at else "now has access."


def _told(told: bool) -> str:
    return "They've been told by DM." if told else "I couldn't DM them, so please let them know."
