"""The tables that let several hosts share what one process used to keep in memory, read and
written only by `core.store.leases_repo` and `core.store.stops_repo`.

- leases: a named thing one host holds until it lets go or its time runs out (a crashed host's
  leases free themselves): a member's reply slots (`max_concurrent`), a feed being polled.
- reply_stops: a Stop pressed on one host for a reply streaming on another; the streaming host
  polls for its replies' rows.
- replies_in_hand: the replies a host has taken on (a message it claimed, until its reply is
  finished): when that host's liveness lease (`host:<id>` in leases) lapses, another host takes
  the row over and finishes the reply.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class Lease(SQLModel, table=True):
    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=300)
    holder: str = Field(max_length=64)  # who holds it: a random id per holding
    expires_at: datetime


class ReplyStop(SQLModel, table=True):
    __tablename__ = "reply_stops"

    reply_id: str = Field(primary_key=True, max_length=32)
    requested_at: datetime


class ReplyInHand(SQLModel, table=True):
    __tablename__ = "replies_in_hand"

    reply_id: str = Field(primary_key=True, max_length=32)
    place_key: str = Field(max_length=200)
    message_id: str = Field(max_length=64)  # the message being answered
    host: str = Field(max_length=64, index=True)  # the host answering it now
    taken_at: datetime  # when that host took it (claimed the message, or took it over)
    takeovers: int = 0  # how often a host took it from another that had stopped
