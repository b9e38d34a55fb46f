"""SIGTERM / SIGINT: the gateway refuses new requests with 503 (and `/ready` says so), lets in-flight
streams finish within `server.shutdown_grace`, then exits; a stream longer than the grace is cut with
an error event, not waited for. tests/test_shutdown.py does the same with 50 streams and the ledger."""
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from raw_http import httpx

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = os.environ.get("SWITCHYARD_BIN", str(ROOT / ".build" / "debug" / "switchyard"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gateway(grace: str, token_delay: str, tokens: int):
    port = free_port()
    config = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    config.write(
        f"""
server: {{host: 127.0.0.1, port: {port}, shutdown_grace: {grace}}}
database: sqlite:{tempfile.mkdtemp(prefix="switchyard-lifecycle-")}/db.sqlite
log_level: warning
providers:
  demo: {{kind: test, tokens: {tokens}, token_delay: {token_delay}}}
models:
  demo: {{deployments: [{{provider: demo}}]}}
"""
    )
    config.close()
    process = subprocess.Popen(
        [GATEWAY, "serve", "--config", config.name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    key = None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if "demo account" in line:
            key = re.search(r"sk-sy-[0-9A-Za-z]+", line).group(0)
        if "listening" in line:
            return process, f"http://127.0.0.1:{port}", key
        if process.poll() is not None:
            break
    process.kill()
    pytest.fail("gateway did not start: " + process.stderr.read())


def stream_in_background(base: str, key: str, result: dict):
    def run():
        body = {"model": "demo", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        headers = {"Authorization": f"Bearer {key}"}
        try:
            with httpx.stream("POST", base + "/v1/chat/completions", json=body, headers=headers, timeout=20) as response:
                result["status"] = response.status_code
                result["text"] = "".join(response.iter_text())
        except httpx.HTTPError as error:
            result["error"] = repr(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_in_flight_stream_finishes_and_new_requests_are_refused(sig):
    process, base, key = start_gateway(grace="10s", token_delay="50ms", tokens=30)
    try:
        result: dict = {}
        thread = stream_in_background(base, key, result)
        time.sleep(0.4)  # the stream is under way (about 8 of 30 tokens)
        process.send_signal(sig)
        time.sleep(0.2)
        refused = httpx.get(base + "/v1/models", timeout=2)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "shutting_down"
        assert httpx.get(base + "/ready", timeout=2).status_code == 503
        assert httpx.get(base + "/health", timeout=2).status_code == 200
        thread.join(timeout=15)
        assert result.get("status") == 200, result
        assert result["text"].rstrip().endswith("data: [DONE]")
        assert result["text"].count('"content":') == 31  # role chunk + 30 tokens
        assert process.wait(timeout=10) == 0
        with pytest.raises(httpx.HTTPError):  # closed once the drain is over
            httpx.get(base + "/v1/models", timeout=2)
    finally:
        process.kill()


def test_a_stream_longer_than_the_grace_is_cut_and_the_process_exits():
    process, base, key = start_gateway(grace="500ms", token_delay="100ms", tokens=200)
    try:
        result: dict = {}
        thread = stream_in_background(base, key, result)
        time.sleep(0.4)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        elapsed = time.monotonic() - started
        thread.join(timeout=10)
        assert elapsed < 3, f"exit took {elapsed:.2f}s with a 0.5s grace"
        assert "data: [DONE]" not in result.get("text", "")
        assert '"code":"shutting_down"' in result.get("text", ""), result
    finally:
        process.kill()
