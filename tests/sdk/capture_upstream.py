"""A tiny OpenAI-compatible upstream in Python that records every request it receives.

The fake upstream keeps its request log in-process, so tests that need to see exactly what the
gateway sent upstream (rewritten `model`, forwarded vendor fields, upstream credentials) use this.
It answers chat completions with the text "captured", streamed or not.

Words in the text of the LAST user message script it (so, unlike the Swift fake upstream's `"fake"`
body field, the script survives a translation: a Responses or Messages request made into chat):

    tool_call     with `tools` in the request and the last message not a `tool` result: a call of
                  the first tool, id CAPTURE_CALL_ID, arguments CAPTURE_ARGUMENTS (streamed in pieces),
                  finish_reason tool_calls
    words=N       the text "w1 w2 … wN" instead of "captured"
    delay_ms=N    a pause before each streamed content chunk
    die_after=N   streamed: the connection is cut after N content chunks (no finish, no [DONE]);
                  not streamed: the connection is closed without an answer
    status=NNN    that HTTP status, with an OpenAI error body ("capture error")

`max_tokens` / `max_completion_tokens` cut the text to that many words (finish_reason length).
Usage: prompt_tokens = the words of the messages' text (at least 1), completion_tokens = the
answer's words (CAPTURE_CALL_TOKENS for a tool call).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CAPTURE_CALL_ID = "call_capture1"
CAPTURE_ARGUMENTS = '{"city":"Paris"}'
CAPTURE_ARGUMENT_PIECES = ['{"city"', ':"Par', 'is"}']
CAPTURE_CALL_TOKENS = 5


@dataclass
class Captured:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: dict | None


def _text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text") or "" for part in content if isinstance(part, dict) and part.get("type") == "text")
    return ""


def _script(body: dict) -> dict:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    users = [m for m in messages if m.get("role") == "user"]
    words = _text(users[-1].get("content")).split() if users else []
    values = {}
    for word in words:
        match = re.fullmatch(r"(words|delay_ms|die_after|status)=(\d+)", word)
        if match:
            values[match.group(1)] = int(match.group(2))
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    answering_a_tool = bool(messages) and messages[-1].get("role") == "tool"
    name = None
    if "tool_call" in words and tools and not answering_a_tool:
        name = (tools[0].get("function") or {}).get("name") or "fake_fn"
    text = " ".join(f"w{i}" for i in range(1, values["words"] + 1)) if "words" in values else "captured"
    finish = "stop"
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if name is None and isinstance(limit, int) and not isinstance(limit, bool) and len(text.split()) > limit:
        text, finish = " ".join(text.split()[:limit]), "length"
    prompt = max(sum(len(_text(m.get("content")).split()) for m in messages), 1)
    return {
        "tool": name, "text": text, "finish": "tool_calls" if name else finish, "prompt": prompt,
        "completion": CAPTURE_CALL_TOKENS if name else max(len(text.split()), 1),
        "delay": values.get("delay_ms", 0) / 1000, "die_after": values.get("die_after"), "status": values.get("status"),
    }


class CaptureUpstream:
    def __init__(self) -> None:
        self.requests: list[Captured] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                headers = {name.lower(): value for name, value in self.headers.items()}
                with owner._lock:
                    owner.requests.append(Captured("POST", self.path, headers, body))
                if not isinstance(body, dict):
                    return self._send(400, {"error": {"message": "bad json", "type": "invalid_request_error", "param": None, "code": None}})
                script = _script(body)
                if script["status"] is not None:
                    status = script["status"] if 400 <= script["status"] <= 599 else 500
                    kind = "server_error" if status >= 500 else "invalid_request_error"
                    return self._send(status, {"error": {"message": "capture error", "type": kind, "param": None, "code": None}})
                model = body.get("model", "?")
                created = int(time.time())
                usage = {"prompt_tokens": script["prompt"], "completion_tokens": script["completion"],
                         "total_tokens": script["prompt"] + script["completion"]}
                if body.get("stream"):
                    try:
                        self._stream(body, script, model, created, usage)
                    except (BrokenPipeError, ConnectionResetError):
                        self.close_connection = True  # the client (the gateway) left
                    return
                if script["die_after"] is not None:
                    self.close_connection = True
                    return
                if script["tool"]:
                    message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [
                        {"id": CAPTURE_CALL_ID, "type": "function",
                         "function": {"name": script["tool"], "arguments": CAPTURE_ARGUMENTS}}]}
                else:
                    message = {"role": "assistant", "content": script["text"], "refusal": None}
                self._send(200, {
                    "id": "chatcmpl-capture", "object": "chat.completion", "created": created, "model": model,
                    "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": script["finish"]}],
                    "usage": usage,
                })

            def _stream(self, body: dict, script: dict, model: str, created: int, usage: dict) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                base = {"id": "chatcmpl-capture", "object": "chat.completion.chunk", "created": created, "model": model}

                def chunk(delta: dict, finish=None) -> dict:
                    return dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": finish}])

                if script["tool"]:
                    opening = chunk({"role": "assistant", "content": None, "tool_calls": [
                        {"index": 0, "id": CAPTURE_CALL_ID, "type": "function",
                         "function": {"name": script["tool"], "arguments": ""}}]})
                    pieces = [chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                              for piece in CAPTURE_ARGUMENT_PIECES]
                elif script["text"] == "captured":  # as it always answered: one chunk with role and text
                    opening, pieces = None, [chunk({"role": "assistant", "content": "captured"})]
                else:
                    words = script["text"].split(" ")
                    opening = chunk({"role": "assistant", "content": ""})
                    pieces = [chunk({"content": word if i == 0 else " " + word}) for i, word in enumerate(words)]
                if opening:
                    self._event(opening)
                for index, piece in enumerate(pieces):
                    if script["die_after"] is not None and index >= script["die_after"]:
                        return self._cut()
                    if script["delay"]:
                        time.sleep(script["delay"])
                    self._event(piece)
                if script["die_after"] is not None:
                    return self._cut()
                self._event(chunk({}, script["finish"]))
                if (body.get("stream_options") or {}).get("include_usage"):
                    self._event(dict(base, choices=[], usage=usage))
                self._chunk(b"data: [DONE]\n\n")
                self._chunk(b"")  # the body's end

            def _event(self, payload: dict) -> None:
                self._chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

            def _cut(self) -> None:
                """Closes the connection in the middle of the body, like a crashed upstream."""
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="capture-upstream", daemon=True)
        self._thread.start()

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def last(self) -> Captured:
        with self._lock:
            assert self.requests, "the gateway sent nothing to the capture upstream"
            return self.requests[-1]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
