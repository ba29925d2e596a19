"""Configuration: TOML in, typed and validated settings out.

Discovery order: `--config FILE`, `$EMBER_CONFIG`, `./config.toml`, else built-in defaults that
work with only `ANTHROPIC_API_KEY` set. Secrets never live in the file: a `*_env` key names the
environment variable that holds the secret, read only when a client is built.

The schema *is* the dataclasses below: `_build` walks their type hints, so adding a key is adding
a field. Every error is a ConfigError naming the file, the key path and how to fix it.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from core.errors import ConfigError

OPUS_3 = "claude-3-opus-20240229"
DEFAULT_SYSTEM_PROMPT = (
    "You are Claude 3 Opus, talking with members of an online community in a group chat. "
    "Several people may speak; each user message is prefixed with the speaker's name. "
    "Answer the latest message, addressing people by name when it helps."
)
Provider = Literal["anthropic", "bedrock", "vertex"]


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite+aiosqlite:///ember.db"
    # When the URL carries a password it is a secret: name the variable that holds the whole URL.
    url_env: str = ""
    echo: bool = False


@dataclass(frozen=True)
class AnthropicProvider:
    api_key_env: str = "ANTHROPIC_API_KEY"
    base_url: str = ""
    timeout_seconds: float = 120.0


@dataclass(frozen=True)
class BedrockProvider:
    aws_region: str = "us-east-1"
    aws_profile: str = ""
    aws_access_key_env: str = ""
    aws_secret_key_env: str = ""
    aws_session_token_env: str = ""
    base_url: str = ""
    timeout_seconds: float = 120.0


@dataclass(frozen=True)
class VertexProvider:
    project_id: str = ""
    region: str = "us-east5"
    access_token_env: str = ""
    base_url: str = ""
    timeout_seconds: float = 120.0


@dataclass(frozen=True)
class ProvidersSettings:
    anthropic: AnthropicProvider = field(default_factory=AnthropicProvider)
    bedrock: BedrockProvider = field(default_factory=BedrockProvider)
    vertex: VertexProvider = field(default_factory=VertexProvider)


@dataclass(frozen=True)
class Backend:
    provider: Provider
    model: str


@dataclass(frozen=True)
class Price:
    """Dollars per million tokens; usage is billed in integer micro-dollars."""

    input: float = 15.0
    output: float = 75.0
    cache_write: float = 18.75
    cache_read: float = 1.50


@dataclass(frozen=True)
class ModelSettings:
    backends: list[Backend]
    display_name: str = ""
    max_tokens: int = 1024
    temperature: float = 1.0
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    context_tokens: int = 24_000
    fallback: str = ""
    price: Price = field(default_factory=Price)


def _default_models() -> dict[str, ModelSettings]:
    return {
        "opus-3": ModelSettings(
            display_name="Claude Opus 3", backends=[Backend(provider="anthropic", model=OPUS_3)]
        )
    }


@dataclass(frozen=True)
class ChatSettings:
    default_model: str = "opus-3"
    # Other bots' messages are ignored unless allowed; depth bounds bot-to-bot reply chains.
    allow_bots: bool = False
    max_bot_depth: int = 2
    history_messages: int = 50


@dataclass(frozen=True)
class RoutingSettings:
    failure_threshold: int = 3
    cooldown_seconds: float = 60.0
    resume_attempts: int = 2


@dataclass(frozen=True)
class DiscordSettings:
    token_env: str = "DISCORD_TOKEN"
    command: str = "opus"
    mod_channel: str = ""
    threads: bool = True
    allow_dms: bool = True
    room_channels: list[str] = field(default_factory=list)
    moderator_roles: list[str] = field(default_factory=list)
    api_base_url: str = ""
    gateway_url: str = ""


@dataclass(frozen=True)
class SlackSettings:
    mode: Literal["socket", "http"] = "socket"
    bot_token_env: str = "SLACK_BOT_TOKEN"
    app_token_env: str = "SLACK_APP_TOKEN"
    signing_secret_env: str = "SLACK_SIGNING_SECRET"
    http_port: int = 3000
    command: str = "/opus"
    mod_channel: str = ""
    allow_dms: bool = True
    room_channels: list[str] = field(default_factory=list)
    moderator_roles: list[str] = field(default_factory=list)
    api_base_url: str = ""


@dataclass(frozen=True)
class AccessSettings:
    mode: Literal["open", "request", "closed"] = "request"
    member_roles: list[str] = field(default_factory=list)
    daily_messages: int = 0
    daily_tokens: int = 0
    max_concurrent: int = 1
    monthly_spend_usd: float = 0.0


@dataclass(frozen=True)
class EssaysSettings:
    feeds: list[str] = field(default_factory=list)
    poll_seconds: float = 900.0
    announce_existing: bool = False
    max_age_days: int = 7


@dataclass(frozen=True)
class LoggingSettings:
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # "json": one object per line for a log collector; "text" for people.
    format: Literal["text", "json"] = "text"


@dataclass(frozen=True)
class ServerSettings:
    """The operator's endpoints (/healthz, /readyz, /metrics) and shutdown."""

    host: str = "127.0.0.1"
    health_port: int = 8080  # 0 turns the endpoints off
    # On SIGTERM/SIGINT, replies in flight get this long to finish before they are stopped.
    shutdown_grace_seconds: float = 20.0


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    providers: ProvidersSettings = field(default_factory=ProvidersSettings)
    models: dict[str, ModelSettings] = field(default_factory=_default_models)
    chat: ChatSettings = field(default_factory=ChatSettings)
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    discord: DiscordSettings = field(default_factory=DiscordSettings)
    slack: SlackSettings = field(default_factory=SlackSettings)
    access: AccessSettings = field(default_factory=AccessSettings)
    essays: EssaysSettings = field(default_factory=EssaysSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    source: str = "(built-in defaults)"

    def model(self, alias: str) -> ModelSettings:
        return self.models[alias]

    def command_for(self, platform: str) -> str:
        """The top-level command as members type it on `platform` ("/opus")."""
        if platform == "discord":
            return "/" + self.discord.command.lstrip("/")
        if platform == "slack":
            return "/" + self.slack.command.lstrip("/")
        return "/opus"


# ---------------------------------------------------------------- discovery and loading


def find_config(explicit: str | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The file to load, by the documented order; None means built-in defaults."""
    env = os.environ if environ is None else environ
    if explicit:
        return Path(explicit)
    if env.get("EMBER_CONFIG"):
        return Path(env["EMBER_CONFIG"])
    local = Path("config.toml")
    return local if local.exists() else None


def load_settings(path: Path | None) -> Settings:
    if path is None:
        return validate(Settings())
    name = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(name, "", "file not found", "check the path, or unset EMBER_CONFIG") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(name, "", f"not valid TOML: {exc}") from None
    settings = _build(Settings, raw, "", name)
    return validate(dataclasses.replace(settings, source=name))


def settings_from_dict(raw: Mapping[str, Any], source: str = "(dict)") -> Settings:
    """Build settings from an in-memory table (tests, embedding)."""
    return validate(dataclasses.replace(_build(Settings, dict(raw), "", source), source=source))


def validate(settings: Settings) -> Settings:
    """Cross-key checks that types alone cannot express."""
    file = settings.source
    _check_database_url(settings.database.url, file)
    mod_channel = settings.discord.mod_channel
    if mod_channel and not mod_channel.isdigit():
        raise ConfigError(
            file,
            "discord.mod_channel",
            f"{mod_channel!r} is not a channel id",
            "in Discord, right-click the channel → Copy Channel ID (Developer Mode on), and quote it",
        )
    if not settings.models:
        raise ConfigError(file, "models", "no model aliases are defined", 'add a [models."opus-3"] table')
    if settings.chat.default_model not in settings.models:
        raise ConfigError(
            file,
            "chat.default_model",
            f"alias {settings.chat.default_model!r} does not exist",
            _suggest(settings.chat.default_model, settings.models),
        )
    for alias, model in settings.models.items():
        key = f"models.{alias}"
        if not model.backends:
            raise ConfigError(
                file, f"{key}.backends", "lists no backends", 'add {provider = "anthropic", model = "..."}'
            )
        if model.fallback and model.fallback not in settings.models:
            raise ConfigError(
                file,
                f"{key}.fallback",
                f"alias {model.fallback!r} does not exist",
                _suggest(model.fallback, settings.models),
            )
        if model.fallback == alias:
            raise ConfigError(
                file,
                f"{key}.fallback",
                "an alias cannot fall back to itself",
                "name a different alias or remove it",
            )
        if model.max_tokens <= 0 or model.context_tokens <= 0:
            raise ConfigError(
                file, key, "max_tokens and context_tokens must be positive", "use a positive whole number"
            )
        if not 0.0 <= model.temperature <= 1.0:
            raise ConfigError(
                file, f"{key}.temperature", "must be between 0.0 and 1.0", "Opus 3 accepts 0.0 to 1.0"
            )
    if settings.routing.failure_threshold < 1:
        raise ConfigError(file, "routing.failure_threshold", "must be at least 1", "3 is a good start")
    return settings


def _check_database_url(url: str, file: str) -> None:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            file, "database.url", f"{url!r} is not a database URL", 'e.g. "sqlite+aiosqlite:///ember.db"'
        ) from None
    if parsed.password:
        raise ConfigError(
            file,
            "database.url",
            "contains a password, and secrets never go in the file",
            "export the whole URL in an environment variable and name it in database.url_env",
        )


def database_url(settings: Settings, environ: Mapping[str, str] | None = None) -> str:
    """The URL to open: from the environment when `url_env` names a variable, else `url`."""
    database = settings.database
    if not database.url_env:
        return database.url
    url = secret(database.url_env, "database.url_env", settings.source, environ)
    try:
        make_url(url)
    except ArgumentError:
        # The value is a secret: name the variable, never echo what it holds.
        raise ConfigError(
            settings.source,
            "database.url_env",
            f"environment variable {database.url_env} does not hold a database URL",
            "e.g. postgresql+asyncpg://user:password@host/ember",
        ) from None
    return url


def required_env(settings: Settings) -> list[tuple[str, str]]:
    """(key path, environment variable) pairs that the configuration needs set."""
    used = {b.provider for m in settings.models.values() for b in m.backends}
    needs: list[tuple[str, str]] = []
    if settings.database.url_env:
        needs.append(("database.url_env", settings.database.url_env))
    if "anthropic" in used:
        needs.append(("providers.anthropic.api_key_env", settings.providers.anthropic.api_key_env))
    if "bedrock" in used:
        bedrock = settings.providers.bedrock
        for key in ("aws_access_key_env", "aws_secret_key_env", "aws_session_token_env"):
            if getattr(bedrock, key):
                needs.append((f"providers.bedrock.{key}", getattr(bedrock, key)))
    if "vertex" in used and settings.providers.vertex.access_token_env:
        needs.append(("providers.vertex.access_token_env", settings.providers.vertex.access_token_env))
    return needs


def check_environment(settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    """Raise ConfigError for the first secret the configured backends need but cannot find."""
    env = os.environ if environ is None else environ
    for key, var in required_env(settings):
        if not env.get(var):
            raise ConfigError(
                settings.source, key, f"environment variable {var} is not set", f"export {var}=..."
            )
    uses_vertex = any(b.provider == "vertex" for m in settings.models.values() for b in m.backends)
    if uses_vertex and not settings.providers.vertex.project_id:
        raise ConfigError(
            settings.source, "providers.vertex.project_id", "is empty", "set your Google Cloud project id"
        )


def secret(var: str, key: str, source: str = "", environ: Mapping[str, str] | None = None) -> str:
    """Read a secret from the environment at the moment it is needed; never cache or log it."""
    env = os.environ if environ is None else environ
    value = env.get(var, "")
    if not value:
        raise ConfigError(
            source or "environment", key, f"environment variable {var} is not set", f"export {var}=..."
        )
    return value


def check_server(settings: Settings) -> None:
    """Ranges of the `[server]` keys (types are checked when the file is read)."""
    server = settings.server
    if not 0 <= server.health_port <= 65535:
        raise ConfigError(settings.source, "server.health_port", "must be 0 to 65535", "0 turns it off")
    if server.shutdown_grace_seconds < 0:
        raise ConfigError(
            settings.source, "server.shutdown_grace_seconds", "must not be negative", "20 is a good start"
        )


# ---------------------------------------------------------------- the schema walker


def _suggest(word: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {close[0]!r}?" if close else f"choose one of: {', '.join(sorted(choices))}"


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    if origin in (list, dict):
        return "an array" if origin is list else "a table"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}.get(tp, str(tp))


def _build(cls: type[Any], data: Any, path: str, file: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(file, path or "(top level)", f"expected a table, got {type(data).__name__}", "")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    values: dict[str, Any] = {}
    for key, value in data.items():
        here = f"{path}.{key}" if path else key
        if key not in fields:
            raise ConfigError(file, here, "unknown key", _suggest(key, fields))
        values[key] = _convert(hints[key], value, here, file)
    for name, f in fields.items():
        missing = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if missing and name not in values:
            here = f"{path}.{name}" if path else name
            raise ConfigError(file, here, "is required", f"add {name} = ... ({_type_name(hints[name])})")
    return cls(**values)


def _convert(tp: Any, value: Any, path: str, file: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(typing.cast(type[Any], tp), value, path, file)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(file, path, f"{value!r} is not allowed", f"use {_type_name(tp)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(file, path, f"expected an array, got {type(value).__name__}", "write [ ... ]")
        (item,) = typing.get_args(tp)
        return [_convert(item, v, f"{path}[{i}]", file) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(file, path, f"expected a table, got {type(value).__name__}", "")
        _, item = typing.get_args(tp)
        return {k: _convert(item, v, f"{path}.{k}", file) for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        raise TypeError("unions are not used in the settings schema")
    return _scalar(tp, value, path, file)


def _scalar(tp: Any, value: Any, path: str, file: str) -> Any:
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool):
        raise ConfigError(file, path, "expected a whole number, got true/false", "write a number like 10")
    if not isinstance(value, tp):
        hint = 'put quotes around it, e.g. "123"' if tp is str else f"use {_type_name(tp)}"
        raise ConfigError(
            file, path, f"expected {_type_name(tp)}, got {type(value).__name__} {value!r}", hint
        )
    return value
