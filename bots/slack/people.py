"""Who people are in Slack: names, admin status and user groups, cached for a short while.

A name is looked up once (users.info) and kept; moderator facts (admin/owner flags, membership
of the user groups in `moderator_roles` and `[access] member_roles`) are re-read after `ttl`
seconds so a demotion takes effect soon. Concurrent look-ups of the same thing share one call,
which matters when a busy thread sends many messages at once.

Workspaces on plans without user groups answer usergroups.users.list with an error; that
counts as "not a member" and is logged once per group.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack.traits import method_key
from core import User
from core.budget import Priority, RequestScheduler

log = logging.getLogger(__name__)

T = TypeVar("T")
# Enough for a large workspace; beyond it the oldest entries are dropped.
MAX_ENTRIES = 20_000


@dataclass(frozen=True)
class Profile:
    id: str
    name: str
    team_id: str = ""
    is_admin: bool = False
    is_bot: bool = False


class TtlCache(Generic[T]):
    """Values that expire after `ttl` seconds; one load at a time per key."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._values: dict[str, tuple[float, T]] = {}
        self._loading: dict[str, asyncio.Future[T]] = {}

    def peek(self, key: str) -> T | None:
        """The cached value, fresh or stale, without loading."""
        entry = self._values.get(key)
        return entry[1] if entry else None

    async def get(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        entry = self._values.get(key)
        if entry is not None and self._clock() - entry[0] < self._ttl:
            return entry[1]
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await load()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody warns about it
            raise
        else:
            future.set_result(value)
        finally:
            del self._loading[key]
        if len(self._values) >= MAX_ENTRIES:
            self._values.pop(next(iter(self._values)))
        self._values[key] = (self._clock(), value)
        return value


class People:
    """Names and moderator status for one Slack app."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        moderator_groups: Iterable[str] = (),
        member_groups: Iterable[str] = (),
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        budget: Callable[[], RequestScheduler] | None = None,
    ) -> None:
        self._client = client
        # Slack's request budget (users.info is Tier 4): look-ups wait their turn, not a 429.
        self._budget = budget
        self._moderator_groups = tuple(moderator_groups)
        self._groups = tuple(dict.fromkeys([*self._moderator_groups, *member_groups]))
        self._profiles: TtlCache[Profile] = TtlCache(ttl, clock)
        self._members: TtlCache[frozenset[str]] = TtlCache(ttl, clock)
        self._unreadable: set[str] = set()

    async def profile(self, user_id: str) -> Profile:
        return await self._profiles.get(user_id, lambda: self._load_profile(user_id))

    async def name(self, user_id: str) -> str:
        """A display name; a name already known is never looked up again just for its text.
        Someone Slack will not describe (deleted, another org's, a refused or rate-limited
        users.info) is named by their id: a message mentioning them is still answered."""
        known = self._profiles.peek(user_id)
        if known is not None:
            return known.name
        return (await self._profile_or_stand_in(user_id)).name

    async def names(self, user_ids: Iterable[str]) -> dict[str, str]:
        ids = list(dict.fromkeys(user_ids))
        found = await asyncio.gather(*(self.name(u) for u in ids))
        return dict(zip(ids, found, strict=True))

    async def user(self, team_id: str, user_id: str) -> User:
        """The neutral user, with moderator status and the user groups ember cares about. When
        Slack will not describe them, they are named by id and are no admin."""
        return await self._user(team_id, user_id, await self._profile_or_stand_in(user_id))

    async def lookup_user(self, workspace_id: str, user_id: str) -> User | None:
        """core.commands.Directory: a member by id, or None when Slack does not know them."""
        try:
            profile = await self.profile(user_id)
        except SlackApiError:
            return None
        return await self._user(workspace_id, user_id, profile)

    async def _profile_or_stand_in(self, user_id: str) -> Profile:
        try:
            return await self.profile(user_id)
        except SlackApiError as error:
            # Not cached: the next message asks again (a rate limit passes, a name comes back).
            log.info(
                "Slack did not describe %s (%s); naming them by id", user_id, error.response.get("error")
            )
            return Profile(id=user_id, name=user_id)

    async def _user(self, team_id: str, user_id: str, profile: Profile) -> User:
        groups = await self._groups_of(user_id)
        moderator = profile.is_admin or any(g in groups for g in self._moderator_groups)
        return User(
            id=user_id,
            name=profile.name,
            platform="slack",
            workspace_id=team_id,
            role_ids=groups,
            is_moderator=moderator,
            is_bot=profile.is_bot,
        )

    async def _groups_of(self, user_id: str) -> tuple[str, ...]:
        members = await asyncio.gather(*(self._group_members(g) for g in self._groups))
        return tuple(g for g, who in zip(self._groups, members, strict=True) if user_id in who)

    async def _group_members(self, group: str) -> frozenset[str]:
        return await self._members.get(group, lambda: self._load_members(group))

    async def _load_profile(self, user_id: str) -> Profile:
        if self._budget is None:
            response = await self._client.users_info(user=user_id)
        else:
            sent = await self._budget().send(
                Priority.ANSWER,
                lambda: self._client.users_info(user=user_id),
                keys=(method_key("users.info", "", ""),),
            )
            assert sent is not None, "only merged calls and typing come back empty"
            response = sent
        return profile_from(response["user"])

    async def _load_members(self, group: str) -> frozenset[str]:
        try:
            response = await self._client.usergroups_users_list(usergroup=group)
        except SlackApiError as error:
            if group not in self._unreadable:
                self._unreadable.add(group)
                log.warning(
                    "cannot read Slack user group %s (%s); treating nobody as a member. User groups "
                    "need a paid plan and the usergroups:read scope.",
                    group,
                    error.response.get("error"),
                )
            return frozenset()
        return frozenset(response.get("users") or ())


def profile_from(user: dict[str, Any]) -> Profile:
    profile = user.get("profile") or {}
    name = (
        profile.get("display_name")
        or profile.get("real_name")
        or user.get("real_name")
        or user.get("name")
        or user["id"]
    )
    admin = any(user.get(flag) for flag in ("is_admin", "is_owner", "is_primary_owner"))
    return Profile(
        id=str(user["id"]),
        name=str(name),
        team_id=str(user.get("team_id") or ""),
        is_admin=admin,
        is_bot=bool(user.get("is_bot")),
    )
