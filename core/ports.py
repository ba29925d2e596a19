"""What adapters give the core: their platform's facts (`PlatformTraits`) and the small
interfaces the facade (`core.ember.Ember`) drives for one arrived message, one button press or
one `ask`.

The core never asks "which platform is this?": whatever differs between Discord, Slack and the
terminal arrives here, as data (traits) or as a method the adapter implements (the protocols).
The older ports (ReplySink in core.chat.streaming, HistoryReader in core.chat, Notifier in
core.access, Announcer in core.essays, Directory in core.commands) still live beside the
code that calls them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from core.access import RequestView
from core.chat import Outcome
from core.chat.streaming import ReplySink
from core.chat.triggers import Trigger
from core.events import Message, Place, Platform, User
from core.ratelimit import RateLimit


@dataclass(frozen=True)
class PlatformTraits:
    """One platform's facts, registered by its adapter with `Ember.attach`."""

    platform: Platform
    # What people call one community on it: "server", "workspace".
    space_word: str
    # How a person and a role are mentioned in the platform's own text ("{id}" is replaced).
    user_mention: str
    role_mention: str
    # Whether ember answers direct messages there (a person writing directly hears why not).
    allow_dms: bool
    # The longest message the core may hand the sink, and the least seconds between two edits.
    max_message_chars: int
    edit_interval: float
    # The platform's request budget for announcements (core.ratelimit).
    rate_limit: RateLimit
    # True when one message may reach ember more than once, on any host (Slack retries events
    # and HTTP mode runs behind a load balancer): the core claims it in the store before answering.
    redelivers: bool = False

    def mention_user(self, user_id: str) -> str:
        return self.user_mention.format(id=user_id)

    def mention_role(self, role_id: str) -> str:
        return self.role_mention.format(id=role_id)


class ReplySurface(ReplySink, Protocol):
    """Where one reply is shown: the core's `ReplySink` (post, edit, notice, limits), plus the
    end of a reply, which the facade calls."""

    async def finish(self, outcome: Outcome, leftover: Sequence[str]) -> None:
        """The reply is done: give it its final buttons; delete `leftover` (the messages of a
        regenerated reply it no longer needs). Failures are the adapter's to log, not raise."""
        ...

    async def abandon(self) -> None:
        """The answer broke off unexpectedly: take away any button that promises more."""
        ...

    def stop_typing(self) -> None:
        """Called last however the answer ended (cancelled too): no "typing…" sign stays."""
        ...


@dataclass(frozen=True)
class Said:
    """An arrived message read in full: the message, and the conversation the platform shows
    before it (oldest first). `context` is None when the platform keeps no readable history
    of its own, so ember's store holds it."""

    message: Message
    context: Sequence[Message] | None


class ArrivedMessage(Protocol):
    """A platform message that may be for the model, as its adapter sees it."""

    @property
    def place(self) -> Place: ...

    @property
    def trigger(self) -> Trigger:
        """The platform's facts about the message (mentions, replies, DMs, rooms, bots)."""
        ...

    @property
    def speaker_id(self) -> str: ...

    @property
    def has_words(self) -> bool:
        """Something for the model to read (a message the platform delivered blank is not)."""
        ...

    @property
    def in_thread(self) -> bool:
        """A message inside a thread (ember may already talk there)."""
        ...

    def first_delivery(self) -> bool:
        """False when this process has seen this message already (a redelivered event)."""
        ...

    async def read(self) -> Said | None:
        """The message and its context; None when the platform would not say (logged)."""
        ...

    def open_reply(self, reply_id: str) -> ReplySurface:
        """Where the answer goes: under the message, in its thread or channel."""
        ...

    async def say(self, text: str) -> None:
        """A line of ember's own where the message was written (the DM refusal)."""
        ...


class PressedReplyButton(Protocol):
    """Someone pressed Stop, Regenerate or Continue on a reply."""

    @property
    def button_id(self) -> str: ...

    @property
    def presser(self) -> User: ...

    @property
    def message_id(self) -> str:
        """The platform message whose button was pressed ("" when unknown)."""
        ...

    def open_reply(self, reply_id: str, *, after: str) -> ReplySurface:
        """Where a new answer goes: beside the pressed reply, following message `after`."""
        ...

    async def tell_presser(self, text: str) -> None:
        """A private line to whoever pressed."""
        ...

    async def retire_pressed(self) -> None:
        """The pressed message's buttons are spent (a reply continued in a new message)."""
        ...


class PressedAccessButton(Protocol):
    """A moderator (or someone else) pressed Approve or Deny on an access request."""

    @property
    def button_id(self) -> str: ...

    @property
    def presser(self) -> User: ...

    async def tell_presser(self, text: str) -> None: ...

    async def retire_request(self, request: RequestView, summary: str) -> None:
        """The request is decided: its message says by whom and loses its buttons."""
        ...


@dataclass(frozen=True)
class Question:
    """An `ask` question as posted: where it shows and where its answer goes."""

    message_id: str
    place: Place
    created_at: datetime
    context: Sequence[Message] | None
    # Opens the reply under the question (its thread, or the channel when none could open).
    open_reply: ReplyOpener


class ReplyOpener(Protocol):
    def __call__(self, reply_id: str) -> ReplySurface: ...


class AskThread(Protocol):
    """The platform half of `/opus ask`: show the question, open its thread."""

    async def post_question(self, asker: User, prompt: str) -> Question | None:
        """Show the question (and open a thread where the platform does); None when it could not
        be posted (the asker has been told why)."""
        ...
