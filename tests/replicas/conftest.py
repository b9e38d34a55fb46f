"""Two (and in some tests more) real gateway processes on one PostgreSQL database, in front of one
Python fake upstream (fake_upstream.py) that records what the gateways did to it.

Needs:
  SWITCHYARD_REPLICAS_DATABASE_URL  the database the replicas share (scripts/test-replicas.sh makes a
                                    fresh one per run); else SWITCHYARD_TEST_POSTGRES_URL; neither set:
                                    every test is skipped
  SWITCHYARD_BIN                    the gateway binary (default .build/debug/switchyard)
"""

from __future__ import annotations

import itertools
import os
import uuid
from pathlib import Path

import pytest

from fake_upstream import FakeUpstream
from gateway import ADMIN_KEY, GATEWAY, Gateway, config_text, free_port
from replica_helpers import Admin

# Every replica in these tests beats its heart four times a second, so that no replica (whatever
# `dead_after` the one judging it uses) is ever taken for dead while it lives; the session's pair
# lets 10 s pass before it calls one dead, the kill -9 test 2 s.
SESSION_REPLICAS = "{heartbeat: 250ms, dead_after: 10s}"

_GATEWAYS: list[Gateway] = []  # every replica started, for the logs of a failed test


def _database_url() -> str | None:
    return os.environ.get("SWITCHYARD_REPLICAS_DATABASE_URL") or os.environ.get("SWITCHYARD_TEST_POSTGRES_URL")


@pytest.fixture(scope="session")
def database_url() -> str:
    url = _database_url()
    if not url:
        pytest.skip("the replica suite needs PostgreSQL: set SWITCHYARD_REPLICAS_DATABASE_URL or SWITCHYARD_TEST_POSTGRES_URL "
                    "(scripts/test-replicas.sh makes a fresh database from the latter)")
    if not Path(GATEWAY).exists():
        pytest.fail(f"{GATEWAY} does not exist: run `swift build` first (or set SWITCHYARD_BIN)", pytrace=False)
    return url


@pytest.fixture(scope="session")
def upstream() -> FakeUpstream:
    fake = FakeUpstream()
    yield fake
    fake.close()


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("replicas")


class Replicas:
    """Starts replicas on the shared database; stops every one it started at teardown."""

    def __init__(self, workdir: Path, database: str, upstream: FakeUpstream) -> None:
        self.workdir, self.database, self.upstream = workdir, database, upstream
        self.started: list[Gateway] = []

    def start(self, name: str, replicas: str | None = SESSION_REPLICAS, database: str | None = None,
              grace: str = "5s", **config) -> Gateway:
        port = free_port()
        gateway = Gateway(
            name, self.workdir / f"{name}-{uuid.uuid4().hex[:6]}",
            config_text(port, database or self.database, self.upstream.port, replicas, grace=grace, **config), port,
        )
        self.started.append(gateway)
        _GATEWAYS.append(gateway)
        gateway.start()
        gateway.wait_ready()
        return gateway

    def stop_all(self) -> None:
        for gateway in self.started:
            gateway.stop()
        for gateway in self.started:
            if gateway in _GATEWAYS:
                _GATEWAYS.remove(gateway)


class Pair:
    def __init__(self, a: Gateway, b: Gateway) -> None:
        self.a, self.b = a, b
        self.admin = Admin(a.base, ADMIN_KEY)  # the admin API as replica A serves it
        self.admin_b = Admin(b.base, ADMIN_KEY)


@pytest.fixture(scope="session")
def pair(database_url, upstream, session_dir) -> Pair:
    """Replicas A and B, started one after the other (the first runs the migrations)."""
    replicas = Replicas(session_dir, database_url, upstream)
    try:
        a = replicas.start("A")
        b = replicas.start("B")
        yield Pair(a, b)
    finally:
        replicas.stop_all()


@pytest.fixture
def replicas(database_url, upstream, tmp_path) -> Replicas:
    """More replicas for one test (their own config), stopped when it ends."""
    made = Replicas(tmp_path, database_url, upstream)
    yield made
    made.stop_all()


_counter = itertools.count(1)


@pytest.fixture
def tag(request) -> str:
    """A tag for the fake upstream's counts, unique to the test."""
    return f"t{next(_counter)}-{uuid.uuid4().hex[:6]}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for gateway in _GATEWAYS:
            state = "running" if gateway.alive() else f"exited {gateway.popen.returncode if gateway.popen else '-'}"
            output = gateway.output()
            # A crash's backtrace fills the tail: its cause (Swift prints it first) and the crashed
            # thread's top frames are what say why.
            crash = output.find("Fatal error") if "Fatal error" in output else output.find("Assertion failed")
            if crash >= 0:
                crashed = output.find(" crashed:", crash)
                cause = output[crash:crash + 300]
                frames = output[crashed:crashed + 2500] if crashed >= 0 else ""
                report.sections.append((f"replica {gateway.name} ({gateway.base}, {state}) crash",
                                        cause + "\n…\n" + frames))
            report.sections.append((f"replica {gateway.name} ({gateway.base}, {state}) output (tail)",
                                    output[-3000:]))
