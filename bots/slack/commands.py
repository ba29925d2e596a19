"""The slash command: `/opus <group> <action> [args]`, parsed and run by the core.

Slack wants an answer within 3 seconds, so the command is acknowledged first and worked on
after. Answers for one person are ephemeral (through the command's response_url); `ask` opens
a thread: the question, quoted, as its root, and the model's answer streamed beneath it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError

from bots.slack import convert, render
from bots.slack.bot import SlackBot
from bots.slack.sink import SlackSink
from core import CommandError, CommandResult, CommandSpec, Place, Question, User

log = logging.getLogger(__name__)

Payload = dict[str, Any]
# Command output up to this long shows inline as a snippet; longer goes to the asker as a file.
SNIPPET_CHARS = 12_000


def register(app: AsyncApp, bot: SlackBot) -> None:
    @app.command(bot.settings.command)
    async def on_command(ack: AsyncAck, body: Payload, respond: AsyncRespond) -> None:
        await ack()
        await bot.run(run_command(bot, body, respond))


async def run_command(bot: SlackBot, body: Payload, respond: AsyncRespond) -> None:
    team, channel = str(body["team_id"]), str(body["channel_id"])
    invoker = await bot.people.user(team, str(body["user_id"]))
    is_direct = channel.startswith("D") or body.get("channel_name") == "directmessage"
    place = Place("slack", team, channel, is_direct=is_direct)
    result = await execute(bot, str(body.get("text") or ""), invoker, place)
    if result.ask:
        await bot.ember.ask(SlackAsk(bot, place, respond), invoker, result.ask)
    else:
        await show(bot, invoker, result, respond)


async def execute(bot: SlackBot, raw: str, invoker: User, place: Place) -> CommandResult:
    """The core's parser and handlers; text arguments arrive as people read them."""
    try:
        spec, args = bot.commands.parse(raw)
        args = await readable_args(bot, spec, args, raw)
    except CommandError as error:
        return CommandResult(error.user_message, ephemeral=True)
    return await bot.ember.run_command(
        bot.commands, spec, args, invoker=invoker, place=place, directory=bot.people
    )


async def readable_args(bot: SlackBot, spec: CommandSpec, args: dict[str, Any], raw: str) -> dict[str, Any]:
    """Text arguments in Slack's markup become plain text; a trailing one is taken from the
    raw command text, so a prompt keeps its quotes and line breaks."""
    readable = dict(args)
    for index, param in enumerate(spec.params):
        if param.kind != "text" or param.name not in args:
            continue
        value = str(args[param.name])
        if param.rest:
            value = raw_tail(raw, len(spec.path) + index) or value
        names = await bot.people.names(convert.mentioned_users(value))
        readable[param.name] = convert.readable(value, names)
    return readable


def raw_tail(raw: str, skip: int) -> str:
    """`raw` after its first `skip` words, untouched ("" when it has fewer)."""
    match = re.match(rf"\s*(?:\S+\s+){{{skip}}}(.*)\Z", raw, re.DOTALL)
    return match.group(1).strip() if match else ""


async def show(bot: SlackBot, invoker: User, result: CommandResult, respond: AsyncRespond) -> None:
    text = await answer_text(bot, invoker, result)
    await respond(text=text, response_type="ephemeral" if result.ephemeral else "in_channel")


async def answer_text(bot: SlackBot, invoker: User, result: CommandResult) -> str:
    """A command's answer as mrkdwn; an attachment inline when short, else sent as a file."""
    text = render.trusted(result.text)
    if result.attachment is not None:
        name, content = result.attachment
        if len(content) <= SNIPPET_CHARS:
            text += "\n" + render.code_block(content)
        elif await send_file(bot, invoker, name, content):
            text += f"\nIt is long, so I've sent it to you as a file (`{render.escape(name)}`) in our DM."
        else:
            text += "\n" + render.code_block(content[:SNIPPET_CHARS]) + "\n_(cut short)_"
    return text


async def send_file(bot: SlackBot, invoker: User, name: str, content: str) -> bool:
    """Upload long output to the asker's DM with the bot: Slack has no private files."""
    try:
        opened = await bot.client.conversations_open(users=invoker.id)
        await bot.client.files_upload_v2(
            channel=str(opened["channel"]["id"]), content=content, filename=name, title=name
        )
    except SlackApiError as error:
        log.warning("could not send %s to %s as a file: %s", name, invoker.id, error)
        return False
    return True


class SlackAsk:
    """`core.ports.AskThread`: the question, quoted, as a thread's root; the answer beneath."""

    def __init__(self, bot: SlackBot, place: Place, respond: AsyncRespond) -> None:
        self._bot = bot
        self._place = place
        self._respond = respond

    async def post_question(self, asker: User, prompt: str) -> Question | None:
        place, bot = self._place, self._bot
        try:
            root = await bot.client.chat_postMessage(
                channel=place.channel_id,
                text=render.asked(asker.id, prompt),
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as error:
            log.info("could not open an ask thread in %s: %s", place.channel_id, error)
            await self._respond(
                text="I can't post in this channel. Invite me first (`/invite @me`), then ask again.",
                response_type="ephemeral",
            )
            return None
        ts = str(root["ts"])
        thread = Place("slack", place.workspace_id, place.channel_id, thread_id=ts, is_direct=place.is_direct)

        def open_reply(reply_id: str) -> SlackSink:
            return bot.sink(thread, asker.id, reply_id)

        return Question(ts, thread, convert.slack_time(ts), None, open_reply)
