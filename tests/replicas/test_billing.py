"""1 000 requests over two replicas race a balance that covers exactly 50 of them: holds are taken
in PostgreSQL, so the balance never goes below zero and what it lost is exactly the ledger's sum."""

from __future__ import annotations

import threading
import time
from collections import Counter
from decimal import Decimal

from replica_helpers import burst, chat, money

REQUESTS = 1000
COVERED = 50
PRICE = Decimal("0.01")  # `per-request`: price {request: "0.01"}, so the hold is the cost
UPSTREAM_DELAY_MS = 600  # the admitted hold their money while the rest race for it (and the watcher sees it)


def test_1000_requests_racing_a_balance_for_50_never_overspend(pair, upstream, tag):
    balance = PRICE * COVERED
    account = pair.admin.create_account(str(balance))
    _, key = pair.admin.create_key(account)
    replicas = [pair.a.base, pair.b.base]

    seen: list[tuple[Decimal, Decimal, Decimal]] = []  # (balance, held, available) as the admin API showed them
    stop = threading.Event()

    def watch() -> None:
        admins = [pair.admin, pair.admin_b]
        deadline = time.monotonic() + 120
        turn = 0
        while not stop.is_set() and time.monotonic() < deadline:
            shown = admins[turn % 2].account(account)
            seen.append((money(shown["balance"]), money(shown["held"]), money(shown["available"])))
            turn += 1
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    # The watcher reads before the race starts, so a busy machine cannot leave it unscheduled for all of it.
    for _ in range(500):
        if seen:
            break
        time.sleep(0.01)
    try:
        answers = burst(
            [(replicas[i % 2], key, chat(tag, words=3, delay_ms=UPSTREAM_DELAY_MS, model="per-request")) for i in range(REQUESTS)],
            connections=400,
        )
    finally:
        stop.set()
        watcher.join(10)

    statuses = Counter(answer.status for answer in answers)
    odd = next((answer.text or answer.error for answer in answers if answer.status not in (200, 402)), None)
    assert statuses == {200: COVERED, 402: REQUESTS - COVERED}, f"{dict(statuses)}; an odd answer: {odd}"
    for answer in answers:
        if answer.status == 402:
            assert answer.body["error"]["code"] == "insufficient_quota", answer.text
    assert len(upstream.records(tag)) == COVERED

    # While they raced: never below zero, and never more held than there was.
    assert len(seen) >= 5, f"only {len(seen)} account reads during the race"
    assert all(b >= 0 and held >= 0 and available >= 0 for b, held, available in seen), \
        [s for s in seen if min(s) < 0][:5]
    assert max(held for _, held, _ in seen) > 0, "no read saw a hold: the race was not observed"

    final = pair.admin.account(account)
    assert money(final["held"]) == 0, final
    assert money(final["balance"]) == 0, final  # 50 × 0.01 spent, to the micro-unit
    assert money(pair.admin_b.account(account)["balance"]) == money(final["balance"])

    rows = pair.admin.rows(account)
    assert len(rows) == COVERED, f"{len(rows)} ledger rows for {COVERED} admitted requests"
    assert {row["status"] for row in rows} == {"completed"}, Counter(row["status"] for row in rows)
    assert sum(money(row["cost"]) for row in rows) == balance - money(final["balance"])
    assert all(money(row["cost"]) == PRICE and money(row["hold"]) == PRICE for row in rows)
    assert {row["id"] for row in rows} == {answer.body["id"] for answer in answers if answer.status == 200}
