"""Logging set-up with one guarantee: secret values never reach a log line."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

from core.config import Settings

REDACTED = "[redacted]"


class SecretFilter(logging.Filter):
    """Replaces the values of the secret environment variables wherever they appear."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        redacted = message
        for value in self._secrets:
            redacted = redacted.replace(value, REDACTED)
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


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter(os.environ.get(name, "") for name in secret_env_names(settings)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.logging.level)
