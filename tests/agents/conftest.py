"""The coding-agent suite's fixtures: the fake upstream, a recording upstream (recorder.py, in this
process) and the gateway once per session (agents_stack.py), and a recorder of a test's own.

SWITCHYARD_BIN and SWITCHYARD_FAKE_UPSTREAM_BIN override the binaries (default: .build/debug/ in the
repo); CODEX_BIN and CLAUDE_BIN the agents' (default: the packages installed in this Python).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest

from agents_stack import (
    ADMIN_KEY, CONFIG_BODY, PRICE, RECORDER_REPLY, UPSTREAM_ANTHROPIC_KEY, UPSTREAM_CLAUDE, UPSTREAM_MODEL,
    UPSTREAM_NATIVE, UPSTREAM_NATIVE_KEY, Stack, built_binary, start_fake_upstream, launch,
)
from recorder import Recorder

_STACK: Stack | None = None


@pytest.fixture(scope="session")
def stack():
    global _STACK
    gateway_bin = built_binary("SWITCHYARD_BIN", "switchyard")
    fake_bin = built_binary("SWITCHYARD_FAKE_UPSTREAM_BIN", "switchyard-fake-upstream")
    with tempfile.TemporaryDirectory(prefix="switchyard-agents-") as tmp_name:
        tmp = Path(tmp_name)
        fake, fake_port = start_fake_upstream(fake_bin, tmp)
        recorder = Recorder(reply=RECORDER_REPLY, log_path=str(tmp / "recorder.jsonl"))
        gateway = None
        try:
            body = CONFIG_BODY.format(
                fake=fake_port, recorder=recorder.port, anthropic_key=UPSTREAM_ANTHROPIC_KEY, native_key=UPSTREAM_NATIVE_KEY,
                upstream=UPSTREAM_MODEL, upstream_claude=UPSTREAM_CLAUDE, upstream_native=UPSTREAM_NATIVE,
                pin=PRICE["input"], pout=PRICE["output"],
            )
            gateway = launch(tmp, body, env={"SWITCHYARD_ADMIN_KEY": ADMIN_KEY})
            _STACK = Stack(root=gateway.base, gateway=gateway, recorder=recorder)
            yield _STACK
        finally:
            _STACK = None
            if gateway is not None:
                gateway.signal()
                try:
                    gateway.wait(15)
                except subprocess.TimeoutExpired:
                    gateway.kill()
            fake.terminate()
            try:
                fake.wait(10)
            except subprocess.TimeoutExpired:
                fake.kill()
            recorder.close()


@pytest.fixture
def recorder():
    """A recording server of the test's own (the agents talk to it directly)."""
    server = Recorder()
    yield server
    server.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _STACK is not None and "stack" in getattr(item, "fixturenames", ()):
        report.sections.append(("gateway output (tail)", _STACK.gateway.output()[-4000:]))
        if _STACK.gateway.popen.poll() is not None:
            report.sections.append(("gateway exited", f"exit code {_STACK.gateway.popen.returncode}"))
