"""The shape of access by request, checked from its source: wording in one place, a tidy public
surface, a repository that imports in any order. (SQL and platform names: test_core_layout.)"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import core.access

PACKAGE = Path(core.access.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))
# Modules that decide or translate; what they say comes from wording and command_wording.
LOGIC = ("gate", "requests", "grants", "expiry", "notices", "inputs", "service", "commands")


def _tree(module: Path) -> ast.Module:
    return ast.parse(module.read_text(), filename=str(module))


def test_the_package_has_the_modules_it_names() -> None:
    names = {m.stem for m in MODULES}
    assert set(LOGIC) <= names and {"wording", "values"} <= names


@pytest.mark.parametrize("name", LOGIC)
def test_logic_modules_word_nothing_themselves(name: str) -> None:
    module = PACKAGE / f"{name}.py"
    lines = [node.lineno for node in ast.walk(_tree(module)) if isinstance(node, ast.JoinedStr)]
    assert lines == [], f"{module.name} builds text at lines {lines}; move it to wording.py"


def test_the_public_surface_is_sorted_and_real() -> None:
    # The order ruff keeps (RUF022): CONSTANTS, then Classes, then functions, each alphabetical.
    def kind(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert core.access.__all__ == sorted(core.access.__all__, key=kind)
    missing = [name for name in core.access.__all__ if not hasattr(core.access, name)]
    assert missing == []


@pytest.mark.parametrize(
    "module", ["core.store.access_reads", "core.store.access_sql", "core.store.access_repo"]
)
def test_the_repository_imports_first_without_a_circle(module: str) -> None:
    """The repository builds core.access's values while core.access composes the repository:
    whichever is imported first, both load."""
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
