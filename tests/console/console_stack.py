"""What the browser suite runs the console against: the real gateway binary with a config of its own
(the built-in `test` provider, slow enough that a stream is seen to grow; a managed engine made of
the fake upstream, for the engines' start and stop buttons; an admin key), fresh accounts and keys
through the admin API, and the page's origin: the gateway itself when it serves the console (GET /
answers text/html), else tests/console/dev_server.py in front of it (an older binary).

SWITCHYARD_BIN and SWITCHYARD_FAKE_UPSTREAM_BIN override the binaries (default: .build/debug/).
CONSOLE_DEV_SERVER=1 forces the dev server even when the gateway serves the console (to try edits to
console/ without rebuilding).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "tests" / "sdk"))  # gateway_process: launching the gateway

from gateway_process import GatewayProcess, launch  # noqa: E402
from dev_server import DevServer  # noqa: E402

ADMIN_KEY = "sk-admin-console-tests-0123456789"
# What the console's Content-Security-Policy must say at least (docs/CONSOLE.md).
CSP_DIRECTIVES = {
    "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
    "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
}
# The test provider answers every chat with this text, cut to `tokens` tokens.
TOKENS = 40
CONFIG_BODY = """\
log_level: warning
admin_key: {admin_key}
providers:
  demo: {{kind: test, tokens: {tokens}, token_delay: 40ms}}
  slow: {{kind: test, tokens: 600, token_delay: 40ms}}
  quick: {{kind: test, tokens: 3, token_delay: 1ms}}
  engine-a:
    kind: managed
    command: [{fake}, --host, 127.0.0.1, --port, "${{PORT}}"]
    health_path: /v1/models
    start_timeout: 30s
    idle_timeout: 10m
    stop_timeout: 5s
models:
  qwen:
    description: "Alibaba Qianwen2 72B. Excellent Chinese."
    context: 32768
    price: {{input: "0.04", output: "0.04"}}
    aliases: [qwen2-72b]
    deployments: [{{provider: demo, model: Qwen2-72B-Instruct}}]
  yi-34b-t:
    description: "Yi 34B Chat billed by processing time."
    context: 4096
    price: {{second: "0.019", max_seconds: 120}}
    deployments: [{{provider: demo}}]
  slow-model:
    description: "A long answer, to stop halfway."
    context: 8192
    price: {{input: "0.01", output: "0.02"}}
    deployments: [{{provider: slow}}]
  quick:
    description: "Three tokens at once (for filling ledgers)."
    context: 4096
    price: {{request: "0.001"}}
    deployments: [{{provider: quick}}]
  engine-model:
    description: "Served by a managed engine (the fake upstream)."
    context: 4096
    deployments: [{{provider: engine-a, model: fake-model}}]
  text-embedding-demo:
    context: 8192
    price: {{input: "0.0001"}}
    endpoints: [embeddings]
    deployments: [{{provider: demo}}]
"""


def built_binary(env: str, name: str) -> Path:
    path = Path(os.environ.get(env) or ROOT / ".build" / "debug" / name)
    if not path.exists():
        pytest.fail(f"{path} does not exist: run `swift build` in {ROOT} first (or set {env})", pytrace=False)
    return path


def http(method: str, url: str, key: str | None = None, body: dict | None = None) -> tuple[int, dict, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def http_json(method: str, url: str, key: str | None = None, body: dict | None = None) -> tuple[int, object]:
    status, _, text = http(method, url, key, body)
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text.decode(errors="replace")


@dataclass
class Account:
    id: str
    key: str


@dataclass
class Stack:
    gateway: GatewayProcess
    origin: str  # what the browser opens: the gateway, or the dev server in front of it
    served_by_gateway: bool
    dev_server: DevServer | None
    secrets: list[str] = field(default_factory=list)  # every key the tests know of: none may be in a URL

    @property
    def api(self) -> str:
        return self.gateway.base

    def new_account(self, balance: str = "10.00", name: str | None = None, models: list[str] | None = None) -> Account:
        """A fresh account with `balance` (topped up through the admin API) and a key of it."""
        name = name or "console-" + uuid.uuid4().hex[:8]
        body: dict = {"name": name}
        if models:
            body["models"] = models
        status, account = http_json("POST", f"{self.api}/admin/v1/accounts", ADMIN_KEY, body)
        assert status == 201, account
        if Decimal(balance):
            status, credited = http_json(
                "POST", f"{self.api}/admin/v1/accounts/{account['id']}/credits", ADMIN_KEY,
                {"amount": balance, "reason": "console suite", "idempotency_key": f"{name}-{uuid.uuid4().hex}"},
            )
            assert status == 200, credited
        status, key = http_json("POST", f"{self.api}/admin/v1/accounts/{account['id']}/keys", ADMIN_KEY, {"label": name})
        assert status == 201, key
        self.secrets.append(key["key"])
        return Account(account["id"], key["key"])

    def account(self, key: str) -> dict:
        status, account = http_json("GET", f"{self.api}/v1/account", key)
        assert status == 200, account
        return account

    def row(self, key: str, request_id: str, timeout: float = 15.0) -> dict:
        """The ledger row of `request_id`, once settled (GET /v1/usage/{id})."""
        deadline = time.monotonic() + timeout
        row: object = None
        while time.monotonic() < deadline:
            status, row = http_json("GET", f"{self.api}/v1/usage/{request_id}", key)
            if status == 200 and row["status"] != "running":
                return row
            time.sleep(0.1)
        raise AssertionError(f"no settled ledger row for {request_id}: {row}")

    def chat(self, key: str, model: str = "quick", **extra) -> dict:
        status, answer = http_json(
            "POST", f"{self.api}/v1/chat/completions", key,
            {"model": model, "messages": [{"role": "user", "content": "Hello"}], **extra},
        )
        assert status == 200, answer
        return answer


def serves_console(base: str) -> bool:
    status, headers, _ = http("GET", base + "/")
    content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    return status == 200 and content_type.startswith("text/html")


def stale_console_files(base: str) -> list[str]:
    """The files of console/ that the gateway serves differently (or not at all): a binary built
    before console/ last changed (scripts/embed-console.py, then swift build)."""
    stale = []
    for path in sorted(p for p in (ROOT / "console").rglob("*") if p.is_file() and not p.name.startswith(".")):
        name = path.relative_to(ROOT / "console").as_posix()
        status, _, body = http("GET", f"{base}/console/{name}")
        if status != 200 or body != path.read_bytes():
            stale.append(name)
    return stale


def start_stack(workdir: Path) -> Stack:
    fake = built_binary("SWITCHYARD_FAKE_UPSTREAM_BIN", "switchyard-fake-upstream")
    built_binary("SWITCHYARD_BIN", "switchyard")
    gateway = launch(workdir, CONFIG_BODY.format(admin_key=ADMIN_KEY, tokens=TOKENS, fake=json.dumps(str(fake))), grace="2s")
    secrets = [ADMIN_KEY] + ([gateway.demo_key] if gateway.demo_key else [])
    if serves_console(gateway.base) and os.environ.get("CONSOLE_DEV_SERVER") != "1":
        stale = stale_console_files(gateway.base)
        if stale:
            gateway.kill()
            pytest.fail(
                f"the gateway serves a console that differs from console/ ({', '.join(stale)}): run "
                "scripts/embed-console.py and `swift build`, or set CONSOLE_DEV_SERVER=1 to test console/ "
                "through tests/console/dev_server.py", pytrace=False)
        return Stack(gateway, gateway.base, True, None, secrets)
    dev = DevServer(gateway.base).start()
    return Stack(gateway, dev.base, False, dev, secrets)
