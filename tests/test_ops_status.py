"""`ember status` as the operator runs it: a real subprocess reading a store that real chats and a
real failing feed wrote."""

from __future__ import annotations

import io
import socket
from pathlib import Path
from unittest.mock import patch

from bots import console
from core.config import settings_from_dict
from core.runtime import open_runtime
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.test_terminal_chat import run_ember


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_status_shows_the_day_and_exits_1_for_a_failing_feed(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    feed = f"http://127.0.0.1:{closed_port()}/feed"  # nothing listens: every poll fails
    raw = {
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'ember.db'}"},
        "providers": {"anthropic": {"base_url": fake_anthropic.url}},
        "access": {"mode": "open"},
        "essays": {"feeds": [feed]},
        "server": {"health_port": closed_port()},
    }
    fake_anthropic.script.extend(
        [
            Reply.text(["one"], input_tokens=100, output_tokens=10),
            Reply.text(["two"], input_tokens=100, output_tokens=10),
        ]
    )
    with patch.dict("os.environ", {"ANTHROPIC_API_KEY": "sk-ant-test-key"}):
        async with open_runtime(settings_from_dict(raw)) as runtime:
            await console.chat(
                runtime, name="Ada", alias=None, stdin=io.StringIO("a\nb\n"), out=io.StringIO()
            )
            [report] = await runtime.essays.poll_once()
            assert not report.ok
    config = tmp_path / "ember.toml"
    config.write_text(
        f'[database]\nurl = "{raw["database"]["url"]}"\n[essays]\nfeeds = ["{feed}"]\n'
        f"[server]\nhealth_port = {raw['server']['health_port']}\n"
    )
    code, out, err = await run_ember(["status", "--config", str(config)], "", {"ANTHROPIC_API_KEY": "k"})
    assert code == 1, out + err
    lines = out.splitlines()
    assert lines[0].startswith("ember 0.1.0; database sqlite+aiosqlite:///")
    assert "backend anthropic:claude-3-opus-20240229: 2 requests today, 0 failed" in lines
    # 200 input at $15/M and 20 output at $75/M.
    assert "today: 2 replies, 220 tokens, $0.0045" in lines
    assert "essay deliveries owed: 0; failed: 0" in lines
    assert any(
        line.startswith(f"feed {feed}: failing (1x: ") and line.endswith("last success never")
        for line in lines
    )
    assert f"needs attention: feed {feed} is failing" in lines
    assert "Traceback" not in err


async def test_status_says_when_a_configured_platform_has_no_running_instance(tmp_path: Path) -> None:
    config = tmp_path / "ember.toml"
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "ember.db"}"\n[server]\nhealth_port = {closed_port()}\n'
    )
    env = {"ANTHROPIC_API_KEY": "k", "DISCORD_TOKEN": "discord-token-value"}
    code, out, _ = await run_ember(["status", "--config", str(config)], "", env)
    assert code == 1
    assert "discord: no running instance answered /readyz" in out.splitlines()
    assert "discord-token-value" not in out
