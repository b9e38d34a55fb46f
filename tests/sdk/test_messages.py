"""The Anthropic Messages API (`POST /v1/messages`) through the gateway, with the official `anthropic`
SDK (its base_url is the gateway's root: the SDK adds /v1/messages) and raw HTTP:

- translated: `m` (the Swift fake upstream, chat completions only, answering its default "w1 … w8")
  and `m-capture` (the recording upstream, to see the chat request the gateway made of a Messages
  request, scripted by words in the last user message: tool_call, words=N, delay_ms=N, status=N);
- passed through: `claude-fake`, a provider of kind `anthropic` in front of the fake Anthropic
  upstream (fake_anthropic.py), which records what it received.

Errors on /v1/messages are Anthropic's shape: {"type":"error","error":{"type","message"}}.
"""

from __future__ import annotations

import json
import threading
import time
from decimal import ROUND_HALF_UP, Decimal

import anthropic
import httpx2
import pytest

from capture_upstream import CAPTURE_ARGUMENTS
from conftest import CLAUDE_PRICE, CLAUDE_UPSTREAM_MODEL
from fake_anthropic import API_KEY as UPSTREAM_KEY
from fake_anthropic import TOOL_INPUT, TOOL_OUTPUT_TOKENS
from raw_http import httpx
from sdk_helpers import STREAM_DEADLINE_S, parse_sse_events, words
from test_accounts import new_account

HI = [{"role": "user", "content": "hello there gateway"}]  # 3 words: the fake upstreams' input tokens
CLAUDE_HI = [{"role": "user", "content": "hello there claude"}]
CLAUDE_TEXT = "Hello from fake Claude."  # fake_anthropic.answer_text(): 4 words, 4 output tokens
CACHE_READ, CACHE_CREATION = 7, 3  # the fake Anthropic upstream's defaults
WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
HI_TOOL = [{"role": "user", "content": "hello there gateway tool_call"}]  # the capture upstream calls a tool
CAPTURE_INPUT = json.loads(CAPTURE_ARGUMENTS)
STOP_REASONS = {"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal",
                "model_context_window_exceeded"}
ERROR_TYPES = {400: {"invalid_request_error"}, 401: {"authentication_error"}, 402: {"billing_error"},
               403: {"permission_error"}, 404: {"not_found_error"}, 413: {"request_too_large"},
               429: {"rate_limit_error"}, 500: {"api_error"}, 502: {"overloaded_error", "api_error"},
               503: {"overloaded_error", "api_error"}, 529: {"overloaded_error", "api_error"}}
VERSION = "2023-06-01"


def root(stack) -> str:
    return stack.url.removesuffix("/v1")


def sdk(stack, key: str | None = None, **options) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=options.pop("base_url", root(stack)), api_key=key or stack.key, max_retries=0, timeout=20, **options
    )


@pytest.fixture(scope="module")
def claude(stack):
    with sdk(stack) as client:
        yield client


def text_of(content) -> str:
    """The text of a string content or of its text blocks / parts."""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))


def anthropic_error(response, status: int) -> dict:
    """The error object of an Anthropic-shaped error body, after checking its shape."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["type"] == "error", body
    error = body["error"]
    assert error["type"] in ERROR_TYPES[status], body
    assert isinstance(error["message"], str) and error["message"], body
    assert "code" not in body and "param" not in error  # not OpenAI's shape
    return error


def check_message(body: dict) -> None:
    """A whole answer in the shape of Anthropic's message object."""
    assert body["type"] == "message" and body["role"] == "assistant", body
    assert isinstance(body["id"], str) and body["id"].startswith("msg_"), body
    assert isinstance(body["model"], str)
    assert isinstance(body["content"], list)
    for block in body["content"]:
        if block["type"] == "text":
            assert isinstance(block["text"], str)
        else:
            assert block["type"] == "tool_use", block
            assert isinstance(block["id"], str) and block["id"] and isinstance(block["name"], str)
            assert isinstance(block["input"], dict)
    assert body["stop_reason"] in STOP_REASONS, body
    assert "stop_sequence" in body and (body["stop_sequence"] is None or isinstance(body["stop_sequence"], str))
    usage = body["usage"]
    assert isinstance(usage["input_tokens"], int) and isinstance(usage["output_tokens"], int), usage
    for name in ("cache_creation_input_tokens", "cache_read_input_tokens"):
        assert usage.get(name) is None or isinstance(usage[name], int), usage


def check_stream(events: list[tuple[str | None, dict]], ends_with_error: bool = False) -> list[str]:
    """Anthropic's event grammar: named events (the SDK drops unnamed ones) message_start, then per
    content block (indexes 0, 1, …) start, deltas of its kind and stop, then message_delta(s) and
    message_stop; pings anywhere. Returns the event names."""
    assert events, "no events"
    for name, data in events:
        assert name == data.get("type"), f"event {name!r} carries data of type {data.get('type')!r}"
    names = [name for name, _ in events if name != "ping"]
    assert names[0] == "message_start", names
    start = events[0][1] if events[0][0] == "message_start" else next(d for n, d in events if n == "message_start")
    message = start["message"]
    assert message["content"] == [] and message["stop_reason"] is None and message["role"] == "assistant"
    assert isinstance(message["usage"]["input_tokens"], int)
    open_block, next_index, kinds, deltas_seen = None, 0, {}, 0
    for name, data in events[1:]:
        if name == "ping":
            continue
        if name == "error":
            assert ends_with_error and (name, data) == events[-1], "an error event must end the stream"
            assert data["error"]["type"] and data["error"]["message"]
            continue
        assert name != "message_start", "two message_start events"
        if name == "content_block_start":
            assert open_block is None and data["index"] == next_index, (open_block, data)
            open_block, kinds[data["index"]] = data["index"], data["content_block"]["type"]
            assert kinds[data["index"]] in ("text", "tool_use"), data
        elif name == "content_block_delta":
            assert data["index"] == open_block, data
            expected = {"text": "text_delta", "tool_use": "input_json_delta"}[kinds[open_block]]
            assert data["delta"]["type"] == expected, data
            deltas_seen += 1
        elif name == "content_block_stop":
            assert data["index"] == open_block, data
            open_block, next_index = None, next_index + 1
        elif name == "message_delta":
            assert open_block is None, "message_delta inside an open content block"
            assert data["delta"]["stop_reason"] in STOP_REASONS, data
            assert isinstance(data["usage"]["output_tokens"], int), data
        elif name == "message_stop":
            assert (name, data) == events[-1], "events after message_stop"
        else:
            pytest.fail(f"unexpected event {name!r}: {data}")
    if ends_with_error:
        assert names[-1] == "error" and "message_stop" not in names, names
    else:
        assert names[-1] == "message_stop" and "message_delta" in names, names
    return [name for name, _ in events]


def raw_messages(stack, body: dict, key: str | None = None, headers: dict | None = None):
    """POST /v1/messages with an x-api-key header; (status, headers, events or JSON)."""
    sent = {"x-api-key": key or stack.key, "anthropic-version": VERSION, **(headers or {})}
    started, pieces = time.monotonic(), []
    with httpx.stream("POST", stack.url + "/messages", json=body, headers=sent,
                      timeout=httpx.Timeout(20.0, read=5.0)) as response:
        for piece in response.iter_text():
            pieces.append(piece)
            assert time.monotonic() - started < STREAM_DEADLINE_S
        text = "".join(pieces)
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return response.status_code, response.headers, [(n, json.loads(d)) for n, d in parse_sse_events(text)]
    return response.status_code, response.headers, json.loads(text) if text else None


def sdk_events(stream) -> list[tuple[str, dict]]:
    """(type, data) of every event of an SDK `messages.create(stream=True)` (the SDK drops pings)."""
    with stream:
        return [(event.type, event.model_dump(mode="json")) for event in stream]


# --- translated: a chat-completions upstream behind /v1/messages ---
# `m` (the Swift fake) answers its default, "w1 … w8" (8 completion tokens, usage reported);
# `m-capture` is scripted by words in the last user message (capture_upstream.py), which survive the
# translation — the Swift fake's `"fake"` body field is a vendor field a translation need not carry.


def test_create_on_a_chat_model_answers_a_message(claude):
    raw = claude.messages.with_raw_response.create(model="m", max_tokens=100, messages=HI)
    body = raw.http_response.json()
    check_message(body)
    message = raw.parse()
    assert message.model == "m"
    assert message.id.startswith("msg_")
    assert [(b.type, b.text) for b in message.content] == [("text", words(8))]
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert (message.usage.input_tokens, message.usage.output_tokens) == (3, 8)
    assert not message.usage.cache_read_input_tokens and not message.usage.cache_creation_input_tokens


def test_the_system_prompt_reaches_a_chat_upstream_as_a_system_message(claude, capture):
    message = claude.messages.create(model="m", max_tokens=100, messages=HI, system="Be brief")
    assert message.usage.input_tokens == 5  # the fake counts the words of every message: system too
    claude.messages.create(model="m-capture", max_tokens=100, messages=HI,
                           system=[{"type": "text", "text": "Be brief"}])
    sent = capture.last()
    assert sent.path == "/v1/chat/completions" and sent.body["model"] == "upstream-capture"
    first, *rest = sent.body["messages"]
    assert first["role"] == "system" and text_of(first["content"]) == "Be brief", sent.body
    assert [(m["role"], text_of(m["content"])) for m in rest] == [("user", "hello there gateway")]


def test_max_tokens_and_stop_sequences_reach_a_chat_upstream(claude, capture):
    message = claude.messages.create(model="m-capture", max_tokens=33, messages=HI, stop_sequences=["END", "\n\n"])
    assert message.content[0].text == "captured"
    sent = capture.last().body
    assert sent.get("max_tokens", sent.get("max_completion_tokens")) == 33, sent
    assert sent["stop"] == ["END", "\n\n"]
    assert not sent.get("stream")


@pytest.mark.parametrize("stream", [False, True])
def test_a_length_finish_is_max_tokens(claude, capture, stream):
    ask = {"model": "m-capture", "max_tokens": 3, "messages": [{"role": "user", "content": "hello words=8"}]}
    if stream:
        with claude.messages.stream(**ask) as events:
            message = events.get_final_message()
    else:
        message = claude.messages.create(**ask)
    assert message.stop_reason == "max_tokens"
    assert message.content[0].text == words(3)
    sent = capture.last().body
    assert sent.get("max_tokens", sent.get("max_completion_tokens")) == 3


def test_stream_on_a_chat_model(claude):
    with claude.messages.stream(model="m", max_tokens=100, messages=HI) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == words(8)
    assert final.content[0].text == words(8)
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (3, 8)
    assert final.model == "m" and final.id.startswith("msg_")


def test_raw_stream_on_a_chat_model_follows_anthropics_event_grammar(stack):
    status, headers, events = raw_messages(stack, {"model": "m", "max_tokens": 100, "messages": HI, "stream": True})
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    check_stream(events)
    deltas = [d["delta"]["text"] for n, d in events if n == "content_block_delta"]
    assert "".join(deltas) == words(8)
    final = [d for n, d in events if n == "message_delta"][-1]
    assert final["usage"]["output_tokens"] == 8
    assert events[0][1]["message"]["model"] == "m"


def test_tool_round_trip_on_a_chat_model(claude, capture):
    first = claude.messages.create(model="m-capture", max_tokens=100, messages=HI_TOOL, tools=[WEATHER])
    assert first.stop_reason == "tool_use"
    calls = [block for block in first.content if block.type == "tool_use"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and calls[0].input == CAPTURE_INPUT and calls[0].id
    history = HI_TOOL + [
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0].id, "content": "sunny"}]},
    ]
    second = claude.messages.create(model="m-capture", max_tokens=100, messages=history, tools=[WEATHER])
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == "captured"
    # The call's id went up as the chat tool call's id and came back as the tool message's.
    _, assistant, result = capture.last().body["messages"]
    (call,) = assistant["tool_calls"]
    assert call["id"] == result["tool_call_id"]
    assert (call["function"]["name"], json.loads(call["function"]["arguments"])) == ("get_weather", CAPTURE_INPUT)
    assert text_of(result["content"]) == "sunny"


def test_tools_and_tool_results_reach_a_chat_upstream_translated(claude, capture):
    history = HI + [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_abc", "name": "get_weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_abc", "content": "sunny"}]},
    ]
    claude.messages.create(model="m-capture", max_tokens=100, messages=history, tools=[WEATHER])
    sent = capture.last().body
    (tool,) = sent["tools"]
    assert tool["type"] == "function"
    assert tool["function"]["name"] == "get_weather"
    assert tool["function"]["parameters"] == WEATHER["input_schema"]
    assert tool["function"].get("description") == "Weather in a city"
    user, assistant, result = sent["messages"]
    assert (user["role"], text_of(user["content"])) == ("user", "hello there gateway")
    assert assistant["role"] == "assistant"
    (call,) = assistant["tool_calls"]
    assert call["id"] == "toolu_abc" and call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert result["role"] == "tool" and result["tool_call_id"] == "toolu_abc" and text_of(result["content"]) == "sunny"


def test_streamed_tool_use_on_a_chat_model(claude, stack):
    with claude.messages.stream(model="m-capture", max_tokens=100, messages=HI_TOOL, tools=[WEATHER]) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    calls = [b for b in final.content if b.type == "tool_use"]
    assert [(c.name, c.input) for c in calls] == [("get_weather", CAPTURE_INPUT)]
    status, _, events = raw_messages(stack, {"model": "m-capture", "max_tokens": 100, "messages": HI_TOOL,
                                             "tools": [WEATHER], "stream": True})
    assert status == 200
    check_stream(events)
    partial = "".join(d["delta"]["partial_json"] for n, d in events if n == "content_block_delta"
                      and d["delta"]["type"] == "input_json_delta")
    assert json.loads(partial) == CAPTURE_INPUT


def test_a_chat_upstreams_400_is_an_anthropic_invalid_request_error(claude):
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model="m-capture", max_tokens=10, messages=[{"role": "user", "content": "hi status=400"}])
    error = anthropic_error(caught.value.response, 400)
    assert error["type"] == "invalid_request_error" and "capture error" in error["message"]


def test_count_tokens_on_a_chat_model_is_an_integer(claude):
    counted = claude.messages.count_tokens(model="m", messages=HI)
    assert isinstance(counted.input_tokens, int) and counted.input_tokens >= 1


# --- passed through: an upstream of kind anthropic ---


def test_create_passes_through_with_the_model_rewritten(stack, claude, claude_upstream):
    raw = claude.messages.with_raw_response.create(model="claude-fake", max_tokens=100, messages=CLAUDE_HI, system="Be brief")
    body = raw.http_response.json()
    check_message(body)
    message = raw.parse()
    assert message.model == "claude-fake"
    assert [(b.type, b.text) for b in message.content] == [("text", CLAUDE_TEXT)]
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens) == (5, 4)  # "hello there claude" + "Be brief"
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (CACHE_READ, CACHE_CREATION)

    sent = claude_upstream.last()
    assert sent.path == "/v1/messages"
    # Verbatim but for the model.
    assert sent.body == {"model": CLAUDE_UPSTREAM_MODEL, "max_tokens": 100, "messages": CLAUDE_HI, "system": "Be brief"}
    assert sent.headers["x-api-key"] == UPSTREAM_KEY
    assert stack.key not in sent.headers.get("authorization", "") and stack.key not in json.dumps(sent.headers)
    # The SDK's own anthropic-version, unchanged (not the provider's default).
    assert sent.headers["anthropic-version"] == claude.default_headers["anthropic-version"]


def test_anthropic_beta_and_version_are_forwarded_unchanged(claude, claude_upstream):
    beta = "prompt-caching-2024-07-31, token-efficient-tools-2025-02-19"
    claude.messages.create(model="claude-fake", max_tokens=10, messages=CLAUDE_HI,
                           extra_headers={"anthropic-beta": beta, "anthropic-version": "2023-01-01"})
    headers = claude_upstream.last().headers
    assert headers["anthropic-beta"] == beta
    assert headers["anthropic-version"] == "2023-01-01"


def test_stream_passes_through_with_exact_usage(stack, claude, claude_upstream):
    with claude.messages.stream(model="claude-fake", max_tokens=100, messages=CLAUDE_HI) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == CLAUDE_TEXT
    assert final.stop_reason == "end_turn" and final.model == "claude-fake"
    usage = final.usage
    assert (usage.input_tokens, usage.output_tokens) == (3, 4)
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (CACHE_READ, CACHE_CREATION)
    sent = claude_upstream.last()
    assert sent.body == {"model": CLAUDE_UPSTREAM_MODEL, "max_tokens": 100, "messages": CLAUDE_HI, "stream": True}
    assert sent.completed


def test_raw_passthrough_stream_keeps_anthropics_cumulative_usage(stack, claude_upstream):
    status, headers, events = raw_messages(
        stack, {"model": "claude-fake", "max_tokens": 100, "messages": CLAUDE_HI, "stream": True})
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    check_stream(events)
    start = events[0][1]["message"]
    assert start["model"] == "claude-fake"
    assert start["usage"]["input_tokens"] == 3 and start["usage"]["cache_read_input_tokens"] == CACHE_READ
    (delta,) = [d for n, d in events if n == "message_delta"]
    assert delta["usage"]["output_tokens"] == 4  # cumulative, as Anthropic sends it
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta") == CLAUDE_TEXT


def test_tool_round_trip_passes_through(claude, claude_upstream):
    first = claude.messages.create(model="claude-fake", max_tokens=100, messages=CLAUDE_HI, tools=[WEATHER])
    assert first.stop_reason == "tool_use"
    (call,) = first.content
    assert call.type == "tool_use" and call.id.startswith("toolu_") and call.name == "get_weather"
    assert call.input == TOOL_INPUT
    assert first.usage.output_tokens == TOOL_OUTPUT_TOKENS
    assert claude_upstream.last().body["tools"] == [WEATHER]
    history = CLAUDE_HI + [
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]},
    ]
    second = claude.messages.create(model="claude-fake", max_tokens=100, messages=history, tools=[WEATHER])
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == "The tool said: sunny"
    assert claude_upstream.last().body["messages"] == history


def test_streamed_tool_use_with_a_text_block_passes_through(claude, stack):
    with claude.messages.stream(model="claude-fake", max_tokens=100, tools=[WEATHER],
                                messages=[{"role": "user", "content": "weather please preamble"}]) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[1].input == TOOL_INPUT and final.stop_reason == "tool_use"
    assert final.usage.output_tokens == TOOL_OUTPUT_TOKENS
    status, _, events = raw_messages(stack, {"model": "claude-fake", "max_tokens": 100, "tools": [WEATHER], "stream": True,
                                             "messages": [{"role": "user", "content": "weather please preamble"}]})
    assert status == 200
    check_stream(events)


def test_stop_sequences_and_max_tokens_pass_through(claude, claude_upstream):
    stopped = claude.messages.create(model="claude-fake", max_tokens=100, messages=CLAUDE_HI, stop_sequences=["fake"])
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "fake")
    assert stopped.content[0].text == "Hello from "
    assert claude_upstream.last().body["stop_sequences"] == ["fake"]
    cut = claude.messages.create(model="claude-fake", max_tokens=2, messages=CLAUDE_HI)
    assert (cut.stop_reason, cut.content[0].text, cut.usage.output_tokens) == ("max_tokens", "Hello from", 2)
    with claude.messages.stream(model="claude-fake", max_tokens=100, messages=CLAUDE_HI, stop_sequences=["fake"]) as stream:
        final = stream.get_final_message()
    assert (final.stop_reason, final.stop_sequence, final.content[0].text) == ("stop_sequence", "fake", "Hello from ")


def test_count_tokens_passes_through(claude, claude_upstream):
    counted = claude.messages.count_tokens(model="claude-fake", messages=CLAUDE_HI, system="Be brief")
    assert counted.input_tokens == 5  # the fake upstream's count
    sent = claude_upstream.last("/v1/messages/count_tokens")
    assert sent.body["model"] == CLAUDE_UPSTREAM_MODEL and sent.body["messages"] == CLAUDE_HI
    assert sent.headers["x-api-key"] == UPSTREAM_KEY


def test_an_overloaded_upstream_is_an_anthropic_error(claude):
    with pytest.raises(anthropic.APIStatusError) as caught:
        claude.messages.create(model="claude-fake", max_tokens=10, messages=[{"role": "user", "content": "hi status=529"}])
    anthropic_error(caught.value.response, caught.value.status_code)
    assert caught.value.status_code in (502, 503, 529)


def test_an_upstream_error_mid_stream_reaches_the_sdk(claude, stack):
    received = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        with claude.messages.stream(model="claude-fake", max_tokens=100,
                                    messages=[{"role": "user", "content": "hi error_mid_stream"}]) as stream:
            for text in stream.text_stream:
                received.append(text)
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] in ("overloaded_error", "api_error")
    assert CLAUDE_TEXT.startswith("".join(received))
    status, _, events = raw_messages(stack, {"model": "claude-fake", "max_tokens": 100, "stream": True,
                                             "messages": [{"role": "user", "content": "hi error_mid_stream"}]})
    assert status == 200
    check_stream(events, ends_with_error=True)


# --- requests the gateway refuses itself, in Anthropic's shape ---


@pytest.mark.parametrize("model", ["m", "claude-fake"])
def test_max_tokens_is_required(claude, model):
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model=model, messages=HI, max_tokens=anthropic.omit)
    error = anthropic_error(caught.value.response, 400)
    assert "max_tokens" in error["message"]


def test_a_wrong_key_is_an_authentication_error(stack):
    with sdk(stack, "sk-sy-not-a-key") as client:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            client.messages.create(model="m", max_tokens=10, messages=HI)
    assert anthropic_error(caught.value.response, 401)["type"] == "authentication_error"
    status, _, body = raw_messages(stack, {"model": "m", "max_tokens": 10, "messages": HI}, key="sk-sy-not-a-key")
    assert status == 401 and body["type"] == "error" and body["error"]["type"] == "authentication_error"
    no_key = httpx.post(stack.url + "/messages", json={"model": "m", "max_tokens": 10, "messages": HI},
                        headers={"anthropic-version": VERSION})
    assert anthropic_error(no_key, 401)["type"] == "authentication_error"


def test_an_unknown_model_is_not_found_error(claude):
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude.messages.create(model="no-such-model", max_tokens=10, messages=HI)
    assert "no-such-model" in anthropic_error(caught.value.response, 404)["message"]


@pytest.mark.parametrize("model", ["m", "claude-fake"])
def test_x_api_key_and_bearer_are_both_accepted(stack, model):
    content = HI if model == "m" else CLAUDE_HI
    status, _, body = raw_messages(stack, {"model": model, "max_tokens": 100, "messages": content})
    assert status == 200, body
    check_message(body)
    bearer = httpx.post(stack.url + "/messages", json={"model": model, "max_tokens": 100, "messages": content},
                        headers={"Authorization": f"Bearer {stack.key}", "anthropic-version": VERSION}, timeout=20)
    assert bearer.status_code == 200, bearer.text
    check_message(bearer.json())
    # The SDK with an x-api-key header only (no bearer token).
    with anthropic.Anthropic(base_url=root(stack), api_key=None, default_headers={"x-api-key": stack.key},
                             max_retries=0, timeout=20) as client:
        assert client.messages.create(model=model, max_tokens=100, messages=content).content


# --- billing ---


def ledger_row(stack, key: str, request_id: str) -> dict:
    """The caller's ledger row for `request_id`, once settled."""
    deadline = time.monotonic() + 5
    while True:
        rows = httpx.get(f"{stack.url}/usage", headers={"Authorization": f"Bearer {key}"}, params={"limit": 100},
                         timeout=10).json()["data"]
        row = next((r for r in rows if r["id"] == request_id), None)
        if (row is not None and row["status"] != "running") or time.monotonic() > deadline:
            assert row is not None, f"no ledger row {request_id} in {[r['id'] for r in rows]}"
            return row
        time.sleep(0.05)


def claude_cost(prompt_tokens: int, completion_tokens: int) -> Decimal:
    price_in, price_out = Decimal(CLAUDE_PRICE["input"]), Decimal(CLAUDE_PRICE["output"])
    exact = (prompt_tokens * price_in + completion_tokens * price_out) / 1000
    return exact.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


def test_passthrough_is_billed_for_input_and_cache_tokens_once(stack):
    key = new_account(stack, "1.00")
    with sdk(stack, key) as client:
        whole = client.messages.create(model="claude-fake", max_tokens=100, messages=CLAUDE_HI)
        with client.messages.stream(model="claude-fake", max_tokens=100, messages=CLAUDE_HI) as stream:
            streamed = stream.get_final_message()
    prompt = 3 + CACHE_READ + CACHE_CREATION  # input_tokens + cache_read + cache_creation, each once
    cost = claude_cost(prompt, 4)
    assert cost > 0
    for message in (whole, streamed):
        row = ledger_row(stack, key, message.id)
        assert row["api"] == "messages"
        assert row["model"] == "claude-fake"
        assert row["deployment"] == f"claude/{CLAUDE_UPSTREAM_MODEL}"
        assert row["status"] == "completed" and row["usage_source"] == "reported"
        assert (row["usage"]["prompt_tokens"], row["usage"]["completion_tokens"]) == (prompt, 4), row
        assert Decimal(row["cost"]) == cost, row
    account = httpx.get(f"{stack.url}/account", headers={"Authorization": f"Bearer {key}"}, timeout=10).json()
    assert Decimal(account["balance"]) == Decimal("1.00") - 2 * cost
    assert Decimal(account["held"]) == 0


def test_a_translated_request_is_in_the_ledger_as_messages(stack, claude):
    message = claude.messages.create(model="m", max_tokens=100, messages=HI)
    row = ledger_row(stack, stack.key, message.id)
    assert row["api"] == "messages" and row["model"] == "m"
    assert (row["usage"]["prompt_tokens"], row["usage"]["completion_tokens"]) == (3, 8)


# --- stopping ---


def suspend_later(stack, userid: str, delay: float, result: dict) -> threading.Thread:
    def run():
        time.sleep(delay)
        result["at"] = time.monotonic()
        result["answer"] = httpx.get(f"{root(stack)}/llm_api/suspend_current_generate",
                                     params={"openid": stack.key, "userid": userid}, timeout=10).json()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def seed_sdk(stack, userid: str, model: str) -> anthropic.Anthropic:
    # The key travels in the path; the SDK's own credential is a placeholder.
    return sdk(stack, "placeholder", base_url=f"{root(stack)}/llm_api/{stack.key}/{userid}/{model}")


def test_a_seed_style_call_reaches_messages(stack):
    with seed_sdk(stack, "seed-claude", "claude-fake") as client:
        message = client.messages.create(model="whatever", max_tokens=100, messages=CLAUDE_HI)
    assert message.model == "claude-fake" and message.content[0].text == CLAUDE_TEXT
    assert ledger_row(stack, stack.key, message.id)["user"] == "seed-claude"


def test_suspending_a_passthrough_stream_ends_it_cleanly_and_closes_the_upstream(stack, claude_upstream):
    result: dict = {}
    with seed_sdk(stack, "claude-stopper", "claude-fake") as client:
        stream = client.messages.create(model="claude-fake", max_tokens=1000, stream=True,
                                        messages=[{"role": "user", "content": "tell me slow"}])
        thread = suspend_later(stack, "claude-stopper", 0.5, result)
        events = sdk_events(stream)  # ends without raising
        thread.join()
    assert result["answer"]["stopped"] == 1
    names = check_stream(events)
    assert names[-2:] == ["message_delta", "message_stop"], names
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert 0 < len(text.split()) < 200, "the stream was not stopped mid-way"
    record = claude_upstream.last()
    closed_at = claude_upstream.wait_disconnected(record, timeout=5)
    assert closed_at is not None, "the gateway did not close its upstream connection"
    assert closed_at - result["at"] < 2.0, f"upstream closed {closed_at - result['at']:.2f}s after the stop"
    assert not record.completed


def test_suspending_a_translated_stream_ends_it_cleanly(stack):
    result: dict = {}
    with seed_sdk(stack, "m-stopper", "m-capture") as client:
        stream = client.messages.create(model="m-capture", max_tokens=1000, stream=True,
                                        messages=[{"role": "user", "content": "go words=300 delay_ms=20"}])
        thread = suspend_later(stack, "m-stopper", 0.3, result)
        events = sdk_events(stream)
        thread.join()
    assert result["answer"]["stopped"] == 1
    names = check_stream(events)
    assert names[-2:] == ["message_delta", "message_stop"], names
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert 0 < len(text.split()) < 300
    assert words(300).startswith(text)


def test_client_leaving_a_passthrough_stream_closes_the_upstream(stack, claude, claude_upstream):
    with claude.messages.stream(model="claude-fake", max_tokens=1000,
                                messages=[{"role": "user", "content": "go slow"}]) as stream:
        for index, _ in enumerate(stream.text_stream):
            if index == 2:
                left = time.monotonic()
                break
    record = claude_upstream.last()
    closed_at = claude_upstream.wait_disconnected(record, timeout=5)
    assert closed_at is not None and closed_at - left < 2.0
    assert claude.messages.create(model="claude-fake", max_tokens=100, messages=CLAUDE_HI).content[0].text == CLAUDE_TEXT


def test_a_cut_upstream_stream_raises_in_the_sdk(claude):
    with pytest.raises((anthropic.APIError, httpx2.HTTPError)):
        with claude.messages.stream(model="claude-fake", max_tokens=100,
                                    messages=[{"role": "user", "content": "hi die_after=2"}]) as stream:
            list(stream.text_stream)
