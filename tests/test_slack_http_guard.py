"""Slack's HTTP mode against careless and hostile requests: every signature fault is a 401,
every malformed signed body a 400, a replay is handled once (on any host), nothing reaches a
500, and a refused request is logged as one short escaped line, never its body."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest

from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.slack_server import FakeSlack
from tests.slack_support import SIGNING_SECRET, Ember, ember_settings, finished, method, running_ember

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
# Deep enough to exhaust a recursive parser; still under aiohttp's 1 MiB body limit.
DEEP = ("[" * 100_000 + "]" * 100_000).encode()
DEEP_OBJECT = ('{"a":' * 100_000 + "1" + "}" * 100_000).encode()
FORGED_LINE = "\n2026-01-01 00:00:00 ERROR ember: forged line"


def sign_bytes(body: bytes, timestamp: str) -> str:
    """Slack's v0 signature over raw bytes (the fake's `sign` takes text, and some of these
    bodies are not text)."""
    digest = hmac.new(SIGNING_SECRET.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    return "v0=" + digest.hexdigest()


def signed(body: bytes, content_type: str) -> dict[str, str]:
    timestamp = str(int(time.time()))
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": sign_bytes(body, timestamp),
    }


async def post_raw(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as response:
        return response.status, await response.text()


def form(**fields: str) -> bytes:
    return urlencode(fields).encode()


def interaction(payload: object) -> bytes:
    return form(payload=json.dumps(payload))


MALFORMED = [
    pytest.param(b'{"type": "event_callback", ', JSON, id="bad JSON"),
    pytest.param(b"[1, 2, 3]", JSON, id="a JSON array"),
    pytest.param(b"null", JSON, id="null"),
    pytest.param(DEEP, JSON, id="100,000 levels of arrays"),
    pytest.param(DEEP_OBJECT, JSON, id="100,000 levels of objects"),
    pytest.param(b'{"type": "event_callback", "event": {"text": "\xff\xfe"}}', JSON, id="invalid UTF-8"),
    pytest.param(b'{"type": "event_callback"}', JSON, id="an event_callback without its event"),
    pytest.param(b'{"event": {}}', JSON, id="an event body without a type"),
    pytest.param(form(payload="this is not JSON"), FORM, id="payload= that isn't JSON"),
    pytest.param(form(payload="[]"), FORM, id="payload= a JSON array"),
    pytest.param(form(payload="null"), FORM, id="payload= null"),
    pytest.param(interaction({"type": "block_actions"}), FORM, id="block_actions without fields"),
    pytest.param(
        interaction({"type": "block_actions", "user": {"id": "U1"}}), FORM, id="block_actions without actions"
    ),
    pytest.param(
        interaction({"type": "block_actions", "user": {"id": "U1"}, "actions": [{"value": "x"}]}),
        FORM,
        id="block_actions with an action missing its id",
    ),
    pytest.param(form(command="/opus", text="ask hi"), FORM, id="a command without its ids"),
]


def bad_signatures(body: bytes) -> list[tuple[str, dict[str, str]]]:
    fresh, stale = str(int(time.time())), str(int(time.time()) - 360)
    good = sign_bytes(body, fresh)

    def headers(timestamp: str | None, signature: str | None) -> dict[str, str]:
        pairs = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}
        return {"Content-Type": JSON, **{k: v for k, v in pairs.items() if v is not None}}

    return [
        ("no signature headers", headers(None, None)),
        ("a timestamp without a signature", headers(fresh, None)),
        ("a signature without a timestamp", headers(None, good)),
        ("X-Slack-Request-Timestamp: abc", headers("abc", good)),
        ("a timestamp of 30 digits", headers("9" * 30, good)),
        ("a negative timestamp", headers("-" + fresh, good)),
        ("a stale timestamp", headers(stale, sign_bytes(body, stale))),
        ("a forged signature", headers(fresh, "v0=" + "0" * 64)),
        ("a signature that is not ASCII", headers(fresh, "v0=\u00e9")),
    ]


def nothing_was_done(ember: Ember) -> None:
    assert ember.anthropic.requests == []
    assert ember.slack.calls_to("chat.postMessage") == []
    assert ember.slack.calls_to("chat.startStream") == []


@pytest.mark.parametrize(("body", "content_type"), MALFORMED)
async def test_a_malformed_signed_body_is_a_400(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, body: bytes, content_type: str
) -> None:
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack, slack={"mode": "http"})
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        status, _ = await post_raw(ember.url, body, signed(body, content_type))
        await ember.idle()
        nothing_was_done(ember)
    assert status == 400


async def test_every_signature_fault_is_a_401_and_logged_without_the_body(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    body = json.dumps({"type": "event_callback", "event": {"text": "secret plans" + FORGED_LINE}}).encode()
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack, slack={"mode": "http"})
    caplog.set_level(logging.INFO, logger="bots.slack.http_guard")
    answers = {}
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        for name, headers in bad_signatures(body):
            # A tab is as far as an HTTP client lets a header go; it must come out escaped.
            headers["User-Agent"] = "probe\tforged" + "x" * 1000
            answers[name] = (await post_raw(ember.url, body, headers))[0]
        await ember.idle()
        nothing_was_done(ember)
    assert answers == {name: 401 for name, _ in bad_signatures(body)}
    refused = [r.getMessage() for r in caplog.records if r.name == "bots.slack.http_guard"]
    assert len(refused) == len(answers)
    for line in refused:
        assert "\n" not in line and len(line) < 400
        assert "secret plans" not in line  # the body is never logged
        assert "probe\\tforged" in line  # the header, escaped and cut short


async def test_a_replayed_request_is_handled_once_even_on_another_host(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.append(Reply.text(["Four."]))
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack, slack={"mode": "http"})
    command = fake_slack.http_slash_command("/opus", "ask what is 2 + 2")
    timestamp = int(time.time())
    async with (
        running_ember(fake_slack, fake_anthropic, settings) as first_host,
        running_ember(fake_slack, fake_anthropic, settings) as second_host,
    ):
        answers = [
            await fake_slack.post_signed(host.url, command, SIGNING_SECRET, timestamp=timestamp)
            for host in (first_host, first_host, second_host)
        ]
        await first_host.wait(finished)
        await first_host.idle()
        await second_host.idle()
        # A new request (a new timestamp, so a new signature) is still handled.
        fake_anthropic.script.append(Reply.text(["Five."]))
        again = await fake_slack.post_signed(first_host.url, command, SIGNING_SECRET, timestamp=timestamp + 1)
        await first_host.wait(finished, count=2)
        await first_host.idle()
    assert [a.status for a in answers] == [200, 200, 200] and again.status == 200
    assert len(fake_anthropic.requests) == 2
    assert (
        len([c for c in fake_slack.calls_to("chat.postMessage") if "asked:" in str(c.args.get("text"))]) == 2
    )


async def test_a_good_request_after_bad_ones_is_answered(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.append(Reply.text(["Hi."]))
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack, slack={"mode": "http"})
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        for body, content_type in ((DEEP, JSON), (b"null", JSON)):
            assert (await post_raw(ember.url, body, signed(body, content_type)))[0] == 400
        assert (
            await ember.post(fake_slack.http_event(fake_slack.app_mention("C1", "U1", "hello")), forge=True)
        ).status == 401
        # Slack's certificate probe is answered as slack-bolt answers it, signed or not.
        probe = form(ssl_check="1", token="fake-verification-token")
        assert await post_raw(ember.url, probe, {"Content-Type": FORM}) == (200, "")
        await ember.deliver(fake_slack.app_mention("C1", "U1", "hello"))
        await ember.wait(method("chat.stopStream"))
        await ember.idle()
    assert len(fake_anthropic.requests) == 1
