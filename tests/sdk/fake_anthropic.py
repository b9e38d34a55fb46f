"""A fake Anthropic Messages API upstream (Python standard library only) that records every request.

    with FakeAnthropic() as upstream:          # binds 127.0.0.1 on a free port
        upstream.base_url                      # http://127.0.0.1:PORT/v1 (a provider's base_url)
        ...                                    # point the gateway (or the anthropic SDK) at it
        upstream.last().body                   # what it received, parsed

It serves `POST /v1/messages` (whole or streamed) and `POST /v1/messages/count_tokens`, and answers
exactly in the shapes of Anthropic's API: a message object (`msg_…`, content blocks, stop_reason,
stop_sequence, usage with cache tokens), errors as `{"type":"error","error":{"type","message"},
"request_id"}` with a `request-id` header, and streams as named SSE events (`event:` + `data:`
lines, chunked) in Anthropic's order: message_start, content_block_start, ping,
content_block_delta…, content_block_stop, message_delta, message_stop.

Checks, as the real API makes them (the gateway must send what Anthropic accepts):
- `x-api-key` must equal `api_key` (401 authentication_error otherwise; `Authorization: Bearer` is
  accepted only with `accept_bearer=True`), and an `anthropic-version` header must be present (400);
- the body: `model`, `max_tokens` (integer >= 1) and non-empty `messages` are required; roles are
  `user` / `assistant` / `system` (mid-conversation system turns, as Claude Code sends them; a `tool`
  role is a 400); contents are non-empty (except a final assistant message); text blocks are non-empty;
  every `tool_result` answers a `tool_use` of the assistant message just before it, and every
  `tool_use` is answered in the next message; with `strict=True` (default) an unknown top-level field
  is a 400 "Extra inputs are not permitted", so vendor fields leaking through a translation show up.

What it answers (deterministic):
- input_tokens: the words (whitespace-separated) of `system` and of every text, string content and
  tool_result content in `messages`, at least 1; `count_tokens` answers the same number;
- cache tokens: `cache_read_input_tokens` / `cache_creation_input_tokens` are the constructor's
  `cache_read` / `cache_creation` (7 and 3 by default), or the directives below;
- with `tools` (and `tool_choice` not `none`) and the last user message carrying no `tool_result`:
  one `tool_use` block (id `toolu_…`, name = the first tool's name, input = TOOL_INPUT),
  stop_reason `tool_use`, output_tokens TOOL_OUTPUT_TOKENS; streamed as input_json_delta pieces
  (the first one empty, as Anthropic sends it);
- after a tool_result: the text "The tool said: CONTENT" (CONTENT = the tool_result's text);
- otherwise: `answer_text(words)`, "Hello from fake Claude." then "w5 w6 …", one output token a word;
- `max_tokens` cuts the text to that many words (stop_reason `max_tokens`); a `stop_sequences`
  entry found in the text cuts it just before (stop_reason `stop_sequence`, `stop_sequence` set);
- a stream's message_start carries input and cache tokens and output_tokens 1; its message_delta
  carries the CUMULATIVE output_tokens and, with `delta_repeats_input=True` (default, as newer API
  versions do), input_tokens and the cache tokens again: a client that sums them counts twice.

Directives, words in the text of the LAST user message (so they survive any translation):
    status=NNN           answer that HTTP status with Anthropic's error body for it (529 overloaded_error)
    retry_after=N        with status=: a retry-after header
    error_mid_stream     streamed: `event: error` overloaded_error after error_after deltas (default 2),
                         then the body ends; not streamed: a 529 overloaded_error
    error_after=N        deltas before that error event
    die_after=N          streamed: the connection is cut (no terminating chunk) after N deltas
    hang_up              the connection is closed without any answer
    slow                 200 words, slow_delay_s (0.05 s) between deltas, so a test can stop it
    words=N              the text answer has N words
    delay_ms=N           pause between streamed deltas (default: delta_delay_s, 0.01 s)
    first_byte_delay_ms=N  pause before the answer's first byte
    preamble             a tool_use answer starts with a text block ("Let me call NAME.")
    cache_read=N, cache_creation=N   this answer's cache tokens

Every request is recorded (`requests`, `last()`): method, path, headers with lower-cased names,
parsed JSON body, and for streams how many events were sent, whether the stream completed, and
`disconnected_at` (time.monotonic()) when the client closed the connection before the end —
`wait_disconnected()` waits for that. Pauses watch the socket, so a close is seen within
milliseconds even in the middle of a `slow` stream.

Run alone: `python3 tests/sdk/fake_anthropic.py [--port N] [--api-key KEY]`.
"""

from __future__ import annotations

import json
import re
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_KEY = "sk-ant-test"
TOOL_INPUT = {"city": "Paris", "unit": "celsius"}
TOOL_OUTPUT_TOKENS = 12
ANSWER_START = ["Hello", "from", "fake", "Claude."]
DEFAULT_WORDS = len(ANSWER_START)
SLOW_WORDS = 200
ERROR_AFTER_DEFAULT = 2

# Top-level fields of a Messages request (Anthropic's API, older and newer versions together).
KNOWN_FIELDS = {
    "model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature", "top_p", "top_k",
    "tools", "tool_choice", "metadata", "thinking", "service_tier", "container", "mcp_servers",
    "context_management", "output_config", "output_format", "cache_control", "diagnostics", "inference_geo",
    "speed", "user_profile_id", "workspace_id",
}
COUNT_FIELDS = {"model", "messages", "system", "tools", "tool_choice", "thinking", "output_config", "output_format",
                "cache_control", "speed", "mcp_servers", "context_management", "user_profile_id", "workspace_id"}

ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 402: "billing_error", 403: "permission_error",
    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
    504: "timeout_error", 529: "overloaded_error",
}
ERROR_MESSAGES = {
    "overloaded_error": "Overloaded", "rate_limit_error": "Number of request tokens has exceeded your rate limit.",
    "api_error": "Internal server error", "authentication_error": "invalid x-api-key",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "Not found", "billing_error": "Your credit balance is too low.",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "timeout_error": "Request timed out", "invalid_request_error": "Invalid request",
}


def answer_text(words: int = DEFAULT_WORDS) -> str:
    """The fake's text answer of `words` words (one output token each)."""
    return " ".join(ANSWER_START[i] if i < len(ANSWER_START) else f"w{i + 1}" for i in range(max(words, 0)))


def word_count(text: str) -> int:
    return len(text.split())


def text_pieces(text: str) -> list[str]:
    """The streamed deltas of `text`, one a word with its leading space; joined they are `text`."""
    return re.findall(r"\s*\S+|\s+$", text) or ([text] if text else [])


def tool_input_pieces() -> list[str]:
    whole = json.dumps(TOOL_INPUT)  # {"city": "Paris", "unit": "celsius"}
    return ["", whole[:9], whole[9:27], whole[27:]]


class ClientGone(Exception):
    pass


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400, kind: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind or ERROR_TYPES.get(status, "api_error")


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: dict | None
    raw: bytes
    received_at: float  # time.monotonic()
    status: int | None = None  # the HTTP status answered (None: no answer, e.g. hang_up)
    stream: bool = False
    events_sent: list[str] = field(default_factory=list)  # SSE event names, in order (written or attempted)
    completed: bool = False  # the whole answer was sent (a stream through message_stop; not one ended by an error event)
    disconnected_at: float | None = None  # time.monotonic() when the client closed mid-answer
    answer: dict | None = None  # the message object answered (a stream's final state)


@dataclass
class Directives:
    status: int | None = None
    retry_after: str | None = None
    error_mid_stream: bool = False
    error_after: int = ERROR_AFTER_DEFAULT
    die_after: int | None = None
    hang_up: bool = False
    words: int = DEFAULT_WORDS
    delay_s: float = 0.0
    first_byte_delay_s: float = 0.0
    preamble: bool = False
    cache_read: int = 0
    cache_creation: int = 0

    @classmethod
    def parse(cls, text: str, owner: "FakeAnthropic") -> "Directives":
        found = cls(delay_s=owner.delta_delay_s, cache_read=owner.cache_read, cache_creation=owner.cache_creation)
        tokens = text.split()
        values = {}
        for token in tokens:
            name, sep, value = token.partition("=")
            if sep and re.fullmatch(r"\d+", value):
                values[name] = int(value)
        if "slow" in tokens:
            found.words, found.delay_s = SLOW_WORDS, owner.slow_delay_s
        found.status = values.get("status")
        found.retry_after = str(values["retry_after"]) if "retry_after" in values else None
        found.error_mid_stream = "error_mid_stream" in tokens
        found.error_after = values.get("error_after", ERROR_AFTER_DEFAULT)
        found.die_after = values.get("die_after")
        found.hang_up = "hang_up" in tokens
        found.words = values.get("words", found.words)
        if "delay_ms" in values:
            found.delay_s = values["delay_ms"] / 1000
        found.first_byte_delay_s = values.get("first_byte_delay_ms", 0) / 1000
        found.preamble = "preamble" in tokens
        found.cache_read = values.get("cache_read", found.cache_read)
        found.cache_creation = values.get("cache_creation", found.cache_creation)
        return found


# --- reading a request body ---


def _blocks(content) -> list[dict]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [block for block in content or [] if isinstance(block, dict)]


def _tool_result_text(block: dict) -> str:
    content = block.get("content")
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in _blocks(content) if part.get("type") == "text")


def _texts(body: dict) -> list[str]:
    texts = []
    system = body.get("system")
    if isinstance(system, str):
        texts.append(system)
    elif isinstance(system, list):
        texts += [block.get("text", "") for block in system if isinstance(block, dict)]
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        for block in _blocks(message.get("content")):
            if block.get("type") == "text":
                texts.append(block.get("text") or "")
            elif block.get("type") == "tool_result":
                texts.append(_tool_result_text(block))
    return texts


def input_tokens(body: dict) -> int:
    return max(sum(word_count(text) for text in _texts(body)), 1)


def _last_user(body: dict) -> dict | None:
    users = [m for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"]
    return users[-1] if users else None


def last_user_text(body: dict) -> str:
    last = _last_user(body)
    if last is None:
        return ""
    return " ".join(block.get("text") or "" for block in _blocks(last.get("content")) if block.get("type") == "text")


def _validate_messages(body: dict, known: set[str], strict: bool, needs_max_tokens: bool) -> None:
    if strict:
        for name in body:
            if name not in known:
                raise BadRequest(f"{name}: Extra inputs are not permitted")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise BadRequest("model: Field required")
    if needs_max_tokens:
        if "max_tokens" not in body:
            raise BadRequest("max_tokens: Field required")
        if not isinstance(body["max_tokens"], int) or isinstance(body["max_tokens"], bool) or body["max_tokens"] < 1:
            raise BadRequest("max_tokens: Input should be a valid integer greater than or equal to 1")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise BadRequest("messages: Field required" if messages is None else "messages: Input should be a valid list")
    if not messages:
        raise BadRequest("messages: at least one message is required")
    system = body.get("system")
    if system is not None and not isinstance(system, (str, list)):
        raise BadRequest("system: Input should be a valid string or a list of text blocks")
    if "stop_sequences" in body and not (
        isinstance(body["stop_sequences"], list) and all(isinstance(s, str) for s in body["stop_sequences"])
    ):
        raise BadRequest("stop_sequences: Input should be a valid list of strings")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise BadRequest("stream: Input should be a valid boolean")
    for index, tool in enumerate(body.get("tools") or []):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise BadRequest(f"tools.{index}.name: Field required")
        if tool.get("type", "custom") == "custom" and not isinstance(tool.get("input_schema"), dict):
            raise BadRequest(f"tools.{index}.custom.input_schema: Field required")
    choice = body.get("tool_choice")
    if choice is not None and (not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none")):
        raise BadRequest("tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'")
    previous_tool_uses: set[str] = set()
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequest(f"messages.{index}: Input should be a valid dictionary")
        role = message.get("role")
        # Mid-conversation `system` turns are accepted, as Claude Code sends them (its environment notes).
        if role not in ("user", "assistant", "system"):
            raise BadRequest(f"messages.{index}.role: Input should be 'user', 'assistant' or 'system'")
        content = message.get("content")
        final_assistant = index == len(messages) - 1 and role == "assistant"
        if not isinstance(content, (str, list)):
            raise BadRequest(f"messages.{index}.content: Field required")
        if not content and not final_assistant:
            raise BadRequest(f"messages.{index}: all messages must have non-empty content except for the optional final assistant message")
        uses, results = set(), set()
        for block_index, block in enumerate(content if isinstance(content, list) else []):
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                raise BadRequest(f"messages.{index}.content.{block_index}: Input should be a valid content block")
            kind = block["type"]
            if kind == "text":
                if not isinstance(block.get("text"), str):
                    raise BadRequest(f"messages.{index}.content.{block_index}.text.text: Field required")
                if not block["text"]:
                    raise BadRequest("messages: text content blocks must be non-empty")
            elif kind == "tool_use":
                if role != "assistant":
                    raise BadRequest(f"messages.{index}.content.{block_index}: tool_use blocks are only allowed in assistant messages")
                if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str) or not isinstance(block.get("input"), dict):
                    raise BadRequest(f"messages.{index}.content.{block_index}.tool_use: id, name and input (an object) are required")
                uses.add(block["id"])
            elif kind == "tool_result":
                if role != "user":
                    raise BadRequest(f"messages.{index}.content.{block_index}: tool_result blocks are only allowed in user messages")
                if not isinstance(block.get("tool_use_id"), str):
                    raise BadRequest(f"messages.{index}.content.{block_index}.tool_result.tool_use_id: Field required")
                results.add(block["tool_use_id"])
        if results - previous_tool_uses:
            raise BadRequest(
                f"messages.{index}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{sorted(results - previous_tool_uses)}. Each `tool_result` block must have a corresponding "
                "`tool_use` block in the previous message."
            )
        if previous_tool_uses and previous_tool_uses - results:
            raise BadRequest(
                f"messages.{index}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{sorted(previous_tool_uses - results)}. Each `tool_use` block must have a corresponding "
                "`tool_result` block in the next message."
            )
        previous_tool_uses = uses


# --- the server ---


class FakeAnthropic:
    def __init__(
        self,
        api_key: str = API_KEY,
        *,
        cache_read: int = 7,
        cache_creation: int = 3,
        delta_delay_s: float = 0.01,
        slow_delay_s: float = 0.05,
        delta_repeats_input: bool = True,
        strict: bool = True,
        accept_bearer: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.api_key = api_key
        self.cache_read = cache_read
        self.cache_creation = cache_creation
        self.delta_delay_s = delta_delay_s
        self.slow_delay_s = slow_delay_s
        self.delta_repeats_input = delta_repeats_input
        self.strict = strict
        self.accept_bearer = accept_bearer
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._sequence = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                owner._handle(self)

            def do_GET(self) -> None:
                owner._handle(self)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-anthropic", daemon=True)
        self._thread.start()

    # --- for tests ---

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What a provider's `base_url` is (requests go to {base_url}/messages)."""
        return self.root + "/v1"

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def received(self, path: str = "/v1/messages") -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path.split("?")[0] == path]

    def last(self, path: str = "/v1/messages") -> Recorded:
        found = self.received(path)
        assert found, f"the fake Anthropic upstream received no request for {path}"
        return found[-1]

    def wait_disconnected(self, record: Recorded, timeout: float = 5.0) -> float | None:
        """Waits until the client closed `record`'s connection mid-answer; its time, or None."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while record.disconnected_at is None and not record.completed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return record.disconnected_at

    def wait_finished(self, record: Recorded, timeout: float = 5.0) -> bool:
        """Waits until `record`'s answer was sent whole or the client left; whether it ended."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while record.disconnected_at is None and not record.completed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakeAnthropic":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- serving ---

    def _next(self) -> int:
        with self._lock:
            self._sequence += 1
            return self._sequence

    def _update(self, record: Recorded, **changes) -> None:
        with self._changed:
            for name, value in changes.items():
                setattr(record, name, value)
            self._changed.notify_all()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = Recorded(
            handler.command, handler.path, {k.lower(): v for k, v in handler.headers.items()},
            body if isinstance(body, dict) else None, raw, time.monotonic(),
        )
        with self._changed:
            self.requests.append(record)
            self._changed.notify_all()
        sequence = self._next()
        exchange = _Exchange(self, handler, record, sequence)
        try:
            exchange.serve(body)
        except (ClientGone, BrokenPipeError, ConnectionResetError):
            self._update(record, disconnected_at=time.monotonic(), completed=False)
            handler.close_connection = True


class _Exchange:
    """One request and its answer."""

    def __init__(self, owner: FakeAnthropic, handler: BaseHTTPRequestHandler, record: Recorded, sequence: int) -> None:
        self.owner = owner
        self.handler = handler
        self.record = record
        self.sequence = sequence
        self.request_id = f"req_fake{sequence:020d}"

    # --- plumbing ---

    def pause(self, seconds: float) -> None:
        """Sleeps up to `seconds`, raising ClientGone as soon as the client closes the connection."""
        deadline = time.monotonic() + seconds
        sock = self.handler.connection
        while True:
            left = deadline - time.monotonic()
            try:
                readable, _, _ = select.select([sock], [], [], max(left, 0))
            except (OSError, ValueError):
                raise ClientGone()
            if readable:
                try:
                    peeked = sock.recv(1, socket.MSG_PEEK)
                except (BlockingIOError, InterruptedError):
                    peeked = b"?"
                except OSError:
                    raise ClientGone()
                if peeked == b"":
                    raise ClientGone()
                # Bytes of a next request: not a close; keep pausing without spinning.
                time.sleep(min(max(left, 0), 0.005))
            if left <= 0:
                return

    def send_json(self, status: int, payload: dict, extra_headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        handler = self.handler
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("request-id", self.request_id)
        for name, value in (extra_headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        # Recorded before the last byte goes out: a client may look as soon as it has the answer.
        self.owner._update(self.record, status=status, completed=True)
        handler.wfile.write(data)
        handler.wfile.flush()

    def send_error(self, status: int, message: str | None = None, kind: str | None = None, headers=None) -> None:
        kind = kind or ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        body = {"type": "error", "error": {"type": kind, "message": message or ERROR_MESSAGES.get(kind, "error")},
                "request_id": self.request_id}
        self.send_json(status, body, headers)

    def write_chunk(self, data: bytes) -> None:
        try:
            self.handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            raise ClientGone()

    def event(self, name: str, payload: dict) -> None:
        with self.owner._changed:  # recorded first: the client may look as soon as it has the event
            self.record.events_sent.append(name)
        self.write_chunk(f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode())

    def cut(self) -> None:
        """Closes the connection in the middle of the body, like a crashed upstream."""
        self.handler.close_connection = True
        try:
            self.handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.owner._update(self.record, completed=False)

    # --- routing ---

    def serve(self, body) -> None:
        owner, record = self.owner, self.record
        path = record.path.split("?")[0]
        if record.method != "POST" or path not in ("/v1/messages", "/v1/messages/count_tokens"):
            return self.send_error(404, f"Not found: {record.method} {path}", "not_found_error")
        key = record.headers.get("x-api-key")
        bearer = record.headers.get("authorization", "")
        if key != owner.api_key and not (owner.accept_bearer and bearer == f"Bearer {owner.api_key}"):
            return self.send_error(401, "invalid x-api-key", "authentication_error")
        if not record.headers.get("anthropic-version"):
            return self.send_error(400, "anthropic-version: header is required", "invalid_request_error")
        if not isinstance(body, dict):
            return self.send_error(400, "There was an error parsing the body of your request: expected a JSON object")
        counting = path.endswith("/count_tokens")
        try:
            _validate_messages(body, COUNT_FIELDS if counting else KNOWN_FIELDS, owner.strict, not counting)
        except BadRequest as bad:
            return self.send_error(bad.status, str(bad), bad.kind)
        if counting:
            return self.send_json(200, {"input_tokens": input_tokens(body)})
        directives = Directives.parse(last_user_text(body), owner)
        if directives.first_byte_delay_s:
            self.pause(directives.first_byte_delay_s)
        if directives.hang_up:
            self.cut()
            return
        if directives.status is not None:
            status = directives.status if 400 <= directives.status <= 599 else 500
            headers = {"retry-after": directives.retry_after} if directives.retry_after else None
            return self.send_error(status, headers=headers)
        streaming = body.get("stream") is True
        if directives.error_mid_stream and not streaming:
            return self.send_error(529, kind="overloaded_error")
        plan = _Plan(body, directives, self.sequence)
        if streaming:
            self.stream(plan, directives)
        else:
            owner._update(record, answer=plan.message())
            self.send_json(200, plan.message())

    # --- streaming ---

    def stream(self, plan: "_Plan", directives: Directives) -> None:
        handler, record = self.handler, self.record
        self.owner._update(record, stream=True, status=200)
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.send_header("request-id", self.request_id)
        handler.end_headers()
        handler.wfile.flush()

        start = plan.message(streaming_start=True)
        self.event("message_start", {"type": "message_start", "message": start})
        deltas_sent = 0
        for index, block in enumerate(plan.content):
            if block["type"] == "text":
                self.event("content_block_start", {"type": "content_block_start", "index": index,
                                                   "content_block": {"type": "text", "text": ""}})
                pieces = [{"type": "text_delta", "text": piece} for piece in text_pieces(block["text"])]
            else:
                self.event("content_block_start", {"type": "content_block_start", "index": index,
                                                   "content_block": {**block, "input": {}}})
                pieces = [{"type": "input_json_delta", "partial_json": piece} for piece in tool_input_pieces()]
            if index == 0:
                self.event("ping", {"type": "ping"})
            for delta in pieces:
                if directives.die_after is not None and deltas_sent >= directives.die_after:
                    return self.cut()
                if directives.error_mid_stream and deltas_sent >= directives.error_after:
                    self.event("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
                                         "request_id": self.request_id})
                    return self.finish_body()
                self.pause(directives.delay_s)
                self.event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
                deltas_sent += 1
            self.event("content_block_stop", {"type": "content_block_stop", "index": index})
        if directives.die_after is not None and deltas_sent >= directives.die_after:
            return self.cut()
        if directives.error_mid_stream:
            self.event("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
                                 "request_id": self.request_id})
            return self.finish_body()
        self.pause(directives.delay_s)
        usage = {"output_tokens": plan.output_tokens}
        if self.owner.delta_repeats_input:
            usage = {"input_tokens": plan.input_tokens, "cache_creation_input_tokens": plan.cache_creation,
                     "cache_read_input_tokens": plan.cache_read, "output_tokens": plan.output_tokens}
        self.event("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": plan.stop_reason, "stop_sequence": plan.stop_sequence},
                                     "usage": usage})
        # Recorded before the last events go out: a client may look as soon as it has them.
        self.owner._update(record, answer=plan.message(), completed=True)
        self.event("message_stop", {"type": "message_stop"})
        self.finish_body()

    def finish_body(self) -> None:
        self.write_chunk(b"")  # the terminating zero-length chunk: the body ends cleanly


class _Plan:
    """The answer to one Messages request, settled before the first byte."""

    def __init__(self, body: dict, directives: Directives, sequence: int) -> None:
        self.id = f"msg_01Fake{sequence:016d}"
        self.model = body["model"]
        self.input_tokens = input_tokens(body)
        self.cache_read = directives.cache_read
        self.cache_creation = directives.cache_creation
        self.stop_sequence = None
        tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
        choice = (body.get("tool_choice") or {}).get("type", "auto")
        last = _last_user(body)
        results = [b for b in _blocks(last.get("content")) if b.get("type") == "tool_result"] if last else []
        max_tokens = body["max_tokens"]
        if tools and choice != "none" and not results:
            name = tools[0]["name"]
            if choice == "tool" and body["tool_choice"].get("name"):
                name = body["tool_choice"]["name"]
            self.content = [{"type": "tool_use", "id": f"toolu_01Fake{sequence:014d}", "name": name, "input": dict(TOOL_INPUT)}]
            if directives.preamble:
                self.content.insert(0, {"type": "text", "text": f"Let me call {name}."})
            self.output_tokens = TOOL_OUTPUT_TOKENS
            self.stop_reason = "tool_use"
            return
        if results:
            text = "The tool said: " + " ".join(_tool_result_text(r) for r in results)
        else:
            text = answer_text(directives.words)
        self.stop_reason = "end_turn"
        words = text.split(" ")
        if len(words) > max_tokens:
            text = " ".join(words[:max_tokens])
            self.stop_reason = "max_tokens"
        hits = [(text.find(s), s) for s in body.get("stop_sequences") or [] if s and s in text]
        if hits:
            at, sequence_found = min(hits)
            text = text[:at]
            self.stop_reason, self.stop_sequence = "stop_sequence", sequence_found
        self.content = [{"type": "text", "text": text}] if text else []
        self.output_tokens = max(word_count(text), 1)

    def usage(self, output_tokens: int) -> dict:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation,
            "cache_read_input_tokens": self.cache_read,
            "cache_creation": {"ephemeral_5m_input_tokens": self.cache_creation, "ephemeral_1h_input_tokens": 0},
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }

    def message(self, streaming_start: bool = False) -> dict:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [] if streaming_start else [dict(block) for block in self.content],
            "stop_reason": None if streaming_start else self.stop_reason,
            "stop_sequence": None if streaming_start else self.stop_sequence,
            "usage": self.usage(1 if streaming_start else self.output_tokens),
        }


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=API_KEY)
    args = parser.parse_args()
    upstream = FakeAnthropic(args.api_key, port=args.port)
    print(f"fake anthropic listening on {upstream.base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        upstream.close()


if __name__ == "__main__":
    main()
