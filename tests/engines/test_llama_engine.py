"""A real llama.cpp engine (llama-cpp-python) as a managed engine behind the gateway, end to end.

The engine serves the tiny random-weight model that ../shared/engines/make_tiny_gguf.py writes (real
tokenizer, real forward pass, real streaming). Needs a venv with llama-cpp-python[server] and gguf:
SWITCHYARD_ENGINE_VENV, default .build/engine-venv (scripts/test-engines.sh makes it). Skipped when
it is missing, so the rest of the suite runs on a machine without it; CI makes it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from raw_http import httpx

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("SWITCHYARD_ENGINE_VENV", ROOT / ".build" / "engine-venv"))
ENGINE_PYTHON = VENV / "bin" / "python"
GATEWAY = Path(os.environ.get("SWITCHYARD_BIN", ROOT / ".build" / "debug" / "switchyard"))
MAKE_GGUF = Path(os.environ.get("SWITCHYARD_MAKE_GGUF", ROOT.parent / "shared" / "engines" / "make_tiny_gguf.py"))
ADMIN = "sk-admin-engine-test"

pytestmark = pytest.mark.skipif(
    not ENGINE_PYTHON.exists() or subprocess.run([ENGINE_PYTHON, "-c", "import llama_cpp"], capture_output=True).returncode != 0,
    reason=f"no llama-cpp-python in {VENV} (scripts/test-engines.sh installs it)",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def engine_command(model: Path) -> str:
    args = [str(ENGINE_PYTHON), "-P", "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "tiny",
            "--host", "127.0.0.1", "--port", "${PORT}", "--n_ctx", "2048", "--interrupt_requests", "false",
            "--verbose", "false"]
    return json.dumps(args)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    if not MAKE_GGUF.exists():
        pytest.skip(f"{MAKE_GGUF} not found")
    folder = tmp_path_factory.mktemp("gguf")
    plain, stops = folder / "tiny.gguf", folder / "tiny-stops.gguf"
    subprocess.run([ENGINE_PYTHON, MAKE_GGUF, "--out", plain], check=True, capture_output=True)
    subprocess.run([ENGINE_PYTHON, MAKE_GGUF, "--out", stops, "--eos-bias", "0.75"], check=True, capture_output=True)
    return plain, stops


class Gateway:
    def __init__(self, models, idle="10m"):
        plain, stops = models
        self.dir = Path(tempfile.mkdtemp(prefix="switchyard-engines-"))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        (self.dir / "gateway.yaml").write_text(f"""
server: {{host: 127.0.0.1, port: {self.port}, loading_notice_interval: 200ms}}
database: sqlite:{self.dir}/ledger.sqlite
admin_key: {ADMIN}
log_level: info
providers:
  tiny-a:
    kind: managed
    command: {engine_command(plain)}
    env: {{OMP_NUM_THREADS: "1"}}
    health_path: /openapi.json
    start_timeout: 120s
    idle_timeout: {idle}
    stop_timeout: 5s
    group: cpu0
    stream: always
    tokenizer: {{kind: llama-cpp-python, chat_template: chatml}}
  tiny-b:
    kind: managed
    command: {engine_command(stops)}
    health_path: /openapi.json
    start_timeout: 120s
    idle_timeout: {idle}
    group: cpu0
    stream: always
    tokenizer: {{kind: llama-cpp-python}}
models:
  tiny: {{context: 2048, price: {{second: "1.00", max_seconds: 60}}, deployments: [{{provider: tiny-a, model: tiny}}]}}
  tiny-stops: {{context: 2048, price: {{input: "1.00", output: "1.00"}}, deployments: [{{provider: tiny-b, model: tiny}}]}}
""")
        self.log = open(self.dir / "gateway.log", "w")
        self.process = subprocess.Popen([GATEWAY, "serve", "--config", self.dir / "gateway.yaml"],
                                        cwd=self.dir, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError((self.dir / "gateway.log").read_text())
        accounts = httpx.post(self.base + "/admin/v1/accounts", headers=self.admin,
                              json={"name": "engines", "balance": "1000.00"}, timeout=5).json()
        self.account = accounts["id"]
        self.key = httpx.post(self.base + f"/admin/v1/accounts/{self.account}/keys", headers=self.admin,
                              json={"label": "t"}, timeout=5).json()["key"]

    admin = {"authorization": f"Bearer {ADMIN}"}

    def chat(self, model, stream=False, **extra):
        body = {"model": model, "messages": [{"role": "user", "content": "Hello"}], "stream": stream, **extra}
        return httpx.post(self.base + "/v1/chat/completions", json=body, timeout=180,
                          headers={"authorization": f"Bearer {self.key}"})

    def engines(self):
        data = httpx.get(self.base + "/admin/v1/engines", headers=self.admin, timeout=5).json()["data"]
        return {engine["name"]: engine for engine in data}

    def rows(self):
        with sqlite3.connect(self.dir / "ledger.sqlite") as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute("SELECT * FROM ledger ORDER BY started_at")]

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def alive(pid) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_first_request_loads_unbilled_second_is_warm_and_engines_swap_within_a_group(models):
    gateway = Gateway(models)
    try:
        first = gateway.chat("tiny", max_tokens=8, seed=7)
        assert first.status_code == 200, first.text
        # stream: always — the engine streamed, the client got a whole answer with usage.
        assert first.json()["usage"]["completion_tokens"] == 8
        second = gateway.chat("tiny", max_tokens=8, seed=7)
        assert second.status_code == 200
        assert second.json()["choices"][0]["message"]["content"] == first.json()["choices"][0]["message"]["content"]
        cold, warm = gateway.rows()[-2:]
        assert cold["load_ms"] > 0 and warm["load_ms"] == 0, (cold, warm)
        # Per-second billing: generation only, never the load (1.00 a second, in micro-units).
        for row in (cold, warm):
            assert row["cost_micros"] == row["generation_ms"] * 1000, row
            assert row["cost_micros"] < row["load_ms"] * 1000 or row is warm
        engines = gateway.engines()
        assert engines["tiny-a"]["state"] == "ready" and engines["tiny-a"]["loads"] == 1
        pid_a = engines["tiny-a"]["pid"]

        # Same group: serving tiny-stops stops tiny-a first.
        stops = gateway.chat("tiny-stops", stream=True, max_tokens=64)
        assert stops.status_code == 200 and stops.text.rstrip().endswith("data: [DONE]")
        engines = gateway.engines()
        assert engines["tiny-b"]["state"] == "ready"
        assert engines["tiny-a"]["state"] == "stopped"
        deadline = time.monotonic() + 10
        while alive(pid_a) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(pid_a)
        pid_b = engines["tiny-b"]["pid"]
    finally:
        gateway.stop()
    # The gateway's shutdown stopped every engine it started.
    deadline = time.monotonic() + 10
    while alive(pid_b) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid_b)


def test_an_idle_engine_is_stopped(models):
    gateway = Gateway(models, idle="2s")
    try:
        assert gateway.chat("tiny", max_tokens=4).status_code == 200
        assert gateway.engines()["tiny-a"]["state"] == "ready"
        deadline = time.monotonic() + 15
        while gateway.engines()["tiny-a"]["state"] != "stopped" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert gateway.engines()["tiny-a"]["state"] == "stopped"
        # The next request loads it again.
        assert gateway.chat("tiny", max_tokens=4).status_code == 200
        assert gateway.engines()["tiny-a"]["loads"] == 2
    finally:
        gateway.stop()


def test_a_streaming_client_waiting_for_the_load_gets_loading_comments_and_the_engines_answer(models):
    gateway = Gateway(models)
    try:
        reply = gateway.chat("tiny", stream=True, max_tokens=6)
        assert reply.status_code == 200
        assert ": loading tiny\n\n" in reply.text
        events = [line for line in reply.text.split("\n\n") if line.startswith("data: ")]
        assert events[-1] == "data: [DONE]"
        content = [json.loads(e[6:]) for e in events[:-1]]
        assert sum(1 for c in content if c["choices"] and c["choices"][0]["delta"].get("content")) == 6
        row = gateway.rows()[-1]
        assert row["status"] == "completed" and row["load_ms"] > 0
    finally:
        gateway.stop()


def test_streamed_usage_counted_by_the_engines_tokenizer_equals_its_own_non_stream_count(models):
    plain, _ = models
    gateway = Gateway(models)
    engine = None
    try:
        messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there, engine"}]
        streamed = gateway.chat("tiny", stream=True, max_tokens=8, seed=11, messages=messages,
                                stream_options={"include_usage": True})
        assert streamed.status_code == 200 and streamed.text.rstrip().endswith("data: [DONE]")
        row = gateway.rows()[-1]
        assert row["usage_source"] == "engine", row
        # The same seeded request, asked of the engine itself, whole: its own exact count.
        port = gateway.engines()["tiny-a"]["port"]
        direct = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=60,
                            json={"model": "tiny", "messages": messages, "max_tokens": 8, "seed": 11}).json()["usage"]
        assert row["prompt_tokens"] == direct["prompt_tokens"] and row["completion_tokens"] == direct["completion_tokens"]
        # An answer assembled for a non-streaming client (stream: always) carries the same counts.
        whole = gateway.chat("tiny", max_tokens=8, seed=11, messages=messages)
        assert whole.headers["x-switchyard-usage-source"] == "engine"
        assert whole.json()["usage"]["prompt_tokens"] == direct["prompt_tokens"]
        assert whole.json()["usage"]["completion_tokens"] == direct["completion_tokens"]
    finally:
        gateway.stop()
