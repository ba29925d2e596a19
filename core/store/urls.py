"""Database URLs read without connecting: what the configuration check and log redaction need.

SQLAlchemy's own parser reads them (the same one the engine uses), so a URL is understood here
exactly as the store will understand it when it connects.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


@dataclass(frozen=True)
class DatabaseUrlParts:
    backend: str  # "sqlite", "postgresql", ...
    driver: str  # "aiosqlite", "asyncpg", ...
    password: str | None  # after `user:`
    query: tuple[tuple[str, str], ...]  # every query parameter, repeated ones included

    @property
    def passwords(self) -> list[str]:
        """Every password the URL carries: after `user:`, and in `?password=`."""
        in_query = [value for key, value in self.query if key == "password"]
        return [p for p in (self.password, *in_query) if p]


def parse_database_url(value: str) -> DatabaseUrlParts | None:
    """The URL's parts, or None when `value` is not a database URL."""
    try:
        url = make_url(value)
    except ArgumentError:
        return None
    query = tuple(
        (key, item)
        for key, values in url.query.items()
        for item in ((values,) if isinstance(values, str) else values)
    )
    return DatabaseUrlParts(url.get_backend_name(), url.get_driver_name(), url.password, query)
