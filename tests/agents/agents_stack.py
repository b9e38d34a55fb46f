"""What the coding-agent suite runs the agents against: the gateway's config, the fake upstream's
process, a Stack (the gateway, the recorder behind it) with fresh accounts and keys through the admin
API and the ledger as a key holder sees it. conftest.py makes the Stack once per session.

SWITCHYARD_BIN and SWITCHYARD_FAKE_UPSTREAM_BIN override the binaries (default: .build/debug/ in the
repo).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "tests" / "sdk"))  # gateway_process: launching the gateway

from gateway_process import GatewayProcess, free_port, launch  # noqa: E402
from recorder import Recorder  # noqa: E402

ADMIN_KEY = "sk-admin-agents-tests"
START_TIMEOUT_S = 30.0
# What the fake upstream (switchyard-fake-upstream) answers every chat completion: 8 tokens.
FAKE_REPLY = "w1 w2 w3 w4 w5 w6 w7 w8"
# What the recording upstream answers (behind the passed-through providers).
RECORDER_REPLY = "Recorded OK"
PRICE = {"input": "0.001", "output": "0.002"}  # per 1K tokens: every request that produced output costs > 0
# Upstream model ids, to see `model` rewritten on the way through.
UPSTREAM_MODEL = "upstream-agent"
UPSTREAM_CLAUDE = "upstream-claude"
UPSTREAM_NATIVE = "upstream-native"
UPSTREAM_ANTHROPIC_KEY = "sk-ant-upstream-secret"
UPSTREAM_NATIVE_KEY = "sk-native-upstream-secret"

# Claude Code asks for max_tokens 32000 (128000 for the aliases sonnet/opus/haiku), Codex for no limit at
# all, and their prompts are 40-50 KB: the context is generous so neither is refused, and holds stay
# small next to the balance.
CONFIG_BODY = """\
log_level: warning
providers:
  fake: {{kind: openai, base_url: "http://127.0.0.1:{fake}/v1", api_key: upstream-secret}}
  recorded-anthropic: {{kind: anthropic, base_url: "http://127.0.0.1:{recorder}/v1", api_key: {anthropic_key}}}
  recorded-native: {{kind: openai, base_url: "http://127.0.0.1:{recorder}/v1", api_key: {native_key}, responses: native}}
models:
  agent-model: {{deployments: [{{provider: fake, model: {upstream}}}], context: 400000, price: {{input: "{pin}", output: "{pout}"}}}}
  agent-claude: {{deployments: [{{provider: recorded-anthropic, model: {upstream_claude}}}], context: 400000, price: {{input: "{pin}", output: "{pout}"}}}}
  agent-native: {{deployments: [{{provider: recorded-native, model: {upstream_native}}}], context: 400000, price: {{input: "{pin}", output: "{pout}"}}}}
"""


def built_binary(env: str, name: str) -> Path:
    path = Path(os.environ.get(env) or ROOT / ".build" / "debug" / name)
    if not path.exists():
        pytest.fail(f"{path} does not exist: run `swift build` in {ROOT} first (or set {env})", pytrace=False)
    return path


def start_fake_upstream(binary: Path, workdir: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    out, err = workdir / "fake.stdout", workdir / "fake.stderr"
    popen = subprocess.Popen(
        [str(binary), "--host", "127.0.0.1", "--port", str(port)],
        stdout=open(out, "wb"), stderr=open(err, "wb"), stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if "fake upstream listening on" in out.read_text(errors="replace"):
            return popen, port
        if popen.poll() is not None:
            break
        time.sleep(0.05)
    popen.kill()
    pytest.fail("the fake upstream did not start:\n" + out.read_text(errors="replace") + err.read_text(errors="replace"),
                pytrace=False)


def http_json(method: str, url: str, key: str | None = None, body: dict | None = None) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text.decode(errors="replace")


@dataclass
class Stack:
    root: str  # http://127.0.0.1:PORT, no /v1
    gateway: GatewayProcess
    recorder: Recorder  # the upstream behind agent-claude (kind anthropic) and agent-native (responses: native)

    @property
    def v1(self) -> str:
        return self.root + "/v1"

    def new_key(self, balance: str = "50.00") -> str:
        """A fresh account, topped up with `balance` through the admin API, and a key of it."""
        name = "agents-" + uuid.uuid4().hex[:8]
        status, account = http_json("POST", f"{self.root}/admin/v1/accounts", ADMIN_KEY, {"name": name})
        assert status == 201, account
        status, credited = http_json(
            "POST", f"{self.root}/admin/v1/accounts/{account['id']}/credits", ADMIN_KEY,
            {"amount": balance, "reason": "agents suite", "idempotency_key": name},
        )
        assert status == 200, credited
        assert Decimal(credited["balance"]) == Decimal(balance), credited
        status, key = http_json("POST", f"{self.root}/admin/v1/accounts/{account['id']}/keys", ADMIN_KEY, {"label": name})
        assert status == 201, key
        return key["key"]

    def settled_rows(self, key: str, timeout: float = 10.0) -> list[dict]:
        """The key's ledger rows (GET /v1/usage), once at least one exists and none is still running."""
        deadline = time.monotonic() + timeout
        rows: list[dict] = []
        while time.monotonic() < deadline:
            status, page = http_json("GET", f"{self.v1}/usage", key)
            assert status == 200, page
            rows = page["data"]
            if rows and all(row["status"] != "running" for row in rows):
                return rows
            time.sleep(0.1)
        return rows
