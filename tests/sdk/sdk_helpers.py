"""Shared helpers: raw SSE reading, schema checks of SDK raw responses, stream accumulation."""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field

from openai_schema import validate
from raw_http import httpx

STREAM_DEADLINE_S = 30.0
MAX_BODY_BYTES = 65536  # server.max_body_bytes in the test config
# Between two reads of a raw stream; longer than any pause the fake upstream is scripted to make.
RAW_READ_TIMEOUT_S = 5.0

CHAT_RESPONSE = "CreateChatCompletionResponse"
CHAT_CHUNK = "CreateChatCompletionStreamResponse"
COMPLETION = "CreateCompletionResponse"
EMBEDDINGS = "CreateEmbeddingResponse"
MODELS = "ListModelsResponse"
ERROR = "ErrorResponse"
RESPONSE = "Response"  # the Responses API's response object
RESPONSE_EVENT = "ResponseStreamEvent"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
USER_HI = [{"role": "user", "content": "hello there gateway"}]


def fake(**directives) -> dict:
    """extra_body that scripts the fake upstream."""
    return {"fake": directives}


@dataclass
class RawStream:
    status: int
    headers: httpx.Headers
    text: str
    data: list[str] = field(default_factory=list)  # every `data:` payload, in order, "[DONE]" included
    stalled: bool = False  # nothing arrived for RAW_READ_TIMEOUT_S and the body had not ended
    cut: bool = False  # the server closed the connection before the body ended

    @property
    def chunks(self) -> list[dict]:
        return [json.loads(item) for item in self.data if item != "[DONE]"]

    @property
    def done(self) -> bool:
        return "[DONE]" in self.data

    @property
    def events(self) -> list[tuple[str | None, dict]]:
        """(`event:` name or None, parsed data) of every event but [DONE], for named-event streams
        (the Responses API, Anthropic's Messages)."""
        return [(name, json.loads(data)) for name, data in parse_sse_events(self.text) if data != "[DONE]"]


def parse_sse_events(text: str) -> list[tuple[str | None, str]]:
    """(`event:` name or None, data) of each event (multi-line data joined with newlines)."""
    events, name, current = [], None, []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line == "":
            if current:
                events.append((name, "\n".join(current)))
            name, current = None, []
        elif line.startswith("data:"):
            current.append(line[5:].removeprefix(" "))
        elif line.startswith("event:"):
            name = line[6:].strip()
    if current:
        events.append((name, "\n".join(current)))
    return events


def parse_sse(text: str) -> list[str]:
    """The data of each event (multi-line data joined with newlines)."""
    events, current = [], []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line == "":
            if current:
                events.append("\n".join(current))
                current = []
        elif line.startswith("data:"):
            current.append(line[5:].removeprefix(" "))
    if current:
        events.append("\n".join(current))
    return events


def raw_stream(http: httpx.Client, path: str, body: dict, deadline_s: float = STREAM_DEADLINE_S) -> RawStream:
    """POSTs body and reads the whole response as text, within deadline_s of wall-clock time."""
    started = time.monotonic()
    pieces: list[str] = []
    stalled = cut = False
    timeout = httpx.Timeout(20.0, read=RAW_READ_TIMEOUT_S)
    with http.stream("POST", path, json=body, timeout=timeout) as response:
        try:
            for piece in response.iter_text():
                pieces.append(piece)
                assert time.monotonic() - started < deadline_s, f"stream still going after {deadline_s}s"
        except httpx.ReadTimeout:
            stalled = True
        except (httpx.RemoteProtocolError, httpx.ReadError):
            cut = True  # a stream cut by the server is still inspected by the caller
        text = "".join(pieces)
        return RawStream(response.status_code, response.headers, text, parse_sse(text), stalled, cut)


def validate_chunks(stream: RawStream, schema: str) -> None:
    for chunk in stream.chunks:
        if "error" in chunk:
            validate(chunk, ERROR)
            continue
        if schema == COMPLETION:
            # OpenAI documents one schema for whole and streamed text completions, but its streams
            # (like every OpenAI-compatible server's) carry `finish_reason: null` until the last
            # chunk, which that schema does not allow: check those chunks as if finished.
            chunk = copy.deepcopy(chunk)
            for choice in chunk.get("choices") or []:
                if isinstance(choice, dict) and choice.get("finish_reason", "") is None:
                    choice["finish_reason"] = "stop"
        validate(chunk, schema)


def _as_documented(value: dict) -> dict:
    """OpenAI's own Responses API sends `"usage": null` (until the response ends) and `"user": null`,
    which its OpenAPI schema does not allow (`usage` is an object, `user` a string); drop those two
    nulls before validating, as validate_chunks does for the completion chunks' `finish_reason`."""
    value = copy.deepcopy(value)
    response = value.get("response") if isinstance(value.get("response"), dict) else value
    for name in ("usage", "user"):
        if name in response and response[name] is None:
            del response[name]
    return value


def validate_response(body: dict) -> None:
    """A Responses API response object, against the OpenAPI schema `Response`."""
    validate(_as_documented(body), RESPONSE)


def validate_response_event(event: dict) -> None:
    """One event of a streamed Responses API answer, against `ResponseStreamEvent`."""
    validate(_as_documented(event), RESPONSE_EVENT)


def assert_complete(stream: RawStream) -> None:
    """A finished stream: 200, SSE, last event [DONE], and the HTTP body really ended."""
    assert stream.status == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.data and stream.data[-1] == "[DONE]", f"stream does not end with [DONE]: {stream.text[-500:]!r}"
    assert not stream.stalled, f"the response body did not end after [DONE] (nothing for {RAW_READ_TIMEOUT_S}s)"
    assert not stream.cut, "the connection was cut instead of the response body ending"


def collect(stream, deadline_s: float = STREAM_DEADLINE_S) -> list:
    """Iterates an SDK Stream into a list, failing if it takes longer than deadline_s."""
    started, items = time.monotonic(), []
    with stream:
        for item in stream:
            items.append(item)
            assert time.monotonic() - started < deadline_s, f"stream still going after {deadline_s}s"
    return items


def accumulate_chat(chunks) -> dict:
    """Reassembles SDK chat chunks into {content, tool_calls, finish_reason, usage, roles}."""
    content, roles, finish, usage = "", [], None, None
    calls: dict[int, dict] = {}
    for chunk in chunks:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            delta = choice.delta
            if delta.role:
                roles.append(delta.role)
            if delta.content:
                content += delta.content
            for call in delta.tool_calls or []:
                slot = calls.setdefault(call.index, {"id": None, "name": "", "arguments": ""})
                if call.id:
                    slot["id"] = call.id
                if call.function and call.function.name:
                    slot["name"] += call.function.name
                if call.function and call.function.arguments:
                    slot["arguments"] += call.function.arguments
            if choice.finish_reason:
                finish = choice.finish_reason
    return {
        "content": content,
        "roles": roles,
        "tool_calls": [calls[i] for i in sorted(calls)],
        "finish_reason": finish,
        "usage": usage,
    }


def words(count: int) -> str:
    """The fake upstream's text for `count` completion tokens."""
    return " ".join(f"w{i}" for i in range(1, count + 1))
