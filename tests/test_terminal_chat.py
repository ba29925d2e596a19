"""`ember chat` end to end: a real subprocess, piped stdin, the fake API on loopback."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

from core.config import settings_from_dict
from core.logs import REDACTED, SecretFilter, secret_env_names
from tests.fakes.anthropic_server import FakeAnthropic, Reply

ROOT = Path(__file__).resolve().parents[1]


async def run_ember(args: list[str], stdin: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bots.cli",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **env},
        cwd=ROOT,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), timeout=60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_piped_terminal_chat_goes_through_the_whole_core(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    config = tmp_path / "ember.toml"
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "chat.db"}"\n'
        f'[providers.anthropic]\nbase_url = "{fake_anthropic.url}"\n'
        '[access]\nmode = "open"\n'
    )
    fake_anthropic.script.extend([Reply.text(["Hello, ", "Ada."]), Reply.text(["A koan is a riddle."])])
    code, out, err = await run_ember(
        ["chat", "--config", str(config), "--as", "Ada"],
        "hello\n\nwhat is a koan?\n",
        {"ANTHROPIC_API_KEY": "sk-ant-secret-value"},
    )
    assert code == 0, err
    assert out == "Hello, Ada.\nA koan is a riddle.\n"
    second = fake_anthropic.requests[1].body["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[0]["content"][0]["text"] == "Ada: hello"
    assert second[2]["content"][-1]["text"] == "Ada: what is a koan?"
    assert fake_anthropic.requests[0].headers["authorization"] == "Bearer sk-ant-secret-value"
    assert "sk-ant-secret-value" not in out + err


async def test_unknown_model_alias_is_a_clear_error(tmp_path: Path) -> None:
    code, _, err = await run_ember(["chat", "--model", "opus-4"], "", {"ANTHROPIC_API_KEY": "k"})
    assert code == 2
    assert "--model: opus-4: is not a configured alias" in err


def test_secret_values_never_reach_a_log_line(monkeypatch: object, caplog: object) -> None:
    # Defaults name the Anthropic, Discord and Slack secrets; a provider section names its own.
    settings = settings_from_dict({"providers": {"bedrock": {"aws_secret_key_env": "AWS_SECRET_ACCESS_KEY"}}})
    assert {"ANTHROPIC_API_KEY", "AWS_SECRET_ACCESS_KEY", "DISCORD_TOKEN", "SLACK_BOT_TOKEN"} <= set(
        secret_env_names(settings)
    )
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "auth failed for key %s", ("sk-ant-abcdef123",), None
    )
    SecretFilter(["sk-ant-abcdef123"]).filter(record)
    assert record.getMessage() == f"auth failed for key {REDACTED}"
