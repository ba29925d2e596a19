"""Discord on several hosts: the client runs the shards `[discord] shard_ids` names, and two
hosts holding the same shard (both receiving every message) answer each message once."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from unittest.mock import patch

import pytest

from bots.discord.app import make_client
from core.chat import OpenGate
from core.errors import ConfigError
from core.runtime import open_runtime
from tests.discord_support import bot_messages, ember_settings, finished, running_ember
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.discord_server import FakeDiscord, run_client


async def test_the_client_runs_the_configured_shards_of_the_configured_count(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    settings = ember_settings(tmp_path, fake_anthropic, discord={"shard_count": 3, "shard_ids": [0, 2]})
    async with running_ember(fake_discord, fake_anthropic, settings) as ember:
        assert ember.client.shard_count == 3 and sorted(ember.client.shards) == [0, 2]
        assert fake_discord.sessions_by_shard() == {(0, 3): 1, (2, 3): 1}


async def test_by_default_every_shard_of_discords_recommendation_runs(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    fake_discord.recommended_shards = 2
    async with running_ember(fake_discord, fake_anthropic, ember_settings(tmp_path, fake_anthropic)) as ember:
        assert ember.client.shard_count == 2
        assert fake_discord.sessions_by_shard() == {(0, 2): 1, (1, 2): 1}


async def test_two_hosts_on_the_same_shard_answer_a_message_once(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic, postgres_db_url: str
) -> None:
    settings = ember_settings(tmp_path, fake_anthropic, database={"url": postgres_db_url})
    with patch.dict(os.environ, {"ANTHROPIC_API_KEY": "sk-ant-test-key"}):
        async with (
            open_runtime(settings, access=OpenGate()) as host_a,
            open_runtime(settings, access=OpenGate()) as host_b,
        ):
            client_a = make_client(host_a, guild_ready_timeout=0.05)
            client_b = make_client(host_b, guild_ready_timeout=0.05)
            async with run_client(client_a, fake_discord), run_client(client_b, fake_discord):
                assert fake_discord.sessions_by_shard() == {(0, 1): 2}
                alice, general = fake_discord.user("alice"), fake_discord.channel("general")
                await fake_discord.say(alice, general, f"{fake_discord.bot.mention} once, please")
                await fake_discord.wait_for(finished)
                await asyncio.sleep(0.5)  # time for a second answer, were one coming
                assert len(bot_messages(fake_discord, general)) == 1
                assert len(fake_anthropic.requests) == 1


@pytest.mark.parametrize(
    ("discord", "key", "words"),
    [
        ({"shard_ids": [0]}, "discord.shard_ids", "needs shard_count"),
        ({"shard_count": 2, "shard_ids": [2]}, "discord.shard_ids[0]", "from 0 to 1"),
        ({"shard_count": 2, "shard_ids": [1, 1]}, "discord.shard_ids", "list each id once"),
        ({"shard_count": -1}, "discord.shard_count", "negative"),
    ],
)
def test_shard_settings_that_cannot_work_name_the_key_and_the_fix(
    tmp_path: Path, fake_anthropic: FakeAnthropic, discord: dict[str, object], key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        ember_settings(tmp_path, fake_anthropic, discord=discord)
    assert raised.value.key == key and words in str(raised.value)
