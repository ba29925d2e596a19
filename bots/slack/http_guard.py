"""HTTP mode's front door: every POST is authenticated, checked and de-duplicated before
slack-bolt sees it.

- 401: a missing, malformed, stale (over five minutes) or wrong signature. Nothing about the
  body is believed, or logged, before the signature holds.
- 400: a signed body slack-bolt could not parse, or one missing what ember reads from it (bad
  JSON, not an object, nesting deep enough to exhaust the parser, invalid UTF-8, a `payload=`
  that is not a JSON object, an interaction or command without its ids).
- 200 and nothing done: a replay of a request already handled, on any host (its signature is
  remembered in the store for longer than a timestamp stays valid).

A refused request is logged as one short line with escaped, truncated headers, never its body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

log = logging.getLogger(__name__)

# Slack's rule (and slack-bolt's): a signature is honoured for five minutes after its timestamp.
MAX_AGE_SECONDS = 300
# A slash command's form carries these; ember's command handler reads each.
COMMAND_FIELDS = ("command", "team_id", "user_id", "channel_id")

Json = dict[str, object]
FirstSighting = Callable[[str], Awaitable[bool]]


@dataclass(frozen=True)
class Refusal:
    status: int  # 400 or 401
    reason: str


def authenticate(headers: Mapping[str, str], body: bytes, secret: str, now: float) -> Refusal | None:
    """Slack's v0 signature over the raw bytes, checked without trusting any header's shape."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not timestamp or not signature:
        return Refusal(401, "unsigned")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return Refusal(401, "the timestamp is not a number")
    if abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        return Refusal(401, "stale timestamp")
    signed = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        return Refusal(401, "wrong signature")
    return None


def malformed(body: bytes, content_type: str) -> Refusal | None:
    """Why slack-bolt (or ember's listeners) could not use this signed body; None when fine.
    It mirrors bolt's own parsing: JSON when so declared or when it starts with "{", else a form
    whose `payload` field, when present, is JSON."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Refusal(400, "the body is not UTF-8")
    if content_type == "application/json" or text.startswith("{"):
        loaded = _json_object(text)
        return loaded if isinstance(loaded, Refusal) else _event_problem(loaded)
    form = dict(parse_qsl(text, keep_blank_values=True))
    if "payload" in text and "payload" in form:
        loaded = _json_object(form["payload"])
        return loaded if isinstance(loaded, Refusal) else _interaction_problem(loaded)
    missing = [name for name in COMMAND_FIELDS if not form.get(name)]
    return Refusal(400, f"a command without {', '.join(missing)}") if missing else None


def _json_object(text: str) -> Json | Refusal:
    try:
        value = json.loads(text)
    except RecursionError:
        return Refusal(400, "JSON nested too deep")
    except ValueError:
        return Refusal(400, "not JSON")
    return value if isinstance(value, dict) else Refusal(400, f"JSON {type(value).__name__}, not an object")


def _event_problem(body: Json) -> Refusal | None:
    if not isinstance(body.get("type"), str):
        return Refusal(400, "an event body without a type")
    if body["type"] == "event_callback" and not isinstance(body.get("event"), dict):
        return Refusal(400, "an event_callback without its event")
    return None


def _interaction_problem(payload: Json) -> Refusal | None:
    kind = payload.get("type")
    if not isinstance(kind, str):
        return Refusal(400, "an interaction without a type")
    user = payload.get("user")
    if not (isinstance(user, dict) and isinstance(user.get("id"), str)):
        return Refusal(400, f"a {kind:.40} without its user")
    if kind == "block_actions":
        actions = payload.get("actions")
        if not (isinstance(actions, list) and actions and all(_is_action(a) for a in actions)):
            return Refusal(400, "block_actions without well-formed actions")
    return None


def _is_action(action: object) -> bool:
    return isinstance(action, dict) and isinstance(action.get("action_id"), str)


def is_ssl_check(body: bytes) -> bool:
    """Slack's `ssl_check=1` probe of a slash command's URL (slack-bolt answers it before
    checking signatures, as Slack does not promise to sign it)."""
    if len(body) > 1000 or b"ssl_check" not in body:
        return False
    return dict(parse_qsl(body.decode("latin-1"))).get("ssl_check") == "1"


def summary(request: web.Request, size: int) -> str:
    """One short, escaped line about a request: `!r` quotes control characters, so a header
    cannot write a log line of its own, and every part is cut short."""
    agent = request.headers.get("User-Agent", "")
    kind = request.headers.get("Content-Type", "")
    return (
        f"{request.method} {request.path!r:.60} from {request.remote!r:.40}, {size} bytes, "
        f"content-type {kind!r:.60}, user-agent {agent!r:.80}"
    )


class RequestGuard:
    """The aiohttp handler for Slack's request URL."""

    def __init__(
        self,
        app: AsyncApp,
        signing_secret: str,
        first_sighting: FirstSighting,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._app = app
        self._secret = signing_secret
        self._first_sighting = first_sighting
        self._clock = clock

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp answers 413 above its body limit (1 MiB)
        if is_ssl_check(body):
            return web.Response(status=200)  # Slack's certificate probe: unsigned, and does nothing
        refusal = authenticate(request.headers, body, self._secret, self._clock())
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        refusal = refusal or malformed(body, content_type)
        if refusal is not None:
            log.warning(
                "Slack request refused (%s, %d): %s",
                refusal.reason,
                refusal.status,
                summary(request, len(body)),
            )
            return web.Response(status=refusal.status, text=refusal.reason)
        if not await self._first_sighting("slack:" + request.headers["X-Slack-Signature"]):
            log.info("Slack request replayed, already handled: %s", summary(request, len(body)))
            return web.Response(status=200)
        bolt_request = AsyncBoltRequest(
            body=body.decode("utf-8"), query=request.query_string, headers=dict(request.headers)
        )
        try:
            return await to_aiohttp_response(await self._app.async_dispatch(bolt_request))
        except Exception:
            # Whatever bolt could not take is the request's fault, not ember's: 400, logged once.
            log.exception("Slack request could not be handled: %s", summary(request, len(body)))
            return web.Response(status=400, text="could not handle this request")
