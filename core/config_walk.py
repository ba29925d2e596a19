"""The schema walker: a TOML table in, a frozen settings dataclass out.

The schema is the dataclasses in `core.config`: this walks their type hints, so adding a key is
adding a field, and a field's `Annotated` rules (`core.config_rules`) are applied where it is
read. Every mistake is a ConfigError naming the file, the key path and a fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from core.config_rules import Invalid
from core.errors import ConfigError

T = typing.TypeVar("T")


def build(cls: type[T], data: object, path: str, file: str) -> T:
    """`cls` built from the table `data` found at `path` in `file`."""
    if not isinstance(data, dict):
        raise ConfigError(
            file, path or "(top level)", f"expected a table, got {_toml_kind(data)}", _table_fix(path)
        )
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(typing.cast(Any, cls)) if f.name != "source"}
    values: dict[str, object] = {}
    for key, value in data.items():
        here = f"{path}.{key}" if path else key
        if key not in fields:
            raise ConfigError(file, here, "unknown key", suggest(key, fields))
        values[key] = _convert(hints[key], value, here, file)
    for name, f in fields.items():
        missing = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if missing and name not in values:
            here = f"{path}.{name}" if path else name
            raise ConfigError(file, here, "is required", f"add {name} = ... ({type_name(hints[name])})")
    return cls(**values)


def suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {close[0]!r}?" if close else f"choose one of: {', '.join(sorted(choices))}"


def type_name(tp: object) -> str:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return type_name(typing.get_args(tp)[0])
    if origin is Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    if origin in (list, dict):
        return "an array" if origin is list else "a table"
    if dataclasses.is_dataclass(tp):
        return "a table"
    names: dict[object, str] = {
        str: "a string",
        int: "a whole number",
        float: "a number",
        bool: "true or false",
    }
    return names.get(tp, str(tp))


def _convert(tp: Any, value: object, path: str, file: str) -> object:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base, *rules = typing.get_args(tp)
        converted = _convert(base, value, path, file)
        for rule in rules:
            try:
                converted = rule(converted)
            except Invalid as invalid:
                raise ConfigError(file, path, invalid.problem, invalid.fix) from None
        return converted
    if dataclasses.is_dataclass(tp):
        return build(typing.cast(type[Any], tp), value, path, file)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(file, path, f"{value!r} is not allowed", f"use {type_name(tp)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(file, path, f"expected an array, got {_toml_kind(value)}", "write [ ... ]")
        (item,) = typing.get_args(tp)
        return [_convert(item, v, f"{path}[{i}]", file) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(file, path, f"expected a table, got {_toml_kind(value)}", _table_fix(path))
        _, item = typing.get_args(tp)
        return {k: _convert(item, v, f"{path}.{k}", file) for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        raise TypeError("unions are not used in the settings schema")
    return _scalar(tp, value, path, file)


def _scalar(tp: Any, value: object, path: str, file: str) -> object:
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool):
        raise ConfigError(file, path, "expected a whole number, got true/false", "write a number like 10")
    if not isinstance(value, tp):
        hint = 'put quotes around it, e.g. "123"' if tp is str else f"use {type_name(tp)}"
        raise ConfigError(file, path, f"expected {type_name(tp)}, got {_toml_kind(value)} {value!r}", hint)
    if isinstance(value, float) and not math.isfinite(value):
        # TOML spells them nan and inf; no setting means "not a number" or "forever".
        raise ConfigError(
            file, path, f"{value!r} is not a finite number", "write an ordinary number, e.g. 60.0"
        )
    return value


def _toml_kind(value: object) -> str:
    """What the user wrote, in TOML's words rather than Python's."""
    kinds = {dict: "a table", list: "an array", str: "a string", bool: "true/false", int: "a whole number"}
    return kinds.get(type(value), "a number" if isinstance(value, float) else type(value).__name__)


def _table_fix(path: str) -> str:
    if not path:
        return "the file must hold TOML tables and keys"
    return f"write it as one section: a line [{path}] with its keys below it (not {path} = … or [[{path}]])"
