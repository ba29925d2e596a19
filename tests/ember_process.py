"""`ember run` as a real subprocess: started with a config and an environment, its standard
error collected, its health endpoints at hand; killed afterwards if it is still running."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
SAFETY = 30.0  # seconds: a safety net for waits, never an expectation


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def base_env(**extra: str) -> dict[str, str]:
    """Only what `ember run` needs: a PATH, this checkout importable, and the given secrets."""
    return {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "ANTHROPIC_API_KEY": "sk-ant-test-key",
        **extra,
    }


@dataclass
class EmberProcess:
    process: asyncio.subprocess.Process
    url: str
    stderr: list[str] = field(default_factory=list)

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as session, session.get(self.url + path) as response:
            return response.status, await response.text()

    async def ready(self) -> None:
        deadline = time.monotonic() + SAFETY
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                if (await self.get("/readyz"))[0] == 200:
                    return
            await asyncio.sleep(0.1)
        raise AssertionError("ember never became ready:\n" + "".join(self.stderr))

    async def exit_code(self, timeout: float) -> int:
        return await asyncio.wait_for(self.process.wait(), timeout)


@contextlib.asynccontextmanager
async def ember_run_process(
    config: Path, env: Mapping[str, str], health_port: int, *, keep_stdout: bool = True
) -> AsyncIterator[EmberProcess]:
    """`ember run --config CONFIG` in a subprocess; its standard error lands in `.stderr`."""
    stdout = asyncio.subprocess.PIPE if keep_stdout else asyncio.subprocess.DEVNULL
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots.cli", "run", "--config", str(config),
        stdin=asyncio.subprocess.DEVNULL, stdout=stdout, stderr=asyncio.subprocess.PIPE,
        env=dict(env), cwd=ROOT,
    )  # fmt: skip
    running = EmberProcess(process, f"http://127.0.0.1:{health_port}")

    async def collect() -> None:
        assert process.stderr is not None
        async for line in process.stderr:
            running.stderr.append(line.decode())

    collector = asyncio.create_task(collect())
    try:
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await asyncio.wait_for(collector, SAFETY)
