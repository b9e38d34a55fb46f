"""A recording fake LLM server (Python stdlib only) for the coding-agent tests.

It speaks just enough of three APIs for an agent to finish one turn, and records every request
(method, path, query, headers, JSON body) in memory and, when asked, as JSON lines in a file:

- `POST /v1/responses`: the OpenAI Responses API; an SSE stream (`response.created` …
  `response.output_text.delta` … `response.completed`, each event with `sequence_number`) when the
  body says `"stream": true`, else one Response object. The answer is the text REPLY.
- `POST /v1/messages` (any query string, e.g. `?beta=true`): the Anthropic Messages API; an SSE
  stream (message_start, content_block_start, ping, content_block_delta text_delta,
  content_block_stop, message_delta with stop_reason end_turn and usage, message_stop) or one
  Message object.
- `POST /v1/messages/count_tokens`: `{"input_tokens": 10}`.
- `POST /v1/chat/completions`: a chat completion, streamed or not (so it can stand in for an
  OpenAI chat upstream too).
- a WebSocket upgrade (any method with `Upgrade: websocket`): 426 with an OpenAI error JSON.
- anything else: 404 with an OpenAI error JSON.

Each handled path prefix can be told to fail its first N requests with a status (`--fail
/v1/responses=429:1`), to see whether a client retries or falls back.

As a script:  python3 recorder.py [--port 0] [--log requests.jsonl] [--reply OK] [--fail PATH=STATUS:N]
prints `recorder listening on http://127.0.0.1:PORT` once it listens. In a test: `Recorder(...)`,
`.url`, `.requests`, `.close()`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import threading
import time
import uuid
import zlib
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    seq: int
    time: float
    method: str
    path: str  # without the query
    query: str  # raw query string, "" when none
    headers: dict[str, str]  # names lower-cased; repeated headers joined with ", "
    body: object | None  # the parsed JSON body, else None
    raw_body: str | None = None  # the body as text when it was not JSON (or not decodable)
    status: int = 0  # what the recorder answered
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _usage_responses(input_tokens: int, output_tokens: int) -> dict:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def _openai_error(message: str, type_: str = "invalid_request_error", code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _anthropic_error(status: int, message: str) -> dict:
    kinds = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
             404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error"}
    return {"type": "error", "error": {"type": kinds.get(status, "api_error"), "message": message}}


@dataclass
class Recorder:
    port: int = 0
    reply: str = "OK"
    log_path: str | None = None
    # path prefix -> [status, remaining count]
    fail: dict[str, list[int]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    websocket_status: int = 426  # the answer to a WebSocket upgrade
    # tool name -> arguments: the first request offering that tool is answered with a call of it
    # (Responses: a function_call item, arguments a JSON string; Messages: a tool_use block, input an
    # object), to see what the agent sends back with the tool's result.
    tool_call_once: dict[str, object] = field(default_factory=dict)
    # SSE event names left out of every stream (to see which ones a client needs)
    omit_events: set[str] = field(default_factory=set)
    # how a Responses stream ends: response.completed, response.incomplete (status "cancelled", as
    # Switchyard ends a stopped stream) or response.failed (status "failed" with an error object)
    responses_terminal: str = "response.completed"
    # JSON as OpenAI and Anthropic write it (no spaces); False writes `{"type": "…"}` as Python's
    # json.dumps does by default (and so do some Python servers)
    compact_json: bool = True

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._seq = 0
        owner = self

        class Handler(_Handler):
            recorder = owner

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="recorder", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT (no /v1)."""
        return f"http://127.0.0.1:{self.port}"

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _record(self, entry: Recorded) -> None:
        with self._lock:
            self._seq += 1
            entry.seq = self._seq
            self.requests.append(entry)
            if self.log_path:
                with open(self.log_path, "a", encoding="utf-8") as log:
                    log.write(json.dumps(entry.as_dict()) + "\n")

    def _take_tool_call(self, body: dict) -> tuple[str, object, str | None] | None:
        """(name, arguments, namespace) when the request offers a tool still to be called once."""
        offered: dict[str, str | None] = {}
        for tool in body.get("tools") or []:
            if isinstance(tool, dict):
                offered.setdefault(tool.get("name"), None)
                for inner in tool.get("tools") or []:  # a Responses `namespace` tool's members
                    if isinstance(inner, dict):
                        offered.setdefault(inner.get("name"), tool.get("name"))
        with self._lock:
            for name in list(self.tool_call_once):
                if name in offered:
                    return name, self.tool_call_once.pop(name), offered[name]
        return None

    def _scripted_failure(self, path: str) -> int | None:
        with self._lock:
            for prefix, plan in self.fail.items():
                if path.startswith(prefix) and plan[1] > 0:
                    plan[1] -= 1
                    return plan[0]
        return None


class _Handler(BaseHTTPRequestHandler):
    recorder: Recorder
    protocol_version = "HTTP/1.1"
    server_version = "recorder/1"

    def log_message(self, *args) -> None:  # quiet
        pass

    # Every method goes through one place.
    def do_GET(self) -> None: self._handle()
    def do_POST(self) -> None: self._handle()
    def do_PUT(self) -> None: self._handle()
    def do_PATCH(self) -> None: self._handle()
    def do_DELETE(self) -> None: self._handle()
    def do_HEAD(self) -> None: self._handle()
    def do_OPTIONS(self) -> None: self._handle()

    # -- reading -------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        split = urlsplit(self.path)
        path, query = split.path, split.query
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        raw = self._read_body()
        encoding = headers.get("content-encoding", "").lower()
        note = ""
        try:
            if encoding == "gzip":
                raw = gzip.decompress(raw)
            elif encoding == "deflate":
                raw = zlib.decompress(raw)
            elif encoding:
                note = f"body in content-encoding {encoding!r}, not decoded"
        except Exception as error:  # noqa: BLE001 - record whatever came
            note = f"could not decode {encoding}: {error}"
        body, raw_text = None, None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                raw_text = raw.decode("utf-8", errors="replace")[:20000]
        entry = Recorded(0, time.time(), self.command, path, query, headers, body, raw_text, note=note)
        try:
            entry.status = self._route(entry)
        finally:
            self.recorder._record(entry)

    # -- routing -------------------------------------------------------------------------------

    def _route(self, entry: Recorded) -> int:
        path, body = entry.path, entry.body if isinstance(entry.body, dict) else {}
        if "websocket" in entry.headers.get("upgrade", "").lower():
            entry.note = "websocket upgrade refused"
            return self._json(self.recorder.websocket_status, _openai_error("WebSocket is not supported here; use HTTP.", code="websocket_unsupported"))
        failure = self.recorder._scripted_failure(path)
        if failure is not None:
            entry.note = f"scripted failure {failure}"
            if path.startswith("/v1/messages"):
                return self._json(failure, _anthropic_error(failure, "scripted failure"), retry_after="0")
            return self._json(failure, _openai_error("scripted failure", "server_error" if failure >= 500 else "invalid_request_error"), retry_after="0")
        if entry.method == "POST" and path in ("/v1/responses", "/responses"):
            return self._responses(body)
        if entry.method == "POST" and path in ("/v1/messages/count_tokens", "/messages/count_tokens"):
            return self._json(200, {"input_tokens": 10})
        if entry.method == "POST" and path in ("/v1/messages", "/messages"):
            return self._messages(body)
        if entry.method == "POST" and path in ("/v1/chat/completions", "/chat/completions"):
            return self._chat(body)
        if entry.method == "HEAD":
            return self._json(404, {}, head=True)
        if path.startswith("/v1/messages"):
            return self._json(404, _anthropic_error(404, f"Unknown route {entry.method} {path}"))
        return self._json(404, _openai_error(f"Unknown route {entry.method} {path}", code="unknown_url"))

    # -- writing -------------------------------------------------------------------------------

    def _json(self, status: int, payload: dict, retry_after: str | None = None, head: bool = False) -> int:
        data = self._dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.end_headers()
        if not head:
            self.wfile.write(data)
        return status

    def _dumps(self, payload: object) -> str:
        return json.dumps(payload, separators=(",", ":") if self.recorder.compact_json else None)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _event(self, name: str | None, payload: dict | str) -> None:
        if name in self.recorder.omit_events:
            return
        text = payload if isinstance(payload, str) else self._dumps(payload)
        self._chunk(((f"event: {name}\n" if name else "") + f"data: {text}\n\n").encode())

    def _end_stream(self) -> None:
        self._chunk(b"")

    # -- OpenAI Responses ----------------------------------------------------------------------

    def _responses(self, body: dict) -> int:
        reply, model = self.recorder.reply, body.get("model") or "recorder-model"
        rid, mid = "resp_" + uuid.uuid4().hex, "msg_" + uuid.uuid4().hex
        created = int(time.time())

        def response(status: str, output: list, usage: dict | None) -> dict:
            return {
                "id": rid, "object": "response", "created_at": created, "status": status,
                "background": False, "error": None, "incomplete_details": None,
                "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
                "model": model, "output": output, "parallel_tool_calls": body.get("parallel_tool_calls", True),
                "previous_response_id": None, "reasoning": {"effort": None, "summary": None},
                "store": False, "temperature": 1.0, "text": {"format": {"type": "text"}},
                "tool_choice": body.get("tool_choice", "auto"), "tools": [], "top_p": 1.0,
                "truncation": "disabled", "usage": usage, "user": None, "metadata": {},
            }

        text_part = {"type": "output_text", "text": reply, "annotations": [], "logprobs": []}
        message = {"id": mid, "type": "message", "status": "completed", "role": "assistant", "content": [text_part]}
        usage = _usage_responses(10, 1)
        call = self.recorder._take_tool_call(body)
        if call is not None:
            name, arguments, namespace = call
            arguments = arguments if isinstance(arguments, str) else json.dumps(arguments)
            item = {"id": "fc_" + uuid.uuid4().hex, "type": "function_call", "status": "completed",
                    "call_id": "call_" + uuid.uuid4().hex[:24], "name": name, "arguments": arguments}
            if namespace:
                item["namespace"] = namespace
            if not body.get("stream"):
                return self._json(200, response("completed", [item], usage))
        if not body.get("stream"):
            return self._json(200, response("completed", [message], usage))
        self._start_stream()
        seq = iter(range(10**9))

        def emit(kind: str, **fields) -> None:
            self._event(kind, {"type": kind, "sequence_number": next(seq), **fields})

        emit("response.created", response=response("in_progress", [], None))
        emit("response.in_progress", response=response("in_progress", [], None))
        if call is not None:
            emit("response.output_item.added", output_index=0, item=dict(item, status="in_progress", arguments=""))
            emit("response.function_call_arguments.delta", item_id=item["id"], output_index=0, delta=item["arguments"])
            emit("response.function_call_arguments.done", item_id=item["id"], output_index=0, arguments=item["arguments"])
            emit("response.output_item.done", output_index=0, item=item)
            emit("response.completed", response=response("completed", [item], usage))
            self._end_stream()
            return 200
        emit("response.output_item.added", output_index=0,
             item={"id": mid, "type": "message", "status": "in_progress", "role": "assistant", "content": []})
        emit("response.content_part.added", item_id=mid, output_index=0, content_index=0,
             part={"type": "output_text", "text": "", "annotations": [], "logprobs": []})
        emit("response.output_text.delta", item_id=mid, output_index=0, content_index=0, delta=reply, logprobs=[])
        emit("response.output_text.done", item_id=mid, output_index=0, content_index=0, text=reply, logprobs=[])
        emit("response.content_part.done", item_id=mid, output_index=0, content_index=0, part=text_part)
        emit("response.output_item.done", output_index=0, item=message)
        terminal = self.recorder.responses_terminal
        if terminal == "response.failed":
            failed = response("failed", [message], usage)
            failed["error"] = {"code": "server_error", "message": "upstream failed mid-stream"}
            emit(terminal, response=failed)
        elif terminal == "response.incomplete":
            cancelled = response("cancelled", [message], usage)
            cancelled["incomplete_details"] = {"reason": "cancelled"}
            cancelled["end_reason"] = "cancelled"
            emit(terminal, response=cancelled)
        else:
            emit("response.completed", response=response("completed", [message], usage))
        self._end_stream()
        return 200

    # -- Anthropic Messages --------------------------------------------------------------------

    def _messages(self, body: dict) -> int:
        reply, model = self.recorder.reply, body.get("model") or "recorder-model"
        mid = "msg_" + uuid.uuid4().hex[:24]
        usage = {"input_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1}
        call = self.recorder._take_tool_call(body)
        stop = "end_turn" if call is None else "tool_use"
        block: dict = {"type": "text", "text": reply}
        if call is not None:
            block = {"type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:24], "name": call[0],
                     "input": call[1] if isinstance(call[1], dict) else json.loads(call[1])}
        if not body.get("stream"):
            return self._json(200, {
                "id": mid, "type": "message", "role": "assistant", "model": model,
                "content": [block], "stop_reason": stop, "stop_sequence": None, "usage": usage,
            })
        self._start_stream()

        def emit(kind: str, **fields) -> None:
            self._event(kind, {"type": kind, **fields})

        emit("message_start", message={
            "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": dict(usage, output_tokens=1),
        })
        if call is None:
            emit("content_block_start", index=0, content_block={"type": "text", "text": ""})
            emit("ping")
            emit("content_block_delta", index=0, delta={"type": "text_delta", "text": reply})
        else:
            emit("content_block_start", index=0, content_block=dict(block, input={}))
            emit("ping")
            emit("content_block_delta", index=0, delta={"type": "input_json_delta", "partial_json": json.dumps(block["input"])})
        emit("content_block_stop", index=0)
        emit("message_delta", delta={"stop_reason": stop, "stop_sequence": None},
             usage={"input_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1})
        emit("message_stop")
        self._end_stream()
        return 200

    # -- OpenAI chat completions ---------------------------------------------------------------

    def _chat(self, body: dict) -> int:
        reply, model = self.recorder.reply, body.get("model") or "recorder-model"
        base = {"id": "chatcmpl-recorder", "created": int(time.time()), "model": model}
        usage = {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}
        if not body.get("stream"):
            return self._json(200, dict(base, object="chat.completion", usage=usage, choices=[
                {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}]))
        self._start_stream()
        chunk = dict(base, object="chat.completion.chunk")
        self._event(None, dict(chunk, choices=[{"index": 0, "delta": {"role": "assistant", "content": reply}, "finish_reason": None}]))
        self._event(None, dict(chunk, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]))
        if (body.get("stream_options") or {}).get("include_usage"):
            self._event(None, dict(chunk, choices=[], usage=usage))
        self._event(None, "[DONE]")
        self._end_stream()
        return 200


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", help="append each request as a JSON line to this file")
    parser.add_argument("--reply", default="OK")
    parser.add_argument("--websocket-status", type=int, default=426, help="the answer to a WebSocket upgrade")
    parser.add_argument("--tool-call", action="append", default=[], metavar="NAME=JSON",
                        help="answer the first request offering tool NAME with a call of it, arguments JSON")
    parser.add_argument("--omit-event", action="append", default=[], metavar="NAME", help="leave this SSE event out")
    parser.add_argument("--responses-terminal", default="response.completed",
                        choices=["response.completed", "response.incomplete", "response.failed"])
    parser.add_argument("--spaced-json", action="store_true", help='write JSON as {"a": 1}, not {"a":1}')
    parser.add_argument("--fail", action="append", default=[], metavar="PATH=STATUS:N",
                        help="answer the first N requests under PATH with STATUS")
    args = parser.parse_args(argv)
    fail = {}
    for spec in args.fail:
        prefix, _, plan = spec.partition("=")
        status, _, count = plan.partition(":")
        fail[prefix] = [int(status), int(count or 1)]
    recorder = Recorder(port=args.port, reply=args.reply, log_path=args.log, fail=fail,
                        websocket_status=args.websocket_status, omit_events=set(args.omit_event),
                        responses_terminal=args.responses_terminal, compact_json=not args.spaced_json,
                        tool_call_once={n: json.loads(j) for n, _, j in (t.partition("=") for t in args.tool_call)})
    print(f"recorder listening on {recorder.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        recorder.close()


if __name__ == "__main__":
    sys.exit(main())
