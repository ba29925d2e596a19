"""`ember run`'s life: every part in one TaskGroup, and an orderly stop on SIGTERM or SIGINT.

Parts are the platforms (each attaches through `Platform`) and the runtime's background work
(access expiry sweep, essay poller and outbox, health server, event-loop lag sampler). When any
part fails, the group cancels the others and the error comes out of `run_parts`; the runtime is
closed only after every part has ended, so nothing runs half-alive over a closed store.

Stopping: new replies are refused at once; replies in flight get `shutdown_grace_seconds` to
finish, then are interrupted (the text so far stays, with a note to ask again); then the parts are cancelled.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Protocol

from core.chat.takeover import SWEEP_SECONDS
from core.errors import ConfigError
from core.ops.metrics import LoopLagSampler
from core.ops.server import serve as serve_health
from core.runtime import Runtime

log = logging.getLogger(__name__)
# After the grace, stopped replies get this long to write their last edit and their records.
WIND_DOWN_SECONDS = 5.0


class Platform(Protocol):
    """A chat platform `ember run` runs. `serve` runs until cancelled, and registers a
    connected-check with `runtime.readiness` once it can tell."""

    @property
    def name(self) -> str: ...

    @property
    def where(self) -> str:
        """Where it connects or listens, for the start-up log."""
        ...

    def serve(self, runtime: Runtime) -> Awaitable[None]: ...


@dataclass(frozen=True)
class Part:
    """One long-running piece of `ember run`: what it is, where it listens, how to run it."""

    name: str
    where: str
    run: Callable[[], Awaitable[None]]


def background_parts(runtime: Runtime) -> list[Part]:
    settings = runtime.settings
    server = settings.server
    parts = [
        Part("access expiry sweep", "every minute", runtime.access.sweep_forever),
        Part("essay poller and outbox", f"{len(settings.essays.feeds)} feed(s)", runtime.essays.run),
        Part("event-loop lag sampler", "every 0.5 s", LoopLagSampler(runtime.metrics).run),
        Part("essay studio", _studio_where(runtime), runtime.studio.run),
    ]
    if runtime.liveness is not None and runtime.takeovers is not None:
        lease = f"every {runtime.liveness.lease_seconds / 3:g} s"
        parts.append(Part("liveness lease of this host", lease, runtime.liveness.run))
        parts.append(Part("replies of stopped hosts", f"every {SWEEP_SECONDS:g} s", runtime.takeovers.run))
    if server.health_port:
        where = f"http://{server.host}:{server.health_port} (/healthz, /readyz, /metrics)"
        parts.append(Part("health server", where, functools.partial(_health_server, runtime)))
    return parts


def _studio_where(runtime: Runtime) -> str:
    studio = runtime.settings.studio
    if not studio.enabled:
        return "off (previews and publication of drafts made by `ember studio draft` only)"
    when = "off" if studio.schedule == "off" else f"{studio.schedule} at {studio.time} UTC"
    return f"drafts by {studio.writer(runtime.settings)}, schedule {when}"


async def _health_server(runtime: Runtime) -> None:
    settings = runtime.settings
    host, port = settings.server.host, settings.server.health_port
    try:
        await serve_health(runtime.metrics, runtime.readiness, host, port, runtime.studio)
    except OSError as error:
        raise ConfigError(
            settings.source,
            "server.health_port",
            f"cannot listen on {host}:{port} ({error.strerror})",
            "choose a free port, or 0 to turn the endpoints off",
        ) from None


def platform_parts(runtime: Runtime, platforms: list[Platform]) -> list[Part]:
    for platform in platforms:
        runtime.readiness.expect(platform.name)
    return [Part(p.name, p.where, functools.partial(p.serve, runtime)) for p in platforms]


async def run_parts(runtime: Runtime, parts: list[Part], stop: asyncio.Event) -> None:
    """Run every part until `stop` is set (then drain and cancel) or one part fails (then its
    error is raised, once every other part has ended)."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = []
            for part in parts:
                log.info("starting %s: %s", part.name, part.where)
                tasks.append(group.create_task(_named(part), name=part.name))
            await stop.wait()
            await drain(runtime, runtime.settings.server.shutdown_grace_seconds)
            for task in tasks:
                task.cancel()
    except ExceptionGroup as failed:
        # The first failure is the cause; the command line reports it like any other error.
        raise _first(failed) from None
    log.info("stopped cleanly")


def _first(group: BaseExceptionGroup[Exception]) -> Exception:
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


async def _named(part: Part) -> None:
    await part.run()
    # A part that returns on its own is a part that stopped working: say so, and stop the rest.
    raise RuntimeError(f"{part.name} ended unexpectedly")


async def drain(runtime: Runtime, grace: float) -> None:
    gate = runtime.gate
    gate.drain()
    if gate.in_flight:
        log.info("stopping: waiting up to %.0f s for %d reply(s) in flight", grace, gate.in_flight)
    try:
        await asyncio.wait_for(gate.idle(), grace)
    except TimeoutError:
        stopped = stop_replies(runtime)
        log.warning("stopping: %d reply(s) still running after %g s were stopped", stopped, grace)
    # The adapters then show each reply's end (its last edit, its buttons).
    with suppress(TimeoutError):
        await asyncio.wait_for(gate.callers_done(), WIND_DOWN_SECONDS)


def stop_replies(runtime: Runtime) -> int:
    """Interrupt every reply the engine is still generating: each keeps its text so far and ends
    with a note asking to ask again."""
    engine = runtime.engine
    return sum(engine.interrupt(reply_id) for reply_id in engine.in_flight())


@contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set `stop` (a second one is ignored: the drain is already running)."""
    loop = asyncio.get_running_loop()
    handled = (signal.SIGTERM, signal.SIGINT)

    def requested(signum: int) -> None:
        if not stop.is_set():
            log.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    for signum in handled:
        loop.add_signal_handler(signum, requested, signum)
    try:
        yield
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
