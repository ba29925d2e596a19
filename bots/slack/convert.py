"""Slack payloads → neutral values. Pure functions: no network, no state.

Slack writes text with its own markup: `<@U1>` and `<@U1|name>` for people, `<#C1|general>` for
channels, `<!here>` and `<!subteam^S1|@team>` for groups, `<https://x|label>` for links, and
`&amp; &lt; &gt;` for the three characters it reserves. The model reads people's words, so
those become `@Name`, `#general`, `label (https://x)` and plain characters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core import Attachment, Place

TOKEN = re.compile(r"<([^<>\s][^<>]*)>")
USER_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")
_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))

# Message subtypes that are people speaking; the rest (joins, edits, deletions) are not prompts.
SPOKEN_SUBTYPES = frozenset({None, "", "file_share", "thread_broadcast", "bot_message"})


def unescape(text: str) -> str:
    for entity, char in _ENTITIES:
        text = text.replace(entity, char)
    return text


def mentioned_users(text: str) -> list[str]:
    """User ids mentioned in Slack-encoded text, in order, without repeats."""
    return list(dict.fromkeys(USER_MENTION.findall(text)))


def mentions(text: str, user_id: str) -> bool:
    return bool(user_id) and user_id in USER_MENTION.findall(text)


def readable(text: str, names: Mapping[str, str], *, bot_user_id: str = "") -> str:
    """Slack-encoded text as a person reads it (`names` maps user ids to names). A leading
    mention of the bot is dropped: it only addressed the message to the model."""
    if bot_user_id:
        text = re.sub(rf"^\s*<@{bot_user_id}(?:\|[^>]*)?>[\s,:]*", "", text)

    def token(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            user = target[1:]
            return f"@{names.get(user, label or user)}"
        if target.startswith("#"):
            return f"#{label or target[1:]}"
        if target.startswith("!"):
            special = target[1:].split("^")[0]
            return label or f"@{special}"
        return f"{label} ({target})" if label and label != target else target

    return unescape(TOKEN.sub(token, text)).strip()


def slack_time(ts: str) -> datetime:
    try:
        return datetime.fromtimestamp(float(ts), UTC)
    except ValueError:
        return datetime.now(UTC)


def place_of(team: str, channel: str, ts: str, thread_ts: str, *, is_direct: bool, in_room: bool) -> Place:
    """Where a message was said, which is where its answer goes. A thread is its own
    conversation. A top-level message in a DM or a room channel continues the channel's
    conversation (answered in the channel itself); anywhere else it starts a thread of its own."""
    if thread_ts:
        thread = thread_ts
    elif is_direct or in_room:
        thread = ""
    else:
        thread = ts
    return Place("slack", team, channel, thread_id=thread, is_direct=is_direct)


@dataclass(frozen=True)
class FileRef:
    """A file shared with a message, before its bytes are fetched."""

    name: str
    media_type: str
    size: int
    url: str
    width: int | None = None
    height: int | None = None

    def attachment(self, data: bytes | None = None) -> Attachment:
        return Attachment(
            filename=self.name,
            media_type=self.media_type,
            size=self.size,
            url=self.url,
            data=data,
            width=self.width,
            height=self.height,
        )


def files(event: Mapping[str, Any]) -> list[FileRef]:
    refs = []
    for item in event.get("files") or ():
        if item.get("mode") == "tombstone" or not item.get("url_private"):
            continue  # deleted, or an external file ember cannot read
        refs.append(
            FileRef(
                name=str(item.get("name") or item.get("title") or "file"),
                media_type=str(item.get("mimetype") or "application/octet-stream"),
                size=int(item.get("size") or 0),
                url=str(item["url_private"]),
                width=_int(item.get("original_w")),
                height=_int(item.get("original_h")),
            )
        )
    return refs


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
