"""`ember run` as a real subprocess against the fake Discord and the fake Anthropic API: it says
what it runs, reports ready, and on SIGTERM lets a reply in flight finish (or, past the grace,
stops it) and exits 0."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from core.ops.instruments import DRAINING
from tests.discord_support import bot_messages, custom_ids, finished, posts_in
from tests.ember_process import EmberProcess, base_env, ember_run_process, free_port
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.discord_server import FakeDiscord
from tests.test_terminal_chat import run_ember

SAFETY = 30.0  # seconds: a safety net for waits, never an expectation


@contextlib.asynccontextmanager
async def ember_run(
    tmp_path: Path, discord: FakeDiscord, anthropic: FakeAnthropic, *, grace: float, port: int = 0
) -> AsyncIterator[EmberProcess]:
    port = port or free_port()
    config = tmp_path / "ember.toml"
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "ember.db"}"\n'
        f'[providers.anthropic]\nbase_url = "{anthropic.url}"\n'
        f'[discord]\napi_base_url = "{discord.api_base_url}"\ngateway_url = "{discord.gateway_url}"\n'
        f'[access]\nmode = "open"\n[server]\nhealth_port = {port}\nshutdown_grace_seconds = {grace}\n'
    )
    async with ember_run_process(config, base_env(DISCORD_TOKEN=discord.token), port) as running:
        yield running


async def status_of(tmp_path: Path) -> tuple[int, str]:
    """`ember status` on the same settings: its exit code and its Discord line."""
    env = {"ANTHROPIC_API_KEY": "sk-ant-test-key", "DISCORD_TOKEN": "any-token"}
    code, out, err = await run_ember(["status", "--config", str(tmp_path / "ember.toml")], "", env)
    return code, next((line for line in out.splitlines() if line.startswith("discord:")), out + err)


async def ask_and_see_first_words(discord: FakeDiscord) -> int:
    alice, general = discord.user("alice"), discord.channel("general")
    await discord.say(alice, general, f"{discord.bot.mention} hi")
    [post] = await discord.wait_for(posts_in(general.id), timeout=SAFETY)
    assert post.body["content"] == "Hello"
    return general.id


async def test_start_logs_each_part_and_sigterm_lets_the_reply_in_flight_finish(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    held = Reply.held(["Hello", " there, Alice."], after=1)
    fake_anthropic.script.append(held)
    async with ember_run(tmp_path, fake_discord, fake_anthropic, grace=20) as ember:
        await ember.ready()
        assert await status_of(tmp_path) == (0, "discord: connected")
        status, text = await ember.get("/metrics")
        assert status == 200
        names = {family.name for family in text_string_to_metric_families(text)}
        assert {"ember_event_loop_lag_seconds", "ember_essay_deliveries"} <= names
        general = fake_discord.channel("general")
        fake_discord.fail_next("POST", f"/channels/{general.id}/messages", 429, retry_after=0.1)
        channel = await ask_and_see_first_words(fake_discord)
        samples = {
            (s.name, tuple(s.labels.values())): s.value
            for family in text_string_to_metric_families((await ember.get("/metrics"))[1])
            for s in family.samples
        }
        assert samples[("ember_platform_rate_limited_total", ("discord",))] == 1
        assert samples[("ember_event_loop_lag_seconds_count", ())] >= 1  # the sampler runs
        assert samples[("ember_platform_api_calls_total", ("discord",))] >= 3  # login, the 429, the post

        ember.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)  # the drain has begun; the model only now finishes
        assert ember.process.returncode is None
        # New questions are turned away while the reply in flight goes on.
        await fake_discord.say(fake_discord.user("alice"), general, f"{fake_discord.bot.mention} again?")
        await fake_discord.wait_for(posts_in(general.id), count=2, timeout=SAFETY)
        held.release.set()
        assert await ember.exit_code(timeout=15) == 0
    log = "".join(ember.stderr)
    for part in ("discord", "access expiry sweep", "essay poller and outbox", "health server"):
        assert f"starting {part}: " in log, log
    assert f"http://127.0.0.1:{ember.url.rsplit(':', 1)[1]}" in log
    assert "SIGTERM received: stopping" in log
    assert "stopped cleanly" in log
    answer, refusal = bot_messages(fake_discord, channel)
    assert answer["content"] == "Hello there, Alice."
    assert refusal["content"] == DRAINING
    assert len(fake_anthropic.requests) == 1
    assert any(finished(r) for r in fake_discord.requests)


async def test_past_the_grace_a_reply_is_stopped_and_ember_exits_in_time(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    grace = 0.5
    fake_anthropic.script.append(Reply.held(["Hello", " never sent."], after=1))
    async with ember_run(tmp_path, fake_discord, fake_anthropic, grace=grace) as ember:
        await ember.ready()
        channel = await ask_and_see_first_words(fake_discord)
        signalled = time.monotonic()
        ember.process.send_signal(signal.SIGTERM)
        assert await ember.exit_code(timeout=grace + 10) == 0
        assert time.monotonic() - signalled < grace + 5
    log = "".join(ember.stderr)
    assert "1 reply(s) still running after" in log, log
    [answer] = bot_messages(fake_discord, channel)
    assert answer["content"] == "Hello\n\n*(ember restarted before this reply finished; please ask again)*"
    # No button outlives the process: a restarted ember could not honour them.
    assert custom_ids(answer) == []


async def test_when_a_platform_fails_every_part_stops_and_the_error_is_said(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    async with ember_run(tmp_path, fake_discord, fake_anthropic, grace=20) as ember:
        # ember was given the old token; the fake refuses it from now on (long before login).
        fake_discord.token = "another-token"
        code = await ember.exit_code(timeout=SAFETY)
    log = "".join(ember.stderr)
    assert code == 2, log
    assert "ember: configuration error:" in log
    assert "discord.token_env: Discord refused the token in DISCORD_TOKEN" in log
    assert "Traceback" not in log


async def test_a_health_port_in_use_is_a_configuration_error(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with ember_run(tmp_path, fake_discord, fake_anthropic, grace=20, port=port) as ember:
            code = await ember.exit_code(timeout=SAFETY)
    log = "".join(ember.stderr)
    assert code == 2, log
    assert f"server.health_port: cannot listen on 127.0.0.1:{port}" in log
    assert "Traceback" not in log
