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
import math
import time

HOST = "127.0.0.1"  # traffic stays on this machine


def percentile(values, p):
    """Nearest-rank percentile; None when there is nothing to rank."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def read_rss_kb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Stream(asyncio.Protocol):
    """One streaming request: de-chunks the body, splits SSE events, counts content deltas."""

    def __init__(self, request, started, counters):
        self.request, self.started, self.counters = request, started, counters
        self.done = asyncio.get_running_loop().create_future()
        self.head, self.raw, self.events = b"", b"", b""
        self.status = None
        self.chunked = False
        self.tokens = 0
        self.first_token = None
        self.finish_reason = None
        self.saw_done = False
        self.error = None

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data):
        try:
            if self.status is None:
                self.head += data
                if b"\r\n\r\n" not in self.head:
                    return
                head, _, data = self.head.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                self.status = int(lines[0].split()[1])
                headers = {k.strip().lower(): v.strip().lower() for k, _, v in (l.partition(":") for l in lines[1:])}
                self.chunked = headers.get("transfer-encoding") == "chunked"
            if self.chunked:
                self.raw += data
                self._dechunk()
            else:
                self._feed(data)
        except Exception as error:  # a malformed response is a failed stream, not a crashed benchmark
            self._finish(f"parse error: {error!r}")

    def _dechunk(self):
        while True:
            size_end = self.raw.find(b"\r\n")
            if size_end < 0:
                return
            size = int(self.raw[:size_end].split(b";")[0], 16)
            if size == 0:
                self._finish(None)
                return
            if len(self.raw) < size_end + 2 + size + 2:
                return
            self._feed(self.raw[size_end + 2 : size_end + 2 + size])
            self.raw = self.raw[size_end + 2 + size + 2 :]

    def _feed(self, data):
        self.events += data.replace(b"\r\n", b"\n")
        *complete, self.events = self.events.split(b"\n\n")
        for event in complete:
            for line in event.split(b"\n"):
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    self.saw_done = True
                    self._finish(None)
                    return
                chunk = json.loads(payload)
                if "error" in chunk:
                    self._finish(f"error event: {payload[:200]!r}")
                    return
                for choice in chunk.get("choices", []):
                    if choice.get("delta", {}).get("content"):
                        self.tokens += 1
                        if self.first_token is None:
                            self.first_token = time.perf_counter()
                            self.counters["first"] += 1
                    if choice.get("finish_reason"):
                        self.finish_reason = choice["finish_reason"]

    def _finish(self, error):
        if not self.done.done():
            self.error = error
            self.done.set_result(time.perf_counter())
            self.transport.close()

    def connection_lost(self, exc):
        self._finish(f"connection closed early: {exc!r}" if not self.saw_done else None)


async def one_stream(port, request, counters):
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
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
        samples.append((counters["first"] - counters["finished"], read_rss_kb(pid)))
        await asyncio.sleep(0.01)


async def main(args):
    body = json.dumps({
        "model": args.model,
        "messages": [{"role": "user", "content": "hello"}],
        "stream": True,
        "fake": {"tokens": args.tokens, "delay_ms": args.delay_ms},
    }).encode()
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {HOST}:{args.port}\r\n"
        f"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
        + (f"Authorization: Bearer {args.key}\r\n" if args.key else "")
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body

    counters = {"first": 0, "finished": 0}
    samples, stop = [], asyncio.Event()
    rss_before = read_rss_kb(args.rss_pid) if args.rss_pid else None
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
        rss_after = read_rss_kb(args.rss_pid)
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
