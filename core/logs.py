"""Logging set-up with one guarantee: secret values never reach a log line.

Two formats (`[logging] format`): "text" for people, "json" (one object per line) for a log
collector. Either way the whole formatted line, traceback included, passes through `Redactor`,
so a secret inside an exception's text or a repr is caught too. The ids a line is about
(trace_id, platform, workspace, channel, user, reply_id) come from `log_context(...)` around
the work, or from `extra=` on one call.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TextIO

from core.config import Settings
from core.store.urls import parse_database_url

REDACTED = "[redacted]"
CONTEXT_KEYS = ("trace_id", "platform", "workspace", "channel", "user", "reply_id")
# Shorter values would redact ordinary words; no real credential is this short.
MIN_SECRET_LENGTH = 6


# A context variable is declared once, at module level, by design: each task sees its own value.
_IDS: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("ember_log_ids", default=())


@contextmanager
def log_context(**ids: str) -> Iterator[None]:
    """Every line logged inside carries these ids (nested calls add to them)."""
    merged = {**dict(_IDS.get()), **{k: v for k, v in ids.items() if v}}
    token = _IDS.set(tuple(merged.items()))
    try:
        yield
    finally:
        _IDS.reset(token)


class Redactor:
    """Replaces every known secret value in a text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        unique = {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}
        self._secrets = sorted(unique, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._secrets:
            text = text.replace(value, REDACTED)
        return text

    @classmethod
    def for_settings(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> Redactor:
        env = os.environ if environ is None else environ
        values = [env.get(name, "") for name in secret_env_names(settings)]
        # A `?password=` in the file's own URL slips past the password check: never show it either.
        urls = [*values, settings.database.url]
        return cls([*values, *(p for url in urls for p in url_passwords(url))])


def url_passwords(value: str) -> list[str]:
    """The passwords inside a database URL: after `user:`, and in `?password=`."""
    url = parse_database_url(value) if "://" in value else None
    return url.passwords if url is not None else []


class SecretFilter(logging.Filter):
    """Redacts a record's message (for handlers that format on their own)."""

    def __init__(self, secrets: Iterable[str] | Redactor) -> None:
        super().__init__()
        self._redact = secrets if isinstance(secrets, Redactor) else Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def secret_env_names(settings: Settings) -> list[str]:
    """Every environment variable a `*_env` key names, anywhere in the settings."""
    names: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
            return
        for key, value in getattr(node, "__dict__", {}).items():
            if key.endswith("_env") and isinstance(value, str) and value:
                names.append(value)
            elif hasattr(value, "__dict__") or isinstance(value, dict):
                walk(value)

    walk(settings)
    return names


def context_of(record: logging.LogRecord) -> dict[str, str]:
    """The ids a record is about: the surrounding `log_context`, then its own `extra=`."""
    ids = dict(_IDS.get())
    for key in CONTEXT_KEYS:
        value = getattr(record, key, None)
        if value:
            ids[key] = str(value)
    return ids


class TextFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = context_of(record)
        if ids:
            head, _, rest = line.partition("\n")
            tags = " ".join(f"{k}={v}" for k, v in ids.items())
            line = f"{head} [{tags}]" + (f"\n{rest}" if rest else "")
        return self._redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the ids, and any traceback."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **context_of(record),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["traceback"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # Each field before encoding: JSON escaping could hide a secret from a search afterwards.
        return json.dumps({key: self._redact(value) for key, value in entry.items()}, ensure_ascii=False)


def configure_logging(settings: Settings, redact: Redactor | None = None) -> Redactor:
    """Log to stderr in the configured format; returns the redactor for other output too."""
    redact = redact or Redactor.for_settings(settings)
    handler = logging.StreamHandler()
    if settings.logging.format == "json":
        handler.setFormatter(JsonFormatter(redact))
    else:
        handler.setFormatter(TextFormatter(redact))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.logging.level)
    return redact


class RedactingStream:
    """A text stream that redacts what is written to it: the command line wraps stdout and
    stderr in it, so a printed error or an unexpected traceback cannot show a secret either."""

    def __init__(self, inner: TextIO, redact: Redactor) -> None:
        self.inner = inner
        self.redact = redact

    def write(self, text: str) -> int:
        return self.inner.write(self.redact(text))

    def flush(self) -> None:
        self.inner.flush()

    def isatty(self) -> bool:
        return self.inner.isatty()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)
