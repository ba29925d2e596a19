"""Buttons: Stop / Regenerate / Continue on replies, Approve / Deny on access requests.

A button's action id names the reply (or request) it belongs to and nothing else, so it works
after a restart. Whoever may not press it is told so privately.
"""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from bots.slack import render
from bots.slack.bot import SlackBot
from bots.slack.sink import Target
from core.access import BUTTON_PREFIX
from core.chat.controls import PREFIX, Control, parse_control_id, press
from core.chat.streaming import ReusingSink

Payload = dict[str, Any]

CONTROL_ACTION = re.compile(rf"^{PREFIX}:(?:{'|'.join(c.value for c in Control)}):")
ACCESS_ACTION = re.compile(rf"^{re.escape(BUTTON_PREFIX)}")


def register(app: AsyncApp, bot: SlackBot) -> None:
    @app.action(CONTROL_ACTION)
    async def on_control(ack: AsyncAck, body: Payload, action: Payload, respond: AsyncRespond) -> None:
        await ack()
        await bot.run(press_control(bot, body, action, respond))

    @app.action(ACCESS_ACTION)
    async def on_access(ack: AsyncAck, body: Payload, action: Payload, respond: AsyncRespond) -> None:
        await ack()
        await bot.run(press_access(bot, body, action, respond))


def team_of(body: Payload) -> str:
    return str((body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id") or "")


async def press_control(bot: SlackBot, body: Payload, action: Payload, respond: AsyncRespond) -> None:
    parsed = parse_control_id(str(action.get("action_id") or ""))
    if parsed is None:
        return
    control, reply_id = parsed
    team = team_of(body)
    user = await bot.people.user(team, str(body["user"]["id"]))
    message = body.get("message") or {}
    channel = str((body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id"))
    # A new answer goes where the old one is: its thread, or the channel itself.
    sink = bot.sink(Target(channel, str(message.get("thread_ts") or ""), user.id, team), reply_id)
    # Regenerate rewrites the old reply's messages in place, as on every platform.
    old = await bot.runtime.engine.reply_handles(reply_id) if control is Control.REGENERATE else []
    reusing = ReusingSink(sink, old)
    with bot.replying(reply_id):
        result = await press(bot.runtime.engine, control, reply_id, user, reusing)
    if result.notice:
        await respond(text=render.trusted(result.notice), response_type="ephemeral", replace_original=False)
    if result.outcome is None:
        return
    if control is Control.CONTINUE and message.get("ts"):
        # Continued: the pressed message's buttons are spent.
        await sink.clear_buttons(str(message["ts"]), str(message.get("text") or ""))
    await bot.finish(sink, result.outcome)
    for handle in reusing.leftover:
        await sink.delete(handle)


async def press_access(bot: SlackBot, body: Payload, action: Payload, respond: AsyncRespond) -> None:
    team = team_of(body)
    moderator = await bot.people.user(team, str(body["user"]["id"]))
    decision = await bot.runtime.access.press(str(action.get("action_id") or ""), moderator)
    await respond(text=render.trusted(decision.text), response_type="ephemeral", replace_original=False)
    message = body.get("message") or {}
    channel = (body.get("channel") or {}).get("id")
    if decision.settled and decision.request is not None and channel and message.get("ts"):
        # The buttons give way to who decided, for every moderator who looks later.
        summary = render.trusted(decision.summary)
        await bot.client.chat_update(
            channel=str(channel),
            ts=str(message["ts"]),
            text=summary,
            blocks=render.access_request_blocks(decision.request, decided=summary),
        )
