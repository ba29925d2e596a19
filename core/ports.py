"""What adapters give the core: their platform's facts (`PlatformTraits`) and the small
interfaces the facade (`core.ember.Ember`) drives for one arrived message, one button press or
one `ask`.

The core never asks "which platform is this?": whatever differs between Discord, Slack and the
terminal arrives here, as data (traits) or as a method the adapter implements (the protocols).
Every port an adapter implements lives here: the reply sink, the history reader, the access
notifier, the essay announcer and the people directory, beside the per-event ports the facade
drives. This module imports no other core module at run time (the values in its signatures are
named for the type checker only), so any part of the core can depend on it without a cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from core.events import Message, Place, Platform, User

if TYPE_CHECKING:
    from core.access.values import RequestView
    from core.budget import BudgetPolicy
    from core.chat.outcome import Outcome
    from core.chat.triggers import Trigger
    from core.essays.delivery import Delivery
    from core.studio.preview import DraftPreview


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
    # The platform's request budget (core.budget): every call its adapter sends spends from
    # it, through one scheduler per platform. None: nothing is limited (the terminal).
    budget: BudgetPolicy | None = None
    # Essay deliveries sent at once: enough to hide each request's latency. The budget, not
    # this number, sets their pace.
    announce_concurrency: int = 16
    # The operator's own seat (the terminal): access by request does not apply there.
    operator_seat: bool = False
    # True when one message may reach ember more than once even on one host (Slack retries
    # events): the core claims it in the store before answering. (On a database several hosts
    # share, the core claims every platform's messages: two hosts may hold one Discord shard.)
    redelivers: bool = False

    def mention_user(self, user_id: str) -> str:
        return self.user_mention.format(id=user_id)

    def mention_role(self, role_id: str) -> str:
        return self.role_mention.format(id=role_id)


class ReplySink(Protocol):
    """What an adapter implements so the core can show a reply. Handles are message ids."""

    max_chars: int
    edit_interval: float

    async def post(self, text: str) -> str: ...

    async def edit(self, handle: str, text: str, *, final: bool = False) -> None:
        """Show `text` in message `handle`. `final`: the message's last text (the platform's
        budget sends it ahead of intermediate edits, which it may merge)."""
        ...

    async def notice(self, text: str) -> None:
        """A short line for the asker only where the platform allows (else a normal message)."""
        ...


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


class ReplyReopener(Protocol):
    """Where a reply another host began goes on (that host stopped: `core.chat.takeover`). The
    platform's API reaches any conversation by its ids, whichever host receives its events."""

    def __call__(self, place: Place, reply_id: str, *, requester_id: str, after: str) -> ReplySurface:
        """A surface in `place` for reply `reply_id`, asked for by `requester_id`; a new
        message of the reply follows message `after` (its last, or the question)."""
        ...


class AskThread(Protocol):
    """The platform half of `/opus ask`: show the question, open its thread."""

    async def post_question(self, asker: User, prompt: str) -> Question | None:
        """Show the question (and open a thread where the platform does); None when it could not
        be posted (the asker has been told why)."""
        ...


class HistoryReader(Protocol):
    """Reads a conversation fresh from its platform, so edits and deletions show. Used where a
    request arrives without platform context: regenerate, continue and the prompt preview."""

    async def __call__(self, place: Place, upto: str, limit: int) -> Sequence[Message]:
        """Oldest first, ending with message `upto` as it reads now (at most `limit` messages);
        `upto=""` means the conversation as it stands. Empty when `upto` is gone."""
        ...


class Notifier(Protocol):
    """What a platform adapter does for access by request. Register with
    `AccessService.register_notifier(platform, notifier)`."""

    async def notify_moderators(self, workspace_id: str, request: RequestView) -> None:
        """Post the request to the workspace's moderators' channel with two buttons whose
        custom ids are `request.approve_id` and `request.deny_id`."""
        ...

    async def tell_member(self, workspace_id: str, user_id: str, text: str) -> bool:
        """Send `text` to the member by DM; False when that is impossible (DMs closed)."""
        ...


class Announcer(Protocol):
    """What a platform adapter does for essay announcements. Register with
    `Ember.announce_with(traits, announcer)`."""

    async def announce(self, delivery: Delivery) -> str:
        """Post the announcement in `delivery.channel_id`; return the platform's message id.
        Make each platform request through `delivery.send(call)`. Raise RateLimited, ChannelGone (403/404) or DeliveryRejected (400) when the platform
        says so; DeliveryError for any other certain non-post. Any other exception means
        "may have been posted" and the retry comes with `uncertain=True`."""
        ...

    async def open_discussion(self, delivery: Delivery, message_id: str) -> str | None:
        """Open a thread under the posted announcement; return its thread id (None: none).
        Each platform request it makes goes through `delivery.send` (none: no token spent).
        Messages in it must reach the core with Place(channel_id=delivery.channel_id,
        thread_id=<this id>), so they are answered with the essay in context."""
        ...

    async def notify_moderators(self, workspace_id: str, text: str) -> None:
        """Post `text` (core-written; `<#channel>` mentions only) to the moderators' channel."""
        ...


class ReviewDesk(Protocol):
    """What a platform adapter does for the essay studio. Register with `Ember.review_with`."""

    async def post_draft(self, preview: DraftPreview) -> str:
        """Post the draft to `preview.channel_id` for its reviewers: the header with Approve
        and Veto buttons (`preview.approve_id`, `preview.veto_id`), the full text beneath it
        (a thread, or a file when long). Model text must ping nobody. Return the header's
        message id; raise on failure. When `preview.uncertain`, an earlier attempt may have
        posted it, in part: finish that post (its text, if missing) and return its id rather
        than posting twice, where it can be found."""
        ...

    async def show_outcome(self, channel_id: str, message_id: str, summary: str) -> None:
        """The draft is settled: its header (`message_id`) says how (`summary`, core-written
        markup) and loses its buttons. Spends the platform's budget like any other edit."""
        ...


class PressedStudioButton(Protocol):
    """Someone pressed Approve or Veto under a draft, or gave a veto's reason."""

    @property
    def button_id(self) -> str: ...

    @property
    def presser(self) -> User: ...

    @property
    def reason(self) -> str:
        """The reason typed into the veto form ("" for a button press)."""
        ...

    async def ask_reason(self, form_id: str, title: str, label: str) -> None:
        """Open the platform's form (`title`, one text field labelled `label`) asking for the
        veto's reason; its submission comes back as a press of `form_id` with the reason."""
        ...

    async def tell_presser(self, text: str) -> None: ...

    async def retire_preview(self, summary: str) -> None:
        """The draft is settled: the pressed preview says how (`summary`) and loses its buttons."""
        ...


class Directory(Protocol):
    """What the adapter can tell the core about people in a workspace."""

    async def lookup_user(self, workspace_id: str, user_id: str) -> User | None: ...
