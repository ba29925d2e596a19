"""The essay package's shape: its logic never touches SQL, and its public surface is tidy."""

from __future__ import annotations

import ast
from pathlib import Path

import core.essays

PACKAGE = Path(core.essays.__file__).parent
STORAGE_LIBRARIES = ("sqlalchemy", "sqlmodel")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_essay_module_imports_an_sql_library() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) > 10  # the package was found
    offenders = {
        path.name: sorted(name for name in imported_modules(path) if name.split(".")[0] in STORAGE_LIBRARIES)
        for path in modules
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_public_surface_is_sorted_and_importable() -> None:
    assert core.essays.__all__ == sorted(core.essays.__all__)
    for name in core.essays.__all__:
        assert getattr(core.essays, name) is not None, name
