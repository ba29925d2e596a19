"""Slack's part in operations: it reports its connection to /readyz, and its API calls (and
429s) are counted."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.slack_server import FakeSlack
from tests.slack_support import ember_settings, method, running_ember


@pytest.mark.parametrize("mode", ["socket", "http"])
async def test_slack_is_ready_once_connected_and_its_api_calls_are_counted(
    tmp_path: Path, fake_anthropic: FakeAnthropic, fake_slack: FakeSlack, mode: str
) -> None:
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack, slack={"mode": mode})
    fake_anthropic.script.append(Reply.text(["Hi."]))
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        assert ember.runtime.readiness.platforms() == {"slack": True}
        assert await ember.runtime.readiness.not_ready() == {}
        await ember.deliver(fake_slack.app_mention("C1", "U1", "hello"))
        await ember.wait(method("chat.stopStream"))
        await ember.idle()
        samples = {
            (s.name, tuple(s.labels.values())): s.value
            for family in text_string_to_metric_families(ember.runtime.metrics.render().decode())
            for s in family.samples
        }
    # At least auth.test and the stream's start and stop.
    assert samples[("ember_platform_api_calls_total", ("slack",))] >= 3
    if mode == "socket":
        # Closed with the adapter: no longer connected.
        assert ember.runtime.readiness.platforms() == {"slack": False}
