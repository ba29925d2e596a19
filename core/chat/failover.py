"""The walk over an alias's backends: failover, resume mid-reply, and the fallback model.

A backend that fails before saying anything hands over to the next. One that dies mid-reply
gets another turn (up to `routing.resume_attempts`), and whichever backend answers next starts
from the text already shown, sent as prefill, so the reader sees one continuous reply. A
different model (the alias's `fallback`) answers only when nothing was said yet, and the reply
says so.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.chat import payload, wording
from core.chat.providers import BackendError, Failure, Finished, TextDelta
from core.chat.routing import Route, Router
from core.chat.streaming import StreamingReply
from core.chat.usage import Tokens, cost_micros
from core.config import Settings
from core.errors import ModelError, ModelNotEnabled, ModelRequestError, ModelUnavailable
from core.events import Message
from core.store.chat_repo import UsageEntry

# One logger for the chat path, as before the split: operators filter on it.
log = logging.getLogger("core.chat")


@dataclass
class Attempt:
    """The state of one reply across backends."""

    alias: str
    delivered: str = ""  # everything shown so far, a continuation's prefill included
    extra_system: str = ""
    tokens: Tokens = field(default_factory=Tokens)
    cost: int = 0
    route: Route | None = None  # the backend that answered last
    model: str = ""
    stop_reason: str = ""
    failures: list[BackendError] = field(default_factory=list)

    def usage(self, user_id: str, trace_id: str, outcome: str, latency: float) -> UsageEntry | None:
        """This reply's usage row: the tokens and cost it was billed, under the backend tried
        last (None when no backend was tried)."""
        if self.route is None:
            return None
        return UsageEntry(
            user_id=user_id,
            alias=self.route.alias,
            provider=self.route.backend.provider,
            model=self.model or self.route.backend.model,
            input_tokens=self.tokens.input,
            output_tokens=self.tokens.output,
            cache_write_tokens=self.tokens.cache_write,
            cache_read_tokens=self.tokens.cache_read,
            latency_ms=int(latency * 1000),
            cost_micros=self.cost,
            trace_id=trace_id,
            outcome=outcome,
        )


class Failover:
    def __init__(self, settings: Settings, router: Router) -> None:
        self._settings = settings
        self._router = router

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
        model = route.settings
        request = _request(route, attempt, history)
        attempt.route = route
        first = True
        async for delta in route.client.stream(route.backend.model, request):
            if isinstance(delta, TextDelta):
                text = delta.text
                if first and attempt.delivered:
                    # The prefill was sent without trailing space; don't let it double up.
                    text = text.lstrip() if attempt.delivered[-1:].isspace() else text
                    first = False
                attempt.delivered += text
                reply.append(text)
            elif isinstance(delta, Finished):
                attempt.tokens = attempt.tokens + delta.tokens
                attempt.cost += cost_micros(delta.tokens, model.price)
                attempt.model, attempt.stop_reason = delta.model, delta.stop_reason


def _request(route: Route, attempt: Attempt, history: Sequence[Message]) -> dict[str, Any]:
    """The Messages API request for one backend, continuing from what was already shown."""
    model = route.settings
    built = payload.build(
        history,
        system_prompt=model.system_prompt + attempt.extra_system,
        budget=model.context_tokens,
        prefill=attempt.delivered,
    )
    request: dict[str, Any] = {
        "max_tokens": model.max_tokens,
        "messages": built.messages,
        "temperature": model.temperature,
    }
    if built.system:
        request["system"] = built.system
    return request


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
