"""The shape of core.chat: services that leave SQL to the repositories, and a tidy surface."""

from __future__ import annotations

import ast
from pathlib import Path

import core.chat

CHAT = Path(core.chat.__file__).parent
SQL_PACKAGES = ("sqlalchemy", "sqlmodel", "aiosqlite", "asyncpg")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_chat_modules_leave_sql_to_the_repositories() -> None:
    modules = sorted(CHAT.glob("*.py"))
    assert len(modules) > 10  # the package was found, with its modules
    offenders = {
        path.name: sorted(m for m in imported_modules(path) if m.split(".")[0] in SQL_PACKAGES)
        for path in modules
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_sql_check_sees_an_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from sqlalchemy import select\nimport sqlmodel.sql\n")
    assert imported_modules(sample) == {"sqlalchemy", "sqlmodel.sql"}


def test_the_surface_is_sorted_and_resolves() -> None:
    assert core.chat.__all__ == sorted(core.chat.__all__)
    assert all(getattr(core.chat, name, None) is not None for name in core.chat.__all__)
