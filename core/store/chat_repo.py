"""Chat's SQL: replies, usage rows and channel settings.

Every statement about the `replies`, `usage` and `channel_settings` tables is here, and so is
the choice of path, because the chat path is latency-critical:
- what a message needs before the model is asked (the channel's model and the stored history)
  is read in one hop on the hot-reads thread;
- the reply's first row and its final state (with its usage and ember's own turn, in one
  transaction) are written in one hop on the writers' thread;
- everything else uses ordinary sessions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import Select, bindparam, case, func, insert, literal, select, update
from sqlalchemy.engine import Connection
from sqlmodel import col
from sqlmodel import select as select_model

from core.events import Message, Place
from core.store.engine import Store
from core.store.models import ChannelSetting, Reply, Usage, db_now
from core.store.pseudonyms import Pseudonyms
from core.store.transcript_repo import TranscriptRepo, latest_turns_statement, messages_from


@dataclass(frozen=True)
class StoredReply:
    """A reply ember wrote, as its buttons need it after a restart."""

    id: str
    place: Place
    prompt_message_id: str
    requester_id: str
    alias: str  # the alias asked for
    written_by: str  # the alias whose model wrote the text: `alias`, or its fallback
    handles: list[str]  # the platform messages it was shown in, in order
    text: str
    status: str
    stop_reason: str


@dataclass(frozen=True)
class UsageEntry:
    """One model request, metered: where it ran, what it used and cost, how it ended."""

    user_id: str
    alias: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_write_tokens: int
    cache_read_tokens: int
    latency_ms: int
    cost_micros: int
    trace_id: str
    outcome: str
    attempt: int = 0  # the reply's first request is 0; each resume or failover counts up


@dataclass(frozen=True)
class UsageTotals:
    requests: int
    tokens: int
    cost_micros: int


class ChatRepo:
    """`ChatRepo(store)`. It keeps no data, only statements it built once, so any number may
    share one store; the engine keeps one for its lifetime."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._transcript = TranscriptRepo(store)

    # ------------------------------------------------------------------ channel settings

    @cached_property
    def _channel_statement(self) -> Select[Any]:
        # Built once per repository: building a statement costs more than SQLite takes to run it.
        alias = col(ChannelSetting.model_alias)
        return select(alias).where(col(ChannelSetting.channel_key) == bindparam("channel_key"))

    @cached_property
    def _turns_statement(self) -> Select[Any]:
        return latest_turns_statement()

    async def channel_alias(self, place: Place) -> str | None:
        """The model alias a moderator chose for the channel of `place`, if any."""
        (rows,) = await self._store.reads.all_of(self._channel_statement, params=_keys(place))
        return _alias_of(rows)

    async def channel_alias_and_history(
        self, place: Place, *, history_limit: int
    ) -> tuple[str | None, list[Message]]:
        """The channel's alias and the newest stored turns of `place` (oldest first), in one
        hop: this is read for every message before the model is asked."""
        channel, turns = await self._store.reads.all_of(
            self._channel_statement, self._turns_statement, params={**_keys(place), "turns": history_limit}
        )
        return _alias_of(channel), messages_from(turns, place)

    async def set_channel_alias(self, place: Place, alias: str, by_id: str) -> None:
        async with self._store.session() as session:
            setting = await session.get(ChannelSetting, place.channel_key)
            if setting is None:
                session.add(
                    ChannelSetting(channel_key=place.channel_key, model_alias=alias, updated_by=by_id)
                )
            else:
                setting.model_alias, setting.updated_by, setting.updated_at = alias, by_id, db_now()
                session.add(setting)

    # ------------------------------------------------------------------ replies

    async def start_reply(self, reply_id: str, prompt: Message, alias: str, *, status: str) -> None:
        """Create the reply's row, or (regenerate, continue) mark the existing one: one statement."""
        row = {
            "id": reply_id,
            "place_key": prompt.place.key,
            "prompt_message_id": prompt.id,
            "requester_id": prompt.author.id,
            "alias": alias,
            "message_ids": "[]",
            "text": "",
            "status": status,
            "stop_reason": "",
            "created_at": db_now(),
        }
        upsert = (
            self._store.insert(Reply)
            .values(row)
            .on_conflict_do_update(index_elements=["id"], set_={"status": status})
        )
        await self._store.write(lambda conn: conn.execute(upsert))

    async def finish_reply(
        self,
        reply_id: str,
        place: Place,
        *,
        charged_to: str,
        text: str,
        handles: list[str],
        status: str,
        stop_reason: str,
        usage: Sequence[UsageEntry],
        own_turn: Message | None,
    ) -> None:
        """The reply's final state, a usage row per request it made (charged to the workspace
        `charged_to`), and ember's own turn: one transaction. The reply row also keeps the alias
        whose model wrote the answer (`_written_by`): the last request's."""
        final: dict[str, Any] = {
            "text": text,
            "message_ids": json.dumps(handles),
            "status": status,
            "stop_reason": stop_reason,
        }
        if usage:
            final["alias"] = _written_by(usage[-1].alias)
        statements: list[Any] = [update(Reply).where(col(Reply.id) == reply_id).values(final)]
        if usage:
            rows = [
                Usage(
                    platform=place.platform,
                    workspace_id=charged_to,
                    place_key=place.key,
                    reply_id=reply_id,
                    **asdict(entry),
                ).model_dump(exclude={"id"})
                for entry in usage
            ]
            statements.append(insert(Usage).values(rows))
        if own_turn is not None:
            await self._transcript.record(own_turn, along_with=statements)
        else:
            await self._store.write(lambda conn: _execute_all(conn, statements))

    async def save_progress(self, reply_id: str, text: str, handles: list[str]) -> None:
        """What a reply still streaming has shown so far, so another host can resume it should
        this one stop (several hosts only: one host resumes nothing it did not write)."""
        progress = (
            update(Reply)
            .where(col(Reply.id) == reply_id, col(Reply.status) == "streaming")
            .values(text=text, message_ids=json.dumps(handles))
        )
        await self._store.write(lambda conn: conn.execute(progress))

    async def streaming_in(self, place: Place, *, started_within: timedelta) -> list[str]:
        """Replies still streaming in `place` (on any host) that started within the last
        `started_within`: a row left "streaming" by a host that died is not being written."""
        query = select_model(Reply.id).where(
            col(Reply.place_key) == place.key,
            col(Reply.status) == "streaming",
            col(Reply.created_at) >= db_now() - started_within,
        )
        async with self._store.reading() as session:
            return [str(reply_id) for reply_id in (await session.exec(query)).all()]

    async def reply(self, reply_id: str, *, in_writers_turn: bool = False) -> StoredReply | None:
        """The stored reply, or None. `in_writers_turn` reads as a writing session would, after
        the write in progress (regenerate and continue have always read this way)."""
        opened = self._store.session() if in_writers_turn else self._store.reading()
        async with opened as session:
            row = await session.get(Reply, reply_id)
        if row is None:
            return None
        return StoredReply(
            id=row.id,
            place=place_from_key(row.place_key),
            prompt_message_id=row.prompt_message_id,
            requester_id=row.requester_id,
            alias=row.alias.partition(WRITER_MARK)[0],
            written_by=row.alias.rpartition(WRITER_MARK)[2],
            handles=json.loads(row.message_ids),
            text=row.text,
            status=row.status,
            stop_reason=row.stop_reason,
        )

    # ------------------------------------------------------------------ usage

    async def usage_totals(
        self, *, platform: str, workspace_id: str, since: datetime, user_id: str | None = None
    ) -> UsageTotals:
        """Requests, tokens and spend since a moment, for one member or a whole workspace."""
        tokens = Usage.input_tokens + Usage.output_tokens + Usage.cache_write_tokens + Usage.cache_read_tokens
        query = select_model(
            replies_counted(),
            func.coalesce(func.sum(tokens), 0),
            func.coalesce(func.sum(Usage.cost_micros), 0),
        ).where(
            col(Usage.platform) == platform,
            col(Usage.workspace_id) == workspace_id,
            col(Usage.created_at) >= since,
        )
        if user_id is not None:
            # A forgotten member's rows of this month carry their pseudonym instead.
            alias = await Pseudonyms(self._store).of(platform, workspace_id, user_id)
            query = query.where(col(Usage.user_id).in_([user_id, alias]))
        async with self._store.reading() as session:
            count, total, cost = (await session.exec(query)).one()
        return UsageTotals(int(count), int(total), int(cost))


def replies_counted() -> Any:
    """How many replies the usage rows are: a reply has one row per request it made, and the
    first (attempt 0) is always there."""
    return func.coalesce(func.sum(case((col(Usage.attempt) == 0, 1), else_=0)), 0)


# The replies table has one alias column (a column of its own would need a migration), so a reply
# another alias's model wrote (the asked alias's `fallback`) keeps both there: "asked\nwriter".
# An alias is one line, so the mark never occurs in one.
WRITER_MARK = "\n"
ALIAS_WIDTH = 64  # the column's width


def _written_by(writer: str) -> Any:
    """The alias column once `writer`'s model has answered, from what it holds now: the asked
    alias alone when that model answered itself, "asked\nwriter" when another did. A run that
    continues with the writer leaves the pair as it is."""
    column = col(Reply.alias)
    paired = column + WRITER_MARK + writer
    return case(
        (column == writer, column),
        (column.startswith(writer + WRITER_MARK, autoescape=True), literal(writer)),
        (column.contains(WRITER_MARK), column),
        (func.length(column) + len(WRITER_MARK + writer) <= ALIAS_WIDTH, paired),
        else_=column,
    )


def place_from_key(key: str) -> Place:
    """The inverse of `Place.key` (direct-message flags are not part of the key)."""
    platform, workspace, channel, thread = key.split(":")
    return Place(
        platform=platform,  # type: ignore[arg-type]
        workspace_id="" if workspace == "-" else workspace,
        channel_id=channel,
        thread_id="" if thread == "-" else thread,
    )


def _keys(place: Place) -> dict[str, Any]:
    return {"channel_key": place.channel_key, "place_key": place.key}


def _alias_of(rows: list[Any]) -> str | None:
    return str(rows[0].model_alias) if rows else None


def _execute_all(conn: Connection, statements: list[Any]) -> None:
    for statement in statements:
        conn.execute(statement)
