"""Essay announcements end to end: the loopback feed host, the real service and database, and a
recording Announcer standing in for the platform adapter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from core.budget import GLOBAL, BudgetPolicy, Budgets, RequestScheduler, Window
from core.errors import ChannelGone, DeliveryError, DeliveryRejected, RateLimited
from core.essays import EssayService
from core.events import Place, User
from core.store import Store
from tests.essay_support import (
    DATABASES,
    FakeTime,
    Killed,
    RecordingAnnouncer,
    announce_unpaced,
    make_service,
    open_store,
    post,
    rows,
)
from tests.fakes.feed_server import FeedServer

MOD = User("M1", "Mod", "discord", "G1", is_moderator=True)
SLACK_MOD = User("UM", "Mod", "slack", "T1", is_moderator=True)


@pytest.fixture(params=DATABASES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(request, tmp_path, request.param) as store:
        yield store


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def service(store: Store, clock: FakeTime, feed_server: FeedServer) -> AsyncIterator[EssayService]:
    service = make_service(store, clock, [feed_server.url("feed")])
    yield service
    await service.close()


def announcer(service: EssayService, budgets: Budgets, platform: str = "discord") -> RecordingAnnouncer:
    recording = RecordingAnnouncer(platform)
    announce_unpaced(service, budgets, recording, platform)
    return recording


async def subscribe(service: EssayService, channels: int, platform: str = "discord", role: str = "") -> None:
    by = MOD if platform == "discord" else SLACK_MOD
    for n in range(channels):
        await service.subscribe(platform, by.workspace_id, f"C{n}", role, by)


async def seed(service: EssayService, feed_server: FeedServer, posts: int = 2) -> None:
    feed_server.feed().posts.extend(post(n) for n in range(1, posts + 1))
    [report] = await service.poll_once()
    assert report.ok, report.error


# ---------------------------------------------------------------- polling and announcing


async def test_first_poll_records_and_announces_nothing(
    budgets: Budgets, service: EssayService, feed_server: FeedServer
) -> None:
    discord = announcer(service, budgets)
    await subscribe(service, 2)
    await seed(service, feed_server, posts=3)
    await service.deliver_pending()
    assert discord.calls == []
    assert await rows(
        service.store, "SELECT count(*), sum(CASE WHEN announced THEN 1 ELSE 0 END) FROM essays"
    ) == [(3, 0)]
    assert await rows(service.store, "SELECT count(*) FROM essay_deliveries") == [(0,)]
    status = await service.status()
    assert status.feeds[0].state == "ok" and status.feeds[0].seeded


async def test_a_new_item_is_announced_once_in_every_channel_on_each_platform(
    budgets: Budgets, service: EssayService, feed_server: FeedServer, clock: FakeTime
) -> None:
    discord, slack = announcer(service, budgets, "discord"), announcer(service, budgets, "slack")
    await subscribe(service, 3, "discord", role="R1")
    await subscribe(service, 2, "slack")
    await seed(service, feed_server)
    feed_server.feed().posts.append(post(3, days_ago=0.1, title="On being retired"))
    clock.advance(minutes=20)
    [report] = await service.poll_once()
    assert report.announced == ("On being retired",) and report.queued == 5
    result = await service.deliver_pending()
    assert result.sent == 5
    assert {c: len(p) for c, p in discord.posts.items()} == {"C0": 1, "C1": 1, "C2": 1}
    assert {c: len(p) for c, p in slack.posts.items()} == {"C0": 1, "C1": 1}
    delivery = discord.posts["C0"][0][1]
    assert delivery.role_id == "R1" and slack.posts["C0"][0][1].role_id == ""
    essay = delivery.announcement
    assert (essay.title, essay.author, essay.link) == ("On being retired", "Claude Opus 3", post(3).link)
    assert essay.image_url.startswith("https://substackcdn.com/")
    assert essay.summary == "A short subtitle."
    assert "second paragraph" in essay.full_text and "<p>" not in essay.full_text
    # Polling again (unchanged: 304) and delivering again changes nothing.
    clock.advance(minutes=20)
    [again] = await service.poll_once()
    assert again.not_modified
    assert (await service.deliver_pending()).sent == 0
    assert discord.post_count == 3 and slack.post_count == 2


async def test_conditional_get_and_user_agent(service: EssayService, feed_server: FeedServer) -> None:
    await seed(service, feed_server)
    await service.poll_once()
    first, second = feed_server.requests_to("feed")
    assert "ember" in first.headers["User-Agent"]
    assert "If-None-Match" not in first.headers
    assert second.headers["If-None-Match"].startswith('"')
    assert second.headers["If-Modified-Since"].endswith("GMT")


async def test_the_same_item_after_a_restart_is_not_announced_again(
    budgets: Budgets, store: Store, clock: FakeTime, feed_server: FeedServer
) -> None:
    first = make_service(store, clock, [feed_server.url()])
    discord = announcer(first, budgets)
    await subscribe(first, 2)
    await seed(first, feed_server)
    feed_server.feed().posts.append(post(3, days_ago=0))
    await first.poll_once()
    await first.deliver_pending()
    await first.close()
    assert discord.post_count == 2

    restarted = make_service(store, clock, [feed_server.url()])
    again = announcer(restarted, budgets)
    # The feed changes elsewhere, so it is fetched and read in full again (no 304).
    feed_server.feed().posts[0].title = "Essay 1 (revised)"
    [report] = await restarted.poll_once()
    assert report.ok and not report.not_modified and report.items == 3
    await restarted.deliver_pending()
    await restarted.close()
    assert again.calls == []


async def test_old_items_are_recorded_not_announced(
    budgets: Budgets, service: EssayService, feed_server: FeedServer
) -> None:
    discord = announcer(service, budgets)
    await subscribe(service, 1)
    await seed(service, feed_server)
    # Published 10 days ago but appearing only now (max_age_days = 7).
    feed_server.feed().posts.append(post(3, days_ago=10))
    [report] = await service.poll_once()
    assert report.announced == () and report.recorded == 1
    await service.deliver_pending()
    assert discord.calls == []


async def test_announce_existing_announces_the_first_poll_within_max_age(
    budgets: Budgets, store: Store, clock: FakeTime, feed_server: FeedServer
) -> None:
    service = make_service(store, clock, [feed_server.url()], announce_existing=True)
    discord = announcer(service, budgets)
    await subscribe(service, 1)
    feed_server.feed().posts.extend([post(1, days_ago=1), post(2, days_ago=30)])
    [report] = await service.poll_once()
    await service.deliver_pending()
    await service.close()
    assert report.announced == ("Essay 1",)
    assert [d.announcement.title for _, d in discord.posts["C0"]] == ["Essay 1"]


async def test_a_changed_guid_on_the_same_post_path_is_not_announced(
    budgets: Budgets, service: EssayService, feed_server: FeedServer
) -> None:
    discord = announcer(service, budgets)
    await subscribe(service, 1)
    await seed(service, feed_server)
    feed = feed_server.feed()
    feed.posts[0].guid = "urn:substack:post:12345"  # the guid changes, the path stays
    feed.posts[1].host = "https://essays.example.org"  # the newsletter moved to its own domain
    [report] = await service.poll_once()
    await service.deliver_pending()
    assert report.ok and report.announced == ()
    assert discord.calls == []
    guids = {g for (g,) in await rows(service.store, "SELECT guid FROM essays")}
    assert "urn:substack:post:12345" in guids and "https://essays.example.org/p/essay-2" in guids


async def test_a_moved_feed_is_recognised_and_its_new_items_announced(
    budgets: Budgets, store: Store, clock: FakeTime, feed_server: FeedServer
) -> None:
    old = make_service(store, clock, [feed_server.url("feed")])
    await subscribe(old, 1)
    await seed(old, feed_server)
    await old.close()
    moved = feed_server.feed("moved")
    moved.posts = [post(1, host="https://essays.example.org"), post(2, host="https://essays.example.org")]
    moved.posts.append(post(3, days_ago=0, host="https://essays.example.org"))
    service = make_service(store, clock, [feed_server.url("moved")])
    discord = announcer(service, budgets)
    [report] = await service.poll_once()
    await service.deliver_pending()
    await service.close()
    assert report.first_poll and report.announced == ("Essay 3",)
    assert discord.post_count == 1


# ---------------------------------------------------------------- exactly once


async def test_killed_mid_fan_out_then_restarted_posts_exactly_once_per_channel(
    budgets: Budgets, store: Store, clock: FakeTime, feed_server: FeedServer
) -> None:
    first = make_service(store, clock, [feed_server.url()])
    platform = RecordingAnnouncer()  # one platform, seen by both processes
    announce_unpaced(first, budgets, platform, "discord")
    await subscribe(first, 20)
    await seed(first, feed_server)
    feed_server.feed().posts.append(post(3, days_ago=0))
    await first.poll_once()
    platform.die_after = 7
    with pytest.raises(BaseExceptionGroup) as died:
        await first.deliver_pending()
    assert died.group_contains(Killed)
    await first.close()
    states = dict(await rows(store, "SELECT state, count(*) FROM essay_deliveries GROUP BY state"))
    assert states.get("sending", 0) >= 1 and states.get("sent", 0) < 20

    platform.die_after = None
    restarted = make_service(store, clock, [feed_server.url()])
    announce_unpaced(restarted, budgets, platform, "discord")
    await restarted.deliver_pending()
    assert await rows(store, "SELECT count(*) FROM essay_deliveries WHERE state = 'sending'") == [
        (states["sending"],)
    ]
    clock.advance(minutes=6)  # the dead process's leases run out
    await restarted.deliver_pending()
    await restarted.close()
    assert {c: len(p) for c, p in platform.posts.items()} == {f"C{n}": 1 for n in range(20)}
    assert await rows(store, "SELECT state, count(*) FROM essay_deliveries GROUP BY state") == [("sent", 20)]
    retried = [d for d in platform.calls if d.uncertain]
    assert retried and all(d.attempt == 2 for d in retried)
    assert platform.replays >= 1  # the post that ember never heard back about: found, not repeated
    # The message ember recorded is the one the platform holds.
    recorded = dict(await rows(store, "SELECT channel_id, platform_message_id FROM essay_deliveries"))
    assert recorded == {c: p[0][0] for c, p in platform.posts.items()}


async def test_two_hosts_delivering_at_once_never_take_the_same_row(
    budgets: Budgets, store: Store, clock: FakeTime, feed_server: FeedServer
) -> None:
    hosts = [make_service(store, clock, [feed_server.url()]) for _ in range(2)]
    platform = RecordingAnnouncer()
    for host in hosts:
        announce_unpaced(host, budgets, platform, "discord")
    await subscribe(hosts[0], 40)
    await seed(hosts[0], feed_server)
    feed_server.feed().posts.append(post(3, days_ago=0))
    await asyncio.gather(*(host.poll_once() for host in hosts))  # both see the essay; one records it
    reports = await asyncio.gather(*(host.deliver_pending() for host in hosts))
    for host in hosts:
        await host.close()
    assert sum(r.sent for r in reports) == 40
    assert len(platform.calls) == 40 and platform.replays == 0  # no row was attempted twice
    assert await rows(store, "SELECT count(*) FROM essays WHERE announced") == [(1,)]


async def test_deliveries_wait_for_a_platform_without_an_adapter(
    budgets: Budgets, service: EssayService, feed_server: FeedServer, clock: FakeTime
) -> None:
    discord = announcer(service, budgets)
    await subscribe(service, 1, "discord")
    await subscribe(service, 2, "slack")
    await seed(service, feed_server)
    feed_server.feed().posts.append(post(3, days_ago=0))
    await service.poll_once()
    report = await service.deliver_pending()
    assert report.sent == 1 and report.waiting == {"slack": 2}
    assert "2 queued for slack" in report.summary()
    clock.advance(days=3)
    slack = announcer(service, budgets, "slack")
    assert (await service.deliver_pending()).sent == 2
    assert slack.post_count == 2 and discord.post_count == 1


# ---------------------------------------------------------------- delivery faults


async def new_essay(
    service: EssayService, budgets: Budgets, feed_server: FeedServer, channels: int
) -> RecordingAnnouncer:
    discord = announcer(service, budgets)
    await subscribe(service, channels)
    await seed(service, feed_server)
    feed_server.feed().posts.append(post(3, days_ago=0))
    await service.poll_once()
    return discord


async def test_a_forbidden_channel_pauses_its_subscription_and_tells_moderators(
    budgets: Budgets, service: EssayService, feed_server: FeedServer
) -> None:
    discord = await new_essay(service, budgets, feed_server, 3)
    discord.errors["C1"].append(ChannelGone("403 Missing Access"))
    report = await service.deliver_pending()
    assert (report.sent, report.disabled) == (2, 1)
    [(workspace, text)] = discord.moderators
    assert workspace == "G1" and "<#C1>" in text and "403 Missing Access" in text
    assert "/opus essays subscribe <#C1>" in text
    [paused] = [v for v in await service.subscriptions("discord", "G1") if not v.enabled]
    assert paused.channel_id == "C1" and "403" in paused.disabled_reason
    states = dict(await rows(service.store, "SELECT channel_id, state FROM essay_deliveries"))
    assert states == {"C0": "sent", "C1": "disabled", "C2": "sent"}
    assert (await service.status()).paused == 1


async def test_retry_after_is_honoured(
    budgets: Budgets, service: EssayService, feed_server: FeedServer, clock: FakeTime
) -> None:
    discord = await new_essay(service, budgets, feed_server, 2)
    discord.errors["C1"].append(RateLimited(30.0))
    report = await service.deliver_pending()
    assert (report.sent, report.rate_limited) == (1, 1)
    clock.advance(seconds=29)
    await service.deliver_pending()
    assert len([d for d in discord.calls if d.channel_id == "C1"]) == 1  # not before its time
    clock.advance(seconds=1)
    assert (await service.deliver_pending()).sent == 1
    retry = [d for d in discord.calls if d.channel_id == "C1"][-1]
    assert retry.attempt == 2 and not retry.uncertain  # a 429 is a certain "not posted"
    assert len(discord.posts["C1"]) == 1


async def test_deliver_pending_can_wait_for_retries(
    budgets: Budgets, service: EssayService, feed_server: FeedServer, clock: FakeTime
) -> None:
    discord = await new_essay(service, budgets, feed_server, 1)
    discord.errors["C0"].append(RateLimited(12.0, is_global=True))
    report = await service.deliver_pending(wait=60)
    assert report.sent == 1 and report.rate_limited == 1
    assert sum(clock.slept) >= 12


async def test_a_rejected_message_fails_that_delivery_only(
    budgets: Budgets, service: EssayService, feed_server: FeedServer
) -> None:
    discord = await new_essay(service, budgets, feed_server, 2)
    discord.errors["C0"].append(DeliveryRejected("400 Invalid Form Body: embeds.0.title"))
    report = await service.deliver_pending()
    assert (report.sent, report.failed) == (1, 1)
    status = await service.status()
    assert status.deliveries == {"sent": 1, "failed": 1}
    assert "Invalid Form Body" in status.recent_errors[0]
    assert any("failed: discord:C0" in line for line in status.lines())
    assert [v.enabled for v in await service.subscriptions("discord", "G1")] == [True, True]


async def test_unknown_failures_back_off_and_retry_as_uncertain(
    budgets: Budgets, service: EssayService, feed_server: FeedServer, clock: FakeTime
) -> None:
    discord = await new_essay(service, budgets, feed_server, 1)
    discord.errors["C0"] += [ConnectionResetError("reset"), DeliveryError("502 Bad Gateway")]
    assert (await service.deliver_pending()).retrying == 1
    clock.advance(seconds=40)
    assert (await service.deliver_pending()).retrying == 1
    assert (await service.deliver_pending()).sent == 0  # backing off: nothing due yet
    clock.advance(seconds=80)
    assert (await service.deliver_pending()).sent == 1
    assert [(d.attempt, d.uncertain) for d in discord.calls] == [(1, False), (2, True), (3, False)]


# ---------------------------------------------------------------- feed faults


async def test_a_broken_feed_backs_off_without_touching_the_others(
    budgets: Budgets, store: Store, clock: FakeTime, feed_server: FeedServer
) -> None:
    service = make_service(store, clock, [feed_server.url("good"), feed_server.url("bad")])
    discord = announcer(service, budgets)
    await subscribe(service, 1)
    feed_server.feed("good").posts.append(post(1))
    feed_server.feed("bad").posts.append(post(9, host="https://other.example"))
    await service.poll_once()
    feed_server.feed("bad").fault = "malformed"
    feed_server.feed("good").posts.append(post(2, days_ago=0))
    clock.advance(minutes=20)
    good, bad = await service.poll_once(due_only=True)
    assert good.ok and good.announced == ("Essay 2",)
    assert not bad.ok and "malformed XML" in bad.error
    await service.deliver_pending()
    assert discord.post_count == 1
    waits = []
    for _ in range(4):
        status = {f.url: f for f in (await service.status()).feeds}[feed_server.url("bad")]
        assert status.state == "failing"
        waits.append(status.next_poll_at - clock.now)  # type: ignore[operator]
        clock.now = status.next_poll_at  # type: ignore[assignment]
        await service.poll_once(due_only=True)
    assert waits == sorted(waits) and waits[-1] > 4 * waits[0]  # exponential, with jitter
    lines = (await service.status()).lines()
    assert any("FAILING" in line and "malformed XML" in line for line in lines)
    await service.close()


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("403", "HTTP 403"),
        ("500", "HTTP 500"),
        ("malformed", "malformed XML"),
        ("empty", "no items"),
        ("html", "not an RSS or Atom feed"),
        ("redirect-ftp", "non-http(s)"),
        ("oversize", "byte limit"),
        ("slow", "no complete answer"),
    ],
)
async def test_feed_faults_are_reported_not_raised(
    store: Store, clock: FakeTime, feed_server: FeedServer, fault: str, expected: str
) -> None:
    service = make_service(store, clock, [feed_server.url()], fetch_deadline=0.3, max_feed_bytes=200_000)
    feed = feed_server.feed()
    feed.posts.append(post(1))
    feed.fault, feed.oversize_bytes = fault, 1_000_000
    [report] = await service.poll_once()
    await service.close()
    assert not report.ok and expected in report.error
    [(failures, error)] = await rows(store, "SELECT failures, last_error FROM essay_feeds")
    assert failures == 1 and expected in error


async def test_retry_after_from_the_feed_host_is_honoured(
    service: EssayService, feed_server: FeedServer, clock: FakeTime
) -> None:
    feed = feed_server.feed()
    feed.posts.append(post(1))
    feed.fault, feed.retry_after = "429", "7200"
    [report] = await service.poll_once()
    assert "HTTP 429" in report.error
    [status] = (await service.status()).feeds
    assert status.next_poll_at is not None and status.next_poll_at - clock.now >= timedelta(hours=2)


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [
        ("99999999999999999999", timedelta(hours=6)),  # beyond timedelta's range
        ("9" * 400, timedelta(hours=6)),  # beyond a float's
        ("Fri, 31 Dec 9999 23:59:59 GMT", timedelta(hours=6)),  # an HTTP date, far away
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),  # an HTTP date in the past: the usual back-off
        ("soon, maybe", None),  # garbage
        ("²", None),  # a digit to str.isdigit, not a number
        ("-5", None),
    ],
)
async def test_a_hostile_retry_after_is_capped_not_raised(
    service: EssayService, feed_server: FeedServer, clock: FakeTime, retry_after: str, wait: timedelta | None
) -> None:
    feed = feed_server.feed()
    feed.posts.append(post(1))
    feed.fault, feed.retry_after = "503", retry_after
    [report] = await service.poll_once()
    assert not report.ok and "HTTP 503" in report.error
    [status] = (await service.status()).feeds
    assert status.state == "failing" and status.failures == 1 and "HTTP 503" in status.last_error
    assert status.next_poll_at is not None
    if wait is not None:
        assert status.next_poll_at - clock.now == wait
    else:  # the first step of the back-off: a minute, ±10%
        assert timedelta(seconds=54) <= status.next_poll_at - clock.now <= timedelta(seconds=66)


async def test_a_hostile_feed_does_not_stop_a_healthy_one(
    budgets: Budgets, store: Store, clock: FakeTime, feed_server: FeedServer
) -> None:
    service = make_service(store, clock, [feed_server.url("hostile"), feed_server.url("good")])
    discord = announcer(service, budgets)
    await subscribe(service, 1)
    feed_server.feed("good").posts.append(post(1))
    feed_server.feed("hostile").posts.append(post(9, host="https://other.example"))
    await service.poll_once()
    hostile = feed_server.feed("hostile")
    hostile.fault, hostile.retry_after = "503", "99999999999999999999"
    feed_server.feed("good").posts.append(post(2, days_ago=0))
    clock.advance(minutes=20)
    bad, good = await service.poll_once(due_only=True)
    assert not bad.ok and "HTTP 503" in bad.error
    assert good.ok and good.announced == ("Essay 2",)
    await service.deliver_pending()
    assert [d.announcement.title for _, d in discord.posts["C0"]] == ["Essay 2"]
    states = {f.url: f.state for f in (await service.status()).feeds}
    assert states == {feed_server.url("hostile"): "failing", feed_server.url("good"): "ok"}
    await service.close()


async def test_redirects_to_http_are_followed(service: EssayService, feed_server: FeedServer) -> None:
    feed_server.feed("new-home").posts.append(post(1))
    old = feed_server.feed()
    old.fault, old.redirect_to = "redirect", feed_server.url("new-home")
    [report] = await service.poll_once()
    assert report.ok and report.items == 1


async def test_after_a_day_of_failures_moderators_are_told_once(
    budgets: Budgets, service: EssayService, feed_server: FeedServer, clock: FakeTime
) -> None:
    discord = announcer(service, budgets)
    slack = announcer(service, budgets, "slack")
    await subscribe(service, 2, "discord")
    await subscribe(service, 1, "slack")
    await seed(service, feed_server)
    feed_server.feed().fault = "403"
    for _ in range(12):
        clock.advance(hours=4)
        await service.poll_once()
    assert [w for w, _ in discord.moderators] == ["G1"]  # one workspace, told once
    assert [w for w, _ in slack.moderators] == ["T1"]
    assert "failing since" in discord.moderators[0][1] and "HTTP 403" in discord.moderators[0][1]
    feed_server.feed().fault = ""
    clock.advance(hours=4)
    await service.poll_once()
    assert "works again" in discord.moderators[-1][1]
    [status] = (await service.status()).feeds
    assert status.state == "ok" and not status.alerted


async def test_no_alert_is_lost_when_no_adapter_is_running(
    budgets: Budgets, service: EssayService, feed_server: FeedServer, clock: FakeTime
) -> None:
    await subscribe(service, 1)
    await seed(service, feed_server)
    feed_server.feed().fault = "500"
    for _ in range(8):
        clock.advance(hours=4)
        await service.poll_once()
    discord = announcer(service, budgets)  # the adapter comes up later
    clock.advance(hours=4)
    await service.poll_once()
    assert len(discord.moderators) == 1


# ---------------------------------------------------------------- discussion


async def test_the_discussion_thread_brings_the_essay_into_context(
    budgets: Budgets, service: EssayService, feed_server: FeedServer
) -> None:
    discord = await new_essay(service, budgets, feed_server, 1)
    await service.deliver_pending()
    [(channel, thread)] = discord.opened
    here = Place("discord", "G1", channel, thread_id=thread)
    context = await service.discussion_context(here)
    assert context.startswith('This thread is a discussion of the essay "Essay 3" by Claude Opus 3')
    assert "Its second paragraph." in context
    assert await service.discussion_context(Place("discord", "G1", channel)) == ""
    assert await service.discussion_context(Place("discord", "G1", channel, thread_id="other")) == ""
    assert await service.discussion_context(Place("slack", "G1", channel, thread_id=thread)) == ""


async def test_a_rate_limited_discussion_thread_is_opened_after_the_wait(
    budgets: Budgets, service: EssayService, feed_server: FeedServer
) -> None:
    discord = announcer(service, budgets)
    discord.thread_errors = [RateLimited(0.0), RateLimited(0.0)]
    await subscribe(service, 1)
    await seed(service, feed_server)
    feed_server.feed().posts.append(post(3, days_ago=0))
    await service.poll_once()
    await service.deliver_pending()
    [(channel, thread)] = discord.opened
    assert discord.thread_errors == [], "both waits were taken"
    assert await service.discussion_context(Place("discord", "G1", channel, thread_id=thread))


async def test_the_loop_polls_and_delivers(
    budgets: Budgets, store: Store, clock: FakeTime, feed_server: FeedServer
) -> None:
    service = make_service(store, clock, [feed_server.url()], announce_existing=True)
    discord = announcer(service, budgets)
    await subscribe(service, 1)
    feed_server.feed().posts.append(post(1))
    loop = asyncio.create_task(service.run())
    try:
        async with asyncio.timeout(10):
            await discord.posted_event.wait()
    finally:
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop
        await service.close()
    assert discord.post_count == 1


# ---------------------------------------------------------------- pacing


@pytest.fixture
async def one_a_second(clock: FakeTime) -> AsyncIterator[RequestScheduler]:
    """A platform's request scheduler allowing one request a second, on the test's clock."""
    scheduler = RequestScheduler(
        BudgetPolicy(windows={GLOBAL: Window(1, 1.0)}), clock=clock.monotonic, sleep=clock.sleep
    )
    yield scheduler
    await scheduler.aclose()


async def test_the_budget_is_spent_only_for_a_request_made(
    service: EssayService, feed_server: FeedServer, clock: FakeTime, one_a_second: RequestScheduler
) -> None:
    """Three posts at one a second, no thread opened: two seconds of waiting, not five (a thread
    never requested must not spend the budget)."""
    discord = RecordingAnnouncer()
    discord.threads = False
    service.register_announcer("discord", discord, scheduler=one_a_second, concurrency=1)
    await subscribe(service, 3)
    await seed(service, feed_server)
    feed_server.feed().posts.append(post(3, days_ago=0))
    await service.poll_once()
    clock.slept.clear()
    report = await service.deliver_pending()
    assert report.sent == 3 and discord.post_count == 3
    assert sum(clock.slept) == pytest.approx(2.0)


async def test_a_thread_request_is_paced_like_a_post(
    service: EssayService, feed_server: FeedServer, clock: FakeTime, one_a_second: RequestScheduler
) -> None:
    discord = RecordingAnnouncer()
    service.register_announcer("discord", discord, scheduler=one_a_second, concurrency=1)
    await subscribe(service, 2)
    await seed(service, feed_server)
    feed_server.feed().posts.append(post(3, days_ago=0))
    await service.poll_once()
    clock.slept.clear()
    await service.deliver_pending()
    assert len(discord.opened) == 2
    assert sum(clock.slept) == pytest.approx(3.0)  # post, thread, post, thread: four requests
