"""`Ember`: the one object adapters call. Platform events come in as neutral values and small
ports (`core.ports`); every flow that is the same on every platform runs here, once.

    message arrived ─▶ answer? (core.chat.triggers) ─▶ read it ─▶ claim it ─▶ engine ─▶ reply surface
    message edited / deleted ─▶ the transcript
    reply button pressed ─▶ who may (core.chat.controls) ─▶ stop / regenerate / continue
    access button pressed ─▶ core.access decides ─▶ the request's message retires its buttons
    studio button pressed ─▶ core.studio decides (reviewers only) ─▶ the draft's preview says how
    command run ─▶ core.commands          ask ─▶ the question posted ─▶ answered beneath it

Built from a running ember's services (`core.runtime.Runtime`); an adapter `attach`es its
platform's traits and ports before the first event.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from core.budget import RequestScheduler
from core.chat import Outcome, new_reply_id, takeover, transcript
from core.chat.commands import build_commands, prompt_answer
from core.chat.controls import Control, parse_control_id
from core.chat.controls import press as run_control
from core.chat.payload import Payload
from core.chat.streaming import ReusingSink
from core.chat.triggers import Trigger, refuses_direct, should_answer
from core.chat.wording import DMS_OFF, NOT_YOURS, NOTHING_BEING_WRITTEN
from core.commands import CommandContext, CommandResult, Commands, CommandSpec
from core.config import Settings
from core.events import Message, Place, User, utcnow
from core.ports import (
    Announcer,
    ArrivedMessage,
    AskThread,
    Directory,
    HistoryReader,
    Notifier,
    PlatformTraits,
    PressedAccessButton,
    PressedReplyButton,
    PressedStudioButton,
    ReplyOpener,
    ReplyReopener,
    ReviewDesk,
)
from core.runtime import Runtime
from core.store import replays_repo
from core.store.in_hand_repo import InHand
from core.studio import buttons as studio_buttons

log = logging.getLogger(__name__)


class Ember:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._traits: dict[str, PlatformTraits] = {}
        # Platforms whose adapter reads conversations from the platform itself.
        self._reads_platform: set[str] = set()
        # Replies being written here, by reply id → platform: shutdown stops them.
        self._in_flight: dict[str, str] = {}
        # The conversation (place key) each answer to a message is being written in: a Stop
        # chosen on a message there finds it (a Slack native stream has no button until it ends).
        self._writing_in: dict[str, str] = {}

    @property
    def settings(self) -> Settings:
        return self._runtime.settings

    # ------------------------------------------------------------------ setting up

    def attach(
        self,
        traits: PlatformTraits,
        *,
        history: HistoryReader | None = None,
        notifier: Notifier | None = None,
        reopen: ReplyReopener | None = None,
    ) -> None:
        """An adapter is here: its facts, the reader of its conversations (where the platform
        keeps them; else ember's store does), who posts its access requests, and (several
        hosts) how it reaches a reply another host began, to finish it should that host die."""
        self._traits[traits.platform] = traits
        takeovers = self._runtime.takeovers
        if reopen is not None and takeovers is not None:
            takeovers.register(traits.platform, lambda orphan: self._take_over(orphan, reopen))
        self._runtime.platforms.attach(traits)
        self._runtime.budgets.for_platform(traits.platform, traits.budget)
        if history is not None:
            self._reads_platform.add(traits.platform)
            self._runtime.engine.set_history_reader(traits.platform, history)
        if notifier is not None:
            self._runtime.access.register_notifier(traits.platform, notifier)

    def announce_with(self, traits: PlatformTraits, announcer: Announcer) -> None:
        """Essay deliveries for the platform flow through `announcer`, paced by the platform's
        one request scheduler (attach the traits first)."""
        self._runtime.essays.register_announcer(
            traits.platform,
            announcer,
            scheduler=self.scheduler(traits.platform),
            concurrency=traits.announce_concurrency,
        )

    def review_with(self, traits: PlatformTraits, desk: ReviewDesk) -> None:
        """Essay drafts are shown to the platform's reviewers through `desk`."""
        self._runtime.studio.register_desk(traits.platform, desk)

    def traits(self, platform: str) -> PlatformTraits:
        try:
            return self._traits[platform]
        except KeyError:
            raise LookupError(f"no adapter attached for {platform!r}: call Ember.attach first") from None

    def scheduler(self, platform: str) -> RequestScheduler:
        """The platform's one request scheduler: everything its adapter sends (replies, typing,
        command answers, notices, announcements) waits there for its turn."""
        return self._runtime.budgets.for_platform(self.traits(platform).platform)

    def commands(self, root: str) -> Commands:
        """Every command ember offers, under the platform's top-level command `root`."""
        return build_commands(root)

    # ------------------------------------------------------------------ messages

    async def message_arrived(self, arrived: ArrivedMessage, *, alias: str | None = None) -> Outcome | None:
        """Answer the message if it is for the model; None when ember stays quiet. `alias`
        chooses the model (the terminal's `--model`); else the channel's."""
        traits = self.traits(arrived.place.platform)
        trigger = await self._with_stored_facts(arrived)
        if not (should_answer(trigger, self.settings.chat, allow_dms=traits.allow_dms) and arrived.has_words):
            if refuses_direct(trigger, allow_dms=traits.allow_dms) and arrived.first_delivery():
                await arrived.say(DMS_OFF)
            return None
        if not arrived.first_delivery():
            return None  # the same message delivered twice to this process
        said = await arrived.read()
        if said is None:
            return None
        # Where one message may reach ember twice (a platform that redelivers) or reach several
        # hosts (any platform, once the database is one several hosts share), the store's
        # unique row decides who answers. On SQLite, one host, the write need not come first.
        claimed = traits.redelivers or self._runtime.store.dialect != "sqlite"
        reply_id = new_reply_id()
        if claimed and not await self._claim(said.message, reply_id):
            return None
        takeovers = self._runtime.takeovers if claimed else None
        try:
            return await self._answer(
                said.message,
                said.context,
                arrived.open_reply,
                recorded=claimed,
                alias=alias,
                reply_id=reply_id,
            )
        finally:
            if takeovers is not None:
                await takeovers.release(reply_id)  # answered (however it ended): nobody takes it over

    async def _claim(self, message: Message, reply_id: str) -> bool:
        """Claim the message in the store: True when this host is the one to answer it. Where
        hosts share the database, the claim notes this host as answering it (as `reply_id`),
        so that another finishes the reply should this one die."""
        store, takeovers = self._runtime.store, self._runtime.takeovers
        if takeovers is None:
            return await transcript.record_message(store, message)
        return await transcript.claim_message(store, message, reply_id=reply_id, host=takeovers.host_id)

    async def _take_over(self, orphan: InHand, reopen: ReplyReopener) -> None:
        """Finish a reply a stopped host left (`core.chat.takeover`), as one of this host's own."""
        platform = orphan.place_key.partition(":")[0]
        with self._replying(orphan.reply_id, platform, orphan.place_key):
            await takeover.finish_reply(self._runtime.engine, self._runtime.store, orphan, reopen)

    async def _with_stored_facts(self, arrived: ArrivedMessage) -> Trigger:
        """Where the platform keeps no history ember reads, its store says what the platform
        cannot: whether ember talks in this thread, and how often this bot spoke here."""
        trigger = arrived.trigger
        place = arrived.place
        if trigger.from_self or place.platform in self._reads_platform:
            return trigger
        store = self._runtime.store
        addressed = (
            trigger.mentions_bot or trigger.is_direct or trigger.in_room_channel or trigger.in_bot_thread
        )
        if arrived.in_thread and not addressed and await transcript.has_spoken(store, place):
            trigger = replace(trigger, in_bot_thread=True)
        if trigger.from_bot and self.settings.chat.allow_bots:
            history = await transcript.load_history(store, place, limit=self.settings.chat.history_messages)
            # Loop guard: how often this bot already spoke here.
            depth = sum(1 for m in history if m.author.id == arrived.speaker_id)
            trigger = replace(trigger, bot_depth=depth)
        return trigger

    async def message_edited(self, place: Place, message_id: str, text: str) -> None:
        """Someone edited their words: stored turns read as edited."""
        await transcript.edit_message(self._runtime.store, place, message_id, text)

    async def message_deleted(self, place: Place, message_id: str) -> None:
        await transcript.delete_message(self._runtime.store, place, message_id)

    async def _answer(
        self,
        message: Message,
        context: Sequence[Message] | None,
        open_reply: ReplyOpener,
        *,
        recorded: bool,
        alias: str | None = None,
        reply_id: str = "",
    ) -> Outcome:
        """Stream the model's answer to `message`; the reply gets its final buttons as soon as
        its end is shown (`ended`), while its records are written."""
        reply_id = reply_id or new_reply_id()
        surface = open_reply(reply_id)

        async def ended(outcome: Outcome) -> None:
            await surface.finish(outcome, ())

        try:
            with self._replying(reply_id, message.place.platform, message.place.key):
                outcome = await self._runtime.engine.respond(
                    message,
                    surface,
                    history=context,
                    alias=alias,
                    reply_id=reply_id,
                    recorded=recorded,
                    ended=ended,
                )
        except Exception as error:
            # Unexpected (the store failing, say). The text shown stays, but no Stop button may
            # outlive the generation.
            log.error(
                "answering %s in %s broke off [reply %s]: %r", message.id, message.place.key, reply_id, error
            )
            await surface.abandon()
            raise
        finally:
            surface.stop_typing()
        return outcome

    @contextlib.contextmanager
    def _replying(self, reply_id: str, platform: str, place_key: str = "") -> Iterator[None]:
        self._in_flight[reply_id] = platform
        if place_key:
            self._writing_in[reply_id] = place_key
        try:
            yield
        finally:
            self._in_flight.pop(reply_id, None)
            self._writing_in.pop(reply_id, None)

    async def stop_reply_in(self, place: Place, presser: User) -> str:
        """Stop what the model is writing in `place`, chosen from any message there (Slack's
        "Stop the reply" shortcut). The same rule as the Stop button: the asker or a moderator.
        Returns what to tell the presser privately; "" when the reply was stopped."""
        engine = self._runtime.engine
        writing = {reply for reply, key in self._writing_in.items() if key == place.key}
        writing.update(await engine.replies_streaming_in(place))  # on other hosts too
        if not writing:
            return NOTHING_BEING_WRITTEN
        for reply_id in writing:
            if not await engine.may_control(reply_id, presser):
                return NOT_YOURS
        stopped = [engine.stop(reply_id) or await engine.stop_elsewhere(reply_id) for reply_id in writing]
        return "" if any(stopped) else NOTHING_BEING_WRITTEN

    def stop_replies(self, platform: str) -> None:
        """The platform is shutting down: its replies in flight end as every reply cut off by a
        shutdown does (the engine's `interrupt`: text kept, a note to ask again, no buttons)."""
        for reply_id, where in list(self._in_flight.items()):
            if where == platform:
                self._runtime.engine.interrupt(reply_id)

    # ------------------------------------------------------------------ buttons

    async def reply_button_pressed(self, pressed: PressedReplyButton) -> None:
        """Stop, Regenerate or Continue: only the asker or a moderator; anyone else is told."""
        parsed = parse_control_id(pressed.button_id)
        if parsed is None:
            return
        control, reply_id = parsed
        engine = self._runtime.engine
        # Regenerate rewrites the old reply's messages in place, as on every platform.
        old = await engine.reply_handles(reply_id) if control is Control.REGENERATE else []
        surface = pressed.open_reply(reply_id, after=old[-1] if old else pressed.message_id)
        reusing = ReusingSink(surface, old)
        # A regenerate or continue writes in the reply's conversation: "Stop the reply" finds it.
        place = None if control is Control.STOP else await engine.reply_place(reply_id)

        async def ended(outcome: Outcome) -> None:
            # As for an answer: the buttons go on as soon as the end is shown.
            if control is Control.CONTINUE:
                await pressed.retire_pressed()  # continued in a new message: these buttons are spent
            await surface.finish(outcome, reusing.leftover)

        with self._replying(reply_id, pressed.presser.platform, place.key if place else ""):
            result = await run_control(engine, control, reply_id, pressed.presser, reusing, ended)
        if result.notice:
            await pressed.tell_presser(result.notice)

    async def access_button_pressed(self, pressed: PressedAccessButton) -> None:
        """Approve or Deny: the first moderator's decision stands; everyone hears the outcome."""
        decision = await self._runtime.access.press(pressed.button_id, pressed.presser)
        if decision.settled and decision.request is not None:
            await pressed.retire_request(decision.request, decision.summary)
        await pressed.tell_presser(decision.text)

    async def studio_button_pressed(self, pressed: PressedStudioButton) -> None:
        """Approve, Veto or a Veto's reason on a draft preview: reviewers only, the first
        decision that settles the draft wins (`core.studio.buttons`)."""
        await studio_buttons.press(self._runtime.studio, pressed)

    # ------------------------------------------------------------------ commands

    async def run_command(
        self,
        commands: Commands,
        spec: CommandSpec,
        args: dict[str, Any],
        *,
        invoker: User,
        place: Place,
        directory: Directory | None = None,
    ) -> CommandResult:
        """Run a parsed command; every failure is a private answer. A result with `ask` set
        wants `Ember.ask` next."""
        context = CommandContext(invoker=invoker, place=place, runtime=self._runtime, directory=directory)
        return await commands.answer(spec, args, context)

    async def ask(self, thread: AskThread, asker: User, prompt: str) -> Outcome | None:
        """`/opus ask`: the question is shown (in a thread of its own where the platform can),
        then answered beneath it."""
        question = await thread.post_question(asker, prompt)
        if question is None:
            return None
        message = Message(
            id=question.message_id,
            place=question.place,
            author=asker,
            text=prompt,
            created_at=question.created_at,
        )
        return await self._answer(message, question.context, question.open_reply, recorded=False)

    async def first_sighting(self, request_key: str) -> bool:
        """True the first time any host sees a signed request (its signature names it): a
        replay within the minutes its signature is honoured is acknowledged and dropped."""
        return await replays_repo.first_sighting(self._runtime.store, request_key, utcnow())

    async def prompt_preview(self, place: Place, alias: str | None = None) -> Payload:
        """Exactly what the model would receive for the next message here."""
        return await self._runtime.engine.preview(place, alias)

    async def show_prompt(self, place: Place) -> CommandResult:
        """The private answer to "Show the prompt" on a message (Slack's message shortcut,
        Discord's message menu command): the prompt of that message's conversation, exactly
        as `/opus prompt` shows it there. The adapter only finds the place and shows the
        answer to the person who asked."""
        return await prompt_answer(self._runtime.engine, place)
