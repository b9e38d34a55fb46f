"""Non-streaming chat and text completions through the gateway, via the openai SDK."""

from __future__ import annotations

import json

import pytest

from openai_schema import validate
from sdk_helpers import CHAT_RESPONSE, COMPLETION, USER_HI, WEATHER_TOOL, fake, words


def create_chat(client, **kwargs):
    """Returns (parsed SDK object, raw JSON body) after validating the body against OpenAI's schema."""
    raw = client.chat.completions.with_raw_response.create(**kwargs)
    body = raw.http_response.json()
    validate(body, CHAT_RESPONSE)
    return raw.parse(), body


def test_chat_completion_relays_text_usage_and_gateway_identity(client):
    completion, body = create_chat(client, model="m", messages=USER_HI, extra_body=fake(tokens=5))

    assert completion.object == "chat.completion"
    assert completion.model == "m"
    assert completion.id.startswith("chatcmpl-")
    assert not completion.id.startswith("chatcmpl-fake"), "the upstream's id leaked through"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == words(5)
    assert choice.finish_reason == "stop"
    # prompt tokens = words in the messages ("hello there gateway")
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (3, 5, 8)
    assert body["model"] == "m"


def test_each_response_gets_its_own_id(client):
    first, _ = create_chat(client, model="m", messages=USER_HI)
    second, _ = create_chat(client, model="m", messages=USER_HI)
    assert first.id != second.id


def test_alias_answers_with_the_canonical_model_name(client):
    completion, _ = create_chat(client, model="m-alias", messages=USER_HI, extra_body=fake(tokens=2))
    assert completion.model == "m"
    assert completion.choices[0].message.content == words(2)


def test_tool_call_is_relayed(client):
    completion, _ = create_chat(
        client, model="m", messages=USER_HI, tools=[WEATHER_TOOL], extra_body=fake(tool_call=True)
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls and len(calls) == 1
    assert calls[0].type == "function"
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"x": 1, "y": "two"}
    assert calls[0].id


def test_upstream_that_cannot_stream_serves_plain_requests(client):
    completion, _ = create_chat(client, model="m-nostream", messages=USER_HI, extra_body=fake(tokens=4))
    assert completion.model == "m-nostream"
    assert completion.choices[0].message.content == words(4)
    assert completion.usage.completion_tokens == 4


def test_stream_only_upstream_is_assembled_into_one_completion(client):
    completion, body = create_chat(client, model="m-always", messages=USER_HI, extra_body=fake(tokens=7))
    assert body["object"] == "chat.completion"
    assert completion.model == "m-always"
    assert completion.id.startswith("chatcmpl-") and not completion.id.startswith("chatcmpl-fake")
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == words(7)
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (3, 7, 10)


def test_stream_only_upstream_assembles_tool_calls(client):
    completion, _ = create_chat(
        client, model="m-always", messages=USER_HI, tools=[WEATHER_TOOL], extra_body=fake(tool_call=True)
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert [call.function.name for call in choice.message.tool_calls] == ["get_weather"]
    assert json.loads(choice.message.tool_calls[0].function.arguments) == {"x": 1, "y": "two"}
    assert completion.usage is not None and completion.usage.completion_tokens > 0


def test_demo_model_answers_without_upstream(client):
    completion, _ = create_chat(client, model="demo", messages=USER_HI)
    assert completion.model == "demo"
    assert completion.choices[0].message.content.startswith("This is Switchyard's built-in test model")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens == 12


def test_demo_model_honours_max_tokens(client):
    completion, _ = create_chat(client, model="demo", messages=USER_HI, max_tokens=3)
    assert completion.choices[0].message.content == "This is Switchyard's"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 3


def test_text_completion_is_relayed(client):
    raw = client.completions.with_raw_response.create(model="m", prompt="say three words", extra_body=fake(tokens=3))
    validate(raw.http_response.json(), COMPLETION)
    completion = raw.parse()
    assert completion.object == "text_completion"
    assert completion.model == "m"
    assert completion.id.startswith("cmpl-") and not completion.id.startswith("cmpl-fake")
    assert completion.choices[0].text == words(3)
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (3, 3)


def test_demo_text_completion(client):
    raw = client.completions.with_raw_response.create(model="demo", prompt="hi", max_tokens=2)
    validate(raw.http_response.json(), COMPLETION)
    completion = raw.parse()
    assert completion.model == "demo"
    assert completion.choices[0].text == "This is"
    assert completion.choices[0].finish_reason == "length"


# --- what reaches the upstream (recorded by the Python capture upstream) ---


def test_body_is_forwarded_verbatim_except_model(client, capture):
    vendor = {"nested": {"list": [1, 2.5, None, True], "text": "é ✓"}}
    completion, _ = create_chat(
        client,
        model="m-capture",
        messages=USER_HI,
        temperature=0.25,
        max_tokens=17,
        seed=42,
        user="user-1",
        stop=["\n\n"],
        extra_body={"vendor_field": vendor, "top_k": 3},
    )
    assert completion.choices[0].message.content == "captured"
    sent = capture.last()
    assert sent.path == "/v1/chat/completions"
    assert sent.body["model"] == "upstream-capture"
    assert sent.body["messages"] == USER_HI
    for key, value in {"temperature": 0.25, "max_tokens": 17, "seed": 42, "user": "user-1", "stop": ["\n\n"],
                       "vendor_field": vendor, "top_k": 3}.items():
        assert sent.body.get(key) == value, key
    assert not sent.body.get("stream")


def test_upstream_gets_the_provider_key_not_the_clients(client, capture):
    create_chat(client, model="m-capture", messages=USER_HI)
    authorization = capture.last().headers.get("authorization", "")
    assert "sk-test" not in authorization
    assert authorization == "Bearer upstream-secret"


def test_streaming_requests_ask_the_upstream_for_usage(client, capture):
    with client.chat.completions.create(model="m-capture", messages=USER_HI, stream=True) as stream:
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "captured"
    sent = capture.last().body
    assert sent["stream"] is True
    assert sent["model"] == "upstream-capture"
    assert sent.get("stream_options", {}).get("include_usage") is True


@pytest.mark.parametrize("include_usage", [True, False])
def test_usage_chunk_shown_only_if_the_client_asked(client, capture, include_usage):
    with client.chat.completions.create(
        model="m-capture", messages=USER_HI, stream=True, stream_options={"include_usage": include_usage}
    ) as stream:
        chunks = list(stream)
    assert capture.last().body["stream_options"]["include_usage"] is True
    assert any(chunk.usage is not None for chunk in chunks) is include_usage
