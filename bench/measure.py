"""What every benchmark measures the same way: the shared chat workload, percentiles, loop lag."""

from __future__ import annotations

import asyncio
import logging
import os

# The many-conversations workload the Discord and Slack benchmarks share (issue: 200 at once,
# a model streaming 40 tokens/s).
CONVERSATIONS = 200
TOKENS_PER_SECOND = 40.0
TOKENS = 120  # three seconds of streaming per answer
FIRST_TOKEN = 0.4  # the model's own time to first token
LAG_TICK = 0.01
DEADLINE = 90.0  # seconds for all conversations to finish


def quiet_run() -> None:
    """What every chat benchmark sets first: a key the SDK accepts (the fakes ignore it), and
    no log lines to drown the figures."""
    os.environ.setdefault("ANTHROPIC_API_KEY", "sk-ant-bench")
    logging.basicConfig(level=logging.CRITICAL)


def env_count(name: str, default: int) -> int:
    """A positive count from the environment variable `name` (`default` when unset)."""
    return max(1, int(os.environ.get(name, str(default))))


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (q from 0 to 100), nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def watch_lag(lags: list[float], stop: asyncio.Event) -> None:
    """How late a LAG_TICK timer fires, until `stop` is set: the event loop's responsiveness."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        due = loop.time() + LAG_TICK
        await asyncio.sleep(LAG_TICK)
        lags.append(max(0.0, loop.time() - due))
