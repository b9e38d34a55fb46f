"""A deployment that fails on replica A is skipped by replica B too: the cooldown A starts reaches B
over PostgreSQL NOTIFY. The model `c` has a deployment nothing listens behind (`dead`, priority 0,
tried first) and the fake upstream behind it (priority 1); one failure starts a cooldown of a minute.
Which deployments a request tried, and which it skipped as cooling, is on its ledger row (`attempts`)."""

from __future__ import annotations

import time

import httpx

from gateway import ADMIN_KEY, free_port
from replica_helpers import Admin, auth, chat


def config(dead_port: int) -> dict:
    return {
        "extra_providers": [
            f'  dead: {{kind: openai, base_url: "http://127.0.0.1:{dead_port}/v1", timeouts: {{connect: 1s}}}}',
        ],
        "extra_models": [
            "  c: {deployments: [{provider: dead, model: dead-c, priority: 0}, {provider: up, model: up-c, priority: 1}],"
            ' price: {input: "1.00", output: "2.00"}}',
        ],
        "routing": "routing: {max_attempts: 2, deadline: 30s, backoff: 1ms,"
        " cooldown: {failures: 1, duration: 60s}}",
    }


def test_a_cooldown_begun_on_a_is_honoured_by_b(replicas, upstream, tag):
    dead_port = free_port()  # nothing listens there: every connection is refused
    a = replicas.start("A-cool", **config(dead_port))
    b = replicas.start("B-cool", **config(dead_port))
    admin = Admin(a.base, ADMIN_KEY)
    account = admin.create_account("10.00")
    _, key = admin.create_key(account)

    # A tries the dead deployment first, fails over to the upstream, and cools `dead` down.
    first = httpx.post(f"{a.base}/v1/chat/completions", json=chat(tag, model="c"), headers=auth(key), timeout=10)
    assert first.status_code == 200, first.text
    row = admin.row(first.json()["id"])
    assert row and "dead/dead-c:connect_error" in (row["attempts"] or ""), row

    # B never saw `dead` fail, yet skips it: its requests go straight to the upstream.
    time.sleep(0.2)
    for index in range(3):
        answer = httpx.post(f"{b.base}/v1/chat/completions", json=chat(f"{tag}-{index}", model="c"), headers=auth(key),
                            timeout=10)
        assert answer.status_code == 200, answer.text
        row = admin.row(answer.json()["id"])
        assert row, answer.json()
        # `dead/dead-c:cooling`: skipped without a connection attempt (B alone would have tried it
        # and recorded `connect_error`).
        assert "dead/dead-c:cooling" in row["attempts"] and "connect_error" not in row["attempts"], \
            f"B tried the deployment A had cooled down: {row}"
        assert "up-c" in row["deployment"], row
