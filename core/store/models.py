"""The tables ember keeps. Times are aware UTC datetimes (SQLModel stores them as UTC everywhere).

Each table is written by one repository: turns and people by core.store.transcript_repo (whose
"forget a person" also deletes their replies and anonymises their usage rows, in one transaction);
replies, usage and channel_settings by core.store.chat_repo. Migrations in ./migrations create
them; a test checks the two never drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def db_now() -> datetime:
    return datetime.now(UTC)


class Turn(SQLModel, table=True):
    """One message in a conversation, kept so context can be rebuilt without the platform."""

    __tablename__ = "turns"
    __table_args__ = (
        UniqueConstraint("place_key", "message_id", name="uq_turns_place_message"),
        Index("ix_turns_place_created", "place_key", "created_at"),
        Index("ix_turns_author", "platform", "author_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    place_key: str = Field(max_length=200)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    message_id: str = Field(max_length=64)
    author_id: str = Field(max_length=64)
    author_name: str = Field(max_length=200)
    role: str = Field(max_length=16)  # "user" or "assistant"
    text: str
    reply_to: str = Field(default="", max_length=64)
    # JSON list of {filename, media_type, size, url}: metadata only, never image bytes.
    attachments: str = Field(default="[]")
    created_at: datetime = Field(default_factory=db_now)


class Reply(SQLModel, table=True):
    """A reply ember wrote; buttons carry its id so they still work after a restart."""

    __tablename__ = "replies"

    id: str = Field(primary_key=True, max_length=32)
    place_key: str = Field(max_length=200)
    prompt_message_id: str = Field(max_length=64)
    requester_id: str = Field(max_length=64)
    alias: str = Field(max_length=64)
    # JSON list of platform message ids the reply spans, in order.
    message_ids: str = Field(default="[]")
    text: str = Field(default="")
    status: str = Field(default="streaming", max_length=16)  # streaming|done|stopped|error
    stop_reason: str = Field(default="", max_length=32)
    created_at: datetime = Field(default_factory=db_now)


class Usage(SQLModel, table=True):
    """One model request: tokens, cost in integer micro-dollars, where it ran and how long."""

    __tablename__ = "usage"
    __table_args__ = (
        Index("ix_usage_user_time", "platform", "workspace_id", "user_id", "created_at"),
        Index("ix_usage_workspace_time", "platform", "workspace_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=db_now)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    place_key: str = Field(max_length=200)
    alias: str = Field(max_length=64)
    provider: str = Field(max_length=16)
    model: str = Field(max_length=100)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    latency_ms: int = 0
    cost_micros: int = Field(default=0, sa_type=BigInteger)
    trace_id: str = Field(max_length=32)  # one per reply run: a reply's requests share it
    outcome: str = Field(max_length=16)  # done|stopped|error (a request that broke)
    reply_id: str = Field(default="", max_length=32)
    attempt: int = 0  # 0 for a reply's first request, then each resume or failover in turn


class UsageSalt(SQLModel, table=True):
    """The one secret that turns a forgotten member's id into a pseudonym on their usage rows
    (core.store.pseudonyms): written once, on first use, and never shown."""

    __tablename__ = "usage_salt"

    id: int = Field(primary_key=True)
    salt: str = Field(max_length=64)


class ChannelSetting(SQLModel, table=True):
    """Per-channel choices moderators make, e.g. which model alias answers there."""

    __tablename__ = "channel_settings"

    channel_key: str = Field(primary_key=True, max_length=200)
    model_alias: str = Field(max_length=64)
    updated_by: str = Field(max_length=64)
    updated_at: datetime = Field(default_factory=db_now)


class Person(SQLModel, table=True):
    """Display names as last seen, so history reads well without asking the platform again."""

    __tablename__ = "people"

    platform: str = Field(primary_key=True, max_length=16)
    workspace_id: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    updated_at: datetime = Field(default_factory=db_now)
