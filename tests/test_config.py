"""Configuration: discovery, defaults, and a clear error for every kind of mistake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.config import (
    OPUS_3,
    check_environment,
    database_url,
    find_config,
    load_settings,
    settings_from_dict,
)
from core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ember.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_need_only_the_api_key() -> None:
    settings = load_settings(None)
    assert settings.chat.default_model == "opus-3"
    assert settings.models["opus-3"].backends[0].model == OPUS_3
    assert settings.database.url.startswith("sqlite+aiosqlite:///")
    check_environment(settings, {"ANTHROPIC_API_KEY": "sk-test"})
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY is not set"):
        check_environment(settings, {})


def test_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_config(None, {}) is None
    (tmp_path / "config.toml").write_text("")
    assert find_config(None, {}) == Path("config.toml")
    assert find_config(None, {"EMBER_CONFIG": "/etc/ember.toml"}) == Path("/etc/ember.toml")
    assert find_config("mine.toml", {"EMBER_CONFIG": "/etc/ember.toml"}) == Path("mine.toml")


def test_example_config_is_valid_and_runs_with_only_the_api_key() -> None:
    settings = load_settings(ROOT / "config.example.toml")
    assert "opus-3" in settings.models
    assert [b.provider for b in settings.models["opus-3"].backends] == ["anthropic"]
    check_environment(settings, {"ANTHROPIC_API_KEY": "sk-test"})
    # The failover backends are shown, ready to uncomment.
    example = (ROOT / "config.example.toml").read_text()
    assert '# { provider = "bedrock"' in example and '# { provider = "vertex"' in example


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ("[chat]\ndefault_modle = 'opus-3'\n", "chat.default_modle", "did you mean 'default_model'"),
        ("[databse]\nurl = 'x'\n", "databse", "did you mean 'database'"),
        ("[database]\nurl = 'not a url'\n", "database.url", "is not a database URL"),
        (
            "[database]\nurl = 'postgresql+asyncpg://ember:hunter2@db/ember'\n",
            "database.url",
            "name it in database.url_env",
        ),
        ("[chat]\nhistory_messages = 'ten'\n", "chat.history_messages", "expected a whole number"),
        ("[chat]\nallow_bots = 1\n", "chat.allow_bots", "expected true or false"),
        ("[chat]\ndefault_model = 'opus-4'\n", "chat.default_model", "did you mean 'opus-3'"),
        ("[slack]\nmode = 'websocket'\n", "slack.mode", "'socket' or 'http'"),
        ("[models.x]\ndisplay_name = 'X'\n", "models.x.backends", "is required"),
        (
            "[models.x]\nbackends = [{provider = 'openai', model = 'gpt'}]\n",
            "models.x.backends[0].provider",
            "'anthropic' or 'bedrock' or 'vertex'",
        ),
        (
            "[models.opus-3]\nbackends = [{provider = 'anthropic', model = 'm'}]\nfallback = 'sonet'\n",
            "models.opus-3.fallback",
            "does not exist",
        ),
        ("[discord]\nroom_channels = 123\n", "discord.room_channels", "expected an array"),
        ("[discord]\nmod_channel = '#mods'\n", "discord.mod_channel", "is not a channel id"),
        ("[discord]\nroom_channels = [123]\n", "discord.room_channels[0]", "put quotes around it"),
        (
            "[models.opus-3]\nbackends = [{provider = 'anthropic', model = 'm'}]\ntemperature = 3\n",
            "models.opus-3.temperature",
            "between",
        ),
    ],
)
def test_errors_name_the_key_and_a_fix(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.file == str(path)
    assert caught.value.key == key
    assert fragment in str(caught.value)


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[chat\n")
    with pytest.raises(ConfigError, match="not valid TOML") as caught:
        load_settings(path)
    assert str(path) in str(caught.value)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(Path("/nonexistent/ember.toml"))


def test_database_url_from_the_environment_never_echoes_the_secret() -> None:
    settings = settings_from_dict({"database": {"url_env": "EMBER_DATABASE_URL"}})
    secret_url = "postgresql+asyncpg://ember:hunter2@db.internal/ember"
    assert database_url(settings, {"EMBER_DATABASE_URL": secret_url}) == secret_url
    with pytest.raises(ConfigError, match="EMBER_DATABASE_URL is not set") as unset:
        database_url(settings, {})
    assert unset.value.key == "database.url_env"
    with pytest.raises(ConfigError, match="does not hold a database URL") as garbled:
        database_url(settings, {"EMBER_DATABASE_URL": "hunter2-not-a-url"})
    assert "hunter2" not in str(garbled.value)
    with pytest.raises(ConfigError, match="EMBER_DATABASE_URL"):
        check_environment(settings, {"ANTHROPIC_API_KEY": "sk-test"})


def test_secret_env_for_used_backends_only() -> None:
    settings = settings_from_dict(
        {
            "providers": {"bedrock": {"aws_access_key_env": "AK", "aws_secret_key_env": "SK"}},
            "models": {"opus-3": {"backends": [{"provider": "bedrock", "model": "anthropic.claude-3-opus"}]}},
        }
    )
    with pytest.raises(ConfigError) as caught:
        check_environment(settings, {"ANTHROPIC_API_KEY": "unused"})
    assert caught.value.key == "providers.bedrock.aws_access_key_env"
    check_environment(settings, {"AK": "a", "SK": "b"})


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bots.cli", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **(env or {})},
        cwd=cwd or ROOT,
        timeout=60,
    )


def test_config_check_command(tmp_path: Path) -> None:
    good = run_cli(
        "config",
        "check",
        "--config",
        str(ROOT / "config.example.toml"),
        env={"ANTHROPIC_API_KEY": "k"},
    )
    assert good.returncode == 0, good.stderr
    assert "OK" in good.stdout

    bad = write(tmp_path, "[chat]\ndefault_modle = 'opus-3'\n")
    result = run_cli("config", "check", "--config", str(bad), env={"ANTHROPIC_API_KEY": "k"})
    assert result.returncode == 2
    assert f"{bad}: chat.default_modle: unknown key (did you mean 'default_model'?)" in result.stderr

    no_key = run_cli("--config", str(write(tmp_path, "")), "config", "check", env={})
    assert no_key.returncode == 2
    assert "ANTHROPIC_API_KEY is not set" in no_key.stderr


def test_the_command_reads_the_same_however_it_is_configured() -> None:
    for discord, slack in [("opus", "/opus"), ("/opus", "opus")]:
        settings = settings_from_dict({"discord": {"command": discord}, "slack": {"command": slack}})
        assert settings.command_for("discord") == "/opus"
        assert settings.command_for("slack") == "/opus"
        # Each kept as its platform registers it: Discord without the slash, Slack with it.
        assert (settings.discord.command, settings.slack.command) == ("opus", "/opus")
    assert settings_from_dict({}).command_for("console") == "/opus"


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "/nonexistent/ember.toml", "db", "upgrade"],
        ["db", "upgrade", "--config", "/nonexistent/ember.toml"],
    ],
)
def test_config_option_counts_before_or_after_the_command(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from bots.cli import main

    assert main(argv) == 2
    assert "/nonexistent/ember.toml: file not found" in capsys.readouterr().err
