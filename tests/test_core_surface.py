"""The core's public surface (`core/__init__.py`) and the adapters' side of the line."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import core

ROOT = Path(__file__).resolve().parent.parent
ADAPTERS = ("bots/discord", "bots/slack", "bots/console.py")
STORAGE = ("core.store", "core.chat.transcript", "sqlalchemy", "sqlmodel")


def ruff_order(name: str) -> tuple[int, str]:
    """How ruff's RUF022 sorts `__all__`: constants, then classes, then functions."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_the_surface_is_sorted_without_repeats() -> None:
    assert core.__all__ == sorted(core.__all__, key=ruff_order)
    assert len(set(core.__all__)) == len(core.__all__)


def test_every_public_name_is_the_object_from_its_home() -> None:
    homes = core._HOMES
    assert set(homes) == set(core.__all__)
    for name, (module, attribute) in homes.items():
        assert getattr(core, name) is getattr(importlib.import_module(module), attribute), name
    assert "Ember" in dir(core)


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        core.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as error:
        assert "NoSuchThing" in str(error)
    else:
        raise AssertionError("core.NoSuchThing resolved")


def test_importing_core_loads_nothing_behind_it() -> None:
    check = "import sys, core; print(sorted(m for m in sys.modules if m.startswith('core.')))"
    found = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert found == "[]"


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_adapters_do_no_storage_work() -> None:
    files = [p for entry in ADAPTERS for p in sorted((ROOT / entry).glob("*.py")) or [ROOT / entry]]
    assert len(files) > 20  # the adapters were found
    offenders = {
        str(path.relative_to(ROOT)): sorted(m for m in imported_modules(path) if m.startswith(STORAGE))
        for path in files
    }
    assert {path: found for path, found in offenders.items() if found} == {}
