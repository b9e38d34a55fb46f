"""SIGTERM in the middle of 50 streams: `/ready` turns 503 and new requests are refused while the
streams drain; those that end within the drain time end normally; the rest are cut with an error event
when it runs out and billed for what they delivered; nothing is left running or held afterwards."""

import json
import signal
import sqlite3
import threading
import time

from gateway_process import launch
from raw_http import httpx

STREAMS = 50
SHORT = 10  # streams that end within the drain time
TOKEN_DELAY_S = 0.05
SHORT_TOKENS = 100  # about 5 s
LONG_TOKENS = 400  # about 20 s: cut
GRACE_S = 8
PER_TOKEN_MICROS = 10  # price 0.01 per 1K tokens

CONFIG = f"""
log_level: info
providers:
  demo: {{kind: test, tokens: {LONG_TOKENS}, token_delay: {int(TOKEN_DELAY_S * 1000)}ms}}
models:
  demo: {{context: 4096, price: {{input: "0.01", output: "0.01"}}, deployments: [{{provider: demo}}]}}
"""


def content_chunks(text: str) -> int:
    count = 0
    for line in text.splitlines():
        if line.startswith("data: {"):
            chunk = json.loads(line[6:])
            if any((choice.get("delta") or {}).get("content") for choice in chunk.get("choices") or []):
                count += 1
    return count


def response_id(text: str) -> str | None:
    for line in text.splitlines():
        if line.startswith("data: {"):
            return json.loads(line[6:]).get("id")
    return None


def test_shutdown_in_the_middle_of_50_streams_settles_every_one(tmp_path):
    gateway = launch(tmp_path, CONFIG, grace=f"{GRACE_S}s")
    assert gateway.demo_key, "a new database announces the demo account's key"
    results = [dict() for _ in range(STREAMS)]
    started = [threading.Event() for _ in range(STREAMS)]
    client = httpx.Client(
        base_url=gateway.base, headers={"Authorization": f"Bearer {gateway.demo_key}"},
        limits=httpx.Limits(max_connections=STREAMS + 10), timeout=httpx.Timeout(60.0, read=30.0),
    )

    def stream(index: int) -> None:
        body = {"model": "demo", "messages": [{"role": "user", "content": f"stream {index}"}], "stream": True,
                "stream_options": {"include_usage": True}}
        if index < SHORT:
            body["max_tokens"] = SHORT_TOKENS
        text = ""
        try:
            with client.stream("POST", "/v1/chat/completions", json=body) as response:
                results[index]["status"] = response.status_code
                for piece in response.iter_text():
                    text += piece
                    if '"content":"' in text:
                        started[index].set()
        except httpx.HTTPError as error:
            results[index]["error"] = repr(error)
        finally:
            results[index]["text"] = text
            results[index]["ended"] = time.monotonic()
            started[index].set()

    threads = [threading.Thread(target=stream, args=(index,), daemon=True) for index in range(STREAMS)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        for event in started:
            assert event.wait(max(0.0, deadline - time.monotonic())), "not every stream started within 30 s"
        assert not any("error" in result for result in results), results

        signalled = time.monotonic()
        gateway.signal(signal.SIGTERM)
        time.sleep(0.2)
        # Draining: the listener still answers, but says not ready and takes no new work.
        ready = httpx.get(gateway.base + "/ready", timeout=5)
        assert ready.status_code == 503 and ready.json()["status"] == "draining"
        refused = client.post("/v1/chat/completions", json={"model": "demo", "messages": [{"role": "user", "content": "late"}]})
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "shutting_down"

        for thread in threads:
            thread.join(timeout=GRACE_S + 20)
        assert gateway.wait(timeout=20) == 0
        exited = time.monotonic() - signalled
        assert exited < GRACE_S + 10, f"exit took {exited:.1f}s with a drain time of {GRACE_S}s"
    finally:
        client.close()
        gateway.kill()

    short, long = results[:SHORT], results[SHORT:]
    for result in short:
        assert result.get("status") == 200 and result["text"].endswith("data: [DONE]\n\n"), result
        assert content_chunks(result["text"]) == SHORT_TOKENS
    assert any(result["ended"] > signalled for result in short), "no short stream was still running at SIGTERM"
    for result in long:
        assert result.get("status") == 200, result
        assert '"code":"shutting_down"' in result["text"] and "[DONE]" not in result["text"]
        assert 0 < content_chunks(result["text"]) < LONG_TOKENS

    database = sqlite3.connect(gateway.database)
    rows = {
        row[0]: row
        for row in database.execute(
            "SELECT request_id, status, end_reason, prompt_tokens, completion_tokens, cost_micros FROM ledger")
    }
    assert len(rows) == STREAMS
    assert not [row for row in rows.values() if row[1] == "running"]
    for result in short:
        row = rows[response_id(result["text"])]
        assert row[1:3] == ("completed", "length")
    for result in long:
        _, status, end_reason, prompt, completion, cost = rows[response_id(result["text"])]
        assert (status, end_reason) == ("interrupted", "shutdown")
        assert completion == content_chunks(result["text"])  # billed for exactly what it delivered
        assert cost == (prompt + completion) * PER_TOKEN_MICROS and cost > 0
    balance, held = database.execute("SELECT balance_micros, held_micros FROM accounts WHERE id = 'test'").fetchone()
    assert held == 0
    assert balance == 10_000_000 - sum(row[5] for row in rows.values())
    log = gateway.output()
    assert "draining" in log and "stopping the requests still running" in log
