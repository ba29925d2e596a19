"""The rule for a database URL: a database and async driver ember runs on, and no secret in it.

Checked where the URL is read, from the file (`[database] url`) or from the environment variable
that `url_env` names, so `ember config check` refuses what `ember run` could not open: a sync
driver (`sqlite://`, `postgresql://`), a database ember has no migrations for, a driver that is
not installed. A URL in the file must not carry a password; one from the environment may, and
is never echoed.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from core.config_rules import Invalid, has_password_parameter
from core.store.urls import DatabaseUrlParts, parse_database_url

# The async driver ember runs each database through, and the module that driver imports.
ASYNC_DRIVERS = {"sqlite": ("aiosqlite", "aiosqlite"), "postgresql": ("asyncpg", "asyncpg")}
_EXAMPLES = '"sqlite+aiosqlite:///ember.db" or "postgresql+asyncpg://ember@db.internal/ember"'


@dataclass(frozen=True)
class DatabaseUrl:
    """`from_env` names the environment variable the URL came from ("" for the file)."""

    from_env: str = ""

    def __call__(self, value: str) -> str:
        url = parse_database_url(value)
        if url is None:
            problem = (
                f"environment variable {self.from_env} does not hold"
                if self.from_env
                else f"{value!r} is not"
            )
            raise Invalid(f"{problem} a database URL", f"e.g. {_EXAMPLES}") from None
        if not self.from_env and (url.password or has_password_parameter(url.query)):
            raise Invalid(
                "contains a password, and secrets never go in the file",
                "export the whole URL in an environment variable and name it in database.url_env",
            )
        _check_driver(url)
        return value


def _check_driver(url: DatabaseUrlParts) -> None:
    database, driver = url.backend, url.driver
    known = ASYNC_DRIVERS.get(database)
    if known is None:
        raise Invalid(f"ember does not run on {database!r} databases", f"use {_EXAMPLES}")
    wanted, module = known
    if driver != wanted:
        problem = f"names the {driver} driver, and ember runs {database} through {wanted} (async)"
        raise Invalid(problem, f"begin the URL with {database}+{wanted}://")
    if importlib.util.find_spec(module) is None:
        raise Invalid(
            f"the {module} driver is not installed",
            "install ember with its extras (make installs them all), or use sqlite+aiosqlite",
        )
