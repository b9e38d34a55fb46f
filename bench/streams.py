#!/usr/bin/env python3
"""Open N streaming chat completions at once and report time to first token and completeness.

Usage: streams.py --port PORT --model MODEL [--key API_KEY] [--streams 256] [--tokens 64]
                  [--delay-ms 20] [--rss-pid PID] [--timeout 60]

Prints one `RESULT key=value ...` line (parsed by run.sh) and exits 1 if any stream was
incomplete. With --rss-pid it samples that process's VmRSS while the streams are open, so the
memory a stream costs can be read as (peak RSS during - RSS before) / N.

Only the standard library: a minimal HTTP/1.1 client on asyncio protocols, because a full client
library would spend more of the two shared cores than the gateway under test.
"""

import argparse
import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import HOST, SSEClient, chat_request, percentile, proc_status_kb  # noqa: E402


class Stream(SSEClient):
    """One streaming request, its content deltas counted (the first one's time is the TTFT)."""

    def __init__(self, request, started, counters):
        super().__init__(request)
        self.started, self.counters = started, counters
        self.tokens = 0
        self.first_token = None
        self.finish_reason = None

    def on_data(self, payload):
        chunk = json.loads(payload)
        if "error" in chunk:
            return f"error event: {payload[:200]!r}"
        for choice in chunk.get("choices", []):
            if choice.get("delta", {}).get("content"):
                self.tokens += 1
                if self.first_token is None:
                    self.first_token = time.monotonic()
                    self.counters["first"] += 1
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return None


async def one_stream(port, request, counters):
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    try:
        _, stream = await loop.create_connection(lambda: Stream(request, started, counters), HOST, port)
    except OSError as error:
        return {"error": f"connect: {error!r}", "tokens": 0, "done": False}
    ended = await stream.done
    counters["finished"] += 1
    return {
        "status": stream.status,
        "ttft_ms": None if stream.first_token is None else (stream.first_token - started) * 1e3,
        "total_ms": (ended - started) * 1e3,
        "tokens": stream.tokens,
        "done": stream.saw_done,
        "finish_reason": stream.finish_reason,
        "error": stream.error,
    }


async def sample_rss(pid, counters, samples, stop):
    # Sampled while streams are open; 10 ms is fine against 64 tokens x 20 ms streams.
    while not stop.is_set():
        samples.append((counters["first"] - counters["finished"], proc_status_kb(pid)))
        await asyncio.sleep(0.01)


async def main(args):
    body = json.dumps({
        "model": args.model,
        "messages": [{"role": "user", "content": "hello"}],
        "stream": True,
        "fake": {"tokens": args.tokens, "delay_ms": args.delay_ms},
    }).encode()
    request = chat_request(args.port, body, args.key)

    counters = {"first": 0, "finished": 0}
    samples, stop = [], asyncio.Event()
    rss_before = proc_status_kb(args.rss_pid) if args.rss_pid else None
    sampler = asyncio.create_task(sample_rss(args.rss_pid, counters, samples, stop)) if args.rss_pid else None

    tasks = [asyncio.create_task(one_stream(args.port, request, counters)) for _ in range(args.streams)]
    finished, pending = await asyncio.wait(tasks, timeout=args.timeout)
    for task in pending:
        task.cancel()
    stop.set()
    if sampler:
        await sampler
    if args.rss_pid:
        await asyncio.sleep(0.5)  # let the gateway tear the streams down before reading what it kept
        rss_after = proc_status_kb(args.rss_pid)
    results = [t.result() for t in finished]
    results += [{"error": "timed out", "tokens": 0, "done": False}] * len(pending)

    complete = [r for r in results
                if not r.get("error") and r.get("status") == 200 and r["tokens"] == args.tokens and r["done"]]
    ttfts = [r["ttft_ms"] for r in results if r.get("ttft_ms") is not None]
    totals = [r["total_ms"] for r in complete]
    fields = {
        "streams": args.streams,
        "complete": len(complete),
        "ttft_p50_ms": percentile(ttfts, 50),
        "ttft_p99_ms": percentile(ttfts, 99),
        "ttft_max_ms": max(ttfts) if ttfts else None,
        "stream_p50_ms": percentile(totals, 50),
        "stream_max_ms": max(totals) if totals else None,
    }
    if args.rss_pid:
        peak = max(rss for _, rss in samples)
        # Peak among the samples taken while every stream was open (all first tokens in, none done).
        all_open = [rss for open_now, rss in samples if open_now == args.streams]
        fields.update({
            "rss_before_kb": rss_before,
            "rss_peak_kb": peak,
            "rss_all_open_kb": max(all_open) if all_open else None,
            "kb_per_stream": (peak - rss_before) / args.streams,
            "rss_after_kb": rss_after,
        })
    print("RESULT " + " ".join(
        f"{k}={'-' if v is None else (f'{v:.2f}' if isinstance(v, float) else v)}" for k, v in fields.items()))

    failures = [r for r in results if r not in complete]
    for failure in failures[:5]:
        print(f"incomplete stream: {failure}")
    if failures:
        reasons = {}
        for failure in failures:
            key = failure.get("error") or f"status={failure.get('status')} tokens={failure['tokens']} done={failure['done']}"
            reasons[key[:120]] = reasons.get(key[:120], 0) + 1
        print(f"incomplete streams: {len(failures)} of {args.streams}: {reasons}")
    return 0 if not failures else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--key", help="API key, sent as a bearer token")
    parser.add_argument("--streams", type=int, default=256)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--delay-ms", type=int, default=20)
    parser.add_argument("--rss-pid", type=int)
    parser.add_argument("--timeout", type=float, default=60, help="seconds before open streams count as failed")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
