"""The OpenAI Responses API (`POST /v1/responses`) through the gateway, with the official openai SDK
and raw SSE; every Response object and every stream event is validated against OpenAI's OpenAPI
schemas (`Response`, `ResponseStreamEvent`):

- translated to chat completions: `m` (the Swift fake upstream, answering its default "w1 … w8") and
  `m-capture` (the recording upstream, to see the chat request the gateway made, scripted by words
  in the last user message — tool_call, words=N, delay_ms=N, die_after=N — which survive the
  translation, as the Swift fake's `"fake"` body field need not);
- translated to Anthropic Messages: `claude-fake` (the fake Anthropic upstream, which records what it
  received), usage mapped with the cache tokens.

Switchyard stores no responses: `previous_response_id` / `conversation` / `background` are 400s,
`store` is accepted and answered `false`, `GET /v1/responses/{id}` knows only requests in flight.
"""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal

import openai
import pytest

from capture_upstream import CAPTURE_ARGUMENTS
from conftest import CLAUDE_UPSTREAM_MODEL
from fake_anthropic import API_KEY as UPSTREAM_KEY
from fake_anthropic import TOOL_INPUT
from openai_schema import validate
from sdk_helpers import (
    ERROR,
    RawStream,
    collect,
    raw_stream,
    validate_response,
    validate_response_event,
    words,
)
from test_accounts import new_account, sdk
from test_messages import CACHE_CREATION, CACHE_READ, CLAUDE_TEXT, claude_cost, ledger_row, text_of

HELLO = "hello there gateway"  # 3 words: the Swift fake's prompt tokens
CLAUDE_HELLO = "hello there claude"  # 3 words for the fake Anthropic upstream
CLAUDE_INPUT = 3 + CACHE_READ + CACHE_CREATION  # input_tokens include the cache tokens
FUNCTION_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": False,
}
CAPTURE_INPUT = json.loads(CAPTURE_ARGUMENTS)  # the capture upstream's scripted tool call
HELLO_TOOL = HELLO + " tool_call"
SLOW = "hello words=300 delay_ms=20"  # for m-capture: 300 words, 6 s
TERMINAL = {"response.completed", "response.incomplete", "response.failed"}


def create(client, **kwargs):
    """(parsed SDK Response, raw JSON) of a whole response, the JSON validated against `Response`."""
    raw = client.responses.with_raw_response.create(**kwargs)
    body = raw.http_response.json()
    validate_response(body)
    return raw.parse(), body


def message_text(response: dict) -> str:
    return "".join(part["text"] for item in response["output"] if item["type"] == "message"
                   for part in item["content"] if part["type"] == "output_text")


def items(response: dict, kind: str) -> list[dict]:
    return [item for item in response["output"] if item["type"] == kind]


def check_events(stream: RawStream, terminal: str = "response.completed") -> list[dict]:
    """A whole streamed response: SSE with `event:` names equal to each event's type, every event valid
    against ResponseStreamEvent, sequence_number strictly increasing from 0, one response id, one
    terminal event (`terminal`), last. Returns the events' data."""
    assert stream.status == 200, stream.text[:500]
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert not stream.stalled, "the response body did not end after the last event"
    assert not stream.cut, "the connection was cut instead of the response body ending"
    named = stream.events
    assert named, "no events"
    events = []
    for name, data in named:
        validate_response_event(data)
        assert name == data["type"], f"event: {name!r} carries a {data['type']!r}"
        events.append(data)
    numbers = [event["sequence_number"] for event in events]
    assert numbers[0] == 0, numbers
    assert all(later > earlier for earlier, later in zip(numbers, numbers[1:])), numbers
    types = [event["type"] for event in events]
    assert types[0] == "response.created", types
    assert events[0]["response"]["status"] in ("in_progress", "queued")
    assert [t for t in types if t in TERMINAL] == [terminal] and types[-1] == terminal, types
    ids = {event["response"]["id"] for event in events if "response" in event}
    assert len(ids) == 1 and ids.pop().startswith("resp_")
    added = {event["item"]["id"] for event in events if event["type"] == "response.output_item.added"}
    for event in events:
        if "item_id" in event:
            assert event["item_id"] in added, f"{event['type']} for an item never added: {event}"
    return events


def stream_text(events: list[dict]) -> str:
    return "".join(event["delta"] for event in events if event["type"] == "response.output_text.delta")


def responses_stream(http, body: dict, **options) -> RawStream:
    return raw_stream(http, "/responses", {**body, "stream": True}, **options)


def error_of(exc: openai.APIStatusError) -> dict:
    body = exc.response.json()
    validate(body, ERROR)
    return body["error"]


# --- translated to chat completions ---


def test_a_whole_text_response(client):
    response, body = create(client, model="m", input=HELLO)
    assert body["object"] == "response"
    assert response.id.startswith("resp_")
    assert response.status == "completed" and body["error"] is None and body["incomplete_details"] is None
    assert response.model == "m"
    assert response.output_text == words(8) == message_text(body)
    (message,) = body["output"]
    assert (message["type"], message["role"], message["status"]) == ("message", "assistant", "completed")
    usage = response.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (3, 8, 11)
    assert usage.input_tokens_details.cached_tokens == 0
    assert body["store"] is False


def test_each_response_gets_its_own_id(client):
    first, _ = create(client, model="m", input=HELLO)
    second, _ = create(client, model="m", input=HELLO)
    assert first.id != second.id


def test_instructions_become_the_system_message(client, capture):
    response, body = create(client, model="m", instructions="Answer in two words", input=HELLO)
    assert response.usage.input_tokens == 3 + 4  # the fake counts every message's words
    assert body["instructions"] == "Answer in two words"
    create(client, model="m-capture", instructions="Answer in two words", input=HELLO)
    sent = capture.last()
    assert sent.path == "/v1/chat/completions" and sent.body["model"] == "upstream-capture"
    first, *rest = sent.body["messages"]
    assert first["role"] in ("system", "developer") and text_of(first["content"]) == "Answer in two words"
    assert [(m["role"], text_of(m["content"])) for m in rest] == [("user", HELLO)]


def test_input_items_become_chat_messages(client, capture):
    create(client, model="m-capture", input=[
        {"role": "user", "content": "hello"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi there"}]},
        {"role": "user", "content": [{"type": "input_text", "text": "once"}, {"type": "input_text", "text": " more"}]},
    ])
    sent = capture.last().body
    assert [(m["role"], text_of(m["content"])) for m in sent["messages"]] == [
        ("user", "hello"), ("assistant", "hi there"), ("user", "once more")]


def test_a_streamed_text_response(http, client):
    events = check_events(responses_stream(http, {"model": "m", "input": HELLO}))
    assert stream_text(events) == words(8)
    done = [e for e in events if e["type"] == "response.output_text.done"]
    assert [e["text"] for e in done] == [words(8)]
    completed = events[-1]["response"]
    assert completed["status"] == "completed" and completed["model"] == "m"
    assert message_text(completed) == words(8)
    assert (completed["usage"]["input_tokens"], completed["usage"]["output_tokens"]) == (3, 8)
    assert completed["usage"]["total_tokens"] == 11
    types = [e["type"] for e in events]
    for kind in ("response.output_item.added", "response.content_part.added", "response.output_text.done",
                 "response.content_part.done", "response.output_item.done"):
        assert kind in types, types

    sdk_events = collect(client.responses.create(model="m", input=HELLO, stream=True))
    assert sdk_events[0].type == "response.created" and sdk_events[-1].type == "response.completed"
    assert sdk_events[-1].response.output_text == words(8)
    assert [e.sequence_number for e in sdk_events] == sorted({e.sequence_number for e in sdk_events})


def test_the_sdks_stream_helper_assembles_the_response(client):
    with client.responses.stream(model="m", input=HELLO) as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == words(8)
    assert final.output_text == words(8) and final.status == "completed"
    assert final.usage.output_tokens == 8


def test_function_tool_round_trip(client, capture):
    first, body = create(client, model="m-capture", input=HELLO_TOOL, tools=[FUNCTION_TOOL])
    assert first.status == "completed"
    (call,) = items(body, "function_call")
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == CAPTURE_INPUT
    assert call["call_id"] and call["status"] == "completed"
    follow_up = [{"role": "user", "content": HELLO_TOOL}, *[item.model_dump(exclude_none=True) for item in first.output],
                 {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}]
    second, _ = create(client, model="m-capture", input=follow_up, tools=[FUNCTION_TOOL])
    assert second.output_text == "captured"
    assert not [item for item in second.output if item.type == "function_call"]
    # The call_id went up as the chat tool call's id and came back as the tool message's.
    _, assistant, result = capture.last().body["messages"]
    (sent_call,) = assistant["tool_calls"]
    assert sent_call["id"] == result["tool_call_id"]
    assert json.loads(sent_call["function"]["arguments"]) == CAPTURE_INPUT and text_of(result["content"]) == "sunny"


def test_function_calls_and_outputs_reach_the_upstream_as_chat_messages(client, capture):
    create(client, model="m-capture", tools=[FUNCTION_TOOL], input=[
        {"role": "user", "content": HELLO},
        {"type": "function_call", "call_id": "call_abc", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call_output", "call_id": "call_abc", "output": "sunny"},
    ])
    sent = capture.last().body
    (tool,) = sent["tools"]
    assert tool["type"] == "function" and tool["function"]["name"] == "get_weather"
    assert tool["function"]["parameters"] == FUNCTION_TOOL["parameters"]
    assert tool["function"].get("description") == "Weather in a city"
    user, assistant, result = sent["messages"]
    assert (user["role"], text_of(user["content"])) == ("user", HELLO)
    assert assistant["role"] == "assistant"
    (call,) = assistant["tool_calls"]
    assert call["id"] == "call_abc" and call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert (result["role"], result["tool_call_id"], text_of(result["content"])) == ("tool", "call_abc", "sunny")


def test_a_streamed_function_call(http):
    events = check_events(responses_stream(http, {"model": "m-capture", "input": HELLO_TOOL, "tools": [FUNCTION_TOOL]}))
    added = [e["item"] for e in events if e["type"] == "response.output_item.added"]
    assert [item["type"] for item in added] == ["function_call"]
    assert added[0]["name"] == "get_weather" and added[0]["call_id"]
    arguments = "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta")
    assert json.loads(arguments) == CAPTURE_INPUT
    (done,) = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert json.loads(done["arguments"]) == CAPTURE_INPUT
    (call,) = items(events[-1]["response"], "function_call")
    assert call["call_id"] == added[0]["call_id"] and json.loads(call["arguments"]) == CAPTURE_INPUT


def test_max_output_tokens(client, capture, http):
    create(client, model="m-capture", input=HELLO, max_output_tokens=17)
    sent = capture.last().body
    assert sent.get("max_tokens", sent.get("max_completion_tokens")) == 17, sent
    response, body = create(client, model="m-capture", input="hello words=8", max_output_tokens=3)
    assert response.status == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response.output_text == words(3) and body["max_output_tokens"] == 3
    events = check_events(responses_stream(http, {"model": "m-capture", "input": "hello words=8", "max_output_tokens": 3}),
                          terminal="response.incomplete")
    last = events[-1]["response"]
    assert last["status"] == "incomplete" and last["incomplete_details"] == {"reason": "max_output_tokens"}
    assert stream_text(events) == words(3)


def test_a_json_schema_text_format_is_forwarded_as_response_format(client, capture):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}
    create(client, model="m-capture", input=HELLO,
           text={"format": {"type": "json_schema", "name": "weather", "schema": schema, "strict": True}})
    format_ = capture.last().body["response_format"]
    assert format_["type"] == "json_schema"
    assert {k: format_["json_schema"].get(k) for k in ("name", "schema", "strict")} == {
        "name": "weather", "schema": schema, "strict": True}
    create(client, model="m-capture", input=HELLO, text={"format": {"type": "json_object"}})
    assert capture.last().body["response_format"] == {"type": "json_object"}


def test_store_is_accepted_and_nothing_is_stored(client, http):
    response, body = create(client, model="m", input=HELLO, store=True)
    assert body["store"] is False and response.output_text == words(8)
    gone = http.get(f"/responses/{response.id}")
    assert gone.status_code == 404
    error = gone.json()["error"]
    validate(gone.json(), ERROR)
    assert error["code"] == "not_found" and "store" in error["message"]
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    assert http.post(f"/responses/{response.id}/cancel").status_code == 404


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("field, value", [("previous_response_id", "resp_123"), ("conversation", "conv_123")])
def test_stored_state_is_refused(client, field, value, stream):
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", input=HELLO, stream=stream, extra_body={field: value})
    error = error_of(caught.value)
    assert error["type"] == "invalid_request_error" and error["param"] == field
    assert "store" in error["message"] and "input" in error["message"], error


def test_background_is_refused(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", input=HELLO, background=True)
    assert error_of(caught.value)["type"] == "invalid_request_error"


def test_an_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="no-such-model", input=HELLO)
    assert error_of(caught.value)["code"] == "model_not_found"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_websocket_upgrade_is_426(http, method):
    response = http.request(method, "/responses", timeout=5, headers={
        "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13"})
    assert response.status_code == 426, response.text
    body = response.json()
    validate(body, ERROR)
    assert body["error"]["message"]


def test_an_upstream_failure_mid_stream_is_response_failed(http):
    stream = responses_stream(http, {"model": "m-capture", "input": "hello words=6 die_after=2"})
    events = check_events(stream, terminal="response.failed")
    failed = events[-1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"]["code"] and failed["error"]["message"]
    assert "w1 w2".startswith(stream_text(events))


def test_the_ledger_names_the_responses_api(stack, client):
    response, _ = create(client, model="m", input=HELLO)
    row = ledger_row(stack, stack.key, response.id)
    assert row["api"] == "responses" and row["model"] == "m"
    assert (row["usage"]["prompt_tokens"], row["usage"]["completion_tokens"]) == (3, 8)


# --- stopping ---


def test_a_response_in_flight_can_be_read_and_cancelled_by_id(client, http):
    stream = client.responses.create(model="m-capture", input=SLOW, stream=True)
    with stream:
        events = iter(stream)
        created = next(events)
        assert created.type == "response.created"
        response_id = created.response.id
        running = http.get(f"/responses/{response_id}")
        assert running.status_code == 200, running.text
        validate_response(running.json())
        assert running.json()["id"] == response_id and running.json()["status"] == "in_progress"
        cancelled = http.post(f"/responses/{response_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        validate_response(cancelled.json())
        assert cancelled.json()["id"] == response_id and cancelled.json()["status"] == "cancelled"
        rest = list(events)
    last = rest[-1]
    assert last.type == "response.incomplete"
    assert last.response.status == "cancelled"
    assert last.response.model_extra.get("end_reason") == "cancelled"
    assert "response.completed" not in [e.type for e in rest]
    assert http.get(f"/responses/{response_id}").status_code == 404
    assert http.post(f"/responses/{response_id}/cancel").status_code == 404


def test_suspend_ends_a_responses_stream_with_response_incomplete(stack, http):
    userid = "responses-stopper"
    base = stack.url.removesuffix("/v1")
    result: dict = {}

    def suspend():
        time.sleep(0.4)
        result["answer"] = http.get(f"{base}/llm_api/suspend_current_generate",
                                    params={"openid": stack.key, "userid": userid}).json()

    thread = threading.Thread(target=suspend)
    thread.start()
    stream = raw_stream(http, f"{base}/llm_api/{stack.key}/{userid}/m-capture/v1/responses",
                        {"model": "ignored", "input": SLOW, "stream": True})
    thread.join()
    assert result["answer"]["stopped"] == 1
    events = check_events(stream, terminal="response.incomplete")
    last = events[-1]["response"]
    assert last["status"] == "cancelled" and last.get("end_reason") == "cancelled"
    text = stream_text(events)
    assert 0 < len(text.split()) < 300 and words(300).startswith(text)
    if last.get("usage"):
        assert last["usage"]["output_tokens"] == len(text.split())


# --- translated to an Anthropic upstream ---


def test_a_whole_response_from_an_anthropic_upstream(stack, client, claude_upstream):
    response, body = create(client, model="claude-fake", input=CLAUDE_HELLO, max_output_tokens=50)
    assert response.status == "completed" and response.model == "claude-fake"
    assert response.output_text == CLAUDE_TEXT
    usage = body["usage"]
    assert usage["input_tokens"] == CLAUDE_INPUT
    assert usage["input_tokens_details"]["cached_tokens"] == CACHE_READ
    assert usage["output_tokens"] == 4 and usage["total_tokens"] == CLAUDE_INPUT + 4
    sent = claude_upstream.last()
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == UPSTREAM_KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"  # the provider's default
    assert stack.key not in json.dumps(sent.headers)
    assert sent.body["model"] == CLAUDE_UPSTREAM_MODEL and sent.body["max_tokens"] == 50
    assert [(m["role"], text_of(m["content"])) for m in sent.body["messages"]] == [("user", CLAUDE_HELLO)]
    assert "system" not in sent.body and not sent.body.get("stream")


def test_instructions_become_anthropics_system_prompt(client, claude_upstream):
    response, _ = create(client, model="claude-fake", input=CLAUDE_HELLO, instructions="Be brief")
    assert response.usage.input_tokens == CLAUDE_INPUT + 2
    sent = claude_upstream.last().body
    assert text_of(sent["system"]) == "Be brief"
    assert [m["role"] for m in sent["messages"]] == ["user"]
    assert isinstance(sent["max_tokens"], int) and sent["max_tokens"] >= 1  # Anthropic requires one


def test_a_streamed_response_from_an_anthropic_upstream_counts_usage_once(http, client, claude_upstream):
    events = check_events(responses_stream(http, {"model": "claude-fake", "input": CLAUDE_HELLO}))
    assert stream_text(events) == CLAUDE_TEXT
    completed = events[-1]["response"]
    assert message_text(completed) == CLAUDE_TEXT
    usage = completed["usage"]
    # message_start and message_delta both carry input and cache tokens, and output_tokens cumulatively.
    assert (usage["input_tokens"], usage["output_tokens"]) == (CLAUDE_INPUT, 4)
    assert usage["input_tokens_details"]["cached_tokens"] == CACHE_READ
    assert usage["total_tokens"] == CLAUDE_INPUT + 4
    assert claude_upstream.last().body["stream"] is True
    with client.responses.stream(model="claude-fake", input=CLAUDE_HELLO) as stream:
        final = stream.get_final_response()
    assert final.output_text == CLAUDE_TEXT and final.usage.input_tokens == CLAUDE_INPUT


def test_a_function_tool_round_trip_through_an_anthropic_upstream(client, claude_upstream):
    first, body = create(client, model="claude-fake", input=CLAUDE_HELLO, tools=[FUNCTION_TOOL])
    (call,) = items(body, "function_call")
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == TOOL_INPUT and call["call_id"]
    (tool,) = claude_upstream.last().body["tools"]
    assert tool["name"] == "get_weather" and tool["input_schema"] == FUNCTION_TOOL["parameters"]
    assert tool.get("description") == "Weather in a city"
    follow_up = [{"role": "user", "content": CLAUDE_HELLO}, *[item.model_dump(exclude_none=True) for item in first.output],
                 {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}]
    second, _ = create(client, model="claude-fake", input=follow_up, tools=[FUNCTION_TOOL])
    assert second.output_text == "The tool said: sunny"
    # The fake upstream checked that the tool_result answers the tool_use just before it.
    messages = claude_upstream.last().body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    (use,) = [b for b in messages[1]["content"] if b["type"] == "tool_use"]
    assert use["name"] == "get_weather" and use["input"] == TOOL_INPUT
    (result,) = [b for b in messages[2]["content"] if b["type"] == "tool_result"]
    assert result["tool_use_id"] == use["id"] and text_of(result["content"]) == "sunny"


def test_a_streamed_text_and_function_call_from_an_anthropic_upstream(http):
    events = check_events(responses_stream(http, {"model": "claude-fake", "input": "weather please preamble",
                                                  "tools": [FUNCTION_TOOL]}))
    added = [(e["output_index"], e["item"]["type"]) for e in events if e["type"] == "response.output_item.added"]
    assert added == [(0, "message"), (1, "function_call")]
    assert stream_text(events) == "Let me call get_weather."
    arguments = "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta")
    assert json.loads(arguments) == TOOL_INPUT
    completed = events[-1]["response"]
    assert [item["type"] for item in completed["output"]] == ["message", "function_call"]
    assert json.loads(completed["output"][1]["arguments"]) == TOOL_INPUT


def test_max_output_tokens_reaches_an_anthropic_upstream(client, claude_upstream):
    response, body = create(client, model="claude-fake", input=CLAUDE_HELLO, max_output_tokens=2)
    assert claude_upstream.last().body["max_tokens"] == 2
    assert response.status == "incomplete" and body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response.output_text == "Hello from"


def test_an_anthropic_upstream_failing_mid_stream_is_response_failed(http):
    events = check_events(responses_stream(http, {"model": "claude-fake", "input": "hi error_mid_stream"}),
                          terminal="response.failed")
    assert events[-1]["response"]["status"] == "failed" and events[-1]["response"]["error"]["message"]
    assert CLAUDE_TEXT.startswith(stream_text(events))


def test_an_overloaded_anthropic_upstream_is_an_openai_error(client):
    with pytest.raises(openai.APIStatusError) as caught:
        client.responses.create(model="claude-fake", input="hi status=529")
    assert caught.value.status_code in (502, 503, 529)
    assert error_of(caught.value)["message"]


def test_responses_through_an_anthropic_upstream_are_billed_with_the_cache_tokens(stack):
    key = new_account(stack, "1.00")
    with sdk(stack, key) as client:
        response, _ = create(client, model="claude-fake", input=CLAUDE_HELLO)
    row = ledger_row(stack, key, response.id)
    assert row["api"] == "responses" and row["model"] == "claude-fake"
    assert (row["usage"]["prompt_tokens"], row["usage"]["completion_tokens"]) == (CLAUDE_INPUT, 4)
    assert Decimal(row["cost"]) == claude_cost(CLAUDE_INPUT, 4) > 0
