"""Access by request, through the real AccessService over a real database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from bots.console import TRAITS as CONSOLE_TRAITS
from bots.discord.traits import discord_traits
from core.access import MODERATORS_ONLY, AccessService, button_id, parse_button_id
from core.config import Settings, settings_from_dict
from core.errors import AccessDenied, CommandError, NotModerator
from core.events import Place, User
from core.platforms import Platforms
from core.store import AccessAudit, AccessGrant, AccessRequest, Store
from tests.access_support import (
    BrokenNotifier,
    Clock,
    RecordingNotifier,
    add_usage,
    database_url,
    snapshot,
)

G1, G2 = "G1", "G2"
CHANNEL = Place("discord", G1, "C1")
OTHER_SERVER = Place("discord", G2, "C9")
DM = Place("discord", "", "D1", is_direct=True)
ALICE = User("U1", "Alice", "discord", G1)
BOB = User("U2", "Bob", "discord", G1)
MOD = User("M1", "Mia", "discord", G1, is_moderator=True)
MOD2 = User("M2", "Max", "discord", G1, is_moderator=True)

MakeService = Callable[..., AccessService]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_url(request, tmp_path)


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    store = Store.open(db_url)
    await store.upgrade()
    yield store
    await store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def make(store: Store, clock: Clock, notifier: RecordingNotifier) -> MakeService:
    """An AccessService over the test store with `[access]` (and other) settings as given, and
    the recording notifier unless another (or None) is named."""

    def build(
        access: dict[str, Any] | None = None, *, notify: Any = notifier, **tables: Any
    ) -> AccessService:
        settings: Settings = settings_from_dict({"access": access or {}, **tables})
        # The Discord and terminal adapters' facts, as attaching them would register them.
        platforms = Platforms([discord_traits(settings.discord), CONSOLE_TRAITS])
        service = AccessService(settings, store, clock=clock, platforms=platforms)
        if notify is not None:
            service.register_notifier("discord", notify)
        return service

    return build


@pytest.fixture
def service(make: MakeService) -> AccessService:
    return make()


async def admitted(service: AccessService, user: User, place: Place = CHANNEL) -> bool:
    try:
        async with service.admit(user, place):
            return True
    except AccessDenied:
        return False


async def refusal(service: AccessService, user: User, place: Place = CHANNEL) -> str:
    with pytest.raises(AccessDenied) as denied:
        async with service.admit(user, place):
            pass
    return denied.value.user_message


async def audit_actions(store: Store) -> list[tuple[str, str, str]]:
    async with store.session() as session:
        rows = (await session.exec(select(AccessAudit).order_by(AccessAudit.id))).all()  # type: ignore[arg-type]
    return [(r.actor_id, r.action, r.target_id) for r in rows]


# ---------------------------------------------------------------- who may talk


async def test_a_non_member_is_told_kindly_how_to_ask(service: AccessService) -> None:
    text = await refusal(service, ALICE)
    assert "Hi Alice!" in text and "by request" in text
    assert "`/opus access request [reason]`" in text


async def test_request_then_approve_admits_and_tells_the_member(
    service: AccessService, notifier: RecordingNotifier, store: Store
) -> None:
    answer = await service.request(ALICE, G1, "I'd love to talk about poetry")
    assert "with the moderators" in answer
    [(workspace, posted)] = notifier.posted
    assert (workspace, posted.user_id, posted.user_name, posted.reason) == (
        G1,
        "U1",
        "Alice",
        "I'd love to talk about poetry",
    )
    assert posted.approve_id == f"ember:access:approve:{posted.id}"
    assert "with the moderators" in await refusal(service, ALICE)  # pending: still not admitted

    decision = await service.press(posted.approve_id, MOD)
    assert decision.decided and decision.settled and decision.member_told
    assert decision.summary.startswith("Approved by <@M1> at 2026-03-10 12:00 UTC")
    assert await admitted(service, ALICE)
    assert "you may now talk with Claude Opus 3" in notifier.told_to("U1")[0]
    assert await audit_actions(store) == [("U1", "request", "U1"), ("M1", "approve", "U1")]


async def test_deny_tells_the_member_and_asking_again_waits_a_day(
    service: AccessService, notifier: RecordingNotifier, clock: Clock
) -> None:
    await service.request(ALICE, G1, "")
    request_id = notifier.posted[0][1].id
    decision = await service.decide(request_id, MOD, approve=False, reason="we're full this month")
    assert decision.decided and "Denied request" in decision.text
    assert notifier.told_to("U1") == [
        "The moderators decided not to give you access to Claude Opus 3 for now. Reason: we're full this month"
    ]
    assert not await admitted(service, ALICE)
    assert "You can ask again after 2026-03-11 12:00 UTC" in await service.request(ALICE, G1, "please?")
    clock.advance(days=1, seconds=1)
    assert "with the moderators" in await service.request(ALICE, G1, "please?")


async def test_revoke_ends_access(service: AccessService, notifier: RecordingNotifier, store: Store) -> None:
    await service.grant(MOD, G1, "U1")
    assert await admitted(service, ALICE)
    answer = await service.revoke(MOD, G1, "U1", "spamming the channel")
    assert answer == "Revoked <@U1>'s access. They've been told by DM."
    assert not await admitted(service, ALICE)
    assert notifier.told_to("U1")[-1].endswith("Reason: spamming the channel")
    with pytest.raises(CommandError, match="no access grant here to revoke"):
        await service.revoke(MOD, G1, "U1")
    assert [a for _, a, _ in await audit_actions(store)] == ["grant", "revoke"]


async def test_a_grant_expires_on_time_without_the_sweep(
    service: AccessService, clock: Clock, notifier: RecordingNotifier, store: Store
) -> None:
    assert "until 2026-03-12 12:00 UTC" in await service.grant(MOD, G1, "U1", days=2)
    [grant] = await service.grants("discord", G1)
    assert grant.expires_at == clock.now.replace(day=12)
    clock.advance(days=2, seconds=-1)
    assert await admitted(service, ALICE)
    clock.advance(seconds=1)
    assert not await admitted(service, ALICE)  # the sweep has not run; the grant still ends
    assert await service.grants("discord", G1) == []

    assert await service.expire_due() == 1
    assert await service.expire_due() == 0  # recorded once
    assert ("ember", "expire", "U1") in await audit_actions(store)
    assert "has ended" in notifier.told_to("U1")[-1]
    async with store.session() as session:
        assert (await session.get(AccessGrant, ("discord", G1, "U1"))).status == "expired"  # type: ignore[union-attr]


async def test_granting_again_extends_and_says_so(service: AccessService) -> None:
    await service.grant(MOD, G1, "U1", days=3)
    again = await service.grant(MOD2, G1, "U1", days=4, note="one more week")
    assert again.startswith(
        "<@U1> already had access until 2026-03-13 12:00 UTC; extended to 2026-03-17 12:00 UTC."
    )
    forever = await service.grant(MOD, G1, "U1")
    assert "extended with no end date" in forever
    assert "already has access here with no end date; nothing changed" in await service.grant(
        MOD, G1, "U1", 5
    )


async def test_member_roles_admit_without_a_grant(make: MakeService) -> None:
    service = make({"member_roles": ["R-patron"]})
    patron = User("U3", "Pat", "discord", G1, role_ids=("R-other", "R-patron"))
    assert await admitted(service, patron)
    assert not await admitted(service, ALICE)
    assert "already have access" in await service.request(patron, G1, "")


async def test_moderators_may_always_talk(service: AccessService) -> None:
    assert await admitted(service, MOD)


async def test_open_mode_admits_everyone_and_needs_no_requests(make: MakeService, store: Store) -> None:
    service = make({"mode": "open"})
    assert await admitted(service, ALICE)
    assert "No need to ask" in await service.request(ALICE, G1, "")
    assert (await snapshot(store))["access_requests"] == []


async def test_closed_mode_refuses_requests_with_an_explanation(make: MakeService, store: Store) -> None:
    service = make({"mode": "closed", "member_roles": ["R1"]})
    assert "by invitation of the moderators" in await refusal(service, ALICE)
    assert "Requests are closed here" in await service.request(ALICE, G1, "please")
    assert (await snapshot(store))["access_requests"] == []
    await service.grant(MOD, G1, "U1")
    assert await admitted(service, ALICE)
    assert await admitted(service, User("U4", "Rae", "discord", G1, role_ids=("R1",)))


async def test_grants_belong_to_one_workspace(service: AccessService) -> None:
    await service.grant(MOD, G1, "U1")
    assert await admitted(service, ALICE, CHANNEL)
    assert not await admitted(service, User("U1", "Alice", "discord", G2), OTHER_SERVER)
    slack = User("U1", "Alice", "slack", G1)
    assert not await admitted(service, slack, Place("slack", G1, "C1"))


async def test_a_dm_is_allowed_to_someone_with_access_in_any_workspace(make: MakeService) -> None:
    service = make()
    assert "in a channel of a server where I live" in await refusal(service, ALICE, DM)
    await service.grant(User("M9", "Mod", "discord", G2, is_moderator=True), G2, "U1")
    assert await admitted(service, ALICE, DM)
    slack_dm = Place("slack", "T1", "D7", is_direct=True)
    assert not await admitted(service, User("U1", "Alice", "slack", "T1"), slack_dm)

    closed_dms = make(discord={"allow_dms": False})
    assert "I don't answer direct messages here" in await refusal(closed_dms, ALICE, DM)


async def test_the_terminal_is_the_operators_own_seat(service: AccessService) -> None:
    operator = User("console:me", "me", "console", "local")
    assert await admitted(service, operator, Place("console", "local", "terminal"))


# ---------------------------------------------------------------- limits


async def test_daily_message_limit_names_the_reset(make: MakeService, store: Store, clock: Clock) -> None:
    service = make({"mode": "open", "daily_messages": 3})
    await add_usage(store, user_id="U1", workspace_id=G1, at=clock.now.replace(hour=1), count=2)
    await add_usage(store, user_id="U1", workspace_id=G1, at=clock.now.replace(day=9), count=5)  # yesterday
    assert await admitted(service, ALICE)
    await add_usage(store, user_id="U1", workspace_id=G1, at=clock.now)
    text = await refusal(service, ALICE)
    assert text == (
        "You've reached today's limit of 3 messages to Claude Opus 3. It resets at 00:00 UTC, in 12 h 0 min."
    )
    assert await admitted(service, BOB)  # per member
    clock.advance(hours=12)
    assert await admitted(service, ALICE)


async def test_daily_token_limit(make: MakeService, store: Store, clock: Clock) -> None:
    service = make({"mode": "open", "daily_tokens": 1000})
    await add_usage(store, user_id="U1", workspace_id=G1, at=clock.now, tokens=999)
    assert await admitted(service, ALICE)
    await add_usage(store, user_id="U1", workspace_id=G1, at=clock.now, tokens=1)
    assert "today's limit of 1,000 tokens" in await refusal(service, ALICE)


async def test_monthly_spend_cap_is_per_workspace(make: MakeService, store: Store, clock: Clock) -> None:
    service = make({"mode": "open", "monthly_spend_usd": 5.0})
    await add_usage(store, user_id="U2", workspace_id=G1, at=clock.now.replace(day=1), cost_micros=5_000_000)
    await add_usage(
        store, user_id="U2", workspace_id=G1, at=clock.now.replace(month=2), cost_micros=9_000_000
    )
    text = await refusal(service, ALICE)
    assert text == (
        "This server has used its monthly budget of $5.00 for Claude Opus 3. "
        "It resets on 1 April at 00:00 UTC, in 22 days."
    )
    assert await admitted(service, User("U1", "Alice", "discord", G2), OTHER_SERVER)
    clock.advance(days=22)
    assert await admitted(service, ALICE)


async def test_spend_is_cached_briefly(make: MakeService, store: Store, clock: Clock) -> None:
    service = make({"mode": "open", "monthly_spend_usd": 1.0})
    assert await admitted(service, ALICE)
    await add_usage(store, user_id="U2", workspace_id=G1, at=clock.now, cost_micros=1_000_000)
    if store.dialect == "postgresql":
        # Several hosts may share it: every check adds what was spent since, on any host.
        assert not await admitted(service, ALICE)
        return
    assert await admitted(service, ALICE)  # one host: the total read a moment ago still stands
    clock.advance(seconds=30)
    assert not await admitted(service, ALICE)


async def test_max_concurrent_replies_per_member(make: MakeService) -> None:
    service = make({"mode": "open", "max_concurrent": 1})
    async with service.admit(ALICE, CHANNEL):
        assert "still writing a reply for you" in await refusal(service, ALICE)
        assert await admitted(service, BOB)
    assert await admitted(service, ALICE)

    two = make({"mode": "open", "max_concurrent": 2})
    async with two.admit(ALICE, CHANNEL), two.admit(ALICE, CHANNEL):
        assert "still writing 2 replies" in await refusal(two, ALICE)


async def test_a_refusal_inside_the_reply_releases_the_slot(make: MakeService) -> None:
    service = make({"mode": "open"})
    with pytest.raises(RuntimeError):
        async with service.admit(ALICE, CHANNEL):
            raise RuntimeError("the reply failed")
    assert await admitted(service, ALICE)


# ---------------------------------------------------------------- bad input and races


async def test_one_pending_request_per_member(service: AccessService, store: Store) -> None:
    first, second = await asyncio.gather(service.request(ALICE, G1, "one"), service.request(ALICE, G1, "two"))
    assert sum(a.startswith("Thanks") for a in (first, second)) == 1
    assert sum("already asked" in a for a in (first, second)) == 1
    again = await service.request(ALICE, G1, "three")
    assert "already asked" in again
    async with store.session() as session:
        count = (await session.exec(select(func.count()).select_from(AccessRequest))).one()
    assert count == 1


async def test_the_index_refuses_a_second_pending_request(store: Store) -> None:
    def pending(reason: str) -> AccessRequest:
        return AccessRequest(platform="discord", workspace_id=G1, user_id="U1", reason=reason)

    async with store.session() as session:
        session.add(pending("one"))
    with pytest.raises(IntegrityError):
        async with store.session() as session:
            session.add(pending("two"))
    async with store.session() as session:
        session.add(AccessRequest(platform="discord", workspace_id=G1, user_id="U1", status="denied"))


async def test_two_moderators_deciding_at_once_one_wins(
    service: AccessService, notifier: RecordingNotifier, store: Store
) -> None:
    await service.request(ALICE, G1, "")
    request_id = notifier.posted[0][1].id
    approve, deny = await asyncio.gather(
        service.decide(request_id, MOD, approve=True), service.decide(request_id, MOD2, approve=False)
    )
    assert [approve.decided, deny.decided].count(True) == 1
    loser = deny if approve.decided else approve
    assert "was already" in loser.text and "nothing changed" in loser.text
    async with store.session() as session:
        row = await session.get(AccessRequest, request_id)
    assert row is not None and row.status == ("approved" if approve.decided else "denied")
    assert await admitted(service, ALICE) == approve.decided
    decisions = [a for _, a, _ in await audit_actions(store) if a in ("approve", "deny")]
    assert decisions == ["approve" if approve.decided else "deny"]
    assert len(notifier.told_to("U1")) == 1


async def test_two_moderators_granting_at_once_both_count(service: AccessService, store: Store) -> None:
    answers = await asyncio.gather(service.grant(MOD, G1, "U1", 3), service.grant(MOD2, G1, "U1", 4))
    assert sum("extended" in a for a in answers) == 1
    [grant] = await service.grants("discord", G1)
    assert grant.expires_at is not None and (grant.expires_at - service.now()).days == 7
    assert sorted(a for _, a, _ in await audit_actions(store)) == ["extend", "grant"]


async def test_a_button_pressed_twice_or_by_a_member(
    service: AccessService, notifier: RecordingNotifier, store: Store
) -> None:
    await service.request(ALICE, G1, "")
    posted = notifier.posted[0][1]
    before = await snapshot(store)
    by_member = await service.press(posted.approve_id, BOB)
    assert by_member.text == MODERATORS_ONLY and not by_member.decided
    assert await snapshot(store) == before

    first = await service.press(posted.deny_id, MOD)
    second = await service.press(posted.approve_id, MOD2)
    assert first.decided and not second.decided and second.settled
    assert "already denied by <@M1>" in second.text
    assert not await admitted(service, ALICE)
    unknown = await service.press("ember:access:approve:999", MOD)
    assert unknown.text == "There is no access request #999 here." and unknown.request is None
    assert (await service.press("something-else", MOD)).text == "That button isn't one of mine."


async def test_a_moderator_of_another_workspace_cannot_decide(
    service: AccessService, notifier: RecordingNotifier
) -> None:
    await service.request(ALICE, G1, "")
    stranger = User("M7", "Other mod", "discord", G2, is_moderator=True)
    with pytest.raises(CommandError, match="no access request"):
        await service.decide(notifier.posted[0][1].id, stranger, approve=True)
    with pytest.raises(NotModerator):
        await service.decide(notifier.posted[0][1].id, BOB, approve=True)
    assert len(await service.pending("discord", G1)) == 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.grant(MOD, G1, "U1", days=0), "days should be a whole number from 1 to 3650, not 0"),
        (lambda s: s.grant(MOD, G1, "U1", days=-2), "not -2"),
        (lambda s: s.grant(MOD, G1, "U1", note="x" * 501), "the note is 501 characters long"),
        (lambda s: s.request(ALICE, G1, "y" * 600), "the reason is 600 characters long"),
        (lambda s: s.deny(MOD, G1, "U1"), "<@U1> has no pending request here"),
        (lambda s: s.revoke(MOD, G1, "U1"), "no access grant here to revoke"),
        (lambda s: s.grant(BOB, G1, "U1"), "moderators only"),
        (lambda s: s.request(ALICE, "", "hi"), "please ask from a channel there"),
        (lambda s: s.withdraw(ALICE, G1), "nothing to withdraw"),
    ],
)
async def test_bad_input_gets_a_clear_answer_and_changes_nothing(
    service: AccessService, store: Store, call: Any, message: str
) -> None:
    before = await snapshot(store)
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        await call(service)
    assert await snapshot(store) == before


async def test_a_member_may_withdraw(service: AccessService, store: Store) -> None:
    await service.request(ALICE, G1, "")
    assert await service.withdraw(ALICE, G1) == "Done: your request is withdrawn."
    assert await service.pending("discord", G1) == []
    assert [a for _, a, _ in await audit_actions(store)] == ["request", "withdraw"]


# ---------------------------------------------------------------- notifiers and the log


async def test_without_a_notifier_nothing_breaks(make: MakeService) -> None:
    service = make(notify=None)
    assert "Your request is recorded" in await service.request(ALICE, G1, "")
    assert "I couldn't DM them" in await service.grant(MOD, G1, "U1")


async def test_a_failing_notifier_is_logged_not_raised(make: MakeService) -> None:
    service = make(notify=BrokenNotifier())
    assert "Your request is recorded" in await service.request(ALICE, G1, "")
    decision = await service.decide((await service.pending("discord", G1))[0].id, MOD, approve=True)
    assert decision.decided and not decision.member_told
    assert await admitted(service, ALICE)


async def test_closed_dms_are_reported_to_the_moderator(make: MakeService) -> None:
    service = make(notify=RecordingNotifier(dms_open=False))
    assert (await service.grant(MOD, G1, "U1")).endswith("I couldn't DM them, so please let them know.")


async def test_the_audit_log_says_who_did_what_to_whom_when_and_why(
    service: AccessService, clock: Clock
) -> None:
    await service.request(ALICE, G1, "curious")
    clock.advance(minutes=5)
    await service.grant(MOD, G1, "U1", days=7, note="welcome")
    clock.advance(minutes=5)
    await service.revoke(MOD2, G1, "U1", "left the project")
    await service.grant(MOD, G1, "U2")
    entries = await service.audit_log("discord", G1, target_id="U1")
    assert [(e.action, e.actor_id, e.actor_name, e.target_id) for e in entries] == [
        ("revoke", "M2", "Max", "U1"),
        ("approve", "M1", "Mia", "U1"),
        ("request", "U1", "Alice", "U1"),
    ]
    assert entries[0].detail == "reason: left the project"
    assert entries[1].detail == "request #1; until 2026-03-17 12:05 UTC; reason: welcome"
    assert entries[2].detail == "curious" and entries[2].at.minute == 0
    assert len(await service.audit_log("discord", G1)) == 4
    assert await service.audit_log("discord", G2) == []


def test_button_ids_round_trip() -> None:
    assert button_id("deny", 42) == "ember:access:deny:42"
    assert parse_button_id("ember:access:deny:42") == ("deny", 42)
    assert parse_button_id("ember:access:delete:42") is None
    assert parse_button_id("ember:access:approve:x") is None
    assert parse_button_id("reply:stop:1") is None
