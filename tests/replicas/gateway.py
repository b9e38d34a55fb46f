"""Runs the gateway binary (`switchyard serve`) with a config of the test's own, on a port of its own,
its stdout and stderr captured to files. Adapted from tests/sdk/gateway_process.py: a replica can be
killed (`kill -9`) and started again on the same port with the same config.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = os.environ.get("SWITCHYARD_BIN", str(ROOT / ".build" / "debug" / "switchyard"))
START_TIMEOUT_S = 30.0
ADMIN_KEY = "sk-admin-replica-tests"


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the test process dies, so no replica outlives a
    killed run (Linux's PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def config_text(port: int, database: str, upstream_port: int, replicas: str | None, grace: str = "5s",
                extra_providers: list[str] = (), extra_models: list[str] = (), routing: str | None = None) -> str:
    """One replica's config: the fake upstream behind `m` (priced per token) and `per-request`
    (priced per request); no retries and no cooldowns, so every count is the gateway's admission
    (unless a test gives `routing` and providers and models of its own, as indented YAML lines)."""
    lines = [
        f"server: {{host: 127.0.0.1, port: {port}, shutdown_grace: {grace}}}",
        f'database: "{database}"',
        f"admin_key: {ADMIN_KEY}",
        "log_level: info",
    ]
    if replicas:
        lines.append(f"replicas: {replicas}")
    lines += [
        "providers:",
        f'  up: {{kind: openai, base_url: "http://127.0.0.1:{upstream_port}/v1", api_key: upstream-secret,'
        " max_connections: 1024, max_queue: 4096, timeouts: {connect: 2s, first_byte: 30s, idle: 30s}}",
        *extra_providers,
        "models:",
        '  m: {deployments: [{provider: up, model: up-m}], price: {input: "1.00", output: "2.00"}}',
        '  per-request: {deployments: [{provider: up, model: up-r}], price: {request: "0.01"}}',
        *extra_models,
        routing or "routing: {max_attempts: 1, deadline: 30s, cooldown: {failures: 1000000}}",
    ]
    return "\n".join(lines) + "\n"


def with_host(url: str, host: str, port: int) -> str:
    """The same database URL (user, password, database, query) reached at host:port."""
    parts = urllib.parse.urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@{host}:{port}" if credentials else f"{host}:{port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def database_address(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 5432


class Gateway:
    """One replica. `start()` (again after `kill9()` or `stop()`) uses the same port and config."""

    def __init__(self, name: str, workdir: Path, config: str, port: int) -> None:
        self.name, self.workdir, self.port = name, workdir, port
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "gateway.yaml"
        self.config_path.write_text(config)
        self.base = f"http://127.0.0.1:{port}"
        self.popen: subprocess.Popen | None = None
        self.starts = 0

    @property
    def stdout_path(self) -> Path:
        return self.workdir / f"gateway-{self.starts}.stdout"

    @property
    def stderr_path(self) -> Path:
        return self.workdir / f"gateway-{self.starts}.stderr"

    def output(self) -> str:
        """Everything the current (or last) process wrote, stdout then stderr."""
        text = ""
        for path in (self.stdout_path, self.stderr_path):
            try:
                text += path.read_text(errors="replace")
            except OSError:
                pass
        return text

    def start(self) -> "Gateway":
        assert self.popen is None or self.popen.poll() is not None, f"{self.name} is running"
        self.starts += 1
        self.popen = subprocess.Popen(
            [GATEWAY, "serve", "--config", str(self.config_path)],
            stdout=open(self.stdout_path, "wb"), stderr=open(self.stderr_path, "wb"), stdin=subprocess.DEVNULL,
            env=dict(os.environ), preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if "listening on" in self.stdout_path.read_text(errors="replace"):
                return self
            if self.popen.poll() is not None:
                break
            time.sleep(0.05)
        code = self.popen.poll()
        self.kill9()
        pytest.fail(f"replica {self.name} did not start (exit code {code}):\n{self.output()[-6000:]}", pytrace=False)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill9(self) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self, timeout: float = 25) -> None:
        """SIGTERM (the drain), then SIGKILL if it has not exited within `timeout`."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill9()

    def wait_ready(self, timeout: float = 15) -> None:
        """Until /ready answers 200 (bounded)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = httpx.get(f"{self.base}/ready", timeout=2)
                if last.status_code == 200:
                    return
            except httpx.HTTPError as error:
                last = error
            time.sleep(0.05)
        pytest.fail(f"replica {self.name} not ready within {timeout}s: {getattr(last, 'text', last)!r}", pytrace=False)
