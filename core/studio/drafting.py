"""Drafting: ask the model for an essay through the alias's backends, and keep what it wrote.

The request goes through the router like every chat reply (the alias's backends in order,
resting ones last, each failure recorded by its breaker), but an essay is asked for whole: a
backend that fails, even mid-essay, hands the whole request to the next one, so the text kept is
one answer from one model, never stitched. No fallback alias answers for the model either: an
essay is the model's own or there is none (ModelUnavailable).

What is kept (core.store.studio_repo): the request as sent (system prompt, messages,
parameters), the model and backend that answered, the text exactly as it streamed, and the
sha256 of that text's UTF-8 bytes, taken now.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.chat.providers import BackendError, Finished, TextDelta
from core.chat.routing import Route, Router
from core.chat.usage import Tokens, cost_micros
from core.errors import ModelUnavailable, new_trace_id
from core.store.studio_records import DraftView, NewDraft
from core.store.studio_repo import StudioRepo

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Answer:
    text: str
    provider: str
    model: str
    stop_reason: str
    tokens: Tokens = field(default_factory=Tokens)
    cost_micros: int = 0
    latency_ms: int = 0


def text_hash(text: str) -> str:
    """The content hash of an essay: sha256 of its UTF-8 bytes, hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


async def ask_whole(router: Router, alias: str, request: dict[str, Any]) -> Answer:
    """One complete answer from the first backend of `alias` that gives one."""
    failures: list[str] = []
    for route in router.routes(alias):
        try:
            answer = await _ask(route, request)
        except BackendError as error:
            router.record(route, ok=False)
            failures.append(f"{route.name}: {error.detail}")
            log.warning("studio: backend %s failed while drafting: %s", route.name, error.detail)
            continue
        router.record(route, ok=True)
        return answer
    raise ModelUnavailable("; ".join(failures) or "no backend is configured", new_trace_id())


async def _ask(route: Route, request: dict[str, Any]) -> Answer:
    parts: list[str] = []
    model, stop_reason, tokens = route.backend.model, "", Tokens()
    started = time.monotonic()
    async for delta in route.client.stream(route.backend.model, request):
        if isinstance(delta, TextDelta):
            parts.append(delta.text)
        elif isinstance(delta, Finished):
            model, stop_reason, tokens = delta.model or model, delta.stop_reason, delta.tokens
    latency = int(1000 * (time.monotonic() - started))
    cost = cost_micros(tokens, route.settings.price)
    return Answer("".join(parts), route.backend.provider, model, stop_reason, tokens, cost, latency)


class Drafter:
    def __init__(self, router: Router, repo: StudioRepo, clock: Clock) -> None:
        self._router = router
        self._repo = repo
        self._clock = clock

    async def draft(
        self,
        alias: str,
        strategy: str,
        request: dict[str, Any],
        *,
        slot: str | None,
        by: str,
        review_on: Sequence[str],
    ) -> DraftView | None:
        """Write and keep one draft; None when `slot` was drafted already (elsewhere, meanwhile)."""
        answer = await ask_whole(self._router, alias, request)
        new = NewDraft(
            uid=str(uuid.uuid4()),
            slot=slot,
            strategy=strategy,
            alias=alias,
            request_json=json.dumps(request, ensure_ascii=False, sort_keys=True),
            provider=answer.provider,
            model=answer.model,
            stop_reason=answer.stop_reason,
            text=answer.text,
            sha256=text_hash(answer.text),
            created_by=by,
            input_tokens=answer.tokens.input,
            output_tokens=answer.tokens.output,
            cache_write_tokens=answer.tokens.cache_write,
            cache_read_tokens=answer.tokens.cache_read,
            cost_micros=answer.cost_micros,
            latency_ms=answer.latency_ms,
        )
        draft = await self._repo.add_draft(new, review_on, self._clock())
        if draft is not None:
            log.info(
                "studio: draft #%d written by %s via %s (%s)", draft.id, alias, answer.provider, answer.model
            )
        return draft
