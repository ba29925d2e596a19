"""The fake Discord speaks well enough for the real discord.py client: login, READY and
GUILD_CREATE, events in, REST out, interactions, threads, faults, nonces and resumes."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bots.discord.endpoints import discord_endpoints, point_discord_at, restore_endpoints
from tests.fakes.discord_server import (
    EPHEMERAL,
    LOADING,
    DiscordLimits,
    FakeChannel,
    FakeDiscord,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
    Recorded,
    run_client,
)

SAFETY = 5.0  # seconds; a safety net for waits, never an expectation


class Recorder(discord.Client):
    """A plain discord.py client that queues what it receives."""

    def __init__(self, *, content: bool = True, **options: Any) -> None:
        intents = discord.Intents.default()
        intents.message_content = content
        super().__init__(intents=intents, guild_ready_timeout=0.05, **options)
        self.inbox: asyncio.Queue[discord.Message] = asyncio.Queue()

    async def on_message(self, message: discord.Message) -> None:
        await self.inbox.put(message)

    async def next_message(
        self, predicate: Callable[[discord.Message], bool] = lambda m: True
    ) -> discord.Message:
        async with asyncio.timeout(SAFETY):
            while True:
                message = await self.inbox.get()
                if predicate(message):
                    return message


def from_user(user: FakeUser) -> Callable[[discord.Message], bool]:
    return lambda message: message.author.id == user.id


def route(method_and_template: str) -> Callable[[Recorded], bool]:
    return lambda record: record.route == method_and_template


POST_MESSAGE = "POST /channels/{channel_id}/messages"


@pytest.fixture
async def client(fake_discord: FakeDiscord) -> AsyncIterator[Recorder]:
    async with run_client(Recorder(), fake_discord) as running:
        assert isinstance(running, Recorder)
        yield running


def text_channel(client: discord.Client, fake: FakeDiscord, name: str = "general") -> discord.TextChannel:
    channel = client.get_channel(fake.channel(name).id)
    assert isinstance(channel, discord.TextChannel)
    return channel


# ---------------------------------------------------------------------------- login and READY


async def test_logs_in_and_becomes_ready_with_the_guild(fake_discord: FakeDiscord, client: Recorder) -> None:
    assert client.user is not None and client.user.id == fake_discord.bot.id
    assert client.application_id == fake_discord.application_id
    assert client.application_flags.gateway_message_content
    [guild] = client.guilds
    assert guild.name == "Ember Test" and guild.owner_id == fake_discord.user("alice").id
    assert {c.name for c in guild.text_channels} == {"general", "opus", "announcements"}
    assert text_channel(client, fake_discord, "announcements").is_news()
    assert guild.me is not None and guild.me.guild_permissions.send_messages
    assert {r.name for r in guild.roles} >= {"@everyone", "moderator", "ember"}
    assert guild.member_count == 3

    routes = [record.route for record in fake_discord.requests]
    assert routes[:2] == ["GET /users/@me", "GET /oauth2/applications/@me"]
    assert all(
        record.headers["authorization"] == f"Bot {fake_discord.token}" for record in fake_discord.requests
    )
    [identify] = await fake_discord.wait_for_frame(lambda f: f.op == 2)
    assert identify.d["intents"] == client.intents.value
    assert identify.d["token"] == fake_discord.token


async def test_members_with_roles_arrive_when_the_members_intent_is_on(fake_discord: FakeDiscord) -> None:
    fake_discord.application_flags |= 1 << 14  # GATEWAY_GUILD_MEMBERS
    intents = discord.Intents.default()
    intents.members = True
    client = discord.Client(intents=intents, guild_ready_timeout=0.05)
    async with run_client(client, fake_discord):
        [guild] = client.guilds
        alice = guild.get_member(fake_discord.user("alice").id)
        assert alice is not None and [r.name for r in alice.roles] == ["@everyone", "moderator"]
        assert alice.guild_permissions.manage_guild
        assert guild.chunked


async def test_a_privileged_intent_the_application_lacks_closes_with_4014() -> None:
    async with FakeDiscord(application_flags=0) as fake:
        with (
            discord_endpoints(fake.api_base_url, fake.gateway_url),
            pytest.raises(discord.PrivilegedIntentsRequired),
        ):
            async with run_client(Recorder(), fake):
                pass


async def test_a_wrong_token_is_a_login_failure(fake_discord: FakeDiscord) -> None:
    client = Recorder()
    try:
        with pytest.raises(discord.LoginFailure):
            await client.login("not-the-token")
    finally:
        await client.close()


# ---------------------------------------------------------------------------- events in


async def test_a_dispatched_message_reaches_on_message(fake_discord: FakeDiscord, client: Recorder) -> None:
    alice, bob = fake_discord.user("alice"), fake_discord.user("bob")
    general = fake_discord.channel("general")
    await fake_discord.say(alice, general, f"{fake_discord.bot.mention} meet {bob.mention}")

    message = await client.next_message(from_user(alice))
    assert message.content == f"<@{fake_discord.bot.id}> meet <@{bob.id}>"
    assert message.author.name == "alice" and message.author.display_name == "Alice"
    assert isinstance(message.author, discord.Member)
    assert [r.name for r in message.author.roles] == ["@everyone", "moderator"]
    assert client.user in message.mentions and {u.id for u in message.mentions} == {
        fake_discord.bot.id,
        bob.id,
    }
    assert message.channel.id == general.id and message.guild is not None


async def test_replies_attachments_and_threads_arrive(fake_discord: FakeDiscord, client: Recorder) -> None:
    alice = fake_discord.user("alice")
    general = fake_discord.channel("general")
    mine = await text_channel(client, fake_discord).send("a question?")

    picture = fake_discord.attachment("cat.png", b"\x89PNG fake", channel=general)
    await fake_discord.say(alice, general, "an answer", reply_to=mine.id, attachments=[picture])
    reply = await client.next_message(from_user(alice))
    assert reply.type is discord.MessageType.reply
    assert reply.reference is not None and reply.reference.message_id == mine.id
    assert (
        isinstance(reply.reference.resolved, discord.Message)
        and reply.reference.resolved.content == "a question?"
    )
    assert client.user in reply.mentions  # a reply pings its author by default
    assert reply.attachments[0].content_type == "image/png"
    assert await reply.attachments[0].read() == b"\x89PNG fake"

    thread = fake_discord.new_thread(general, "a chat", owner=alice)
    await fake_discord.dispatch("THREAD_CREATE", fake_discord.thread_create(thread))
    await fake_discord.say(alice, thread, "inside the thread")
    inside = await client.next_message(from_user(alice))
    assert isinstance(inside.channel, discord.Thread)
    assert inside.channel.parent_id == general.id and inside.channel.owner_id == alice.id


async def test_direct_messages_arrive_in_a_dm_channel(fake_discord: FakeDiscord, client: Recorder) -> None:
    carol = fake_discord.add_user(FakeUser("carol"))
    await fake_discord.say(carol, fake_discord.dm_channel(carol), "psst")
    message = await client.next_message(from_user(carol))
    assert message.guild is None and isinstance(message.channel, discord.DMChannel)
    assert message.content == "psst"

    await message.channel.send("hello carol")
    [sent] = await fake_discord.wait_for(route(POST_MESSAGE))
    assert sent.path == f"/channels/{fake_discord.dm_channel(carol).id}/messages"

    user = await client.fetch_user(carol.id)
    await user.send("again")
    [opened] = await fake_discord.wait_for(route("POST /users/@me/channels"))
    assert opened.body == {"recipient_id": carol.id}


async def test_edits_and_deletes_arrive(fake_discord: FakeDiscord, client: Recorder) -> None:
    alice = fake_discord.user("alice")
    sent = await fake_discord.say(alice, fake_discord.channel("general"), "first")
    await client.next_message(from_user(alice))
    message_id = int(sent["id"])

    edited = asyncio.ensure_future(client.wait_for("message_edit", timeout=SAFETY))
    await fake_discord.dispatch("MESSAGE_UPDATE", fake_discord.message_update(message_id, content="second"))
    before, after = await edited
    assert (before.content, after.content) == ("first", "second")
    assert after.edited_at is not None

    deleted = asyncio.ensure_future(client.wait_for("raw_message_delete", timeout=SAFETY))
    await fake_discord.dispatch("MESSAGE_DELETE", fake_discord.message_delete(message_id))
    payload = await deleted
    assert payload.message_id == message_id and payload.cached_message is not None


async def test_message_content_is_blank_without_the_intent_unless_the_bot_is_mentioned(
    fake_discord: FakeDiscord,
) -> None:
    alice = fake_discord.user("alice")
    general = fake_discord.channel("general")
    async with run_client(Recorder(content=False), fake_discord) as client:
        assert isinstance(client, Recorder)
        await fake_discord.say(alice, general, "not for the bot")
        assert (await client.next_message(from_user(alice))).content == ""
        await fake_discord.say(alice, general, f"{fake_discord.bot.mention} for the bot")
        assert (await client.next_message(from_user(alice))).content.endswith("for the bot")


# ---------------------------------------------------------------------------- REST out


async def test_send_records_allowed_mentions_and_echoes_the_message(
    fake_discord: FakeDiscord, client: Recorder
) -> None:
    bob = fake_discord.user("bob")
    sent = await text_channel(client, fake_discord).send(
        f"hello {bob.mention}", allowed_mentions=discord.AllowedMentions.none()
    )
    [post] = await fake_discord.wait_for(route(POST_MESSAGE))
    assert post.body["allowed_mentions"] == {"parse": []}
    assert post.body["content"] == f"hello <@{bob.id}>"
    assert post.status == 200
    assert sent.mentions == []  # allowed_mentions filters who is mentioned
    assert fake_discord.history(fake_discord.channel("general"))[-1]["id"] == str(sent.id)
    echoed = await client.next_message(lambda m: m.id == sent.id)  # Discord echoes the bot's own messages
    assert echoed.author == client.user


async def test_edits_and_deletes_are_recorded(fake_discord: FakeDiscord, client: Recorder) -> None:
    message = await text_channel(client, fake_discord).send("draft")
    edited = await message.edit(content="final")
    [patch] = await fake_discord.wait_for(route("PATCH /channels/{channel_id}/messages/{message_id}"))
    assert patch.body["content"] == "final" and edited.edited_at is not None
    assert fake_discord.messages[message.id]["content"] == "final"

    await message.delete()
    await fake_discord.wait_for(route("DELETE /channels/{channel_id}/messages/{message_id}"))
    assert message.id not in fake_discord.messages


async def test_threads_are_created_from_a_message_and_without_one(
    fake_discord: FakeDiscord, client: Recorder
) -> None:
    channel = text_channel(client, fake_discord)
    starter = await channel.send("let's talk")
    joined = asyncio.ensure_future(client.wait_for("thread_create", timeout=SAFETY))
    thread = await starter.create_thread(name="Opus chat", auto_archive_duration=60)
    assert thread.id == starter.id  # Discord gives a message's thread the message's id
    assert (await joined).id == thread.id
    assert client.get_channel(thread.id) is not None
    assert fake_discord.channel(thread.id).auto_archive_duration == 60

    inside = await thread.send("in the thread")
    assert fake_discord.history(fake_discord.channel(thread.id))[-1]["id"] == str(inside.id)

    loose = await channel.create_thread(name="loose", type=discord.ChannelType.public_thread)
    notice = await client.next_message(lambda m: m.type is discord.MessageType.thread_created)
    assert notice.channel.id == channel.id and notice.content == "loose"
    assert fake_discord.channel(loose.id).parent is fake_discord.channel("general")


async def test_typing_crosspost_history_and_lookups(fake_discord: FakeDiscord, client: Recorder) -> None:
    channel = text_channel(client, fake_discord)
    await channel.typing()
    await fake_discord.wait_for(route("POST /channels/{channel_id}/typing"))

    news = text_channel(client, fake_discord, "announcements")
    published = await news.send("news")
    await published.publish()
    assert fake_discord.messages[published.id]["flags"] & 1  # CROSSPOSTED
    with pytest.raises(discord.HTTPException) as not_news:
        await (await channel.send("not news")).publish()
    assert not_news.value.code == 50024

    alice = fake_discord.user("alice")
    said = [fake_discord.message(alice, fake_discord.channel("opus"), f"m{i}") for i in range(5)]
    opus = text_channel(client, fake_discord, "opus")
    assert [m.content async for m in opus.history(limit=3)] == ["m4", "m3", "m2"]
    assert [m.content async for m in opus.history(after=discord.Object(int(said[1]["id"])))] == [
        "m2",
        "m3",
        "m4",
    ]
    assert [m.content async for m in opus.history(before=discord.Object(int(said[1]["id"])))] == ["m0"]
    assert (await opus.fetch_message(int(said[2]["id"]))).content == "m2"

    member = await channel.guild.fetch_member(alice.id)
    assert [r.name for r in member.roles] == ["@everyone", "moderator"]
    assert {r.name for r in await channel.guild.fetch_roles()} >= {"@everyone", "moderator"}
    fetched = await client.fetch_channel(channel.id)
    assert isinstance(fetched, discord.TextChannel) and fetched.topic == "chit-chat"
    with pytest.raises(discord.NotFound) as unknown:
        await client.fetch_channel(12345)
    assert unknown.value.code == 10003


async def test_file_uploads_are_parsed_from_multipart(fake_discord: FakeDiscord, client: Recorder) -> None:
    channel = text_channel(client, fake_discord)
    sent = await channel.send(
        "see attached", file=discord.File(io.BytesIO(b"hello file"), filename="note.txt")
    )
    [post] = await fake_discord.wait_for(route(POST_MESSAGE))
    assert post.body["content"] == "see attached"
    assert [(f.field, f.filename, f.data) for f in post.files] == [("files[0]", "note.txt", b"hello file")]
    [attachment] = sent.attachments
    assert attachment.filename == "note.txt" and attachment.content_type == "text/plain"
    assert await attachment.read() == b"hello file"

    kept = await sent.edit(content="see attached (edited)")
    assert [a.id for a in kept.attachments] == [attachment.id]
    cleared = await sent.edit(attachments=[])
    assert cleared.attachments == []


async def test_discords_validation_of_messages(fake_discord: FakeDiscord, client: Recorder) -> None:
    channel = text_channel(client, fake_discord)
    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send("x" * 2001)
    assert too_long.value.status == 400 and too_long.value.code == 50035
    assert "content" in str(too_long.value)

    gone = await channel.send("soon gone")
    await gone.delete()
    with pytest.raises(discord.HTTPException) as unknown_reference:
        await channel.send("reply", reference=gone)
    assert unknown_reference.value.code == 50035
    lenient = await channel.send("reply anyway", reference=gone.to_reference(fail_if_not_exists=False))
    assert lenient.reference is None

    alice = fake_discord.user("alice")
    theirs = fake_discord.message(alice, fake_discord.channel("general"), "hers")
    with pytest.raises(discord.Forbidden) as not_mine:
        await channel.get_partial_message(int(theirs["id"])).edit(content="mine now")
    assert not_mine.value.code == 50005


async def test_a_reply_pings_its_author_only_when_allowed(
    fake_discord: FakeDiscord, client: Recorder
) -> None:
    alice = fake_discord.user("alice")
    await fake_discord.say(alice, fake_discord.channel("general"), "hi bot")
    theirs = await client.next_message(from_user(alice))
    quiet = await theirs.reply("hello", mention_author=False)
    [post] = await fake_discord.wait_for(route(POST_MESSAGE))
    assert post.body["message_reference"]["message_id"] == theirs.id
    assert post.body["allowed_mentions"]["replied_user"] is False
    assert quiet.mentions == [] and quiet.type is discord.MessageType.reply
    loud = await theirs.reply("hello again")
    assert [u.id for u in loud.mentions] == [alice.id]


async def test_nonce_with_enforce_nonce_returns_the_first_message(
    fake_discord: FakeDiscord, client: Recorder
) -> None:
    channel = text_channel(client, fake_discord)
    first = await channel.send("only once", nonce="ember-1")
    again = await channel.send("only once", nonce="ember-1")
    other = await channel.send("only once", nonce="ember-2")
    posts = await fake_discord.wait_for(route(POST_MESSAGE), count=3)
    assert all(post.body["enforce_nonce"] is True for post in posts)  # discord.py always enforces
    assert again.id == first.id and other.id != first.id
    assert [m["content"] for m in fake_discord.history(fake_discord.channel("general"))] == ["only once"] * 2


# ---------------------------------------------------------------------------- faults


async def test_a_429_with_retry_after_is_retried(fake_discord: FakeDiscord, client: Recorder) -> None:
    fault = fake_discord.fail_next("POST", "/channels/*/messages", status=429, retry_after=0.05)
    sent = await text_channel(client, fake_discord).send("eventually")
    posts = await fake_discord.wait_for(route(POST_MESSAGE), count=2)
    assert [post.status for post in posts] == [429, 200]
    assert fault.hits == 1 and sent.content == "eventually"
    assert len(fake_discord.history(fake_discord.channel("general"))) == 1


async def test_a_cloudflare_429_is_not_retried(fake_discord: FakeDiscord, client: Recorder) -> None:
    fake_discord.fail_next("POST", "/channels/*/messages", status=429, cloudflare=True)
    with pytest.raises(discord.HTTPException) as banned:
        await text_channel(client, fake_discord).send("blocked")
    assert banned.value.status == 429
    assert [r.status for r in fake_discord.requests if r.route == POST_MESSAGE] == [429]


async def test_403_raises_forbidden_and_404_not_found(fake_discord: FakeDiscord, client: Recorder) -> None:
    channel = text_channel(client, fake_discord)
    fake_discord.fail_next("POST", "/channels/*/messages", status=403)
    with pytest.raises(discord.Forbidden) as forbidden:
        await channel.send("no")
    assert forbidden.value.code == 50013 and forbidden.value.text == "Missing Permissions"

    fake_discord.fail_next("*", "/channels/*/**", status=404, times=None)
    with pytest.raises(discord.NotFound) as missing:
        await channel.send("gone")
    assert missing.value.code == 10003
    with pytest.raises(discord.NotFound):
        await channel.typing()
    fake_discord.clear_faults()
    await channel.send("back")


# ---------------------------------------------------------------------------- interactions


async def test_a_slash_command_reaches_the_command_tree(fake_discord: FakeDiscord, client: Recorder) -> None:
    tree = app_commands.CommandTree(client)
    opus = app_commands.Group(name="opus", description="Talk to Claude Opus 3")
    access = app_commands.Group(name="access", description="Who may talk", parent=opus)
    heard: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    @opus.command(name="ask", description="Ask something")
    async def ask(interaction: discord.Interaction, prompt: str, private: bool = False) -> None:
        await heard.put(("ask", (prompt, private, interaction.permissions.manage_guild)))
        await interaction.response.send_message(f"you asked: {prompt}", ephemeral=private)

    @access.command(name="grant", description="Let someone talk")
    async def grant(interaction: discord.Interaction, user: discord.Member) -> None:
        await heard.put(("grant", user.id))
        await interaction.response.defer(thinking=True)
        await interaction.followup.send(f"granted {user.mention}")
        await interaction.edit_original_response(content=f"granted {user.mention}, edited")

    tree.add_command(opus)
    synced = await tree.sync()
    [put] = await fake_discord.wait_for(route("PUT /applications/{application_id}/commands"))
    assert put.body[0]["name"] == "opus" and synced[0].id == int(fake_discord.commands[None][0]["id"])

    alice, bob = fake_discord.user("alice"), fake_discord.user("bob")
    general = fake_discord.channel("general")
    await fake_discord.dispatch(
        "INTERACTION_CREATE",
        fake_discord.slash_command(alice, general, "opus ask", {"prompt": "hi", "private": True}),
    )
    assert await asyncio.wait_for(heard.get(), SAFETY) == ("ask", ("hi", True, True))
    [callback] = await fake_discord.wait_for(route("POST /interactions/{interaction_id}/{token}/callback"))
    assert callback.body["type"] == 4
    assert callback.body["data"]["content"] == "you asked: hi" and callback.body["data"]["flags"] == EPHEMERAL
    assert callback.query["with_response"] == "1"

    command = fake_discord.slash_command(bob, general, "opus access grant", {"user": alice})
    assert command["data"]["options"][0]["type"] == 2  # the group, from the synced schema
    await fake_discord.dispatch("INTERACTION_CREATE", command)
    assert await asyncio.wait_for(heard.get(), SAFETY) == ("grant", alice.id)
    await fake_discord.wait_for(route("PATCH /webhooks/{application_id}/{token}/messages/{message_id}"))
    state = fake_discord.interactions[int(command["id"])]
    assert [c["type"] for c in state.callbacks] == [5]
    assert state.followup_ids == [state.original_id]  # the follow-up filled the thinking message
    original = fake_discord.messages[state.original_id or 0]
    assert original["content"] == f"granted <@{alice.id}>, edited" and not original["flags"] & LOADING


async def test_a_button_press_reaches_its_view(fake_discord: FakeDiscord, client: Recorder) -> None:
    pressed: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Regenerate(discord.ui.View):
        def __init__(self) -> None:
            super().__init__(timeout=None)

        @discord.ui.button(label="Regenerate", custom_id="regenerate:1")
        async def regenerate(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
            await interaction.response.edit_message(content="regenerating…", view=None)
            pressed.set_result(interaction.user.id)

    message = await text_channel(client, fake_discord).send("an answer", view=Regenerate())
    assert fake_discord.messages[message.id]["components"][0]["components"][0]["custom_id"] == "regenerate:1"
    bob = fake_discord.user("bob")
    press = fake_discord.button_press(bob, message.id, "regenerate:1")
    await fake_discord.dispatch("INTERACTION_CREATE", press)
    assert await asyncio.wait_for(pressed, SAFETY) == bob.id
    [callback] = await fake_discord.wait_for(route("POST /interactions/{interaction_id}/{token}/callback"))
    assert callback.body["type"] == 7
    assert fake_discord.messages[message.id]["content"] == "regenerating…"
    assert fake_discord.messages[message.id]["components"] == []


async def test_a_modal_is_checked_opened_and_its_submission_reaches_it(
    fake_discord: FakeDiscord, client: Recorder
) -> None:
    submitted: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    refusals: asyncio.Queue[discord.HTTPException] = asyncio.Queue()
    # Discord allows a modal title of at most 45 characters: the first press asks with a longer one.
    titles = ["A title much longer than Discord lets a modal have", "Why?"]

    class Reason(discord.ui.Modal):
        def __init__(self, title: str) -> None:
            super().__init__(title=title, custom_id="reason-form", timeout=None)
            self.reason: discord.ui.TextInput[Reason] = discord.ui.TextInput(label="Why?", custom_id="why")
            self.add_item(self.reason)

        async def on_submit(self, interaction: discord.Interaction) -> None:
            await interaction.response.defer()
            submitted.set_result(self.reason.value)

    class Ask(discord.ui.View):
        def __init__(self) -> None:
            super().__init__(timeout=None)

        @discord.ui.button(label="Ask", custom_id="ask")
        async def ask(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
            try:
                await interaction.response.send_modal(Reason(titles.pop(0)))
            except discord.HTTPException as error:
                await refusals.put(error)

    message = await text_channel(client, fake_discord).send("a question", view=Ask())
    bob = fake_discord.user("bob")
    await fake_discord.dispatch("INTERACTION_CREATE", fake_discord.button_press(bob, message.id, "ask"))
    assert (await asyncio.wait_for(refusals.get(), SAFETY)).status == 400
    await fake_discord.dispatch("INTERACTION_CREATE", fake_discord.button_press(bob, message.id, "ask"))
    [opened] = await fake_discord.wait_for(
        lambda r: r.route == "POST /interactions/{interaction_id}/{token}/callback" and r.status == 200
    )
    assert opened.body["type"] == 9 and opened.body["data"]["custom_id"] == "reason-form"
    await fake_discord.dispatch(
        "INTERACTION_CREATE", fake_discord.modal_submit(bob, message.id, "reason-form", {"why": "because"})
    )
    assert await asyncio.wait_for(submitted, SAFETY) == "because"


async def test_an_interaction_is_acknowledged_only_once(fake_discord: FakeDiscord, client: Recorder) -> None:
    failures: asyncio.Queue[discord.HTTPException] = asyncio.Queue()
    tree = app_commands.CommandTree(client)

    @tree.command(name="twice", description="Answers twice")
    async def twice(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        try:
            await interaction.client.http.request(
                Route(
                    "POST",
                    "/interactions/{webhook_id}/{webhook_token}/callback",
                    webhook_id=interaction.id,
                    webhook_token=interaction.token,
                ),
                json={"type": 4, "data": {"content": "again"}},
            )
        except discord.HTTPException as error:
            await failures.put(error)

    await tree.sync()
    await fake_discord.dispatch(
        "INTERACTION_CREATE",
        fake_discord.slash_command(fake_discord.user("bob"), fake_discord.channel("general"), "twice"),
    )
    error = await asyncio.wait_for(failures.get(), SAFETY)
    assert error.code == 40060


# ---------------------------------------------------------------------------- gateway resilience


async def test_a_reconnect_resumes_and_replays_missed_events(
    fake_discord: FakeDiscord, client: Recorder
) -> None:
    alice = fake_discord.user("alice")
    general = fake_discord.channel("general")
    await fake_discord.request_reconnect()
    await fake_discord.say(alice, general, "sent while reconnecting")
    [resume] = await fake_discord.wait_for_frame(lambda f: f.op == 6)
    assert (await client.next_message(from_user(alice))).content == "sent while reconnecting"
    await fake_discord.say(alice, general, "after the resume")
    assert (await client.next_message(from_user(alice))).content == "after the resume"
    assert not [f for f in fake_discord.gateway_frames if f.op == 2 and f.time > resume.time]


async def test_a_custom_world() -> None:
    admin = FakeRole("admin", permissions=1 << 3)
    dora = FakeUser("dora")
    lab = FakeChannel("lab")
    thread = FakeChannel("old thread", type=11, parent=lab)
    guild = FakeGuild("Lab", channels=[lab, thread], roles=[admin], members=[FakeMember(dora, roles=[admin])])
    async with FakeDiscord(guilds=[guild], token="other-token") as fake:
        with discord_endpoints(fake.api_base_url, fake.gateway_url):
            async with run_client(Recorder(), fake) as client:
                [joined] = client.guilds
                assert joined.name == "Lab" and joined.owner_id == dora.id
                assert [t.name for t in joined.threads] == ["old thread"]
                command = fake.slash_command(dora, lab, "anything")
                assert int(command["member"]["permissions"]) & (1 << 5)  # administrator implies all


# ---------------------------------------------------------------------------- endpoints


def test_point_discord_at_sets_and_restores_the_knobs() -> None:
    before = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    with discord_endpoints("http://proxy.test:8080/api/v10/", "ws://proxy.test:8081") as now:
        assert Route.BASE == "http://proxy.test:8080/api/v10" == now.api_base_url
        assert str(DiscordWebSocket.DEFAULT_GATEWAY) == "ws://proxy.test:8081"
        assert Route("GET", "/users/@me").url == "http://proxy.test:8080/api/v10/users/@me"
    assert before == (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)

    previous = point_discord_at(gateway_url="wss://gateway.proxy.test/")
    try:
        assert before[0] == Route.BASE  # an empty setting leaves its knob alone
    finally:
        restore_endpoints(previous)
    assert before == (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)

    with pytest.raises(ValueError, match="api_base_url"):
        point_discord_at("proxy:8080")
    with pytest.raises(ValueError, match="gateway_url"):
        point_discord_at(gateway_url="http://proxy.test")
    assert before == (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)


# ---------------------------------------------------------------------------- rate limits


async def _raw(
    fake: FakeDiscord, method: str, path: str, body: Any = None
) -> tuple[int, dict[str, str], Any]:
    import aiohttp

    headers = {"Authorization": f"Bot {fake.token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{fake.api_base_url}{path}", json=body, headers=headers) as answer,
    ):
        return answer.status, dict(answer.headers), await answer.json(content_type=None)


async def test_limits_answer_429_per_channel_window_and_leave_other_channels_alone() -> None:
    guild = FakeGuild("g", channels=[FakeChannel("a"), FakeChannel("b")])
    async with FakeDiscord([guild], limits=DiscordLimits(channel_limit=2, channel_seconds=30.0)) as fake:
        a, b = fake.channel("a").id, fake.channel("b").id
        first = await _raw(fake, "POST", f"/channels/{a}/messages", {"content": "1"})
        assert first[0] == 200 and first[1]["X-RateLimit-Remaining"] == "1"
        assert (await _raw(fake, "POST", f"/channels/{a}/typing"))[0] == 204
        status, headers, body = await _raw(fake, "POST", f"/channels/{a}/messages", {"content": "3"})
        assert status == 429 and headers["Via"] and body["global"] is False
        assert 29.0 < body["retry_after"] <= 30.0
        assert (await _raw(fake, "POST", f"/channels/{b}/messages", {"content": "elsewhere"}))[0] == 200
        assert [(key, what) for _, key, what in fake.rate_limited] == [
            (str(a), f"POST /channels/{a}/messages")
        ]


async def test_limits_enforce_the_global_window_but_not_on_interaction_callbacks() -> None:
    async with FakeDiscord(limits=DiscordLimits(global_per_second=3)) as fake:
        statuses = [(await _raw(fake, "GET", "/users/@me"))[0] for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        assert fake.rate_limited[-1][1] == "global"
        # Interaction callbacks are not counted against the bot's global limit.
        status, _, body = await _raw(fake, "POST", "/interactions/1/nothing/callback", {"type": 1})
        assert status != 429, body


# ---------------------------------------------------------------------------- shards


class ShardedRecorder(discord.AutoShardedClient):
    """discord.py's sharded client, queueing what it receives with the shard it came on."""

    def __init__(self, **options: Any) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        super().__init__(intents=intents, guild_ready_timeout=0.05, **options)
        self.inbox: asyncio.Queue[discord.Message] = asyncio.Queue()

    async def on_message(self, message: discord.Message) -> None:
        await self.inbox.put(message)


def two_shard_world() -> list[FakeGuild]:
    """Two guilds whose ids put them on shards 0 and 1 of two ((id >> 22) % 2)."""
    return [
        FakeGuild("Even", channels=[FakeChannel("even")], members=[FakeMember(FakeUser("eve"))], id=8 << 22),
        FakeGuild("Odd", channels=[FakeChannel("odd")], members=[FakeMember(FakeUser("oscar"))], id=9 << 22),
    ]


async def test_gateway_bot_recommends_shards_and_each_session_gets_its_guilds_only() -> None:
    async with FakeDiscord(guilds=two_shard_world(), recommended_shards=2) as fake:
        with discord_endpoints(fake.api_base_url, fake.gateway_url):
            async with run_client(ShardedRecorder(), fake) as client:
                assert isinstance(client, ShardedRecorder)
                assert client.shard_count == 2
                assert fake.sessions_by_shard() == {(0, 2): 1, (1, 2): 1}
                assert {g.name: g.shard_id for g in client.guilds} == {"Even": 0, "Odd": 1}
                identifies = [f.d["shard"] for f in fake.gateway_frames if f.op == 2]
                assert sorted(identifies) == [[0, 2], [1, 2]]


async def test_two_hosts_split_the_shards_and_a_message_reaches_only_its_shards_host() -> None:
    async with FakeDiscord(guilds=two_shard_world()) as fake:
        with discord_endpoints(fake.api_base_url, fake.gateway_url):
            host_a = ShardedRecorder(shard_count=2, shard_ids=[0])
            host_b = ShardedRecorder(shard_count=2, shard_ids=[1])
            async with run_client(host_a, fake), run_client(host_b, fake):
                assert [g.name for g in host_a.guilds] == ["Even"]
                assert [g.name for g in host_b.guilds] == ["Odd"]
                await fake.say(fake.user("oscar"), fake.channel("odd"), "to the odd shard")
                await fake.say(fake.user("eve"), fake.channel("even"), "to the even shard")
                await fake.say(fake.user("oscar"), fake.dm_channel(fake.user("oscar")), "a DM: shard 0")
                async with asyncio.timeout(SAFETY):
                    assert (await host_b.inbox.get()).content == "to the odd shard"
                    assert (await host_a.inbox.get()).content == "to the even shard"
                    assert (await host_a.inbox.get()).content == "a DM: shard 0"
                await asyncio.sleep(0.2)  # nothing else arrives on either host
                assert host_a.inbox.empty() and host_b.inbox.empty()


async def test_an_identify_with_an_impossible_shard_is_closed_with_4010() -> None:
    async with FakeDiscord() as fake:
        with discord_endpoints(fake.api_base_url, fake.gateway_url):
            client = ShardedRecorder(shard_count=2, shard_ids=[0])
            client.shard_ids = [2]  # past the count: Discord closes with 4010
            with pytest.raises((discord.ConnectionClosed, RuntimeError)):
                async with run_client(client, fake, timeout=3.0):
                    pass
