#!/usr/bin/env python3
"""Disconnect → upstream connection closed: how long after a streaming client goes away the proxy
closes its connection to the upstream (which is how an OpenAI-compatible upstream learns to stop
generating), through the gateway and, as the reference, through nginx (run.sh's nginx: `proxy_pass`
with keep-alive, unbuffered; nginx closes the upstream connection when the client leaves).

Usage: bench/disconnect.py [--requests 200] [--concurrency 1] [--interval-ms 500] [--close fin,rst]
                           [--targets nginx,gateway]
       (BENCH_DISCONNECT=1 bench/run.sh runs it after run.sh's own tables)
Environment: BENCH_GATEWAY=PATH (another switchyard binary), BENCH_PIN=1 (the proxy on CPU 1, this
  script on CPU 0).

Method: the upstream is bench/sse_upstream.py running in this script's own event loop, so the
client and the upstream read one clock (time.monotonic()). It sends the role chunk at once, then one
content chunk every --interval-ms (for at most --chunks). For each request the client opens a
connection to the proxy, sends a streaming chat completion, reads the first SSE data event, notes
the time and closes its socket at once: `fin` closes it normally (FIN), `rst` with SO_LINGER 0 (a
reset, as a killed client whose socket still held data). The upstream notes the moment its end of
that request's connection saw EOF or a reset. The latency is upstream close − client close. Requests
run --concurrency at a time (default one after another), so this measures latency, not load; a close
not seen within --close-timeout counts as `not_closed`, with the upstream chunks written after the
client left (a proxy that notices only when its next write fails shows about one --interval-ms).

The gateway runs from a fresh SQLite database with the demo account's key its first start prints
(authentication, hold and settlement in the path), log_level error, limits on (never refusing).
Prints a `RESULT target=… close=… …` line per target and close mode, then a table; the output is kept
in bench/results/disconnect-*.txt with the servers' logs beside it.
"""

import argparse
import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import HOST, SSEClient, chat_request, percentile  # noqa: E402
from sse_upstream import Upstream  # noqa: E402

UPSTREAM_PORT, GATEWAY_PORT, NGINX_PORT = 18121, 18122, 18123


async def one(port, key, model, ident, args, upstream, reset):
    body = json.dumps({
        "model": model, "stream": True, "messages": [{"role": "user", "content": "hello"}],
        "bench": {"id": ident, "interval_ms": args.interval_ms, "chunks": args.chunks},
    }).encode()
    loop = asyncio.get_running_loop()
    ended = upstream.ended(ident)
    try:
        _, client = await asyncio.wait_for(
            loop.create_connection(lambda: SSEClient(chat_request(port, body, key)), HOST, port), 10)
        first = await asyncio.wait_for(client.first, 10)
    except (OSError, asyncio.TimeoutError) as error:
        return {"error": f"connect or first chunk: {error!r}"}
    if first is None:
        return {"error": client.error or "no first chunk"}
    closed_by_client = time.monotonic()
    client.abort(reset=reset)
    try:
        record = await asyncio.wait_for(asyncio.shield(ended), args.close_timeout)
    except asyncio.TimeoutError:
        record = upstream.records.get(ident)
        return {"not_closed": True,
                "chunks_after": sum(1 for t in (record.sent_at if record else []) if t > closed_by_client)}
    if record.closed_at is None:  # the upstream finished the whole stream: nobody closed it
        return {"not_closed": True, "chunks_after": sum(1 for t in record.sent_at if t > closed_by_client)}
    return {"latency_ms": (record.closed_at - closed_by_client) * 1e3,
            "chunks_after": sum(1 for t in record.sent_at if t > closed_by_client)}


async def warm_up(port, key, model):
    """A few complete short streams first, so first connections and lazy setup are not measured."""
    body = json.dumps({"model": model, "stream": True, "messages": [{"role": "user", "content": "hello"}],
                       "bench": {"interval_ms": 1, "chunks": 2}}).encode()
    loop = asyncio.get_running_loop()
    for _ in range(8):
        _, client = await loop.create_connection(lambda: SSEClient(chat_request(port, body, key)), HOST, port)
        await asyncio.wait_for(client.done, 10)
        if client.error:
            raise SystemExit(f"error: warm-up stream through port {port} failed: {client.error}")


async def measure(target, port, key, model, args, upstream, reset):
    await warm_up(port, key, model)
    await asyncio.sleep(0.2)
    results, counter = [], iter(range(args.requests))
    mode = "rst" if reset else "fin"

    async def worker():
        for i in counter:
            results.append(await one(port, key, model, f"{target}-{mode}-{i}", args, upstream, reset))
            await asyncio.sleep(args.pause_ms / 1000)

    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(args.concurrency))),
                           args.requests * (args.close_timeout + 25) / args.concurrency + 30)
    latencies = [r["latency_ms"] for r in results if "latency_ms" in r]
    errors = [r["error"] for r in results if "error" in r]
    return {
        "target": target, "close": mode, "requests": args.requests, "closed": len(latencies),
        "not_closed": sum(1 for r in results if r.get("not_closed")), "errors": len(errors),
        "p50_ms": percentile(latencies, 50), "p90_ms": percentile(latencies, 90),
        "p99_ms": percentile(latencies, 99), "max_ms": max(latencies) if latencies else None,
        "min_ms": min(latencies) if latencies else None,
        "chunks_after_max": max((r.get("chunks_after", 0) for r in results), default=0),
        "seconds": time.monotonic() - started,
    }, errors


async def main(args):
    output = benchlib.Output("disconnect")
    servers = benchlib.Servers(output)
    proxy_cpu, _ = benchlib.pinning()
    try:
        for port in (UPSTREAM_PORT, GATEWAY_PORT, NGINX_PORT):
            if benchlib.port_in_use(port):
                raise SystemExit(f"error: port {port} is already in use on {HOST}")
        upstream = await Upstream().start(UPSTREAM_PORT)
        targets = args.targets.split(",")
        key = None
        if "gateway" in targets:
            gateway, key = await asyncio.to_thread(servers.gateway, f"""server: {{host: {HOST}, port: {GATEWAY_PORT}}}
log_level: error
database: sqlite:@WORK@/bench.sqlite
admin_key: bench-admin-{os.getpid()}{int(time.time())}
providers:
  slow: {{kind: openai, base_url: "http://{HOST}:{UPSTREAM_PORT}/v1", max_connections: 256}}
models:
  bench: {{deployments: [{{provider: slow, model: bench-upstream}}]}}
""" + benchlib.LIMITS_YAML, proxy_cpu)
        if "nginx" in targets:
            await asyncio.to_thread(servers.nginx, NGINX_PORT, UPSTREAM_PORT, proxy_cpu)
        print("== disconnect -> upstream connection closed")
        print(f"build: {benchlib.describe_build()}")
        print(f"pinning: {'the proxy on CPU 1; this client and the upstream on CPU 0' if proxy_cpu else 'none'}")
        print(f"auth: {'the demo account key' if key else 'none (no key printed)'}; {args.requests} requests per "
              f"target and close mode, {args.concurrency} at a time; upstream chunk every {args.interval_ms} ms")
        print(f"load average before: {benchlib.load_average()}")
        rows, status = [], 0
        for target in targets:
            port, model = (GATEWAY_PORT, "bench") if target == "gateway" else (NGINX_PORT, "bench-upstream")
            for mode in args.close.split(","):
                fields, errors = await measure(target, port, key if target == "gateway" else None, model, args,
                                               upstream, mode == "rst")
                servers.check_alive(f"the {target} {mode} run")
                print(benchlib.result_line(fields))
                for error in sorted(set(errors))[:5]:
                    print(f"  error: {error}")
                rows.append(fields)
                if fields["closed"] != fields["requests"]:
                    status = 1
        print()
        print("disconnect -> upstream closed, ms (client close to the upstream seeing EOF/RST)")
        print(benchlib.table(
            ["target", "close", "closed", "p50", "p90", "p99", "max", "not closed", "errors", "chunks after"],
            [[r["target"], r["close"], f"{r['closed']}/{r['requests']}", r["p50_ms"], r["p90_ms"], r["p99_ms"],
              r["max_ms"], r["not_closed"], r["errors"], r["chunks_after_max"]] for r in rows]))
        by = {(r["target"], r["close"]): r for r in rows}
        for mode in args.close.split(","):
            n, g = by.get(("nginx", mode)), by.get(("gateway", mode))
            if n and g and n["p50_ms"] and g["p50_ms"]:
                print(f"{mode}: gateway p50 {g['p50_ms']:.2f} ms vs nginx {n['p50_ms']:.2f} ms "
                      f"({g['p50_ms'] / n['p50_ms']:.1f}x)")
        print(f"full output: {output.path}")
        return status
    finally:
        await asyncio.to_thread(servers.stop)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="disconnects per target and close mode")
    parser.add_argument("--concurrency", type=int, default=1, help="requests at a time (keep it small)")
    parser.add_argument("--interval-ms", type=int, default=500, help="upstream: pause between content chunks")
    parser.add_argument("--chunks", type=int, default=60, help="upstream: content chunks at most per stream")
    parser.add_argument("--close", default="fin,rst", help="fin, rst or both (comma-separated)")
    parser.add_argument("--close-timeout", type=float, default=10, help="seconds to wait for the upstream close")
    parser.add_argument("--pause-ms", type=int, default=5, help="pause between one request and the next")
    parser.add_argument("--targets", default="nginx,gateway")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
