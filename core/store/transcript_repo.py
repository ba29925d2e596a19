"""The transcript's SQL: the turns of every conversation, and the names of who said them.

Every statement about the `turns` and `people` tables is here, and so is the choice of path:
recording a message is on the chat path, so it is one hop on the writers' thread (`write`);
reads that do not write skip the writers' turn (`reading`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Executable, bindparam, delete, update
from sqlalchemy.engine import Connection
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from core.events import Attachment, Message, Place, User
from core.store.engine import Store
from core.store.models import Person, Reply, Turn, Usage, db_now
from core.store.pseudonyms import FORGOTTEN, Pseudonyms, pseudonym


@dataclass(frozen=True)
class Forgotten:
    """What forgetting a person removed."""

    messages: int
    replies: int
    usage_rows: int


class TranscriptRepo:
    """`TranscriptRepo(store)`: holds nothing but the store, so any number may share one."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def record(
        self,
        message: Message,
        *,
        along_with: Sequence[Executable] = (),
        if_stored: Sequence[Executable] = (),
    ) -> bool:
        """Store one message (once, however often it is delivered) and its author's name; True
        when this call stored it. `along_with` runs first, in the same transaction, and
        `if_stored` last, only when this call stored the message (what comes with a claim)."""
        store = self._store
        who, name = _person_of(message)
        statements = _record_statements(store, message, with_name=not store.name_known(who, name))

        def run(conn: Connection) -> bool:
            for statement in along_with:
                conn.execute(statement)
            results = [conn.execute(statement) for statement in statements]
            stored = bool(results[0].rowcount)
            for statement in if_stored if stored else ():
                conn.execute(statement)
            return stored

        inserted = await store.write(run)
        if len(statements) > 1:
            store.remember_name(who, name)
        return inserted

    async def edit(self, place: Place, message_id: str, text: str) -> None:
        async with self._store.session() as session:
            await session.exec(
                update(Turn)
                .where(col(Turn.place_key) == place.key, col(Turn.message_id) == message_id)
                .values(text=text)
            )

    async def delete(self, place: Place, message_id: str) -> None:
        async with self._store.session() as session:
            await session.exec(
                delete(Turn).where(col(Turn.place_key) == place.key, col(Turn.message_id) == message_id)
            )

    async def history(self, place: Place, *, limit: int, before_id: str = "") -> list[Message]:
        """The newest `limit` turns of a place, oldest first (up to and including `before_id`)."""
        async with self._store.reading() as session:
            rows = (await session.exec(history_query(place, limit=limit, before_id=before_id))).all()
        return messages_from(rows, place)

    async def has_spoken(self, place: Place) -> bool:
        """Whether ember has said anything in `place` (one indexed lookup, not a history read)."""
        query = select(Turn.id).where(Turn.place_key == place.key, Turn.role == "assistant").limit(1)
        async with self._store.reading() as session:
            return (await session.exec(query)).first() is not None

    async def forget(self, platform: str, user_id: str) -> Forgotten:
        """Delete a person's messages, the replies to them and their name, in one transaction.
        Usage rows keep tokens and cost but lose the person's id: this month's rows take their
        pseudonym (core.store.pseudonyms), so their limits still count; older rows no name."""
        salt = await Pseudonyms(self._store).salt()
        month = db_now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        async with self._store.session() as session:
            turns = await session.exec(
                delete(Turn).where(col(Turn.platform) == platform, col(Turn.author_id) == user_id)
            )
            replies = await session.exec(
                delete(Reply).where(
                    col(Reply.place_key).startswith(f"{platform}:"), col(Reply.requester_id) == user_id
                )
            )
            await session.exec(
                delete(Person).where(col(Person.platform) == platform, col(Person.user_id) == user_id)
            )
            theirs = (col(Usage.platform) == platform, col(Usage.user_id) == user_id)
            recent = (await session.exec(select(Usage.workspace_id).where(*theirs).distinct())).all()
            usage_rows = 0
            for workspace_id in recent:
                renamed = await session.exec(
                    update(Usage)
                    .where(*theirs, col(Usage.workspace_id) == workspace_id, col(Usage.created_at) >= month)
                    .values(user_id=pseudonym(salt, platform, workspace_id, user_id))
                )
                usage_rows += renamed.rowcount
            older = await session.exec(update(Usage).where(*theirs).values(user_id=FORGOTTEN))
        self._store.forget_names(platform, user_id)  # a later message writes the name afresh
        return Forgotten(turns.rowcount, replies.rowcount, usage_rows + older.rowcount)

    async def display_name(self, platform: str, workspace_id: str, user_id: str) -> str | None:
        async with self._store.session() as session:
            person = await session.get(Person, (platform, workspace_id, user_id))
        return person.name if person else None


def history_query(place: Place, *, limit: int, before_id: str = "") -> SelectOfScalar[Turn]:
    """The newest `limit` turns of a place, newest first (for `messages_from`). The chat
    repository reads it in the same hop as the channel's settings."""
    query = select(Turn).where(Turn.place_key == place.key)
    if before_id:
        anchor = select(Turn.id).where(Turn.place_key == place.key, Turn.message_id == before_id)
        query = query.where(col(Turn.id) <= anchor.scalar_subquery())
    return query.order_by(col(Turn.id).desc()).limit(limit)


def latest_turns_statement() -> SelectOfScalar[Turn]:
    """`history_query` for the chat path, with the place and the number of turns left as the
    parameters `place_key` and `turns`: built once, it costs nothing per message."""
    query = select(Turn).where(Turn.place_key == bindparam("place_key"))
    return query.order_by(col(Turn.id).desc()).limit(bindparam("turns"))


def messages_from(rows: Sequence[Any], place: Place) -> list[Message]:
    """The rows of `history_query` (ORM objects or plain rows alike), oldest first."""
    return [_to_message(row, place) for row in reversed(rows)]


def _to_message(row: Any, place: Place) -> Message:
    author = User(
        id=row.author_id, name=row.author_name, platform=place.platform, workspace_id=place.workspace_id
    )
    attachments = tuple(Attachment(**a) for a in json.loads(row.attachments))
    return Message(
        id=row.message_id,
        place=place,
        author=author,
        text=row.text,
        attachments=attachments,
        reply_to=row.reply_to,
        created_at=row.created_at,
        from_self=row.role == "assistant",
    )


def _attachments_json(attachments: Sequence[Attachment]) -> str:
    return json.dumps(
        [
            {"filename": a.filename, "media_type": a.media_type, "size": a.size, "url": a.url}
            for a in attachments
        ]
    )


def _person_of(message: Message) -> tuple[tuple[str, str, str], str]:
    place, author = message.place, message.author
    return (place.platform, place.workspace_id, author.id), author.name


def _record_statements(store: Store, message: Message, *, with_name: bool) -> list[Any]:
    """The turn's insert (its rowcount says whether it was new), then, when the name is new or
    changed, the person's upsert (an unchanged name costs no statement)."""
    place, author = message.place, message.author
    turn = {
        "place_key": place.key,
        "platform": place.platform,
        "workspace_id": place.workspace_id,
        "message_id": message.id,
        "author_id": author.id,
        "author_name": author.name,
        "role": "assistant" if message.from_self else "user",
        "text": message.text,
        "reply_to": message.reply_to,
        "attachments": _attachments_json(message.attachments),
        "created_at": message.created_at,
    }
    statements: list[Any] = [store.insert(Turn).values(turn).on_conflict_do_nothing()]
    if with_name:
        now = db_now()
        person = {
            "platform": place.platform,
            "workspace_id": place.workspace_id,
            "user_id": author.id,
            "name": author.name,
            "updated_at": now,
        }
        statements.append(
            store.insert(Person)
            .values(person)
            .on_conflict_do_update(
                index_elements=["platform", "workspace_id", "user_id"],
                set_={"name": author.name, "updated_at": now},
            )
        )
    return statements
