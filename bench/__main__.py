"""`python -m bench [NAME ...]`: run every benchmark, or the named ones."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys
from pathlib import Path


def available() -> list[str]:
    return sorted(p.stem.removesuffix("_bench") for p in Path(__file__).parent.glob("*_bench.py"))


def run(name: str) -> None:
    module = importlib.import_module(f"bench.{name}_bench")
    print(f"== {name} ==", flush=True)
    result = module.main()
    if inspect.iscoroutine(result):
        asyncio.run(result)


def main(argv: list[str]) -> int:
    names = argv or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(
            f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available())}",
            file=sys.stderr,
        )
        return 2
    for name in names:
        run(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
