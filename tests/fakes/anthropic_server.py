"""A loopback fake of the Anthropic Messages API, spoken to by the real `anthropic` SDK.

One aiohttp server on 127.0.0.1:0 answers three URL shapes with one script:

    anthropic  POST /v1/messages                       AsyncAnthropic(base_url=fake.url)
    vertex     POST /v1/projects/{p}/locations/{r}/publishers/anthropic/models/{model}:streamRawPredict
               (and :rawPredict)                       AsyncAnthropicVertex(base_url=fake.vertex_url, ...)
    bedrock    POST /model/{model}/invoke-with-response-stream
               (and /invoke)                           AsyncAnthropicBedrock(base_url=fake.url, ...)

Vertex and Bedrock take the model from the path (the SDK moves it out of the body). Streams
are SSE for anthropic/vertex and the AWS binary event-stream for bedrock (each Messages event
base64-wrapped in a `chunk` frame), carrying the same event sequence: message_start,
content_block_start, ping, content_block_delta×N, content_block_stop, message_delta,
message_stop. Requests without `stream` get a plain Message JSON.

Script::

    async with FakeAnthropic() as fake:
        client = AsyncAnthropic(api_key="test", base_url=fake.url, max_retries=0)
        fake.script.append(Reply.text(["Hel", "lo"], stop_reason="end_turn", input_tokens=12,
                                      cache_read=100, cache_write=20, token_delay=0.0))
        fake.script.append(Reply.status(529))                  # overloaded_error
        fake.script.append(Reply.status(429, retry_after=7))   # rate_limit_error, retry-after: 7
        fake.script_for("claude-sonnet").append(Reply.drop(after=2))
        held = Reply.held(["a", "b"], after=1)                 # waits after "a" until held.release.set()

A request takes the next Reply from `script_for(its model)`, else from the shared `script`,
else the default `Reply.text(["ok"])`. Replies:

- `Reply.text(chunks, *, first_token_delay, token_delay, stop_reason, input_tokens,
  output_tokens, cache_read, cache_write)`: a normal answer; delays are in seconds.
- `Reply.slow_first_token(seconds, chunks=None)`: message_start and ping at once, then a pause
  before the first delta (non-streaming requests: before the response).
- `Reply.status(code, *, retry_after=None, message=None)`: an HTTP error before any stream,
  with the API's JSON error body (`{"type": "error", "error": {"type": "overloaded_error", ...}}`;
  404 names the model as `not_found_error`). Vertex answers 4xx in Google's shape
  (`{"error": {"code", "message", "status"}}`) and Bedrock in AWS's (`{"message"}` plus an
  `x-amzn-ErrorType` header). `Reply.status_only` is the same thing under its older name.
- `Reply.error_midstream(chunks=None, after=2, error_type="overloaded_error")`: `after` deltas,
  then `event: error` (bedrock: a `modelStreamErrorException` frame).
- `Reply.drop(chunks=None, after=2)`: `after` deltas, then the TCP connection is aborted.
- `Reply.disconnect()`: the connection is aborted before any response byte.
- `Reply.held(chunks, after=1)`: stops after `after` deltas until `reply.release.set()` —
  deterministic "reply in flight" without sleeping.

`fake.biller = PromptCache(clock)` (tests/fakes/prompt_cache.py) makes every answer report the
input, cache-write and cache-read tokens the API would bill for the request it received.

Every request is recorded in `fake.requests` as a `Recorded` (api, path, lower-cased headers,
parsed JSON body, model, stream flag, loop time); `await fake.wait_for_request(i)` returns the
i-th (0-based) once it has arrived and `await fake.wait_for_requests(n)` waits for n of them.
Leaving the `async with` (or `await fake.close()`) cuts streams still paused or held.

What the SDK (anthropic 2.17 on httpx2, `max_retries=0`) raises, as pinned by
tests/test_fake_anthropic.py — the core's failover depends on these:

- `Reply.status(529)`: `anthropic.OverloadedError` (an `InternalServerError`, status 529);
  404 `NotFoundError`; 429 `RateLimitError`; 500 `InternalServerError`; raised when the stream
  is opened (`async with client.messages.stream(...)`), before any text.
- `Reply.error_midstream`: plain `anthropic.APIStatusError` (no subclass) with
  `status_code == 200`, raised while iterating, after the first deltas were delivered;
  `exc.body` is the error event's JSON (bedrock: error type `modelStreamErrorException`).
- `Reply.drop`: `anthropic.APIConnectionError` whose `__cause__` is `httpx2.RemoteProtocolError`,
  raised while iterating (SDKs before 2.17 raised the raw httpx2 error; the core handles both).
- A read timeout while the stream is open: `anthropic.APITimeoutError` (cause `httpx2.ReadTimeout`).
- `Reply.disconnect`: `anthropic.APIConnectionError` (the SDK wraps transport errors that
  happen while sending the request), raised when the stream is opened.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import struct
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from aiohttp import web

from tests.fakes.prompt_cache import Billed

Api = Literal["anthropic", "vertex", "bedrock"]

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
ERROR_MESSAGES = {
    429: "Number of request tokens has exceeded your per-minute rate limit",
    500: "Internal server error",
    529: "Overloaded",
}
GOOGLE_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
}
AWS_ERROR_TYPES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    429: "ThrottlingException",
    503: "ServiceUnavailableException",
}


@dataclass
class Reply:
    """One scripted answer; build it with the classmethods."""

    chunks: list[str] = field(default_factory=lambda: ["ok"])
    http_status: int = 200
    first_token_delay: float = 0.0
    token_delay: float = 0.0
    stop_reason: str = "end_turn"
    input_tokens: int = 10
    output_tokens: int | None = None  # None: one per chunk
    cache_read: int = 0
    cache_write: int = 0
    error_after: int | None = None  # send this many deltas, then an error event
    error_type: str = "overloaded_error"
    drop_after: int | None = None  # send this many deltas, then cut the connection
    disconnect_first: bool = False  # cut the connection before answering at all
    hold_after: int | None = None  # send this many deltas, then wait for `release`
    release: asyncio.Event = field(default_factory=asyncio.Event, compare=False, repr=False)
    retry_after: float | None = None
    message: str | None = None  # error message; None: the API's usual wording

    @classmethod
    def text(
        cls,
        chunks: list[str],
        *,
        first_token_delay: float = 0.0,
        token_delay: float = 0.0,
        stop_reason: str = "end_turn",
        input_tokens: int = 10,
        output_tokens: int | None = None,
        cache_read: int = 0,
        cache_write: int = 0,
    ) -> Reply:
        return cls(
            chunks=list(chunks),
            first_token_delay=first_token_delay,
            token_delay=token_delay,
            stop_reason=stop_reason,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read=cache_read,
            cache_write=cache_write,
        )

    @classmethod
    def slow_first_token(cls, seconds: float, chunks: list[str] | None = None) -> Reply:
        return cls(chunks=list(chunks or ["ok"]), first_token_delay=seconds)

    @classmethod
    def status(cls, code: int, *, retry_after: float | None = None, message: str | None = None) -> Reply:
        return cls(chunks=[], http_status=code, retry_after=retry_after, message=message)

    @classmethod
    def status_only(cls, code: int, retry_after: float | None = None) -> Reply:
        return cls.status(code, retry_after=retry_after)

    @classmethod
    def error_midstream(
        cls, chunks: list[str] | None = None, after: int = 2, error_type: str = "overloaded_error"
    ) -> Reply:
        return cls(chunks=list(chunks or ["one ", "two ", "three"]), error_after=after, error_type=error_type)

    @classmethod
    def drop(cls, chunks: list[str] | None = None, after: int = 2) -> Reply:
        return cls(chunks=list(chunks or ["one ", "two ", "three"]), drop_after=after)

    @classmethod
    def disconnect(cls) -> Reply:
        return cls(chunks=[], disconnect_first=True)

    @classmethod
    def held(cls, chunks: list[str], after: int = 1) -> Reply:
        return cls(chunks=list(chunks), hold_after=after)

    @property
    def output_token_count(self) -> int:
        return self.output_tokens if self.output_tokens is not None else max(1, len(self.chunks))

    @property
    def sent_chunks(self) -> list[str]:
        """The deltas actually sent before a scripted fault."""
        cut = self.error_after if self.error_after is not None else self.drop_after
        return self.chunks if cut is None else self.chunks[:cut]


@dataclass
class Recorded:
    """One request as the fake received it."""

    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]
    model: str
    at: float  # event-loop time
    api: Api = "anthropic"
    stream: bool = False
    # When the streamed answer's first and last text were written (event-loop time), so a
    # benchmark measures from what the model really sent, not from the script's nominal pace.
    first_token_at: float | None = None
    last_token_at: float | None = None


def error_body(status: int, message: str = "") -> dict[str, Any]:
    """The first-party API's error JSON for an HTTP status."""
    kind = ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message or kind.replace("_", " ")}}


# --------------------------------------------------------------------------- wire encodings


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def eventstream_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude, string headers, payload, CRCs."""
    encoded = b"".join(_eventstream_header(name, value) for name, value in headers.items())
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", binascii.crc32(message))


def _eventstream_header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">BH", 7, len(raw_value)) + raw_value


def bedrock_chunk(data: dict[str, Any]) -> bytes:
    payload = json.dumps({"bytes": base64.b64encode(json.dumps(data).encode()).decode()}).encode()
    headers = {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
    return eventstream_frame(headers, payload)


def bedrock_exception(kind: str, message: str, original_status: int) -> bytes:
    payload = json.dumps(
        {"message": message, "originalStatusCode": original_status, "originalMessage": message}
    ).encode()
    headers = {":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"}
    return eventstream_frame(headers, payload)


@dataclass(frozen=True)
class _Wire:
    """How one API flavour frames stream events and errors."""

    content_type: str
    event: Callable[[str, dict[str, Any]], bytes]
    error: Callable[[Reply], bytes]


def _midstream_message(reply: Reply) -> str:
    return reply.message or ("Overloaded" if reply.error_type == "overloaded_error" else reply.error_type)


_SSE = _Wire(
    "text/event-stream; charset=utf-8",
    sse,
    lambda reply: sse(
        "error", {"type": "error", "error": {"type": reply.error_type, "message": _midstream_message(reply)}}
    ),
)
_EVENTSTREAM = _Wire(
    "application/vnd.amazon.eventstream",
    lambda _name, data: bedrock_chunk(data),
    lambda reply: bedrock_exception("modelStreamErrorException", _midstream_message(reply), 529),
)


# --------------------------------------------------------------------------- the server


class _ShuttingDown(Exception):
    """The fake is closing while a handler waits: cut its connection."""


class FakeAnthropic:
    """`async with FakeAnthropic() as fake:` — see the module docstring."""

    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.requests: list[Recorded] = []
        self.url = ""
        self._per_model: dict[str, deque[Reply]] = {}
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._serial = 0
        # When set, every streamed or whole answer reports the input, cache-write and cache-read
        # tokens this returns for the request body (tests/fakes/prompt_cache.py bills like the API).
        self.biller: Callable[[dict[str, Any]], Billed] | None = None

    @property
    def vertex_url(self) -> str:
        """The `base_url` for `AsyncAnthropicVertex` (Google's `/v1` prefix)."""
        return f"{self.url}/v1"

    def script_for(self, model: str) -> deque[Reply]:
        """Replies for requests naming this model; they take precedence over `script`."""
        return self._per_model.setdefault(model, deque())

    async def __aenter__(self) -> FakeAnthropic:
        app = web.Application()
        app.router.add_post("/v1/messages", self._anthropic)
        vertex = "/v1/projects/{project}/locations/{region}/publishers/anthropic/models/{tail}"
        app.router.add_post(vertex, self._vertex)
        app.router.add_post("/model/{model}/{action}", self._bedrock)
        # A handler still streaming at exit is cancelled after this grace period.
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop serving; streams still open are cut. Safe to call twice."""
        self._closing.set()  # wakes handlers that sleep or wait for a release
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def wait_for_requests(self, count: int) -> list[Recorded]:
        """Wait until `count` requests arrived (wrap in asyncio.timeout as a safety net)."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)
        return self.requests

    async def wait_for_request(self, index: int) -> Recorded:
        """The `index`-th request (0-based), once it has arrived."""
        return (await self.wait_for_requests(index + 1))[index]

    # ------------------------------------------------------------------ routes

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        model = str(body.get("model", ""))
        return await self._serve(request, "anthropic", body, model, bool(body.get("stream")))

    async def _vertex(self, request: web.Request) -> web.StreamResponse:
        model, _, specifier = request.match_info["tail"].rpartition(":")
        if specifier not in ("rawPredict", "streamRawPredict"):
            raise web.HTTPNotFound()
        body = await request.json()
        return await self._serve(request, "vertex", body, model, specifier == "streamRawPredict")

    async def _bedrock(self, request: web.Request) -> web.StreamResponse:
        action = request.match_info["action"]
        if action not in ("invoke", "invoke-with-response-stream"):
            raise web.HTTPNotFound()
        body = await request.json()
        stream = action == "invoke-with-response-stream"
        return await self._serve(request, "bedrock", body, request.match_info["model"], stream)

    # ------------------------------------------------------------------ answering

    async def _serve(
        self, request: web.Request, api: Api, body: dict[str, Any], model: str, stream: bool
    ) -> web.StreamResponse:
        recorded = await self._record(request, api, body, model, stream)
        reply = self._next(model)
        if self.biller is not None:
            billed = self.biller(body)
            reply = replace(
                reply,
                input_tokens=billed.input_tokens,
                cache_write=billed.cache_write,
                cache_read=billed.cache_read,
            )
        self._serial += 1
        request_id = f"req_fake{self._serial:06d}"
        if reply.disconnect_first:
            return self._abort(request)
        if reply.http_status != 200:
            return _error_response(api, reply, model, request_id)
        if not stream:
            return await self._whole(request, api, reply, model, request_id)
        wire = _EVENTSTREAM if api == "bedrock" else _SSE
        return await self._stream(request, reply, model, request_id, wire, recorded)

    async def _record(
        self, request: web.Request, api: Api, body: dict[str, Any], model: str, stream: bool
    ) -> Recorded:
        headers = {name.lower(): value for name, value in request.headers.items()}
        at = asyncio.get_running_loop().time()
        recorded = Recorded(request.path, headers, body, model, at, api, stream)
        async with self._arrived:
            self.requests.append(recorded)
            self._arrived.notify_all()
        return recorded

    def _next(self, model: str) -> Reply:
        own = self._per_model.get(model)
        if own:
            return own.popleft()
        if self.script:
            return self.script.popleft()
        return Reply()

    def _message(self, reply: Reply, model: str, text: str) -> dict[str, Any]:
        return {
            "id": f"msg_fake{self._serial:06d}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}] if text else [],
            "stop_reason": reply.stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": reply.input_tokens,
                "cache_creation_input_tokens": reply.cache_write,
                "cache_read_input_tokens": reply.cache_read,
                "output_tokens": reply.output_token_count,
            },
        }

    async def _whole(
        self, request: web.Request, api: Api, reply: Reply, model: str, request_id: str
    ) -> web.StreamResponse:
        """A non-streaming answer; a mid-stream fault becomes its whole-request equivalent."""
        if reply.error_after is not None:
            return _error_response(api, Reply.status(529, message=reply.message), model, request_id)
        if reply.drop_after is not None:
            return self._abort(request)
        try:
            await self._pause(reply.first_token_delay)
            await self._pause(None, reply.release if reply.hold_after is not None else None)
        except _ShuttingDown:
            return self._abort(request)
        message = self._message(reply, model, "".join(reply.chunks))
        return web.json_response(message, headers={"request-id": request_id})

    async def _stream(
        self, request: web.Request, reply: Reply, model: str, request_id: str, wire: _Wire, recorded: Recorded
    ) -> web.StreamResponse:
        headers = {"Content-Type": wire.content_type, "Cache-Control": "no-cache", "request-id": request_id}
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        try:
            await self._play(request, response.write, reply, model, wire, recorded)
        except ConnectionResetError:
            pass  # the client hung up (a stop button, a timeout): nothing left to tell it
        except _ShuttingDown:
            self._abort(request)
        return response

    async def _play(
        self,
        request: web.Request,
        write: Callable[[bytes], Awaitable[None]],
        reply: Reply,
        model: str,
        wire: _Wire,
        recorded: Recorded,
    ) -> None:
        start = self._message(reply, model, "")
        start["stop_reason"] = None
        start["usage"]["output_tokens"] = 1
        await write(wire.event("message_start", {"type": "message_start", "message": start}))
        block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        await write(wire.event("content_block_start", block))
        await write(wire.event("ping", {"type": "ping"}))
        await self._pause(reply.first_token_delay)
        for index, chunk in enumerate(reply.sent_chunks):
            if index == reply.hold_after:
                await self._pause(None, reply.release)
            if index:
                await self._pause(reply.token_delay)
            delta = {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": chunk},
            }
            await write(wire.event("content_block_delta", delta))
            recorded.last_token_at = asyncio.get_running_loop().time()
            recorded.first_token_at = recorded.first_token_at or recorded.last_token_at
        if reply.error_after is not None:
            await write(wire.error(reply))
            return
        if reply.drop_after is not None:
            self._abort(request)
            return
        await self._finish(write, reply, wire)

    @staticmethod
    async def _finish(write: Callable[[bytes], Awaitable[None]], reply: Reply, wire: _Wire) -> None:
        await write(wire.event("content_block_stop", {"type": "content_block_stop", "index": 0}))
        message_delta = {
            "type": "message_delta",
            "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": reply.output_token_count},
        }
        await write(wire.event("message_delta", message_delta))
        stop: dict[str, Any] = {"type": "message_stop"}
        if wire is _EVENTSTREAM:
            stop["amazon-bedrock-invocationMetrics"] = {
                "inputTokenCount": reply.input_tokens,
                "outputTokenCount": reply.output_token_count,
                "invocationLatency": 1,
                "firstByteLatency": 1,
            }
        await write(wire.event("message_stop", stop))

    async def _pause(self, seconds: float | None, release: asyncio.Event | None = None) -> None:
        """Sleep `seconds`, or wait for `release`; raise _ShuttingDown if the fake closes meanwhile."""
        if not seconds and release is None:
            return
        closing = asyncio.ensure_future(self._closing.wait())
        waiting = asyncio.ensure_future(
            release.wait() if release is not None else asyncio.sleep(seconds or 0)
        )
        try:
            await asyncio.wait({closing, waiting}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            waiting.cancel()
        if self._closing.is_set():
            raise _ShuttingDown

    @staticmethod
    def _abort(request: web.Request) -> web.StreamResponse:
        """Cut the TCP connection, as a network fault would."""
        assert request.transport is not None
        request.transport.abort()
        return web.StreamResponse()


def _error_response(api: Api, reply: Reply, model: str, request_id: str) -> web.Response:
    status = reply.http_status
    message = reply.message or (f"model: {model}" if status == 404 else ERROR_MESSAGES.get(status, ""))
    headers = {"request-id": request_id}
    if reply.retry_after is not None:
        headers["retry-after"] = f"{reply.retry_after:g}"
    if api == "vertex" and status in GOOGLE_STATUSES:
        body: dict[str, Any] = {
            "error": {"code": status, "message": message, "status": GOOGLE_STATUSES[status]}
        }
    elif api == "bedrock":
        body = {"message": message or "scripted failure"}
        headers["x-amzn-ErrorType"] = AWS_ERROR_TYPES.get(status, "InternalServerException")
    else:
        body = error_body(status, message) | {"request_id": request_id}
    return web.json_response(body, status=status, headers=headers)
