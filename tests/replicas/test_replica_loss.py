"""`kill -9` of a replica in the middle of a stream: nothing it held stays held. With
`replicas: {heartbeat: 250ms, dead_after: 2s}` the survivor completes its ledger row (`interrupted`,
end reason `replica_lost`, no charge), gives the account its held money back and frees the
concurrency slot; the killed replica then starts again cleanly on the same port."""

from __future__ import annotations

import time

import httpx

from gateway import ADMIN_KEY
from replica_helpers import Admin, Stream, auth, chat, money, wait_until

FAST_REPLICAS = "{heartbeat: 250ms, dead_after: 2s}"
DEAD_AFTER_S = 2.0
SURVIVOR_WITHIN_S = DEAD_AFTER_S + 4.0  # "within a few seconds" of the kill
LONG = {"words": 1000, "delay_ms": 20}  # 20 s unless cut


def start_stream_on(replica, key: str, tag: str, upstream) -> Stream:
    stream = Stream(replica.base, key, chat(tag, stream=True, max_tokens=1000, **LONG)).start()
    assert stream.first_chunk.wait(15) and stream.id, (stream.status, stream.error, stream.raw_error)
    assert upstream.records(tag) and not upstream.records(tag)[0].ended
    return stream


def one_request(base: str, key: str, tag: str) -> httpx.Response:
    return httpx.post(f"{base}/v1/chat/completions", json=chat(tag), headers=auth(key), timeout=15)


def test_kill_9_of_b_mid_stream_is_settled_by_a_and_b_restarts_cleanly(replicas, upstream, tag):
    a = replicas.start("A-kill", replicas=FAST_REPLICAS)
    b = replicas.start("B-kill", replicas=FAST_REPLICAS)
    admin = Admin(a.base, ADMIN_KEY)
    account = admin.create_account("10.00")
    _, key = admin.create_key(account, limits={"concurrent": 1})
    stream = start_stream_on(b, key, f"{tag}-b", upstream)

    held = admin.account(account)
    assert money(held["held"]) > 0, held  # B's stream holds money …
    busy = one_request(a.base, key, f"{tag}-busy")
    assert busy.status_code == 429, busy.text  # … and the key's one slot, seen from A
    balance = money(held["balance"])

    b.kill9()
    killed_at = time.monotonic()
    row = wait_until(lambda: (r := admin.row(stream.id)) and r["status"] != "running" and r, SURVIVOR_WITHIN_S + 2, 0.05)
    took = time.monotonic() - killed_at
    print(f"A settled the killed B's row {took:.2f}s after the kill")
    assert row, f"A did not settle B's row within {SURVIVOR_WITHIN_S + 2}s: {admin.row(stream.id)}"
    assert took <= SURVIVOR_WITHIN_S, f"A settled B's row {took:.1f}s after the kill"
    assert row["status"] == "interrupted" and row["end_reason"] == "replica_lost", row
    assert money(row["cost"]) == 0, row

    shown = wait_until(lambda: (s := admin.account(account)) and money(s["held"]) == 0 and s, 2, 0.05)
    assert shown, f"still held after B's row was settled: {admin.account(account)}"
    assert money(shown["balance"]) == balance and money(shown["available"]) == balance, shown  # no charge

    freed = wait_until(lambda: (r := one_request(a.base, key, f"{tag}-after")).status_code == 200 and r, 2, 0.1)
    assert freed, "the slot B held is not free: a request with concurrent 1 is still refused on A"

    # B starts again on the same port: ready, serving, and it settles nothing twice.
    b.start()
    b.wait_ready()
    assert b.popen.poll() is None
    errors = [line for line in b.output().splitlines() if " error " in line or " critical " in line]
    assert not errors, f"the restarted B logged errors: {errors[:5]}"
    answer = one_request(b.base, key, f"{tag}-restarted")
    assert answer.status_code == 200, answer.text
    again = admin.row(stream.id)
    assert (again["status"], again["end_reason"], again["cost"]) == (row["status"], row["end_reason"], row["cost"]), again
    rows = {r["id"]: r for r in admin.rows(account)}
    assert stream.id in rows and all(r["status"] != "running" for r in rows.values()), rows
    final = admin.account(account)
    assert money(final["held"]) == 0, final
    assert balance - money(final["balance"]) == sum(money(r["cost"]) for r in rows.values()), (final, rows)
    for replica in (a, b):
        replica.stop()
        assert replica.popen.returncode == 0, f"{replica.name} exited {replica.popen.returncode}:\n{replica.output()[-2500:]}"


def test_kill_9_of_b_then_a_quick_restart_completes_its_row_and_frees_its_slot_at_start(replicas, upstream, tag):
    """The other way nothing is lost: B comes back before A would call it dead. B's restart
    completes its own row at once (`interrupted`, `gateway_restart`, no charge, hold returned) and
    gives back the slot its previous life held (its leases are deleted before it serves), long
    before the lease would have expired (`dead_after`)."""
    dead_after = 5.0
    a = replicas.start("A-restart", replicas=f"{{heartbeat: 250ms, dead_after: {dead_after:g}s}}")
    b = replicas.start("B-restart", replicas=f"{{heartbeat: 250ms, dead_after: {dead_after:g}s}}")
    admin = Admin(a.base, ADMIN_KEY)
    account = admin.create_account("10.00")
    _, key = admin.create_key(account, limits={"concurrent": 1})
    stream = start_stream_on(b, key, tag, upstream)
    balance = money(admin.account(account)["balance"])
    assert one_request(a.base, key, f"{tag}-busy").status_code == 429

    b.kill9()
    killed_at = time.monotonic()
    b.start()
    b.wait_ready()
    row = wait_until(lambda: (r := admin.row(stream.id)) and r["status"] != "running" and r, dead_after, 0.05)
    settled_after = time.monotonic() - killed_at
    assert row, f"B's row is still running {dead_after}s after the kill: {admin.row(stream.id)}"
    print(f"B's restart settled its row {settled_after:.2f}s after the kill")
    # Completed by B's own start, before A could have called B dead.
    assert (row["status"], row["end_reason"]) == ("interrupted", "gateway_restart"), row
    assert money(row["cost"]) == 0, row
    shown = admin.account(account)
    assert money(shown["held"]) == 0 and money(shown["balance"]) == balance, shown

    def free() -> bool:
        return one_request(a.base, key, f"{tag}-after").status_code == 200

    # Free as soon as B is back (its start deleted its leases), well before dead_after.
    assert wait_until(free, dead_after - 1.5, 0.1), \
        f"the slot the killed B held is still taken {time.monotonic() - killed_at:.1f}s after the kill (dead_after {dead_after:g}s)"
    print(f"the killed B's slot was free again {time.monotonic() - killed_at:.2f}s after the kill")
    assert one_request(b.base, key, f"{tag}-after-b").status_code == 200
