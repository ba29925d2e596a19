"""The walk over an alias's backends: failover, resume mid-reply, and the fallback model.

A backend that fails before saying anything hands over to the next. One that dies mid-reply
gets another turn (up to `routing.resume_attempts`), and whichever backend answers next starts
from the text already shown, sent as prefill, so the reader sees one continuous reply. A
different model (the alias's `fallback`) answers only when nothing was said yet, and the reply
says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.chat import payload, wording
from core.chat.calibration import Calibration
from core.chat.providers import BackendError, Delta, Failure, TextDelta, UsageSeen
from core.chat.routing import Route, Router
from core.chat.streaming import StreamingReply
from core.chat.usage import Tokens, cost_micros, unreported_output
from core.config import Backend, Settings
from core.errors import ModelError, ModelNotEnabled, ModelRequestError, ModelUnavailable
from core.events import Message
from core.store.chat_repo import UsageEntry

# Bedrock model ids (anthropic.claude-3-opus-20240229-v1:0, …) of models it does not cache.
BEDROCK_UNCACHED = ("claude-3-opus", "claude-3-sonnet", "claude-3-haiku", "claude-3-5-sonnet-20240620")
# One logger for the chat path, as before the split: operators filter on it.
log = logging.getLogger("core.chat")


@dataclass
class BackendTry:
    """One request to one backend within a reply: the first try, a resume or a failover. Its
    tokens are what the backend reported billing (`message_start`, then `message_delta`)."""

    route: Route
    started: float
    tokens: Tokens = field(default_factory=Tokens)
    model: str = ""
    outcome: str = ""  # done | error (it broke) | "" while running: the reply's status then
    text: str = ""  # what this request streamed (for output billed but not yet reported)
    ended: float | None = None

    def billed(self) -> Tokens:
        """What this request is billed. One that never reached `message_delta` (stopped, or
        broken mid-stream) generated more output than `message_start` reported."""
        if self.outcome == "done":
            return self.tokens
        return unreported_output(self.tokens, self.text)

    def cost(self) -> int:
        return cost_micros(self.billed(), self.route.settings.price)


@dataclass
class Attempt:
    """The state of one reply across backends."""

    alias: str
    delivered: str = ""  # everything shown so far, a continuation's prefill included
    extra_system: str = ""
    route: Route | None = None  # the backend that answered last
    model: str = ""
    stop_reason: str = ""
    failures: list[BackendError] = field(default_factory=list)
    tries: list[BackendTry] = field(default_factory=list)

    @property
    def tokens(self) -> Tokens:
        """Every request's billed tokens, broken ones included."""
        return sum((t.billed() for t in self.tries), Tokens())

    @property
    def cost(self) -> int:
        return sum(t.cost() for t in self.tries)

    def usage(self, user_id: str, trace_id: str, outcome: str, latency: float) -> list[UsageEntry]:
        """One usage row per request this reply made, in order, each under its own backend
        with what that backend billed. The last request ends as the reply did (`outcome`);
        the ones before it broke. `latency` is the reply's, given to a request still running."""
        return [
            UsageEntry(
                user_id=user_id,
                alias=one.route.alias,
                provider=one.route.backend.provider,
                model=one.model or one.route.backend.model,
                input_tokens=billed.input,
                output_tokens=billed.output,
                cache_write_tokens=billed.cache_write,
                cache_read_tokens=billed.cache_read,
                latency_ms=int(1000 * (latency if one.ended is None else one.ended - one.started)),
                cost_micros=one.cost(),
                trace_id=trace_id,
                outcome=one.outcome or outcome,
                attempt=number,
            )
            for number, one in enumerate(self.tries)
            for billed in (one.billed(),)
        ]


class Failover:
    def __init__(self, settings: Settings, router: Router) -> None:
        self._settings = settings
        self._router = router
        self._calibration = Calibration()

    async def stream(
        self, attempt: Attempt, history: Sequence[Message], reply: StreamingReply, trace_id: str
    ) -> None:
        """Stream one answer into `reply`, walking the routes; raise ModelError when all fail."""
        queue = self._router.routes(attempt.alias)
        resumes = self._settings.routing.resume_attempts
        fell_back = False
        while queue:
            route = queue.pop(0)
            before = len(attempt.delivered)
            try:
                await self._stream_one(route, attempt, history, reply)
                self._router.record(route, ok=True)
                return
            except BackendError as error:
                self._router.record(route, ok=False)
                attempt.failures.append(error)
                _log_failure(route, error, trace_id)
                if len(attempt.delivered) > before and resumes > 0:
                    resumes -= 1
                    queue.append(route)  # the stream died mid-reply: give it another turn
            if not queue and not attempt.delivered and not fell_back:
                fell_back = True  # a different model only when nothing was said yet
                queue = self._fallback_routes(attempt, reply, trace_id)
        raise _final_error(attempt, trace_id)

    def _fallback_routes(self, attempt: Attempt, reply: StreamingReply, trace_id: str) -> list[Route]:
        routes = self._router.fallback(attempt.alias)
        if routes:
            asked = self._settings.models[attempt.alias].display_name or attempt.alias
            other = routes[0].settings.display_name or routes[0].alias
            log.warning("falling back from %s to %s [trace %s]", attempt.alias, routes[0].alias, trace_id)
            reply.append(wording.fallback_note(asked, other))  # never silently
        return routes

    async def _stream_one(
        self, route: Route, attempt: Attempt, history: Sequence[Message], reply: StreamingReply
    ) -> None:
        conversation = history[-1].place.key
        budget = self._calibration.budget(conversation, route.settings.context_tokens)
        request, estimated = _request(route, attempt, history, budget)
        attempt.route = route
        loop = asyncio.get_running_loop()
        this = BackendTry(route, started=loop.time())
        attempt.tries.append(this)
        try:
            deltas = route.client.stream(route.backend.model, request)
            await self._read(
                deltas,
                attempt,
                this,
                reply,
                lambda counted: self._calibration.observe(conversation, estimated, counted),
            )
        except BackendError as error:
            this.tokens, this.outcome = error.billed, "error"
            raise
        finally:
            this.ended = loop.time()

    @staticmethod
    async def _read(
        deltas: AsyncIterator[Delta],
        attempt: Attempt,
        this: BackendTry,
        reply: StreamingReply,
        counted: Callable[[int], None],
    ) -> None:
        first = True
        async for delta in deltas:
            if isinstance(delta, TextDelta):
                text = delta.text
                if first and attempt.delivered:
                    # The prefill was sent without trailing space; don't let it double up.
                    text = text.lstrip() if attempt.delivered[-1:].isspace() else text
                    first = False
                this.text += delta.text
                attempt.delivered += text
                reply.append(text)
            elif isinstance(delta, UsageSeen):
                this.tokens, this.model = delta.tokens, delta.model
                tokens = delta.tokens
                counted(tokens.input + tokens.cache_write + tokens.cache_read)  # the whole prompt
            else:
                this.tokens, this.model, this.outcome = delta.tokens, delta.model, "done"
                attempt.model, attempt.stop_reason = delta.model, delta.stop_reason


def _request(
    route: Route, attempt: Attempt, history: Sequence[Message], budget: int
) -> tuple[dict[str, Any], int]:
    """The Messages API request for one backend, continuing from what was already shown, and
    its estimated input tokens. `budget` is in estimated tokens (see core.chat.calibration)."""
    model = route.settings
    built = payload.build(
        history,
        system_prompt=model.system_prompt + attempt.extra_system,
        budget=budget,
        prefill=attempt.delivered,
        cache=caches_prompts(route.backend),
    )
    request: dict[str, Any] = {
        "max_tokens": model.max_tokens,
        "messages": built.messages,
        "temperature": model.temperature,
    }
    if built.system:
        request["system"] = built.system
    return request, built.estimated_tokens


def caches_prompts(backend: Backend) -> bool:
    """Whether the backend caches prompts for its model. Bedrock does so only for newer Claude
    models (not Claude 3 Opus, Sonnet or Haiku, nor 3.5 Sonnet v1): there the breakpoints are
    left off. The first-party API and Vertex cache every Claude 3 model."""
    return backend.provider != "bedrock" or not any(old in backend.model for old in BEDROCK_UNCACHED)


def _log_failure(route: Route, error: BackendError, trace_id: str) -> None:
    if error.failure is Failure.NOT_FOUND:
        log.error(
            "backend %s answered 404 for model %s: the retired model is not enabled for these "
            "credentials; request access or remove this backend [trace %s]: %s",
            route.backend.provider,
            route.backend.model,
            trace_id,
            error.detail,
        )
    elif error.failure is Failure.REFUSED:
        log.error("backend %s refused the request [trace %s]: %s", route.name, trace_id, error.detail)
    else:
        log.warning("backend %s failed, trying the next [trace %s]: %s", route.name, trace_id, error.detail)


def _final_error(attempt: Attempt, trace_id: str) -> ModelError:
    kinds = {f.failure for f in attempt.failures}
    detail = "; ".join(f.detail for f in attempt.failures) or "no backend is configured"
    if kinds == {Failure.NOT_FOUND}:
        return ModelNotEnabled(detail, trace_id)
    if kinds and Failure.RETRYABLE not in kinds:
        return ModelRequestError(detail, trace_id)
    return ModelUnavailable(detail, trace_id)
