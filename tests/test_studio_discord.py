"""The essay studio on Discord, end to end: the real discord.py client against the fake Discord,
the real anthropic SDK against the fake Anthropic API, a real SQLite store, ember's own HTTP
server read with feedparser. A draft from the command line and one from the schedule reach the
review channel; reviewers (a role) decide with buttons, a modal and slash commands; the
approved essay is served and announced once in each subscribed channel."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import feedparser
from sqlalchemy import text as sql

from core import markup
from core.config import load_settings
from core.events import User, utcnow
from core.ops.server import listening
from core.studio.wording import NOT_A_REVIEWER, VETO_NEEDS_REASON
from tests.discord_support import (
    CALLBACK,
    FOLLOWUP,
    Ember,
    custom_ids,
    ember_settings,
    posts_in,
    running_ember,
)
from tests.ember_process import base_env, ember_run_process
from tests.essay_support import rows
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.discord_server import (
    FakeChannel,
    FakeDiscord,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
    Json,
    Recorded,
)
from tests.studio_support import ESSAY, essay_reply
from tests.test_access_discord import EPHEMERAL, answer, command
from tests.test_essays_cli import ember as ember_cli
from tests.test_studio import free_port

THREAD = "POST /channels/{channel_id}/messages/{message_id}/threads"
EDIT = "PATCH /channels/{channel_id}/messages/{message_id}"
MODAL = 9
SCHEDULED = "A Scheduled Essay\n\nWritten on the hour, as asked."


def world() -> FakeDiscord:
    """alice and bob are editors (the reviewers' role); carol moderates but does not review."""
    moderator = FakeRole("moderator", permissions=1 << 5, position=2)
    editors = FakeRole("editors", position=1)
    alice, bob, carol = (FakeUser(n, global_name=n.title()) for n in ("alice", "bob", "carol"))
    channels = [
        FakeChannel("review"),
        FakeChannel("essays-1"),
        FakeChannel("essays-2"),
        FakeChannel("general"),
    ]
    guild = FakeGuild(
        "Readers",
        channels=channels,
        roles=[moderator, editors],
        members=[
            FakeMember(alice, roles=[editors]),
            FakeMember(bob, roles=[editors]),
            FakeMember(carol, roles=[moderator]),
        ],
        owner=carol,
    )
    return FakeDiscord([guild])


def config_text(tmp_path: Path, fake: FakeDiscord, anthropic: FakeAnthropic, port: int) -> str:
    return (
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "ember.db"}"\n'
        f'[providers.anthropic]\nbase_url = "{anthropic.url}"\n'
        f"[server]\nhealth_port = {port}\n"
        f'[studio]\nenabled = true\napprovals = 2\nschedule = "daily"\ntime = "{(utcnow() - timedelta(minutes=1)):%H:%M}"\n'
        f'[studio.discord]\nreview_channel = "{fake.channel("review").id}"\nreviewer_roles = ["{fake.role("editors").id}"]\n'
        '[logging]\nlevel = "ERROR"\n'
    )


async def previews(ember: Ember, count: int) -> list[Json]:
    """The drafts' header messages in #review, as stored, oldest first."""
    review = ember.discord.channel("review")
    await ember.wait(posts_in(review.id), count=count)
    return [
        m
        for m in ember.discord.history(review)
        if "essay draft #" in m["content"] or "**Draft #" in m["content"]
    ][:count]


async def press_privately(ember: Ember, user: FakeUser, message_id: int, custom_id: str) -> str:
    """Press a button; return the private answer (a follow-up after a deferred press, or the
    press's own answer: Veto is not deferred, since it may open a modal)."""
    fake = ember.discord
    payload = fake.button_press(user, message_id, custom_id)
    await fake.dispatch("INTERACTION_CREATE", payload)
    token = str(payload["token"])

    def private(r: Recorded) -> bool:
        answered = r.route == CALLBACK and (r.body or {}).get("type") == 4
        return token in r.path and (r.route == FOLLOWUP or answered)

    [sent] = await ember.wait(private)
    body = sent.body if sent.route == FOLLOWUP else sent.body["data"]
    assert body["flags"] & EPHEMERAL, "studio answers are private"
    return str(body["content"])


async def veto_form(ember: Ember, user: FakeUser, message_id: int, custom_id: str) -> Json:
    """Press Veto; return the modal ember opened."""
    fake = ember.discord
    payload = fake.button_press(user, message_id, custom_id)
    await fake.dispatch("INTERACTION_CREATE", payload)
    token = str(payload["token"])
    [callback] = await ember.wait(lambda r: r.route == CALLBACK and token in r.path)
    assert callback.body["type"] == MODAL, callback.body
    return callback.body["data"]  # type: ignore[no-any-return]


async def submit_reason(ember: Ember, user: FakeUser, message_id: int, form: Json, reason: str) -> str:
    fake = ember.discord
    field = form["components"][0]["components"][0]["custom_id"]
    payload = fake.modal_submit(user, message_id, form["custom_id"], {field: reason})
    await fake.dispatch("INTERACTION_CREATE", payload)
    token = str(payload["token"])
    [sent] = await ember.wait(lambda r: r.route == FOLLOWUP and token in r.path)
    assert sent.body["flags"] & EPHEMERAL
    return str(sent.body["content"])


async def test_drafts_are_reviewed_on_discord_published_and_announced_once_per_channel(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    fake = world()
    port = free_port()
    config = tmp_path / "config.toml"
    async with fake:
        with fake.pointed():
            config.write_text(config_text(tmp_path, fake, fake_anthropic, port))
            # The operator asks for a draft from a shell, before ember runs.
            fake_anthropic.script.append(essay_reply())
            code, _, err = await ember_cli(config, "studio", "draft", env={"ANTHROPIC_API_KEY": "k"})
            assert code == 0, err
            settings = load_settings(config)
            alice, bob, carol = fake.user("alice"), fake.user("bob"), fake.user("carol")
            fake_anthropic.script.append(Reply.text([SCHEDULED]))
            async with running_ember(fake, fake_anthropic, settings) as ember:
                studio, essays = ember.runtime.studio, ember.runtime.essays
                mod = User(str(carol.id), "Carol", "discord", str(fake.guild.id), is_moderator=True)
                for name in ("essays-1", "essays-2"):
                    await essays.subscribe("discord", str(fake.guild.id), str(fake.channel(name).id), "", mod)
                # The studio's round: today's slot is drafted, and both drafts go to #review.
                await studio.run_once()
                assert len(fake_anthropic.requests) == 2
                commanded, scheduled = await previews(ember, 2)
                assert commanded["content"].startswith("**New essay draft #1**: On Keeping a Lamp Lit")
                assert scheduled["content"].startswith("**New essay draft #2**: A Scheduled Essay")
                approve_1, veto_1 = custom_ids(commanded)
                assert (approve_1, veto_1) == ("ember:studio:approve:1", "ember:studio:veto:1")
                # The whole text in a thread under the preview, links shown, nobody pinged.
                threads = [r for r in fake.requests if r.route == THREAD]
                assert len(threads) == 2
                thread_id = (
                    int(fake.messages[int(commanded["id"])]["thread"]["id"])
                    if "thread" in fake.messages[int(commanded["id"])]
                    else int(commanded["id"])
                )
                [text] = [m["content"] for m in fake.history(thread_id)]
                assert text == markup.visible_links(ESSAY)

                general = fake.channel("general")
                # Not a reviewer (a moderator is not one unless named): told privately, nothing changes.
                assert await press_privately(ember, carol, int(commanded["id"]), approve_1) == NOT_A_REVIEWER
                assert await answer(ember, carol, general, "studio pending") == NOT_A_REVIEWER
                shown = await command(ember, alice, general, "studio show", id=1)
                assert (
                    shown["flags"] & EPHEMERAL
                    and "sha256 " + hashlib.sha256(ESSAY.encode()).hexdigest() in shown["content"]
                )
                [attached] = shown["attachments"]
                assert fake.files[int(attached["id"])][1] == ESSAY.encode(
                    "utf-8"
                )  # exactly what the model wrote
                pending = await answer(ember, alice, general, "studio pending")
                assert "#1 · On Keeping a Lamp Lit · pending (0 approval(s))" in pending and "#2" in pending

                # A veto without a reason is refused; with one it is recorded.
                form = await veto_form(ember, bob, int(scheduled["id"]), "ember:studio:veto:2")
                assert form["custom_id"] == "ember:studio:reason:2"
                assert await submit_reason(ember, bob, int(scheduled["id"]), form, "   ") == VETO_NEEDS_REASON
                form = await veto_form(
                    ember, bob, int(scheduled["id"]), "ember:studio:veto:2"
                )  # a modal closes on submit
                told = await submit_reason(ember, bob, int(scheduled["id"]), form, "It names a member.")
                assert told == "Draft #2 is vetoed and will not be published."
                assert "vetoed by Bob: It names a member." in fake.messages[int(scheduled["id"])]["content"]
                assert fake.messages[int(scheduled["id"])]["components"] == []
                late = await answer(ember, alice, general, "studio approve", id=2)
                assert late == "Draft #2 was already vetoed by Bob: It names a member."

                # Approval by quorum: two editors.
                first = await press_privately(ember, alice, int(commanded["id"]), approve_1)
                assert first == "Your approval of draft #1 is recorded (1 of 2)."
                assert custom_ids(fake.messages[int(commanded["id"])]) == [approve_1, veto_1]
                second = await answer(ember, bob, general, "studio approve", id=1)
                assert second == "Draft #1 is approved and published."
                # The command settled it: its preview (its message id was kept when it was
                # posted) says so and has lost its buttons, edited through the channel.
                assert fake.messages[int(commanded["id"])]["components"] == []
                assert (
                    "approved by Alice, Bob and published" in fake.messages[int(commanded["id"])]["content"]
                )
                edits = [r for r in fake.requests if r.route == EDIT and r.path.endswith(commanded["id"])]
                assert [e.body["components"] for e in edits] == [[]]

                # Announced once in each subscribed channel, each with its discussion thread.
                await essays.deliver_pending()
                await essays.deliver_pending()
                for name in ("essays-1", "essays-2"):
                    posted = [r for r in fake.requests if posts_in(fake.channel(name).id)(r)]
                    assert [p.body["embeds"][0]["title"] for p in posted] == ["On Keeping a Lamp Lit"]
                    assert (
                        posted[0].body["embeds"][0]["footer"]["text"].startswith(settings.studio.disclaimer)
                    )
                assert len([r for r in fake.requests if r.route == THREAD]) == 4

                draft = await studio.draft(1)
                assert draft is not None and draft.slug
                async with (
                    listening(
                        ember.runtime.metrics, ember.runtime.readiness, "127.0.0.1", port, studio
                    ) as base,
                    aiohttp.ClientSession() as http,
                ):
                    async with http.get(f"{base}/essays/feed.xml") as response:
                        feed = feedparser.parse(await response.read())
                    async with http.get(f"{base}/essays/{draft.slug}") as response:
                        page = await response.text()
                    async with http.get(f"{base}/essays/{draft.slug}.txt") as response:
                        exact = await response.read()
                audit = await rows(ember.runtime.store, "SELECT action FROM access_audit ORDER BY id")

    assert not feed.bozo and feed.version == "atom10"
    [entry] = feed.entries
    assert entry.content[0].value == ESSAY
    assert exact == ESSAY.encode() and hashlib.sha256(exact).hexdigest() == draft.sha256
    assert settings.studio.disclaimer in page and "&lt;script&gt;" in page
    assert [a for (a,) in audit] == [
        "studio-draft",
        "studio-draft",
        "studio-veto",
        "studio-approve",
        "studio-approve",
        "studio-publish",
    ]


async def test_a_long_draft_reaches_its_thread_as_a_file(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    fake = world()
    long_essay = "A Long Essay\n\n" + "\n\n".join(f"Paragraph {n}: " + "words " * 300 for n in range(12))
    async with fake:
        with fake.pointed():
            studio = {
                "enabled": True,
                "discord": {"review_channel": str(fake.channel("review").id), "reviewer_roles": ["1"]},
            }
            settings = ember_settings(tmp_path, fake_anthropic, studio=studio)
            fake_anthropic.script.append(Reply.text([long_essay]))
            async with running_ember(fake, fake_anthropic, settings) as ember:
                draft = await ember.runtime.studio.draft_now("operator")
                assert await ember.runtime.studio.post_previews() == 1
                [header] = await previews(ember, 1)
                [message] = fake.history(int(header["id"]))  # the thread under the preview
    [attachment] = message["attachments"]
    assert attachment["filename"] == f"draft-{draft.id}.txt"
    assert fake.files[int(attachment["id"])][1] == long_essay.encode("utf-8")


async def test_ember_run_drafts_the_slot_posts_it_for_review_and_serves_the_feed(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    port = free_port()
    review = fake_discord.channel("general")
    config = tmp_path / "ember.toml"
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "ember.db"}"\n'
        f'[providers.anthropic]\nbase_url = "{fake_anthropic.url}"\n'
        f'[discord]\napi_base_url = "{fake_discord.api_base_url}"\ngateway_url = "{fake_discord.gateway_url}"\n'
        f"[server]\nhealth_port = {port}\n"
        f'[studio]\nenabled = true\nschedule = "daily"\ntime = "{(utcnow() - timedelta(minutes=1)):%H:%M}"\n'
        f'[studio.discord]\nreview_channel = "{review.id}"\n'
    )
    fake_anthropic.script.append(essay_reply())
    async with ember_run_process(config, base_env(DISCORD_TOKEN=fake_discord.token), port) as ember:
        await ember.ready()
        [header] = await fake_discord.wait_for(posts_in(review.id), timeout=30)
        status, feed_text = await ember.get("/essays/feed.xml")
    assert header.body["content"].startswith("**New essay draft #1**: On Keeping a Lamp Lit")
    assert any("starting essay studio: drafts by opus-3, schedule daily" in line for line in ember.stderr)
    feed = feedparser.parse(feed_text)
    assert status == 200 and not feed.bozo and feed.version == "atom10" and feed.entries == []


async def test_a_preview_cut_short_or_left_by_a_stopped_host_is_finished_not_posted_twice(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    fake = world()
    overdue = sql("UPDATE studio_previews SET updated_at = :t").bindparams(t=datetime(2000, 1, 1, tzinfo=UTC))
    async with fake:
        with fake.pointed():
            review = fake.channel("review")
            studio = {"enabled": True, "discord": {"review_channel": str(review.id), "reviewer_roles": ["1"]}}
            settings = ember_settings(tmp_path, fake_anthropic, studio=studio)
            fake_anthropic.script.append(essay_reply())
            async with running_ember(fake, fake_anthropic, settings) as ember:
                store = ember.runtime.store
                await ember.runtime.studio.draft_now("operator")
                # The header is posted, then Discord refuses its thread: the post failed part-way.
                fake.fail_next("POST", "/channels/*/messages/*/threads", status=403, code=50013)
                assert await ember.runtime.studio.post_previews() == 0
                async with store.engine.begin() as conn:
                    await conn.execute(overdue)  # due again (five minutes on)
                assert await ember.runtime.studio.post_previews() == 1
                [header] = await previews(ember, 1)
                thread_text = [m["content"] for m in fake.history(int(header["id"]))]
                # A host that stopped after posting it whole, before saying so: its claim lapses.
                async with store.engine.begin() as conn:
                    await conn.execute(sql("UPDATE studio_previews SET state = 'posting', message_id = ''"))
                    await conn.execute(overdue)
                assert await ember.runtime.studio.post_previews() == 1
                kept = await rows(store, "SELECT state, channel_id, message_id FROM studio_previews")
                headers = [r for r in fake.requests if posts_in(review.id)(r)]
                threads = [r for r in fake.requests if r.route == THREAD and r.status == 200]
                after = [m["content"] for m in fake.history(int(header["id"]))]
    assert len(headers) == 1 and len(threads) == 1
    assert thread_text == after and "".join(after).count("On Keeping a Lamp Lit") == 1
    assert kept == [("posted", str(review.id), str(header["id"]))]


async def test_a_withheld_draft_is_shown_with_why_on_its_preview_in_commands_and_the_list(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    fake = world()
    config = tmp_path / "config.toml"
    async with fake:
        with fake.pointed():
            review = fake.channel("review")
            editors = str(fake.role("editors").id)
            studio = {
                "enabled": True,
                "discord": {"review_channel": str(review.id), "reviewer_roles": [editors]},
            }
            settings = ember_settings(tmp_path, fake_anthropic, studio=studio)
            config.write_text(f'[database]\nurl = "{settings.database.url}"\n[logging]\nlevel = "ERROR"\n')
            alice, general = fake.user("alice"), fake.channel("general")
            fake_anthropic.script.append(essay_reply())
            async with running_ember(fake, fake_anthropic, settings) as ember:
                draft = await ember.runtime.studio.draft_now("operator")
                assert await ember.runtime.studio.post_previews() == 1
                [header] = await previews(ember, 1)
                # Nothing in ember edits a draft; someone with the database could.
                async with ember.runtime.store.engine.begin() as conn:
                    await conn.execute(sql("UPDATE studio_drafts SET text = text || ' (edited)'"))
                told = await answer(ember, alice, general, "studio approve", id=draft.id)
                pending = await answer(ember, alice, general, "studio pending")
                shown = await command(ember, alice, general, "studio show", id=draft.id)
                withheld = await ember.runtime.studio.draft(draft.id)
                code, listed, err = await ember_cli(config, "studio", "list")
                essays = await rows(ember.runtime.store, "SELECT count(*) FROM essays")
    assert withheld is not None and withheld.withheld_reason
    assert "NOT published" in told and essays == [(0,)]
    assert (
        f"#{draft.id}" in pending
        and "withheld, NOT published: its text no longer matches its hash" in pending
    )
    assert "withheld, NOT published: its text no longer matches its hash" in shown["content"]
    preview = fake.messages[int(header["id"])]
    assert preview["components"] == [] and "NOT published" in preview["content"]
    assert (code, err) == (0, ""), err
    assert "withheld (1)" in listed and f"withheld, NOT published: {withheld.withheld_reason}" in listed
