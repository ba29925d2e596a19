"""Neutral values: what the adapters translate platform events into, and what the core returns.

Nothing here knows Discord or Slack; ids are strings on every platform.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

Platform = Literal["discord", "slack", "console"]


@dataclass(frozen=True)
class User:
    id: str
    name: str
    platform: Platform
    workspace_id: str = ""
    role_ids: tuple[str, ...] = ()
    # Decided by the adapter from the platform's own facts (Manage Server, admin/owner, roles).
    is_moderator: bool = False
    is_bot: bool = False


@dataclass(frozen=True)
class Place:
    platform: Platform
    workspace_id: str
    channel_id: str
    thread_id: str = ""
    is_direct: bool = False

    @property
    def key(self) -> str:
        """One string naming the conversation: a thread, else the channel."""
        return ":".join((self.platform, self.workspace_id or "-", self.channel_id, self.thread_id or "-"))

    @property
    def channel_key(self) -> str:
        """The channel this place is in, threads included (per-channel settings hang here)."""
        return ":".join((self.platform, self.workspace_id or "-", self.channel_id))


@dataclass(frozen=True)
class Attachment:
    filename: str
    media_type: str
    size: int
    url: str = ""
    # Filled by the adapter when the bytes were fetched (images only); None means not fetched.
    data: bytes | None = None
    width: int | None = None
    height: int | None = None

    @property
    def is_image(self) -> bool:
        return self.media_type.startswith("image/")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Message:
    id: str
    place: Place
    author: User
    text: str
    attachments: tuple[Attachment, ...] = ()
    reply_to: str = ""
    created_at: datetime = field(default_factory=utcnow)
    is_bot: bool = False
    # True when the message was written by ember itself (an assistant turn in the history).
    from_self: bool = False
