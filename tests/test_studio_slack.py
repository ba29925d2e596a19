"""The essay studio in Slack, end to end: the real slack-bolt app over Socket Mode against the
fake Slack, the real anthropic SDK against the fake Anthropic API, a real SQLite store, ember's
own HTTP server. A draft from the command line and one from the schedule reach the review
channel; reviewers (a user group) decide with buttons, a modal (views.open) and slash commands;
the approved essay is served and announced once in each subscribed channel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import feedparser
import pytest
from sqlalchemy import text as sql

from bots.slack import render
from core.config import load_settings
from core.events import User, utcnow
from core.ops.server import listening
from core.studio.wording import NOT_A_REVIEWER, VETO_NEEDS_REASON
from tests.essay_support import rows
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.slack_server import FakeSlack, SlackChannel, SlackUser
from tests.slack_support import Ember, action_ids, ember_settings, running_ember
from tests.studio_support import ESSAY, essay_reply
from tests.test_essays_cli import ember as ember_cli
from tests.test_studio import free_port

Json = dict[str, Any]
EDITORS = "S0EDITORS"
REVIEW = "C7"
SCHEDULED = "A Scheduled Essay\n\nWritten on the hour, as asked."


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    """alice and bob are editors (the reviewers' group); carol is an admin but no reviewer."""
    users = [
        SlackUser("U1", "alice", real_name="Alice"),
        SlackUser("U2", "bob", real_name="Bob"),
        SlackUser("U3", "carol", real_name="Carol", is_admin=True),
    ]
    channels = [
        SlackChannel("C1", "general"),
        SlackChannel(REVIEW, "review"),
        SlackChannel("C5", "essays-1"),
        SlackChannel("C6", "essays-2"),
    ]
    async with FakeSlack(users=users, channels=channels, usergroups={EDITORS: ["U1", "U2"]}) as server:
        yield server


def config_text(tmp_path: Path, fake: FakeSlack, anthropic: FakeAnthropic, port: int) -> str:
    return (
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "ember.db"}"\n'
        f'[providers.anthropic]\nbase_url = "{anthropic.url}"\n'
        f'[slack]\napi_base_url = "{fake.api_url}"\n'
        f"[server]\nhealth_port = {port}\n"
        f'[studio]\nenabled = true\napprovals = 2\nschedule = "daily"\n'
        f'time = "{(utcnow() - timedelta(minutes=1)):%H:%M}"\n'
        f'[studio.slack]\nreview_channel = "{REVIEW}"\nreviewer_groups = ["{EDITORS}"]\n'
        '[logging]\nlevel = "ERROR"\n'
    )


async def answer(ember: Ember, user_id: str, text: str) -> str:
    """`/opus <text>` in #general; the private answer."""
    before = len(ember.slack.calls_to("response_url"))
    await ember.command(text, user_id=user_id, channel_id="C1")
    calls = await ember.wait(lambda c: c.method == "response_url", count=before + 1)
    assert calls[before].args["response_type"] == "ephemeral", "studio answers are private"
    return str(calls[before].args["text"])


async def press(ember: Ember, user_id: str, preview: Json, action_id: str) -> str:
    """Press a button on a preview; the private answer to the presser."""
    before = len(ember.slack.calls_to("response_url"))
    await ember.press(ember.slack.button_press(user_id, REVIEW, str(preview["ts"]), action_id))
    calls = await ember.wait(lambda c: c.method == "response_url", count=before + 1)
    await ember.idle()
    assert calls[before].args["response_type"] == "ephemeral"
    return str(calls[before].args["text"])


async def veto_form(ember: Ember, user_id: str, preview: Json, action_id: str) -> Json:
    """Press Veto; the modal ember opened with views.open."""
    before = len(ember.slack.calls_to("views.open"))
    await ember.press(ember.slack.button_press(user_id, REVIEW, str(preview["ts"]), action_id))
    calls = await ember.wait(lambda c: c.method == "views.open", count=before + 1)
    await ember.idle()
    [view] = [
        v for v in ember.slack.views.values() if v["callback_id"] == calls[before].args["view"]["callback_id"]
    ][-1:]
    return view


async def submit(ember: Ember, user_id: str, view: Json, reason: str) -> str:
    """Submit the modal; the private line ember posts back in the review channel."""
    before = len(ember.slack.calls_to("chat.postEphemeral"))
    await ember.press(ember.slack.view_submission(user_id, str(view["id"]), {"reason": reason}))
    calls = await ember.wait(lambda c: c.method == "chat.postEphemeral", count=before + 1)
    await ember.idle()
    sent = calls[before].args
    assert (sent["channel"], sent["user"]) == (REVIEW, user_id)
    return str(sent["text"])


def previews(fake: FakeSlack) -> list[Json]:
    """The drafts' header messages in the review channel, as stored (and later updated)."""
    return [m for m in fake.messages(REVIEW) if not m.get("thread_ts") or m["thread_ts"] == m["ts"]]


async def test_drafts_are_reviewed_in_slack_published_and_announced_once_per_channel(
    tmp_path: Path, fake: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, fake, fake_anthropic, port))
    fake_anthropic.script.append(essay_reply())
    code, _, err = await ember_cli(config, "studio", "draft", env={"ANTHROPIC_API_KEY": "k"})
    assert code == 0, err
    settings = load_settings(config)
    fake_anthropic.script.append(Reply.text([SCHEDULED]))
    async with running_ember(fake, fake_anthropic, settings) as ember:
        studio, essays = ember.runtime.studio, ember.runtime.essays
        admin = User("U3", "carol", "slack", "T1", is_moderator=True)
        for channel in ("C5", "C6"):
            await essays.subscribe("slack", "T1", channel, "", admin)
        await studio.run_once()  # today's slot is drafted; both drafts go to the review channel
        assert len(fake_anthropic.requests) == 2
        commanded, scheduled = previews(fake)
        assert commanded["text"].startswith("*New essay draft #1*: On Keeping a Lamp Lit")
        assert scheduled["text"].startswith("*New essay draft #2*: A Scheduled Essay")
        assert action_ids(commanded["blocks"]) == ["ember:studio:approve:1", "ember:studio:veto:1"]
        # The whole text in the preview's thread, escaped: nothing pings, no link hides.
        [text] = [
            c.args["text"]
            for c in fake.calls_to("chat.postMessage")
            if c.args.get("thread_ts") == commanded["ts"]
        ]
        assert text == render.model_text(ESSAY)
        assert "&lt;!channel&gt;" in text and "<!channel>" not in text and "<@123>" not in text

        # Not a reviewer (an admin is not one unless named): told privately, nothing changes.
        assert await press(ember, "U3", commanded, "ember:studio:approve:1") == NOT_A_REVIEWER
        assert await answer(ember, "U3", "studio pending") == NOT_A_REVIEWER
        assert "#1 · On Keeping a Lamp Lit · pending (0 approval(s))" in await answer(
            ember, "U1", "studio pending"
        )

        # A veto without a reason is refused; with one it is recorded.
        form = await veto_form(ember, "U2", scheduled, "ember:studio:veto:2")
        assert form["callback_id"] == "ember:studio:reason:2"
        assert await submit(ember, "U2", form, "   ") == render.trusted(VETO_NEEDS_REASON)
        form = await veto_form(ember, "U2", scheduled, "ember:studio:veto:2")  # a modal closes on submit
        assert (
            await submit(ember, "U2", form, "It names <@U1> to <!channel>.")
            == "Draft #2 is vetoed and will not be published."
        )
        vetoed = fake.stored(REVIEW, str(scheduled["ts"]))
        assert (
            action_ids(vetoed["blocks"]) == []
            and "vetoed by Bob: It names ‹@\u200bU1› to ‹!channel›." in vetoed["text"]
        )
        assert "<@U1>" not in str(vetoed) and "<!channel>" not in str(vetoed), "a reason pings no one"

        # Approval by quorum: two editors, by button and by command.
        assert (
            await press(ember, "U1", commanded, "ember:studio:approve:1")
            == "Your approval of draft #1 is recorded (1 of 2)."
        )
        assert await answer(ember, "U2", "studio approve 1") == "Draft #1 is approved and published."
        # The command settled it: the preview (its ts kept when it was posted) says so at once.
        settled = fake.stored(REVIEW, str(commanded["ts"]))
        assert action_ids(settled["blocks"]) == []
        assert "approved by Alice, Bob and published" in settled["text"]
        late = await press(ember, "U1", commanded, "ember:studio:veto:1")
        assert late.startswith("Draft #1 was already approved (by ")
        assert action_ids(fake.stored(REVIEW, str(commanded["ts"]))["blocks"]) == []
        assert await answer(ember, "U1", "studio veto 2 too late") == render.trusted(
            "Draft #2 was already vetoed by Bob: It names ‹@\u200bU1› to ‹!channel›."
        )

        # Announced once in each subscribed channel.
        await essays.deliver_pending()
        await essays.deliver_pending()
        for channel in ("C5", "C6"):
            posted = [c for c in fake.calls_to("chat.postMessage") if c.args.get("channel") == channel]
            assert len(posted) == 1 and "On Keeping a Lamp Lit" in str(posted[0].args["blocks"])
            [context] = [b for b in posted[0].args["blocks"] if b["type"] == "context"]
            assert context["elements"][-1]["text"] == render.escape(settings.studio.disclaimer)

        draft = await studio.draft(1)
        assert draft is not None and draft.slug
        async with (
            listening(ember.runtime.metrics, ember.runtime.readiness, "127.0.0.1", port, studio) as base,
            aiohttp.ClientSession() as http,
        ):
            async with http.get(f"{base}/essays/feed.xml") as response:
                feed = feedparser.parse(await response.read())
            async with http.get(f"{base}/essays/{draft.slug}.txt") as response:
                exact = await response.read()
        audit = await rows(ember.runtime.store, "SELECT action, platform FROM access_audit ORDER BY id")

    assert not feed.bozo and [e.content[0].value for e in feed.entries] == [ESSAY]
    assert exact == ESSAY.encode("utf-8")
    assert audit == [
        ("studio-draft", "ember"),
        ("studio-draft", "ember"),
        ("studio-veto", "slack"),
        ("studio-approve", "slack"),
        ("studio-approve", "slack"),
        ("studio-publish", "ember"),
    ]


async def test_a_long_draft_reaches_its_thread_as_a_file(
    tmp_path: Path, fake: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    long_essay = "A Long Essay\n\n" + "\n\n".join(
        f"Paragraph {n}: " + "words & <b> " * 1000 for n in range(10)
    )
    studio = {"enabled": True, "slack": {"review_channel": REVIEW, "reviewer_groups": [EDITORS]}}
    settings = ember_settings(tmp_path, fake_anthropic, fake, studio=studio)
    fake_anthropic.script.append(Reply.text([long_essay]))
    async with running_ember(fake, fake_anthropic, settings) as ember:
        draft = await ember.runtime.studio.draft_now("operator")
        assert await ember.runtime.studio.post_previews() == 1
    [header] = previews(fake)
    [upload] = [m for m in fake.thread(REVIEW, str(header["ts"])) if m.get("files")]
    assert upload["thread_ts"] == header["ts"]
    [shared] = upload["files"]
    assert shared["name"] == f"draft-{draft.id}.txt"
    assert fake.file_bytes[shared["id"]] == long_essay.encode("utf-8")


async def test_a_preview_refused_or_left_by_a_stopped_host_is_posted_once(
    tmp_path: Path, fake: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    studio = {"enabled": True, "slack": {"review_channel": REVIEW, "reviewer_groups": [EDITORS]}}
    settings = ember_settings(tmp_path, fake_anthropic, fake, studio=studio)
    overdue = sql("UPDATE studio_previews SET updated_at = :t").bindparams(t=datetime(2000, 1, 1, tzinfo=UTC))
    fake_anthropic.script.append(essay_reply())
    async with running_ember(fake, fake_anthropic, settings) as ember:
        store = ember.runtime.store
        await ember.runtime.studio.draft_now("operator")
        fake.fail_next("chat.postMessage", "channel_not_found", times=1)
        assert await ember.runtime.studio.post_previews() == 0  # refused: due again later
        async with store.engine.begin() as conn:
            await conn.execute(overdue)
        assert await ember.runtime.studio.post_previews() == 1
        [header] = previews(fake)
        # A host that stopped after posting it whole, before saying so: its claim lapses.
        async with store.engine.begin() as conn:
            await conn.execute(sql("UPDATE studio_previews SET state = 'posting', message_id = ''"))
            await conn.execute(overdue)
        assert await ember.runtime.studio.post_previews() == 1
        kept = await rows(store, "SELECT state, channel_id, message_id FROM studio_previews")
    assert len(previews(fake)) == 1
    assert [m["text"] for m in fake.thread(REVIEW, str(header["ts"]))][1:] == [render.model_text(ESSAY)]
    assert kept == [("posted", REVIEW, str(header["ts"]))]
