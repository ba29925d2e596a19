"""Two (or more) `ember run` processes, each a host, over one PostgreSQL database and the same
loopback fakes: what tests/test_two_hosts.py drives."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text

from core.store import Store
from tests.ember_process import EmberProcess, base_env, ember_run_process, free_port
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.slack_server import FakeSlack
from tests.slack_support import slack_env


@dataclass
class Host:
    """One running host: its process (health server at `process.url`) and, in Slack's HTTP
    mode, the URL Slack posts its requests to."""

    name: str
    process: EmberProcess
    slack_url: str = ""
    config: Path = field(default_factory=Path)

    def log(self) -> str:
        return "".join(self.process.stderr)


def host_config(
    database_url: str,
    anthropic: FakeAnthropic,
    *,
    health_port: int,
    discord: FakeDiscord | None = None,
    discord_keys: str = "",
    slack: FakeSlack | None = None,
    slack_port: int = 0,
    access: str = 'mode = "open"',
    essays: str = "",
) -> str:
    """The TOML of one host: every host shares the database and the fakes."""
    toml = (
        f'[database]\nurl = "{database_url}"\n'
        f'[providers.anthropic]\nbase_url = "{anthropic.url}"\n'
        f"[access]\n{access}\n"
        f"[server]\nhealth_port = {health_port}\nshutdown_grace_seconds = 5\n"
    )
    if discord is not None:
        toml += (
            f'[discord]\napi_base_url = "{discord.api_base_url}"\ngateway_url = "{discord.gateway_url}"\n'
            f"{discord_keys}\n"
        )
    if slack is not None:
        toml += f'[slack]\nmode = "http"\nhttp_port = {slack_port}\napi_base_url = "{slack.api_url}"\n'
    if essays:
        toml += f"[essays]\n{essays}\n"
    return toml


@contextlib.asynccontextmanager
async def ember_host(
    tmp_path: Path,
    name: str,
    database_url: str,
    anthropic: FakeAnthropic,
    *,
    discord: FakeDiscord | None = None,
    discord_keys: str = "",
    slack: FakeSlack | None = None,
    access: str = 'mode = "open"',
    essays: str = "",
) -> AsyncIterator[Host]:
    """`ember run` as host `name`, ready (its /readyz answers 200); killed afterwards."""
    health_port, slack_port = free_port(), free_port()
    config = tmp_path / f"{name}.toml"
    config.write_text(
        host_config(
            database_url,
            anthropic,
            health_port=health_port,
            discord=discord,
            discord_keys=discord_keys,
            slack=slack,
            slack_port=slack_port,
            access=access,
            essays=essays,
        )
    )
    env = base_env()
    if discord is not None:
        env["DISCORD_TOKEN"] = discord.token
    if slack is not None:
        env |= {k: v for k, v in slack_env(slack).items() if k != "SLACK_APP_TOKEN"}
    slack_url = f"http://127.0.0.1:{slack_port}/slack/events" if slack is not None else ""
    async with ember_run_process(config, env, health_port, keep_stdout=False) as running:
        await running.ready()
        yield Host(name, running, slack_url, config)


async def rows(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    """What one SQL query finds in the hosts' database, read as a third party would."""
    store = Store.open(database_url)
    try:
        async with store.engine.connect() as conn:
            return [tuple(row) for row in (await conn.execute(text(sql))).all()]
    finally:
        await store.close()


async def until_rows(database_url: str, sql: str, *, timeout: float) -> list[tuple[Any, ...]]:
    """`rows` once the query finds something (polled: another process writes it)."""
    deadline = time.monotonic() + timeout
    while not (found := await rows(database_url, sql)):
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing found in time: {sql}")
        await asyncio.sleep(0.1)
    return found
