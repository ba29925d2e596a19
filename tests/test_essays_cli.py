"""`ember essays poll --once` and `ember essays status`, run as the operator runs them."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.events import User
from core.store import Store
from tests.essay_support import FakeTime, make_service
from tests.fakes.feed_server import FeedServer, Post

ROOT = Path(__file__).resolve().parent.parent


async def ember(config: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bots.cli",
        *args,
        "--config",
        str(config),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def recent(n: int, days_ago: float) -> Post:
    # Real time: the subprocess judges max_age_days by its own clock.
    return Post(slug=f"essay-{n}", title=f"Essay {n}", published=datetime.now(UTC) - timedelta(days=days_ago))


async def test_poll_once_and_status(tmp_path: Path, feed_server: FeedServer) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'ember.db'}"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{database}"\n\n[essays]\nfeeds = ["{feed_server.url()}"]\n'
        '\n[logging]\nlevel = "ERROR"\n'
    )
    feed_server.feed().posts += [recent(1, 3), recent(2, 2)]
    # An earlier run (in-process, to spare a start-up) saw the feed; a moderator subscribed.
    store = Store.open(database)
    await store.upgrade()
    service = make_service(store, FakeTime(), [feed_server.url()])
    [seeded] = await service.poll_once()
    await service.subscribe("discord", "G1", "C1", "", User("M", "M", "discord", "G1", is_moderator=True))
    await service.close()
    await store.close()
    assert seeded.first_poll and not seeded.announced
    feed_server.feed().posts.append(recent(3, 0.1))

    code, out, err = await ember(config, "essays", "poll", "--once", "--wait", "0")
    assert code == 0, err
    assert 'announced "Essay 3" (1 deliveries queued)' in out
    assert "1 queued for discord (its adapter is not running here)" in out

    code, out, err = await ember(config, "essays", "status")
    assert code == 0, err
    assert f"{feed_server.url()}: ok, last success" in out
    assert "subscriptions: discord 1" in out
    assert "deliveries: 0 sent, 1 pending" in out
    assert 'latest: "Essay 3"' in out

    feed_server.feed().fault = "500"
    code, out, err = await ember(config, "essays", "poll", "--once", "--wait", "0")
    assert code == 1
    assert f"{feed_server.url()}: FAILED: HTTP 500" in err
