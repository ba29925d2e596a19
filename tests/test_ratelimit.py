"""The pacer: a token bucket per platform and a gap per channel, on a clock the test moves."""

from __future__ import annotations

import pytest

from core.ratelimit import Pacer, RateLimit, TokenBucket


class Time:
    """A monotonic clock the test sets by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def no_sleep(seconds: float) -> None:
    raise AssertionError("reserve() never sleeps")


def requests_at(bucket: TokenBucket, time: Time, n: int) -> list[float]:
    """The moment each of `n` back-to-back requests may go."""
    return [time.now + bucket.reserve() for _ in range(n)]


async def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    time = Time()
    bucket = TokenBucket(rate=50, burst=5, clock=time, sleep=no_sleep)
    moments = requests_at(bucket, time, 105)
    assert moments[:5] == [0.0] * 5
    assert moments[5] == pytest.approx(0.02)
    assert moments[-1] == pytest.approx(2.0)  # 100 beyond the burst at 50 a second
    # Never more than burst + rate·t requests by any moment t.
    for t in (0.5, 1.0, 1.5):
        assert sum(m <= t + 1e-9 for m in moments) <= 5 + 50 * t + 1


async def test_a_pause_holds_everyone_back_and_forfeits_the_burst() -> None:
    time = Time()
    bucket = TokenBucket(rate=10, burst=10, clock=time, sleep=no_sleep)
    bucket.pause(3.0)
    moments = requests_at(bucket, time, 3)
    assert moments == [pytest.approx(3.1), pytest.approx(3.2), pytest.approx(3.3)]


async def test_acquire_sleeps_only_when_needed() -> None:
    time = Time()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    bucket = TokenBucket(rate=2, burst=1, clock=time, sleep=sleep)
    await bucket.acquire()
    await bucket.acquire()
    assert slept == [pytest.approx(0.5)]


async def test_a_channel_gap_spaces_posts_to_one_channel_only() -> None:
    time = Time()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    pacer = Pacer(RateLimit(per_second=1000, burst=100, per_channel_seconds=1.0), clock=time, sleep=sleep)
    await pacer.acquire("C1")
    await pacer.acquire("C2")
    await pacer.acquire("C1")
    await pacer.acquire("C1")
    assert slept == [pytest.approx(1.0), pytest.approx(2.0)]
