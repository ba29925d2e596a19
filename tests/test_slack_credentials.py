"""Slack's credentials are proven at start: a bot token or app token Slack refuses stops
start-up with a configuration error naming its `*_env` key (exit 2 from `ember run`), before
ember claims to be connected."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.slack_server import FakeSlack
from tests.slack_support import ember_settings, running_ember, slack_env
from tests.test_terminal_chat import run_ember


@pytest.mark.parametrize(
    ("mode", "variable", "key"),
    [
        ("socket", "SLACK_BOT_TOKEN", "slack.bot_token_env"),
        ("http", "SLACK_BOT_TOKEN", "slack.bot_token_env"),
        ("socket", "SLACK_APP_TOKEN", "slack.app_token_env"),
    ],
)
async def test_a_refused_token_stops_start_up_naming_its_key(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, mode: str, variable: str, key: str
) -> None:
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack, slack={"mode": mode})
    environ = {**slack_env(fake_slack), variable: "xoxb-not-the-right-token"}
    with pytest.raises(ConfigError) as refused:
        async with running_ember(fake_slack, fake_anthropic, settings, environ=environ):
            pass
    assert refused.value.key == key
    assert f"Slack refused the token in {variable} (invalid_auth)" in str(refused.value)
    # Refused once and never retried; a refused bot token stops before the app token is tried.
    opened = fake_slack.calls_to("apps.connections.open")
    assert len(opened) == (1 if variable == "SLACK_APP_TOKEN" else 0)


async def test_ember_run_exits_2_on_a_wrong_bot_token(tmp_path: Path, fake_slack: FakeSlack) -> None:
    config = tmp_path / "ember.toml"
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "e.db"}"\n[server]\nhealth_port = 0\n'
        f'[slack]\napi_base_url = "{fake_slack.api_url}"\n'
    )
    env = {**slack_env(fake_slack), "SLACK_BOT_TOKEN": "xoxb-revoked", "ANTHROPIC_API_KEY": "sk-ant-test"}
    code, out, err = await run_ember(["run", "--config", str(config)], "", env)
    assert code == 2, err
    assert "slack.bot_token_env: Slack refused the token in SLACK_BOT_TOKEN (invalid_auth)" in err
    assert "Traceback" not in err and "connected in Socket Mode" not in err
    assert "xoxb-revoked" not in out + err
