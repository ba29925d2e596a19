"""Model aliases → backends, with failover and a small circuit breaker per backend.

An alias names one model served by several backends (Anthropic's API, Bedrock, Vertex). The
router only orders them; the chat engine walks that order. A different model is used only when
the alias configures `fallback`, and then the reply says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from core.chat.providers import ModelClient, build_client
from core.config import Backend, ModelSettings, Settings

ClientFactory = Callable[[Backend], ModelClient]


class Breaker:
    """Opens after `threshold` consecutive failures; after `cooldown` one trial is let through."""

    def __init__(self, threshold: int, cooldown: float, clock: Callable[[], float]) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self.failures = 0
        self.open_until = 0.0

    @property
    def is_open(self) -> bool:
        return self._clock() < self.open_until

    def succeeded(self) -> None:
        self.failures = 0
        self.open_until = 0.0

    def failed(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            self.open_until = self._clock() + self.cooldown


@dataclass(frozen=True)
class Route:
    alias: str
    settings: ModelSettings
    backend: Backend
    client: ModelClient
    # True when this route serves a different model than the one asked for.
    is_fallback: bool

    @property
    def name(self) -> str:
        return f"{self.backend.provider}:{self.backend.model}"


class Router:
    def __init__(
        self,
        settings: Settings,
        client_factory: ClientFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._factory = client_factory or (lambda b: build_client(b, settings.providers, settings.source))
        self._clock = clock
        self._clients: dict[str, ModelClient] = {}
        self._breakers: dict[Backend, Breaker] = {}

    def breaker(self, backend: Backend) -> Breaker:
        if backend not in self._breakers:
            r = self._settings.routing
            self._breakers[backend] = Breaker(r.failure_threshold, r.cooldown_seconds, self._clock)
        return self._breakers[backend]

    def routes(self, alias: str, *, is_fallback: bool = False) -> list[Route]:
        """The backends of one alias: healthy ones in configured order, cooling ones last."""
        model = self._settings.models[alias]
        ordered = sorted(model.backends, key=lambda b: self.breaker(b).is_open)
        return [Route(alias, model, b, self._client(b), is_fallback) for b in ordered]

    def fallback(self, alias: str) -> list[Route]:
        target = self._settings.models[alias].fallback
        return self.routes(target, is_fallback=True) if target else []

    def record(self, route: Route, ok: bool) -> None:
        breaker = self.breaker(route.backend)
        breaker.succeeded() if ok else breaker.failed()

    def _client(self, backend: Backend) -> ModelClient:
        # One SDK client per provider: connection pools are shared by every alias using it.
        if backend.provider not in self._clients:
            self._clients[backend.provider] = self._factory(backend)
        return self._clients[backend.provider]

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
