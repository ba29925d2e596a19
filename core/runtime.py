"""Everything a running ember holds, built once from settings and closed once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from core.access import AccessService, Clock
from core.chat import AccessGate, ChatEngine
from core.chat.routing import ClientFactory, Router
from core.config import Settings, database_url
from core.essays import EssayService
from core.events import utcnow
from core.store import Store


@dataclass
class Runtime:
    settings: Settings
    store: Store
    router: Router
    engine: ChatEngine
    access: AccessService
    # Feeds and announcements; its poll loop (`essays.run()`) is started by `ember run`.
    essays: EssayService


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    client_factory: ClientFactory | None = None,
    access: AccessGate | None = None,
    migrate: bool = True,
    access_clock: Clock | None = None,
) -> AsyncIterator[Runtime]:
    """Open the store (migrating it), the router and the engine; close them in reverse.
    `access_clock` lets tests move time for grant expiry and daily limits without sleeping."""
    store = Store.open(database_url(settings), echo=settings.database.echo)
    router = Router(settings, client_factory)
    service = AccessService(settings, store, clock=access_clock or utcnow)
    essays = EssayService(settings, store)
    try:
        if migrate:
            await store.upgrade()
        # `access` overrides the gate (tests, embedding); the service still answers commands.
        engine = ChatEngine(settings, store, router, access=access or service)
        # In an announcement's discussion thread the model reads the essay itself.
        engine.add_context_source(essays.discussion_context)
        yield Runtime(settings, store, router, engine, access=service, essays=essays)
    finally:
        await essays.close()
        await router.close()
        await store.close()
