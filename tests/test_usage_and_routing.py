"""Cost arithmetic, the circuit breaker and backend ordering."""

from __future__ import annotations

from datetime import UTC, datetime

import anthropic
import httpx2
import pytest

from core.chat.failover import caches_prompts
from core.chat.providers import Failure, classify
from core.chat.routing import Breaker, Router
from core.chat.usage import Tokens, cost_micros, format_dollars, next_month
from core.config import Backend, Price, settings_from_dict


def test_opus_3_prices_in_micro_dollars() -> None:
    price = Price()
    assert cost_micros(Tokens(input=1_000_000), price) == 15_000_000
    assert cost_micros(Tokens(output=1_000), price) == 75_000
    assert cost_micros(Tokens(cache_write=1_000), price) == 18_750
    assert cost_micros(Tokens(cache_read=1_000), price) == 1_500
    # 3 tokens of cache write are 56.25 micro-dollars: rounded half up, never a float artefact.
    assert cost_micros(Tokens(cache_write=3), price) == 56
    assert cost_micros(Tokens(cache_write=2), price) == 38  # 37.5 → 38
    assert cost_micros(Tokens(1200, 350, 2000, 40_000), price) == 18_000 + 26_250 + 37_500 + 60_000
    assert format_dollars(141_750) == "$0.1418"


def test_month_rollover() -> None:
    assert next_month(datetime(2026, 12, 31, 23, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)
    assert next_month(datetime(2026, 1, 31, tzinfo=UTC)) == datetime(2026, 2, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_threshold_and_recovers_after_cooldown() -> None:
    clock = Clock()
    breaker = Breaker(threshold=3, cooldown=60, clock=clock)
    breaker.failed()
    breaker.failed()
    assert not breaker.is_open
    breaker.failed()
    assert breaker.is_open
    clock.now += 59
    assert breaker.is_open
    clock.now += 2
    assert not breaker.is_open  # a trial request may go through
    breaker.failed()
    assert breaker.is_open  # the trial failed: straight back to cooling
    breaker.succeeded()
    assert not breaker.is_open and breaker.failures == 0


class NullClient:
    async def stream(self, model, request):  # type: ignore[no-untyped-def]
        raise AssertionError("not called in ordering tests")
        yield

    async def close(self) -> None:
        pass


def test_cooling_backends_go_last_and_fallback_is_labelled() -> None:
    settings = settings_from_dict(
        {
            "routing": {"failure_threshold": 1, "cooldown_seconds": 30},
            "models": {
                "opus-3": {
                    "backends": [
                        {"provider": "anthropic", "model": "claude-3-opus-20240229"},
                        {"provider": "vertex", "model": "claude-3-opus@20240229"},
                    ],
                    "fallback": "sonnet",
                },
                "sonnet": {"backends": [{"provider": "anthropic", "model": "claude-sonnet"}]},
            },
        }
    )
    clock = Clock()
    router = Router(settings, lambda b: NullClient(), clock)
    first = router.routes("opus-3")
    assert [r.backend.provider for r in first] == ["anthropic", "vertex"]
    router.record(first[0], ok=False)
    assert [r.backend.provider for r in router.routes("opus-3")] == ["vertex", "anthropic"]
    clock.now += 31
    assert [r.backend.provider for r in router.routes("opus-3")] == ["anthropic", "vertex"]
    fallback = router.fallback("opus-3")
    assert [(r.alias, r.is_fallback) for r in fallback] == [("sonnet", True)]
    assert router.fallback("sonnet") == []
    assert router.breaker(Backend("anthropic", "claude-3-opus-20240229")).failures == 1


def _request() -> httpx2.Request:
    return httpx2.Request("POST", "https://api.anthropic.com/v1/messages")


@pytest.mark.parametrize(
    "raised",
    [
        # anthropic 2.17 and newer: transport faults while reading a stream are wrapped.
        anthropic.APIConnectionError(message="peer closed connection", request=_request()),
        anthropic.APITimeoutError(request=_request()),
        # Older SDKs let the raw transport error out of the stream: still a retryable fault.
        httpx2.RemoteProtocolError("peer closed connection without sending complete message body"),
        httpx2.ReadTimeout("timed out"),
    ],
    ids=["api-connection-error", "api-timeout-error", "raw-remote-protocol", "raw-read-timeout"],
)
def test_transport_faults_in_either_sdk_spelling_are_retryable(raised: Exception) -> None:
    assert classify(raised).failure is Failure.RETRYABLE


def test_a_programming_error_is_not_mistaken_for_a_backend_fault() -> None:
    with pytest.raises(KeyError):
        classify(KeyError("model"))


def test_breakpoints_are_left_off_where_bedrock_does_not_cache_the_model() -> None:
    assert not caches_prompts(Backend("bedrock", "anthropic.claude-3-opus-20240229-v1:0"))
    assert not caches_prompts(Backend("bedrock", "us.anthropic.claude-3-haiku-20240307-v1:0"))
    assert caches_prompts(Backend("bedrock", "anthropic.claude-3-7-sonnet-20250219-v1:0"))
    assert caches_prompts(Backend("anthropic", "claude-3-opus-20240229"))
    assert caches_prompts(Backend("vertex", "claude-3-opus@20240229"))
