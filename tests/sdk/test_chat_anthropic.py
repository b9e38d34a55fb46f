"""Chat completions to a provider of kind `anthropic` (`claude-fake`, the fake Anthropic upstream):
translated to Messages and back, usage mapped as the contract says — prompt_tokens = input_tokens +
cache_read_input_tokens + cache_creation_input_tokens, prompt_tokens_details.cached_tokens =
cache_read_input_tokens — and a stream's usage (message_start and a cumulative message_delta that
repeats the input and cache tokens) counted once."""

from __future__ import annotations

import json

import openai
import pytest

from conftest import CLAUDE_UPSTREAM_MODEL
from fake_anthropic import API_KEY as UPSTREAM_KEY
from fake_anthropic import TOOL_INPUT
from openai_schema import validate
from sdk_helpers import CHAT_CHUNK, CHAT_RESPONSE, WEATHER_TOOL, accumulate_chat, assert_complete, collect, raw_stream, validate_chunks
from test_messages import CACHE_CREATION, CACHE_READ, CLAUDE_TEXT, text_of

HELLO = [{"role": "user", "content": "hello there claude"}]
PROMPT = 3 + CACHE_READ + CACHE_CREATION


def test_a_chat_completion_from_an_anthropic_upstream(client, claude_upstream):
    raw = client.chat.completions.with_raw_response.create(
        model="claude-fake", messages=[{"role": "system", "content": "Be brief"}, *HELLO], max_tokens=50, stop=["never"])
    body = raw.http_response.json()
    validate(body, CHAT_RESPONSE)
    completion = raw.parse()
    assert completion.model == "claude-fake" and completion.id.startswith("chatcmpl-")
    assert completion.choices[0].message.content == CLAUDE_TEXT
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (PROMPT + 2, 4, PROMPT + 6)
    assert usage.prompt_tokens_details.cached_tokens == CACHE_READ
    sent = claude_upstream.last()
    assert sent.path == "/v1/messages" and sent.headers["x-api-key"] == UPSTREAM_KEY
    assert sent.body["model"] == CLAUDE_UPSTREAM_MODEL and sent.body["max_tokens"] == 50
    assert text_of(sent.body["system"]) == "Be brief"
    assert [(m["role"], text_of(m["content"])) for m in sent.body["messages"]] == [("user", "hello there claude")]
    assert sent.body["stop_sequences"] == ["never"]


def test_a_streamed_chat_completion_counts_anthropics_usage_once(client, http):
    chunks = collect(client.chat.completions.create(
        model="claude-fake", messages=HELLO, stream=True, stream_options={"include_usage": True}))
    result = accumulate_chat(chunks)
    assert result["content"] == CLAUDE_TEXT and result["finish_reason"] == "stop"
    usage = result["usage"]
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (PROMPT, 4, PROMPT + 4)
    assert usage.prompt_tokens_details.cached_tokens == CACHE_READ
    stream = raw_stream(http, "/chat/completions", {"model": "claude-fake", "messages": HELLO, "stream": True,
                                                    "stream_options": {"include_usage": True}})
    validate_chunks(stream, CHAT_CHUNK)
    assert_complete(stream)


def test_max_tokens_and_stop_sequences_map_to_finish_reasons(client):
    cut = client.chat.completions.create(model="claude-fake", messages=HELLO, max_tokens=2)
    assert (cut.choices[0].message.content, cut.choices[0].finish_reason) == ("Hello from", "length")
    stopped = client.chat.completions.create(model="claude-fake", messages=HELLO, stop=["fake"])
    assert stopped.choices[0].finish_reason == "stop" and stopped.choices[0].message.content == "Hello from "


@pytest.mark.parametrize("stream", [False, True])
def test_a_tool_call_round_trip_through_an_anthropic_upstream(client, claude_upstream, stream):
    if stream:
        result = accumulate_chat(collect(client.chat.completions.create(
            model="claude-fake", messages=HELLO, tools=[WEATHER_TOOL], stream=True)))
        calls, finish = result["tool_calls"], result["finish_reason"]
    else:
        message = client.chat.completions.create(model="claude-fake", messages=HELLO, tools=[WEATHER_TOOL]).choices[0]
        finish = message.finish_reason
        calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments} for c in message.message.tool_calls]
    assert finish == "tool_calls"
    (call,) = calls
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == TOOL_INPUT and call["id"]
    (tool,) = claude_upstream.last().body["tools"]
    assert tool["name"] == "get_weather" and tool["input_schema"] == WEATHER_TOOL["function"]["parameters"]
    history = [*HELLO,
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}]},
               {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}]
    answer = client.chat.completions.create(model="claude-fake", messages=history, tools=[WEATHER_TOOL])
    assert answer.choices[0].message.content == "The tool said: sunny"
    messages = claude_upstream.last().body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    (use,) = [b for b in messages[1]["content"] if b["type"] == "tool_use"]
    (result_block,) = [b for b in messages[2]["content"] if b["type"] == "tool_result"]
    assert result_block["tool_use_id"] == use["id"]


def test_an_overloaded_anthropic_upstream_is_an_openai_5xx(client):
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="claude-fake", messages=[{"role": "user", "content": "hi status=529"}])
    validate(caught.value.response.json(), "ErrorResponse")
    assert caught.value.status_code in (502, 503)
