"""Everything a running ember holds, built once from settings and closed once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from core.chat import AccessGate, ChatEngine
from core.config import Settings
from core.routing import ClientFactory, Router
from core.store import Store


@dataclass
class Runtime:
    settings: Settings
    store: Store
    router: Router
    engine: ChatEngine


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    client_factory: ClientFactory | None = None,
    access: AccessGate | None = None,
    migrate: bool = True,
) -> AsyncIterator[Runtime]:
    """Open the store (migrating it), the router and the engine; close them in reverse."""
    store = Store.open(settings.database.url, echo=settings.database.echo)
    router = Router(settings, client_factory)
    try:
        if migrate:
            await store.upgrade()
        engine = ChatEngine(settings, store, router, access=access)
        yield Runtime(settings, store, router, engine)
    finally:
        await router.close()
        await store.close()
