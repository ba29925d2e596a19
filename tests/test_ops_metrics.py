"""The operator's endpoints over a real runtime: /healthz, /readyz and /metrics, scraped over
HTTP and parsed with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from unittest.mock import patch

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bots import console
from core.chat.streaming import StreamingReply
from core.config import settings_from_dict
from core.errors import ConfigError
from core.events import User
from core.ops.readiness import Readiness
from core.ops.server import listening
from core.ops.timed_sink import TimedSink
from core.runtime import Runtime, open_runtime
from core.store import Store, ops_repo
from tests.essay_support import RecordingAnnouncer, now_post
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.feed_server import FeedServer

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
async def runtime(tmp_path: Path, fake_anthropic: FakeAnthropic) -> AsyncIterator[Runtime]:
    settings = settings_from_dict(
        {
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}"},
            "providers": {"anthropic": {"base_url": fake_anthropic.url}},
            "models": {
                "opus-3": {
                    "backends": [
                        {"provider": "anthropic", "model": "claude-3-opus-20240229"},
                        {"provider": "anthropic", "model": "claude-3-opus-backup"},
                    ]
                }
            },
            "access": {"mode": "open"},
        }
    )
    with patch.dict("os.environ", {"ANTHROPIC_API_KEY": "sk-ant-test-key"}):
        async with open_runtime(settings) as opened:
            yield opened


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def test_metrics_count_a_failover_tokens_cost_and_latency(
    runtime: Runtime, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.extend(
        [Reply.status(529), Reply.text(["Hello ", "there."], input_tokens=1000, output_tokens=100)]
    )
    out = io.StringIO()
    await console.chat(runtime, name="Ada", alias=None, stdin=io.StringIO("hi\n"), out=out)
    assert "Hello there." in out.getvalue()
    async with listening(runtime.metrics, runtime.readiness, "127.0.0.1", 0) as url:
        status, body = await get(f"{url}/metrics")
    assert status == 200
    samples = parse(body)
    first, backup = "anthropic:claude-3-opus-20240229", "anthropic:claude-3-opus-backup"
    assert samples[("ember_model_failovers_total", (("alias", "opus-3"), ("backend", first)))] == 1
    tokens = ("ember_model_tokens_total", (("alias", "opus-3"), ("backend", backup), ("kind", "output")))
    assert samples[tokens] == 100
    # 1000 input at $15/M and 100 output at $75/M.
    cost = samples[("ember_model_cost_dollars_total", (("alias", "opus-3"), ("backend", backup)))]
    assert cost == pytest.approx(0.0225)
    assert samples[("ember_model_first_token_seconds_count", (("backend", backup),))] == 1
    assert samples[("ember_model_duration_seconds_count", (("backend", first),))] == 1
    assert samples[("ember_access_decisions_total", (("decision", "admitted"),))] == 1
    assert samples[("ember_replies_total", (("outcome", "done"), ("platform", "console")))] == 1
    assert samples[("ember_first_visible_text_seconds_count", (("platform", "console"),))] == 1
    assert samples[("ember_backend_breaker_open", (("backend", first),))] == 0
    assert samples[("ember_essay_oldest_owed_seconds", ())] == 0
    assert samples[("ember_essay_deliveries", (("state", "pending"),))] == 0


async def test_breaker_shows_open_after_repeated_failures(
    runtime: Runtime, fake_anthropic: FakeAnthropic
) -> None:
    threshold = runtime.settings.routing.failure_threshold
    fake_anthropic.script.extend([Reply.status(529)] * (threshold * 2))
    out = io.StringIO()
    await console.chat(runtime, name="Ada", alias=None, stdin=io.StringIO("hi\n" * threshold), out=out)
    async with listening(runtime.metrics, runtime.readiness, "127.0.0.1", 0) as url:
        _, body = await get(f"{url}/metrics")
    samples = parse(body)
    assert samples[("ember_backend_breaker_open", (("backend", "anthropic:claude-3-opus-20240229"),))] == 1


async def test_ready_only_when_store_answers_and_every_platform_is_connected(runtime: Runtime) -> None:
    connected = False
    runtime.readiness.expect("discord")
    async with listening(runtime.metrics, runtime.readiness, "127.0.0.1", 0) as url:
        assert (await get(f"{url}/healthz"))[0] == 200
        status, body = await get(f"{url}/readyz")
        assert status == 503
        assert '"discord": "not connected"' in body
        runtime.readiness.register("discord", lambda: connected)
        assert (await get(f"{url}/readyz"))[0] == 503
        connected = True
        status, body = await get(f"{url}/readyz")
        assert status == 200, body


async def test_not_ready_when_the_store_does_not_answer(runtime: Runtime, tmp_path: Path) -> None:
    # A real store whose file cannot be opened: its folder went away after it was configured.
    (tmp_path / "gone").mkdir()
    gone = Store.open(f"sqlite+aiosqlite:///{tmp_path / 'gone' / 'ember.db'}")
    (tmp_path / "gone").rmdir()
    try:
        readiness = Readiness(lambda: ops_repo.ping(gone))
        async with listening(runtime.metrics, readiness, "127.0.0.1", 0) as url:
            status, body = await get(f"{url}/readyz")
    finally:
        await gone.close()
    assert status == 503
    assert json.loads(body)["not_ready"] == {"store": "OperationalError"}


@pytest.mark.parametrize(
    ("server", "key"),
    [
        ({"health_port": 70000}, "server.health_port"),
        ({"shutdown_grace_seconds": -1}, "server.shutdown_grace_seconds"),
    ],
)
def test_server_settings_out_of_range_name_the_key(server: dict[str, float], key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        settings_from_dict({"server": server})
    assert raised.value.key == key


async def test_a_timed_sink_reports_the_first_words_once() -> None:
    waits: list[float] = []
    out = io.StringIO()
    sink = TimedSink(console.ConsoleSink(out), waits.append)
    reply = StreamingReply(sink)
    reply.append("Hello")
    await asyncio.sleep(0.05)
    reply.append(" there.")
    await reply.finish()
    assert out.getvalue() == "Hello there."
    assert len(waits) == 1
    assert 0 <= waits[0] < 0.05


async def test_moderator_decisions_essay_deliveries_and_feed_failures_are_counted(
    tmp_path: Path, fake_anthropic: FakeAnthropic, feed_server: FeedServer
) -> None:
    # Nothing listens on port 9: that feed fails every poll.
    broken_feed = "http://127.0.0.1:9/feed"
    settings = settings_from_dict(
        {
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'counts.db'}"},
            "providers": {"anthropic": {"base_url": fake_anthropic.url}},
            "access": {"mode": "request"},
            "essays": {"feeds": [feed_server.url(), broken_feed]},
        }
    )
    moderator = User("M1", "Mod", "discord", "G1", is_moderator=True)
    with patch.dict("os.environ", {"ANTHROPIC_API_KEY": "sk-ant-test-key"}):
        async with open_runtime(settings) as runtime:
            for member in ("U1", "U2"):
                await runtime.access.request(User(member, member, "discord", "G1"), "G1", "please")
            first, second = await runtime.access.pending("discord", "G1")
            await runtime.access.decide(first.id, moderator, approve=True)
            await runtime.access.decide(second.id, moderator, approve=False, reason="not now")
            await runtime.access.decide(second.id, moderator, approve=True)  # too late: no decision

            essays = runtime.essays
            unlimited = runtime.budgets.for_platform("discord")  # no adapter attached: no windows
            essays.register_announcer("discord", RecordingAnnouncer(), scheduler=unlimited, concurrency=8)
            await essays.subscribe("discord", "G1", "C1", "", moderator)
            feed_server.feed().posts.append(now_post("older", "An older essay"))
            await essays.poll_once()  # records what is there
            feed_server.feed().posts.append(now_post("new", "A new essay"))
            await essays.poll_once()
            assert (await essays.deliver_pending()).sent == 1
            samples = parse(runtime.metrics.render().decode())
    decisions = "ember_access_decisions_total"
    assert samples[(decisions, (("decision", "approved"),))] == 1
    assert samples[(decisions, (("decision", "request_denied"),))] == 1
    assert samples[("ember_essay_delivery_outcomes_total", (("outcome", "sent"),))] == 1
    assert samples[("ember_feed_poll_failures_total", (("feed", broken_feed),))] == 2
    assert ("ember_feed_poll_failures_total", (("feed", feed_server.url()),)) not in samples
