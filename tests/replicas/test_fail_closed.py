"""Fail closed: a replica whose PostgreSQL becomes unreachable after it started answers 503
`database_unavailable` (and `/ready` 503), never 200 from counts of its own; when the database is back
it serves again. The replica reaches PostgreSQL through a TCP proxy (tcp_proxy.py) the test cuts."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from gateway import ADMIN_KEY, database_address, with_host
from replica_helpers import Admin, auth, chat, error_code, wait_until
from tcp_proxy import TCPProxy

OUTAGE_REQUESTS = 8
ANSWER_WITHIN_S = 12.0  # an unreachable database is answered, not waited on forever (PostgresNIO's connect timeout is 10 s)
RECOVER_WITHIN_S = 20.0


def ready_status(base: str) -> int:
    try:
        return httpx.get(f"{base}/ready", timeout=5).status_code
    except httpx.HTTPError:
        return 0


def send(base: str, key: str, tag: str, timeout: float = ANSWER_WITHIN_S + 3) -> tuple[float, int, dict | None, str]:
    """(seconds, status, body, text) of one chat completion; status 0 when it got no answer in time."""
    start = time.monotonic()
    try:
        answer = httpx.post(f"{base}/v1/chat/completions", json=chat(tag), headers=auth(key), timeout=timeout)
    except httpx.HTTPError as error:
        return time.monotonic() - start, 0, None, repr(error)
    try:
        body = answer.json()
    except ValueError:
        body = None
    return time.monotonic() - start, answer.status_code, body, answer.text


def assert_refused_while_down(base: str, key: str, tag: str) -> None:
    """OUTAGE_REQUESTS chat completions, started 100 ms apart and run at once: each must be refused."""
    with ThreadPoolExecutor(OUTAGE_REQUESTS) as pool:
        futures = []
        for _ in range(OUTAGE_REQUESTS):
            futures.append(pool.submit(send, base, key, tag))
            time.sleep(0.1)
        answers = [future.result() for future in futures]
    summary = [(round(took, 2), status, ((body or {}).get("error") or {}).get("code")) for took, status, body, _ in answers]
    assert all(status != 200 for _, status, _, _ in answers), f"admitted without its database: {summary}"
    for took, status, body, text in answers:
        assert status == 503, f"expected 503 database_unavailable, got {status}: {text[:300]} (all: {summary})"
        assert body["error"]["code"] == "database_unavailable" and body["error"]["type"] == "server_error", text
        assert took <= ANSWER_WITHIN_S, summary


def serving_again(base: str, key: str, tag: str) -> None:
    back = wait_until(lambda: send(base, key, tag, timeout=5)[1] == 200, RECOVER_WITHIN_S, 0.2)
    assert back, f"not serving {RECOVER_WITHIN_S}s after the database came back: {send(base, key, tag, timeout=5)}"
    ready = wait_until(lambda: ready_status(base) == 200, RECOVER_WITHIN_S, 0.1)
    assert ready, f"/ready is {ready_status(base)} {RECOVER_WITHIN_S}s after the database came back"


def stops_cleanly(gateway) -> None:
    """SIGTERM after the outage: the drain ends and the process exits 0."""
    gateway.stop()
    assert gateway.popen.returncode == 0, \
        f"{gateway.name} exited {gateway.popen.returncode} on SIGTERM after the outage:\n{gateway.output()[-2500:]}"


def replica_behind_proxy(replicas, database_url: str, name: str):
    proxy = TCPProxy(*database_address(database_url))
    gateway = replicas.start(name, database=with_host(database_url, "127.0.0.1", proxy.port))
    admin = Admin(gateway.base, ADMIN_KEY)
    account = admin.create_account("10.00")
    _, key = admin.create_key(account, limits={"requests_per_minute": 1000, "concurrent": 50})
    return proxy, gateway, admin, account, key


def test_a_replica_whose_database_is_cut_answers_503_and_serves_again_when_it_is_back(replicas, database_url, upstream, tag):
    proxy, c, admin, account, key = replica_behind_proxy(replicas, database_url, "C-cut")
    try:
        assert send(c.base, key, tag)[1] == 200 and ready_status(c.base) == 200
        proxy.cut()
        assert wait_until(lambda: ready_status(c.base) == 503, 5, 0.05), f"/ready still {ready_status(c.base)} 5 s after the cut"
        assert_refused_while_down(c.base, key, tag)
        assert ready_status(c.base) == 503
        assert len(upstream.records(tag)) == 1, "a request reached the upstream while the database was cut"
        proxy.restore()
        serving_again(c.base, key, tag)
        assert len(admin.rows(account)) == len(upstream.records(tag)), "ledger rows and upstream requests differ"
        stops_cleanly(c)
    finally:
        proxy.restore()
        c.stop()
        proxy.close()


def test_a_replica_whose_database_stops_answering_answers_503_and_serves_again(replicas, database_url, upstream, tag):
    """A partition rather than a refusal: the connections stay open and nothing comes back."""
    proxy, c, admin, account, key = replica_behind_proxy(replicas, database_url, "C-partition")
    try:
        assert send(c.base, key, tag)[1] == 200 and ready_status(c.base) == 200
        proxy.blackhole()
        assert wait_until(lambda: ready_status(c.base) == 503, 8, 0.1), f"/ready still {ready_status(c.base)} 8 s into the partition"
        assert_refused_while_down(c.base, key, tag)
        assert len(upstream.records(tag)) == 1, "a request reached the upstream while the database was unreachable"
        proxy.restore()
        serving_again(c.base, key, tag)
        assert len(admin.rows(account)) == len(upstream.records(tag))
        stops_cleanly(c)
    finally:
        proxy.restore()
        c.stop()
        proxy.close()
