"""An OpenAI-compatible chat upstream in Python (asyncio, in a thread of its own) that streams slowly
and records, for every request, when the client (the gateway) closed its connection before the
answer was complete, and how many requests are in flight now and at most.

Words in the text of the LAST user message script it:

    words=N      the answer is "w1 w2 … wN" (default 5), one word per streamed chunk
    delay_ms=N   streamed: a pause before each chunk; whole: one pause before the answer
    tag=NAME     the group the request is counted in (`in_flight(tag)`, `max_in_flight(tag)`, `requests(tag)`)

`max_tokens` / `max_completion_tokens` cut the answer to that many words (finish_reason `length`).
Usage is exact: prompt_tokens = the words of all messages' text, completion_tokens = the answer's
words; it is sent at the end of a stream when `stream_options.include_usage` asks for it (the
gateway always asks).

A request is *in flight* from the moment its body has been read until its answer's last byte was
written or its connection was closed by the client. The count is changed on the upstream's own event
loop without an `await` between writing the last byte and the decrement, so a request the gateway
sends after seeing an answer end can never be counted together with it.

A client that closes the connection is seen at once, not at the next write: a reader task per
connection waits for the end of its input the whole time, and `closed_at` is `time.monotonic()` at
that moment.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from dataclasses import dataclass, field

DEFAULT_WORDS = 5


@dataclass
class Record:
    seq: int
    path: str
    tag: str | None
    stream: bool
    body: dict | None
    headers: dict[str, str]
    received_at: float  # time.monotonic() when the body had been read
    chunks_sent: int = 0  # content chunks written (streams)
    finished_at: float | None = None  # the answer's last byte written
    closed_at: float | None = None  # the client closed the connection before the answer was complete

    @property
    def ended(self) -> bool:
        return self.finished_at is not None or self.closed_at is not None


def _text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _script(body: dict) -> dict:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    users = [m for m in messages if m.get("role") == "user"]
    words = _text(users[-1].get("content")).split() if users else []
    values: dict = {}
    for word in words:
        match = re.fullmatch(r"(words|delay_ms)=(\d+)", word)
        if match:
            values[match.group(1)] = int(match.group(2))
        match = re.fullmatch(r"tag=([A-Za-z0-9_.-]+)", word)
        if match:
            values["tag"] = match.group(1)
    count = values.get("words", DEFAULT_WORDS)
    finish = "stop"
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit < count:
        count, finish = limit, "length"
    prompt = max(sum(len(_text(m.get("content")).split()) for m in messages), 1)
    return {
        "words": [f"w{i}" for i in range(1, count + 1)], "finish": finish, "prompt": prompt,
        "delay": values.get("delay_ms", 0) / 1000, "tag": values.get("tag"),
    }


class _Connection:
    """One client connection: a reader task fills `buffer` and notes the end of input."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buffer = bytearray()
        self.data = asyncio.Event()
        self.eof = asyncio.Event()
        self.eof_at: float | None = None
        self.task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        while True:
            try:
                data = await self.reader.read(65536)
            except (ConnectionError, OSError):
                data = b""
            if not data:
                self.eof_at = time.monotonic()
                self.eof.set()
                self.data.set()
                return
            self.buffer += data
            self.data.set()

    async def _more(self) -> bool:
        if self.eof.is_set():
            return False
        self.data.clear()
        await self.data.wait()
        return True

    async def read_request(self) -> tuple[str, str, dict[str, str], bytes] | None:
        while b"\r\n\r\n" not in self.buffer:
            if not await self._more():
                return None
        end = self.buffer.index(b"\r\n\r\n")
        head = bytes(self.buffer[:end]).decode("latin-1")
        del self.buffer[: end + 4]
        lines = head.split("\r\n")
        method, path, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = bytearray()
            while True:
                while b"\r\n" not in self.buffer:
                    if not await self._more():
                        return None
                line_end = self.buffer.index(b"\r\n")
                size = int(bytes(self.buffer[:line_end]).split(b";")[0].strip() or b"0", 16)
                while len(self.buffer) < line_end + 2 + size + 2:
                    if not await self._more():
                        return None
                body += self.buffer[line_end + 2: line_end + 2 + size]
                del self.buffer[: line_end + 2 + size + 2]
                if size == 0:
                    break
            return method, path, headers, bytes(body)
        length = int(headers.get("content-length") or 0)
        while len(self.buffer) < length:
            if not await self._more():
                return None
        body = bytes(self.buffer[:length])
        del self.buffer[:length]
        return method, path, headers, body

    async def pause(self, seconds: float) -> bool:
        """Waits `seconds`; False at once if the client closed the connection meanwhile."""
        if self.eof.is_set():
            return False
        if seconds <= 0:
            return True
        try:
            await asyncio.wait_for(self.eof.wait(), timeout=seconds)
            return False
        except asyncio.TimeoutError:
            return True

    def close(self) -> None:
        self.task.cancel()
        try:
            self.writer.close()
        except Exception:
            pass


class FakeUpstream:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[Record] = []
        self._in_flight: dict[str | None, int] = {}
        self._max_in_flight: dict[str | None, int] = {}
        self._total_in_flight = 0
        self.max_total_in_flight = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-upstream", daemon=True)
        self._thread.start()
        self._connections: set[_Connection] = set()
        self._server = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _start(self) -> asyncio.AbstractServer:
        return await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=4096)

    # -- what the tests read -------------------------------------------------------------------

    def records(self, tag: str | None = None) -> list[Record]:
        with self._lock:
            return [r for r in self._records if tag is None or r.tag == tag]

    def in_flight(self, tag: str | None = None) -> int:
        with self._lock:
            return self._total_in_flight if tag is None else self._in_flight.get(tag, 0)

    def max_in_flight(self, tag: str) -> int:
        with self._lock:
            return self._max_in_flight.get(tag, 0)

    def wait_for(self, predicate, timeout: float, interval: float = 0.005) -> bool:
        """Polls `predicate()` (bounded by `timeout`); True once it held."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()
            for connection in list(self._connections):
                connection.close()

        try:
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    # -- serving -------------------------------------------------------------------------------

    def _begin(self, record: Record) -> None:
        with self._lock:
            self._records.append(record)
            self._total_in_flight += 1
            self.max_total_in_flight = max(self.max_total_in_flight, self._total_in_flight)
            now = self._in_flight.get(record.tag, 0) + 1
            self._in_flight[record.tag] = now
            self._max_in_flight[record.tag] = max(self._max_in_flight.get(record.tag, 0), now)

    def _end(self, record: Record, *, closed_at: float | None = None) -> None:
        """Exactly once per record: finished (all written) or closed by the client."""
        with self._lock:
            if record.ended:
                return
            if closed_at is None:
                record.finished_at = time.monotonic()
            else:
                record.closed_at = closed_at
            self._total_in_flight -= 1
            self._in_flight[record.tag] -= 1

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = _Connection(reader, writer)
        self._connections.add(connection)
        try:
            while True:
                request = await connection.read_request()
                if request is None:
                    return
                if not await self._answer(connection, *request):
                    return
        except (ConnectionError, OSError):
            return
        finally:
            self._connections.discard(connection)
            connection.close()

    async def _answer(self, connection: _Connection, method: str, path: str, headers: dict, raw: bytes) -> bool:
        """Answers one request; False when the connection is done with."""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if method != "POST" or not path.endswith("/chat/completions") or not isinstance(body, dict):
            payload = json.dumps({"error": {"message": f"fake upstream: no {method} {path}", "type": "invalid_request_error",
                                            "param": None, "code": None}}).encode()
            connection.writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                                    % (len(payload), payload))
            await connection.writer.drain()
            return True
        script = _script(body)
        stream = bool(body.get("stream"))
        record = Record(
            seq=0, path=path, tag=script["tag"], stream=stream, body=body, headers=headers, received_at=time.monotonic(),
        )
        with self._lock:
            record.seq = len(self._records)
        self._begin(record)
        try:
            if stream:
                return await self._stream(connection, record, body, script)
            return await self._whole(connection, record, body, script)
        except (ConnectionError, OSError):
            self._end(record, closed_at=connection.eof_at or time.monotonic())
            return False
        finally:
            if not record.ended:  # cancelled (the upstream is closing): not a client close
                self._end(record)

    async def _whole(self, connection: _Connection, record: Record, body: dict, script: dict) -> bool:
        if not await connection.pause(script["delay"]):
            self._end(record, closed_at=connection.eof_at)
            return False
        text = " ".join(script["words"])
        payload = json.dumps({
            "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": body.get("model", "?"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                         "logprobs": None, "finish_reason": script["finish"]}],
            "usage": self._usage(script),
        }).encode()
        connection.writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                                % (len(payload), payload))
        self._end(record)  # no await between the last byte and the count
        await connection.writer.drain()
        return True

    async def _stream(self, connection: _Connection, record: Record, body: dict, script: dict) -> bool:
        writer = connection.writer
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        await writer.drain()
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body.get("model", "?")}

        def event(payload: dict) -> bytes:
            data = b"data: " + json.dumps(payload).encode() + b"\n\n"
            return b"%x\r\n%s\r\n" % (len(data), data)

        for index, word in enumerate(script["words"]):
            if not await connection.pause(script["delay"]):
                self._end(record, closed_at=connection.eof_at)
                return False
            delta = {"role": "assistant", "content": word} if index == 0 else {"content": " " + word}
            writer.write(event(dict(base, choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}])))
            record.chunks_sent += 1
            await writer.drain()
        if connection.eof.is_set():
            self._end(record, closed_at=connection.eof_at)
            return False
        tail = event(dict(base, choices=[{"index": 0, "delta": {}, "logprobs": None, "finish_reason": script["finish"]}]))
        if (body.get("stream_options") or {}).get("include_usage"):
            tail += event(dict(base, choices=[], usage=self._usage(script)))
        data = b"data: [DONE]\n\n"
        tail += b"%x\r\n%s\r\n" % (len(data), data) + b"0\r\n\r\n"
        writer.write(tail)
        self._end(record)  # no await between the last byte and the count
        await writer.drain()
        return True

    @staticmethod
    def _usage(script: dict) -> dict:
        completion = len(script["words"])
        return {"prompt_tokens": script["prompt"], "completion_tokens": completion,
                "total_tokens": script["prompt"] + completion}
