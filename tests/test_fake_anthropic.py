"""The fake Messages API against the real anthropic SDK: every scripted behaviour, every flavour.

These tests also pin what the SDK raises for each fault; core.chat.providers.classify relies on it.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator

import aiohttp
import anthropic
import httpx2
import pytest

from tests.fakes.anthropic_server import FakeAnthropic, Reply

OPUS = "claude-3-opus-20240229"
VERTEX_OPUS = "claude-3-opus@20240229"
BEDROCK_OPUS = "anthropic.claude-3-opus-20240229-v1:0"
HELLO: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Hello"}]

AnyClient = anthropic.AsyncAnthropic | anthropic.AsyncAnthropicVertex | anthropic.AsyncAnthropicBedrock


@pytest.fixture
async def client(fake_anthropic: FakeAnthropic) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(api_key="test", base_url=fake_anthropic.url, max_retries=0) as sdk:
        yield sdk


@pytest.fixture
async def vertex(fake_anthropic: FakeAnthropic) -> AsyncIterator[anthropic.AsyncAnthropicVertex]:
    async with anthropic.AsyncAnthropicVertex(
        base_url=fake_anthropic.vertex_url,
        region="us-east5",
        project_id="ember-project",
        access_token="ya29.test",
        max_retries=0,
    ) as sdk:
        yield sdk


@pytest.fixture
async def bedrock(fake_anthropic: FakeAnthropic) -> AsyncIterator[anthropic.AsyncAnthropicBedrock]:
    async with anthropic.AsyncAnthropicBedrock(
        base_url=fake_anthropic.url,
        aws_region="us-east-1",
        aws_access_key="AKIDEXAMPLE",
        aws_secret_key="secret",
        max_retries=0,
    ) as sdk:
        yield sdk


async def collect(sdk: AnyClient, model: str, seen: list[str]) -> anthropic.types.Message:
    """Stream one reply, appending each text delta to `seen` as it arrives."""
    async with sdk.messages.stream(model=model, max_tokens=64, messages=HELLO) as stream:
        async for text in stream.text_stream:
            seen.append(text)
        return await stream.get_final_message()


async def raw_event_names(fake: FakeAnthropic) -> list[str]:
    """The SSE `event:` lines exactly as sent (the SDK hides pings)."""
    body = {"model": OPUS, "max_tokens": 64, "messages": HELLO, "stream": True}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.url}/v1/messages", json=body) as reply,
    ):
        assert reply.headers["Content-Type"].startswith("text/event-stream")
        text = await reply.text()
    return [line.removeprefix("event: ") for line in text.splitlines() if line.startswith("event: ")]


# --------------------------------------------------------------------------- direct API


async def test_text_streams_the_scripted_deltas_and_usage(
    fake_anthropic: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake_anthropic.script.append(
        Reply.text(
            ["Hel", "lo"], stop_reason="max_tokens", input_tokens=1200, cache_read=40_000, cache_write=2000
        )
    )
    seen: list[str] = []
    message = await collect(client, OPUS, seen)
    assert seen == ["Hel", "lo"]
    assert [block.text for block in message.content if block.type == "text"] == ["Hello"]
    assert (message.model, message.stop_reason, message.role) == (OPUS, "max_tokens", "assistant")
    assert message.id.startswith("msg_")
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens) == (1200, 2)
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (40_000, 2000)


async def test_the_sse_sequence_is_the_real_one(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script.append(Reply.text(["a", "b", "c"]))
    assert await raw_event_names(fake_anthropic) == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


async def test_sdk_events_arrive_in_order(
    fake_anthropic: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake_anthropic.script.append(Reply.text(["x", "y"]))
    stream = await client.messages.create(model=OPUS, max_tokens=64, messages=HELLO, stream=True)
    kinds = [event.type async for event in stream]
    assert kinds == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


async def test_non_streaming_request_gets_a_whole_message(
    fake_anthropic: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake_anthropic.script.append(Reply.text(["Hel", "lo"], input_tokens=7))
    message = await client.messages.create(model=OPUS, max_tokens=64, messages=HELLO)
    assert [block.text for block in message.content if block.type == "text"] == ["Hello"]
    assert (message.usage.input_tokens, message.usage.output_tokens) == (7, 2)
    assert fake_anthropic.requests[0].stream is False


async def test_empty_script_answers_ok(
    fake_anthropic: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    seen: list[str] = []
    message = await collect(client, OPUS, seen)
    assert seen == ["ok"] and message.stop_reason == "end_turn"


async def test_requests_are_recorded(fake_anthropic: FakeAnthropic, client: anthropic.AsyncAnthropic) -> None:
    async with client.messages.stream(
        # SDK 2.12 has no `temperature` keyword; extra_body is how core.chat.providers sends it.
        model=OPUS,
        max_tokens=99,
        system="Be brief.",
        messages=HELLO,
        extra_body={"temperature": 0.5},
    ) as stream:
        await stream.get_final_message()
    [recorded] = fake_anthropic.requests
    assert (recorded.api, recorded.path, recorded.model, recorded.stream) == (
        "anthropic",
        "/v1/messages",
        OPUS,
        True,
    )
    assert recorded.headers["authorization"] == "Bearer test"  # SDK 2.x: no x-api-key header
    assert recorded.headers["anthropic-version"]
    assert recorded.body == {
        "model": OPUS,
        "max_tokens": 99,
        "system": "Be brief.",
        "messages": HELLO,
        "temperature": 0.5,
        "stream": True,
    }


async def test_wait_for_request_returns_once_it_arrives(
    fake_anthropic: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    calls = [
        asyncio.create_task(client.messages.create(model=f"m{n}", max_tokens=8, messages=HELLO))
        for n in range(3)
    ]
    third = await fake_anthropic.wait_for_request(2)
    await asyncio.gather(*calls)
    assert third is fake_anthropic.requests[2]
    assert sorted(r.model for r in await fake_anthropic.wait_for_requests(3)) == ["m0", "m1", "m2"]


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (529, anthropic.OverloadedError, "overloaded_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
    ],
)
async def test_status_errors_raise_before_any_text(
    fake_anthropic: FakeAnthropic,
    client: anthropic.AsyncAnthropic,
    status: int,
    error: type[anthropic.APIStatusError],
    kind: str,
) -> None:
    fake_anthropic.script.append(Reply.status(status))
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        await collect(client, OPUS, seen)
    assert type(caught.value) is error
    assert caught.value.status_code == status
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == kind
    assert caught.value.request_id and caught.value.request_id.startswith("req_")
    assert seen == []


async def test_not_found_names_the_model(
    fake_anthropic: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake_anthropic.script.append(Reply.status(404))
    with pytest.raises(anthropic.NotFoundError) as caught:
        await client.messages.create(model="claude-gone", max_tokens=8, messages=HELLO)
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["message"] == "model: claude-gone"


async def test_rate_limit_carries_retry_after(
    fake_anthropic: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake_anthropic.script.append(Reply.status(429, retry_after=7))
    with pytest.raises(anthropic.RateLimitError) as caught:
        await client.messages.create(model=OPUS, max_tokens=8, messages=HELLO)
    assert caught.value.response.headers["retry-after"] == "7"


async def test_status_only_is_the_older_name_for_status() -> None:
    assert Reply.status_only(529, retry_after=1.5) == Reply.status(529, retry_after=1.5)


async def test_error_midstream_is_a_plain_api_status_error_with_status_200(
    fake_anthropic: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake_anthropic.script.append(Reply.error_midstream(["The quick ", "brown fox ", "jumps"], after=2))
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        await collect(client, OPUS, seen)
    assert type(caught.value) is anthropic.APIStatusError
    assert caught.value.status_code == 200
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert seen == ["The quick ", "brown fox "]


async def test_error_midstream_may_name_another_error_type(
    fake_anthropic: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake_anthropic.script.append(Reply.error_midstream(after=0, error_type="api_error"))
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        await collect(client, OPUS, seen)
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "api_error"
    assert seen == []


async def test_a_dropped_connection_is_an_api_connection_error(
    fake_anthropic: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    # anthropic 2.17 wraps a stream cut mid-body; older SDKs let the raw httpx2 error through.
    fake_anthropic.script.append(Reply.drop(["one ", "two ", "three"], after=2))
    seen: list[str] = []
    with pytest.raises(anthropic.APIConnectionError) as caught:
        await collect(client, OPUS, seen)
    assert isinstance(caught.value.__cause__, httpx2.RemoteProtocolError)
    assert not isinstance(caught.value, anthropic.APITimeoutError)
    assert seen == ["one ", "two "]


async def test_a_connection_cut_before_the_response_is_an_api_connection_error(
    fake_anthropic: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake_anthropic.script.append(Reply.disconnect())
    with pytest.raises(anthropic.APIConnectionError) as caught:
        await collect(client, OPUS, [])
    assert isinstance(caught.value.__cause__, httpx2.TransportError)


async def test_slow_first_token_comes_after_message_start(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script.append(Reply.slow_first_token(30.0, ["late"]))
    # A short read timeout fires while the fake pauses; the stream itself was already open.
    async with anthropic.AsyncAnthropic(
        api_key="test", base_url=fake_anthropic.url, max_retries=0, timeout=httpx2.Timeout(5.0, read=0.2)
    ) as impatient:
        kinds: list[str] = []
        with pytest.raises(anthropic.APITimeoutError) as caught:
            async with impatient.messages.stream(model=OPUS, max_tokens=8, messages=HELLO) as stream:
                async for event in stream:
                    kinds.append(event.type)
    assert isinstance(caught.value.__cause__, httpx2.ReadTimeout)
    assert kinds == ["message_start", "content_block_start"]


async def test_slow_first_token_still_delivers(
    fake_anthropic: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake_anthropic.script.append(Reply.slow_first_token(0.01, ["late ", "but here"]))
    seen: list[str] = []
    await collect(client, OPUS, seen)
    assert seen == ["late ", "but here"]


async def test_a_held_reply_waits_for_its_release(
    fake_anthropic: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    held = Reply.held(["first ", "second"], after=1)
    fake_anthropic.script.append(held)
    seen: list[str] = []
    first_arrived = asyncio.Event()

    async def read() -> None:
        async with client.messages.stream(model=OPUS, max_tokens=8, messages=HELLO) as stream:
            async for text in stream.text_stream:
                seen.append(text)
                first_arrived.set()

    reader = asyncio.create_task(read())
    await first_arrived.wait()
    assert seen == ["first "] and not reader.done()
    held.release.set()
    await reader
    assert seen == ["first ", "second"]


async def test_closing_the_fake_cuts_a_held_stream() -> None:
    async with FakeAnthropic() as fake:
        fake.script.append(Reply.held(["a", "b"], after=1))
        sdk = anthropic.AsyncAnthropic(api_key="t", base_url=fake.url, max_retries=0)
        async with sdk, sdk.messages.stream(model=OPUS, max_tokens=8, messages=HELLO) as stream:
            texts = stream.text_stream.__aiter__()
            assert await anext(texts) == "a"
            await fake.close()
            with pytest.raises(anthropic.APIConnectionError) as caught:
                await anext(texts)
            assert isinstance(caught.value.__cause__, httpx2.RemoteProtocolError)


async def test_per_model_scripts_come_before_the_shared_one(
    fake_anthropic: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake_anthropic.script_for("claude-a").append(Reply.status(529))
    fake_anthropic.script.append(Reply.text(["shared"]))
    with pytest.raises(anthropic.OverloadedError):
        await client.messages.create(model="claude-a", max_tokens=8, messages=HELLO)
    seen_b: list[str] = []
    await collect(client, "claude-b", seen_b)
    seen_a: list[str] = []
    await collect(client, "claude-a", seen_a)  # its own script is empty, the shared one too
    assert (seen_b, seen_a) == (["shared"], ["ok"])
    assert [r.model for r in fake_anthropic.requests] == ["claude-a", "claude-b", "claude-a"]


# --------------------------------------------------------------------------- Vertex


async def test_vertex_streams_from_the_raw_predict_path(
    fake_anthropic: FakeAnthropic, vertex: anthropic.AsyncAnthropicVertex
) -> None:
    fake_anthropic.script_for(VERTEX_OPUS).append(Reply.text(["from ", "vertex"], cache_read=9))
    seen: list[str] = []
    message = await collect(vertex, VERTEX_OPUS, seen)
    assert seen == ["from ", "vertex"] and message.usage.cache_read_input_tokens == 9
    [recorded] = fake_anthropic.requests
    assert recorded.api == "vertex" and recorded.model == VERTEX_OPUS
    assert recorded.path == (
        "/v1/projects/ember-project/locations/us-east5/publishers/anthropic/models/"
        f"{VERTEX_OPUS}:streamRawPredict"
    )
    assert recorded.headers["authorization"] == "Bearer ya29.test"
    assert "model" not in recorded.body
    assert recorded.body["anthropic_version"]  # the SDK's own constant, moved into the body


async def test_vertex_non_streaming_uses_raw_predict(
    fake_anthropic: FakeAnthropic, vertex: anthropic.AsyncAnthropicVertex
) -> None:
    fake_anthropic.script.append(Reply.text(["whole"]))
    message = await vertex.messages.create(model=VERTEX_OPUS, max_tokens=8, messages=HELLO)
    assert [block.text for block in message.content if block.type == "text"] == ["whole"]
    assert fake_anthropic.requests[0].path.endswith(f"/models/{VERTEX_OPUS}:rawPredict")


async def test_vertex_not_found_is_googles_shape(
    fake_anthropic: FakeAnthropic, vertex: anthropic.AsyncAnthropicVertex
) -> None:
    fake_anthropic.script.append(Reply.status(404))
    with pytest.raises(anthropic.NotFoundError) as caught:
        await collect(vertex, VERTEX_OPUS, [])
    assert caught.value.body == {
        "error": {"code": 404, "message": f"model: {VERTEX_OPUS}", "status": "NOT_FOUND"}
    }


@pytest.mark.parametrize("fault", ["error_midstream", "drop"])
async def test_vertex_faults_match_the_direct_api(
    fake_anthropic: FakeAnthropic, vertex: anthropic.AsyncAnthropicVertex, fault: str
) -> None:
    fake_anthropic.script.append(getattr(Reply, fault)(["a", "b", "c"], after=1))
    expected = anthropic.APIStatusError if fault == "error_midstream" else anthropic.APIConnectionError
    seen: list[str] = []
    with pytest.raises(expected):
        await collect(vertex, VERTEX_OPUS, seen)
    assert seen == ["a"]


# --------------------------------------------------------------------------- Bedrock


async def test_bedrock_streams_over_the_aws_event_stream(
    fake_anthropic: FakeAnthropic, bedrock: anthropic.AsyncAnthropicBedrock
) -> None:
    fake_anthropic.script_for(BEDROCK_OPUS).append(Reply.text(["from ", "bedrock"], input_tokens=33))
    seen: list[str] = []
    message = await collect(bedrock, BEDROCK_OPUS, seen)
    assert seen == ["from ", "bedrock"]
    assert (message.model, message.usage.input_tokens, message.usage.output_tokens) == (BEDROCK_OPUS, 33, 2)
    [recorded] = fake_anthropic.requests
    assert (recorded.api, recorded.model, recorded.stream) == ("bedrock", BEDROCK_OPUS, True)
    assert recorded.path == f"/model/{BEDROCK_OPUS}/invoke-with-response-stream"
    assert recorded.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "model" not in recorded.body and "stream" not in recorded.body
    assert recorded.body["messages"] == HELLO


async def test_bedrock_non_streaming_uses_invoke(
    fake_anthropic: FakeAnthropic, bedrock: anthropic.AsyncAnthropicBedrock
) -> None:
    fake_anthropic.script.append(Reply.text(["whole"]))
    message = await bedrock.messages.create(model=BEDROCK_OPUS, max_tokens=8, messages=HELLO)
    assert [block.text for block in message.content if block.type == "text"] == ["whole"]
    assert fake_anthropic.requests[0].path == f"/model/{BEDROCK_OPUS}/invoke"


async def test_bedrock_error_midstream_is_an_api_status_error_with_status_200(
    fake_anthropic: FakeAnthropic, bedrock: anthropic.AsyncAnthropicBedrock
) -> None:
    fake_anthropic.script.append(Reply.error_midstream(["a", "b", "c"], after=2))
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        await collect(bedrock, BEDROCK_OPUS, seen)
    assert type(caught.value) is anthropic.APIStatusError and caught.value.status_code == 200
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "modelStreamErrorException", "message": "Overloaded"},
    }
    assert seen == ["a", "b"]


async def test_bedrock_drop_and_throttling(
    fake_anthropic: FakeAnthropic, bedrock: anthropic.AsyncAnthropicBedrock
) -> None:
    fake_anthropic.script.extend([Reply.drop(["a", "b"], after=1), Reply.status(429)])
    seen: list[str] = []
    with pytest.raises(anthropic.APIConnectionError) as dropped:
        await collect(bedrock, BEDROCK_OPUS, seen)
    assert isinstance(dropped.value.__cause__, httpx2.RemoteProtocolError)
    with pytest.raises(anthropic.RateLimitError) as caught:
        await collect(bedrock, BEDROCK_OPUS, [])
    assert seen == ["a"]
    assert caught.value.response.headers["x-amzn-errortype"] == "ThrottlingException"
    assert isinstance(caught.value.body, dict) and "message" in caught.value.body


async def test_the_bedrock_event_stream_decodes_with_botocore(fake_anthropic: FakeAnthropic) -> None:
    from botocore.eventstream import EventStreamBuffer  # type: ignore[import-untyped]

    fake_anthropic.script.append(Reply.text(["z"]))
    url = f"{fake_anthropic.url}/model/{BEDROCK_OPUS}/invoke-with-response-stream"
    async with aiohttp.ClientSession() as session, session.post(url, json={"messages": HELLO}) as reply:
        assert reply.headers["Content-Type"] == "application/vnd.amazon.eventstream"
        frames = EventStreamBuffer()
        frames.add_data(await reply.read())
    kinds = []
    for frame in frames:
        assert frame.headers[":event-type"] == "chunk"
        kinds.append(json.loads(base64.b64decode(json.loads(frame.payload)["bytes"]))["type"])
    assert kinds[:3] == ["message_start", "content_block_start", "ping"]
    assert kinds[-1] == "message_stop"
