"""ember's error tree. Every error a user can meet carries its own short, kind message.

    EmberError
    ├── ConfigError            bad configuration: names the file, the key path and a fix
    ├── StoreError             the database could not be reached or migrated
    ├── CommandError           a command that cannot run as typed
    │   ├── UsageError         malformed input: carries the usage line
    │   └── NotModerator       a member-only caller tried a moderator command
    ├── AccessDenied           the caller may not talk to the model now (issue: access by request)
    ├── ModelError             the model could not answer; carries a trace id for the logs
    │   ├── ModelUnavailable   every backend was overloaded, rate limited or unreachable
    │   ├── ModelNotEnabled    the API answered 404 for the model (not enabled for this key)
    │   └── ModelRequestError  the request itself was refused (400/401/403): an operator problem
    ├── FeedError              a newsletter feed could not be fetched or read; it backs off alone
    └── DeliveryError          an essay announcement was not posted (raised by platform adapters;
        │                      as such it means "not posted, try again later")
        ├── RateLimited        the platform said wait: carries retry_after (seconds)
        ├── ChannelGone        403/404: the channel is gone or forbids ember; its subscription pauses
        └── DeliveryRejected   400: the platform refused this one message; it fails, visibly

`user_message` is what the platform shows; `str(error)` is what the log shows. Neither ever
contains a secret.
"""

from __future__ import annotations

import uuid


def new_trace_id() -> str:
    """A short id that a user's error line and the log line share."""
    return uuid.uuid4().hex[:12]


class EmberError(Exception):
    """Base of every error ember raises on purpose."""

    @property
    def user_message(self) -> str:
        return str(self)


class ConfigError(EmberError):
    """A configuration problem, located precisely enough to fix without reading code."""

    def __init__(self, file: str, key: str, problem: str, hint: str = "") -> None:
        self.file = file
        self.key = key
        self.problem = problem
        self.hint = hint
        where = f"{file}: {key}" if key else file
        text = f"{where}: {problem}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)


class StoreError(EmberError):
    """The database failed in a way the operator must look at."""


class CommandError(EmberError):
    """A command that cannot run as typed; the message is shown to the caller only."""


class UsageError(CommandError):
    def __init__(self, problem: str, usage: str) -> None:
        self.problem = problem
        self.usage = usage
        super().__init__(f"{problem}\nUsage: {usage}" if usage else problem)


class NotModerator(CommandError):
    def __init__(self) -> None:
        super().__init__("That command is for moderators only; nothing was changed.")


class AccessDenied(EmberError):
    """The caller may not talk to the model now; the message says why and what to do. An empty
    message refuses in silence: the caller was already told (one notice per flood)."""


class ModelError(EmberError):
    """The model could not answer. The trace id ties the user's message to the log lines."""

    kind = "The model could not answer"

    def __init__(self, detail: str, trace_id: str) -> None:
        self.detail = detail
        self.trace_id = trace_id
        super().__init__(f"{detail} [trace {trace_id}]")

    @property
    def user_message(self) -> str:
        return f"{self.kind}. Please try again in a little while. (trace {self.trace_id})"


class ModelUnavailable(ModelError):
    kind = "The model is overloaded or unreachable right now"


class ModelNotEnabled(ModelError):
    kind = "The retired model is not available to this bot right now (the operator has been told)"


class ModelRequestError(ModelError):
    kind = "The model refused this request (the operator has been told)"


class FeedError(EmberError):
    """A feed poll failed (timeout, HTTP error, malformed or empty feed). The feed backs off;
    `retry_after` is the server's own wish (Retry-After), when it gave one."""

    def __init__(self, problem: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(problem)


class DeliveryError(EmberError):
    """An announcement was certainly not posted. Adapters raise this (or a subclass) when they
    know; any other exception from an adapter counts as "may have been posted"."""


class RateLimited(DeliveryError):
    """Wait `retry_after` seconds before the next try; `is_global` pauses the whole platform."""

    def __init__(self, retry_after: float, *, is_global: bool = False, detail: str = "") -> None:
        self.retry_after = max(0.0, retry_after)
        self.is_global = is_global
        super().__init__(detail or f"rate limited; retry after {self.retry_after:g} s")


def retry_after_seconds(value: str | float | None, default: float = 60.0) -> float:
    """A platform's Retry-After value (header or body) in seconds; `default` when absent or garbled."""
    try:
        return float(value) if value is not None else default
    except ValueError:
        return default


class ChannelGone(DeliveryError):
    """The channel no longer exists or forbids ember (HTTP 403/404, Slack channel_not_found,
    not_in_channel, is_archived). Its subscription is paused and the moderators are told."""


class DeliveryRejected(DeliveryError):
    """The platform refused this message as malformed (HTTP 400). Retrying would not help."""
