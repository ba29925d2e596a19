"""The core's shape, checked from source: SQL only in core/store, no branch on a platform's name
anywhere in core/ (platform facts arrive as the adapters' PlatformTraits), no platform SDK."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import core.access
import core.chat
import core.essays

CORE = Path(__file__).resolve().parent.parent / "core"
MODULES = sorted(p for p in CORE.rglob("*.py") if "migrations" not in p.parts)
PLATFORM_NAMES = {"discord", "slack", "console"}
SQL_LIBRARIES = ("sqlalchemy", "sqlmodel", "aiosqlite", "asyncpg", "alembic")
PLATFORM_SDKS = ("discord", "slack_bolt", "slack_sdk")


def _tree(module: Path) -> ast.Module:
    return ast.parse(module.read_text(), filename=str(module))


def _imported(module: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _relative(module: Path) -> str:
    return module.relative_to(CORE.parent).as_posix()


@pytest.mark.parametrize("module", MODULES, ids=_relative)
def test_no_core_module_branches_on_a_platform_name(module: Path) -> None:
    found = [
        node.lineno
        for node in ast.walk(_tree(module))
        if isinstance(node, ast.Compare)
        and any(
            isinstance(c, ast.Constant) and c.value in PLATFORM_NAMES for c in [node.left, *node.comparators]
        )
    ]
    assert found == [], f"{_relative(module)} compares with a platform name at lines {found}"


@pytest.mark.parametrize("module", [m for m in MODULES if "store" not in m.parts], ids=_relative)
def test_sql_lives_only_in_the_store(module: Path) -> None:
    sql = sorted(name for name in _imported(module) if name.split(".")[0] in SQL_LIBRARIES)
    assert sql == [], f"{_relative(module)} imports {sql}: statements belong in a core/store repository"


@pytest.mark.parametrize("module", MODULES, ids=_relative)
def test_the_core_imports_no_platform_sdk(module: Path) -> None:
    sdks = sorted(name for name in _imported(module) if name.split(".")[0] in PLATFORM_SDKS)
    assert sdks == [], f"{_relative(module)} imports {sdks}"


def test_the_import_scan_sees_every_kind_of_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from sqlalchemy import select\nimport sqlmodel.sql\nfrom . import sibling\n")
    assert _imported(sample) == {"sqlalchemy", "sqlmodel.sql"}


@pytest.mark.parametrize("package", [core.chat, core.essays], ids=lambda p: p.__name__)
def test_each_feature_package_has_a_sorted_surface_of_real_names(package: object) -> None:
    names = list(package.__all__)
    assert names == sorted(names)
    assert [name for name in names if getattr(package, name, None) is None] == []
