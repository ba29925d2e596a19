"""Bedrock through ember's own client builder (`core.chat.providers.build_client`): settings
name the endpoint and the environment variables holding AWS keys, the real anthropic SDK signs
and streams over the AWS event stream from the fake, and the reply is metered under Bedrock."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from core.chat import OpenGate
from core.config import settings_from_dict
from core.events import Message, Place, User
from core.runtime import open_runtime
from core.store import Usage
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.test_streaming import RecordingSink

BEDROCK_OPUS = "anthropic.claude-3-opus-20240229-v1:0"
PLACE = Place("slack", "T1", "C1", thread_id="1.0")
ALICE = User("U1", "Alice", "slack", "T1")


async def test_a_reply_streams_from_bedrock_built_from_settings(
    tmp_path: Path, fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMBER_TEST_AWS_KEY", "AKIDEXAMPLE")
    monkeypatch.setenv("EMBER_TEST_AWS_SECRET", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    settings = settings_from_dict(
        {
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/ember.db"},
            "providers": {
                "bedrock": {
                    "base_url": fake_anthropic.url,
                    "aws_region": "us-west-2",
                    "aws_access_key_env": "EMBER_TEST_AWS_KEY",
                    "aws_secret_key_env": "EMBER_TEST_AWS_SECRET",
                }
            },
            "models": {
                "opus-3": {
                    "display_name": "Claude Opus 3",
                    "backends": [{"provider": "bedrock", "model": BEDROCK_OPUS}],
                }
            },
        }
    )
    fake_anthropic.script_for(BEDROCK_OPUS).append(Reply.text(["Hello from ", "Bedrock."], input_tokens=21))
    sink = RecordingSink(max_chars=2000, edit_interval=0.0)
    async with open_runtime(settings, access=OpenGate()) as runtime:  # no client factory: ember builds it
        outcome = await runtime.engine.respond(Message(id="1.0", place=PLACE, author=ALICE, text="hi"), sink)
        async with runtime.store.session() as session:
            usage = (await session.exec(select(Usage))).one()

    assert outcome.status == "done" and outcome.provider == "bedrock"
    assert next(iter(sink.messages.values())) == "Hello from Bedrock."
    [request] = fake_anthropic.requests
    assert (request.api, request.model, request.stream) == ("bedrock", BEDROCK_OPUS, True)
    assert request.path == f"/model/{BEDROCK_OPUS}/invoke-with-response-stream"
    # Signed with the keys the settings pointed at, for the configured region.
    assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/us-west-2/bedrock/aws4_request" in request.headers["authorization"]
    assert request.body["messages"][-1]["role"] == "user"
    assert (usage.provider, usage.model, usage.input_tokens) == ("bedrock", BEDROCK_OPUS, 21)
