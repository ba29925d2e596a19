"""Anthropic-family clients (direct API, Bedrock, Vertex) behind one neutral stream of deltas.

The SDK's own clients do the protocol work; this module only builds them from settings, sends
one request and classifies what goes wrong, so routing can decide between "try the next backend"
and "tell the operator".
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

import anthropic
import httpx2
from anthropic.lib.streaming import TextEvent
from anthropic.types import MessageDeltaUsage, RawMessageDeltaEvent, RawMessageStartEvent
from anthropic.types import Usage as ReportedUsage

from core.chat.usage import Tokens
from core.config import Backend, ProvidersSettings, secret


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class UsageSeen:
    """What the backend has reported billing this request so far: at `message_start` (input,
    cache write, cache read, and the first output token) and again at `message_delta`."""

    model: str
    tokens: Tokens


@dataclass(frozen=True)
class Finished:
    stop_reason: str
    model: str
    tokens: Tokens


Delta = TextDelta | UsageSeen | Finished


class Failure(Enum):
    """Why a request failed, from routing's point of view."""

    RETRYABLE = "retryable"  # overloaded, rate limited, 5xx, timeout, connection lost
    NOT_FOUND = "not_found"  # the model is not enabled for these credentials (404)
    REFUSED = "refused"  # 400/401/403: the request or the credentials are wrong


class BackendError(Exception):
    """A request that failed. `billed` is the usage its backend reported before it broke (zero
    when it broke before `message_start`): those tokens are billed all the same."""

    def __init__(
        self, failure: Failure, detail: str, status: int | None = None, billed: Tokens | None = None
    ) -> None:
        self.failure = failure
        self.detail = detail
        self.status = status
        self.billed = billed or Tokens()
        super().__init__(detail)


class ModelClient(Protocol):
    """What the engine needs from a backend; the real ones wrap the anthropic SDK."""

    def stream(self, model: str, request: Mapping[str, Any]) -> AsyncIterator[Delta]: ...

    async def close(self) -> None: ...


def classify(exc: BaseException) -> BackendError:
    """Map SDK and transport exceptions onto routing decisions."""
    if isinstance(exc, BackendError):
        return exc
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        # A mid-stream `event: error` arrives as an APIStatusError with the stream's status 200.
        if status == 200 or status == 429 or status == 408 or status >= 500:
            return BackendError(
                Failure.RETRYABLE, f"{type(exc).__name__} {status}: {_api_message(exc)}", status
            )
        if status == 404:
            return BackendError(Failure.NOT_FOUND, f"404: {_api_message(exc)}", status)
        return BackendError(Failure.REFUSED, f"{status}: {_api_message(exc)}", status)
    if isinstance(exc, anthropic.APIConnectionError | anthropic.APITimeoutError | httpx2.TransportError):
        # A connection dropped mid-stream is a raw httpx2 transport error, not an SDK error.
        return BackendError(Failure.RETRYABLE, f"{type(exc).__name__}: {exc}")
    raise exc


def _api_message(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return exc.message


class SDKClient:
    """One backend: an anthropic SDK client (Anthropic, Bedrock or Vertex flavour)."""

    def __init__(self, client: anthropic.AsyncAnthropic | Any, provider: str) -> None:
        self._client = client
        self.provider = provider

    async def stream(self, model: str, request: Mapping[str, Any]) -> AsyncIterator[Delta]:
        body = dict(request)
        extra_body = {"temperature": body.pop("temperature")} if "temperature" in body else None
        with warnings.catch_warnings():
            # Serving the retired model is the point; silence only the SDK's end-of-life notice.
            warnings.filterwarnings(
                "ignore", message=r"The model '.*' is deprecated", category=DeprecationWarning
            )
            manager = self._client.messages.stream(model=model, extra_body=extra_body, **body)
        seen = Tokens()
        try:
            async with manager as stream:
                async for event in stream:
                    if isinstance(event, TextEvent):
                        yield TextDelta(event.text)
                    elif isinstance(event, RawMessageStartEvent):
                        seen = _reported(seen, event.message.usage)
                        yield UsageSeen(event.message.model, seen)
                    elif isinstance(event, RawMessageDeltaEvent):
                        seen = _reported(seen, event.usage)
                final = await stream.get_final_message()
        except Exception as exc:
            error = classify(exc)
            error.billed = seen
            raise error from exc
        yield Finished(stop_reason=final.stop_reason or "end_turn", model=final.model, tokens=seen)

    async def close(self) -> None:
        await self._client.close()


def build_client(backend: Backend, providers: ProvidersSettings, source: str = "") -> SDKClient:
    """Construct the SDK client for a backend; secrets are read from the environment here."""
    if backend.provider == "anthropic":
        p = providers.anthropic
        key = secret(p.api_key_env, "providers.anthropic.api_key_env", source)
        client: Any = anthropic.AsyncAnthropic(
            api_key=key, base_url=p.base_url or None, max_retries=0, timeout=p.timeout_seconds
        )
    elif backend.provider == "bedrock":
        b = providers.bedrock
        client = anthropic.AsyncAnthropicBedrock(
            aws_region=b.aws_region,
            aws_profile=b.aws_profile or None,
            aws_access_key=_optional_secret(
                b.aws_access_key_env, "providers.bedrock.aws_access_key_env", source
            ),
            aws_secret_key=_optional_secret(
                b.aws_secret_key_env, "providers.bedrock.aws_secret_key_env", source
            ),
            aws_session_token=_optional_secret(
                b.aws_session_token_env, "providers.bedrock.aws_session_token_env", source
            ),
            base_url=b.base_url or None,
            max_retries=0,
            timeout=b.timeout_seconds,
        )
    else:
        v = providers.vertex
        client = anthropic.AsyncAnthropicVertex(
            region=v.region,
            project_id=v.project_id,
            access_token=_optional_secret(v.access_token_env, "providers.vertex.access_token_env", source),
            base_url=v.base_url or None,
            max_retries=0,
            timeout=v.timeout_seconds,
        )
    return SDKClient(client, backend.provider)


def _reported(seen: Tokens, usage: ReportedUsage | MessageDeltaUsage) -> Tokens:
    """The usage so far, updated with what an event reports (a `message_delta` may leave the
    input counts out: None keeps what `message_start` said)."""
    return Tokens(
        input=_count(usage.input_tokens, seen.input),
        output=_count(usage.output_tokens, seen.output),
        cache_write=_count(usage.cache_creation_input_tokens, seen.cache_write),
        cache_read=_count(usage.cache_read_input_tokens, seen.cache_read),
    )


def _count(reported: int | None, before: int) -> int:
    return before if reported is None else reported


def _optional_secret(var: str, key: str, source: str) -> str | None:
    return secret(var, key, source) if var else None
