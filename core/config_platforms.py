"""The `[discord]` and `[slack]` sections: how ember reaches each platform, who moderates there,
and (Discord) which gateway shards this host runs. Checked by the rules in core.config_rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from core.config_rules import (
    CountOrZero,
    DiscordChannel,
    DiscordId,
    DiscordRole,
    EnvName,
    OptionalHttpUrl,
    OptionalWsUrl,
    Port,
    PositiveInt,
    ShardId,
    SlackChannel,
    SlackId,
    SlackUserGroup,
    discord_command,
    slack_command,
)
from core.errors import ConfigError

DEFAULT_COMMAND = "opus"


@dataclass(frozen=True)
class DiscordSettings:
    token_env: Annotated[str, EnvName("DISCORD_TOKEN")] = "DISCORD_TOKEN"
    # Kept without the slash, as Discord registers it ("opus"; "/opus" in the file is read so).
    command: Annotated[str, discord_command] = DEFAULT_COMMAND
    mod_channel: Annotated[str, DiscordId("channel", optional=True)] = ""
    threads: bool = True
    allow_dms: bool = True
    room_channels: list[DiscordChannel] = field(default_factory=list)
    moderator_roles: list[DiscordRole] = field(default_factory=list)
    api_base_url: OptionalHttpUrl = ""
    gateway_url: OptionalWsUrl = ""
    # Discord's global limit for the bot token (50; higher only where Discord granted it).
    requests_per_second: PositiveInt = 50
    # Several hosts split one bot's gateway into shards: 0 takes Discord's recommendation.
    shard_count: CountOrZero = 0
    shard_ids: list[ShardId] = field(default_factory=list)  # the shards this host runs; [] = all

    @property
    def slash_command(self) -> str:
        """The command as members type it ("/opus")."""
        return "/" + self.command


@dataclass(frozen=True)
class SlackSettings:
    mode: Literal["socket", "http"] = "socket"
    bot_token_env: Annotated[str, EnvName("SLACK_BOT_TOKEN")] = "SLACK_BOT_TOKEN"
    app_token_env: Annotated[str, EnvName("SLACK_APP_TOKEN")] = "SLACK_APP_TOKEN"
    signing_secret_env: Annotated[str, EnvName("SLACK_SIGNING_SECRET")] = "SLACK_SIGNING_SECRET"
    http_port: Port = 3000
    # Kept with the slash, as Slack sends it ("/opus"; "opus" in the file is read so).
    command: Annotated[str, slack_command] = "/" + DEFAULT_COMMAND
    mod_channel: Annotated[str, SlackId("channel", "CG", optional=True)] = ""
    allow_dms: bool = True
    room_channels: list[SlackChannel] = field(default_factory=list)
    moderator_roles: list[SlackUserGroup] = field(default_factory=list)
    api_base_url: OptionalHttpUrl = ""

    @property
    def slash_command(self) -> str:
        """The command as members type it ("/opus")."""
        return self.command


def check_shards(discord: DiscordSettings, source: str) -> None:
    """Shard ids need their count, exist in it, and are named once."""
    if not discord.shard_ids:
        return
    if not discord.shard_count:
        fix = "set [discord] shard_count to the total over every host, e.g. shard_count = 2"
        raise ConfigError(source, "discord.shard_ids", "needs shard_count", fix)
    for index, shard_id in enumerate(discord.shard_ids):
        if shard_id >= discord.shard_count:
            problem = f"shard {shard_id} does not exist with shard_count = {discord.shard_count}"
            fix = f"use ids from 0 to {discord.shard_count - 1}"
            raise ConfigError(source, f"discord.shard_ids[{index}]", problem, fix)
    if len(set(discord.shard_ids)) != len(discord.shard_ids):
        raise ConfigError(source, "discord.shard_ids", "names a shard twice", "list each id once")
