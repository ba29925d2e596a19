"""Everything a running ember holds, built once from settings and closed once."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from core.access import AccessService, Clock
from core.budget import Budgets
from core.chat import AccessGate, ChatEngine
from core.chat.providers import ModelClient, build_client
from core.chat.routing import ClientFactory, Router
from core.chat.takeover import Takeovers
from core.config import Backend, Settings, database_url
from core.essays import EssayService
from core.events import utcnow
from core.ops.facts import breaker_states, store_facts
from core.ops.instruments import EssayMeter, MeteredGate, count_decision, metered_factory
from core.ops.liveness import HostLiveness
from core.ops.metrics import Metrics, StoreFacts
from core.ops.readiness import Readiness
from core.platforms import Platforms
from core.store import Store, ops_repo
from core.studio import StudioService

# How long closing waits for the replies' records still being written (milliseconds, normally;
# a store that hangs longer should not hold the shutdown for ever).
RECORDS_GRACE_SECONDS = 10.0


@dataclass
class Runtime:
    settings: Settings
    store: Store
    router: Router
    engine: ChatEngine
    access: AccessService
    # Feeds and announcements; its poll loop (`essays.run()`) is started by `ember run`.
    essays: EssayService
    # The model's own essays: drafts, review, publication (`studio.run()` in `ember run`).
    studio: StudioService
    # This process's metrics, and what `/readyz` asks (platforms register themselves here).
    metrics: Metrics
    readiness: Readiness
    # The engine's gate: counts replies in flight, and refuses new ones once draining.
    gate: MeteredGate
    # Each platform's facts, as its adapter describes them when it attaches.
    platforms: Platforms
    # Each platform's one request scheduler (created when its adapter attaches).
    budgets: Budgets = field(default_factory=Budgets)
    # Several hosts (a database they share; None on SQLite): this host's liveness lease, and
    # the sweep that finishes the replies of hosts that stopped.
    liveness: HostLiveness | None = None
    takeovers: Takeovers | None = None


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
    metrics = Metrics()
    router = Router(settings, metered_factory(client_factory or _sdk_clients(settings), settings, metrics))
    platforms = Platforms()
    service = AccessService(
        settings, store, clock=access_clock or utcnow, platforms=platforms, decisions=count_decision(metrics)
    )
    essays = EssayService(settings, store, observer=EssayMeter(metrics))
    readiness = Readiness(lambda: ops_repo.ping(store))
    runtime_budgets = Budgets()

    async def facts() -> StoreFacts:
        return await store_facts(store, utcnow())

    metrics.read_at_scrape(facts, lambda: breaker_states(router, settings))
    engine: ChatEngine | None = None
    try:
        if migrate:
            await store.upgrade()
        liveness, takeovers = await _several_hosts(store, runtime_budgets, readiness)
        # `access` overrides the gate (tests, embedding); the service still answers commands.
        gate = MeteredGate(access or service, metrics)
        engine = ChatEngine(settings, store, router, access=gate, metrics=metrics)
        # In an announcement's discussion thread the model reads the essay itself.
        engine.add_context_source(essays.discussion_context)
        # Everything built so far (modules, the SDKs' schemas, the store, the engine) lives as
        # long as the runtime. Moved out of the collector's sight, it is no longer scanned by
        # every full collection: with some 300,000 such objects, each scan held the event loop
        # for 100-160 ms, which every reply streaming at that moment waited out.
        gc.freeze()
        yield Runtime(
            settings,
            store,
            router,
            engine,
            service,
            essays,
            StudioService(settings, store, router, delivered=essays.wake),
            metrics,
            readiness,
            gate,
            platforms,
            runtime_budgets,
            liveness,
            takeovers,
        )
    finally:
        gc.unfreeze()  # what this runtime built may be collected once it is closed
        if engine is not None:
            # A reply whose buttons are on may still be writing its end: let it, within reason.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(engine.records_written(), RECORDS_GRACE_SECONDS)
        await essays.close()
        await runtime_budgets.aclose()
        await router.close()
        await store.close()


async def _several_hosts(
    store: Store, budgets: Budgets, readiness: Readiness
) -> tuple[HostLiveness | None, Takeovers | None]:
    """Where hosts share the database: this host's liveness lease, taken now (before it claims
    any message), which also tells the request budgets how many hosts share each token; and
    its sweep for the replies of hosts that stopped."""
    if store.dialect == "sqlite":
        return None, None
    liveness = HostLiveness(store, counted=budgets.share)
    await liveness.begin()
    connected = readiness.platforms
    return liveness, Takeovers(
        store,
        liveness.host_id,
        liveness.lease_seconds,
        connected=lambda platform: connected().get(platform, False),
    )


def _sdk_clients(settings: Settings) -> ClientFactory:
    def build(backend: Backend) -> ModelClient:
        return build_client(backend, settings.providers, settings.source)

    return build
