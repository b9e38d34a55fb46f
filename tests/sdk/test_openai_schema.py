"""The schema checks themselves (openai_schema.py, sdk_helpers.validate_response*), on hand-made
objects and no gateway: Responses API objects that are valid pass, and each kind of mistake fails
with an error that points at it."""

from __future__ import annotations

import copy

import pytest

from openai_schema import errors_of, is_valid, validate
from sdk_helpers import RESPONSE, RESPONSE_EVENT, validate_response, validate_response_event

MESSAGE_ITEM = {
    "type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
    "content": [{"type": "output_text", "text": "w1 w2", "annotations": [], "logprobs": []}],
}
CALL_ITEM = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
             "arguments": '{"city":"Paris"}', "status": "completed"}
RESPONSE_OBJECT = {
    "id": "resp_1", "object": "response", "created_at": 1700000000, "status": "completed",
    "completed_at": 1700000001, "error": None, "incomplete_details": None, "instructions": None,
    "max_output_tokens": None, "model": "m", "output": [MESSAGE_ITEM, CALL_ITEM], "parallel_tool_calls": True,
    "previous_response_id": None, "store": False, "temperature": 1.0, "top_p": 1.0,
    "text": {"format": {"type": "text"}}, "tool_choice": "auto",
    "tools": [{"type": "function", "name": "get_weather", "description": "Weather", "strict": False,
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}],
    "truncation": "disabled", "metadata": {},
    "usage": {"input_tokens": 13, "input_tokens_details": {"cached_tokens": 7, "cache_write_tokens": 3},
              "output_tokens": 2, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 15},
}


def response(**changes) -> dict:
    return {**copy.deepcopy(RESPONSE_OBJECT), **changes}


def events() -> list[dict]:
    started = response(status="in_progress", output=[], usage=None, completed_at=None)
    listed = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
        {"type": "response.output_item.added", "output_index": 0,
         "item": {**MESSAGE_ITEM, "status": "in_progress", "content": []}},
        {"type": "response.content_part.added", "item_id": "msg_1", "output_index": 0, "content_index": 0,
         "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}},
        {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0,
         "delta": "w1", "logprobs": []},
        {"type": "response.output_text.done", "item_id": "msg_1", "output_index": 0, "content_index": 0,
         "text": "w1 w2", "logprobs": []},
        {"type": "response.content_part.done", "item_id": "msg_1", "output_index": 0, "content_index": 0,
         "part": MESSAGE_ITEM["content"][0]},
        {"type": "response.output_item.done", "output_index": 0, "item": MESSAGE_ITEM},
        {"type": "response.output_item.added", "output_index": 1, "item": {**CALL_ITEM, "arguments": "", "status": "in_progress"}},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 1, "delta": '{"city":'},
        {"type": "response.function_call_arguments.done", "item_id": "fc_1", "output_index": 1,
         "arguments": CALL_ITEM["arguments"], "name": "get_weather"},
        {"type": "response.completed", "response": response()},
        {"type": "response.incomplete", "response": response(status="incomplete",
                                                             incomplete_details={"reason": "max_output_tokens"})},
        {"type": "response.incomplete", "response": response(status="cancelled", end_reason="cancelled")},
        {"type": "response.failed", "response": response(status="failed",
                                                         error={"code": "server_error", "message": "upstream failed"})},
        {"type": "error", "code": "server_error", "message": "upstream failed", "param": None},
    ]
    for number, event in enumerate(listed):
        event["sequence_number"] = number
    return listed


def test_valid_response_objects_pass():
    validate(response(), RESPONSE)
    validate(response(output=[], tools=[], status="in_progress"), RESPONSE)
    validate(response(status="cancelled", end_reason="cancelled"), RESPONSE)  # an extra field is allowed
    validate_response(response(usage=None, user=None))  # OpenAI's own nulls, see sdk_helpers._as_documented


@pytest.mark.parametrize("event", events(), ids=lambda event: event["type"])
def test_valid_stream_events_pass(event):
    validate_response_event(event)
    if event["type"] not in ("response.created", "response.in_progress"):  # these carry "usage": null
        validate(event, RESPONSE_EVENT)


def broken(path: list, value=None, delete: bool = False) -> dict:
    body = response()
    target = body
    for part in path[:-1]:
        target = target[part]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


@pytest.mark.parametrize(
    "body, where, needle",
    [
        (broken(["status"], "done"), "/status", "is not one of"),
        (broken(["object"], "chat.completion"), "/object", "is not one of"),
        (broken(["id"], delete=True), "/", "'id' is a required property"),
        (broken(["output", 0, "content", 0, "logprobs"], delete=True), "/output/0/content/0", "'logprobs'"),
        (broken(["output", 0, "content", 0, "text"], 5), "/output/0/content/0/text", "is not of type 'string'"),
        (broken(["output", 1, "call_id"], delete=True), "/output/1", "'call_id' is a required property"),
        (broken(["output", 1, "type"], "function_call_result"), "/output/1", "is not valid under any"),
        (broken(["usage", "input_tokens_details", "cached_tokens"], delete=True), "/usage/input_tokens_details",
         "'cached_tokens'"),
        (broken(["usage", "output_tokens"], "2"), "/usage/output_tokens", "is not of type 'integer'"),
        (broken(["usage"], None), "/usage", "is not of type 'object'"),
        (broken(["incomplete_details"], {"reason": "cancelled"}), "/incomplete_details", ""),
    ],
    ids=["status", "object", "no-id", "no-logprobs", "text-int", "no-call-id", "unknown-item", "no-cached-tokens",
         "tokens-string", "usage-null", "incomplete-reason"],
)
def test_invalid_response_objects_fail_where_they_are_wrong(body, where, needle):
    assert not is_valid(body, RESPONSE)
    errors = errors_of(body, RESPONSE)
    places = ["/" + "/".join(map(str, e.absolute_path)) for e in errors]
    assert where in places, places
    message = next(e.message for e, place in zip(errors, places) if place == where)
    assert needle in message, message
    with pytest.raises(AssertionError, match="does not match OpenAI schema Response"):
        validate(body, RESPONSE)


def event_of(kind: str) -> dict:
    return copy.deepcopy(next(event for event in events() if event["type"] == kind))


@pytest.mark.parametrize(
    "kind, change, where",
    [
        ("response.output_text.delta", lambda e: e.pop("sequence_number"), "/"),
        ("response.output_text.delta", lambda e: e.pop("logprobs"), "/"),
        ("response.output_text.delta", lambda e: e.update(delta=None), "/delta"),
        ("response.output_text.delta", lambda e: e.update(output_index="0"), "/output_index"),
        ("response.function_call_arguments.done", lambda e: e.pop("arguments"), "/"),
        ("response.completed", lambda e: e["response"].update(status="complete"), "/response/status"),
        ("response.output_item.added", lambda e: e["item"].update(role="user"), "/item/role"),
        ("response.created", lambda e: e["response"].pop("output"), "/response"),
        ("response.failed", lambda e: e["response"].update(error={"message": 3}), "/response/error"),
    ],
    ids=["no-sequence-number", "no-logprobs", "delta-null", "index-string", "no-arguments", "bad-status",
         "item-role", "no-output", "bad-error"],
)
def test_invalid_stream_events_fail_at_the_field(kind, change, where):
    event = event_of(kind)
    change(event)
    assert not is_valid(event, RESPONSE_EVENT)
    places = ["/" + "/".join(map(str, e.absolute_path)) for e in errors_of(event, RESPONSE_EVENT)]
    assert any(place == where or place.startswith(where + "/") or where == "/" for place in places), places
    # Narrowed to the branch the event's type names: a handful of errors, not one per event type.
    assert len(places) <= 5, places


def test_an_unknown_event_type_fails():
    assert not is_valid({"type": "response.output_text.delta.extra", "sequence_number": 0}, RESPONSE_EVENT)
    assert not is_valid({"sequence_number": 0}, RESPONSE_EVENT)
