"""A tiny OpenAI-compatible upstream in Python that records every request it receives.

The fake upstream keeps its request log in-process, so tests that need to see exactly what the
gateway sent upstream (rewritten `model`, forwarded vendor fields, upstream credentials) use this.
It answers chat completions with the text "captured", streamed or not.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Captured:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: dict | None


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
                model = body.get("model", "?")
                created = int(time.time())
                if body.get("stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    base = {"id": "chatcmpl-capture", "object": "chat.completion.chunk", "created": created, "model": model}
                    chunks = [
                        dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": "captured"}, "finish_reason": None}]),
                        dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]),
                    ]
                    if (body.get("stream_options") or {}).get("include_usage"):
                        chunks.append(dict(base, choices=[], usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}))
                    for chunk in chunks:
                        self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self._send(200, {
                    "id": "chatcmpl-capture", "object": "chat.completion", "created": created, "model": model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "captured", "refusal": None},
                                 "logprobs": None, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                })

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
