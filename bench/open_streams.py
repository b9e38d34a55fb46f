#!/usr/bin/env python3
"""N concurrent open streams: the memory one open stream costs in the gateway, next to nginx.

Usage: bench/open_streams.py [--streams 10000] [--interval-ms 2000] [--hold 10] [--prompt-kb 0] [--targets nginx,gateway]
       (BENCH_OPEN_STREAMS=N bench/run.sh runs it after run.sh's own tables; N=1 means 10000)
Environment: BENCH_GATEWAY=PATH (another switchyard binary), BENCH_PIN=1 (the proxy on CPU 1, this
  client and the upstream on CPU 0).

Method: the upstream is bench/sse_upstream.py, a process of its own (the client's N sockets and the
upstream's N must not share one open-files limit). Each stream gets the role chunk at once, then a
content chunk every --interval-ms, and stays open until the client releases them all. For each
target (nginx, then the gateway; each a fresh process, the gateway on a fresh SQLite database with
the demo account's key): 8 short streams to warm up, then the proxy's VmRSS "before"; N streams are
opened, at most --connect-concurrency connecting at once (the listen backlogs are finite); once all
N have received their first chunk (within --open-timeout), the proxy's VmRSS is sampled every 0.5 s
for --hold seconds while they stay open ("open" = the largest sample); then the upstream is told to
end them, each at its next tick (finish chunk, usage, [DONE]), and the RSS is read again 2 s after
the last one ended ("after"). Reported: KB per open stream = (open - before) / N, peak RSS (VmHWM),
the proxy's open files with all N open, how long opening took, and how many streams completed (status
200, every chunk, [DONE]).

Limits: every stream is two sockets in the proxy (client side and upstream side), so a proxy needs
2N + a few dozen open files; this script sets its soft RLIMIT_NOFILE to the hard limit, and the
proxies it starts inherit it. N is lowered to what that hard limit allows (printed), and the
gateway's `providers.*.max_connections` is at most 10000. nginx gets worker_connections 2N x 17/16 +
128: it closes reusable connections (accepted, request not read yet) once fewer than 1/16 are free.

Prints `RESULT target=… …` per target, then a table; the output is kept in
bench/results/open-streams-*.txt with the servers' logs beside it.
"""

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import HOST, SSEClient, chat_request, percentile, proc_status_kb  # noqa: E402

UPSTREAM_PORT, GATEWAY_PORT, NGINX_PORT = 18131, 18132, 18133
FD_RESERVE = 64  # files a proxy holds besides its streams' sockets (listeners, epoll, eventfds, database, logs)


def upstream_control(path, method="GET"):
    request = urllib.request.Request(f"http://{HOST}:{UPSTREAM_PORT}{path}", method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def prompt(kb):
    """The user message: "hello", or about `kb` KB of words (an agent's context is 20-200 KB)."""
    if kb <= 0:
        return "hello"
    words = "the quick brown fox jumps over the lazy dog ".encode()
    return (words * (kb * 1024 // len(words) + 1))[: kb * 1024].decode()


async def open_all(port, key, model, args):
    """Opens N streams, returns (clients, seconds until all had their first chunk or the timeout)."""
    body = json.dumps({
        "model": model, "stream": True, "messages": [{"role": "user", "content": prompt(args.prompt_kb)}],
        "bench": {"interval_ms": args.interval_ms, "chunks": args.max_chunks},
    }).encode()
    request = chat_request(port, body, key)
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(args.connect_concurrency)
    clients, failures = [], []

    async def open_one():
        async with gate:
            try:
                _, client = await asyncio.wait_for(
                    loop.create_connection(lambda: SSEClient(request), HOST, port), 30)
            except (OSError, asyncio.TimeoutError) as error:
                failures.append(f"connect: {error!r}"[:120])
                return
            clients.append(client)
            try:  # the next connection may start once this one is streaming
                await asyncio.wait_for(asyncio.shield(client.first), 30)
            except asyncio.TimeoutError:
                pass

    started = time.monotonic()
    openers = [asyncio.create_task(open_one()) for _ in range(args.streams)]
    done, pending = await asyncio.wait(openers, timeout=args.open_timeout)
    for task in pending:
        task.cancel()
    firsts = [c for c in clients if c.first.done() and c.first.result() is not None]
    return clients, failures, time.monotonic() - started, firsts


async def measure(target, pid, port, key, model, args, servers):
    loop = asyncio.get_running_loop()
    warm = json.dumps({"model": model, "stream": True, "messages": [{"role": "user", "content": "hello"}],
                       "bench": {"interval_ms": 1, "chunks": 2}}).encode()
    for _ in range(8):
        _, client = await loop.create_connection(lambda: SSEClient(chat_request(port, warm, key)), HOST, port)
        await asyncio.wait_for(client.done, 10)
        if client.error:
            raise SystemExit(f"error: warm-up stream through the {target} failed: {client.error}")
    await asyncio.sleep(1)
    rss_before = proc_status_kb(pid)
    fds_before = benchlib.open_fds(pid)
    ticks0 = benchlib.cpu_ticks(pid)

    clients, failures, open_seconds, firsts = await open_all(port, key, model, args)
    servers.check_alive(f"opening the {target}'s streams")
    open_now = sum(1 for c in clients if not c.done.done())
    all_open = len(firsts) == args.streams and open_now == args.streams
    samples = []
    fds_open = benchlib.open_fds(pid)
    hold_until = time.monotonic() + args.hold
    while time.monotonic() < hold_until:
        samples.append(proc_status_kb(pid))
        await asyncio.sleep(0.5)
    still_open = sum(1 for c in clients if not c.done.done())
    upstream_stats = await asyncio.to_thread(upstream_control, "/bench/stats")
    rss_open = max(s for s in samples if s is not None)

    await asyncio.to_thread(upstream_control, "/bench/release", "POST")
    waiting = [c.done for c in clients if not c.done.done()]
    if waiting:
        await asyncio.wait(waiting, timeout=args.interval_ms / 1000 * 2 + 30)
    ended_all = time.monotonic()
    servers.check_alive(f"ending the {target}'s streams")
    await asyncio.sleep(2)
    rss_after = proc_status_kb(pid)
    cpu_seconds = (benchlib.cpu_ticks(pid) - ticks0) / os.sysconf("SC_CLK_TCK")

    complete = [c for c in clients if c.done.done() and c.error is None and c.saw_done and c.status == 200]
    reasons = {}
    for c in clients:
        if c not in complete:
            reason = (c.error or ("still open" if not c.done.done() else f"status {c.status}"))[:100]
            reasons[reason] = reasons.get(reason, 0) + 1
    for failure in failures:
        reasons[failure] = reasons.get(failure, 0) + 1
    ttfb = [(c.first.result() - c.started) * 1e3 for c in firsts]  # from each stream's own connect
    fields = {
        "target": target, "streams": args.streams, "opened": len(firsts), "all_open": int(all_open),
        "open_during_hold": still_open, "complete": len(complete),
        "open_seconds": open_seconds, "first_chunk_p50_ms": percentile(ttfb, 50),
        "rss_before_kb": rss_before, "rss_open_kb": rss_open, "rss_after_kb": rss_after,
        "kb_per_stream": (rss_open - rss_before) / args.streams,
        # VmHWM can read a few KB under a VmRSS sample taken earlier (the kernel folds per-thread
        # RSS counters in lazily), so the peak is the larger of the two.
        "rss_peak_kb": max(proc_status_kb(pid, "VmHWM") or 0, rss_open),
        "rss_anon_after_kb": proc_status_kb(pid, "RssAnon"),
        "fds_before": fds_before, "fds_open": fds_open, "upstream_max_open": upstream_stats["max_open"],
        "cpu_s": cpu_seconds, "release_to_end_s": ended_all - hold_until,
    }
    for client in clients:  # nothing stays behind for the next target
        if client.transport is not None and not client.transport.is_closing():
            client.transport.abort()
    return fields, reasons


async def main(args):
    output = benchlib.Output("open-streams")
    servers = benchlib.Servers(output)
    proxy_cpu, others_cpu = benchlib.pinning()
    limit = benchlib.raise_nofile()
    requested = args.streams
    allowed = min((limit - FD_RESERVE) // 2, 10000)  # two sockets per stream in a proxy; the gateway's cap
    notes = []
    if args.streams > allowed:
        args.streams = allowed
        notes.append(f"N lowered from {requested} to {allowed}: the hard limit of open files here is {limit} "
                     f"(`ulimit -Hn`), and a proxy holds 2 sockets per stream + about {FD_RESERVE} other files"
                     + ("; the gateway's max_connections is at most 10000" if allowed == 10000 else ""))
    if limit < args.streams + FD_RESERVE:
        raise SystemExit(f"error: this process may open {limit} files, too few for {args.streams} client sockets")
    try:
        for port in (UPSTREAM_PORT, GATEWAY_PORT, NGINX_PORT):
            if benchlib.port_in_use(port):
                raise SystemExit(f"error: port {port} is already in use on {HOST}")
        upstream = servers.spawn("upstream", [*others_cpu, sys.executable,
                                              os.path.join(benchlib.ROOT, "bench", "sse_upstream.py"),
                                              "--port", str(UPSTREAM_PORT)])
        servers.wait_ready("upstream", upstream, ready_text="sse upstream listening")
        print(f"== {args.streams} concurrent open streams")
        for note in notes:
            print(f"note: {note}")
        print(f"build: {benchlib.describe_build()}")
        print(f"pinning: {'the proxy on CPU 1; this client and the upstream on CPU 0' if proxy_cpu else 'none'}")
        print(f"open files allowed (soft = hard): {limit}; upstream chunk every {args.interval_ms} ms; "
              f"hold {args.hold} s with all open; at most {args.connect_concurrency} connecting at once; "
              f"prompt {str(args.prompt_kb) + ' KB' if args.prompt_kb else 'hello'}")
        print(f"load average before: {benchlib.load_average()}")
        rows, status = [], 0
        for target in args.targets.split(","):
            if target == "nginx":
                # nginx starts closing connections it may reuse (accepted ones still waiting for their
                # request) once fewer than 1/16 of worker_connections are free: give it that headroom.
                proc = servers.nginx(NGINX_PORT, UPSTREAM_PORT, proxy_cpu,
                                     worker_connections=2 * args.streams * 17 // 16 + 128, rlimit=limit)
                port, key, model = NGINX_PORT, None, "bench-upstream"
            else:
                proc, key = servers.gateway(f"""server: {{host: {HOST}, port: {GATEWAY_PORT}}}
log_level: error
database: sqlite:@WORK@/bench.sqlite
admin_key: bench-admin-{os.getpid()}{int(time.time())}
providers:
  slow: {{kind: openai, base_url: "http://{HOST}:{UPSTREAM_PORT}/v1", max_connections: {args.streams}, max_queue: {args.streams}}}
models:
  bench: {{deployments: [{{provider: slow, model: bench-upstream}}]}}
""" + benchlib.LIMITS_YAML, proxy_cpu)
                port, model = GATEWAY_PORT, "bench"
            fields, reasons = await measure(target, proc.pid, port, key, model, args, servers)
            print(benchlib.result_line(fields))
            if reasons:
                print(f"  incomplete: {sum(reasons.values())} of {args.streams}: {reasons}")
            rows.append(fields)
            if fields["complete"] != args.streams:
                status = 1
            # Each proxy is measured alone: stop this one before the next starts.
            servers.stop_one(proc)
        print()
        print(f"{args.streams} open streams: proxy memory (KB) and completeness")
        print(benchlib.table(
            ["target", "opened", "complete", "open s", "RSS before", "RSS open", "KB/stream", "RSS after",
             "peak (HWM)", "fds open", "cpu s"],
            [[r["target"], f"{r['opened']}/{r['streams']}", r["complete"], r["open_seconds"], r["rss_before_kb"],
              r["rss_open_kb"], r["kb_per_stream"], r["rss_after_kb"], r["rss_peak_kb"], r["fds_open"], r["cpu_s"]]
             for r in rows]))
        by = {r["target"]: r for r in rows}
        if "nginx" in by and "gateway" in by and by["nginx"]["kb_per_stream"] > 0:
            print(f"gateway {by['gateway']['kb_per_stream']:.1f} KB per open stream vs nginx "
                  f"{by['nginx']['kb_per_stream']:.1f} KB ({by['gateway']['kb_per_stream'] / by['nginx']['kb_per_stream']:.1f}x)")
        print(f"full output: {output.path}")
        return status
    finally:
        servers.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=10000)
    parser.add_argument("--interval-ms", type=int, default=2000, help="upstream: pause between content chunks")
    parser.add_argument("--hold", type=float, default=10, help="seconds all N stay open while RSS is sampled")
    parser.add_argument("--open-timeout", type=float, default=180, help="seconds for all N to get their first chunk")
    parser.add_argument("--connect-concurrency", type=int, default=128, help="connections being opened at once")
    parser.add_argument("--max-chunks", type=int, default=150,
                        help="upstream: a stream ends after this many chunks even if never released")
    parser.add_argument("--prompt-kb", type=int, default=0,
                        help="each stream's user message: about this many KB of text (0: \"hello\")")
    parser.add_argument("--targets", default="nginx,gateway")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
