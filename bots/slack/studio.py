"""The essay studio in Slack: drafts posted for review, the Approve / Veto buttons, and the
veto's reason asked for in a modal (views.open).

A draft goes to `[studio.slack] review_channel` through bots.slack.review_desk: a header
(core-written) with two buttons whose action ids name the draft (`ember:studio:approve:<id>`),
and the whole text in the message's thread. Veto
opens a modal whose callback id names the draft; its submission goes to the core with the
reason. Reviewers are whom Slack proves: the user groups `People` reads (`reviewer_groups`), or
their user id. Everything decided is the core's (`Ember.studio_button_pressed`).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError

from bots.slack import render
from bots.slack.bot import SlackBot
from bots.slack.inbound import team_of
from bots.slack.review_desk import SlackReviewDesk, settled_blocks
from bots.slack.traits import PLATFORM
from core import STUDIO_BUTTON_PREFIX, PlatformTraits, User

log = logging.getLogger(__name__)

Payload = dict[str, Any]
STUDIO_ACTION = re.compile(rf"^{re.escape(STUDIO_BUTTON_PREFIX)}:(?:approve|veto):[0-9]+$")
REASON_FORM = re.compile(rf"^{re.escape(STUDIO_BUTTON_PREFIX)}:reason:[0-9]+$")
REASON_BLOCK = REASON_ACTION = "reason"
VIEW_TEXT = 24  # Slack's limit for a modal's title and buttons
LABEL_TEXT = 2000


def register(app: AsyncApp, bot: SlackBot, traits: PlatformTraits) -> None:
    """Approve and Veto presses, and the veto's modal, go to the core; drafts are posted here."""

    @app.action(STUDIO_ACTION)
    async def on_studio_button(ack: AsyncAck, body: Payload, action: Payload, respond: AsyncRespond) -> None:
        await ack()
        presser = await bot.people.user(team_of(body), str(body["user"]["id"]))
        where = Where(
            str((body.get("channel") or {}).get("id") or ""), str((body.get("message") or {}).get("ts") or "")
        )
        trigger = str(body.get("trigger_id") or "")
        pressed = PressedSlackStudio(
            bot, str(action.get("action_id") or ""), presser, where, respond=respond, trigger_id=trigger
        )
        await bot.run(bot.ember.studio_button_pressed(pressed))

    @app.view(REASON_FORM)
    async def on_reason(ack: AsyncAck, body: Payload, view: Payload) -> None:
        await ack()  # the modal closes; what follows is said in the channel, privately
        presser = await bot.people.user(team_of(body), str(body["user"]["id"]))
        reason = str(
            ((view.get("state") or {}).get("values") or {})
            .get(REASON_BLOCK, {})
            .get(REASON_ACTION, {})
            .get("value")
            or ""
        )
        where = Where.of(str(view.get("private_metadata") or ""))
        pressed = PressedSlackStudio(bot, str(view.get("callback_id") or ""), presser, where, reason=reason)
        await bot.run(bot.ember.studio_button_pressed(pressed))

    bot.ember.review_with(traits, SlackReviewDesk(bot.client, lambda: bot.ember.scheduler(PLATFORM)))


class Where:
    """The preview a press or a modal belongs to: its channel and message ts."""

    def __init__(self, channel: str, ts: str) -> None:
        self.channel = channel
        self.ts = ts

    def metadata(self) -> str:
        return json.dumps({"channel": self.channel, "ts": self.ts})

    @classmethod
    def of(cls, metadata: str) -> Where:
        try:
            found = json.loads(metadata)
        except ValueError:
            found = {}
        return cls(str(found.get("channel") or ""), str(found.get("ts") or ""))


class PressedSlackStudio:
    """`core.ports.PressedStudioButton` over a block action or a submitted modal."""

    def __init__(
        self,
        bot: SlackBot,
        button_id: str,
        presser: User,
        where: Where,
        *,
        reason: str = "",
        respond: AsyncRespond | None = None,
        trigger_id: str = "",
    ) -> None:
        self._bot = bot
        self._where = where
        self._respond = respond
        # A press's trigger id opens the veto form (once, within three seconds of the press).
        self._trigger_id = trigger_id
        self.button_id = button_id
        self.presser = presser
        self.reason = reason

    async def ask_reason(self, form_id: str, title: str, label: str) -> None:
        view = {
            "type": "modal",
            "callback_id": form_id,
            "private_metadata": self._where.metadata(),
            "title": {"type": "plain_text", "text": title[:VIEW_TEXT]},
            "submit": {"type": "plain_text", "text": "Veto"},
            "close": {"type": "plain_text", "text": "Cancel"},
            "blocks": [
                {
                    "type": "input",
                    "block_id": REASON_BLOCK,
                    "label": {"type": "plain_text", "text": label[:LABEL_TEXT]},
                    "element": {
                        "type": "plain_text_input",
                        "action_id": REASON_ACTION,
                        "multiline": True,
                        "max_length": 1000,
                    },
                }
            ],
        }
        try:
            await self._bot.client.views_open(trigger_id=self._trigger_id, view=view)
        except SlackApiError as error:
            log.error("could not open the veto form: %s", error.response.get("error"))

    async def tell_presser(self, text: str) -> None:
        shown = render.trusted(text)
        try:
            if self._respond is not None:
                await self._respond(text=shown, response_type="ephemeral", replace_original=False)
            elif self._where.channel:
                await self._bot.client.chat_postEphemeral(
                    channel=self._where.channel, user=self.presser.id, text=shown
                )
        except SlackApiError as error:
            log.error("could not answer a studio press (%s): %s", text, error.response.get("error"))

    async def retire_preview(self, summary: str) -> None:
        if not (self._where.channel and self._where.ts):
            return
        try:
            await self._bot.client.chat_update(
                channel=self._where.channel,
                ts=self._where.ts,
                text=render.trusted(summary),
                blocks=settled_blocks(summary),
            )
        except SlackApiError as error:
            log.error("could not retire the buttons of a studio draft: %s", error.response.get("error"))
