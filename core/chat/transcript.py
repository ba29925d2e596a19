"""Conversations as ember stores them: enough to rebuild context without the platform's history.

Slack lets apps outside its directory read little history, and Discord's reply chains can be
long; storing each turn once keeps context cheap and identical on every platform. The SQL, and
which path each call takes to the database, is `core.store.transcript_repo`'s.
"""

from __future__ import annotations

from core.events import Message, Place
from core.store import Store
from core.store.in_hand_repo import InHandRepo
from core.store.transcript_repo import Forgotten, TranscriptRepo

__all__ = [
    "Forgotten",
    "claim_message",
    "delete_message",
    "display_name",
    "edit_message",
    "forget_user",
    "has_spoken",
    "load_history",
    "record_message",
]


async def record_message(store: Store, message: Message) -> bool:
    """Store one incoming message (once, however often it is delivered) and its author's name.

    True when this call stored it: an adapter that records before answering thereby claims the
    message, so a redelivery (a Slack retry, another host) finds it taken and is not answered.
    """
    return await TranscriptRepo(store).record(message)


async def claim_message(store: Store, message: Message, *, reply_id: str, host: str) -> bool:
    """`record_message`, and with it (one transaction) the note that `host` answers the
    message as reply `reply_id`: should that host die before the reply is finished, another
    takes it over (`core.chat.takeover`)."""
    return await InHandRepo(store).claim_message(message, reply_id, host)


async def edit_message(store: Store, place: Place, message_id: str, text: str) -> None:
    await TranscriptRepo(store).edit(place, message_id, text)


async def delete_message(store: Store, place: Place, message_id: str) -> None:
    await TranscriptRepo(store).delete(place, message_id)


async def load_history(store: Store, place: Place, *, limit: int, before_id: str = "") -> list[Message]:
    """The newest `limit` turns of a place, oldest first (up to and including `before_id`)."""
    return await TranscriptRepo(store).history(place, limit=limit, before_id=before_id)


async def has_spoken(store: Store, place: Place) -> bool:
    """Whether ember has said anything in `place` (one indexed lookup, not a history read)."""
    return await TranscriptRepo(store).has_spoken(place)


async def forget_user(store: Store, platform: str, user_id: str) -> Forgotten:
    """Delete what ember stores about a person: their messages, replies to them, their name.

    Usage rows lose the person's id but keep tokens and cost, so workspace spend stays true;
    this month's take a pseudonym, so the person's limits still count (core.store.pseudonyms).
    """
    return await TranscriptRepo(store).forget(platform, user_id)


async def display_name(store: Store, platform: str, workspace_id: str, user_id: str) -> str | None:
    return await TranscriptRepo(store).display_name(platform, workspace_id, user_id)
