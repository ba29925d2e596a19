"""Broken configurations, one per row, through the real `ember config check` entry point.

Each must exit 2 with one line naming the file, the key and a fix (the parenthesised end of the
line), never a traceback; `ember run` loads settings through the same path and refuses the same
files before it starts anything. The example configuration still passes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bots.cli import main

ROOT = Path(__file__).resolve().parents[1]
MODEL = "[models.opus-3]\nbackends = [{provider = 'anthropic', model = 'm'}]\n"

# (section, key) of every number, the smallest value that makes sense, and the value written
# as TOML; zero or a negative number below that is refused, and so are nan and inf.
NUMBERS = [
    ("providers.anthropic", "timeout_seconds", 0.0),
    ("providers.bedrock", "timeout_seconds", 0.0),
    ("providers.vertex", "timeout_seconds", 0.0),
    ("models.opus-3", "max_tokens", 1),
    ("models.opus-3", "context_tokens", 1),
    ("models.opus-3.price", "input", 0),
    ("models.opus-3.price", "output", 0),
    ("models.opus-3.price", "cache_write", 0),
    ("models.opus-3.price", "cache_read", 0),
    ("chat", "max_bot_depth", 1),
    ("chat", "history_messages", 0),
    ("routing", "failure_threshold", 1),
    ("routing", "cooldown_seconds", 0.0),
    ("routing", "resume_attempts", 0),
    ("slack", "http_port", 1),
    ("access", "daily_messages", 0),
    ("access", "daily_tokens", 0),
    ("access", "max_concurrent", 1),
    ("access", "monthly_spend_usd", 0),
    ("essays", "poll_seconds", 0.0),
    ("essays", "max_age_days", 1),
    ("studio", "past_entries", 1),
    ("studio", "news_items", 1),
    ("studio", "max_tokens", 1),
    ("studio", "approvals", 1),
]


def _section(section: str, body: str) -> str:
    prefix = MODEL if section.startswith("models.opus-3") and section != "models.opus-3" else ""
    extra = "backends = [{provider = 'anthropic', model = 'm'}]\n" if section == "models.opus-3" else ""
    return f"{prefix}[{section}]\n{extra}{body}\n"


def _number_rows() -> list[tuple[str, str, str, str]]:
    rows = []
    for section, key, least in NUMBERS:
        below = "-1" if least == 0 else "0"
        is_float = isinstance(least, float)
        fix = "from 1 to 65535" if key == "http_port" else ("above 0" if is_float else " or more")
        rows.append(
            (
                f"{key}-{below}",
                _section(section, f"{key} = {below}{'.0' if is_float else ''}"),
                f"{section}.{key}",
                fix,
            )
        )
        if is_float:
            for word in ("nan", "inf", "-inf"):
                rows.append(
                    (
                        f"{key}-{word}",
                        _section(section, f"{key} = {word}"),
                        f"{section}.{key}",
                        "ordinary number",
                    )
                )
    return rows


# (id, file text, key named, a fragment of the fix)
ROWS: list[tuple[str, str, str, str]] = [
    *_number_rows(),
    ("port-too-high", "[slack]\nhttp_port = 70000\n", "slack.http_port", "from 1 to 65535"),
    ("temperature", MODEL + "temperature = 3\n", "models.opus-3.temperature", "from 0 to 1"),
    # database URLs
    ("sync-sqlite", "[database]\nurl = 'sqlite:///x.db'\n", "database.url", "sqlite+aiosqlite://"),
    ("sync-postgres", "[database]\nurl = 'postgresql://db/ember'\n", "database.url", "postgresql+asyncpg://"),
    ("mysql", "[database]\nurl = 'mysql+aiomysql://u@db/ember'\n", "database.url", "postgresql+asyncpg"),
    ("password", "[database]\nurl = 'postgresql+asyncpg://u:pw@db/e'\n", "database.url", "url_env"),
    (
        "password-query",
        "[database]\nurl = 'postgresql+asyncpg://u@db/e?password=pw'\n",
        "database.url",
        "url_env",
    ),
    ("not-a-url", "[database]\nurl = 'ember.db'\n", "database.url", "sqlite+aiosqlite:///ember.db"),
    (
        "url-env-secret",
        "[database]\nurl_env = 'postgres://u:pw@db'\n",
        "database.url_env",
        "never the secret",
    ),
    # empty strings where something must be said
    (
        "empty-api-key-env",
        "[providers.anthropic]\napi_key_env = ''\n",
        "providers.anthropic.api_key_env",
        "ANTHROPIC_API_KEY",
    ),
    (
        "secret-as-env",
        "[providers.anthropic]\napi_key_env = 'sk-ant-xyz'\n",
        "providers.anthropic.api_key_env",
        "never the secret",
    ),
    ("empty-token-env", "[discord]\ntoken_env = ''\n", "discord.token_env", "DISCORD_TOKEN"),
    (
        "empty-model",
        "[models.opus-3]\nbackends = [{provider = 'anthropic', model = ''}]\n",
        "models.opus-3.backends[0].model",
        "claude-3-opus",
    ),
    ("empty-region", "[providers.bedrock]\naws_region = ''\n", "providers.bedrock.aws_region", "us-east-1"),
    ("empty-member-role", "[access]\nmember_roles = ['']\n", "access.member_roles[0]", "remove the entry"),
    # commands, each in its own platform's grammar
    ("discord-empty-command", "[discord]\ncommand = ''\n", "discord.command", "lowercase"),
    ("discord-spaced-command", "[discord]\ncommand = 'Opus Ask'\n", "discord.command", "lowercase"),
    ("discord-upper-command", "[discord]\ncommand = 'Opus'\n", "discord.command", "lowercase"),
    ("discord-long-command", "[discord]\ncommand = '" + "o" * 33 + "'\n", "discord.command", "1 to 32"),
    ("slack-empty-command", "[slack]\ncommand = '/'\n", "slack.command", '"/opus"'),
    ("slack-spaced-command", "[slack]\ncommand = '/opus ask'\n", "slack.command", '"/opus"'),
    ("slack-upper-command", "[slack]\ncommand = '/Opus'\n", "slack.command", "lowercase"),
    # ids where ids are meant
    ("discord-channel-name", "[discord]\nmod_channel = '#mods'\n", "discord.mod_channel", "Copy Channel ID"),
    (
        "discord-room-name",
        "[discord]\nroom_channels = ['general']\n",
        "discord.room_channels[0]",
        "Copy Channel ID",
    ),
    (
        "discord-role-name",
        "[discord]\nmoderator_roles = ['@mods']\n",
        "discord.moderator_roles[0]",
        "Copy Role ID",
    ),
    ("slack-channel-name", "[slack]\nmod_channel = '#mods'\n", "slack.mod_channel", "start with C or G"),
    ("slack-lowercase-id", "[slack]\nmod_channel = 'c012ab3cd'\n", "slack.mod_channel", "start with C or G"),
    (
        "slack-room-user",
        "[slack]\nroom_channels = ['U012AB']\n",
        "slack.room_channels[0]",
        "start with C or G",
    ),
    (
        "slack-group-name",
        "[slack]\nmoderator_roles = ['@mods']\n",
        "slack.moderator_roles[0]",
        "start with S",
    ),
    # URLs
    ("feed-file", "[essays]\nfeeds = ['file:///etc/passwd']\n", "essays.feeds[0]", "https://"),
    ("feed-empty", "[essays]\nfeeds = ['']\n", "essays.feeds[0]", "https://"),
    (
        "feed-password",
        "[essays]\nfeeds = ['https://x.example/feed?pwd=hunter2']\n",
        "essays.feeds[0]",
        "remove it",
    ),
    ("feed-relative", "[essays]\nfeeds = ['example.com/feed']\n", "essays.feeds[0]", "https://"),
    (
        "base-url-ftp",
        "[providers.anthropic]\nbase_url = 'ftp://x'\n",
        "providers.anthropic.base_url",
        "https://",
    ),
    ("gateway-http", "[discord]\ngateway_url = 'http://proxy:8081'\n", "discord.gateway_url", "ws://"),
    # the essay studio
    ("studio-time", "[studio]\ntime = '9am'\n", "studio.time", "HH:MM"),
    ("studio-time-25", "[studio]\ntime = '25:00'\n", "studio.time", "HH:MM"),
    ("studio-day", "[studio]\nday = 'funday'\n", "studio.day", "'monday'"),
    ("studio-schedule", "[studio]\nschedule = 'hourly'\n", "studio.schedule", "'weekly'"),
    ("studio-strategy", "[studio]\nstrategy = 'news'\n", "studio.strategy", "'with_news'"),
    ("studio-alias", "[studio]\nalias = 'opus-4'\n", "studio.alias", "did you mean 'opus-3'"),
    ("studio-news-none", "[studio]\nstrategy = 'with_news'\n", "studio.news_feeds", "news_feeds = ["),
    ("studio-news-file", "[studio]\nnews_feeds = ['file:///x']\n", "studio.news_feeds[0]", "https://"),
    ("studio-disclaimer", "[studio]\ndisclaimer = ' '\n", "studio.disclaimer", "one line"),
    ("studio-public-url", "[studio]\npublic_url = 'ember.example'\n", "studio.public_url", "https://"),
    (
        "studio-discord-channel",
        "[studio.discord]\nreview_channel = '#review'\n",
        "studio.discord.review_channel",
        "Copy Channel ID",
    ),
    (
        "studio-discord-role",
        "[studio.discord]\nreviewer_roles = ['@editors']\n",
        "studio.discord.reviewer_roles[0]",
        "Copy Role ID",
    ),
    (
        "studio-discord-user",
        "[studio.discord]\nreviewer_users = ['alice']\n",
        "studio.discord.reviewer_users[0]",
        "Copy User ID",
    ),
    (
        "studio-slack-channel",
        "[studio.slack]\nreview_channel = '#review'\n",
        "studio.slack.review_channel",
        "start with C or G",
    ),
    (
        "studio-slack-group",
        "[studio.slack]\nreviewer_groups = ['C123']\n",
        "studio.slack.reviewer_groups[0]",
        "start with S",
    ),
    (
        "studio-slack-user",
        "[studio.slack]\nreviewer_users = ['alice']\n",
        "studio.slack.reviewer_users[0]",
        "start with U or W",
    ),
    # shapes
    ("table-as-array", "chat = [1]\n", "chat", "[chat]"),
    ("array-of-tables", "[[chat]]\nallow_bots = true\n", "chat", "[chat]"),
    ("models-as-array", "models = ['opus-3']\n", "models", "[models]"),
    (
        "unknown-key",
        "[chat]\ndefault_modle = 'opus-3'\n",
        "chat.default_modle",
        "did you mean 'default_model'",
    ),
]


@pytest.mark.parametrize(("text", "key", "fix"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_each_broken_config_exits_2_naming_the_key_and_a_fix(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    key: str,
    fix: str,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    path = tmp_path / "ember.toml"
    path.write_text(text, encoding="utf-8")
    assert main(["config", "check", "--config", str(path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"ember: configuration error: {path}: {key}: "), error
    _assert_one_line_with_a_fix(error, fix)
    # `ember run` reads the file the same way: refused before anything starts.
    assert main(["run", "--config", str(path)]) == 2
    assert capsys.readouterr().err == error


def _assert_one_line_with_a_fix(error: str, fix: str) -> None:
    assert error.count("\n") == 1 and "Traceback" not in error, error
    assert error.rstrip().endswith(")"), f"no fix offered: {error}"
    assert fix in error[error.index(" (") :], error


def test_a_file_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes("[chat]\nhistory_messages = 5  # café\n".encode("latin-1"))
    assert main(["config", "check", "--config", str(path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"ember: configuration error: {path}: is not UTF-8 text")
    _assert_one_line_with_a_fix(error, "save it as UTF-8")


def test_a_directory_named_as_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--config", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"ember: configuration error: {tmp_path}: is a directory")
    _assert_one_line_with_a_fix(error, str(tmp_path / "config.toml"))


@pytest.mark.skipif(sys.platform == "win32" or not hasattr(__import__("os"), "geteuid"), reason="POSIX only")
def test_an_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    path = tmp_path / "secret.toml"
    path.write_text("[chat]\n")
    path.chmod(0)
    assert main(["config", "check", "--config", str(path)]) == 2
    _assert_one_line_with_a_fix(capsys.readouterr().err, "readable")


def test_a_database_url_from_the_environment_is_checked_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ember.toml"
    path.write_text("[database]\nurl_env = 'EMBER_DATABASE_URL'\n")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    monkeypatch.setenv("EMBER_DATABASE_URL", "postgresql://ember:hunter2@db/ember")
    assert main(["config", "check", "--config", str(path)]) == 2
    error = capsys.readouterr().err
    assert f"{path}: database.url_env: " in error and "hunter2" not in error
    _assert_one_line_with_a_fix(error, "postgresql+asyncpg://")


def test_a_driver_that_is_not_installed(tmp_path: Path) -> None:
    """asyncpg made unimportable the way Python itself spells it (None in sys.modules)."""
    path = tmp_path / "ember.toml"
    path.write_text("[database]\nurl = 'postgresql+asyncpg://ember@db.internal/ember'\n")
    program = (
        "import sys; sys.modules['asyncpg'] = None; from bots.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", program, "config", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "ANTHROPIC_API_KEY": "k"},
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert f"{path}: database.url: the asyncpg driver is not installed" in result.stderr
    _assert_one_line_with_a_fix(result.stderr, "install")


def test_the_example_config_still_passes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    assert main(["config", "check", "--config", str(ROOT / "config.example.toml")]) == 0
    assert "OK" in capsys.readouterr().out


@pytest.mark.parametrize(
    "text",
    [
        "[discord]\ncommand = 'ask-opus'\nmod_channel = '1234567890123456789'\nroom_channels = ['987654321098765432']\n",
        "[discord]\ncommand = 'オーパス'\n",  # letters of any script, as Discord allows
        "[slack]\ncommand = 'opus'\nmod_channel = 'C012AB3CD'\nroom_channels = ['G012AB3CD', 'C2']\nmoderator_roles = ['S0MODS']\n",
        "[essays]\nfeeds = ['http://127.0.0.1:8080/feed', 'https://example.substack.com/feed']\npoll_seconds = 60\n",
        "[database]\nurl = 'postgresql+asyncpg://ember@db.internal/ember?ssl=require'\n",
        "[access]\ndaily_messages = 0\nmonthly_spend_usd = 0\n",
    ],
)
def test_good_values_still_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    path = tmp_path / "ember.toml"
    path.write_text(text, encoding="utf-8")
    assert main(["config", "check", "--config", str(path)]) == 0, capsys.readouterr().err
