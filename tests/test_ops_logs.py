"""Structured logs and redaction: JSON lines with the ids a line is about, tracebacks in one
field, and no secret value in any output — logs, exception texts, tracebacks, printed errors."""

from __future__ import annotations

import io
import json
import logging
import socket
from pathlib import Path
from unittest.mock import patch

from bots import console
from core.config import settings_from_dict
from core.logs import REDACTED, JsonFormatter, Redactor, TextFormatter, log_context, url_passwords
from core.ops.instruments import DRAINING
from core.runtime import open_runtime
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.slack_server import FakeSlack
from tests.slack_support import slack_env
from tests.test_terminal_chat import run_ember

SECRETS = {
    "ANTHROPIC_API_KEY": "sk-ant-api-secret-0001",
    "DISCORD_TOKEN": "discord-secret-token-0002",
    "SLACK_BOT_TOKEN": "xoxb-slack-secret-0003",
    "SLACK_APP_TOKEN": "xapp-slack-secret-0004",
    "SLACK_SIGNING_SECRET": "slack-signing-secret-0005",
    "AWS_ACCESS_KEY_ID": "AKIAAWSSECRET0006",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-key-0007",
    "AWS_SESSION_TOKEN": "aws-session-token-0008",
    "VERTEX_TOKEN": "vertex-access-token-0009",
}
DB_PASSWORD = "db-password-0010"
QUERY_PASSWORD = "db-query-password-0011"


def all_secrets_config(tmp_path: Path, database_url_env: str = "EMBER_DATABASE_URL") -> Path:
    config = tmp_path / "ember.toml"
    config.write_text(
        f'[database]\nurl_env = "{database_url_env}"\n'
        '[providers.bedrock]\naws_access_key_env = "AWS_ACCESS_KEY_ID"\n'
        'aws_secret_key_env = "AWS_SECRET_ACCESS_KEY"\naws_session_token_env = "AWS_SESSION_TOKEN"\n'
        '[providers.vertex]\naccess_token_env = "VERTEX_TOKEN"\nproject_id = "p"\n'
        '[models."opus-3"]\nbackends = [{provider = "anthropic", model = "claude-3-opus-20240229"},'
        ' {provider = "bedrock", model = "anthropic.claude-3-opus"},'
        ' {provider = "vertex", model = "claude-3-opus@20240229"}]\n'
    )
    return config


def every_secret() -> list[str]:
    return [*SECRETS.values(), DB_PASSWORD, QUERY_PASSWORD]


def json_logger(stream: io.StringIO, redact: Redactor) -> logging.Logger:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(redact))
    logger = logging.getLogger("ember.test.json")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_json_lines_carry_the_ids_and_one_traceback_field_without_secrets() -> None:
    stream = io.StringIO()
    logger = json_logger(stream, Redactor(SECRETS.values()))
    with log_context(trace_id="t1", platform="discord", workspace="g1", channel="c1"):
        logger.info("hello %s", "world", extra={"user": "u1", "reply_id": "r1"})
        try:
            raise RuntimeError(f"auth failed with {SECRETS['ANTHROPIC_API_KEY']!r}")
        except RuntimeError:
            logger.exception("model call failed for key %s", SECRETS["ANTHROPIC_API_KEY"])
    logger.info("outside")
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert {k: first[k] for k in ("level", "logger", "message")} == {
        "level": "INFO",
        "logger": "ember.test.json",
        "message": "hello world",
    }
    assert {k: first[k] for k in ("trace_id", "platform", "workspace", "channel", "user", "reply_id")} == {
        "trace_id": "t1",
        "platform": "discord",
        "workspace": "g1",
        "channel": "c1",
        "user": "u1",
        "reply_id": "r1",
    }
    assert first["time"].endswith("+00:00")
    assert second["message"] == f"model call failed for key {REDACTED}"
    assert "RuntimeError: auth failed with '[redacted]'" in second["traceback"]
    assert "trace_id" not in third
    assert not any(s in stream.getvalue() for s in every_secret())


def test_text_lines_stay_readable_and_redacted() -> None:
    record = logging.LogRecord(
        "ember", logging.WARNING, __file__, 1, "token %s refused", ("xoxb-slack-secret-0003",), None
    )
    record.trace_id = "abc"
    line = TextFormatter(Redactor(SECRETS.values())).format(record)
    assert line.endswith(f"WARNING ember: token {REDACTED} refused [trace_id=abc]")


def test_database_url_passwords_are_found_in_the_user_part_and_the_query() -> None:
    url = f"postgresql+asyncpg://ember:{DB_PASSWORD}@db.example/ember?password={QUERY_PASSWORD}"
    assert url_passwords(url) == [DB_PASSWORD, QUERY_PASSWORD]
    settings = settings_from_dict({"database": {"url_env": "EMBER_DATABASE_URL"}})
    redact = Redactor.for_settings(settings, {"EMBER_DATABASE_URL": url})
    assert redact(f"login failed: password {QUERY_PASSWORD}") == f"login failed: password {REDACTED}"


async def test_db_upgrade_failure_never_prints_the_database_password(tmp_path: Path) -> None:
    # Nothing listens on port 9: the connection is refused, and the error names the URL.
    url = f"postgresql+asyncpg://ember:{DB_PASSWORD}@127.0.0.1:9/ember?password={QUERY_PASSWORD}"
    config = all_secrets_config(tmp_path)
    code, out, err = await run_ember(
        ["db", "upgrade", "--config", str(config)], "", {**SECRETS, "EMBER_DATABASE_URL": url}
    )
    assert code == 3, err
    assert "ember: database error: could not migrate the database at" in err
    assert REDACTED in err
    assert not any(s in out + err for s in every_secret())


async def test_a_password_in_the_files_query_string_is_not_printed_either(tmp_path: Path) -> None:
    config = tmp_path / "ember.toml"
    config.write_text(
        f'[database]\nurl = "postgresql+asyncpg://ember@127.0.0.1:9/ember?password={QUERY_PASSWORD}"\n'
    )
    code, out, err = await run_ember(["db", "upgrade", "--config", str(config)], "", {**SECRETS})
    # Refused before any connection: a password has no place in the file, query string included.
    assert code == 2, err
    assert "database.url: contains a password" in err
    assert QUERY_PASSWORD not in out + err


async def test_config_check_with_every_secret_set_shows_none(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'e.db'}?password={QUERY_PASSWORD}"
    config = all_secrets_config(tmp_path)
    code, out, err = await run_ember(
        ["config", "check", "--config", str(config)], "", {**SECRETS, "EMBER_DATABASE_URL": url}
    )
    assert code == 0, err
    assert "OK" in out
    assert not any(s in out + err for s in every_secret())


async def test_a_refused_key_echoed_by_the_api_is_redacted_in_json_logs_and_output(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    key = SECRETS["ANTHROPIC_API_KEY"]
    fake_anthropic.script.append(Reply.status(401, message=f"invalid x-api-key: {key}"))
    config = tmp_path / "ember.toml"
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "chat.db"}"\n'
        f'[providers.anthropic]\nbase_url = "{fake_anthropic.url}"\n'
        '[access]\nmode = "open"\n[logging]\nformat = "json"\n'
    )
    code, out, err = await run_ember(["chat", "--config", str(config), "--as", "Ada"], "hello\n", {**SECRETS})
    assert code == 0, err
    lines = [json.loads(line) for line in err.splitlines()]
    refused = [line for line in lines if "refused the request" in line["message"]]
    assert refused and REDACTED in refused[0]["message"], err
    assert refused[0]["level"] == "ERROR"
    # The reply's boundary sets where and for whom; the engine's line names its trace itself.
    assert (refused[0]["platform"], refused[0]["user"]) == ("console", "console:Ada")
    assert not any(s in out + err for s in every_secret())


async def test_an_unexpected_failure_prints_a_redacted_traceback_and_exits_1(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    # Slack's HTTP port is taken: the bind fails inside the Slack part, which nothing expects.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "ember.toml"
        config.write_text(
            f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "e.db"}"\n[server]\nhealth_port = 0\n'
            f'[slack]\nmode = "http"\nhttp_port = {port}\napi_base_url = "{fake_slack.api_url}"\n'
        )
        # No Discord token: Discord's login (to the real discord.com) would race Slack's bind.
        others = {name: value for name, value in SECRETS.items() if name != "DISCORD_TOKEN"}
        env = {**others, **slack_env(fake_slack), "SLACK_SIGNING_SECRET": SECRETS["SLACK_SIGNING_SECRET"]}
        code, out, err = await run_ember(["run", "--config", str(config)], "", env)
    assert code == 1, err
    assert "ember: unexpected error\nTraceback" in err
    assert "OSError" in err
    assert not any(s in out + err for s in [*every_secret(), fake_slack.bot_token])


async def test_a_refused_reply_logs_its_trace_and_reply_ids(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    settings = settings_from_dict(
        {
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'logs.db'}"},
            "providers": {"anthropic": {"base_url": fake_anthropic.url}},
            "access": {"mode": "open"},
        }
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(Redactor(SECRETS.values())))
    chat_log = logging.getLogger("core.chat")
    chat_log.addHandler(handler)
    level = chat_log.level
    chat_log.setLevel(logging.INFO)
    try:
        with patch.dict("os.environ", {"ANTHROPIC_API_KEY": SECRETS["ANTHROPIC_API_KEY"]}):
            async with open_runtime(settings) as runtime:
                runtime.gate.drain()  # refuses every new reply, as while stopping
                out = io.StringIO()
                await console.chat(runtime, name="Ada", alias=None, stdin=io.StringIO("hi\n"), out=out)
    finally:
        chat_log.removeHandler(handler)
        chat_log.setLevel(level)
    assert DRAINING in out.getvalue()
    assert fake_anthropic.requests == []
    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["message"] == f"refused: {DRAINING}"
    assert len(line["trace_id"]) > 0 and len(line["reply_id"]) == 32
    assert line["platform"] == "console"
