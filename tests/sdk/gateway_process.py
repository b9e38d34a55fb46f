"""Runs the gateway binary with a config of the test's own, its stdout and stderr captured to files.

For tests that need a process of their own: a signal, a log level, a database to inspect afterwards.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = os.environ.get("SWITCHYARD_BIN", str(ROOT / ".build" / "debug" / "switchyard"))
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class GatewayProcess:
    popen: subprocess.Popen
    base: str  # http://127.0.0.1:PORT
    demo_key: str | None  # announced on the first start of an empty database
    workdir: Path
    stdout_path: Path
    stderr_path: Path

    @property
    def database(self) -> Path:
        return self.workdir / "gateway.sqlite"

    def output(self) -> str:
        """Everything the process wrote so far, stdout then stderr."""
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.popen.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)


def launch(
    workdir: Path, config_body: str, env: dict | None = None, grace: str = "10s", database: str | None = None
) -> GatewayProcess:
    """Starts `switchyard serve` on a free port with `config_body` (providers, models, log settings)
    below a server section and a database (default: SQLite in workdir); waits for it to listen."""
    port = free_port()
    config = workdir / "gateway.yaml"
    config.write_text(
        f"server: {{host: 127.0.0.1, port: {port}, shutdown_grace: {grace}}}\n"
        f"database: \"{database or 'sqlite:' + str(workdir / 'gateway.sqlite')}\"\n" + config_body
    )
    stdout_path, stderr_path = workdir / "gateway.stdout", workdir / "gateway.stderr"
    popen = subprocess.Popen(
        [GATEWAY, "serve", "--config", str(config)],
        stdout=open(stdout_path, "wb"), stderr=open(stderr_path, "wb"), stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        text = stdout_path.read_text(errors="replace")
        if "listening on" in text:
            match = re.search(r"demo account.*?(sk-sy-[0-9A-Za-z]+)", text)
            key = match.group(1) if match else None
            return GatewayProcess(popen, f"http://127.0.0.1:{port}", key, workdir, stdout_path, stderr_path)
        if popen.poll() is not None:
            break
        time.sleep(0.05)
    popen.kill()
    pytest.fail(
        "gateway did not start:\n" + stdout_path.read_text(errors="replace") + stderr_path.read_text(errors="replace"),
        pytrace=False,
    )
