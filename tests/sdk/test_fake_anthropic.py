"""The fake Anthropic upstream (fake_anthropic.py) checked with the official `anthropic` SDK directly,
no gateway involved: what the gateway tests assume of it holds, and its shapes are the SDK's."""

from __future__ import annotations

import json
import threading
import time

import anthropic
import httpx2
import pytest

from fake_anthropic import API_KEY, TOOL_INPUT, TOOL_OUTPUT_TOKENS, FakeAnthropic, answer_text, input_tokens
from raw_http import httpx
from sdk_helpers import parse_sse

WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
HI = [{"role": "user", "content": "hello there claude"}]


@pytest.fixture(scope="module")
def upstream():
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def sdk(upstream):
    upstream.clear()
    # The SDK sends its api_key as a bearer token; Anthropic's own header is x-api-key.
    with anthropic.Anthropic(
        base_url=upstream.root, api_key=None, default_headers={"x-api-key": API_KEY}, max_retries=0, timeout=10
    ) as client:
        yield client


def raw_events(upstream, body: dict, headers: dict | None = None) -> list[tuple[str, dict]]:
    """(event name, data) of a raw streamed answer."""
    response = httpx.post(
        upstream.base_url + "/messages", json={**body, "stream": True}, timeout=10,
        headers={"x-api-key": API_KEY, "anthropic-version": "2023-06-01", **(headers or {})},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = []
    for block in response.text.split("\n\n"):
        lines = [line for line in block.split("\n") if line]
        if not lines:
            continue
        names = [line[len("event: "):] for line in lines if line.startswith("event: ")]
        (data,) = parse_sse(block + "\n\n")
        assert len(names) == 1, block
        events.append((names[0], json.loads(data)))
    for name, data in events:
        assert data["type"] == name
    return events


def test_create_answers_a_message_object_with_cache_usage(sdk, upstream):
    message = sdk.messages.create(model="claude-x", max_tokens=100, messages=HI, system="Be brief")
    assert message.id.startswith("msg_") and message.type == "message" and message.role == "assistant"
    assert message.model == "claude-x"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == answer_text() == "Hello from fake Claude."
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens) == (5, 4)  # "hello there claude" + "Be brief"
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (7, 3)
    sent = upstream.last()
    assert sent.headers["x-api-key"] == API_KEY and sent.headers["anthropic-version"]
    assert sent.body["model"] == "claude-x" and sent.body["system"] == "Be brief"
    assert sent.completed and sent.status == 200


def test_stream_text_and_final_message(sdk, upstream):
    with sdk.messages.stream(model="claude-x", max_tokens=100, messages=HI) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert pieces == ["Hello", " from", " fake", " Claude."]
    assert final.content[0].text == "Hello from fake Claude."
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (3, 4)
    assert (final.usage.cache_read_input_tokens, final.usage.cache_creation_input_tokens) == (7, 3)
    assert upstream.last().events_sent == [
        "message_start", "content_block_start", "ping", *["content_block_delta"] * 4, "content_block_stop",
        "message_delta", "message_stop",
    ]


def test_raw_stream_events_and_cumulative_usage(upstream):
    events = raw_events(upstream, {"model": "claude-x", "max_tokens": 100, "messages": HI})
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert start["usage"]["output_tokens"] == 1
    assert start["usage"]["input_tokens"] == 3 and start["usage"]["cache_read_input_tokens"] == 7
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    # Cumulative: the whole answer's output tokens, with input and cache tokens repeated.
    assert delta["usage"] == {"input_tokens": 3, "cache_creation_input_tokens": 3, "cache_read_input_tokens": 7,
                              "output_tokens": 4}


def test_tool_use_round_trip(sdk, upstream):
    first = sdk.messages.create(model="claude-x", max_tokens=100, messages=HI, tools=[WEATHER])
    assert first.stop_reason == "tool_use"
    (call,) = first.content
    assert call.type == "tool_use" and call.id.startswith("toolu_") and call.name == "get_weather"
    assert call.input == TOOL_INPUT
    assert first.usage.output_tokens == TOOL_OUTPUT_TOKENS
    history = HI + [
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny and 21C"}]},
    ]
    second = sdk.messages.create(model="claude-x", max_tokens=100, messages=history, tools=[WEATHER])
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == "The tool said: sunny and 21C"
    assert upstream.last().body["messages"][2]["content"][0]["tool_use_id"] == call.id


def test_streamed_tool_use_reassembles(sdk, upstream):
    with sdk.messages.stream(model="claude-x", max_tokens=100, messages=HI, tools=[WEATHER]) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [(b.type, b.name, b.input) for b in final.content] == [("tool_use", "get_weather", TOOL_INPUT)]
    assert final.usage.output_tokens == TOOL_OUTPUT_TOKENS
    events = raw_events(upstream, {"model": "claude-x", "max_tokens": 100, "messages": HI, "tools": [WEATHER]})
    partial = [d["delta"]["partial_json"] for n, d in events if n == "content_block_delta"]
    assert len(partial) >= 3 and partial[0] == "" and json.loads("".join(partial)) == TOOL_INPUT
    start = next(d for n, d in events if n == "content_block_start")
    assert start["content_block"]["type"] == "tool_use" and start["content_block"]["input"] == {}


def test_preamble_puts_a_text_block_before_the_tool_use(sdk):
    message = sdk.messages.create(
        model="claude-x", max_tokens=100, messages=[{"role": "user", "content": "weather? preamble"}], tools=[WEATHER]
    )
    assert [b.type for b in message.content] == ["text", "tool_use"]
    with sdk.messages.stream(
        model="claude-x", max_tokens=100, messages=[{"role": "user", "content": "weather? preamble"}], tools=[WEATHER]
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use"] and final.content[1].input == TOOL_INPUT


def test_tool_choice_none_answers_text(sdk):
    message = sdk.messages.create(model="claude-x", max_tokens=100, messages=HI, tools=[WEATHER],
                                  tool_choice={"type": "none"})
    assert message.stop_reason == "end_turn" and message.content[0].type == "text"


def test_max_tokens_and_stop_sequences(sdk):
    cut = sdk.messages.create(model="claude-x", max_tokens=2, messages=HI)
    assert (cut.content[0].text, cut.stop_reason, cut.usage.output_tokens) == ("Hello from", "max_tokens", 2)
    stopped = sdk.messages.create(model="claude-x", max_tokens=100, messages=HI, stop_sequences=["END", "fake"])
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "fake")
    assert stopped.content[0].text == "Hello from "
    with sdk.messages.stream(model="claude-x", max_tokens=100, messages=HI, stop_sequences=["fake"]) as stream:
        final = stream.get_final_message()
    assert (final.stop_reason, final.stop_sequence, final.content[0].text) == ("stop_sequence", "fake", "Hello from ")
    unmatched = sdk.messages.create(model="claude-x", max_tokens=100, messages=HI, stop_sequences=["nowhere"])
    assert unmatched.stop_reason == "end_turn"


def test_words_and_cache_directives(sdk):
    message = sdk.messages.create(
        model="claude-x", max_tokens=100, messages=[{"role": "user", "content": "go words=6 cache_read=0 cache_creation=11"}]
    )
    assert message.content[0].text == "Hello from fake Claude. w5 w6"
    assert (message.usage.cache_read_input_tokens, message.usage.cache_creation_input_tokens) == (0, 11)


def test_count_tokens(sdk):
    counted = sdk.messages.count_tokens(model="claude-x", messages=HI, system="Be brief")
    assert counted.input_tokens == 5 == input_tokens({"messages": HI, "system": "Be brief"})


def test_wrong_key_is_401_in_anthropics_shape(upstream):
    with anthropic.Anthropic(base_url=upstream.root, api_key="nope", max_retries=0) as client:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            client.messages.create(model="claude-x", max_tokens=10, messages=HI)
    body = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error" and body["error"]["message"]
    assert body["request_id"].startswith("req_")
    assert caught.value.response.headers["request-id"] == body["request_id"]
    # A bearer token is not Anthropic's header (unless the fake is told to accept it).
    with anthropic.Anthropic(base_url=upstream.root, api_key=API_KEY, max_retries=0) as client:
        with pytest.raises(anthropic.AuthenticationError):
            client.messages.create(model="claude-x", max_tokens=10, messages=HI)


def test_missing_version_header_and_bad_bodies_are_400(upstream):
    url = upstream.base_url + "/messages"
    good = {"model": "claude-x", "max_tokens": 10, "messages": HI}
    missing = httpx.post(url, json=good, headers={"x-api-key": API_KEY})
    assert missing.status_code == 400 and "anthropic-version" in missing.json()["error"]["message"]
    headers = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
    bad_bodies = {
        "max_tokens": {"model": "claude-x", "messages": HI},
        "Extra inputs": {**good, "fake": {"tokens": 2}},
        "'user', 'assistant' or 'system'": {**good, "messages": [{"role": "tool", "content": "x"}, *HI]},
        "tool_use_id": {**good, "messages": [*HI, {"role": "assistant", "content": "ok"},
                                             {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "r"}]}]},
        "without `tool_result`": {**good, "messages": [*HI, {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]}, {"role": "user", "content": "go on"}]},
        "non-empty": {**good, "messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]},
    }
    for needle, body in bad_bodies.items():
        response = httpx.post(url, json=body, headers=headers)
        assert response.status_code == 400, (needle, response.text)
        error = response.json()
        assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
        assert needle in error["error"]["message"], (needle, error)
    assert httpx.post(upstream.base_url + "/nothing", json=good, headers=headers).json()["error"]["type"] == "not_found_error"


def test_status_directive(sdk):
    with pytest.raises(anthropic.OverloadedError) as caught:
        sdk.messages.create(model="claude-x", max_tokens=10, messages=[{"role": "user", "content": "hi status=529"}])
    assert caught.value.status_code == 529 and caught.value.body["error"]["type"] == "overloaded_error"
    with pytest.raises(anthropic.RateLimitError) as limited:
        sdk.messages.create(model="claude-x", max_tokens=10,
                            messages=[{"role": "user", "content": "hi status=429 retry_after=3"}])
    assert limited.value.response.headers["retry-after"] == "3"
    assert limited.value.body["error"]["type"] == "rate_limit_error"


def test_error_mid_stream_is_an_error_event(sdk, upstream):
    received = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        with sdk.messages.stream(model="claude-x", max_tokens=100,
                                 messages=[{"role": "user", "content": "hi error_mid_stream"}]) as stream:
            for text in stream.text_stream:
                received.append(text)
    assert caught.value.body["error"]["type"] == "overloaded_error"
    assert received == ["Hello", " from"]
    record = upstream.last()
    assert record.events_sent[-1] == "error" and "message_stop" not in record.events_sent and not record.completed


def test_die_after_cuts_the_connection(sdk):
    # A body cut mid-stream surfaces from the SDK's HTTP library (httpx2, whichever openai line).
    with pytest.raises((anthropic.APIConnectionError, httpx2.HTTPError)):
        with sdk.messages.stream(model="claude-x", max_tokens=100,
                                 messages=[{"role": "user", "content": "hi die_after=1"}]) as stream:
            list(stream.text_stream)


def test_a_client_leaving_mid_stream_is_recorded(sdk, upstream):
    started = time.monotonic()
    with sdk.messages.stream(model="claude-x", max_tokens=1000,
                             messages=[{"role": "user", "content": "hi slow"}]) as stream:
        for index, _ in enumerate(stream.text_stream):
            if index == 3:
                left = time.monotonic()
                break
    record = upstream.last()
    closed_at = upstream.wait_disconnected(record, timeout=5)
    assert closed_at is not None, "the fake did not notice the client leaving"
    assert closed_at - left < 1.0, f"noticed {closed_at - left:.2f}s after the client left"
    assert not record.completed and "message_stop" not in record.events_sent
    assert left - started < 5  # 200 words at 50 ms would take 10 s


def test_first_byte_delay_and_concurrency(upstream):
    def call(results, index):
        with anthropic.Anthropic(base_url=upstream.root, api_key=None, default_headers={"x-api-key": API_KEY},
                                 max_retries=0) as client:
            results[index] = client.messages.create(
                model="claude-x", max_tokens=10, messages=[{"role": "user", "content": "hi first_byte_delay_ms=300"}])

    results: dict = {}
    started = time.monotonic()
    threads = [threading.Thread(target=call, args=(results, i)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert len(results) == 4 and all(r.content[0].text.startswith("Hello") for r in results.values())
    assert 0.3 <= elapsed < 1.5, elapsed


def test_hang_up_answers_nothing(sdk):
    with pytest.raises(anthropic.APIConnectionError):
        sdk.messages.create(model="claude-x", max_tokens=10, messages=[{"role": "user", "content": "hi hang_up"}])
