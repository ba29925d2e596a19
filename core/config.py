"""Configuration: TOML in, typed and validated settings out.

Discovery order: `--config FILE`, `$EMBER_CONFIG`, `./config.toml`, else built-in defaults that
work with only `ANTHROPIC_API_KEY` set. Secrets never live in the file: a `*_env` key names the
environment variable that holds the secret, read only when a client is built.

The schema *is* the dataclasses below: `core.config_walk` walks their type hints, so adding a key
is adding a field, and the `Annotated` rules on a field (`core.config_rules`: ranges, ids,
command grammars, URLs) are checked as it is read. `validate` adds the checks that span keys.
Every error is a ConfigError naming the file, the key path and how to fix it; `ember config
check` and every other command load settings through this one path.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from core.config_database import DatabaseUrl
from core.config_platforms import DEFAULT_COMMAND, DiscordSettings, SlackSettings, check_shards
from core.config_rules import (
    CountOrZero,
    DollarsOrZero,
    EnvName,
    HttpUrl,
    Invalid,
    NonEmpty,
    OptionalHttpUrl,
    PositiveInt,
    Range,
    Seconds,
    Temperature,
)
from core.config_studio import StudioSettings, check_studio
from core.config_walk import build, suggest
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
    url: Annotated[str, DatabaseUrl()] = "sqlite+aiosqlite:///ember.db"
    # When the URL carries a password it is a secret: name the variable that holds the whole URL.
    url_env: Annotated[str, EnvName("EMBER_DATABASE_URL", optional=True)] = ""
    echo: bool = False


@dataclass(frozen=True)
class AnthropicProvider:
    api_key_env: Annotated[str, EnvName("ANTHROPIC_API_KEY")] = "ANTHROPIC_API_KEY"
    base_url: OptionalHttpUrl = ""
    timeout_seconds: Seconds = 120.0


@dataclass(frozen=True)
class BedrockProvider:
    aws_region: Annotated[str, NonEmpty('name an AWS region, e.g. "us-east-1"')] = "us-east-1"
    aws_profile: str = ""
    aws_access_key_env: Annotated[str, EnvName("AWS_ACCESS_KEY_ID", optional=True)] = ""
    aws_secret_key_env: Annotated[str, EnvName("AWS_SECRET_ACCESS_KEY", optional=True)] = ""
    aws_session_token_env: Annotated[str, EnvName("AWS_SESSION_TOKEN", optional=True)] = ""
    base_url: OptionalHttpUrl = ""
    timeout_seconds: Seconds = 120.0


@dataclass(frozen=True)
class VertexProvider:
    project_id: str = ""
    region: Annotated[str, NonEmpty('name a Google Cloud region, e.g. "us-east5"')] = "us-east5"
    access_token_env: Annotated[str, EnvName("VERTEX_ACCESS_TOKEN", optional=True)] = ""
    base_url: OptionalHttpUrl = ""
    timeout_seconds: Seconds = 120.0


@dataclass(frozen=True)
class ProvidersSettings:
    anthropic: AnthropicProvider = field(default_factory=AnthropicProvider)
    bedrock: BedrockProvider = field(default_factory=BedrockProvider)
    vertex: VertexProvider = field(default_factory=VertexProvider)


@dataclass(frozen=True)
class Backend:
    provider: Provider
    model: Annotated[str, NonEmpty(f'name the model as this provider knows it, e.g. "{OPUS_3}"')]


@dataclass(frozen=True)
class Price:
    """Dollars per million tokens; usage is billed in integer micro-dollars."""

    input: DollarsOrZero = 15.0
    output: DollarsOrZero = 75.0
    cache_write: DollarsOrZero = 18.75
    cache_read: DollarsOrZero = 1.50


@dataclass(frozen=True)
class ModelSettings:
    backends: list[Backend]
    display_name: str = ""
    max_tokens: PositiveInt = 1024
    temperature: Temperature = 1.0
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    context_tokens: PositiveInt = 24_000
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
    max_bot_depth: PositiveInt = 2
    history_messages: CountOrZero = 50


@dataclass(frozen=True)
class RoutingSettings:
    failure_threshold: PositiveInt = 3
    cooldown_seconds: Seconds = 60.0
    resume_attempts: CountOrZero = 2


@dataclass(frozen=True)
class AccessSettings:
    mode: Literal["open", "request", "closed"] = "request"
    # Discord role ids and Slack user group ids alike: the access rules are the platforms'.
    member_roles: list[Annotated[str, NonEmpty("name a role or user group id, or remove the entry")]] = field(
        default_factory=list
    )
    daily_messages: CountOrZero = 0
    daily_tokens: CountOrZero = 0
    max_concurrent: PositiveInt = 1
    monthly_spend_usd: DollarsOrZero = 0.0
    # Who pays for a direct message whose platform names no workspace (Discord) when the member
    # has no grant to name one: this workspace id, else the "dm" budget (see README, Metering).
    dm_workspace: str = ""


@dataclass(frozen=True)
class EssaysSettings:
    feeds: list[HttpUrl] = field(default_factory=list)
    poll_seconds: Seconds = 900.0
    announce_existing: bool = False
    max_age_days: PositiveInt = 7


@dataclass(frozen=True)
class LoggingSettings:
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # "json": one object per line for a log collector; "text" for people.
    format: Literal["text", "json"] = "text"


@dataclass(frozen=True)
class ServerSettings:
    """The operator's endpoints (/healthz, /readyz, /metrics) and shutdown."""

    host: Annotated[str, NonEmpty('name an address to listen on, e.g. "127.0.0.1"')] = "127.0.0.1"
    # 0 turns the endpoints off.
    health_port: Annotated[int, Range(low=0, high=65535, example="8080 (0 turns the endpoints off)")] = 8080
    # On SIGTERM/SIGINT, replies in flight get this long to finish before they are stopped.
    shutdown_grace_seconds: Annotated[float, Range(low=0, example="20")] = 20.0


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
    studio: StudioSettings = field(default_factory=StudioSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    source: str = "(built-in defaults)"

    def model(self, alias: str) -> ModelSettings:
        return self.models[alias]

    def command_for(self, platform: str) -> str:
        """The top-level command as members type it on `platform` ("/opus"); a platform without
        a settings section (the terminal) uses the default name."""
        section = getattr(self, platform, None)
        if isinstance(section, (DiscordSettings, SlackSettings)):
            return section.slash_command
        return "/" + DEFAULT_COMMAND


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
    return validate(dataclasses.replace(build(Settings, _read_toml(path), "", name), source=name))


def settings_from_dict(raw: Mapping[str, Any], source: str = "(dict)") -> Settings:
    """Build settings from an in-memory table (tests, embedding)."""
    return validate(dataclasses.replace(build(Settings, dict(raw), "", source), source=source))


def _read_toml(path: Path) -> dict[str, Any]:
    """The file's table, or a one-line ConfigError for every way reading it can fail."""
    name = str(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(name, "", "file not found", "check the path, or unset EMBER_CONFIG") from None
    except IsADirectoryError:
        fix = f"name the settings file itself, e.g. {path / 'config.toml'}"
        raise ConfigError(name, "", "is a directory, not a file", fix) from None
    except PermissionError:
        fix = "make it readable by the user ember runs as"
        raise ConfigError(name, "", "cannot be read (permission denied)", fix) from None
    except UnicodeDecodeError as exc:
        fix = "save it as UTF-8, which TOML requires"
        raise ConfigError(name, "", f"is not UTF-8 text (byte {exc.start} of the file)", fix) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            name, "", f"not valid TOML: {exc}", "fix the line named; see https://toml.io"
        ) from None
    except ValueError:  # a path the system cannot take, e.g. one with a NUL byte in it
        raise ConfigError(
            name, "", "is not a usable path", "check the --config or EMBER_CONFIG value"
        ) from None
    except OSError as exc:
        fix = "check the path and its permissions"
        raise ConfigError(name, "", f"cannot be read ({exc.strerror or exc})", fix) from None


def validate(settings: Settings) -> Settings:
    """Cross-key checks that a single value's rules cannot express."""
    file = settings.source
    if not settings.models:
        raise ConfigError(file, "models", "no model aliases are defined", 'add a [models."opus-3"] table')
    if settings.chat.default_model not in settings.models:
        raise ConfigError(
            file,
            "chat.default_model",
            f"alias {settings.chat.default_model!r} does not exist",
            suggest(settings.chat.default_model, settings.models),
        )
    for alias, model in settings.models.items():
        _check_model(settings, alias, model)
    check_shards(settings.discord, settings.source)
    check_studio(settings)
    return settings


def _check_model(settings: Settings, alias: str, model: ModelSettings) -> None:
    file, key = settings.source, f"models.{alias}"
    if not model.backends:
        fix = 'add {provider = "anthropic", model = "..."}'
        raise ConfigError(file, f"{key}.backends", "lists no backends", fix)
    if model.fallback and model.fallback not in settings.models:
        problem = f"alias {model.fallback!r} does not exist"
        raise ConfigError(file, f"{key}.fallback", problem, suggest(model.fallback, settings.models))
    if model.fallback == alias:
        fix = "name a different alias or remove it"
        raise ConfigError(file, f"{key}.fallback", "an alias cannot fall back to itself", fix)


def database_url(settings: Settings, environ: Mapping[str, str] | None = None) -> str:
    """The URL to open: from the environment when `url_env` names a variable, else `url`."""
    database = settings.database
    if not database.url_env:
        return database.url
    url = secret(database.url_env, "database.url_env", settings.source, environ)
    try:
        return DatabaseUrl(from_env=database.url_env)(url)
    except Invalid as invalid:
        raise ConfigError(settings.source, "database.url_env", invalid.problem, invalid.fix) from None


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
    database_url(settings, env)  # what `ember run` will open must be a URL it can open


def secret(var: str, key: str, source: str = "", environ: Mapping[str, str] | None = None) -> str:
    """Read a secret from the environment at the moment it is needed; never cache or log it."""
    env = os.environ if environ is None else environ
    if not var:
        raise ConfigError(
            source or "environment", key, "is empty", "name the environment variable that holds it"
        )
    value = env.get(var, "")
    if not value:
        raise ConfigError(
            source or "environment", key, f"environment variable {var} is not set", f"export {var}=..."
        )
    return value
