#!/usr/bin/env python3
"""A slow OpenAI-compatible chat upstream for the benchmarks (stdlib asyncio, protocol callbacks):
streams OpenAI's chat chunks (the shapes of Sources/SwitchyardFakeUpstream/CompletionPayloads.swift)
one every `interval_ms`, and records the exact `time.monotonic()` at which each connection was
closed by its client (the proxy under test) while a stream was still running.

Imported by bench/disconnect.py (in the client's own process, so both sides read one clock) and run
as a process of its own by bench/open_streams.py (`python3 bench/sse_upstream.py --port PORT`), so
the client's and the upstream's sockets do not share one open-files limit.

A request scripts its answer with a top-level `"bench"` object, which proxies forward untouched:

    {"bench": {"id": "any-string", "interval_ms": 500, "chunks": 60}}

The role chunk goes out at once (a client's "first chunk"), then one content chunk every
`interval_ms` until `chunks` were sent or a release (below), then the finish chunk, the usage chunk
(when `stream_options.include_usage` asks, as the gateway always does) and `[DONE]`.

Control requests, sent to the upstream directly (not through a proxy):

    POST /bench/release   every stream running now ends at its next tick
    GET  /bench/stats     {"open", "max_open", "started", "finished", "closed_early"}
"""

import argparse
import asyncio
import json
import os
import resource
import time

HOST = "127.0.0.1"


class Record:
    __slots__ = ("id", "received_at", "chunks", "sent_at", "finished_at", "closed_at", "closed")

    def __init__(self, ident):
        self.id = ident
        self.received_at = time.monotonic()
        self.chunks = 0
        self.sent_at = []  # monotonic time of every content chunk written (kept for short streams only)
        self.finished_at = None  # the answer's last byte written
        self.closed_at = None  # the client closed the connection while the stream was running


class Upstream:
    def __init__(self, keep_records=True):
        self.keep_records = keep_records
        self.records = {}  # id -> Record (requests that carried an id)
        self.waiters = {}  # id -> future set when that stream ends (closed or finished)
        self.release_seq = 0
        self.open = self.max_open = self.started = self.finished = self.closed_early = 0
        self.server = None

    async def start(self, port, backlog=4096):
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _Connection(self), HOST, port, backlog=backlog)
        return self

    def ended(self, ident):
        """A future that completes when the stream with this id has ended (made before or after it did)."""
        future = self.waiters.get(ident)
        if future is None:
            future = self.waiters[ident] = asyncio.get_running_loop().create_future()
            record = self.records.get(ident)
            if record is not None and (record.closed_at or record.finished_at):
                future.set_result(record)
        return future

    def _end(self, record, closed_at=None):
        self.open -= 1
        if closed_at is None:
            record.finished_at = time.monotonic()
            self.finished += 1
        else:
            record.closed_at = closed_at
            self.closed_early += 1
        future = self.waiters.get(record.id)
        if future is not None and not future.done():
            future.set_result(record)

    def stats(self):
        return {"open": self.open, "max_open": self.max_open, "started": self.started,
                "finished": self.finished, "closed_early": self.closed_early}


def _chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


def _event(payload):
    return _chunk(b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n")


class _Connection(asyncio.Protocol):
    def __init__(self, upstream):
        self.up = upstream
        self.buffer = bytearray()
        self.transport = None
        self.record = None  # the stream running on this connection
        self.timer = None
        self.gone = False

    def connection_made(self, transport):
        self.transport = transport

    # -- the end of the connection: seen the moment the peer's FIN or RST arrives --------------
    def eof_received(self):
        self._gone(time.monotonic())
        return False  # close our side too

    def connection_lost(self, exc):
        self._gone(time.monotonic())

    def _gone(self, at):
        if self.gone:
            return
        self.gone = True
        if self.timer is not None:
            self.timer.cancel()
        if self.record is not None:
            record, self.record = self.record, None
            self.up._end(record, closed_at=at)

    # -- requests ------------------------------------------------------------------------------
    def data_received(self, data):
        self.buffer += data
        self._next()

    def _next(self):
        while self.record is None and not self.gone:
            request = self._parse()
            if request is None:
                return
            self._answer(*request)

    def _parse(self):
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        method, path = (head[0].split(" ") + ["", ""])[:2]
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        rest = end + 4
        if "chunked" in headers.get("transfer-encoding", ""):
            body, at = bytearray(), rest
            while True:
                line_end = self.buffer.find(b"\r\n", at)
                if line_end < 0:
                    return None
                size = int(bytes(self.buffer[at:line_end]).split(b";")[0].strip() or b"0", 16)
                if len(self.buffer) < line_end + 2 + size + 2:
                    return None
                body += self.buffer[line_end + 2: line_end + 2 + size]
                at = line_end + 2 + size + 2
                if size == 0:
                    break
            del self.buffer[:at]
            return method, path, bytes(body)
        length = int(headers.get("content-length") or 0)
        if len(self.buffer) < rest + length:
            return None
        body = bytes(self.buffer[rest: rest + length])
        del self.buffer[: rest + length]
        return method, path, body

    def _reply(self, status, payload):
        data = json.dumps(payload).encode()
        self.transport.write(b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (status.encode(), len(data), data))

    def _answer(self, method, path, raw):
        if path.startswith("/bench/release"):
            self.up.release_seq += 1
            self._reply("200 OK", {"released": self.up.open})
            return
        if path.startswith("/bench/stats"):
            self._reply("200 OK", self.up.stats())
            return
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if method != "POST" or not path.endswith("/chat/completions") or not isinstance(body, dict):
            self._reply("404 Not Found", {"error": {"message": f"sse upstream: no {method} {path}",
                                                    "type": "invalid_request_error", "param": None, "code": None}})
            return
        script = body.get("bench") if isinstance(body.get("bench"), dict) else {}
        self.model = body.get("model", "?")
        self.interval = max(float(script.get("interval_ms", 1000)), 0) / 1000
        self.limit = max(int(script.get("chunks", 10)), 0)
        self.usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.created = int(time.time())
        self.cid = f"chatcmpl-bench-{script.get('id', 'x')}"
        up = self.up
        record = Record(script.get("id"))
        if record.id is not None and up.keep_records:
            up.records[record.id] = record
        if not body.get("stream"):
            text = " ".join(f"w{i}" for i in range(1, self.limit + 1))
            self._reply("200 OK", {
                "id": self.cid, "object": "chat.completion", "created": self.created, "model": self.model,
                "system_fingerprint": "fp_bench",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": self.limit, "total_tokens": 1 + self.limit},
            })
            return
        up.started += 1
        up.open += 1
        up.max_open = max(up.max_open, up.open)
        self.record, self.release_at_start = record, up.release_seq
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n"
                             + _event(self._chunk({"role": "assistant", "content": ""}, None)))
        self.timer = asyncio.get_running_loop().call_later(self.interval, self._tick)

    def _chunk(self, delta, finish):
        payload = {"id": self.cid, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                   "system_fingerprint": "fp_bench",
                   "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if self.usage:
            payload["usage"] = None
        return payload

    def _tick(self):
        self.timer = None
        record = self.record
        if record is None or self.gone:
            return
        if record.chunks >= self.limit or self.up.release_seq > self.release_at_start:
            tail = _event(self._chunk({}, "stop"))
            if self.usage:
                tail += _event({"id": self.cid, "object": "chat.completion.chunk", "created": self.created,
                                "model": self.model, "system_fingerprint": "fp_bench", "choices": [],
                                "usage": {"prompt_tokens": 1, "completion_tokens": record.chunks,
                                          "total_tokens": 1 + record.chunks}})
            self.transport.write(tail + _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
            self.record = None
            self.up._end(record)
            self._next()  # a keep-alive connection may carry the proxy's next request
            return
        record.chunks += 1
        if len(record.sent_at) < 64:
            record.sent_at.append(time.monotonic())
        self.transport.write(_event(self._chunk({"content": f"w{record.chunks} "}, None)))
        self.timer = asyncio.get_running_loop().call_later(self.interval, self._tick)


async def serve(port):
    await Upstream(keep_records=False).start(port)
    print(f"sse upstream listening on {HOST}:{port}", flush=True)
    parent = os.getppid()
    while os.getppid() == parent:  # never outlive the benchmark that started it
        await asyncio.sleep(1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        asyncio.run(serve(args.port))
    except KeyboardInterrupt:
        pass
