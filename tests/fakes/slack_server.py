"""A loopback fake of Slack — Web API, Socket Mode and file hosting — for the real slack-bolt app.

One aiohttp server on 127.0.0.1:0 plays every Slack host the bot talks to::

    POST/GET /api/{method}             the Web API     AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
    GET      /link/?ticket=…           Socket Mode     URL handed out by apps.connections.open (app token)
    GET      /files-pri/{team}-{id}/…  url_private     bearer token required, else a 200 HTML sign-in page
    POST     /upload/v1/{id}           files_upload_v2 step 2
    POST     /commands/…, /actions/…   response_url    bolt's `respond()`

Usage::

    async with FakeSlack(team_id="T1", users=[SlackUser("U1", "alice")], channels=[SlackChannel("C1", "general")]) as fake:
        client = fake.client()                                    # AsyncWebClient on the fake
        app = AsyncApp(client=client)                             # bolt: pass the client, not token=
        handler = AsyncSocketModeHandler(app, app_token=fake.app_token, web_client=client)
        await handler.connect_async()
        ack = await fake.send_event(fake.app_mention("C1", "U1", "hi"))
        [call] = await fake.wait_for(lambda c: c.method == "chat.postMessage")
        await handler.close_async()                               # before the fake closes

The world (`users`, `channels`, `usergroups`) is in memory; the bot is user `bot_user_id`
(bot `bot_id`) and a member of every channel unless the channel lists its `members`. Messages
carry ts, thread_ts, reply_count/reply_users/latest_reply on parents, parent_user_id on replies,
blocks, files and metadata (stored by chat.postMessage/chat.update/chat.stopStream, returned by
conversations.history/replies only with include_all_metadata).

Recording: every request is a `Call` (method, parsed args, lower-cased headers, token, loop
time) in `fake.calls`; `await fake.wait_for(pred, count=2, timeout=5)` returns the first `count`
matching calls. Web API calls are named by method ("chat.update"); the other hosts record as
"url_private", "upload" and "response_url".

Faults:
- `fake.fail_next("chat.postMessage", error="ratelimited", retry_after=1)`: the next call gets
  HTTP 429 with `Retry-After: 1` and `{"ok": false, "error": "ratelimited"}`, as Slack sends it.
  Any other error is HTTP 200 with `ok: false` unless `status=` says otherwise; `times=` repeats.
- `fake.disable_streaming("unknown_method")` (or "not_allowed_token_type", "missing_scope"...):
  chat.startStream/appendStream/stopStream all answer that error from then on.
  `enable_streaming()` undoes it. `fake.expire_stream(channel, ts)`: the stream is over, the
  next append/stop answers `message_not_in_streaming_state` (Slack ends streams after minutes).
- Limits that real Slack enforces: text over 40,000 characters → `msg_too_long`; a streaming
  `markdown_text` over 12,000 → `msg_too_long` (the documented limit; the exact error name Slack
  uses there is an assumption); blocks → `invalid_blocks` (more than 50, section text over
  3,000, markdown blocks over 12,000 in total, button text over 75, value over 2,000).
- Streams into anything but a DM need `recipient_user_id` and `recipient_team_id`
  (`missing_recipient_user_id` / `missing_recipient_team_id`).
- An unimplemented method answers `unknown_method` (HTTP 200, `req_method` echoed).

Rate limits: `FakeSlack(limits=SlackLimits())` holds each Web API method to its documented tier
floor for the workspace (a sliding window per method: Tier 2 20/min for chat.startStream and
chat.stopStream, Tier 3 50/min for chat.update, chat.delete, conversations.history and
conversations.replies, Tier 4 100/min for chat.appendStream, chat.postEphemeral and users.info)
and chat.postMessage to one message per second per channel ("special" tier; Slack allows short
bursts, the fake does not). Past a limit: HTTP 429, `Retry-After` in whole seconds and
`{"ok": false, "error": "ratelimited"}`, recorded in `fake.rate_limited` as (time, method).

Socket Mode: the socket sends `hello`, then `await fake.send_event(event)`,
`send_slash_command(...)` and `send_interaction(payload)` push an envelope and return the app's
`Ack` (envelope_id, payload) or raise TimeoutError. bolt acks nothing it did not handle (no
listener matched → no ack), so `push(...)` sends without waiting and `ack_for(id)` waits
later. `disconnect_socket()` sends Slack's `disconnect` message (the SDK reconnects through
apps.connections.open).

HTTP mode: `await fake.post_signed(app_url, fake.http_event(event), secret)` POSTs a request
signed as Slack signs it (`v0=` HMAC-SHA256 of `v0:{timestamp}:{body}` in X-Slack-Signature,
X-Slack-Request-Timestamp); `forge=True` signs with the wrong secret, `stale=True` uses a
timestamp six minutes old. Bodies: `http_event` (JSON), `http_slash_command` (form),
`http_interaction` (form `payload=`), `http_url_verification`.

Builders store the message in the fake (so conversations.replies sees it) and return the event
as Slack would deliver it: `app_mention`, `message` (channel, thread or DM — channel_type comes
from the channel), `bot_message`, `file_share` (with `image_file(...)`, served at url_private),
`message_changed`, `message_deleted`, `event_for` (any stored message, e.g. the bot's own),
`button_press` (a block_actions payload for a button on a stored message),
`view_submission` (a modal opened with views.open — trigger id used once, within three
seconds, and the view checked as Slack checks it — submitted with values) and
`message_shortcut` (a message_action payload: a message shortcut chosen on a stored message).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import math
import mimetypes
import re
import struct
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

import aiohttp
from aiohttp import WSMsgType, web

Json = dict[str, Any]
Kind = Literal["public", "private", "im", "mpim"]

BOT_TOKEN = "xoxb-fake-bot-token"
APP_TOKEN = "xapp-1-fake-app-token"
VERIFICATION_TOKEN = "fake-verification-token"
SCOPES = (
    "app_mentions:read,channels:history,groups:history,im:history,mpim:history,chat:write,commands,"
    "users:read,usergroups:read,files:read,files:write,im:write"
)
STREAM_METHODS = frozenset({"chat.startStream", "chat.appendStream", "chat.stopStream"})
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
JSON_ARGS = ("blocks", "attachments", "metadata", "chunks", "files", "unfurls", "view")
# A trigger id is good for one views.open within three seconds of the interaction.
TRIGGER_SECONDS = 3.0
TEXT_LIMIT = 40_000
MARKDOWN_LIMIT = 12_000
MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
SIGN_IN_PAGE = "<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to Slack</body></html>"


# ---------------------------------------------------------------------- the world


@dataclass
class SlackUser:
    id: str
    name: str
    real_name: str = ""
    display_name: str = ""
    is_admin: bool = False
    is_owner: bool = False
    is_primary_owner: bool = False
    is_restricted: bool = False  # a guest
    is_bot: bool = False
    bot_id: str = ""
    deleted: bool = False


@dataclass
class SlackChannel:
    id: str
    name: str = ""
    kind: Kind = "public"
    members: list[str] | None = None  # None: everyone, the bot included
    user: str = ""  # for a DM: the person on the other side
    is_archived: bool = False
    topic: str = ""

    @property
    def channel_type(self) -> str:
        """The `channel_type` of message events: channel, group, im or mpim."""
        return {"public": "channel", "private": "group", "im": "im", "mpim": "mpim"}[self.kind]


@dataclass(frozen=True)
class Call:
    """One request the fake received."""

    method: str  # "chat.postMessage", or "url_private" / "upload" / "response_url"
    args: Json
    headers: dict[str, str]
    token: str
    at: float  # loop.time()
    http_method: str = "POST"


@dataclass(frozen=True)
class Ack:
    """The app's answer to one Socket Mode envelope."""

    envelope_id: str
    payload: Json | None
    at: float


@dataclass(frozen=True)
class HttpBody:
    """A request body as Slack sends it to an HTTP-mode app."""

    text: str
    content_type: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HttpReply:
    status: int
    text: str
    headers: Mapping[str, str]

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass(frozen=True)
class SlackLimits:
    """Requests per minute by method: the documented tier floors (see the module docstring)."""

    per_minute: Mapping[str, int] = field(
        default_factory=lambda: {
            "chat.startStream": 20,
            "chat.stopStream": 20,
            "chat.update": 50,
            "chat.delete": 50,
            "conversations.history": 50,
            "conversations.replies": 50,
            "chat.appendStream": 100,
            "chat.postEphemeral": 100,
            "users.info": 100,
        }
    )
    post_message_per_channel_seconds: float = 1.0

    def window(self, method: str) -> tuple[int, float] | None:
        """(limit, seconds) for `method`, or None when the fake leaves it unlimited."""
        if method == "chat.postMessage":
            return (1, self.post_message_per_channel_seconds)
        limit = self.per_minute.get(method)
        return None if limit is None else (limit, 60.0)


@dataclass
class _Fault:
    error: str
    status: int
    retry_after: int | None
    times: int


class SlackError(Exception):
    """An `ok: false` answer."""

    def __init__(
        self, error: str, *, status: int = 200, headers: Mapping[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.headers = dict(headers or {})
        self.extra = extra

    def response(self) -> web.Response:
        body = {"ok": False, "error": self.error, **self.extra}
        return web.json_response(body, status=self.status, headers={**self.headers, "x-oauth-scopes": SCOPES})


class _Args:
    """A request's arguments, whatever the encoding (query, form, JSON)."""

    def __init__(self, raw: Json) -> None:
        self.raw = raw

    def text(self, key: str, default: str = "") -> str:
        value = self.raw.get(key)
        return default if value is None else str(value)

    def need(self, key: str) -> str:
        value = self.text(key)
        if not value:
            raise SlackError(
                "invalid_arguments",
                response_metadata={"messages": [f"[ERROR] missing required field: {key}"]},
            )
        return value

    def flag(self, key: str) -> bool:
        return self.raw.get(key) in (True, 1, "1", "true", "True")

    def number(self, key: str, default: int) -> int:
        try:
            return int(self.raw.get(key) or default)
        except (TypeError, ValueError):
            raise SlackError("invalid_arguments") from None

    def objects(self, key: str) -> list[Json] | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise SlackError(f"invalid_{key}_format" if key == "blocks" else "invalid_arguments")
        return value


# ---------------------------------------------------------------------- the fake


class FakeSlack:
    """`async with FakeSlack(...) as fake:` — see the module docstring."""

    def __init__(
        self,
        team_id: str = "T1",
        users: Iterable[SlackUser] | None = None,
        channels: Iterable[SlackChannel] | None = None,
        usergroups: Mapping[str, Sequence[str]] | None = None,
        *,
        team_name: str = "Fake Team",
        team_domain: str = "fake",
        bot_user_id: str = "UBOT",
        bot_id: str = "B0BOT",
        bot_name: str = "ember",
        app_id: str = "A0EMBER",
        bot_token: str = BOT_TOKEN,
        app_token: str = APP_TOKEN,
        limits: SlackLimits | None = None,
    ) -> None:
        self.team_id, self.team_name, self.team_domain = team_id, team_name, team_domain
        self.bot_user_id, self.bot_id, self.bot_name, self.app_id = bot_user_id, bot_id, bot_name, app_id
        self.bot_token, self.app_token = bot_token, app_token
        default_users = [
            SlackUser("U1", "alice", real_name="Alice Liddell", display_name="alice"),
            SlackUser("U2", "bob", real_name="Bob Admin", is_admin=True),
        ]
        bot = SlackUser(bot_user_id, bot_name, real_name=bot_name, is_bot=True, bot_id=bot_id)
        self.users: dict[str, SlackUser] = {
            u.id: u for u in [bot, *(default_users if users is None else users)]
        }
        self.channels: dict[str, SlackChannel] = {
            c.id: c for c in (channels if channels is not None else [SlackChannel("C1", "general")])
        }
        self.usergroups: dict[str, list[str]] = {k: list(v) for k, v in (usergroups or {}).items()}
        self.url = ""
        self.calls: list[Call] = []
        self.acks: list[Ack] = []
        self.envelopes: list[Json] = []  # every Socket Mode envelope sent
        self.ephemerals: list[Json] = []  # chat.postEphemeral and ephemeral response_url answers
        self.files: dict[str, Json] = {}  # file id → file object
        self.file_bytes: dict[str, bytes] = {}
        self.streaming_error: str | None = None
        self._messages: dict[str, list[Json]] = {}
        self._live_streams: set[tuple[str, str]] = set()
        self._faults: dict[str, deque[_Fault]] = {}
        self.limits = limits
        self._sent: dict[str, list[float]] = {}
        self.rate_limited: list[tuple[float, str]] = []  # (loop time, method) of every 429 answered
        self._sockets: list[web.WebSocketResponse] = []
        self._tickets: set[str] = set()
        self._response_urls: dict[str, Json] = {}
        self._triggers: dict[str, float] = {}  # trigger id → monotonic time it was issued
        self.views: dict[str, Json] = {}  # view id → the view as opened (views.open)
        self._uploads: dict[str, bytes] = {}
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._last_micros = 0
        self._serial = 0
        self._methods: dict[str, Callable[[_Args], Json]] = {
            "auth.test": self._auth_test,
            "apps.connections.open": self._connections_open,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.delete": self._delete,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.startStream": self._start_stream,
            "chat.appendStream": self._append_stream,
            "chat.stopStream": self._stop_stream,
            "conversations.info": self._conversation_info,
            "conversations.history": self._history,
            "conversations.replies": self._replies,
            "conversations.open": self._open,
            "users.info": self._user_info,
            "usergroups.users.list": self._usergroup_users,
            "files.getUploadURLExternal": self._upload_url,
            "files.completeUploadExternal": self._complete_upload,
            "views.open": self._open_view,
        }

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/link/", self._socket)
        app.router.add_get("/files-pri/{tail:.+}", self._download)
        app.router.add_post("/upload/v1/{file_id}", self._upload)
        app.router.add_post("/{kind:commands|actions}/{team}/{serial}/{key}", self._respond)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close sockets still open, then stop serving. Close the app's handler first: a Socket
        Mode client that loses its socket tries to reconnect. Safe to call twice."""
        for ws in list(self._sockets):
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"fake slack closing")
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    @property
    def api_url(self) -> str:
        """The `base_url` for AsyncWebClient (the trailing slash matters: the SDK appends the method)."""
        return f"{self.url}/api/"

    def client(self, **kwargs: Any) -> Any:
        """A real `AsyncWebClient` with the bot token, pointed at this fake."""
        from slack_sdk.web.async_client import AsyncWebClient

        return AsyncWebClient(token=self.bot_token, base_url=self.api_url, **kwargs)

    @property
    def mention(self) -> str:
        """How people mention the bot in message text."""
        return f"<@{self.bot_user_id}>"

    # ------------------------------------------------------------------ recording

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    async def wait_for(
        self, predicate: Callable[[Call], bool], count: int = 1, timeout: float = 5.0
    ) -> list[Call]:
        """The first `count` recorded calls matching `predicate`, once they have arrived."""

        def matching() -> list[Call]:
            return [call for call in self.calls if predicate(call)]

        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: len(matching()) >= count)
        except TimeoutError:
            seen = ", ".join(call.method for call in self.calls) or "none"
            raise TimeoutError(
                f"{len(matching())} of {count} matching calls after {timeout}s; calls: {seen}"
            ) from None
        return matching()[:count]

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    # ------------------------------------------------------------------ faults

    def fail_next(
        self,
        method: str,
        error: str = "ratelimited",
        *,
        status: int | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` calls of `method` fail. `ratelimited` defaults to HTTP 429 with a
        Retry-After header (1 unless given), as Slack sends it; other errors to HTTP 200."""
        if status is None:
            status = 429 if error == "ratelimited" else 200
        if status == 429 and retry_after is None:
            retry_after = 1
        self._faults.setdefault(method, deque()).append(_Fault(error, status, retry_after, times))

    def disable_streaming(self, error: str = "unknown_method") -> None:
        """chat.startStream/appendStream/stopStream answer `error` until enabled again."""
        self.streaming_error = error

    def enable_streaming(self) -> None:
        self.streaming_error = None

    def expire_stream(self, channel: str, ts: str) -> None:
        """Slack has ended this stream: appends and stops now fail."""
        self._live_streams.discard((channel, ts))

    def is_streaming(self, channel: str, ts: str) -> bool:
        return (channel, ts) in self._live_streams

    def _take_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.popleft()
        return fault

    # ------------------------------------------------------------------ the model

    def channel(self, channel_id: str) -> SlackChannel:
        found = self.channels.get(channel_id)
        if found is None:
            raise SlackError("channel_not_found")
        return found

    def messages(self, channel: str) -> list[Json]:
        """Every stored message of a channel (thread replies too), oldest first."""
        return list(self._messages.get(channel, []))

    def stored(self, channel: str, ts: str) -> Json:
        """The stored message `ts` of a channel (live: later changes show)."""
        for stored in self._messages.get(channel, []):
            if stored["ts"] == ts:
                return stored
        raise KeyError(f"no message {ts} in {channel}")

    def thread(self, channel: str, ts: str) -> list[Json]:
        """A thread's parent and replies, oldest first."""
        return [m for m in self._messages.get(channel, []) if m["ts"] == ts or m.get("thread_ts") == ts]

    def dm(self, user_id: str) -> str:
        """The id of the bot's DM with `user_id`, opening it if needed."""
        for channel in self.channels.values():
            if channel.kind == "im" and channel.user == user_id:
                return channel.id
        channel = SlackChannel(f"D{user_id}", kind="im", user=user_id, members=[user_id, self.bot_user_id])
        self.channels[channel.id] = channel
        return channel.id

    def _is_member(self, channel: SlackChannel, user_id: str) -> bool:
        return channel.members is None or user_id in channel.members

    def _new_ts(self) -> str:
        micros = max(int(time.time() * 1_000_000), self._last_micros + 1)
        self._last_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial

    def _store(self, channel: str, message: Json) -> Json:
        """Keep a message in its channel; a reply updates its parent's thread fields."""
        thread_ts = message.get("thread_ts")
        if thread_ts and thread_ts != message["ts"]:
            try:
                parent = self.stored(channel, thread_ts)
            except KeyError:
                parent = None
            if parent is not None:
                message.setdefault("parent_user_id", parent.get("user") or parent.get("bot_id") or "")
                parent["thread_ts"] = thread_ts
                parent["reply_count"] = int(parent.get("reply_count") or 0) + 1
                speaker = message.get("user") or message.get("bot_id") or ""
                reply_users = list(parent.get("reply_users") or [])
                if speaker and speaker not in reply_users:
                    reply_users.append(speaker)
                parent["reply_users"], parent["reply_users_count"] = reply_users, len(reply_users)
                parent["latest_reply"] = message["ts"]
        self._messages.setdefault(channel, []).append(message)
        return message

    def _bot_message(self, text: str, blocks: list[Json] | None = None) -> Json:
        message: Json = {
            "type": "message",
            "text": text,
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "ts": self._new_ts(),
            "team": self.team_id,
            "bot_profile": {
                "id": self.bot_id,
                "app_id": self.app_id,
                "name": self.bot_name,
                "icons": {"image_48": f"https://avatars.slack-edge.com/{self.bot_id}_48.png"},
                "deleted": False,
                "updated": 1_700_000_000,
                "team_id": self.team_id,
            },
        }
        if blocks is not None:
            message["blocks"] = blocks
        return message

    # ------------------------------------------------------------------ event builders

    def app_mention(self, channel: str, user: str, text: str, *, thread_ts: str | None = None) -> Json:
        """A person mentions the bot (the mention is put in front of `text` unless it is there).
        Stores the message; returns the `app_mention` event. Slack also sends the matching
        `message` event: `event_for(channel, event["ts"])`."""
        if self.mention not in text:
            text = f"{self.mention} {text}"
        stored = self._user_message(channel, user, text, thread_ts=thread_ts)
        event = {
            k: stored[k] for k in ("user", "text", "ts", "client_msg_id", "team", "blocks") if k in stored
        }
        event.update(type="app_mention", channel=channel, event_ts=stored["ts"])
        for key in ("thread_ts", "parent_user_id"):
            if key in stored:
                event[key] = stored[key]
        return event

    def message(self, channel: str, user: str, text: str, *, thread_ts: str | None = None) -> Json:
        """A person's message in a channel, a thread or a DM (`dm(user)` gives the DM's id)."""
        return self.event_for(channel, self._user_message(channel, user, text, thread_ts=thread_ts)["ts"])

    def bot_message(
        self,
        channel: str,
        text: str,
        *,
        bot_id: str = "B0OTHER",
        user: str = "",
        username: str = "otherbot",
        thread_ts: str | None = None,
        legacy: bool = False,
    ) -> Json:
        """Another bot speaks: an app's bot user (`user` set, `bot_id` and `bot_profile`), or with
        `legacy=True` a `bot_message` subtype (webhooks, legacy bots) carrying `username`."""
        message: Json = {
            "type": "message",
            "text": text,
            "ts": self._new_ts(),
            "bot_id": bot_id,
            "team": self.team_id,
        }
        if legacy:
            message.update(subtype="bot_message", username=username)
        else:
            message["app_id"] = f"A{bot_id}"
            message["bot_profile"] = {
                "id": bot_id,
                "name": username,
                "app_id": f"A{bot_id}",
                "team_id": self.team_id,
            }
        if user:
            message["user"] = user
        if thread_ts:
            message["thread_ts"] = thread_ts
        self._store(channel, message)
        return self.event_for(channel, message["ts"])

    def image_file(
        self,
        name: str = "picture.png",
        data: bytes | None = None,
        *,
        mimetype: str | None = None,
        user: str = "U1",
        width: int = 1,
        height: int = 1,
    ) -> Json:
        """A file object for an uploaded image, its bytes served at `url_private` (a 1×1 PNG by
        default). Pass it to `file_share`."""
        blob = tiny_png() if data is None else data
        media_type = mimetype or mimetypes.guess_type(name)[0] or "application/octet-stream"
        file_id = f"F{self._next_serial():08d}"
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else "binary"
        now = int(time.time())
        obj: Json = {
            "id": file_id,
            "created": now,
            "timestamp": now,
            "name": name,
            "title": name,
            "mimetype": media_type,
            "filetype": extension,
            "pretty_type": extension.upper(),
            "user": user,
            "user_team": self.team_id,
            "editable": False,
            "size": len(blob),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": True,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": f"{self.url}/files-pri/{self.team_id}-{file_id}/{name}",
            "url_private_download": f"{self.url}/files-pri/{self.team_id}-{file_id}/download/{name}",
            "permalink": f"https://{self.team_domain}.slack.com/files/{user}/{file_id}/{name}",
            "original_w": width,
            "original_h": height,
            "has_rich_preview": False,
            "file_access": "visible",
        }
        self.files[file_id] = obj
        self.file_bytes[file_id] = blob
        return obj

    def file_share(
        self, channel: str, user: str, text: str, files: Sequence[Json], *, thread_ts: str | None = None
    ) -> Json:
        """A person shares files (see `image_file`) with a message: subtype `file_share`."""
        stored = self._user_message(channel, user, text, thread_ts=thread_ts)
        stored.update(
            subtype="file_share", files=[dict(f) for f in files], upload=False, display_as_bot=False
        )
        return self.event_for(channel, stored["ts"])

    def message_changed(self, channel: str, ts: str, text: str) -> Json:
        """A person edits a stored message: the store changes, the `message_changed` event returns."""
        stored = self.stored(channel, ts)
        previous = dict(stored)
        event_ts = self._new_ts()
        stored["text"] = text
        stored["blocks"] = rich_text_blocks(text)
        stored["edited"] = {"user": stored.get("user", ""), "ts": event_ts}
        return {
            "type": "message",
            "subtype": "message_changed",
            "message": _public(stored),
            "previous_message": _public(previous),
            "channel": channel,
            "hidden": True,
            "ts": event_ts,
            "event_ts": event_ts,
            "channel_type": self.channel(channel).channel_type,
        }

    def message_deleted(self, channel: str, ts: str) -> Json:
        """A stored message is deleted: it leaves the store, the `message_deleted` event returns."""
        stored = self.stored(channel, ts)
        self._messages[channel].remove(stored)
        event_ts = self._new_ts()
        return {
            "type": "message",
            "subtype": "message_deleted",
            "previous_message": _public(stored),
            "channel": channel,
            "hidden": True,
            "deleted_ts": ts,
            "ts": event_ts,
            "event_ts": event_ts,
            "channel_type": self.channel(channel).channel_type,
        }

    def event_for(self, channel: str, ts: str) -> Json:
        """The `message` event of any stored message (a person's, another bot's, the bot's own)."""
        event = _public(self.stored(channel, ts))
        event.update(channel=channel, event_ts=event["ts"], channel_type=self.channel(channel).channel_type)
        return event

    def button_press(
        self, user: str, channel: str, message_ts: str, action_id: str, *, value: str | None = None
    ) -> Json:
        """A `block_actions` payload: `user` presses the button `action_id` on a stored message
        (its block_id, text and value come from the message's blocks when the button is there)."""
        message = self.stored(channel, message_ts)
        button, block_id = _find_button(message.get("blocks") or [], action_id)
        person = self.users.get(user) or SlackUser(user, user)
        action: Json = {
            "action_id": action_id,
            "block_id": block_id or "fake-block",
            "text": button.get("text") or {"type": "plain_text", "text": action_id, "emoji": True},
            "type": "button",
            "action_ts": self._new_ts(),
        }
        if value is not None or "value" in button:
            action["value"] = button.get("value") if value is None else value
        if "style" in button:
            action["style"] = button["style"]
        container: Json = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": False,
        }
        if message.get("thread_ts"):
            container["thread_ts"] = message["thread_ts"]
        return {
            "type": "block_actions",
            "user": {"id": person.id, "username": person.name, "name": person.name, "team_id": self.team_id},
            "api_app_id": self.app_id,
            "token": VERIFICATION_TOKEN,
            "container": container,
            "trigger_id": self._trigger_id(),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": self.channel(channel).name or "directmessage"},
            "message": _public(message),
            "state": {"values": {}},
            "response_url": self._response_url("actions", channel=channel, message_ts=message_ts, user=user),
            "actions": [action],
        }

    def message_shortcut(self, user: str, channel: str, message_ts: str, callback_id: str) -> Json:
        """A `message_action` payload: `user` chooses the message shortcut `callback_id` from
        the "More actions" menu of a stored message (thread replies carry their thread_ts)."""
        message = self.stored(channel, message_ts)
        person = self.users.get(user) or SlackUser(user, user)
        return {
            "type": "message_action",
            "token": VERIFICATION_TOKEN,
            "action_ts": self._new_ts(),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "user": {"id": person.id, "username": person.name, "name": person.name, "team_id": self.team_id},
            "channel": {"id": channel, "name": self.channel(channel).name or "directmessage"},
            "is_enterprise_install": False,
            "enterprise": None,
            "callback_id": callback_id,
            "trigger_id": self._trigger_id(),
            "response_url": self._response_url("actions", channel=channel, message_ts=message_ts, user=user),
            "message_ts": message_ts,
            "message": _public(message),
        }

    def slash_command(
        self, command: str = "/opus", text: str = "", *, user_id: str = "U1", channel_id: str = "C1"
    ) -> dict[str, str]:
        """A slash command's fields, as Slack sends them (form fields over HTTP, the payload in
        Socket Mode); all values are strings."""
        channel = self.channels.get(channel_id)
        person = self.users.get(user_id) or SlackUser(user_id, user_id)
        return {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": "directmessage" if channel is None or channel.kind == "im" else channel.name,
            "user_id": user_id,
            "user_name": person.name,
            "command": command,
            "text": text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": self._response_url("commands", channel=channel_id, user=user_id),
            "trigger_id": self._trigger_id(),
        }

    def event_callback(self, event: Json, *, event_id: str | None = None) -> Json:
        """The Events API envelope (`type: event_callback`) around one event."""
        return {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "context_enterprise_id": None,
            "api_app_id": self.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{self._next_serial():08d}",
            "event_time": int(float(event.get("event_ts") or time.time())),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-fake-{self.team_id}",
        }

    def _user_message(self, channel: str, user: str, text: str, *, thread_ts: str | None) -> Json:
        self.channel(channel)
        message: Json = {
            "type": "message",
            "user": user,
            "text": text,
            "ts": self._new_ts(),
            "client_msg_id": str(uuid.uuid4()),
            "team": self.team_id,
            "blocks": rich_text_blocks(text),
        }
        if thread_ts:
            message["thread_ts"] = thread_ts
        return self._store(channel, message)

    def _trigger_id(self) -> str:
        trigger = f"{self._next_serial()}.{int(time.time())}.{uuid.uuid4().hex[:16]}"
        self._triggers[trigger] = time.monotonic()
        return trigger

    def view_submission(self, user: str, view_id: str, values: Mapping[str, str]) -> Json:
        """A `view_submission` payload: `user` submits the modal `view_id` (opened with
        views.open) with `values` (an input's action_id → what was typed), under each input's
        block id in `view.state.values`, as Slack sends it."""
        view = self.views[view_id]
        person = self.users.get(user) or SlackUser(user, user)
        state: Json = {}
        for block in view.get("blocks") or []:
            element = block.get("element") or {}
            if block.get("type") == "input" and element.get("action_id") in values:
                action_id = element["action_id"]
                state[block["block_id"]] = {
                    action_id: {"type": element.get("type"), "value": values[action_id]}
                }
        return {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": self.team_domain},
            "user": {"id": person.id, "username": person.name, "name": person.name, "team_id": self.team_id},
            "api_app_id": self.app_id,
            "token": VERIFICATION_TOKEN,
            "trigger_id": self._trigger_id(),
            "view": {**view, "state": {"values": state}},
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }

    def _response_url(self, kind: str, **context: str) -> str:
        serial, key = self._next_serial(), uuid.uuid4().hex[:24]
        self._response_urls[key] = dict(context)
        return f"{self.url}/{kind}/{self.team_id}/{serial}/{key}"

    # ------------------------------------------------------------------ Socket Mode

    async def push(
        self,
        kind: str,
        payload: Json,
        *,
        accepts_response_payload: bool = False,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
        timeout: float = 5.0,
    ) -> str:
        """Send one envelope on the newest socket (waiting for one); returns its envelope_id."""
        ws = await self._open_socket(timeout)
        envelope: Json = {
            "envelope_id": str(uuid.uuid4()),
            "payload": payload,
            "type": kind,
            "accepts_response_payload": accepts_response_payload,
        }
        if retry_attempt is not None:
            envelope["retry_attempt"] = retry_attempt
        if retry_reason is not None:
            envelope["retry_reason"] = retry_reason
        self.envelopes.append(envelope)
        await ws.send_str(json.dumps(envelope))
        return str(envelope["envelope_id"])

    async def ack_for(self, envelope_id: str, timeout: float = 5.0) -> Ack:
        """The app's ack of one envelope. bolt sends none when no listener handled it."""

        def found() -> Ack | None:
            return next((ack for ack in self.acks if ack.envelope_id == envelope_id), None)

        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: found() is not None)
        except TimeoutError:
            kind = next((e["type"] for e in self.envelopes if e["envelope_id"] == envelope_id), "?")
            raise TimeoutError(
                f"no ack for {kind} envelope {envelope_id} within {timeout}s "
                "(bolt acks nothing that no listener matched)"
            ) from None
        ack = found()
        assert ack is not None
        return ack

    async def send_event(
        self,
        event: Json,
        *,
        event_id: str | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
        timeout: float = 5.0,
    ) -> Ack:
        """Deliver an event (or a whole event_callback body) as Slack does: first delivery
        retry_attempt 0 and retry_reason ""; a redelivery repeats the event_id with
        retry_attempt 1.. and a reason such as "timeout"."""
        body = (
            event if event.get("type") == "event_callback" else self.event_callback(event, event_id=event_id)
        )
        envelope_id = await self.push(
            "events_api", body, retry_attempt=retry_attempt, retry_reason=retry_reason, timeout=timeout
        )
        return await self.ack_for(envelope_id, timeout)

    async def send_slash_command(
        self,
        command: str = "/opus",
        text: str = "",
        *,
        user_id: str = "U1",
        channel_id: str = "C1",
        timeout: float = 5.0,
    ) -> Ack:
        payload = self.slash_command(command, text, user_id=user_id, channel_id=channel_id)
        envelope_id = await self.push(
            "slash_commands", payload, accepts_response_payload=True, timeout=timeout
        )
        return await self.ack_for(envelope_id, timeout)

    async def send_interaction(self, payload: Json, *, timeout: float = 5.0) -> Ack:
        """Deliver an interactive payload (e.g. `button_press(...)`)."""
        accepts = payload.get("type") in ("view_submission", "block_suggestion")
        envelope_id = await self.push(
            "interactive", payload, accepts_response_payload=accepts, timeout=timeout
        )
        return await self.ack_for(envelope_id, timeout)

    async def disconnect_socket(self, reason: str = "refresh_requested") -> None:
        """Slack's `disconnect` message: the SDK fetches a new URL and opens a new socket."""
        ws = await self._open_socket(5.0)
        await ws.send_json({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}})

    async def wait_connected(self, count: int = 1, timeout: float = 5.0) -> None:
        """Until `count` sockets have been opened in total (reconnections count)."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.connections >= count)

    @property
    def connections(self) -> int:
        """How many sockets were opened so far."""
        return sum(1 for call in self.calls if call.method == "socket")

    async def _open_socket(self, timeout: float) -> web.WebSocketResponse:
        def newest() -> web.WebSocketResponse | None:
            return next((ws for ws in reversed(self._sockets) if not ws.closed), None)

        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: newest() is not None)
        except TimeoutError:
            raise TimeoutError(f"no Socket Mode connection within {timeout}s") from None
        ws = newest()
        assert ws is not None
        return ws

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("ticket") not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse()  # answers the SDK's pings by itself
        await ws.prepare(request)
        await self._record(Call("socket", dict(request.query), _headers(request), "", _now(), "GET"))
        async with self._changed:
            self._sockets.append(ws)
            self._changed.notify_all()
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": sum(1 for s in self._sockets if not s.closed),
                "debug_info": {
                    "host": "applink-fake",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self.app_id},
            }
        )
        try:
            async for frame in ws:
                if frame.type == WSMsgType.TEXT:
                    await self._on_ack(frame.data)
        finally:
            async with self._changed:
                self._sockets.remove(ws)
                self._changed.notify_all()
        return ws

    async def _on_ack(self, data: str) -> None:
        message = json.loads(data)
        if not isinstance(message, dict) or "envelope_id" not in message:
            return
        async with self._changed:
            self.acks.append(Ack(str(message["envelope_id"]), message.get("payload"), _now()))
            self._changed.notify_all()

    # ------------------------------------------------------------------ HTTP mode

    def http_event(self, event: Json, *, event_id: str | None = None) -> HttpBody:
        body = (
            event if event.get("type") == "event_callback" else self.event_callback(event, event_id=event_id)
        )
        return HttpBody(json.dumps(body), "application/json")

    def http_url_verification(self, challenge: str = "fake-challenge") -> HttpBody:
        body = {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}
        return HttpBody(json.dumps(body), "application/json")

    def http_slash_command(
        self, command: str = "/opus", text: str = "", *, user_id: str = "U1", channel_id: str = "C1"
    ) -> HttpBody:
        fields = self.slash_command(command, text, user_id=user_id, channel_id=channel_id)
        return HttpBody(urlencode(fields), "application/x-www-form-urlencoded")

    def http_interaction(self, payload: Json) -> HttpBody:
        return HttpBody(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")

    async def post_signed(
        self,
        app_url: str,
        body: HttpBody | str,
        signing_secret: str,
        *,
        timestamp: int | None = None,
        forge: bool = False,
        stale: bool = False,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
    ) -> HttpReply:
        """POST `body` to an HTTP-mode app, signed as Slack signs it. `forge` signs with a wrong
        secret; `stale` dates the request six minutes back (bolt allows five); `retry_num`
        adds Slack's X-Slack-Retry-Num / X-Slack-Retry-Reason headers."""
        if isinstance(body, str):
            kind = "application/json" if body.startswith("{") else "application/x-www-form-urlencoded"
            body = HttpBody(body, kind)
        if timestamp is None:
            timestamp = int(time.time()) - (360 if stale else 0)
        secret = f"{signing_secret}-forged" if forge else signing_secret
        headers = {
            "Content-Type": body.content_type,
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": sign(body.text, secret, timestamp),
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            **body.headers,
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason
        assert self._session is not None, "use FakeSlack inside `async with`"
        async with self._session.post(app_url, data=body.text.encode(), headers=headers) as response:
            return HttpReply(response.status, await response.text(), dict(response.headers))

    # ------------------------------------------------------------------ the Web API

    def _enforce(self, method: str, args: _Args) -> None:
        """Spend from the method's tier window (or the channel's, for chat.postMessage)."""
        if self.limits is None:
            return
        window = self.limits.window(method)
        if window is None:
            return
        limit, seconds = window
        key = f"{method}:{args.text('channel')}" if method == "chat.postMessage" else method
        now = _now()
        sent = [t for t in self._sent.get(key, []) if t > now - seconds]
        if len(sent) >= limit:
            self._sent[key] = sent
            self.rate_limited.append((now, method))
            retry = max(1, math.ceil(sent[len(sent) - limit] + seconds - now))
            raise SlackError("ratelimited", status=429, headers={"Retry-After": str(retry)})
        self._sent[key] = [*sent, now]

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        args = await _read_args(request)
        token = _bearer(request) or str(args.pop("token", "") or "")
        await self._record(Call(method, args, _headers(request), token, _now(), request.method))
        try:
            handler = self._methods.get(method)
            if handler is None:
                raise SlackError("unknown_method", req_method=method)
            self._authorize(method, token)
            fault = self._take_fault(method)
            if fault is not None:
                retry = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                raise SlackError(fault.error, status=fault.status, headers=retry)
            self._enforce(method, _Args(args))
            if method in STREAM_METHODS and self.streaming_error:
                raise SlackError(
                    self.streaming_error,
                    **({"req_method": method} if self.streaming_error == "unknown_method" else {}),
                )
            result = handler(_Args(args))
        except SlackError as error:
            return error.response()
        return web.json_response({"ok": True, **result}, headers={"x-oauth-scopes": SCOPES})

    def _authorize(self, method: str, token: str) -> None:
        if not token:
            raise SlackError("not_authed")
        if token not in (self.bot_token, self.app_token):
            raise SlackError("invalid_auth")
        if (token == self.app_token) != (method in APP_TOKEN_METHODS):
            raise SlackError("not_allowed_token_type")

    def _auth_test(self, args: _Args) -> Json:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _connections_open(self, args: _Args) -> Json:
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        host = self.url.replace("http://", "ws://", 1)
        return {"url": f"{host}/link/?ticket={ticket}&app_id={self.app_id}"}

    def _target(self, args: _Args) -> SlackChannel:
        """The channel a message goes to: an id, a #name, or a user id (their DM)."""
        wanted = args.text("channel")
        if not wanted:
            raise SlackError("channel_not_found")
        if wanted in self.users and wanted not in self.channels:
            return self.channels[self.dm(wanted)]
        name = wanted.removeprefix("#")
        found = self.channels.get(wanted) or next((c for c in self.channels.values() if c.name == name), None)
        if found is None:
            raise SlackError("channel_not_found")
        if found.is_archived:
            raise SlackError("is_archived")
        if not self._is_member(found, self.bot_user_id):
            raise SlackError("not_in_channel")
        return found

    def _open_view(self, args: _Args) -> Json:
        """views.open: a fresh trigger id (once, within three seconds) and a modal Slack accepts."""
        issued = self._triggers.pop(args.need("trigger_id"), None)
        if issued is None:
            raise SlackError("invalid_trigger_id")
        if time.monotonic() - issued > TRIGGER_SECONDS:
            raise SlackError("expired_trigger_id")
        view = args.raw.get("view")
        if not isinstance(view, dict):
            raise SlackError("invalid_arguments")
        _check_view(view)
        view_id = f"V{self._next_serial():08d}"
        blocks = [
            {**b, "block_id": b.get("block_id") or f"b{n}"} for n, b in enumerate(view.get("blocks") or [])
        ]
        opened = {**view, "id": view_id, "team_id": self.team_id, "app_id": self.app_id, "blocks": blocks}
        self.views[view_id] = opened
        return {"view": opened}

    def _post_message(self, args: _Args) -> Json:
        channel = self._target(args)
        text = args.text("text") or args.text("markdown_text")
        blocks = args.objects("blocks")
        if not text and not blocks and not args.raw.get("attachments"):
            raise SlackError("no_text")
        _check_text(text)
        if blocks is not None:
            _check_blocks(blocks)
        message = self._bot_message(text, blocks)
        for key in ("attachments", "metadata", "username", "icon_emoji", "icon_url"):
            if args.raw.get(key) is not None:
                message[key] = args.raw[key]
        if args.text("thread_ts"):
            message["thread_ts"] = args.text("thread_ts")
        self._store(channel.id, message)
        return {"channel": channel.id, "ts": message["ts"], "message": _public(message)}

    def _own_message(self, args: _Args, cannot: str) -> tuple[SlackChannel, Json]:
        channel = self.channel(args.text("channel"))
        try:
            message = self.stored(channel.id, args.need("ts"))
        except KeyError:
            raise SlackError("message_not_found") from None
        if message.get("user") != self.bot_user_id and message.get("bot_id") != self.bot_id:
            raise SlackError(cannot)
        return channel, message

    def _update(self, args: _Args) -> Json:
        channel, message = self._own_message(args, "cant_update_message")
        text = args.text("text") or args.text("markdown_text")
        blocks = args.objects("blocks")
        if not text and blocks is None and not args.raw.get("attachments"):
            raise SlackError("no_text")
        _check_text(text)
        if blocks is not None:
            _check_blocks(blocks)
            message["blocks"] = blocks
        message["text"] = text
        if args.raw.get("metadata") is not None:
            message["metadata"] = args.raw["metadata"]
        message["edited"] = {"user": self.bot_user_id, "ts": self._new_ts()}
        return {"channel": channel.id, "ts": message["ts"], "text": text, "message": _public(message)}

    def _delete(self, args: _Args) -> Json:
        channel, message = self._own_message(args, "cant_delete_message")
        self._messages[channel.id].remove(message)
        self._live_streams.discard((channel.id, message["ts"]))
        return {"channel": channel.id, "ts": message["ts"]}

    def _post_ephemeral(self, args: _Args) -> Json:
        channel = self._target(args)
        user = args.need("user")
        if user not in self.users:
            raise SlackError("user_not_found")
        if not self._is_member(channel, user):
            raise SlackError("user_not_in_channel")
        text, blocks = args.text("text") or args.text("markdown_text"), args.objects("blocks")
        if not text and not blocks:
            raise SlackError("no_text")
        _check_text(text)
        if blocks is not None:
            _check_blocks(blocks)
        ts = self._new_ts()
        self.ephemerals.append(
            {
                "channel": channel.id,
                "user": user,
                "text": text,
                "blocks": blocks,
                "thread_ts": args.text("thread_ts"),
                "message_ts": ts,
            }
        )
        return {"message_ts": ts}

    # streaming ----------------------------------------------------------------

    def _start_stream(self, args: _Args) -> Json:
        channel = self._target(args)
        thread_ts = args.need("thread_ts")
        if channel.kind != "im":
            if not args.text("recipient_user_id"):
                raise SlackError("missing_recipient_user_id")
            if not args.text("recipient_team_id"):
                raise SlackError("missing_recipient_team_id")
        message = self._bot_message("")
        message["thread_ts"] = thread_ts
        message["text"] = _streamed_text(args)
        self._store(channel.id, message)
        self._live_streams.add((channel.id, message["ts"]))
        return {"channel": channel.id, "ts": message["ts"]}

    def _live_stream(self, args: _Args) -> tuple[SlackChannel, Json]:
        channel = self.channel(args.text("channel"))
        ts = args.need("ts")
        try:
            message = self.stored(channel.id, ts)
        except KeyError:
            raise SlackError("message_not_found") from None
        if (channel.id, ts) not in self._live_streams:
            raise SlackError("message_not_in_streaming_state")
        return channel, message

    def _append_stream(self, args: _Args) -> Json:
        channel, message = self._live_stream(args)
        if not args.text("markdown_text") and not args.raw.get("chunks"):
            raise SlackError("no_text")
        message["text"] += _streamed_text(args)
        return {"channel": channel.id, "ts": message["ts"]}

    def _stop_stream(self, args: _Args) -> Json:
        channel, message = self._live_stream(args)
        message["text"] += _streamed_text(args)
        blocks = args.objects("blocks")
        if blocks is not None:
            _check_blocks(blocks)
            message["blocks"] = blocks
        if args.raw.get("metadata") is not None:
            message["metadata"] = args.raw["metadata"]
        self._live_streams.discard((channel.id, message["ts"]))
        return {"channel": channel.id, "ts": message["ts"], "message": _public(message)}

    # conversations --------------------------------------------------------------

    def _conversation(self, channel: SlackChannel) -> Json:
        if channel.kind == "im":
            return {
                "id": channel.id,
                "created": 1_700_000_000,
                "is_im": True,
                "is_org_shared": False,
                "user": channel.user,
                "is_user_deleted": False,
                "priority": 0,
            }
        return {
            "id": channel.id,
            "name": channel.name,
            "is_channel": channel.kind == "public",
            "is_group": channel.kind == "private",
            "is_im": False,
            "is_mpim": channel.kind == "mpim",
            "is_private": channel.kind != "public",
            "created": 1_700_000_000,
            "is_archived": channel.is_archived,
            "is_general": channel.name == "general",
            "is_member": self._is_member(channel, self.bot_user_id),
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "context_team_id": self.team_id,
            "name_normalized": channel.name,
            "topic": {"value": channel.topic, "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }

    def _readable(self, args: _Args) -> SlackChannel:
        channel = self.channel(args.text("channel"))
        if not self._is_member(channel, self.bot_user_id):
            raise SlackError("not_in_channel")
        return channel

    def _conversation_info(self, args: _Args) -> Json:
        return {"channel": self._conversation(self.channel(args.text("channel")))}

    def _history(self, args: _Args) -> Json:
        channel = self._readable(args)
        inclusive = args.flag("inclusive")
        oldest, latest = float(args.text("oldest") or 0), float(args.text("latest") or "inf")
        listed = [
            m
            for m in self._messages.get(channel.id, [])
            if (m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast")
            and (oldest <= float(m["ts"]) <= latest if inclusive else oldest < float(m["ts"]) < latest)
        ]
        page = self._page(
            list(reversed(listed)), args, default_limit=100, metadata=args.flag("include_all_metadata")
        )
        page.update(pin_count=0, channel_actions_ts=None, channel_actions_count=0)
        return page

    def _replies(self, args: _Args) -> Json:
        channel = self._readable(args)
        ts = args.need("ts")
        try:
            root = self.stored(channel.id, ts)
        except KeyError:
            raise SlackError("thread_not_found") from None
        listed = self.thread(channel.id, ts) if root.get("thread_ts") in (None, ts) else [root]
        return self._page(listed, args, default_limit=1000, metadata=args.flag("include_all_metadata"))

    def _page(self, listed: list[Json], args: _Args, *, default_limit: int, metadata: bool) -> Json:
        limit = max(1, min(args.number("limit", default_limit), 1000))
        start = 0
        if args.text("cursor"):
            try:
                start = int(base64.b64decode(args.text("cursor")).decode().removeprefix("offset:"))
            except ValueError:
                raise SlackError("invalid_cursor") from None
        chunk = listed[start : start + limit]
        more = start + limit < len(listed)
        cursor = base64.b64encode(f"offset:{start + limit}".encode()).decode() if more else ""
        messages = [_public(m, metadata=metadata) for m in chunk]
        return {"messages": messages, "has_more": more, "response_metadata": {"next_cursor": cursor}}

    def _open(self, args: _Args) -> Json:
        if args.text("channel"):
            return {"channel": self._conversation(self.channel(args.text("channel")))}
        users = [u for u in args.text("users").split(",") if u]
        if not users:
            raise SlackError("users_list_not_supplied")
        if len(users) > 1:
            raise SlackError("fake_unsupported", detail="the fake opens one-person DMs only")
        if users[0] not in self.users:
            raise SlackError("user_not_found")
        existing = any(c.kind == "im" and c.user == users[0] for c in self.channels.values())
        channel = self.channels[self.dm(users[0])]
        shown = self._conversation(channel) if args.flag("return_im") else {"id": channel.id}
        return {"channel": shown, **({"no_op": True, "already_open": True} if existing else {})}

    # people -----------------------------------------------------------------------

    def _user_info(self, args: _Args) -> Json:
        user = self.users.get(args.text("user"))
        if user is None:
            raise SlackError("user_not_found")
        real = user.real_name or user.name
        profile: Json = {
            "real_name": real,
            "real_name_normalized": real,
            "display_name": user.display_name,
            "display_name_normalized": user.display_name,
            "image_72": f"https://avatars.slack-edge.com/{user.id}_72.png",
            "team": self.team_id,
        }
        if user.bot_id:
            profile["bot_id"] = user.bot_id
        return {
            "user": {
                "id": user.id,
                "team_id": self.team_id,
                "name": user.name,
                "deleted": user.deleted,
                "color": "9f69e7",
                "real_name": real,
                "tz": "Europe/London",
                "tz_label": "Greenwich Mean Time",
                "tz_offset": 0,
                "profile": profile,
                "is_admin": user.is_admin,
                "is_owner": user.is_owner,
                "is_primary_owner": user.is_primary_owner,
                "is_restricted": user.is_restricted,
                "is_ultra_restricted": False,
                "is_bot": user.is_bot,
                "is_app_user": False,
                "updated": 1_700_000_000,
            }
        }

    def _usergroup_users(self, args: _Args) -> Json:
        group = args.text("usergroup")
        if group not in self.usergroups:
            raise SlackError("no_such_subteam")
        return {"users": list(self.usergroups[group])}

    # files ------------------------------------------------------------------------

    def _upload_url(self, args: _Args) -> Json:
        name, length = args.need("filename"), args.number("length", 0)
        if length <= 0:
            raise SlackError("invalid_arguments")
        file_id = f"F{self._next_serial():08d}"
        self.files[file_id] = {"id": file_id, "name": name, "title": name, "size": length}
        return {"upload_url": f"{self.url}/upload/v1/{file_id}", "file_id": file_id}

    def _complete_upload(self, args: _Args) -> Json:
        listed = args.objects("files") or []
        shared = []
        for item in listed:
            file_id = str(item.get("id") or "")
            if file_id not in self._uploads:
                raise SlackError("file_not_found")
            name = str(self.files[file_id]["name"])
            blob = self._uploads.pop(file_id)
            obj = self.image_file(name, blob, user=self.bot_user_id)
            del self.files[obj["id"]], self.file_bytes[obj["id"]]
            obj.update(id=file_id, title=str(item.get("title") or name))
            obj["url_private"] = f"{self.url}/files-pri/{self.team_id}-{file_id}/{name}"
            obj["url_private_download"] = f"{self.url}/files-pri/{self.team_id}-{file_id}/download/{name}"
            self.files[file_id], self.file_bytes[file_id] = obj, blob
            shared.append(obj)
        if args.text("channel_id"):
            channel = self._target(_Args({"channel": args.text("channel_id")}))
            message = self._bot_message(args.text("initial_comment"))
            message.update(files=shared, upload=True, display_as_bot=False)
            if args.text("thread_ts"):
                message["thread_ts"] = args.text("thread_ts")
            self._store(channel.id, message)
        return {"files": [{"id": f["id"], "title": f["title"]} for f in shared]}

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["file_id"]
        blob = await request.read()
        await self._record(
            Call("upload", {"file_id": file_id, "size": len(blob)}, _headers(request), "", _now())
        )
        if file_id not in self.files:
            return web.Response(status=404, text="not found", content_type="text/plain")
        self._uploads[file_id] = blob
        return web.Response(text=f"OK - {len(blob)}", content_type="text/plain")

    async def _download(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"]
        token = _bearer(request)
        await self._record(Call("url_private", {"path": tail}, _headers(request), token, _now(), "GET"))
        prefix = f"{self.team_id}-"
        file_id = tail.removeprefix(prefix).split("/", 1)[0] if tail.startswith(prefix) else ""
        if token != self.bot_token:
            # What Slack does without a token with files:read: a sign-in page, not the file.
            return web.Response(text=SIGN_IN_PAGE, content_type="text/html")
        if file_id not in self.file_bytes:
            return web.Response(status=404, text="File not found", content_type="text/plain")
        media_type = str(self.files[file_id].get("mimetype") or "application/octet-stream")
        return web.Response(body=self.file_bytes[file_id], content_type=media_type)

    # response_url -------------------------------------------------------------------

    async def _respond(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        await self._record(Call("response_url", body, _headers(request), "", _now()))
        context = self._response_urls.get(request.match_info["key"])
        if context is None:
            return web.Response(status=404, text="expired_url", content_type="text/plain")
        channel, message_ts = context.get("channel", ""), context.get("message_ts", "")
        if body.get("delete_original") and message_ts:
            self._messages[channel] = [m for m in self._messages.get(channel, []) if m["ts"] != message_ts]
        elif body.get("replace_original") and message_ts:
            stored = self.stored(channel, message_ts)
            stored["text"] = body.get("text", "")
            if "blocks" in body:
                stored["blocks"] = body["blocks"]
        elif body.get("response_type") == "in_channel":
            message = self._bot_message(str(body.get("text") or ""), body.get("blocks"))
            if body.get("thread_ts"):
                message["thread_ts"] = body["thread_ts"]
            self._store(channel, message)
        else:
            self.ephemerals.append(
                {
                    "channel": channel,
                    "user": context.get("user", ""),
                    "text": body.get("text", ""),
                    "blocks": body.get("blocks"),
                }
            )
        return web.Response(text="ok", content_type="text/plain")


# ---------------------------------------------------------------------- helpers


def sign(body: str, signing_secret: str, timestamp: int | str) -> str:
    """Slack's request signature: `v0=` + HMAC-SHA256(secret, `v0:{timestamp}:{body}`)."""
    digest = hmac.new(signing_secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return f"v0={digest}"


def rich_text_blocks(text: str) -> list[Json]:
    """The rich_text block Slack's clients attach to what people type (mentions as user elements)."""
    elements: list[Json] = []
    at = 0
    for match in MENTION.finditer(text):
        if match.start() > at:
            elements.append({"type": "text", "text": text[at : match.start()]})
        elements.append({"type": "user", "user_id": match.group(1)})
        at = match.end()
    if at < len(text):
        elements.append({"type": "text", "text": text[at:]})
    section = {"type": "rich_text_section", "elements": elements}
    return [{"type": "rich_text", "block_id": uuid.uuid4().hex[:5], "elements": [section]}]


def tiny_png() -> bytes:
    """A valid 1×1 transparent PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x00\x00\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _public(message: Json, *, metadata: bool = True) -> Json:
    shown = json.loads(json.dumps(message))  # a deep copy: later changes to the store stay out
    if not metadata:
        shown.pop("metadata", None)
    return shown


def _find_button(blocks: Sequence[Json], action_id: str) -> tuple[Json, str]:
    for block in blocks:
        for element in block.get("elements") or ():
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return element, str(block.get("block_id") or "")
        accessory = block.get("accessory")
        if isinstance(accessory, dict) and accessory.get("action_id") == action_id:
            return accessory, str(block.get("block_id") or "")
    return {}, ""


def _streamed_text(args: _Args) -> str:
    text = args.text("markdown_text")
    if len(text) > MARKDOWN_LIMIT:
        raise SlackError("msg_too_long")
    for item in args.objects("chunks") or ():
        if item.get("type") == "markdown_text":
            piece = str(item.get("text") or "")
            if len(piece) > MARKDOWN_LIMIT:
                raise SlackError("msg_too_long")
            text += piece
    return text


def _check_text(text: str) -> None:
    if len(text) > TEXT_LIMIT:
        raise SlackError("msg_too_long")


def _check_view(view: Json) -> None:
    """A modal as views.open checks it: plain-text title, submit and close of at most 24
    characters (a submit whenever there is an input), 1 to 100 blocks, each input with a label
    and an element carrying an action_id; callback_id and private_metadata within bounds."""
    problems = []

    def plain(key: str) -> str | None:
        value = view.get(key)
        if value is None:
            return None
        if (
            not isinstance(value, dict)
            or value.get("type") != "plain_text"
            or len(str(value.get("text"))) > 24
        ):
            problems.append(f"[ERROR] must be plain_text of at most 24 characters [json-pointer:/view/{key}]")
        return str(value.get("text") if isinstance(value, dict) else "")

    if view.get("type") != "modal":
        problems.append("[ERROR] must be modal [json-pointer:/view/type]")
    if not plain("title"):
        problems.append("[ERROR] title is required [json-pointer:/view/title]")
    plain("close")
    blocks = view.get("blocks") or []
    if not 1 <= len(blocks) <= 100:
        problems.append("[ERROR] must have 1 to 100 blocks [json-pointer:/view/blocks]")
    inputs = [b for b in blocks if isinstance(b, dict) and b.get("type") == "input"]
    if inputs and not plain("submit"):
        problems.append("[ERROR] submit is required with input blocks [json-pointer:/view/submit]")
    for index, block in enumerate(inputs):
        label, element = block.get("label") or {}, block.get("element") or {}
        if not label.get("text") or not element.get("action_id"):
            problems.append(
                f"[ERROR] input needs a label and an element with action_id [json-pointer:/view/blocks/{index}]"
            )
    if len(str(view.get("callback_id") or "")) > 255 or len(str(view.get("private_metadata") or "")) > 3000:
        problems.append("[ERROR] callback_id or private_metadata too long [json-pointer:/view]")
    if problems:
        raise SlackError("invalid_arguments", response_metadata={"messages": problems})


def _check_blocks(blocks: Sequence[Json]) -> None:
    problems = []
    if len(blocks) > 50:
        problems.append("[ERROR] no more than 50 items allowed [json-pointer:/blocks]")
    markdown = 0
    for index, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "markdown":
            markdown += len(str(block.get("text") or ""))
        if kind == "section" and len(str((block.get("text") or {}).get("text") or "")) > 3000:
            problems.append(
                f"[ERROR] must be less than 3001 characters [json-pointer:/blocks/{index}/text/text]"
            )
        for position, element in enumerate(block.get("elements") or ()):
            if not isinstance(element, dict) or element.get("type") != "button":
                continue
            where = f"/blocks/{index}/elements/{position}"
            if len(str((element.get("text") or {}).get("text") or "")) > 75:
                problems.append(f"[ERROR] must be less than 76 characters [json-pointer:{where}/text/text]")
            if len(str(element.get("value") or "")) > 2000:
                problems.append(f"[ERROR] must be less than 2001 characters [json-pointer:{where}/value]")
            if len(str(element.get("action_id") or "")) > 255:
                problems.append(f"[ERROR] must be less than 256 characters [json-pointer:{where}/action_id]")
    if markdown > MARKDOWN_LIMIT:
        problems.append("[ERROR] markdown blocks exceed 12000 characters in total [json-pointer:/blocks]")
    if problems:
        raise SlackError("invalid_blocks", response_metadata={"messages": problems})


async def _read_args(request: web.Request) -> Json:
    """Query, form and JSON arguments in one dict; JSON-valued form fields decoded."""
    args: Json = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                args.update(body)
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            args.update({key: value for key, value in form.items() if isinstance(value, str)})
    for key in JSON_ARGS:
        value = args.get(key)
        if isinstance(value, str) and value[:1] in ("[", "{"):
            with contextlib.suppress(ValueError):
                args[key] = json.loads(value)
    return args


def _bearer(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _headers(request: web.Request) -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers.items()}


def _now() -> float:
    return asyncio.get_running_loop().time()
