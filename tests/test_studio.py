"""The essay studio in the core, end to end over a real database and the fake Anthropic API:
drafting (from the command line and on the schedule, once per slot across hosts), the prompt
strategies, review (reviewers only, vetoes with reasons, quorum, the first to settle wins),
publication (byte for byte), ember's own feed and pages, and one announcement per channel."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import feedparser
import pytest
from sqlalchemy import text as sql

from core.config import OPUS_3
from core.events import User
from core.ops.server import listening
from core.store.studio_records import DraftState, Verdict
from core.studio import DraftPreview, StudioService, wording
from core.studio.wording import STUDIO_SYSTEM
from tests.essay_support import RecordingAnnouncer, rows
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.feed_server import FeedServer, Post
from tests.studio_support import CHUNKS, ESSAY, essay_reply, studio_runtime, studio_settings
from tests.test_essays_cli import ember

REVIEWERS = {"discord": {"reviewer_roles": ["111"], "reviewer_users": ["222"]}}
# A reviewer by role, one by user id, and a member who is neither.
ROLE_REVIEWER = User("900", "Rhea", "discord", "G1", role_ids=("111",))
USER_REVIEWER = User("222", "Uma", "discord", "G1")
OUTSIDER = User("333", "Otto", "discord", "G1", role_ids=("444",), is_moderator=True)
MONDAY_NINE = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Where claims and decisions race matters most: both databases ember supports."""
    if request.param == "postgres":
        return {"url": str(request.getfixturevalue("postgres_db_url"))}
    return {"url": f"sqlite+aiosqlite:///{tmp_path / 'ember.db'}"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_ember_studio_draft_keeps_the_whole_request_the_answer_and_its_hash(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "ember.db"}"\n'
        f'[providers.anthropic]\nbase_url = "{fake_anthropic.url}"\n'
        '[studio]\nenabled = true\nstrategy = "past_entries"\n[logging]\nlevel = "ERROR"\n'
    )
    fake_anthropic.script.append(essay_reply())
    env = {"ANTHROPIC_API_KEY": "sk-ant-test-key"}
    code, out, err = await ember(config, "studio", "draft", "--strategy", "minimal", env=env)
    assert (code, err) == (0, ""), err
    assert "Draft #1 written" in out
    [sent] = fake_anthropic.requests
    assert sent.body["system"] == STUDIO_SYSTEM
    assert sent.model == OPUS_3

    code, out, err = await ember(config, "studio", "list", env=env)
    assert code == 0 and "pending (1)" in out and "#1 · On Keeping a Lamp Lit" in out, out

    from core.store import Store

    store = Store.open(f"sqlite+aiosqlite:///{tmp_path / 'ember.db'}")
    try:
        [(request, provider, model, text, digest, strategy, slot)] = await rows(
            store, "SELECT request_json, provider, model, text, sha256, strategy, slot FROM studio_drafts"
        )
        audit = await rows(store, "SELECT action, target_id FROM access_audit")
        usage = await rows(
            store,
            "SELECT platform, workspace_id, alias, provider, model, input_tokens, output_tokens, cost_micros FROM usage",
        )
    finally:
        await store.close()
    kept = json.loads(request)
    # The request as the model received it (the SDK adds the model and `stream`).
    assert kept == {k: v for k, v in sent.body.items() if k not in ("model", "stream")}
    assert set(kept) == {"system", "messages", "max_tokens", "temperature"}
    assert (provider, model, strategy, slot) == ("anthropic", OPUS_3, "minimal", None)
    assert text == ESSAY
    assert digest == hashlib.sha256(ESSAY.encode()).hexdigest()
    assert audit == [("studio-draft", "draft:1")]
    # What it cost is counted with everything else ember spends.
    [(platform, workspace, alias, provider, model, input_tokens, output_tokens, cost)] = usage
    assert (platform, workspace, alias, provider, model) == ("ember", "studio", "opus-3", "anthropic", OPUS_3)
    assert input_tokens == 10 and output_tokens == len(CHUNKS) and cost == 10 * 15 + len(CHUNKS) * 75


async def test_ember_studio_draft_is_refused_while_the_studio_is_off(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "ember.db"}"\n')
    code, _, err = await ember(config, "studio", "draft", env={"ANTHROPIC_API_KEY": "k"})
    assert code == 1 and "enabled = false" in err
    assert fake_anthropic.requests == []


async def test_a_failing_backend_hands_the_whole_essay_to_the_next(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    backends = [{"provider": "anthropic", "model": "broken-opus"}, {"provider": "anthropic", "model": OPUS_3}]
    settings = studio_settings(tmp_path, fake_anthropic, models={"opus-3": {"backends": backends}})
    fake_anthropic.script_for("broken-opus").append(Reply.error_midstream(["Half an ess", "ay"], after=1))
    fake_anthropic.script_for(OPUS_3).append(essay_reply())
    async with studio_runtime(settings) as runtime:
        draft = await runtime.studio.draft_now("operator")
    assert [r.model for r in fake_anthropic.requests] == ["broken-opus", OPUS_3]
    assert (draft.text, draft.model, draft.provider) == (ESSAY, OPUS_3, "anthropic")


async def test_a_schedule_slot_is_drafted_once_by_two_hosts(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    settings = studio_settings(tmp_path, fake_anthropic, studio={"schedule": "weekly", "day": "monday"})
    now = [MONDAY_NINE - timedelta(minutes=1)]
    held = Reply.held(CHUNKS_OF_ESSAY, after=1)
    fake_anthropic.script.append(held)
    async with studio_runtime(settings) as runtime:
        hosts = [
            StudioService(settings, runtime.store, runtime.router, clock=lambda: now[0]) for _ in range(2)
        ]
        # Sunday's slot is six days old: past catching up, so nothing is written.
        assert await hosts[0].draft_due_slot() is None
        now[0] = MONDAY_NINE + timedelta(minutes=1)
        first = asyncio.create_task(hosts[0].draft_due_slot())
        await fake_anthropic.wait_for_requests(1)
        # While the first host writes, the second finds the slot's lease taken.
        assert await hosts[1].draft_due_slot() is None
        held.release.set()
        drafted = await first
        assert drafted is not None and drafted.slot == "weekly:2026-03-09T09:00"
        assert drafted.text == ESSAY and drafted.created_by == "schedule"
        # Later in the week, on either host: the slot is taken.
        now[0] = MONDAY_NINE + timedelta(hours=5)
        assert await hosts[1].draft_due_slot() is None
        assert await hosts[0].draft_due_slot() is None
        assert len(fake_anthropic.requests) == 1
        # The next Monday is a new slot.
        fake_anthropic.script.append(essay_reply())
        now[0] = MONDAY_NINE + timedelta(days=7, seconds=5)
        later = await hosts[1].draft_due_slot()
        assert later is not None and later.slot == "weekly:2026-03-16T09:00"


CHUNKS_OF_ESSAY = [ESSAY[:20], ESSAY[20:]]


async def test_past_entries_and_news_reach_the_model(
    tmp_path: Path, fake_anthropic: FakeAnthropic, feed_server: FeedServer
) -> None:
    feed_server.feed().posts.append(Post("launch", "A new model is announced", datetime.now(UTC)))
    settings = studio_settings(
        tmp_path,
        fake_anthropic,
        studio={"news_feeds": [feed_server.url()], "discord": REVIEWERS["discord"]},
    )
    fake_anthropic.script.extend([essay_reply(), Reply.text(["Second essay"]), Reply.text(["Third"])])
    async with studio_runtime(settings) as runtime:
        studio = runtime.studio
        first = await studio.draft_now("operator", "minimal")
        await studio.decide(ROLE_REVIEWER, first.id, Verdict.APPROVE)
        await studio.draft_now("operator", "past_entries")
        await studio.draft_now("operator", "with_news")
    minimal, past, news = (r.body["messages"][0]["content"] for r in fake_anthropic.requests)
    assert ESSAY not in minimal and "A new model" not in minimal
    assert f"<essay>\n{ESSAY}\n</essay>" in past
    assert "A new model is announced" in news and feed_server.feed().posts[0].link in news


async def test_only_reviewers_decide_a_veto_needs_a_reason_and_the_first_to_settle_wins(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    settings = studio_settings(
        tmp_path, fake_anthropic, studio={"approvals": 2, "discord": REVIEWERS["discord"]}
    )
    fake_anthropic.script.extend([essay_reply(), Reply.text(["Another essay"])])
    async with studio_runtime(settings) as runtime:
        studio = runtime.studio
        draft = await studio.draft_now("operator")
        # A moderator who is no reviewer is refused, and nothing is recorded.
        refused = await studio.decide(OUTSIDER, draft.id, Verdict.APPROVE)
        assert "Only the studio's reviewers" in refused.text
        assert "reason" in (await studio.decide(ROLE_REVIEWER, draft.id, Verdict.VETO, "  ")).text
        first = await studio.decide(ROLE_REVIEWER, draft.id, Verdict.APPROVE)
        assert not first.settled and "1 of 2" in first.text
        again = await studio.decide(ROLE_REVIEWER, draft.id, Verdict.APPROVE)
        assert "already decided" in again.text and not again.settled
        quorum = await studio.decide(USER_REVIEWER, draft.id, Verdict.APPROVE)
        assert quorum.settled and "approved and published" in quorum.text
        late = await studio.decide(
            User("901", "Late", "discord", "G1", role_ids=("111",)), draft.id, Verdict.VETO, "no"
        )
        assert "already approved (by Rhea, Uma)" in late.text
        published = await studio.draft(draft.id)
        assert published is not None and published.state is DraftState.PUBLISHED

        other = await studio.draft_now("operator")
        vetoed = await studio.decide(USER_REVIEWER, other.id, Verdict.VETO, "It names a member.")
        assert vetoed.settled and "vetoed" in vetoed.text
        after = await studio.decide(ROLE_REVIEWER, other.id, Verdict.APPROVE)
        assert "already vetoed by Uma: It names a member." in after.text
        decisions = await rows(
            runtime.store, "SELECT draft_id, reviewer_id, verdict, reason FROM studio_decisions ORDER BY id"
        )
        audit = await rows(
            runtime.store, "SELECT action, actor_id, target_id, detail FROM access_audit ORDER BY id"
        )
    assert decisions == [
        (1, "900", "approve", ""),
        (1, "222", "approve", ""),
        (2, "222", "veto", "It names a member."),
    ]
    assert [a[0] for a in audit] == [
        "studio-draft",
        "studio-approve",
        "studio-approve",
        "studio-publish",
        "studio-draft",
        "studio-veto",
    ]
    assert audit[5][1:] == ("222", "draft:2", "It names a member.")


async def test_published_essays_are_served_as_atom_and_pages_and_announced_once_per_channel(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    port = free_port()
    own_feed = f"http://127.0.0.1:{port}/essays/feed.xml"
    settings = studio_settings(
        tmp_path,
        fake_anthropic,
        studio={
            "discord": REVIEWERS["discord"],
            "disclaimer": "It speaks for itself <not for us> & no one else.",
        },
        server={"health_port": port},
        # The community also follows ember's own feed, like any other: still one announcement.
        essays={"feeds": [own_feed]},
    )
    fake_anthropic.script.extend([essay_reply(), Reply.text(["Later\n\nA second essay."])])
    announcer = RecordingAnnouncer()
    moderator = User("1", "Mod", "discord", "G1", is_moderator=True)
    async with (
        studio_runtime(settings) as runtime,
        listening(runtime.metrics, runtime.readiness, "127.0.0.1", port, runtime.studio) as base,
        aiohttp.ClientSession() as http,
    ):
        essays, studio = runtime.essays, runtime.studio
        unlimited = runtime.budgets.for_platform("discord")  # no adapter attached: no windows
        essays.register_announcer("discord", announcer, scheduler=unlimited, concurrency=8)
        for channel in ("C1", "C2"):
            await essays.subscribe("discord", "G1", channel, "", moderator)
        [seeded] = await essays.poll_once()
        assert not seeded.ok  # nothing published yet: an empty feed is no feed

        draft = await studio.draft_now("operator")
        await studio.decide(ROLE_REVIEWER, draft.id, Verdict.APPROVE)
        await essays.deliver_pending()
        [report] = await essays.poll_once()  # ember's own feed now lists the essay: already known
        assert report.ok and report.announced == () and report.queued == 0
        second = await studio.draft_now("operator")
        await studio.decide(USER_REVIEWER, second.id, Verdict.APPROVE)
        [report] = await essays.poll_once()
        assert report.announced == ()
        await essays.deliver_pending()

        async with http.get(f"{base}/essays/feed.xml") as response:
            assert response.status == 200 and response.content_type == "application/atom+xml"
            feed = feedparser.parse(await response.read())
        slug = (await studio.draft(draft.id)).slug  # type: ignore[union-attr]
        async with http.get(f"{base}/essays/{slug}") as response:
            assert response.status == 200 and response.content_type == "text/html"
            page = await response.text()
        async with http.get(f"{base}/essays/{slug}.txt") as response:
            exact = await response.read()
        async with http.get(f"{base}/essays/no-such-essay") as response:
            assert response.status == 404
        async with http.get(f"{base}/essays/") as response:
            index = await response.text()

    # Announced once in each subscribed channel, with its discussion thread, newest last.
    assert {
        channel: [d.announcement.title for _, d in posts] for channel, posts in announcer.posts.items()
    } == {
        "C1": ["On Keeping a Lamp Lit", "Later"],
        "C2": ["On Keeping a Lamp Lit", "Later"],
    }
    assert len(announcer.opened) == 4
    assert announcer.posts["C1"][0][1].announcement.full_text == ESSAY
    assert announcer.posts["C1"][0][1].announcement.link == f"http://127.0.0.1:{port}/essays/{slug}"

    # Valid Atom, newest first, the essay's text exactly as the model wrote it.
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.subtitle == "It speaks for itself <not for us> & no one else."
    assert [e.title for e in feed.entries] == ["Later", "On Keeping a Lamp Lit"]
    entry = feed.entries[1]
    assert entry.content[0].value == ESSAY
    assert entry.id == f"urn:uuid:{draft.uid}"
    assert entry.link == f"http://127.0.0.1:{port}/essays/{slug}"
    assert entry.rights == "It speaks for itself <not for us> & no one else."

    # The index lists both, newest first; the page escapes everything and carries the
    # disclaimer; the text is byte for byte.
    assert index.index(f'href="/essays/{slug}"') > index.index(">Later</a>")
    assert exact == ESSAY.encode("utf-8")
    assert "<script>" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "It speaks for itself &lt;not for us&gt; &amp; no one else." in page
    assert "Été, naïveté, 🌿 — the end." in page


async def test_approvals_at_the_same_moment_publish_once(
    tmp_path: Path, fake_anthropic: FakeAnthropic, database: dict[str, str]
) -> None:
    settings = studio_settings(
        tmp_path, fake_anthropic, studio={"approvals": 2, "discord": REVIEWERS["discord"]}, database=database
    )
    fake_anthropic.script.append(essay_reply())
    reviewers = [User(str(n), f"R{n}", "discord", "G1", role_ids=("111",)) for n in range(1, 6)]
    async with studio_runtime(settings) as runtime:
        draft = await runtime.studio.draft_now("operator")
        decided = await asyncio.gather(
            *(runtime.studio.decide(r, draft.id, Verdict.APPROVE) for r in reviewers)
        )
        published = await rows(runtime.store, "SELECT count(*) FROM essays")
        approvals = await rows(runtime.store, "SELECT count(*) FROM studio_decisions")
    assert sum(d.settled for d in decided) == 1, [d.text for d in decided]
    assert published == [(1,)]
    # The quorum settled it; whoever came after was told so, and nothing of theirs was kept.
    assert 2 <= approvals[0][0] <= 5
    assert sum("already approved" in d.text for d in decided) == 5 - approvals[0][0]


async def test_a_draft_whose_text_changed_is_withheld_once_and_never_published(
    tmp_path: Path, fake_anthropic: FakeAnthropic, database: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    settings = studio_settings(
        tmp_path, fake_anthropic, studio={"approvals": 2, "discord": REVIEWERS["discord"]}, database=database
    )
    fake_anthropic.script.extend([essay_reply(), essay_reply()])
    async with studio_runtime(settings) as runtime:
        # A second host over the same database: both publish what waits approved, each pass.
        other = StudioService(settings, runtime.store, runtime.router)
        draft = await runtime.studio.draft_now("operator")
        stranded = await runtime.studio.draft_now("operator")
        # Nothing in ember edits a draft; someone with the database could. Publication notices.
        async with runtime.store.engine.begin() as conn:
            await conn.execute(sql("UPDATE studio_drafts SET text = text || ' (edited)'"))
        await runtime.studio.decide(ROLE_REVIEWER, draft.id, Verdict.APPROVE)
        decided = await runtime.studio.decide(USER_REVIEWER, draft.id, Verdict.APPROVE)
        # The other draft was approved by a host that stopped before publishing it: both hosts'
        # loops find it, pass after pass.
        async with runtime.store.engine.begin() as conn:
            await conn.execute(sql(f"UPDATE studio_drafts SET state = 'approved' WHERE id = {stranded.id}"))
        for _ in range(3):
            await asyncio.gather(runtime.studio.run_once(), other.run_once())
        later = await runtime.studio.decide(
            User("777", "Late", "discord", "G1", role_ids=("111",)), draft.id, Verdict.APPROVE
        )
        essays = await rows(runtime.store, "SELECT count(*) FROM essays")
        audit = await rows(
            runtime.store,
            "SELECT target_id, detail FROM access_audit WHERE action = 'studio-withhold' ORDER BY id",
        )
        state = await runtime.studio.draft(draft.id)
        other_state = await runtime.studio.draft(stranded.id)
        pending = await runtime.studio.pending()
    assert "NOT published" in decided.text and "withheld" in decided.text
    assert "withheld" in later.text and "no longer matches its hash" in later.text
    assert essays == [(0,)]
    assert state is not None and state.state is DraftState.WITHHELD
    assert state.withheld_reason.startswith(
        f"its text no longer matches its hash (sha256 {draft.sha256}, now "
    )
    assert other_state is not None and other_state.state is DraftState.WITHHELD
    # Reviewers see them beside the drafts they owe, newest first.
    assert [d.id for d in pending] == [stranded.id, draft.id]
    assert f"withheld, NOT published: {state.withheld_reason}" in wording.draft_line(state)
    assert f"withheld, NOT published: {state.withheld_reason}" in wording.shown(state)
    # Written once, audited once, logged once each: whichever host and however many passes.
    assert audit == [
        (f"draft:{draft.id}", state.withheld_reason),
        (f"draft:{stranded.id}", other_state.withheld_reason),
    ]
    withheld_logs = [r for r in caplog.records if "withheld, NOT published" in r.getMessage()]
    assert len(withheld_logs) == 2 and {r.levelname for r in withheld_logs} == {"ERROR"}


async def test_characters_xml_cannot_carry_leave_the_feed_valid(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    port = free_port()
    odd = "Control\x0bcharacters\x00 and \ufffe here.\n\nThe rest stays."
    settings = studio_settings(tmp_path, fake_anthropic, studio=REVIEWERS, server={"health_port": port})
    fake_anthropic.script.append(Reply.text([odd]))
    async with (
        studio_runtime(settings) as runtime,
        listening(runtime.metrics, runtime.readiness, "127.0.0.1", port, runtime.studio) as base,
        aiohttp.ClientSession() as http,
    ):
        draft = await runtime.studio.draft_now("operator")
        await runtime.studio.decide(ROLE_REVIEWER, draft.id, Verdict.APPROVE)
        slug = (await runtime.studio.draft(draft.id)).slug  # type: ignore[union-attr]
        async with http.get(f"{base}/essays/feed.xml") as response:
            feed = feedparser.parse(await response.read())
        async with http.get(f"{base}/essays/{slug}.txt") as response:
            exact = await response.read()
    assert not feed.bozo, feed.get("bozo_exception")
    assert (
        feed.entries[0].content[0].value
        == "Control\ufffdcharacters\ufffd and \ufffd here.\n\nThe rest stays."
    )
    assert exact == odd.encode("utf-8")


class FlakyDesk:
    """Plays a platform adapter's review desk: refuses the first `failures` posts."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.posted: list[DraftPreview] = []
        self.outcomes: list[tuple[str, str, str]] = []
        self.outcome_failures = 0

    async def post_draft(self, preview: DraftPreview) -> str:
        if self.failures:
            self.failures -= 1
            raise LookupError("Missing Access")
        self.posted.append(preview)
        return str(1000 + len(self.posted))

    async def show_outcome(self, channel_id: str, message_id: str, summary: str) -> None:
        if self.outcome_failures:
            self.outcome_failures -= 1
            raise LookupError("Unknown Message")
        self.outcomes.append((channel_id, message_id, summary))


async def test_a_preview_that_could_not_be_posted_is_tried_again_then_given_up(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    studio = {"discord": {"review_channel": "42", "reviewer_roles": ["111"]}}
    settings = studio_settings(tmp_path, fake_anthropic, studio=studio)
    fake_anthropic.script.extend([essay_reply(), essay_reply()])
    now = [MONDAY_NINE]
    async with studio_runtime(settings) as runtime:
        service = StudioService(settings, runtime.store, runtime.router, clock=lambda: now[0])
        desk = FlakyDesk(failures=1)
        service.register_desk("discord", desk)
        first = await service.draft_now("operator")
        assert await service.post_previews() == 0  # refused: due again in five minutes
        assert await service.post_previews() == 0
        now[0] += timedelta(minutes=5)
        assert await service.post_previews() == 1
        assert [(p.draft_id, p.channel_id, p.text) for p in desk.posted] == [(first.id, "42", ESSAY)]
        assert await service.post_previews() == 0  # posted once, never again

        desk.failures = 99
        second = await service.draft_now("operator")
        for _ in range(10):
            now[0] += timedelta(hours=1)
            await service.post_previews()
        [(state, attempts, error)] = await rows(
            runtime.store,
            f"SELECT state, attempts, last_error FROM studio_previews WHERE draft_id = {second.id}",
        )
    assert (state, attempts) == ("failed", 5) and "Missing Access" in error


async def test_a_preview_left_failed_is_listed_and_reposted_by_the_operator(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    studio = {"discord": {"review_channel": "42", "reviewer_roles": ["111"]}}
    settings = studio_settings(tmp_path, fake_anthropic, studio=studio)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "ember.db"}"\n'
        '[studio]\nenabled = true\n[studio.discord]\nreview_channel = "42"\nreviewer_roles = ["111"]\n'
        '[logging]\nlevel = "ERROR"\n'
    )
    fake_anthropic.script.append(essay_reply())
    # From the real moment: `ember studio repost` (another process) owes it again from its now.
    now = [datetime.now(UTC)]
    async with studio_runtime(settings) as runtime:
        service = StudioService(settings, runtime.store, runtime.router, clock=lambda: now[0])
        desk = FlakyDesk(failures=5)
        service.register_desk("discord", desk)
        draft = await service.draft_now("operator")
        for _ in range(10):
            await service.post_previews()
            now[0] += timedelta(hours=1)
        code, listed, err = await ember(config, "studio", "list")
        assert (code, err) == (0, ""), err
        assert "previews not posted (1)" in listed
        assert f"#{draft.id} · discord · failed after 5 tries: LookupError('Missing Access')" in listed
        code, told, err = await ember(config, "studio", "repost", str(draft.id))
        assert (code, err) == (0, ""), err
        assert "owed again to discord" in told
        assert await service.post_previews() == 1
        code, told, _ = await ember(config, "studio", "repost", str(draft.id))
        assert code == 1 and "nothing to post again" in told
        code, listed, _ = await ember(config, "studio", "list")
        audit = await rows(runtime.store, "SELECT action FROM access_audit WHERE action = 'studio-repost'")
    assert [p.draft_id for p in desk.posted] == [draft.id]
    assert "previews not posted (0)" in listed
    assert audit == [("studio-repost",)]


class StoppingDesk(FlakyDesk):
    """A host that stops mid-post: the first post never returns (the task is cancelled)."""

    def __init__(self) -> None:
        super().__init__(failures=0)
        self.stop_first = True

    async def post_draft(self, preview: DraftPreview) -> str:
        if self.stop_first:
            self.stop_first = False
            raise asyncio.CancelledError
        return await super().post_draft(preview)


async def test_a_preview_claimed_by_a_host_that_stopped_is_posted_once_the_claim_lapses(
    tmp_path: Path, fake_anthropic: FakeAnthropic, database: dict[str, str]
) -> None:
    studio = {"discord": {"review_channel": "42", "reviewer_roles": ["111"]}}
    settings = studio_settings(tmp_path, fake_anthropic, studio=studio, database=database)
    fake_anthropic.script.append(essay_reply())
    now = [MONDAY_NINE]
    async with studio_runtime(settings) as runtime:
        stopped = StudioService(settings, runtime.store, runtime.router, clock=lambda: now[0])
        stopped.register_desk("discord", StoppingDesk())
        hosts = [
            StudioService(settings, runtime.store, runtime.router, clock=lambda: now[0]) for _ in range(2)
        ]
        desks = [FlakyDesk(failures=0) for _ in hosts]
        for host, desk in zip(hosts, desks, strict=True):
            host.register_desk("discord", desk)
        draft = await stopped.draft_now("operator")
        with pytest.raises(asyncio.CancelledError):
            await stopped.post_previews()
        # Claimed: nobody posts it while the claim holds…
        assert await asyncio.gather(*(h.post_previews() for h in hosts)) == [0, 0]
        now[0] += timedelta(minutes=5)
        # …and once it lapses, one host posts it, told an earlier claim may have posted it.
        assert sorted(await asyncio.gather(*(h.post_previews() for h in hosts))) == [0, 1]
        [posted] = [p for desk in desks for p in desk.posted]
        now[0] += timedelta(hours=1)
        assert await asyncio.gather(*(h.post_previews() for h in hosts)) == [0, 0]
        # Settled by a command: the preview, as posted, is edited to say so.
        reviewer = User("5", "Rhea", "discord", "G1", role_ids=("111",))
        await hosts[0].decide(reviewer, draft.id, Verdict.APPROVE)
        [(state, channel, message)] = await rows(
            runtime.store, "SELECT state, channel_id, message_id FROM studio_previews"
        )
    assert (posted.draft_id, posted.uncertain) == (draft.id, True)
    assert (state, channel, message) == ("shown", "42", "1001")
    [outcome] = [o for desk in desks for o in desk.outcomes]
    assert outcome == ("42", "1001", f"**Draft #{draft.id}** was approved by Rhea and published.")


async def test_a_settled_drafts_preview_shows_its_outcome_whichever_host_settled_it(
    tmp_path: Path, fake_anthropic: FakeAnthropic, database: dict[str, str]
) -> None:
    studio = {"schedule": "off", "discord": {"review_channel": "42", "reviewer_roles": ["111"]}}
    settings = studio_settings(tmp_path, fake_anthropic, studio=studio, database=database)
    fake_anthropic.script.append(essay_reply())
    now = [MONDAY_NINE]
    async with studio_runtime(settings) as runtime:
        # Two hosts running Discord (one Discord: one desk seen from both), and one host
        # without it (its Discord adapter is elsewhere).
        discord = FlakyDesk(failures=0)
        hosts = [
            StudioService(settings, runtime.store, runtime.router, clock=lambda: now[0]) for _ in range(2)
        ]
        for host in hosts:
            host.register_desk("discord", discord)
        settler = StudioService(settings, runtime.store, runtime.router, clock=lambda: now[0])
        draft = await settler.draft_now("operator")
        assert sorted(await asyncio.gather(*(h.post_previews() for h in hosts))) == [0, 1]
        discord.outcome_failures = 1  # Discord refuses the first edit
        vetoed = await settler.decide(ROLE_REVIEWER, draft.id, Verdict.VETO, "Not this one.")
        assert vetoed.settled and discord.outcomes == []
        await asyncio.gather(*(h.run_once() for h in hosts))  # one host claims it: refused
        await asyncio.gather(*(h.run_once() for h in hosts))
        assert discord.outcome_failures == 0 and discord.outcomes == []  # not due again yet
        now[0] += timedelta(minutes=5)
        for _ in range(3):
            await asyncio.gather(*(h.run_once() for h in hosts))
            now[0] += timedelta(hours=1)
        [(state, tries)] = await rows(runtime.store, "SELECT state, outcome_tries FROM studio_previews")
    summary = f"**Draft #{draft.id}** was vetoed by Rhea: Not this one."
    assert discord.outcomes == [("42", "1001", summary)]
    assert (state, tries) == ("shown", 1)
