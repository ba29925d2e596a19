"""A loopback fake Discord (REST + gateway) for the real discord.py client.

One aiohttp server on 127.0.0.1:0 answers the REST API under `/api/v{n}/...` and the gateway at
`/gateway`. discord.py reaches it through the two knobs a proxy deployment uses
(`bots.discord.endpoints.discord_endpoints(fake.api_base_url, fake.gateway_url)`; the
`fake_discord` fixture does this and restores the defaults afterwards)::

    async with FakeDiscord() as fake, ...:              # default guild: see `default_guild`
        client = discord.Client(intents=intents, guild_ready_timeout=0.05)
        async with run_client(client, fake):          # login, connect, wait for on_ready; close
            await fake.say(fake.user("alice"), fake.channel("general"), f"{fake.bot.mention} hi")
            [post] = await fake.wait_for(lambda r: r.route == "POST /channels/{channel_id}/messages")

World: `FakeGuild(name, channels=[FakeChannel(...)], roles=[FakeRole(...)],
members=[FakeMember(FakeUser(...), roles=[...])])`. Ids left at 0 are assigned (snowflakes
carrying the real time) when the fake is built; every guild gets its `@everyone` role (id =
guild id), the bot as a member with a managed role, and an owner (first member, else the bot).
Look-ups: `fake.guild` (the first), `fake.channel(name_or_id)`, `fake.user(name_or_id)`,
`fake.role(name)`, `fake.messages` (id → stored message JSON), `fake.history(channel)`,
`fake.commands[None | guild_id]` (synced application commands), `fake.interactions` (id →
`InteractionState`), `fake.files` (attachment id → bytes).

Gateway: HELLO, then IDENTIFY → READY (guilds unavailable, `resume_gateway_url` = this server)
→ GUILD_CREATE per guild of the session's shard (IDENTIFY's `shard: [id, count]`, default
[0, 1]; a guild belongs to shard `(guild_id >> 22) % count`, DMs to shard 0, as on Discord;
`GET /gateway/bot` recommends `recommended_shards`, default 1; `sessions_by_shard()`) (channels, threads, roles, members, `member_count`); heartbeat ACKs;
sequence numbers per session; RESUME replays what the session missed, else INVALID_SESSION;
REQUEST_GUILD_MEMBERS answers one GUILD_MEMBERS_CHUNK. `compress=zlib-stream` is honoured
(binary frames, as Discord sends). Like Discord it closes with 4004 on a wrong token and 4014
when the intents ask for a privileged intent the application's flags lack
(`application_flags`, default GATEWAY_MESSAGE_CONTENT), drops MESSAGE_* events the intents don't
cover, and blanks content/embeds/attachments/components of messages a session without the
MESSAGE_CONTENT intent may not read (not a DM, not the bot's own, not mentioning the bot); REST
reads of messages are blanked the same way when `application_flags` lack the intent.

Events: `await fake.dispatch(event, payload)` sends to every identified session. Builders
return payloads in gateway form and update the in-memory model first:
`message(author, channel, content, mentions=, mention_roles=, reply_to=, ping_reply=,
attachments=, embeds=, components=)` (works for text channels, threads and DMs), `await
say(...)` (= message + dispatch MESSAGE_CREATE), `message_update(id, content=...)`,
`message_delete(id)`, `dm_channel(user)`, `new_thread(parent, name, ...)` + `thread_create(t)`,
`attachment(filename, data)`, `slash_command(user, channel, "opus access grant", {"user": bob})`,
`message_command(user, "Show the prompt", message_id)` (a message menu command),
`button_press(user, message_id, custom_id)`, `modal_submit(user, message_id, custom_id, values)` (a
modal opened from that message's button, submitted). Mentions in `content` (`<@id>`, `<@&id>`) are parsed.

REST (what the bot's own actions do): messages create/edit/delete/get/history/crosspost/react,
threads (a thread started from a message has the message's id; a thread without one also
posts a THREAD_CREATED system message in the parent, as Discord does), typing, DMs, channel,
guild, members, roles, users, application commands (global and guild, stored and validated
roughly like Discord), interaction callbacks (types 4, 5, 6, 7, 8, 9 — a modal's title, rows
and text inputs checked as Discord does; a second callback is 40060), follow-ups and `@original` edits under `/webhooks/{application_id}/{token}` (the first
follow-up after a thinking defer fills the loading message, as Discord does). The bot's own
creates/edits/deletes are dispatched back over the gateway, as Discord does. Message creates
validate like Discord: empty (50006), content over 2000 (50035 BASE_TYPE_MAX_LENGTH), reply to an
unknown message (50035 MESSAGE_REFERENCE_UNKNOWN_MESSAGE unless `fail_if_not_exists` is false).
`nonce` + `enforce_nonce` from the same author within `nonce_window` seconds returns the first
message. `mentions` honours `allowed_mentions`; a reply pings its author unless
`allowed_mentions.replied_user` is false (absent `allowed_mentions` pings). Multipart bodies
(`payload_json` + `files[n]`) are parsed; uploads become attachments served by this server.

Every REST request is recorded in `fake.requests` as `Recorded(method, path, route, query, body,
files, headers, time, status)`, appended once answered; `route` is e.g.
"POST /channels/{channel_id}/messages". `await fake.wait_for(pred, count=3, timeout=5)` returns
the matching records once there are `count` of them. Gateway frames the clients send are in
`fake.gateway_frames` (`await fake.wait_for_frame(...)`).

Rate limits: `FakeDiscord(limits=DiscordLimits())` enforces Discord's global 50 requests/s per
bot token (interaction callbacks and webhook follow-ups are exempt, as on Discord) and 5 message
creates, edits and typing calls per 5 s per channel, as sliding windows over the requests that
were answered. Past a limit the answer is Discord's 429 (with `Via`, `Retry-After`, `global`),
recorded in `fake.rate_limited`; per-channel answers carry true `X-RateLimit-Remaining` and
`Reset-After` headers, as discord.py expects. Without `limits` nothing is enforced.

Faults: `fake.fail_next(method, path, status=429, retry_after=0.2, ...)` answers the next
matching request (path glob: `*` one segment, `**` any) with Discord's error: 429 with `Via`,
`Retry-After`, `X-RateLimit-*` and `{"retry_after", "global"}` (discord.py sleeps and retries);
`cloudflare=True` for the HTML 429 without `Via` (discord.py raises at once); 403 50013 Missing
Permissions; 404 10003 Unknown Channel; any status with `code=`/`message=`; `times=None` until
`clear_faults()`. `await fake.request_reconnect()` (op 7) and `await fake.drop_connections()`
exercise resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import mimetypes
import re
import secrets
import time
import warnings
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import BodyPartReader, WSCloseCode, WSMsgType, hdrs, web

with warnings.catch_warnings():
    # discord.py imports the standard library's deprecated `audioop` (for voice); the test run
    # turns warnings into errors, and the first import of discord happens here (conftest).
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord

Json = dict[str, Any]
T = TypeVar("T")

DISCORD_EPOCH_MS = 1_420_070_400_000

# Channel types
GUILD_TEXT = 0
DM = 1
GUILD_ANNOUNCEMENT = 5
ANNOUNCEMENT_THREAD = 10
PUBLIC_THREAD = 11
PRIVATE_THREAD = 12
THREAD_TYPES = frozenset({ANNOUNCEMENT_THREAD, PUBLIC_THREAD, PRIVATE_THREAD})
MESSAGEABLE_TYPES = frozenset({GUILD_TEXT, DM, GUILD_ANNOUNCEMENT, *THREAD_TYPES})

# Gateway intents
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15

# Application flags (GET /oauth2/applications/@me, READY application.flags)
GATEWAY_PRESENCE = 1 << 12
GATEWAY_PRESENCE_LIMITED = 1 << 13
GATEWAY_GUILD_MEMBERS = 1 << 14
GATEWAY_GUILD_MEMBERS_LIMITED = 1 << 15
GATEWAY_MESSAGE_CONTENT = 1 << 18
GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19
PRIVILEGED_INTENTS = {
    INTENT_GUILD_MEMBERS: GATEWAY_GUILD_MEMBERS | GATEWAY_GUILD_MEMBERS_LIMITED,
    INTENT_GUILD_PRESENCES: GATEWAY_PRESENCE | GATEWAY_PRESENCE_LIMITED,
    INTENT_MESSAGE_CONTENT: GATEWAY_MESSAGE_CONTENT | GATEWAY_MESSAGE_CONTENT_LIMITED,
}

# Permissions
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_EXTERNAL_EMOJIS = 1 << 18
USE_APPLICATION_COMMANDS = 1 << 31
CREATE_PUBLIC_THREADS = 1 << 35
CREATE_PRIVATE_THREADS = 1 << 36
SEND_MESSAGES_IN_THREADS = 1 << 38
ALL_PERMISSIONS = (1 << 51) - 1
EVERYONE_PERMISSIONS = (
    ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | USE_APPLICATION_COMMANDS
    | CREATE_PUBLIC_THREADS
    | CREATE_PRIVATE_THREADS
    | SEND_MESSAGES_IN_THREADS
)

# Message flags
CROSSPOSTED = 1 << 0
SUPPRESS_EMBEDS = 1 << 2
HAS_THREAD = 1 << 5
EPHEMERAL = 1 << 6
LOADING = 1 << 7
SUPPRESS_NOTIFICATIONS = 1 << 12
IS_COMPONENTS_V2 = 1 << 15
SENDABLE_FLAGS = SUPPRESS_EMBEDS | EPHEMERAL | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2

# Message types
DEFAULT_MESSAGE = 0
THREAD_CREATED = 18
REPLY = 19
CHAT_INPUT_COMMAND = 20

# Interaction types and callback types
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE = 4, 5, 6, 7
AUTOCOMPLETE_RESULT, MODAL = 8, 9

MAX_CONTENT = 2000
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
JOINED_AT = "2024-01-01T00:00:00.000000+00:00"
ERROR_DEFAULTS: dict[int, tuple[int, str]] = {
    400: (50035, "Invalid Form Body"),
    401: (0, "401: Unauthorized"),
    403: (50013, "Missing Permissions"),
    404: (10003, "Unknown Channel"),
    405: (0, "405: Method Not Allowed"),
    500: (0, "500: Internal Server Error"),
    502: (0, "502: Bad Gateway"),
    503: (0, "503: Service Unavailable"),
    504: (0, "504: Gateway Timeout"),
}
BODY = web.RequestKey("body", object)  # the parsed JSON (or payload_json) of a REST request
FILES = web.RequestKey("files", list)  # its uploaded files, as `Upload`s
CLOUDFLARE_BAN = "<!DOCTYPE html><html><head><title>Access denied | discord.com used Cloudflare to restrict access</title></head><body>error code: 1015</body></html>"


# ---------------------------------------------------------------------------- the world


@dataclass(eq=False)
class FakeUser:
    username: str
    id: int = 0
    bot: bool = False
    global_name: str | None = None

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    def payload(self) -> Json:
        data: Json = {
            "id": str(self.id),
            "username": self.username,
            "global_name": self.global_name,
            "discriminator": "0",
            "avatar": None,
            "public_flags": 0,
            "flags": 0,
        }
        if self.bot:
            data["bot"] = True
        return data


@dataclass(eq=False)
class FakeRole:
    name: str
    permissions: int = 0
    id: int = 0
    position: int = 1
    managed: bool = False

    @property
    def mention(self) -> str:
        return f"<@&{self.id}>"

    def payload(self) -> Json:
        return {
            "id": str(self.id),
            "name": self.name,
            "description": None,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed,
            "mentionable": False,
            "flags": 0,
        }


@dataclass(eq=False)
class FakeMember:
    user: FakeUser
    roles: list[FakeRole] = field(default_factory=list)
    nick: str | None = None

    def payload(self, *, with_user: bool = True) -> Json:
        data: Json = {
            "roles": [str(role.id) for role in self.roles],
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "joined_at": JOINED_AT,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user.payload()
        return data


@dataclass(eq=False)
class FakeChannel:
    """A guild text/announcement channel, a thread (`parent` set), or a DM (`recipient` set)."""

    name: str = ""
    type: int = GUILD_TEXT
    id: int = 0
    topic: str | None = None
    parent: FakeChannel | None = None
    owner: FakeUser | None = None
    recipient: FakeUser | None = None
    archived: bool = False
    locked: bool = False
    auto_archive_duration: int = 1440
    guild: FakeGuild | None = None
    position: int = 0
    message_count: int = 0
    last_message_id: int | None = None

    @property
    def is_thread(self) -> bool:
        return self.type in THREAD_TYPES

    @property
    def mention(self) -> str:
        return f"<#{self.id}>"

    def payload(self) -> Json:
        last = str(self.last_message_id) if self.last_message_id else None
        if self.type == DM:
            assert self.recipient is not None
            return {
                "id": str(self.id),
                "type": DM,
                "last_message_id": last,
                "flags": 0,
                "recipients": [self.recipient.payload()],
            }
        assert self.guild is not None, f"channel {self.name!r} belongs to no guild"
        data: Json = {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild.id),
            "name": self.name,
            "last_message_id": last,
            "rate_limit_per_user": 0,
            "flags": 0,
        }
        if self.is_thread:
            assert self.parent is not None and self.owner is not None
            created = iso_time(self.id)
            data |= {
                "parent_id": str(self.parent.id),
                "owner_id": str(self.owner.id),
                "message_count": self.message_count,
                "total_message_sent": self.message_count,
                "member_count": 1,
                "thread_metadata": {
                    "archived": self.archived,
                    "auto_archive_duration": self.auto_archive_duration,
                    "archive_timestamp": created,
                    "locked": self.locked,
                    "create_timestamp": created,
                    **({"invitable": True} if self.type == PRIVATE_THREAD else {}),
                },
            }
        else:
            data |= {
                "position": self.position,
                "permission_overwrites": [],
                "parent_id": None,
                "topic": self.topic,
                "nsfw": False,
            }
        return data


@dataclass(eq=False)
class FakeGuild:
    name: str
    channels: list[FakeChannel] = field(default_factory=list)
    roles: list[FakeRole] = field(default_factory=list)
    members: list[FakeMember] = field(default_factory=list)
    owner: FakeUser | None = None
    id: int = 0

    @property
    def everyone(self) -> FakeRole:
        return next(role for role in self.roles if role.id == self.id)

    @property
    def threads(self) -> list[FakeChannel]:
        return [channel for channel in self.channels if channel.is_thread]

    def member(self, user_id: int) -> FakeMember | None:
        return next((member for member in self.members if member.user.id == user_id), None)

    def permissions_of(self, member: FakeMember) -> int:
        """Guild-level permissions (no channel overwrites), as Discord sends them in interactions."""
        if self.owner is not None and member.user.id == self.owner.id:
            return ALL_PERMISSIONS
        value = self.everyone.permissions
        for role in member.roles:
            value |= role.permissions
        return ALL_PERMISSIONS if value & ADMINISTRATOR else value

    def payload(self) -> Json:
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner.id) if self.owner else None,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "features": [],
            "roles": [role.payload() for role in self.roles],
            "emojis": [],
            "stickers": [],
        }


def default_guild() -> FakeGuild:
    """ "Ember Test": #general, #opus, #announcements (an announcement channel); alice (role
    "moderator", Manage Server) owns it; bob is a plain member."""
    moderator = FakeRole("moderator", permissions=MANAGE_GUILD | MANAGE_MESSAGES, position=2)
    alice = FakeUser("alice", global_name="Alice")
    bob = FakeUser("bob", global_name="Bob")
    return FakeGuild(
        "Ember Test",
        channels=[
            FakeChannel("general", topic="chit-chat"),
            FakeChannel("opus"),
            FakeChannel("announcements", type=GUILD_ANNOUNCEMENT),
        ],
        roles=[moderator],
        members=[FakeMember(alice, roles=[moderator]), FakeMember(bob)],
        owner=alice,
    )


def iso_time(snowflake: int) -> str:
    """The ISO timestamp a snowflake carries, in Discord's format."""
    ms = (snowflake >> 22) + DISCORD_EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="microseconds")


# ---------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Upload:
    """One file part of a multipart body."""

    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class Recorded:
    method: str
    path: str  # without the /api/v10 prefix, e.g. "/channels/1/messages"
    route: str  # "POST /channels/{channel_id}/messages" ("" when no route matched)
    query: dict[str, str]
    body: Any  # parsed JSON, or the multipart's payload_json, or None
    files: list[Upload]
    headers: dict[str, str]  # lower-cased names
    time: float  # loop.time() on arrival
    status: int = 0


@dataclass(frozen=True)
class GatewayFrame:
    """A frame a client sent over the gateway."""

    op: int
    d: Any
    time: float


@dataclass(frozen=True)
class DiscordLimits:
    """What the fake enforces: Discord's global window and its per-channel message windows."""

    global_per_second: int = 50
    channel_limit: int = 5
    channel_seconds: float = 5.0


_CHANNEL_WRITE = re.compile(r"^(?:POST|PATCH) /channels/(\d+)/(?:messages(?:/\d+)?|typing)$")


class _SlidingWindows:
    """Send times per key; a key is full when `limit` fall inside the last `seconds`."""

    def __init__(self) -> None:
        self._times: dict[str, list[float]] = {}

    def retry_after(self, key: str, limit: int, seconds: float, now: float) -> float:
        times = [t for t in self._times.get(key, []) if t > now - seconds]
        self._times[key] = times
        return 0.0 if len(times) < limit else times[len(times) - limit] + seconds - now

    def spend(self, key: str, now: float) -> None:
        self._times.setdefault(key, []).append(now)

    def remaining(self, key: str, limit: int) -> int:
        return max(0, limit - len(self._times.get(key, [])))


@dataclass(eq=False)
class Fault:
    method: str
    pattern: str
    status: int
    retry_after: float
    is_global: bool
    code: int | None
    message: str | None
    cloudflare: bool
    times: int | None
    hits: int = 0

    def __post_init__(self) -> None:
        self._regex = _glob(self.pattern)

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and self._regex.fullmatch(path) is not None

    def response(self, bucket: str) -> web.StreamResponse:
        if self.status == 429:
            return self._rate_limited(bucket)
        default_code, default_message = ERROR_DEFAULTS.get(self.status, (0, f"{self.status}: Error"))
        code = default_code if self.code is None else self.code
        return DiscordError(self.status, code, self.message or default_message).response()

    def _rate_limited(self, bucket: str) -> web.StreamResponse:
        headers = {"Retry-After": str(math.ceil(self.retry_after))}
        if self.cloudflare:
            headers["Content-Type"] = "text/html"
            return web.Response(status=429, text=CLOUDFLARE_BAN, headers=headers)
        headers |= _rate_limit_headers(bucket, limit=5, remaining=0, reset_after=self.retry_after)
        headers |= {"Via": "1.1 google", "X-RateLimit-Scope": "global" if self.is_global else "user"}
        if self.is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {
            "message": "You are being rate limited.",
            "retry_after": self.retry_after,
            "global": self.is_global,
        }
        return json_response(body, status=429, headers=headers)


@dataclass
class InteractionState:
    """What Discord knows about one interaction: its payload and how the bot answered."""

    payload: Json
    created: float
    callbacks: list[Json] = field(default_factory=list)  # callback bodies, in order
    original_id: int | None = None  # the message @original refers to
    loading: bool = False  # a thinking defer not yet filled by an edit or follow-up
    followup_ids: list[int] = field(default_factory=list)

    @property
    def id(self) -> int:
        return int(self.payload["id"])

    @property
    def token(self) -> str:
        return str(self.payload["token"])

    @property
    def type(self) -> int:
        return int(self.payload["type"])

    @property
    def acknowledged(self) -> bool:
        return bool(self.callbacks)


class DiscordError(Exception):
    """An error answer in Discord's JSON shape."""

    def __init__(self, status: int, code: int, message: str, errors: Json | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def response(self) -> web.Response:
        body: Json = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return json_response(body, status=self.status)


TEXT_INPUT, LABEL = 4, 18


def _validate_modal(data: Json) -> None:
    """A modal as Discord checks it: a custom id, a title of 1 to 45 characters, 1 to 5 rows,
    each a text input (in an action row or a label) with its own custom id and a label."""
    title = str(data.get("title") or "")
    if not data.get("custom_id") or not 1 <= len(title) <= 45:
        raise form_error(["data", "title"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length.")
    rows = data.get("components") or []
    if not 1 <= len(rows) <= 5:
        raise form_error(["data", "components"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
    for index, row in enumerate(rows):
        inner = row.get("components") if row.get("type") == 1 else [row.get("component")]
        labelled = row.get("type") == LABEL and bool(row.get("label"))
        for item in inner or []:
            fine = isinstance(item, dict) and item.get("type") == TEXT_INPUT and item.get("custom_id")
            if not fine or not (labelled or item.get("label")):
                raise form_error(["data", "components", index], "COMPONENT_INVALID", "Invalid text input")


def form_error(path: Sequence[str | int], code: str, message: str) -> DiscordError:
    """400 Invalid Form Body with Discord's nested `errors` (`{"content": {"_errors": [...]}}`)."""
    errors: Json = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(path):
        errors = {str(key): errors}
    return DiscordError(400, 50035, "Invalid Form Body", errors)


def json_response(data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """discord.py parses a body as JSON only if Content-Type is exactly `application/json`."""
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return web.Response(body=json.dumps(data).encode(), status=status, headers=all_headers)


def _glob(pattern: str) -> re.Pattern[str]:
    pattern = re.sub(r"^/api/v\d+", "", pattern)
    parts = []
    for piece in re.split(r"(\*\*|\*)", pattern):
        parts.append({"**": ".*", "*": "[^/]+"}.get(piece, re.escape(piece)))
    return re.compile("".join(parts) + "/?")


def _rate_limit_headers(bucket: str, *, limit: int, remaining: int, reset_after: float) -> dict[str, str]:
    return {
        "X-RateLimit-Bucket": bucket,
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        "X-RateLimit-Reset-After": f"{reset_after:.3f}",
    }


# ---------------------------------------------------------------------------- gateway plumbing


class _Connection:
    """One websocket. Sends are serialised: zlib-stream state and sequence order depend on it."""

    def __init__(self, ws: web.WebSocketResponse, *, compress: bool) -> None:
        self.ws = ws
        self.session: _Session | None = None
        self._lock = asyncio.Lock()
        self._zlib = zlib.compressobj() if compress else None

    async def send(self, frame: Json) -> None:
        text = json.dumps(frame)
        async with self._lock:
            if self.ws.closed:
                return
            try:
                if self._zlib is None:
                    await self.ws.send_str(text)
                else:
                    data = self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
                    await self.ws.send_bytes(data)
            except ConnectionError:
                pass  # the client went away mid-send; its session may resume


class _Session:
    """A gateway session: survives its connection so that RESUME can replay what was missed."""

    def __init__(self, session_id: str, intents: int, shard: tuple[int, int] = (0, 1)) -> None:
        self.id = session_id
        self.intents = intents
        self.shard = shard  # (shard id, shard count), as IDENTIFY said
        self.seq = 0
        self.connection: _Connection | None = None
        self.log: list[Json] = []

    async def emit(self, event: str, data: Any) -> None:
        self.seq += 1
        frame = {"op": 0, "t": event, "s": self.seq, "d": data}
        self.log = [*self.log[-999:], frame]
        if self.connection is not None:
            await self.connection.send(frame)


# ---------------------------------------------------------------------------- the fake


class FakeDiscord:
    def __init__(
        self,
        guilds: Sequence[FakeGuild] | None = None,
        *,
        token: str = "fake-bot-token",
        bot: FakeUser | None = None,
        application_id: int = 0,
        application_flags: int = GATEWAY_MESSAGE_CONTENT,
        heartbeat_interval_ms: int = 41_250,
        nonce_window: float = 300.0,
        interaction_deadline: float | None = None,
        limits: DiscordLimits | None = None,
        recommended_shards: int = 1,
    ) -> None:
        self._last_id = 0
        self.recommended_shards = recommended_shards  # GET /gateway/bot's "shards"
        self.limits = limits
        self._windows = _SlidingWindows()
        # Every 429 the limits answered: (loop time, "global" or the channel id, method path).
        self.rate_limited: list[tuple[float, str, str]] = []
        self.token = token
        self.bot = bot or FakeUser("ember", bot=True, global_name="Ember")
        self._assign(self.bot)
        self.application_id = application_id or self.bot.id
        self.application_flags = application_flags
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.nonce_window = nonce_window
        self.interaction_deadline = interaction_deadline  # seconds to acknowledge; None: no limit
        self.users: dict[int, FakeUser] = {self.bot.id: self.bot}
        self.guilds: list[FakeGuild] = []
        self.channels: dict[int, FakeChannel] = {}
        self.messages: dict[int, Json] = {}
        self.files: dict[int, tuple[str, bytes]] = {}
        self.commands: dict[int | None, list[Json]] = {}
        self.interactions: dict[int, InteractionState] = {}
        self.requests: list[Recorded] = []
        self.gateway_frames: list[GatewayFrame] = []
        self.server_errors: list[Exception] = []  # the fake's own bugs; raised again on exit
        self._history: dict[int, list[int]] = {}
        self._nonces: dict[tuple[int, str], tuple[int, float]] = {}
        self._faults: list[Fault] = []
        self._sessions: dict[str, _Session] = {}
        self._connections: set[_Connection] = set()
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""
        for guild in default_guild_list(guilds):
            self._register_guild(guild)

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        await self.close()
        if self.server_errors and exc_type is None:
            raise AssertionError(f"the fake Discord failed while answering: {self.server_errors!r}")

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._get_file)
        self._add_rest_routes(app.router)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        """Close every gateway connection (1001 going away), then stop serving. Idempotent."""
        for connection in list(self._connections):
            await connection.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server closing")
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    @contextlib.contextmanager
    def pointed(self) -> Iterator[None]:
        """Point discord.py at this fake for a `with` block, as `[discord] api_base_url` and
        `gateway_url` would; the previous endpoints are restored afterwards."""
        from bots.discord.endpoints import discord_endpoints

        with discord_endpoints(self.api_base_url, self.gateway_url):
            yield

    @property
    def api_base_url(self) -> str:
        """What `discord.http.Route.BASE` should be."""
        return f"{self.url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """What `DiscordWebSocket.DEFAULT_GATEWAY` should be (also READY's resume_gateway_url)."""
        return self.url.replace("http://", "ws://", 1) + "/gateway"

    # ------------------------------------------------------------------ the model

    def _snowflake(self) -> int:
        now = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last_id = max(self._last_id + 1, now)
        return self._last_id

    def _assign(self, thing: FakeUser | FakeRole | FakeChannel | FakeGuild) -> None:
        if not thing.id:
            thing.id = self._snowflake()

    def _register_guild(self, guild: FakeGuild) -> None:
        self._assign(guild)
        if not any(role.id == guild.id for role in guild.roles):
            guild.roles.insert(0, FakeRole("@everyone", EVERYONE_PERMISSIONS, id=guild.id, position=0))
        if guild.member(self.bot.id) is None:
            bot_role = FakeRole(self.bot.username, EVERYONE_PERMISSIONS, position=1, managed=True)
            guild.members.append(FakeMember(self.bot, roles=[bot_role]))
        for member in guild.members:
            self._assign(member.user)
            self.users[member.user.id] = member.user
            for role in member.roles:
                if role not in guild.roles:
                    guild.roles.append(role)
        for role in guild.roles:
            self._assign(role)
        if guild.owner is None:
            humans = [m.user for m in guild.members if not m.user.bot]
            guild.owner = humans[0] if humans else self.bot
        for position, channel in enumerate(guild.channels):
            self._register_channel(channel, guild, position=position)
        self.guilds.append(guild)

    def _register_channel(self, channel: FakeChannel, guild: FakeGuild | None, *, position: int = 0) -> None:
        self._assign(channel)
        channel.guild = guild
        channel.position = position
        if channel.is_thread:
            assert channel.parent is not None, f"thread {channel.name!r} needs a parent channel"
            channel.owner = channel.owner or (guild.owner if guild else None) or self.bot
        if guild is not None and channel not in guild.channels:
            guild.channels.append(channel)
        self.channels[channel.id] = channel
        self._history.setdefault(channel.id, [])

    @property
    def guild(self) -> FakeGuild:
        return self.guilds[0]

    def channel(self, key: str | int) -> FakeChannel:
        if isinstance(key, int):
            return self.channels[key]
        found = [channel for channel in self.channels.values() if channel.name == key]
        if not found:
            raise KeyError(f"no channel named {key!r}")
        return found[0]

    def user(self, key: str | int) -> FakeUser:
        if isinstance(key, int):
            return self.users[key]
        found = [user for user in self.users.values() if user.username == key]
        if not found:
            raise KeyError(f"no user named {key!r}")
        return found[0]

    def role(self, name: str, guild: FakeGuild | None = None) -> FakeRole:
        return next(role for role in (guild or self.guild).roles if role.name == name)

    def history(self, channel: FakeChannel | int) -> list[Json]:
        """Stored messages of a channel, oldest first (ephemeral ones are not in any history)."""
        channel_id = channel if isinstance(channel, int) else channel.id
        return [self.messages[mid] for mid in self._history.get(channel_id, [])]

    def add_user(self, user: FakeUser) -> FakeUser:
        """A user who is in no guild (a DM partner, say)."""
        self._assign(user)
        self.users[user.id] = user
        return user

    async def add_guild(self, guild: FakeGuild) -> Json:
        """The bot joins a guild: registers it and dispatches GUILD_CREATE."""
        self._register_guild(guild)
        payload = self._guild_create(guild)
        await self._broadcast("GUILD_CREATE", payload)
        return payload

    # ------------------------------------------------------------------ payload builders

    def message(
        self,
        author: FakeUser,
        channel: FakeChannel,
        content: str = "",
        *,
        mentions: Iterable[FakeUser] = (),
        mention_roles: Iterable[FakeRole] = (),
        reply_to: int | None = None,
        ping_reply: bool = True,
        attachments: Sequence[Json] = (),
        embeds: Sequence[Json] = (),
        components: Sequence[Json] = (),
        flags: int = 0,
    ) -> Json:
        """A message someone posts: stored, and returned as its MESSAGE_CREATE payload.

        Mentions written in `content` count; `mentions`/`mention_roles` add more. A reply
        (`reply_to` = a stored message id) pings the replied-to author unless `ping_reply=False`.
        """
        message = self._new_message(
            channel,
            author,
            content,
            attachments=list(attachments),
            embeds=list(embeds),
            components=list(components),
            flags=flags,
        )
        self._set_mentions(message, content, allowed=None, extra_users=mentions, extra_roles=mention_roles)
        if reply_to is not None:
            self._set_reply(message, {"message_id": reply_to}, channel, ping=ping_reply)
        self._store(message)
        return self._gateway_form(message)

    async def say(self, author: FakeUser, channel: FakeChannel, content: str = "", **options: Any) -> Json:
        """`message(...)`, dispatched as MESSAGE_CREATE."""
        payload = self.message(author, channel, content, **options)
        await self.dispatch("MESSAGE_CREATE", payload)
        return payload

    def message_update(self, message_id: int, *, content: str | None = None, **fields: Any) -> Json:
        """An edit to a stored message (sets `edited_timestamp`); its MESSAGE_UPDATE payload."""
        message = self.messages[message_id]
        if content is not None:
            message["content"] = content
            self._set_mentions(message, content, allowed=None)
        message.update(fields)
        message["edited_timestamp"] = iso_time(self._snowflake())
        return self._gateway_form(message)

    def message_delete(self, message_id: int) -> Json:
        """Removes a stored message; its MESSAGE_DELETE payload."""
        message = self._unstore(message_id)
        payload: Json = {"id": str(message_id), "channel_id": message["channel_id"]}
        channel = self.channels.get(int(message["channel_id"]))
        if channel is not None and channel.guild is not None:
            payload["guild_id"] = str(channel.guild.id)
        return payload

    def dm_channel(self, user: FakeUser) -> FakeChannel:
        """The DM channel between the bot and `user` (created on first use)."""
        for channel in self.channels.values():
            if channel.type == DM and channel.recipient is user:
                return channel
        self.add_user(user)
        channel = FakeChannel(type=DM, recipient=user)
        self._register_channel(channel, None)
        return channel

    def new_thread(
        self,
        parent: FakeChannel,
        name: str,
        *,
        owner: FakeUser | None = None,
        starter_message_id: int | None = None,
        private: bool = False,
    ) -> FakeChannel:
        """A thread in the model (a thread started from a message takes the message's id)."""
        assert parent.guild is not None
        kind = PRIVATE_THREAD if private else PUBLIC_THREAD
        if parent.type == GUILD_ANNOUNCEMENT:
            kind = ANNOUNCEMENT_THREAD
        thread = FakeChannel(name, type=kind, id=starter_message_id or 0, parent=parent, owner=owner)
        self._register_channel(thread, parent.guild)
        if starter_message_id is not None:
            starter = self.messages[starter_message_id]
            starter["flags"] = int(starter.get("flags", 0)) | HAS_THREAD
            starter["thread"] = thread.payload()
        return thread

    def thread_create(self, thread: FakeChannel) -> Json:
        """THREAD_CREATE payload for a newly created thread."""
        return {**thread.payload(), "newly_created": True}

    def attachment(
        self,
        filename: str,
        data: bytes = b"",
        *,
        content_type: str | None = None,
        description: str | None = None,
        channel: FakeChannel | None = None,
    ) -> Json:
        """An attachment object whose URL this server serves (`data`, with `content_type`)."""
        if not self.url:
            raise RuntimeError("start the fake before building attachments: their URLs point at it")
        kind = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        attachment_id = self._snowflake()
        self.files[attachment_id] = (kind, data)
        url = f"{self.url}/attachments/{channel.id if channel else 0}/{attachment_id}/{filename}"
        payload: Json = {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": kind,
        }
        if description is not None:
            payload["description"] = description
        return payload

    def slash_command(
        self,
        user: FakeUser,
        channel: FakeChannel,
        command: str,
        options: Mapping[str, Any] | None = None,
        *,
        permissions: int | None = None,
        locale: str = "en-US",
    ) -> Json:
        """INTERACTION_CREATE for `/command sub ...` with `options` (str, int, float, bool,
        FakeUser, FakeChannel, FakeRole or an attachment dict). Option types come from the
        synced command when there is one, else from the Python values."""
        root_name, *path = command.lstrip("/").split()
        schema = self._find_command(root_name, channel)
        resolved: Json = {}
        leaf_schema = _schema_at(schema, path)
        leaf = [
            self._encode_option(name, value, leaf_schema.get(name), resolved, channel)
            for name, value in (options or {}).items()
        ]
        nested = _nest_options(path, leaf, schema)
        data: Json = {
            "id": schema["id"] if schema else str(self._snowflake()),
            "name": root_name,
            "type": 1,
            "options": nested,
        }
        if schema and schema.get("guild_id"):
            data["guild_id"] = schema["guild_id"]
        if resolved:
            data["resolved"] = resolved
        return self._interaction(
            APPLICATION_COMMAND, user, channel, data, permissions=permissions, locale=locale
        )

    def message_command(
        self, user: FakeUser, name: str, message_id: int, *, permissions: int | None = None
    ) -> Json:
        """INTERACTION_CREATE for the message menu command `name` (Apps → name) chosen on a
        stored message, as Discord sends it: `target_id` and the message under `resolved`."""
        message = self.messages[message_id]
        channel = self.channels[int(message["channel_id"])]
        schema = next(
            (
                c
                for scope in ([channel.guild.id] if channel.guild else []) + [None]
                for c in self.commands.get(scope, [])
                if c["name"] == name and c.get("type") == 3
            ),
            None,
        )
        data: Json = {
            "id": schema["id"] if schema else str(self._snowflake()),
            "name": name,
            "type": 3,
            "target_id": str(message_id),
            "resolved": {"messages": {str(message_id): message}},
        }
        return self._interaction(
            APPLICATION_COMMAND, user, channel, data, permissions=permissions, locale="en-US"
        )

    def button_press(
        self,
        user: FakeUser,
        message_id: int,
        custom_id: str,
        *,
        component_type: int = 2,
        values: Sequence[str] | None = None,
        permissions: int | None = None,
    ) -> Json:
        """INTERACTION_CREATE for a click on a component of a stored message (a select menu:
        `component_type=3` and `values`)."""
        message = self.messages[message_id]
        channel = self.channels[int(message["channel_id"])]
        data: Json = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = list(values)
        return self._interaction(
            MESSAGE_COMPONENT, user, channel, data, message=message, permissions=permissions, locale="en-US"
        )

    def modal_submit(
        self, user: FakeUser, message_id: int, custom_id: str, values: Mapping[str, str]
    ) -> Json:
        """INTERACTION_CREATE for a modal (opened from a button on a stored message) submitted
        with `values` (text input custom id → what was typed), each input in its action row as
        Discord sends it; the message carrying the button comes along, as on Discord."""
        message = self.messages[message_id]
        channel = self.channels[int(message["channel_id"])]
        rows = [
            {"type": 1, "components": [{"type": TEXT_INPUT, "custom_id": key, "value": value}]}
            for key, value in values.items()
        ]
        data: Json = {"custom_id": custom_id, "components": rows}
        return self._interaction(
            MODAL_SUBMIT, user, channel, data, message=message, permissions=None, locale="en-US"
        )

    def _interaction(
        self,
        kind: int,
        user: FakeUser,
        channel: FakeChannel,
        data: Json,
        *,
        message: Json | None = None,
        permissions: int | None,
        locale: str,
    ) -> Json:
        interaction_id = self._snowflake()
        guild = channel.guild
        bot_member = guild.member(self.bot.id) if guild else None
        app_permissions = guild.permissions_of(bot_member) if guild and bot_member else EVERYONE_PERMISSIONS
        payload: Json = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "channel_id": str(channel.id),
            "channel": {**channel.payload(), "permissions": str(app_permissions)},
            "token": f"interaction-token-{interaction_id}-{secrets.token_hex(8)}",
            "version": 1,
            "locale": locale,
            "app_permissions": str(app_permissions),
            "entitlements": [],
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        }
        if guild is not None:
            member = guild.member(user.id) or FakeMember(user)
            granted = guild.permissions_of(member) if permissions is None else permissions
            payload |= {
                "guild_id": str(guild.id),
                "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
                "guild_locale": "en-US",
                "member": {**member.payload(), "permissions": str(granted)},
                "authorizing_integration_owners": {"0": str(guild.id)},
                "context": 0,
            }
        else:
            payload |= {
                "user": user.payload(),
                "authorizing_integration_owners": {"1": str(user.id)},
                "context": 1,
            }
        if message is not None:
            payload["message"] = message
        self.interactions[interaction_id] = InteractionState(
            payload, created=asyncio.get_running_loop().time()
        )
        return payload

    def _find_command(self, name: str, channel: FakeChannel) -> Json | None:
        scopes = [channel.guild.id] if channel.guild else []
        for scope in [*scopes, None]:
            for command in self.commands.get(scope, []):
                if command["name"] == name and command.get("type", 1) == 1:
                    return command
        return None

    def _encode_option(
        self, name: str, value: Any, schema: Json | None, resolved: Json, channel: FakeChannel
    ) -> Json:
        kind = int(schema["type"]) if schema else _option_type(value)
        encoded: Any = value
        if isinstance(value, FakeUser):
            encoded = str(value.id)
            resolved.setdefault("users", {})[encoded] = value.payload()
            member = channel.guild.member(value.id) if channel.guild else None
            if member is not None:
                granted = str(channel.guild.permissions_of(member)) if channel.guild else "0"
                resolved.setdefault("members", {})[encoded] = {
                    **member.payload(with_user=False),
                    "permissions": granted,
                }
        elif isinstance(value, FakeRole):
            encoded = str(value.id)
            resolved.setdefault("roles", {})[encoded] = value.payload()
        elif isinstance(value, FakeChannel):
            encoded = str(value.id)
            resolved.setdefault("channels", {})[encoded] = {
                **value.payload(),
                "permissions": str(ALL_PERMISSIONS),
            }
        elif isinstance(value, dict) and "filename" in value:
            encoded = str(value["id"])
            resolved.setdefault("attachments", {})[encoded] = value
        return {"name": name, "type": kind, "value": encoded}

    # ------------------------------------------------------------------ dispatch

    async def dispatch(self, event: str, payload: Json) -> None:
        """Send a DISPATCH to every identified session (subject to its intents)."""
        if not self._sessions:
            raise RuntimeError(f"no client is connected to the fake gateway to receive {event}")
        await self._broadcast(event, payload)

    async def _broadcast(self, event: str, payload: Json) -> None:
        for session in list(self._sessions.values()):
            if not _on_shard(session.shard, _guild_of(event, payload)):
                continue
            visible = self._visible(session, event, payload)
            if visible is not None:
                await session.emit(event, visible)

    def _visible(self, session: _Session, event: str, payload: Json) -> Json | None:
        """What Discord lets this session see of an event, given its intents."""
        if event.startswith(("GUILD_", "CHANNEL_", "THREAD_")) and not session.intents & INTENT_GUILDS:
            return None
        if not event.startswith("MESSAGE_") or event.startswith("MESSAGE_REACTION"):
            return payload
        needed = INTENT_GUILD_MESSAGES if "guild_id" in payload else INTENT_DIRECT_MESSAGES
        if not session.intents & needed:
            return None
        if (
            session.intents & INTENT_MESSAGE_CONTENT
            or event == "MESSAGE_DELETE"
            or self._content_allowed(payload)
        ):
            return payload
        blank = {"content": "", "embeds": [], "attachments": [], "components": []}
        return {**payload, **{key: value for key, value in blank.items() if key in payload}}

    def _content_allowed(self, payload: Json) -> bool:
        if "guild_id" not in payload:
            return True
        author = payload.get("author", {}).get("id")
        mentioned = {user["id"] for user in payload.get("mentions", [])}
        return author == str(self.bot.id) or str(self.bot.id) in mentioned

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT on every connection: discord.py closes and RESUMEs."""
        for connection in list(self._connections):
            await connection.send({"op": 7, "d": None, "s": None, "t": None})

    async def drop_connections(self, code: int = 4000) -> None:
        """Close every gateway connection with `code` (4000: resumable; 4004: not)."""
        for connection in list(self._connections):
            await connection.ws.close(code=code, message=b"dropped by the fake")

    @property
    def connected_sessions(self) -> int:
        return sum(1 for session in self._sessions.values() if session.connection is not None)

    # ------------------------------------------------------------------ faults and waiting

    def fail_next(
        self,
        method: str,
        path: str,
        status: int = 429,
        *,
        retry_after: float = 0.2,
        is_global: bool = False,
        code: int | None = None,
        message: str | None = None,
        cloudflare: bool = False,
        times: int | None = 1,
    ) -> Fault:
        """Answer the next `times` matching REST requests with an error (None: until cleared)."""
        fault = Fault(method.upper(), path, status, retry_after, is_global, code, message, cloudflare, times)
        self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self._faults.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.matches(method, path):
                fault.hits += 1
                if fault.times is not None and fault.hits >= fault.times:
                    self._faults.remove(fault)
                return fault
        return None

    async def wait_for(
        self,
        predicate: Callable[[Recorded], bool] | None = None,
        *,
        count: int = 1,
        timeout: float = 5.0,
    ) -> list[Recorded]:
        """The recorded REST requests matching `predicate`, once there are `count` of them."""
        return await self._wait(self.requests, predicate, count, timeout, "REST requests")

    async def wait_for_frame(
        self,
        predicate: Callable[[GatewayFrame], bool] | None = None,
        *,
        count: int = 1,
        timeout: float = 5.0,
    ) -> list[GatewayFrame]:
        """Gateway frames clients sent matching `predicate`, once there are `count` of them."""
        return await self._wait(self.gateway_frames, predicate, count, timeout, "gateway frames")

    async def _wait(
        self, items: list[T], predicate: Callable[[T], bool] | None, count: int, seconds: float, what: str
    ) -> list[T]:
        matches: list[T] = []
        try:
            async with asyncio.timeout(seconds):
                while True:
                    changed = self._changed
                    matches = [item for item in items if predicate is None or predicate(item)]
                    if len(matches) >= count:
                        return matches
                    await changed.wait()
        except TimeoutError:
            seen = "\n  ".join(repr(item) for item in items[-10:])
            raise TimeoutError(
                f"{len(matches)} of {count} {what} after {seconds}s; last seen:\n  {seen}"
            ) from None

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ gateway

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        connection = _Connection(ws, compress=request.query.get("compress") == "zlib-stream")
        self._connections.add(connection)
        try:
            if request.query.get("encoding", "json") != "json":
                await ws.close(code=4002, message=b"Error while decoding payload.")
                return ws
            hello = {"heartbeat_interval": self.heartbeat_interval_ms, "_trace": ["fake-discord"]}
            await connection.send({"op": 10, "d": hello, "s": None, "t": None})
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await self._on_frame(connection, json.loads(message.data))
        finally:
            self._connections.discard(connection)
            session = connection.session
            if session is not None and session.connection is connection:
                session.connection = None
                if ws.close_code in (WSCloseCode.OK, WSCloseCode.GOING_AWAY):
                    self._sessions.pop(session.id, None)  # a clean close ends the session
        return ws

    async def _on_frame(self, connection: _Connection, frame: Json) -> None:
        op, data = frame.get("op"), frame.get("d")
        self.gateway_frames.append(GatewayFrame(int(op or 0), data, asyncio.get_running_loop().time()))
        self._notify()
        if op == 1:
            await connection.send({"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            await self._identify(connection, data)
        elif op == 6:
            await self._resume(connection, data)
        elif op == 8:
            await self._request_members(connection, data)

    async def _identify(self, connection: _Connection, data: Json) -> None:
        if connection.session is not None:
            await connection.ws.close(code=4005, message=b"Already authenticated.")
            return
        if data.get("token") != self.token:
            await connection.ws.close(code=4004, message=b"Authentication failed.")
            return
        intents = data.get("intents")
        if not isinstance(intents, int):
            await connection.ws.close(code=4013, message=b"Invalid intent(s).")
            return
        if any(
            intents & intent and not self.application_flags & flags
            for intent, flags in PRIVILEGED_INTENTS.items()
        ):
            await connection.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        shard = _shard_of_identify(data.get("shard"))
        if shard is None:
            await connection.ws.close(code=4010, message=b"Invalid shard.")
            return
        session = _Session(secrets.token_hex(16), intents, shard)
        connection.session, session.connection = session, connection
        await session.emit("READY", self._ready(session))
        for guild in self._guilds_of(session):
            await session.emit("GUILD_CREATE", self._guild_create(guild))
        self._sessions[session.id] = session

    async def _resume(self, connection: _Connection, data: Json) -> None:
        session = self._sessions.get(str(data.get("session_id")))
        if session is None or data.get("token") != self.token:
            await connection.send({"op": 9, "d": False, "s": None, "t": None})
            return
        if session.connection is not None and session.connection is not connection:
            await session.connection.ws.close(code=4000, message=b"session resumed elsewhere")
        connection.session, session.connection = session, connection
        for frame in session.log:
            if frame["s"] > int(data.get("seq") or 0):
                await connection.send(frame)
        await session.emit("RESUMED", {"_trace": ["fake-discord"]})

    async def _request_members(self, connection: _Connection, data: Json) -> None:
        session = connection.session
        if session is None:
            return
        guild_ids = data["guild_id"] if isinstance(data["guild_id"], list) else [data["guild_id"]]
        query = str(data.get("query") or "").lower()
        user_ids = {int(user_id) for user_id in data.get("user_ids") or []}
        limit = int(data.get("limit") or 0)
        for guild in (g for g in self.guilds if str(g.id) in {str(i) for i in guild_ids}):
            members = [
                m
                for m in guild.members
                if (not user_ids or m.user.id in user_ids) and m.user.username.lower().startswith(query)
            ]
            if limit:
                members = members[:limit]
            chunk: Json = {
                "guild_id": str(guild.id),
                "members": [member.payload() for member in members],
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [str(i) for i in user_ids - {m.user.id for m in members}],
            }
            if data.get("presences"):
                chunk["presences"] = []
            if data.get("nonce") is not None:
                chunk["nonce"] = data["nonce"]
            await session.emit("GUILD_MEMBERS_CHUNK", chunk)

    def _ready(self, session: _Session) -> Json:
        user = self.bot.payload() | {"verified": True, "mfa_enabled": False, "email": None, "flags": 0}
        return {
            "v": 10,
            "user": user,
            "guilds": [{"id": str(guild.id), "unavailable": True} for guild in self._guilds_of(session)],
            "session_id": session.id,
            "shard": list(session.shard),
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": self.application_flags},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["us-east"],
            "user_settings": {},
            "_trace": ["fake-discord"],
        }

    def _guilds_of(self, session: _Session) -> list[FakeGuild]:
        return [guild for guild in self.guilds if _on_shard(session.shard, guild.id)]

    def sessions_by_shard(self) -> dict[tuple[int, int], int]:
        """How many identified sessions hold each (shard id, shard count)."""
        held: dict[tuple[int, int], int] = {}
        for session in self._sessions.values():
            held[session.shard] = held.get(session.shard, 0) + 1
        return held

    def _guild_create(self, guild: FakeGuild) -> Json:
        active_threads = [c for c in guild.threads if not c.archived]
        return guild.payload() | {
            "unavailable": False,
            "large": False,
            "joined_at": JOINED_AT,
            "member_count": len(guild.members),
            "members": [member.payload() for member in guild.members],
            "channels": [c.payload() for c in guild.channels if not c.is_thread],
            "threads": [c.payload() for c in active_threads],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    # ------------------------------------------------------------------ REST plumbing

    def _add_rest_routes(self, router: web.UrlDispatcher) -> None:
        api = r"/api/v{version:\d+}"
        routes: list[tuple[str, str, Callable[[web.Request], Any]]] = [
            ("GET", "/users/@me", self._get_me),
            ("POST", "/users/@me/channels", self._open_dm),
            ("GET", "/users/{user_id}", self._get_user),
            ("GET", "/oauth2/applications/@me", self._get_application),
            ("GET", "/gateway", self._get_gateway),
            ("GET", "/gateway/bot", self._get_gateway_bot),
            ("GET", "/channels/{channel_id}", self._get_channel),
            ("POST", "/channels/{channel_id}/typing", self._typing),
            ("GET", "/channels/{channel_id}/messages", self._get_history),
            ("POST", "/channels/{channel_id}/messages", self._create_message),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self._get_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self._edit_message),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self._delete_message),
            ("POST", "/channels/{channel_id}/messages/{message_id}/crosspost", self._crosspost),
            ("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", self._react),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", self._unreact),
            ("POST", "/channels/{channel_id}/messages/{message_id}/threads", self._thread_from_message),
            ("POST", "/channels/{channel_id}/threads", self._thread_without_message),
            ("GET", "/guilds/{guild_id}", self._get_guild),
            ("GET", "/guilds/{guild_id}/channels", self._get_guild_channels),
            ("GET", "/guilds/{guild_id}/threads/active", self._get_active_threads),
            ("GET", "/guilds/{guild_id}/members", self._get_members),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self._get_member),
            ("GET", "/guilds/{guild_id}/roles", self._get_roles),
            ("GET", "/applications/{application_id}/commands", self._get_commands),
            ("PUT", "/applications/{application_id}/commands", self._put_commands),
            ("GET", "/applications/{application_id}/guilds/{guild_id}/commands", self._get_commands),
            ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands", self._put_commands),
            ("POST", "/interactions/{interaction_id}/{token}/callback", self._interaction_callback),
            ("POST", "/webhooks/{application_id}/{token}", self._followup),
            ("GET", "/webhooks/{application_id}/{token}/messages/{message_id}", self._get_webhook_message),
            ("PATCH", "/webhooks/{application_id}/{token}/messages/{message_id}", self._edit_webhook_message),
            (
                "DELETE",
                "/webhooks/{application_id}/{token}/messages/{message_id}",
                self._delete_webhook_message,
            ),
        ]
        for method, path, handler in routes:
            router.add_route(method, api + path, handler)

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)  # type: ignore[no-any-return]
        arrived = asyncio.get_running_loop().time()
        body, files = await _read_body(request)
        request[BODY], request[FILES] = body, files
        path = re.sub(r"^/api/v\d+", "", request.path)
        resource = request.match_info.route.resource
        template = re.sub(r"^/api/v\{version\}", "", resource.canonical) if resource else ""
        route = f"{request.method} {template}" if template else ""
        record = Recorded(
            request.method,
            path,
            route,
            dict(request.query),
            body,
            files,
            {name.lower(): value for name, value in request.headers.items()},
            arrived,
        )
        bucket = hashlib.sha1((route or path).encode()).hexdigest()[:32]
        response = await self._answer(request, handler, path, bucket)
        if 200 <= response.status < 300:
            response.headers.update(self._bucket_headers(request.method, path, bucket))
        record.status = response.status
        self.requests.append(record)
        self._notify()
        return response

    async def _answer(
        self, request: web.Request, handler: Callable[[web.Request], Any], path: str, bucket: str
    ) -> web.StreamResponse:
        try:
            needs_auth = not path.startswith(("/webhooks/", "/interactions/"))
            if needs_auth and request.headers.get(hdrs.AUTHORIZATION) != f"Bot {self.token}":
                raise DiscordError(401, 0, "401: Unauthorized")
            fault = self._take_fault(request.method, path)
            if fault is not None:
                return fault.response(bucket)
            if self.limits is not None and needs_auth:
                limited = self._enforce(self.limits, request.method, path, bucket)
                if limited is not None:
                    return limited
            return await handler(request)  # type: ignore[no-any-return]
        except DiscordError as error:
            return error.response()
        except web.HTTPNotFound:
            return DiscordError(404, 0, "404: Not Found").response()
        except web.HTTPMethodNotAllowed:
            return DiscordError(405, 0, "405: Method Not Allowed").response()
        except Exception as error:  # a bug in the fake: discord.py would quietly retry a 500
            self.server_errors.append(error)
            return DiscordError(500, 0, "500: Internal Server Error").response()

    def _enforce(
        self, limits: DiscordLimits, method: str, path: str, bucket: str
    ) -> web.StreamResponse | None:
        """Spend from the global and the channel's window, or answer 429 as Discord does."""
        now = asyncio.get_running_loop().time()
        scopes = [("global", limits.global_per_second, 1.0)]
        channel = _CHANNEL_WRITE.match(f"{method} {path}")
        if channel is not None:
            scopes.append((channel.group(1), limits.channel_limit, limits.channel_seconds))
        for key, limit, seconds in scopes:
            wait = self._windows.retry_after(key, limit, seconds, now)
            if wait > 0:
                self.rate_limited.append((now, key, f"{method} {path}"))
                fault = Fault(method, path, 429, wait, key == "global", None, None, False, 1)
                return fault.response(bucket)
        for key, _, _ in scopes:
            self._windows.spend(key, now)
        return None

    def _bucket_headers(self, method: str, path: str, bucket: str) -> dict[str, str]:
        channel = _CHANNEL_WRITE.match(f"{method} {path}")
        if self.limits is None or channel is None:
            return _rate_limit_headers(bucket, limit=50, remaining=49, reset_after=1.0)
        limits, key = self.limits, channel.group(1)
        now = asyncio.get_running_loop().time()
        self._windows.retry_after(key, limits.channel_limit, limits.channel_seconds, now)
        remaining = self._windows.remaining(key, limits.channel_limit)
        reset_after = (
            self._windows.retry_after(key, limits.channel_limit, limits.channel_seconds, now)
            if remaining == 0
            else 0.0
        )
        return _rate_limit_headers(
            bucket, limit=limits.channel_limit, remaining=remaining, reset_after=reset_after
        )

    async def _get_file(self, request: web.Request) -> web.StreamResponse:
        attachment_id = int(request.match_info["attachment_id"])
        if attachment_id not in self.files:
            raise web.HTTPNotFound()
        kind, data = self.files[attachment_id]
        return web.Response(body=data, headers={"Content-Type": kind})

    def _channel_of(self, request: web.Request) -> FakeChannel:
        channel = self.channels.get(_int(request.match_info["channel_id"]))
        if channel is None:
            raise DiscordError(404, 10003, "Unknown Channel")
        return channel

    def _message_of(self, request: web.Request, channel: FakeChannel) -> Json:
        message = self.messages.get(_int(request.match_info["message_id"]))
        if message is None or message["channel_id"] != str(channel.id):
            raise DiscordError(404, 10008, "Unknown Message")
        return message

    def _guild_of(self, request: web.Request) -> FakeGuild:
        guild_id = _int(request.match_info["guild_id"])
        for guild in self.guilds:
            if guild.id == guild_id:
                return guild
        raise DiscordError(404, 10004, "Unknown Guild")

    # ------------------------------------------------------------------ REST: users, gateway

    async def _get_me(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.bot.payload() | {"verified": True, "mfa_enabled": False, "locale": "en-US"})

    async def _get_user(self, request: web.Request) -> web.StreamResponse:
        user = self.users.get(_int(request.match_info["user_id"]))
        if user is None:
            raise DiscordError(404, 10013, "Unknown User")
        return json_response(user.payload())

    async def _get_application(self, request: web.Request) -> web.StreamResponse:
        owner = self.guilds[0].owner if self.guilds and self.guilds[0].owner else self.bot
        return json_response(
            {
                "id": str(self.application_id),
                "name": self.bot.username,
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "flags": self.application_flags,
                "owner": owner.payload(),
                "team": None,
                "bot": self.bot.payload(),
                "hook": True,
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "tags": [],
                "approximate_guild_count": len(self.guilds),
                "integration_types_config": {"0": {}},
            }
        )

    async def _get_gateway(self, request: web.Request) -> web.StreamResponse:
        return json_response({"url": self.gateway_url})

    async def _get_gateway_bot(self, request: web.Request) -> web.StreamResponse:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        body = {"url": self.gateway_url, "shards": self.recommended_shards, "session_start_limit": limit}
        return json_response(body)

    async def _open_dm(self, request: web.Request) -> web.StreamResponse:
        user = self.users.get(_int(str((request[BODY] or {}).get("recipient_id"))))
        if user is None:
            raise form_error(["recipient_id"], "NUMBER_TYPE_COERCE", "Value is not snowflake.")
        return json_response(self.dm_channel(user).payload())

    # ------------------------------------------------------------------ REST: channels, messages

    async def _get_channel(self, request: web.Request) -> web.StreamResponse:
        return json_response(self._channel_of(request).payload())

    async def _typing(self, request: web.Request) -> web.StreamResponse:
        self._channel_of(request)
        return web.Response(status=204)

    async def _get_history(self, request: web.Request) -> web.StreamResponse:
        channel = self._channel_of(request)
        query = request.query
        limit = max(1, min(100, int(query.get("limit", "50"))))
        ids = self._history[channel.id]
        if "before" in query:
            chosen = [i for i in ids if i < int(query["before"])][-limit:]
        elif "after" in query:
            chosen = [i for i in ids if i > int(query["after"])][:limit]
        elif "around" in query:
            around = int(query["around"])
            older = [i for i in ids if i < around][-(limit // 2) :] if limit > 1 else []
            newer = [i for i in ids if i >= around][: limit - len(older)]
            chosen = older + newer
        else:
            chosen = ids[-limit:]
        # newest first, always
        return json_response([self._readable(self.messages[i]) for i in reversed(chosen)])

    async def _get_message(self, request: web.Request) -> web.StreamResponse:
        channel = self._channel_of(request)
        return json_response(self._readable(self._message_of(request, channel)))

    def _readable(self, message: Json) -> Json:
        """A message as REST shows it: an application without the message-content intent gets
        the same blanks over REST as over the gateway."""
        if self.application_flags & (GATEWAY_MESSAGE_CONTENT | GATEWAY_MESSAGE_CONTENT_LIMITED):
            return message
        if self._content_allowed(self._gateway_form(message)):
            return message
        return {**message, "content": "", "embeds": [], "attachments": [], "components": []}

    async def _create_message(self, request: web.Request) -> web.StreamResponse:
        channel = self._channel_of(request)
        if channel.type not in MESSAGEABLE_TYPES:
            raise DiscordError(400, 50008, "Cannot send messages in a non-text channel")
        body: Json = request[BODY] or {}
        nonce = body.get("nonce")
        now = asyncio.get_running_loop().time()
        if nonce is not None and body.get("enforce_nonce"):
            earlier = self._nonces.get((self.bot.id, str(nonce)))
            if earlier is not None and now - earlier[1] < self.nonce_window and earlier[0] in self.messages:
                return json_response(self.messages[earlier[0]])
        message = self._new_message(
            channel,
            self.bot,
            str(body.get("content") or ""),
            embeds=list(body.get("embeds") or []),
            components=list(body.get("components") or []),
            flags=int(body.get("flags") or 0) & SENDABLE_FLAGS,
            tts=bool(body.get("tts")),
        )
        message["attachments"] = self._attachments_from(body, request[FILES], channel, existing=[])
        if nonce is not None:
            message["nonce"] = nonce
        allowed = body.get("allowed_mentions")
        self._set_mentions(message, message["content"], allowed=allowed)
        if body.get("message_reference"):
            ping = allowed is None or bool(allowed.get("replied_user"))
            self._set_reply(message, body["message_reference"], channel, ping=ping)
        _validate(message)
        self._store(message)
        if nonce is not None:
            self._nonces[(self.bot.id, str(nonce))] = (int(message["id"]), now)
        await self._broadcast("MESSAGE_CREATE", self._gateway_form(message))
        return json_response(message)

    async def _edit_message(self, request: web.Request) -> web.StreamResponse:
        channel = self._channel_of(request)
        message = self._message_of(request, channel)
        if message["author"]["id"] != str(self.bot.id):
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        self._apply_edit(message, request[BODY] or {}, request[FILES], channel)
        await self._broadcast("MESSAGE_UPDATE", self._gateway_form(message))
        return json_response(message)

    async def _delete_message(self, request: web.Request) -> web.StreamResponse:
        channel = self._channel_of(request)
        message = self._message_of(request, channel)
        await self._broadcast("MESSAGE_DELETE", self.message_delete(int(message["id"])))
        return web.Response(status=204)

    async def _crosspost(self, request: web.Request) -> web.StreamResponse:
        channel = self._channel_of(request)
        message = self._message_of(request, channel)
        if channel.type != GUILD_ANNOUNCEMENT:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        if int(message.get("flags", 0)) & CROSSPOSTED:
            raise DiscordError(400, 40033, "This message has already been crossposted.")
        message["flags"] = int(message.get("flags", 0)) | CROSSPOSTED
        await self._broadcast("MESSAGE_UPDATE", self._gateway_form(message))
        return json_response(message)

    async def _react(self, request: web.Request) -> web.StreamResponse:
        channel = self._channel_of(request)
        message = self._message_of(request, channel)
        emoji = request.match_info["emoji"]
        reactions: list[Json] = message.setdefault("reactions", [])
        reaction = next((r for r in reactions if r["emoji"]["name"] == emoji), None)
        if reaction is None:
            reactions.append({"emoji": {"id": None, "name": emoji}, "count": 1, "me": True})
        elif not reaction["me"]:
            reaction["count"] += 1
            reaction["me"] = True
        return web.Response(status=204)

    async def _unreact(self, request: web.Request) -> web.StreamResponse:
        channel = self._channel_of(request)
        message = self._message_of(request, channel)
        emoji = request.match_info["emoji"]
        for reaction in list(message.get("reactions", [])):
            if reaction["emoji"]["name"] == emoji and reaction["me"]:
                reaction["count"] -= 1
                reaction["me"] = False
                if reaction["count"] == 0:
                    message["reactions"].remove(reaction)
        return web.Response(status=204)

    # ------------------------------------------------------------------ REST: threads

    async def _thread_from_message(self, request: web.Request) -> web.StreamResponse:
        parent = self._channel_of(request)
        message = self._message_of(request, parent)
        if parent.type not in (GUILD_TEXT, GUILD_ANNOUNCEMENT):
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        if int(message["id"]) in self.channels:
            raise DiscordError(400, 160004, "A thread has already been created for this message")
        body: Json = request[BODY] or {}
        thread = self.new_thread(
            parent, _thread_name(body), owner=self.bot, starter_message_id=int(message["id"])
        )
        thread.auto_archive_duration = int(body.get("auto_archive_duration") or 1440)
        await self._broadcast("THREAD_CREATE", self.thread_create(thread))
        await self._broadcast("MESSAGE_UPDATE", self._gateway_form(message))
        return json_response(thread.payload())

    async def _thread_without_message(self, request: web.Request) -> web.StreamResponse:
        parent = self._channel_of(request)
        if parent.type not in (GUILD_TEXT, GUILD_ANNOUNCEMENT):
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        body: Json = request[BODY] or {}
        private = int(body.get("type") or PRIVATE_THREAD) == PRIVATE_THREAD
        thread = self.new_thread(parent, _thread_name(body), owner=self.bot, private=private)
        thread.auto_archive_duration = int(body.get("auto_archive_duration") or 1440)
        await self._broadcast("THREAD_CREATE", self.thread_create(thread))
        if not private:
            notice = self._new_message(parent, self.bot, thread.name, kind=THREAD_CREATED)
            notice["message_reference"] = {
                "type": 0,
                "channel_id": str(thread.id),
                "guild_id": str(thread.guild.id),
            }  # type: ignore[union-attr]
            self._store(notice)
            await self._broadcast("MESSAGE_CREATE", self._gateway_form(notice))
        return json_response(thread.payload())

    # ------------------------------------------------------------------ REST: guilds

    async def _get_guild(self, request: web.Request) -> web.StreamResponse:
        guild = self._guild_of(request)
        counts = {"approximate_member_count": len(guild.members), "approximate_presence_count": 0}
        return json_response(guild.payload() | counts)

    async def _get_guild_channels(self, request: web.Request) -> web.StreamResponse:
        guild = self._guild_of(request)
        return json_response([c.payload() for c in guild.channels if not c.is_thread])

    async def _get_active_threads(self, request: web.Request) -> web.StreamResponse:
        guild = self._guild_of(request)
        threads = [c.payload() for c in guild.threads if not c.archived]
        return json_response({"threads": threads, "members": []})

    async def _get_members(self, request: web.Request) -> web.StreamResponse:
        guild = self._guild_of(request)
        limit = int(request.query.get("limit", "1"))
        after = int(request.query.get("after", "0"))
        members = sorted((m for m in guild.members if m.user.id > after), key=lambda m: m.user.id)
        return json_response([member.payload() for member in members[:limit]])

    async def _get_member(self, request: web.Request) -> web.StreamResponse:
        guild = self._guild_of(request)
        member = guild.member(_int(request.match_info["user_id"]))
        if member is None:
            raise DiscordError(404, 10007, "Unknown Member")
        return json_response(member.payload())

    async def _get_roles(self, request: web.Request) -> web.StreamResponse:
        return json_response([role.payload() for role in self._guild_of(request).roles])

    # ------------------------------------------------------------------ REST: application commands

    def _command_scope(self, request: web.Request) -> int | None:
        if _int(request.match_info["application_id"]) != self.application_id:
            raise DiscordError(403, 50001, "Missing Access")
        return self._guild_of(request).id if "guild_id" in request.match_info else None

    async def _get_commands(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.commands.get(self._command_scope(request), []))

    async def _put_commands(self, request: web.Request) -> web.StreamResponse:
        scope = self._command_scope(request)
        body = request[BODY]
        if not isinstance(body, list):
            raise form_error([], "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
        _validate_commands(body)
        previous = {(c["name"], c.get("type", 1)): c["id"] for c in self.commands.get(scope, [])}
        stored = []
        for command in body:
            kind = command.get("type", 1)
            entry: Json = {
                "id": previous.get((command["name"], kind)) or str(self._snowflake()),
                "application_id": str(self.application_id),
                "version": str(self._snowflake()),
                "type": kind,
                "description": "",
                "options": [],
                "default_member_permissions": None,
                "nsfw": False,
                "name_localizations": None,
                "description_localizations": None,
                "contexts": None,
                "integration_types": [0],
                **command,
            }
            if scope is not None:
                entry["guild_id"] = str(scope)
            stored.append(entry)
        self.commands[scope] = stored
        return json_response(stored)

    # ------------------------------------------------------------------ REST: interactions, webhooks

    async def _interaction_callback(self, request: web.Request) -> web.StreamResponse:
        state = self.interactions.get(_int(request.match_info["interaction_id"]))
        if state is None or state.token != request.match_info["token"]:
            raise DiscordError(404, 10062, "Unknown interaction")
        age = asyncio.get_running_loop().time() - state.created
        if self.interaction_deadline is not None and age > self.interaction_deadline:
            raise DiscordError(404, 10062, "Unknown interaction")
        if state.acknowledged:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        body: Json = request[BODY] or {}
        kind = int(body.get("type") or 0)
        data: Json = body.get("data") or {}
        message = await self._answer_interaction(state, kind, data, request[FILES])
        state.callbacks.append(body)
        if request.query.get("with_response") not in ("1", "true", "True"):
            return web.Response(status=204)
        summary: Json = {"id": str(state.id), "type": state.type}
        result: Json = {"interaction": summary}
        if message is not None:
            summary["response_message_id"] = message["id"]
            summary["response_message_loading"] = bool(int(message.get("flags", 0)) & LOADING)
            summary["response_message_ephemeral"] = bool(int(message.get("flags", 0)) & EPHEMERAL)
        if kind in (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, UPDATE_MESSAGE):
            result["resource"] = {"type": kind, **({"message": message} if message else {})}
        return json_response(result)

    async def _answer_interaction(
        self, state: InteractionState, kind: int, data: Json, files: list[Upload]
    ) -> Json | None:
        from_component = state.type in (MESSAGE_COMPONENT, MODAL_SUBMIT)
        allowed = {
            CHANNEL_MESSAGE: state.type != AUTOCOMPLETE,
            DEFERRED_CHANNEL_MESSAGE: state.type != AUTOCOMPLETE,
            DEFERRED_UPDATE: from_component,
            UPDATE_MESSAGE: from_component,
            AUTOCOMPLETE_RESULT: state.type == AUTOCOMPLETE,
            MODAL: state.type in (APPLICATION_COMMAND, MESSAGE_COMPONENT),
        }
        if not allowed.get(kind, False):
            raise form_error(
                ["type"], "INTERACTION_CALLBACK_TYPE_INVALID", "Invalid interaction callback type"
            )
        if kind == MODAL:
            _validate_modal(data)
            return None
        if kind in (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE):
            message = self._interaction_message(state, data, files, loading=kind == DEFERRED_CHANNEL_MESSAGE)
            state.original_id, state.loading = int(message["id"]), kind == DEFERRED_CHANNEL_MESSAGE
            await self._publish_new(message)
            return message
        if kind in (DEFERRED_UPDATE, UPDATE_MESSAGE) and "message" in state.payload:
            state.original_id = int(state.payload["message"]["id"])
            message = self.messages.get(state.original_id)
            if kind == UPDATE_MESSAGE and message is not None:
                channel = self.channels[int(message["channel_id"])]
                self._apply_edit(message, data, files, channel)
                await self._publish_edit(message)
            return message
        return None

    def _interaction_message(
        self, state: InteractionState, data: Json, files: list[Upload], *, loading: bool
    ) -> Json:
        channel = self.channels[int(state.payload["channel_id"])]
        flags = int(data.get("flags") or 0) & SENDABLE_FLAGS
        message = self._new_message(
            channel,
            self.bot,
            "" if loading else str(data.get("content") or ""),
            embeds=[] if loading else list(data.get("embeds") or []),
            components=[] if loading else list(data.get("components") or []),
            flags=flags | (LOADING if loading else 0),
            kind=CHAT_INPUT_COMMAND if state.type == APPLICATION_COMMAND else DEFAULT_MESSAGE,
        )
        if not loading:
            message["attachments"] = self._attachments_from(data, files, channel, existing=[])
            self._set_mentions(message, message["content"], allowed=data.get("allowed_mentions"))
            _validate(message)
        user = state.payload.get("member", {}).get("user") or state.payload.get("user")
        message |= {
            "webhook_id": str(self.application_id),
            "application_id": str(self.application_id),
            "interaction_metadata": {
                "id": str(state.id),
                "type": state.type,
                "user": user,
                "authorizing_integration_owners": state.payload["authorizing_integration_owners"],
            },
        }
        if state.type == APPLICATION_COMMAND:
            message["interaction"] = {
                "id": str(state.id),
                "type": state.type,
                "name": state.payload["data"]["name"],
                "user": user,
            }
        self._store(message)
        return message

    def _webhook_state(self, request: web.Request) -> InteractionState:
        if _int(request.match_info["application_id"]) == self.application_id:
            token = request.match_info["token"]
            for state in self.interactions.values():
                if state.token == token and state.acknowledged:
                    return state
        raise DiscordError(404, 10015, "Unknown Webhook")

    def _webhook_message(self, request: web.Request, state: InteractionState) -> Json:
        key = request.match_info["message_id"]
        message_id = state.original_id if key == "@original" else _int(key)
        known = {state.original_id, *state.followup_ids}
        if message_id is None or message_id not in known or message_id not in self.messages:
            raise DiscordError(404, 10008, "Unknown Message")
        return self.messages[message_id]

    async def _followup(self, request: web.Request) -> web.StreamResponse:
        state = self._webhook_state(request)
        data: Json = request[BODY] or {}
        if state.loading and state.original_id in self.messages:
            message = self.messages[state.original_id]  # the first follow-up fills a thinking defer
            self._fill(message, data, request[FILES])
            await self._publish_edit(message)
        else:
            message = self._interaction_message(state, data, request[FILES], loading=False)
            await self._publish_new(message)
        state.loading = False
        state.followup_ids.append(int(message["id"]))
        if request.query.get("wait") in ("1", "true", "True"):
            return json_response(message)
        return web.Response(status=204)

    async def _get_webhook_message(self, request: web.Request) -> web.StreamResponse:
        state = self._webhook_state(request)
        return json_response(self._webhook_message(request, state))

    async def _edit_webhook_message(self, request: web.Request) -> web.StreamResponse:
        state = self._webhook_state(request)
        message = self._webhook_message(request, state)
        self._fill(message, request[BODY] or {}, request[FILES])
        if int(message["id"]) == state.original_id:
            state.loading = False
        await self._publish_edit(message)
        return json_response(message)

    async def _delete_webhook_message(self, request: web.Request) -> web.StreamResponse:
        state = self._webhook_state(request)
        message = self._webhook_message(request, state)
        ephemeral = bool(int(message.get("flags", 0)) & EPHEMERAL)
        payload = self.message_delete(int(message["id"]))
        if not ephemeral:
            await self._broadcast("MESSAGE_DELETE", payload)
        return web.Response(status=204)

    def _fill(self, message: Json, data: Json, files: list[Upload]) -> None:
        channel = self.channels[int(message["channel_id"])]
        self._apply_edit(message, data, files, channel)
        message["flags"] = int(message.get("flags", 0)) & ~LOADING

    async def _publish_new(self, message: Json) -> None:
        if not int(message.get("flags", 0)) & EPHEMERAL:
            await self._broadcast("MESSAGE_CREATE", self._gateway_form(message))

    async def _publish_edit(self, message: Json) -> None:
        if not int(message.get("flags", 0)) & EPHEMERAL:
            await self._broadcast("MESSAGE_UPDATE", self._gateway_form(message))

    # ------------------------------------------------------------------ message model

    def _new_message(
        self,
        channel: FakeChannel,
        author: FakeUser,
        content: str,
        *,
        kind: int = DEFAULT_MESSAGE,
        attachments: list[Json] | None = None,
        embeds: list[Json] | None = None,
        components: list[Json] | None = None,
        flags: int = 0,
        tts: bool = False,
    ) -> Json:
        message_id = self._snowflake()
        message: Json = {
            "id": str(message_id),
            "type": kind,
            "channel_id": str(channel.id),
            "author": author.payload(),
            "content": content,
            "timestamp": iso_time(message_id),
            "edited_timestamp": None,
            "tts": tts,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": attachments or [],
            "embeds": embeds or [],
            "components": components or [],
            "pinned": False,
            "flags": flags,
        }
        if channel.is_thread:
            message["position"] = channel.message_count
        return message

    def _store(self, message: Json) -> None:
        message_id = int(message["id"])
        self.messages[message_id] = message
        if int(message.get("flags", 0)) & EPHEMERAL:
            return
        channel = self.channels[int(message["channel_id"])]
        self._history[channel.id].append(message_id)
        channel.last_message_id = message_id
        if channel.is_thread:
            channel.message_count += 1

    def _unstore(self, message_id: int) -> Json:
        message = self.messages.pop(message_id)
        history = self._history.get(int(message["channel_id"]), [])
        if message_id in history:
            history.remove(message_id)
        return message

    def _gateway_form(self, message: Json) -> Json:
        """The stored (REST) message as the gateway sends it: plus guild_id and the author's member."""
        payload = dict(message)
        channel = self.channels.get(int(message["channel_id"]))
        if channel is not None and channel.guild is not None:
            payload["guild_id"] = str(channel.guild.id)
            member = channel.guild.member(int(message["author"]["id"]))
            if member is not None and "webhook_id" not in message:
                payload["member"] = member.payload(with_user=False)
        return payload

    def _set_mentions(
        self,
        message: Json,
        content: str,
        *,
        allowed: Json | None,
        extra_users: Iterable[FakeUser] = (),
        extra_roles: Iterable[FakeRole] = (),
    ) -> None:
        user_ids = _unique(int(i) for i in re.findall(r"<@!?(\d+)>", content))
        role_ids = _unique(int(i) for i in re.findall(r"<@&(\d+)>", content))
        everyone = "@everyone" in content or "@here" in content
        if allowed is not None:
            parse = set(allowed.get("parse") or [])
            listed_users = {int(i) for i in allowed.get("users") or []}
            listed_roles = {int(i) for i in allowed.get("roles") or []}
            user_ids = [i for i in user_ids if "users" in parse or i in listed_users]
            role_ids = [i for i in role_ids if "roles" in parse or i in listed_roles]
            everyone = everyone and "everyone" in parse
        user_ids = _unique([*user_ids, *(user.id for user in extra_users)])
        role_ids = _unique([*role_ids, *(role.id for role in extra_roles)])
        message["mentions"] = [self.users[i].payload() for i in user_ids if i in self.users]
        message["mention_roles"] = [str(i) for i in role_ids]
        message["mention_everyone"] = everyone

    def _set_reply(self, message: Json, reference: Json, channel: FakeChannel, *, ping: bool) -> None:
        target = self.messages.get(_int(str(reference.get("message_id"))))
        if target is None:
            if reference.get("fail_if_not_exists") is False:
                return
            raise form_error(["message_reference"], "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
        if target["channel_id"] != str(channel.id):
            raise form_error(
                ["message_reference"],
                "REPLIES_CANNOT_REFERENCE_OTHER_CHANNEL",
                "Cannot reply to a message in a different channel",
            )
        message["type"] = REPLY
        message["message_reference"] = {
            "type": 0,
            "message_id": target["id"],
            "channel_id": target["channel_id"],
        }
        if channel.guild is not None:
            message["message_reference"]["guild_id"] = str(channel.guild.id)
        message["referenced_message"] = {k: v for k, v in target.items() if k != "referenced_message"}
        author = target["author"]
        if ping and all(user["id"] != author["id"] for user in message["mentions"]):
            message["mentions"].append(author)

    def _apply_edit(self, message: Json, data: Json, files: list[Upload], channel: FakeChannel) -> None:
        if "content" in data:
            message["content"] = str(data["content"] or "")
            self._set_mentions(message, message["content"], allowed=data.get("allowed_mentions"))
        for key in ("embeds", "components"):
            if key in data:
                message[key] = list(data[key] or [])
        if "flags" in data and data["flags"] is not None:
            keep = int(message.get("flags", 0)) & ~SUPPRESS_EMBEDS
            message["flags"] = keep | (int(data["flags"]) & SUPPRESS_EMBEDS)
        if "attachments" in data or files:
            message["attachments"] = self._attachments_from(
                data, files, channel, existing=message["attachments"]
            )
        message["edited_timestamp"] = iso_time(self._snowflake())
        _validate(message)

    def _attachments_from(
        self, data: Json, files: list[Upload], channel: FakeChannel, *, existing: list[Json]
    ) -> list[Json]:
        """Discord's rule: `attachments` lists what the message keeps (existing ids) and what it
        gains (upload indexes, `files[n]`); absent, existing ones stay and every upload is added."""
        uploads = {int(m.group(1)): f for f in files if (m := re.fullmatch(r"files\[(\d+)\]", f.field))}
        by_id = {a["id"]: a for a in existing}
        listed = data.get("attachments")
        if listed is None:
            listed = [*existing, *({"id": index} for index in sorted(uploads))]
        result = []
        for entry in listed:
            key = str(entry.get("id"))
            if key in by_id:
                result.append(by_id[key])
            elif key.isdigit() and int(key) in uploads:
                upload = uploads[int(key)]
                filename = entry.get("filename") or upload.filename
                kind = mimetypes.guess_type(filename)[0] or upload.content_type
                result.append(
                    self.attachment(
                        filename,
                        upload.data,
                        content_type=kind,
                        description=entry.get("description"),
                        channel=channel,
                    )
                )
        return result


# ---------------------------------------------------------------------------- helpers


def default_guild_list(guilds: Sequence[FakeGuild] | None) -> list[FakeGuild]:
    return list(guilds) if guilds is not None else [default_guild()]


async def _read_body(request: web.Request) -> tuple[Any, list[Upload]]:
    """Parsed JSON, or for multipart the `payload_json` part plus every file part."""
    if not request.body_exists:
        return None, []
    if request.content_type == "multipart/form-data":
        body: Any = None
        files: list[Upload] = []
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            data = bytes(await part.read())
            if part.name == "payload_json":
                body = json.loads(data)
            else:
                kind = part.headers.get(hdrs.CONTENT_TYPE, "application/octet-stream")
                files.append(Upload(part.name or "", part.filename or "", kind, data))
        return body, files
    raw = await request.read()
    if not raw:
        return None, []
    if request.content_type == "application/json":
        return json.loads(raw), []
    return raw.decode(errors="replace"), []


def _validate(message: Json) -> None:
    if len(message["content"]) > MAX_CONTENT:
        raise form_error(["content"], "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length.")
    if len(message["embeds"]) > 10:
        raise form_error(["embeds"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    for index, embed in enumerate(message["embeds"]):
        if len(str(embed.get("description") or "")) > 4096:
            raise form_error(
                ["embeds", index, "description"], "BASE_TYPE_MAX_LENGTH", "Must be 4096 or fewer in length."
            )
    filled = message["content"] or message["embeds"] or message["attachments"] or message["components"]
    if not filled and not int(message.get("flags", 0)) & LOADING and message["type"] != THREAD_CREATED:
        raise DiscordError(400, 50006, "Cannot send an empty message")


def _validate_commands(commands: list[Json]) -> None:
    seen: set[tuple[str, int]] = set()
    for index, command in enumerate(commands):
        kind = int(command.get("type", 1))
        name = str(command.get("name", ""))
        if kind == 1:
            _validate_option_like(command, [index])
        elif not 1 <= len(name) <= 32:
            raise form_error([index, "name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
        if (name, kind) in seen:
            raise form_error(
                [index, "name"],
                "APPLICATION_COMMANDS_DUPLICATE_NAME",
                f"Application command names must be unique: {name}",
            )
        seen.add((name, kind))


def _validate_option_like(item: Json, path: list[str | int]) -> None:
    name = str(item.get("name", ""))
    if not re.fullmatch(r"[-_\w]{1,32}", name) or name != name.lower():
        raise form_error(
            [*path, "name"], "APPLICATION_COMMAND_INVALID_NAME", f"Command name is invalid: {name!r}"
        )
    if not 1 <= len(str(item.get("description", ""))) <= 100:
        raise form_error(
            [*path, "description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
        )
    options = item.get("options") or []
    if len(options) > 25:
        raise form_error([*path, "options"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    optional_seen = False
    for index, option in enumerate(options):
        _validate_option_like(option, [*path, "options", index])
        if option.get("type") in (1, 2):
            continue
        if option.get("required") and optional_seen:
            raise form_error(
                [*path, "options", index, "required"],
                "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                "Required options must be placed before non-required options",
            )
        optional_seen = optional_seen or not option.get("required")


def _schema_at(command: Json | None, path: Sequence[str]) -> dict[str, Json]:
    """The leaf options (by name) of `command` after walking the subcommand `path`."""
    options: list[Json] = (command or {}).get("options") or []
    for name in path:
        options = next((o.get("options") or [] for o in options if o["name"] == name), [])
    return {o["name"]: o for o in options if o.get("type") not in (1, 2)}


def _nest_options(path: Sequence[str], leaf: list[Json], command: Json | None) -> list[Json]:
    if not path:
        return leaf
    kinds: list[int] = []
    options: list[Json] = (command or {}).get("options") or []
    for name in path:
        option = next((o for o in options if o["name"] == name), None)
        kinds.append(int(option["type"]) if option else 0)
        options = (option or {}).get("options") or []
    if 0 in kinds:  # no schema: the last name is the subcommand, any before it are groups
        kinds = [2] * (len(path) - 1) + [1]
    nested = leaf
    for name, kind in reversed(list(zip(path, kinds, strict=True))):
        nested = [{"name": name, "type": kind, "options": nested}]
    return nested


def shard_of(guild_id: int, shard_count: int) -> int:
    """Discord's rule: a guild's events go to shard `(guild_id >> 22) % shard_count`."""
    return (guild_id >> 22) % shard_count


def _on_shard(shard: tuple[int, int], guild_id: int | None) -> bool:
    """Whether a session holding `shard` receives an event of `guild_id` (None: DMs and events
    of no guild, which Discord sends to shard 0 only)."""
    shard_id, shard_count = shard
    return shard_id == (0 if guild_id is None else shard_of(guild_id, shard_count))


def _guild_of(event: str, payload: Json) -> int | None:
    raw = payload.get("guild_id")
    if raw is None and event.startswith("GUILD_") and "id" in payload:
        raw = payload["id"]  # GUILD_CREATE / GUILD_UPDATE carry the guild itself
    return None if raw is None else int(raw)


def _shard_of_identify(raw: Any) -> tuple[int, int] | None:
    """IDENTIFY's optional `shard: [id, count]`; None when Discord would refuse it (4010)."""
    if raw is None:
        return (0, 1)
    if not (isinstance(raw, list) and len(raw) == 2 and all(isinstance(n, int) for n in raw)):
        return None
    shard_id, shard_count = raw
    return (shard_id, shard_count) if 0 <= shard_id < shard_count else None


def _option_type(value: Any) -> int:
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 10
    if isinstance(value, FakeUser):
        return 6
    if isinstance(value, FakeChannel):
        return 7
    if isinstance(value, FakeRole):
        return 8
    if isinstance(value, dict):
        return 11
    return 3


def _thread_name(body: Json) -> str:
    name = str(body.get("name") or "")
    if not 1 <= len(name) <= 100:
        raise form_error(["name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    return name


def _unique(values: Iterable[int]) -> list[int]:
    return list(dict.fromkeys(values))


def _int(text: str) -> int:
    return int(text) if text.isdigit() else -1


# ---------------------------------------------------------------------------- running a client


@asynccontextmanager
async def run_client(
    client: discord.Client,
    fake: FakeDiscord,
    *,
    timeout: float = 10.0,
) -> AsyncIterator[discord.Client]:
    """Log `client` in to `fake`, connect it and wait for on_ready; close it and wait for its
    connection task afterwards. discord.py must already point at the fake (the `fake_discord`
    fixture or `bots.discord.endpoints.discord_endpoints`)."""
    connect: asyncio.Task[None] | None = None
    ready: asyncio.Task[None] | None = None
    try:
        await client.login(fake.token)
        connect = asyncio.create_task(client.connect(), name="discord.py connect")
        ready = asyncio.create_task(client.wait_until_ready(), name="discord.py ready")
        done, _ = await asyncio.wait({connect, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if connect in done:
            connect.result()  # the client's own error, if it failed to connect
            raise RuntimeError("discord.py stopped before it was ready")
        if ready not in done:
            raise TimeoutError(f"discord.py was not ready within {timeout}s")
        yield client
    finally:
        for task in (ready,):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await client.close()
        if connect is not None:
            await asyncio.wait_for(connect, timeout)
