"""The privacy promise (docs/PRIVACY.md), checked end to end: requests carry a unique marker in every
place content can be (messages, a system prompt, an image, an upload, tools and tool-call arguments, completions
and tool calls coming back, upstream error messages, a stream's error event, a broken upstream answer)
and a key in every place a key can be (header, path, query). The gateway runs at LOG_LEVEL=trace, in
text and in JSON; then every line it wrote, its database files and /metrics are searched: the marker
and the keys must appear nowhere, in plain text, hex or base64."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gateway_process import launch
from raw_http import httpx

ADMIN_KEY = "sk-admin-" + uuid.uuid4().hex
UPSTREAM_KEY = "sk-upstream-" + uuid.uuid4().hex


class MarkerUpstream:
    """An OpenAI-compatible upstream that puts the marker into everything it answers; the request's
    `x_mode` field picks the answer (a whole reply, a stream, an error, a broken stream)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.received: list[bytes] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.received.append(raw)
                body = json.loads(raw)
                mode = body.get("x_mode", "echo")
                marker = owner.marker
                if mode == "error400":
                    return self._json(400, {"error": {"message": f"bad input near {marker}", "type": "invalid_request_error",
                                                      "param": "messages", "code": "context_length_exceeded"}})
                if mode == "error500":
                    return self._json(500, {"error": {"message": f"engine crashed on {marker}", "type": "server_error"}})
                if mode == "garbage":
                    return self._raw(200, "application/json", f"<html>{marker}</html>".encode())
                if self.path.endswith("/embeddings"):
                    return self._json(200, {"object": "list", "model": body["model"],
                                            "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
                                            "usage": {"prompt_tokens": 3, "total_tokens": 3}})
                if self.path.endswith("/completions") and not self.path.endswith("/chat/completions"):
                    return self._json(200, {"id": "cmpl-up", "object": "text_completion", "created": 1, "model": body["model"],
                                            "choices": [{"index": 0, "text": f"said {marker}", "logprobs": None, "finish_reason": "stop"}],
                                            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})
                tool_call = {"id": "call_1", "type": "function",
                             "function": {"name": "lookup", "arguments": json.dumps({"q": marker})}}
                if not body.get("stream"):
                    return self._json(200, {
                        "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": body["model"],
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": f"here is {marker}",
                                                             "tool_calls": [tool_call]},
                                     "logprobs": None, "finish_reason": "tool_calls"}],
                        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}})
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                base = {"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": body["model"]}
                events = [
                    dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": f"streamed {marker}"}, "finish_reason": None}]),
                    dict(base, choices=[{"index": 0, "delta": {"tool_calls": [dict(tool_call, index=0)]}, "finish_reason": None}]),
                ]
                if mode == "stream_error":
                    events.append({"error": {"message": f"lost the thread at {marker}", "type": "server_error"}})
                else:
                    events.append(dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]))
                    events.append(dict(base, choices=[], usage={"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}))
                for event in events:
                    self.wfile.write(b"data: " + json.dumps(event).encode() + b"\n\n")
                if mode != "stream_error":
                    self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

            def _json(self, status: int, payload: dict) -> None:
                self._raw(status, "application/json", json.dumps(payload).encode())

            def _raw(self, status: int, content_type: str, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def encodings(secret: str) -> list[bytes]:
    """The ways a secret could reach a file: as text, JSON-escaped, hex (NIO's buffer dumps), base64."""
    raw = secret.encode()
    forms = [raw, raw.hex().encode(), " ".join(f"{b:02x}" for b in raw).encode(), base64.b64encode(raw)]
    # base64 of the secret at any alignment inside a longer blob
    for shift in (1, 2):
        forms.append(base64.b64encode(b"\0" * shift + raw)[4:-4])
    return forms


def chat_body(marker: str, mode: str = "echo", stream: bool = False) -> dict:
    image = "data:image/png;base64," + base64.b64encode(f"PNG {marker}".encode()).decode()
    return {
        "model": "m", "stream": stream, "user": "privacy-user", "x_mode": mode,
        "messages": [
            {"role": "system", "content": f"You are {marker}."},
            {"role": "user", "content": [{"type": "text", "text": f"what is {marker}?"},
                                         {"type": "image_url", "image_url": {"url": image}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_0", "type": "function", "function": {"name": "lookup", "arguments": json.dumps({"q": marker})}}]},
            {"role": "tool", "tool_call_id": "call_0", "content": f"result {marker}"},
        ],
        "tools": [{"type": "function", "function": {
            "name": "lookup", "description": f"looks up {marker}",
            "parameters": {"type": "object", "properties": {"q": {"type": "string", "enum": [marker]}}}}}],
        "tool_choice": "auto",
    }


POSTGRES = os.environ.get("SWITCHYARD_TEST_POSTGRES_URL")
SETUPS = [("text", None), ("json", None)] + ([("json", POSTGRES)] if POSTGRES else [])


@pytest.mark.parametrize(("log_format", "database"), SETUPS, ids=[f"{f}-{'postgres' if d else 'sqlite'}" for f, d in SETUPS])
def test_no_content_or_key_reaches_logs_database_or_metrics_at_trace(tmp_path, log_format, database):
    """On PostgreSQL (when SWITCHYARD_TEST_POSTGRES_URL is set) the database is a server: its client
    library's trace logging is what is checked there, the files are checked on SQLite."""
    marker = "zqmark" + uuid.uuid4().hex
    upstream = MarkerUpstream(marker)
    config = f"""
log_level: info
log_format: {log_format}
routing: {{cooldown: {{failures: 1000}}}}  # the scripted failures must all reach the upstream
providers:
  marker: {{kind: openai, base_url: "http://127.0.0.1:{upstream.port}/v1", api_key: "{UPSTREAM_KEY}"}}
models:
  m: {{price: {{input: "0.01", output: "0.01"}}, endpoints: [chat, completions, embeddings], deployments: [{{provider: marker, model: up-m}}]}}
"""
    gateway = launch(tmp_path, config, env={"LOG_LEVEL": "trace", "SWITCHYARD_ADMIN_KEY": ADMIN_KEY}, database=database)
    try:
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        account = "privacy-" + uuid.uuid4().hex[:8]
        opened = httpx.post(gateway.base + "/admin/v1/accounts", json={"id": account, "name": "privacy", "balance": "10.00"},
                            headers=admin, timeout=10)
        assert opened.status_code == 201, opened.text
        created = httpx.post(gateway.base + f"/admin/v1/accounts/{account}/keys", json={"label": "privacy"}, headers=admin, timeout=10)
        assert created.status_code == 201, created.text
        key = created.json()["key"]
        auth = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=gateway.base, timeout=20) as http:
            replies = [
                http.post("/v1/chat/completions", json=chat_body(marker), headers=auth),
                http.post("/v1/chat/completions", json=chat_body(marker, stream=True), headers=auth),
                http.post(f"/llm_api/{key}/path-user/m/v1/chat/completions", json=chat_body(marker, stream=True),
                          headers={"Authorization": "Bearer placeholder"}),
                http.post(f"/llm_api/{key}/path-user//v1/completions", json={"model": "m", "prompt": f"say {marker}"}),
                http.post("/v1/embeddings", json={"model": "m", "input": [f"embed {marker}"]}, headers=auth),
                http.post("/v1/chat/completions", json=chat_body(marker, "error400"), headers=auth),
                http.post("/v1/chat/completions", json=chat_body(marker, "error500"), headers=auth),
                http.post("/v1/chat/completions", json=chat_body(marker, "garbage"), headers=auth),
                http.post("/v1/chat/completions", json=chat_body(marker, "stream_error", stream=True), headers=auth),
                http.post("/v1/chat/completions", content=f'{{"model": "m", "messages": [{marker}', headers=auth),
                http.post("/v1/chat/completions", json=chat_body(marker), headers={**auth, "x-request-id": f"id {marker}"}),
                http.post(f"/llm_api/{key}/u/m/v1/unknown", json={"q": marker}),
                http.get(f"/api_user/info?openid={key}&type=json"),
                http.get(f"/llm_api/suspend_current_generate?openid={key}&userid=nobody"),
                http.post("/v1/chat/completions", json=chat_body(marker), headers={"Authorization": f"Bearer {key}x"}),
            ]
            statuses = [reply.status_code for reply in replies]
            assert statuses == [200, 200, 200, 200, 200, 400, 502, 502, 200, 400, 200, 404, 200, 200, 401], statuses
            # The marker did travel: to the upstream and back to the caller.
            assert marker in replies[0].text and marker in replies[1].text and marker in replies[8].text
            assert marker in replies[5].json()["error"]["message"]
            assert all(marker.encode() in body for body in upstream.received)
            # An upload is kept while it lives (its caller asked for that), and used as a data URL;
            # once deleted, no copy may remain in the database files (overwritten, WAL truncated).
            png = b"\x89PNG\r\n\x1a\n" + f"IHDR {marker}".encode() + bytes(64)
            uploaded = http.post("/v1/files", files={"file": ("x.png", png, "image/png")}, data={"purpose": "vision"},
                                 headers=auth)
            assert uploaded.status_code == 200, uploaded.text
            file_id = uploaded.json()["id"]
            used = http.post("/v1/chat/completions", headers=auth, json={"model": "m", "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": file_id}}]}]})
            assert used.status_code == 200, used.text
            assert base64.b64encode(png) in upstream.received[-1]
            assert http.delete(f"/v1/files/{file_id}", headers=auth).status_code == 200
            metrics = http.get("/metrics").text
            assert "switchyard_requests_total" in metrics
        time.sleep(0.5)  # stream settlements and their log lines
        database_while_running = read_database_files(gateway)
    finally:
        gateway.signal()
        try:
            gateway.wait(timeout=30)
        finally:
            gateway.kill()
            upstream.close()

    output = gateway.output()
    lines = [line for line in output.splitlines() if line]
    request_lines = [line for line in lines if "request" in line and "request_id" in line]
    assert len(request_lines) >= len(replies), "the request log lines are missing:\n" + output[-3000:]
    assert any("trace" in line for line in lines), "nothing was logged at trace"
    if log_format == "json":
        assert all(json.loads(line) for line in lines if line.startswith("{"))

    haystacks = {"stdout+stderr": output.encode(), "/metrics": metrics.encode()}
    if not database:
        haystacks["database (running)"] = database_while_running
        haystacks["database (after exit)"] = read_database_files(gateway)
        assert b"privacy-user" in haystacks["database (after exit)"], "the database files were not read"
    secrets = {"marker": marker, "key": key, "admin key": ADMIN_KEY, "upstream key": UPSTREAM_KEY}
    found = [
        f"{name} in {where}"
        for name, secret in secrets.items()
        for where, haystack in haystacks.items()
        if any(form in haystack for form in encodings(secret))
    ]
    assert not found, found
    # The demo key is shown on the first start only (so that someone can try the gateway), on stdout.
    if gateway.demo_key:
        announced = [line for line in lines if gateway.demo_key in line]
        assert all(line.startswith(("switchyard: created the demo account", "switchyard: try:")) for line in announced)


def read_database_files(gateway) -> bytes:
    data = b""
    for suffix in ("", "-wal", "-shm"):
        path = gateway.database.with_name(gateway.database.name + suffix)
        if path.exists():
            data += path.read_bytes()
    return data
