"""A loopback fake of the Anthropic Messages API, driven by the real `anthropic` SDK.

    async with FakeAnthropic() as fake:
        client = AsyncAnthropic(api_key="test", base_url=fake.url, max_retries=0)
        fake.script.append(Reply.text(["Hel", "lo"]))
        fake.script.append(Reply.status(529))
        fake.script_for("claude-other").append(Reply.drop(after=2))

Each request takes the next scripted Reply for its model (`script_for(model)`), else the next
from the shared `script`, else a default "ok" reply. Every request is recorded in
`fake.requests` (path, headers, JSON body, model).

Streaming answers follow the real SSE sequence: message_start, content_block_start, ping,
content_block_delta×N, content_block_stop, message_delta, message_stop. The Vertex path
(`/v1/projects/{p}/locations/{r}/publishers/anthropic/models/{model}:streamRawPredict`) answers
the same way, so `AsyncAnthropicVertex(base_url=fake.url + "/v1", ...)` works too.

Faults, as the SDK sees them:
- `Reply.status(529)` etc.: an `APIStatusError` subclass with that status before any text.
- `Reply.error_midstream(after=2)`: two deltas, then `event: error` — the SDK raises an
  `APIStatusError` whose status is the stream's 200.
- `Reply.drop(after=2)`: two deltas, then the TCP connection is cut — a raw `httpx2`
  transport error (`RemoteProtocolError`) while iterating, not an anthropic error.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass
class Reply:
    """One scripted answer."""

    chunks: list[str] = field(default_factory=lambda: ["ok"])
    status: int = 200
    first_token_delay: float = 0.0
    token_delay: float = 0.0
    stop_reason: str = "end_turn"
    input_tokens: int = 10
    cache_read: int = 0
    cache_write: int = 0
    error_after: int | None = None  # send this many deltas, then an error event
    drop_after: int | None = None  # send this many deltas, then cut the connection
    retry_after: float | None = None

    @classmethod
    def text(cls, chunks: list[str], **kw: Any) -> Reply:
        return cls(chunks=list(chunks), **kw)

    @classmethod
    def status_only(cls, status: int, retry_after: float | None = None) -> Reply:
        return cls(chunks=[], status=status, retry_after=retry_after)

    @classmethod
    def error_midstream(cls, chunks: list[str] | None = None, after: int = 2) -> Reply:
        return cls(chunks=chunks or ["one ", "two ", "three"], error_after=after)

    @classmethod
    def drop(cls, chunks: list[str] | None = None, after: int = 2) -> Reply:
        return cls(chunks=chunks or ["one ", "two ", "three"], drop_after=after)

    @property
    def output_tokens(self) -> int:
        return max(1, len(self.chunks))


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]
    model: str
    at: float


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def error_body(status: int, message: str = "") -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message or kind.replace("_", " ")}}


class FakeAnthropic:
    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self._per_model: dict[str, deque[Reply]] = {}
        self.requests: list[Recorded] = []
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    def script_for(self, model: str) -> deque[Reply]:
        return self._per_model.setdefault(model, deque())

    async def __aenter__(self) -> FakeAnthropic:
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post(
            "/v1/projects/{project}/locations/{region}/publishers/anthropic/models/{tail}", self._vertex
        )
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for_requests(self, count: int) -> list[Recorded]:
        """Wait until `count` requests arrived (wrap in asyncio.timeout as a safety net)."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)
        return self.requests

    # ------------------------------------------------------------------ handlers

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        return await self._answer(request, body, str(body.get("model", "")))

    async def _vertex(self, request: web.Request) -> web.StreamResponse:
        model, _, _ = request.match_info["tail"].partition(":")
        body = await request.json()
        return await self._answer(request, body, model)

    async def _answer(self, request: web.Request, body: dict[str, Any], model: str) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        async with self._arrived:
            headers = {k.lower(): v for k, v in request.headers.items()}
            self.requests.append(Recorded(request.path, headers, body, model, loop.time()))
            self._arrived.notify_all()
        reply = self._next(model)
        if reply.status != 200:
            headers = {"retry-after": str(reply.retry_after)} if reply.retry_after is not None else {}
            return web.json_response(
                error_body(reply.status, f"scripted {reply.status}"), status=reply.status, headers=headers
            )
        if reply.first_token_delay:
            await asyncio.sleep(reply.first_token_delay)
        if body.get("stream"):
            return await self._stream(request, reply, model)
        return web.json_response(self._message(reply, model, "".join(reply.chunks)))

    def _next(self, model: str) -> Reply:
        own = self._per_model.get(model)
        if own:
            return own.popleft()
        if self.script:
            return self.script.popleft()
        return Reply()

    @staticmethod
    def _message(reply: Reply, model: str, text: str) -> dict[str, Any]:
        return {
            "id": f"msg_{uuid.uuid4().hex[:20]}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}] if text else [],
            "stop_reason": reply.stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": reply.input_tokens,
                "output_tokens": reply.output_tokens,
                "cache_creation_input_tokens": reply.cache_write,
                "cache_read_input_tokens": reply.cache_read,
            },
        }

    async def _stream(self, request: web.Request, reply: Reply, model: str) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        start = self._message(reply, model, "")
        start["stop_reason"] = None
        start["usage"]["output_tokens"] = 1
        await response.write(_sse("message_start", {"type": "message_start", "message": start}))
        block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        await response.write(_sse("content_block_start", block))
        await response.write(_sse("ping", {"type": "ping"}))
        for index, chunk in enumerate(reply.chunks):
            if index == reply.error_after:
                await response.write(_sse("error", error_body(529, "Overloaded")))
                return response
            if index == reply.drop_after:
                assert request.transport is not None
                request.transport.abort()  # cut the connection mid-stream, as a network fault would
                return response
            if reply.token_delay and index:
                await asyncio.sleep(reply.token_delay)
            delta = {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": chunk},
            }
            await response.write(_sse("content_block_delta", delta))
        await response.write(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        usage = {"output_tokens": reply.output_tokens}
        message_delta = {
            "type": "message_delta",
            "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
            "usage": usage,
        }
        await response.write(_sse("message_delta", message_delta))
        await response.write(_sse("message_stop", {"type": "message_stop"}))
        await response.write_eof()
        return response
