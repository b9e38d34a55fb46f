#!/usr/bin/env python3
"""Traffic and checks for `scripts/replicas.sh --check` (standard library only; 127.0.0.1 only).

  setup   --url LB --admin-key K                 an account and a key with limits high enough never
                                                  to refuse; prints `ACCOUNT=… KEY=…`
  smoke   --url LB --key K [--count 6]           a few requests, whole and streamed; every one must
                                                  succeed and both replicas must have answered
  load    --url LB --key K --until FILE --out F  workers send requests (every other one streamed,
                                                  each on a new connection, each with its own
                                                  x-request-id) until FILE exists; one JSON line per
                                                  request in F; bounded by --max-seconds
  streams --url R --key K --model M --ready FILE  opens --count streams directly to one replica,
                                                  touches FILE once each has its first chunk, reads
                                                  them to the end; fails unless each ends in [DONE]
  drained --url R --key K                        the replica is draining: /ready 503 (draining),
                                                  /health 200, a new request 503 shutting_down
  verify  --url LB --admin-key K --account A --key K --balance-before B --results F...
                                                  every request in the result files succeeded and
                                                  has exactly one completed ledger row; the balance
                                                  fell by exactly the ledger's cost
  balance --url LB --key K                       prints the account's balance

Exits 0 when what it checked held, 1 (with the reason on stderr) when not.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse
from decimal import Decimal

HOST = "127.0.0.1"
BODY_MODEL = "qwen"


def conn_for(url: str, timeout: float = 30.0) -> tuple[http.client.HTTPConnection, str]:
    parts = urllib.parse.urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"refusing a non-loopback address: {url}")
    return http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout), parts.path.rstrip("/")


def call(url: str, method: str, path: str, key: str | None = None, body=None, headers=None, timeout=30.0):
    """One request on a new connection; returns (status, headers, body bytes)."""
    conn, prefix = conn_for(url, timeout)
    try:
        hdrs = {"connection": "close", **(headers or {})}
        if key:
            hdrs["authorization"] = f"Bearer {key}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["content-type"] = "application/json"
        conn.request(method, prefix + path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def chat(url: str, key: str, stream: bool, request_id: str, model: str = BODY_MODEL, max_tokens: int = 4,
         on_first_chunk=None, timeout: float = 60.0) -> dict:
    """A chat completion; for a stream, reads it to the end. Returns what happened."""
    body = {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": "hello"}]}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    started = time.monotonic()
    result = {"id": request_id, "stream": stream, "status": None, "replica": None, "ok": False, "error": None}
    conn, prefix = conn_for(url, timeout)
    try:
        conn.request("POST", prefix + "/v1/chat/completions", body=json.dumps(body).encode(), headers={
            "authorization": f"Bearer {key}", "content-type": "application/json", "connection": "close",
            "x-request-id": request_id,
        })
        resp = conn.getresponse()
        result["status"] = resp.status
        result["replica"] = resp.getheader("x-switchyard-upstream") or "direct " + url.split("//", 1)[-1].rstrip("/")
        if resp.status != 200:
            text = resp.read().decode(errors="replace")
            try:
                result["error"] = json.loads(text)["error"].get("code") or text[:200]
            except (ValueError, KeyError, TypeError, AttributeError):
                result["error"] = text[:200]
            return result
        if not stream:
            payload = json.loads(resp.read())
            result["ok"] = bool(payload.get("choices")) and "usage" in payload
            if not result["ok"]:
                result["error"] = "malformed answer"
            return result
        done = errored = False
        chunks = 0
        while True:
            line = resp.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                done = True
                continue
            chunks += 1
            if chunks == 1 and on_first_chunk:
                on_first_chunk()
            try:
                if "error" in json.loads(data):
                    errored = True
                    result["error"] = json.loads(data)["error"].get("code", "stream error")
            except ValueError:
                errored = True
                result["error"] = "malformed chunk"
        result["ok"] = done and not errored and chunks > 0
        if not result["ok"] and not result["error"]:
            result["error"] = "stream ended without [DONE]"
        return result
    except (OSError, http.client.HTTPException) as error:
        result["error"] = f"{type(error).__name__}: {error}"
        return result
    finally:
        result["ms"] = round((time.monotonic() - started) * 1000, 1)
        conn.close()


def fail(message: str) -> None:
    print(f"replicas-traffic: {message}", file=sys.stderr)
    sys.exit(1)


def cmd_setup(args) -> None:
    limits = {"requests_per_minute": 1_000_000, "tokens_per_minute": 1_000_000_000, "concurrent": 10_000}
    status, _, body = call(args.url, "POST", "/admin/v1/accounts", args.admin_key, {
        "name": "replicas-check", "balance": "100.00", "limits": limits})
    if status != 201:
        fail(f"creating the account: {status} {body[:300]!r}")
    account = json.loads(body)["id"]
    status, _, body = call(args.url, "POST", f"/admin/v1/accounts/{account}/keys", args.admin_key, {
        "label": "replicas-check", "limits": limits})
    if status != 201:
        fail(f"creating the key: {status} {body[:300]!r}")
    print(f"ACCOUNT={account} KEY={json.loads(body)['key']}")


def cmd_balance(args) -> None:
    status, _, body = call(args.url, "GET", "/v1/account", args.key)
    if status != 200:
        fail(f"GET /v1/account: {status} {body[:300]!r}")
    print(json.loads(body)["balance"])


def cmd_smoke(args) -> None:
    replicas, failures = {}, []
    out = open(args.out, "w") if args.out else None
    for n in range(args.count):
        result = chat(args.url, args.key, stream=n % 2 == 1, request_id=f"smoke-{os.getpid()}-{n}")
        replicas[result["replica"]] = replicas.get(result["replica"], 0) + 1
        if out:
            out.write(json.dumps(result) + "\n")
        if not result["ok"]:
            failures.append(result)
    if out:
        out.close()
    print(f"smoke: {args.count} requests, by replica {replicas}")
    if failures:
        fail(f"{len(failures)} failed: {failures[:3]}")
    if len([r for r in replicas if r]) < 2:
        fail(f"expected both replicas to answer, got {replicas}")


def cmd_load(args) -> None:
    deadline = time.monotonic() + args.max_seconds
    lock = threading.Lock()
    out = open(args.out, "w")
    counts = {"sent": 0}

    def worker(w: int) -> None:
        n = 0
        while not os.path.exists(args.until) and time.monotonic() < deadline and n < args.max_per_worker:
            result = chat(args.url, args.key, stream=n % 2 == 1, request_id=f"load-{os.getpid()}-{w}-{n}")
            result["t"] = round(time.time(), 3)
            with lock:
                out.write(json.dumps(result) + "\n")
                out.flush()
                counts["sent"] += 1
            n += 1

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(args.workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(args.max_seconds + 90)
    out.close()
    if not os.path.exists(args.until):
        fail(f"stopped by --max-seconds {args.max_seconds} or --max-per-worker before {args.until} appeared")


def cmd_streams(args) -> None:
    results, started = [None] * args.count, threading.Semaphore(0)

    def one(i: int) -> None:
        first = []

        def on_first() -> None:
            first.append(True)
            started.release()

        results[i] = chat(args.url, args.key, stream=True, request_id=f"drain-{os.getpid()}-{i}",
                          model=args.model, max_tokens=args.max_tokens, on_first_chunk=on_first, timeout=120)
        if not first:
            started.release()  # never started: do not keep the caller waiting

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(args.count)]
    for thread in threads:
        thread.start()
    for _ in range(args.count):
        if not started.acquire(timeout=30):
            break
    open(args.ready, "w").close()
    for thread in threads:
        thread.join(150)
    with open(args.out, "w") as out:
        for result in results:
            out.write(json.dumps(result) + "\n")
    bad = [r for r in results if not r or not r["ok"]]
    print(f"streams on {args.url}: {args.count - len(bad)}/{args.count} complete "
          f"({', '.join(str(r['ms']) + ' ms' for r in results if r)})")
    if bad:
        fail(f"incomplete streams: {bad}")


def cmd_drained(args) -> None:
    status, _, body = call(args.url, "GET", "/ready")
    if status != 503 or b"draining" not in body:
        fail(f"/ready while draining: {status} {body[:200]!r} (expected 503, draining)")
    status, _, body = call(args.url, "GET", "/health")
    if status != 200:
        fail(f"/health while draining: {status} {body[:200]!r} (expected 200)")
    result = chat(args.url, args.key, stream=False, request_id=f"refused-{os.getpid()}")
    if result["status"] != 503 or result["error"] != "shutting_down":
        fail(f"a new request while draining: {result} (expected 503 shutting_down)")
    print("draining replica: /ready 503 draining, /health 200, new request 503 shutting_down")


def ledger_rows(url: str, admin_key: str, account: str) -> list[dict]:
    rows, cursor = [], None
    for _ in range(1000):  # at most 1 000 000 rows
        query = {"account": account, "limit": "1000"}
        if cursor:
            query["cursor"] = cursor
        status, _, body = call(url, "GET", "/admin/v1/usage?" + urllib.parse.urlencode(query), admin_key)
        if status != 200:
            fail(f"GET /admin/v1/usage: {status} {body[:300]!r}")
        page = json.loads(body)
        rows += page["data"]
        cursor = page.get("next_cursor")
        if not cursor:
            return rows
    fail("too many ledger pages")


def cmd_verify(args) -> None:
    results = []
    for path in args.results:
        with open(path) as f:
            results += [json.loads(line) for line in f if line.strip()]
    failed = [r for r in results if not r["ok"]]
    if failed:
        fail(f"{len(failed)} of {len(results)} requests failed, e.g. {failed[:5]}")
    # The ledger settles a stream just before its [DONE]; give the last settlements a moment.
    deadline = time.monotonic() + 10
    while True:
        rows = ledger_rows(args.url, args.admin_key, args.account)
        running = [r for r in rows if r.get("status") == "running"]
        if not running or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    by_request: dict[str, list[dict]] = {}
    for row in rows:
        by_request.setdefault(row.get("http_request_id"), []).append(row)
    problems = []
    for r in results:
        matching = by_request.get(r["id"], [])
        if len(matching) != 1:
            problems.append(f"{r['id']}: {len(matching)} ledger rows")
        elif matching[0].get("status") != "completed":
            problems.append(f"{r['id']}: ledger status {matching[0].get('status')} ({matching[0].get('end_reason')})")
    if running:
        problems.append(f"{len(running)} ledger rows still running")
    if problems:
        fail(f"ledger: {len(problems)} problems, e.g. {problems[:5]}")
    status, _, body = call(args.url, "GET", "/v1/account", args.key)
    account = json.loads(body)
    spent = Decimal(args.balance_before) - Decimal(account["balance"])
    cost = sum((Decimal(str(row.get("cost") or "0")) for row in rows), Decimal(0))
    if spent != cost:
        fail(f"balance fell by {spent}, the ledger's cost is {cost}")
    held = Decimal(str(account.get("held") or "0"))
    if held != 0:
        fail(f"{held} still held after every request ended")
    by_replica: dict[str, int] = {}
    for r in results:
        by_replica[r["replica"]] = by_replica.get(r["replica"], 0) + 1
    print(f"verified: {len(results)} requests all succeeded (by replica: {by_replica}); {len(rows)} ledger rows, "
          f"each request exactly one, completed; balance fell by {spent} = the ledger's cost; nothing held")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("setup"); p.add_argument("--url", required=True); p.add_argument("--admin-key", required=True)
    p = sub.add_parser("balance"); p.add_argument("--url", required=True); p.add_argument("--key", required=True)
    p = sub.add_parser("smoke"); p.add_argument("--url", required=True); p.add_argument("--key", required=True)
    p.add_argument("--count", type=int, default=6); p.add_argument("--out")
    p = sub.add_parser("load"); p.add_argument("--url", required=True); p.add_argument("--key", required=True)
    p.add_argument("--until", required=True); p.add_argument("--out", required=True)
    p.add_argument("--workers", type=int, default=4); p.add_argument("--max-seconds", type=float, default=120)
    p.add_argument("--max-per-worker", type=int, default=5000)
    p = sub.add_parser("streams"); p.add_argument("--url", required=True); p.add_argument("--key", required=True)
    p.add_argument("--model", default="slow"); p.add_argument("--max-tokens", type=int, default=150)
    p.add_argument("--count", type=int, default=3); p.add_argument("--ready", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("drained"); p.add_argument("--url", required=True); p.add_argument("--key", required=True)
    p = sub.add_parser("verify"); p.add_argument("--url", required=True); p.add_argument("--admin-key", required=True)
    p.add_argument("--account", required=True); p.add_argument("--key", required=True)
    p.add_argument("--balance-before", required=True); p.add_argument("--results", nargs="+", required=True)
    args = parser.parse_args()
    globals()["cmd_" + args.command](args)


if __name__ == "__main__":
    main()
