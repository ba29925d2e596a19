"""How a reply that ended is shown and recorded: the note a reply that did not finish normally
ends with, the outcome filled from what was shown, and the reply's final row. One rule for every
way a reply ends (answered, stopped, interrupted, failed, or ended by a host that took it over
from one that died)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from core.chat import wording
from core.chat.failover import Attempt
from core.chat.gate import AccessGate
from core.chat.outcome import Outcome
from core.chat.streaming import ReplyFailed, StreamingReply
from core.events import Message, User
from core.store.chat_repo import ChatRepo

# One logger for the chat path, as before the split: operators filter on it.
log = logging.getLogger("core.chat")


async def show_end(prompt: Message, outcome: Outcome, attempt: Attempt, reply: StreamingReply) -> None:
    """Show the rest of `reply` and its ending, then fill `outcome` from what was shown. A
    platform refusing the last writes makes it an error (what was shown stays)."""
    ending = ending_of(outcome, reply)
    try:
        outcome.handles = await reply.finish(ending)
    except ReplyFailed as failed:
        log_refused(prompt, outcome, failed)
        outcome.status = "error"
        outcome.handles = list(reply.handles)
    _fill(outcome, attempt, reply.text.removesuffix(ending))


async def record_end(
    records: ChatRepo, access: AccessGate, outcome: Outcome, prompt: Message, attempt: Attempt, latency: float
) -> None:
    """The reply's final state, its usage and (when something was shown) ember's own turn."""
    place = prompt.place
    own_turn = None
    if outcome.handles and outcome.text:
        bot = User(id="ember", name="ember", platform=place.platform, workspace_id=place.workspace_id)
        own_turn = Message(id=outcome.handles[0], place=place, author=bot, text=outcome.text, from_self=True)
    # A direct message's spend is charged where the member's access comes from.
    charged_to = await access.charged_workspace(prompt.author, place)
    await records.finish_reply(
        outcome.reply_id,
        place,
        charged_to=charged_to,
        text=attempt.delivered,  # a continuation's prefill is the earlier text
        handles=outcome.handles,
        status=outcome.status,
        stop_reason=outcome.stop_reason,
        usage=attempt.usage(prompt.author.id, outcome.trace_id, outcome.status, latency),
        own_turn=own_turn,
    )


async def record_when_written(
    early_writes: Sequence[asyncio.Task[bool] | asyncio.Task[None] | None],
    records: ChatRepo,
    access: AccessGate,
    outcome: Outcome,
    prompt: Message,
    attempt: Attempt,
    latency: float,
) -> None:
    """`record_end` once the reply's row and its prompt (`early_writes`; None for one written
    before) are written. A failed early write still lets the reply be recorded and its usage
    metered; its error is raised afterwards."""
    writes = [write for write in early_writes if write is not None]
    failed = [
        e for e in await asyncio.gather(*writes, return_exceptions=True) if isinstance(e, BaseException)
    ]
    await record_end(records, access, outcome, prompt, attempt, latency=latency)
    if failed:
        raise failed[0]


def ending_of(outcome: Outcome, reply: StreamingReply) -> str:
    """What is added to a reply that did not finish normally."""
    if outcome.status == "stopped":
        return "" if reply.started else wording.STOPPED_BEFORE_ANYTHING
    if outcome.status == "interrupted":
        return f"\n\n{wording.INTERRUPTED}" if reply.started else wording.INTERRUPTED
    if outcome.status == "error":
        return wording.error_ending(outcome.error, reply_started=reply.started)
    return ""


def _fill(outcome: Outcome, attempt: Attempt, shown: str) -> None:
    outcome.text = shown
    outcome.stop_reason = attempt.stop_reason
    outcome.tokens, outcome.cost_micros = attempt.tokens, attempt.cost
    outcome.model = attempt.model
    outcome.provider = attempt.route.backend.provider if attempt.route else ""
    outcome.alias = attempt.route.alias if attempt.route else outcome.alias


def log_refused(prompt: Message, outcome: Outcome, failed: ReplyFailed) -> None:
    log.error("could not show the reply in %s [trace %s]: %s", prompt.place.key, outcome.trace_id, failed)
