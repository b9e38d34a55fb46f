"""Streamed chat and text completions: the SDK's view and the raw SSE bytes."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from sdk_helpers import (
    CHAT_CHUNK,
    COMPLETION,
    USER_HI,
    WEATHER_TOOL,
    accumulate_chat,
    assert_complete,
    collect,
    fake,
    raw_stream,
    validate_chunks,
    words,
)


def chat_body(model="m", stream_options=None, **directives):
    body = {"model": model, "messages": USER_HI, "stream": True, "fake": directives}
    if stream_options is not None:
        body["stream_options"] = stream_options
    return body


def test_stream_delivers_text_with_one_gateway_id(client):
    chunks = collect(client.chat.completions.create(model="m", messages=USER_HI, stream=True, extra_body=fake(tokens=6)))
    result = accumulate_chat(chunks)
    assert result["content"] == words(6)
    assert result["roles"][:1] == ["assistant"]
    assert result["finish_reason"] == "stop"
    assert result["usage"] is None
    ids = {chunk.id for chunk in chunks}
    assert len(ids) == 1
    (gateway_id,) = ids
    assert gateway_id.startswith("chatcmpl-") and not gateway_id.startswith("chatcmpl-fake")
    assert {chunk.model for chunk in chunks} == {"m"}
    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}


def test_raw_stream_is_sse_of_valid_chunks_without_usage(http):
    stream = raw_stream(http, "/chat/completions", chat_body(tokens=4))
    assert_complete(stream)
    validate_chunks(stream, CHAT_CHUNK)
    assert all("usage" not in chunk for chunk in stream.chunks), "usage sent although the client did not ask"
    assert all(chunk["choices"] for chunk in stream.chunks)


def test_usage_chunk_when_the_client_asks(http, client):
    stream = raw_stream(http, "/chat/completions", chat_body(tokens=6, stream_options={"include_usage": True}))
    validate_chunks(stream, CHAT_CHUNK)
    assert_complete(stream)
    last = stream.chunks[-1]
    assert last["choices"] == []
    assert last["usage"]["prompt_tokens"] == 3
    assert last["usage"]["completion_tokens"] == 6
    assert last["usage"]["total_tokens"] == 9
    assert [chunk for chunk in stream.chunks if chunk.get("usage")] == [last]

    chunks = collect(client.chat.completions.create(
        model="m", messages=USER_HI, stream=True, stream_options={"include_usage": True}, extra_body=fake(tokens=6)))
    assert accumulate_chat(chunks)["usage"].total_tokens == 9
    assert chunks[-1].choices == []


def test_stream_by_alias_reports_canonical_model(http):
    stream = raw_stream(http, "/chat/completions", chat_body(model="m-alias", tokens=2))
    validate_chunks(stream, CHAT_CHUNK)
    assert {chunk["model"] for chunk in stream.chunks} == {"m"}
    assert_complete(stream)


def test_streamed_tool_call_reassembles(client, http):
    chunks = collect(client.chat.completions.create(
        model="m", messages=USER_HI, tools=[WEATHER_TOOL], stream=True, extra_body=fake(tool_call=True)))
    result = accumulate_chat(chunks)
    assert result["finish_reason"] == "tool_calls"
    assert [call["name"] for call in result["tool_calls"]] == ["get_weather"]
    assert json.loads(result["tool_calls"][0]["arguments"]) == {"x": 1, "y": "two"}
    assert result["tool_calls"][0]["id"]

    body = chat_body(tool_call=True)
    body["tools"] = [WEATHER_TOOL]
    stream = raw_stream(http, "/chat/completions", body)
    validate_chunks(stream, CHAT_CHUNK)
    assert_complete(stream)


@pytest.mark.parametrize("include_usage", [False, True])
def test_non_streaming_upstream_still_streams_to_the_client(http, include_usage):
    options = {"include_usage": True} if include_usage else None
    stream = raw_stream(http, "/chat/completions", chat_body(model="m-nostream", stream_options=options, tokens=5))
    validate_chunks(stream, CHAT_CHUNK)
    assert stream.data[-1] == "[DONE]"
    chunks = stream.chunks
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks if chunk["choices"]]
    assert deltas[0].get("role") == "assistant"
    assert "".join(delta.get("content") or "" for delta in deltas) == words(5)
    finishes = [chunk["choices"][0]["finish_reason"] for chunk in chunks if chunk["choices"]]
    assert finishes[-1] == "stop"
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert {chunk["model"] for chunk in chunks} == {"m-nostream"}
    usage = [chunk for chunk in chunks if chunk.get("usage")]
    if include_usage:
        assert usage == [chunks[-1]] and chunks[-1]["choices"] == []
        assert chunks[-1]["usage"]["completion_tokens"] == 5
    else:
        assert all("usage" not in chunk for chunk in chunks)
    assert_complete(stream)


def test_non_streaming_upstream_through_the_sdk(client):
    chunks = collect(client.chat.completions.create(
        model="m-nostream", messages=USER_HI, stream=True, tools=[WEATHER_TOOL], extra_body=fake(tool_call=True)))
    result = accumulate_chat(chunks)
    assert result["finish_reason"] == "tool_calls"
    assert [call["name"] for call in result["tool_calls"]] == ["get_weather"]
    assert json.loads(result["tool_calls"][0]["arguments"]) == {"x": 1, "y": "two"}


def test_stream_only_upstream_streams_too(client):
    chunks = collect(client.chat.completions.create(
        model="m-always", messages=USER_HI, stream=True, stream_options={"include_usage": True}, extra_body=fake(tokens=3)))
    result = accumulate_chat(chunks)
    assert result["content"] == words(3)
    assert result["usage"].completion_tokens == 3


def test_demo_stream_matches_demo_completion(client, http):
    whole = client.chat.completions.create(model="demo", messages=USER_HI)
    chunks = collect(client.chat.completions.create(
        model="demo", messages=USER_HI, stream=True, stream_options={"include_usage": True}))
    result = accumulate_chat(chunks)
    assert result["content"] == whole.choices[0].message.content
    assert result["finish_reason"] == "stop"
    assert result["usage"].completion_tokens == 12
    assert {chunk.model for chunk in chunks} == {"demo"}
    stream = raw_stream(http, "/chat/completions", {"model": "demo", "messages": USER_HI, "stream": True})
    validate_chunks(stream, CHAT_CHUNK)
    assert_complete(stream)


def test_text_completion_stream(client, http):
    chunks = collect(client.completions.create(model="m", prompt="one two", stream=True, extra_body=fake(tokens=4)))
    assert "".join(choice.text for chunk in chunks for choice in chunk.choices) == words(4)
    ids = {chunk.id for chunk in chunks}
    assert len(ids) == 1 and ids.pop().startswith("cmpl-")
    assert not any(chunk.id.startswith("cmpl-fake") for chunk in chunks)
    assert {chunk.model for chunk in chunks} == {"m"}

    stream = raw_stream(http, "/completions", {"model": "m", "prompt": "one two", "stream": True, "fake": {"tokens": 4}})
    validate_chunks(stream, COMPLETION)
    assert_complete(stream)
    assert all("usage" not in chunk for chunk in stream.chunks)


def test_upstream_dying_mid_stream_raises_in_the_sdk(client):
    stream = client.chat.completions.create(model="m", messages=USER_HI, stream=True, extra_body=fake(tokens=6, die_after=2))
    received = []
    with pytest.raises(openai.APIError) as caught:
        with stream:
            for chunk in stream:
                received.append(chunk)
    # Raised while iterating a 200 stream, from its `data: {"error": ...}` event.
    assert not isinstance(caught.value, openai.APIStatusError)
    assert caught.value.body["code"] == "upstream_error", caught.value.body
    assert "upstream" in caught.value.message
    text = "".join(c.choices[0].delta.content or "" for c in received if c.choices)
    assert "w1 w2".startswith(text), text  # whether every chunk arrives is checked below


def test_upstream_dying_mid_stream_ends_with_error_event_and_no_done(http):
    stream = raw_stream(http, "/chat/completions", chat_body(tokens=6, die_after=2))
    assert stream.status == 200
    assert "data: [DONE]" not in stream.text
    assert not stream.done
    validate_chunks(stream, CHAT_CHUNK)  # error events are checked against ErrorResponse
    last = stream.chunks[-1]
    assert set(last) == {"error"}, f"last event is not an error: {last}"
    assert last["error"]["message"]
    assert not stream.stalled, "the response body did not end after the error event"
    assert last["error"]["code"] == "upstream_error"
    assert "w1 w2".startswith(streamed_text(stream.chunks[:-1]))


def streamed_text(chunks) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))


@pytest.mark.xfail(strict=False, reason="known limitation: AsyncHTTPClient drops response body parts still buffered in its connection when the upstream closes the connection abruptly (HTTPRequestStateMachine.channelInactive); see docs/ARCHITECTURE.md")
def test_chunks_sent_before_the_upstream_died_all_reach_the_client(http):
    # The upstream sends role, "w1", " w2" and closes; the client must get all three before the
    # error event. Repeated because the loss is intermittent (about 1 run in 6 here).
    texts = [streamed_text(raw_stream(http, "/chat/completions", chat_body(tokens=6, die_after=2)).chunks)
             for _ in range(40)]
    lost = [text for text in texts if text != "w1 w2"]
    assert not lost, f"{len(lost)}/40 streams lost chunks: {sorted(set(lost))}"


def test_stalled_upstream_stream_hits_the_idle_timeout(http):
    started = time.monotonic()
    stream = raw_stream(http, "/chat/completions", chat_body(tokens=6, stall_after=1), deadline_s=15)
    elapsed = time.monotonic() - started
    assert stream.status == 200
    assert not stream.done
    last = stream.chunks[-1]
    assert "error" in last, f"expected an error event after the idle timeout, got {last}"
    assert last["error"]["code"] == "upstream_timeout"
    assert not stream.stalled, "the response body did not end after the error event"
    assert 1.5 <= elapsed < 10, f"idle timeout is 2s but the stream ended after {elapsed:.1f}s"


def test_stream_only_upstream_raw_chunks_are_valid(http):
    stream = raw_stream(http, "/chat/completions", chat_body(model="m-always", tokens=3))
    validate_chunks(stream, CHAT_CHUNK)
    assert_complete(stream)
    assert streamed_text(stream.chunks) == words(3)
    assert all("usage" not in chunk for chunk in stream.chunks)


def test_concurrent_streams_stay_separate(client):
    def run(tokens):
        chunks = collect(client.chat.completions.create(
            model="m", messages=USER_HI, stream=True, extra_body=fake(tokens=tokens, delay_ms=5)))
        return {chunk.id for chunk in chunks}, accumulate_chat(chunks)["content"]

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(run, range(1, 7)))
    for tokens, (ids, content) in zip(range(1, 7), results):
        assert content == words(tokens)
        assert len(ids) == 1
    assert len({ids.pop() for ids, _ in results}) == 6


def test_client_leaving_mid_stream_does_not_hurt_the_gateway(client):
    stream = client.chat.completions.create(
        model="m", messages=USER_HI, stream=True, extra_body=fake(tokens=200, delay_ms=20))
    with stream:
        for index, _ in enumerate(stream):
            if index == 2:
                break  # closes the connection with ~190 chunks still to come
    completion = client.chat.completions.create(model="m", messages=USER_HI, extra_body=fake(tokens=2))
    assert completion.choices[0].message.content == "w1 w2"
