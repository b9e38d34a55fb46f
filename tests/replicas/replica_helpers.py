"""The admin API, request bodies, bursts of concurrent requests and streams read in a thread."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal

import httpx


class Admin:
    """`/admin/v1` of one replica."""

    def __init__(self, base: str, admin_key: str) -> None:
        self.base = base
        self.http = httpx.Client(base_url=f"{base}/admin/v1", headers={"Authorization": f"Bearer {admin_key}"}, timeout=15)

    def create_account(self, balance: str, limits: dict | None = None) -> str:
        body: dict = {"name": "replicas", "balance": balance}
        if limits:
            body["limits"] = limits
        answer = self.http.post("/accounts", json=body)
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]

    def create_key(self, account: str, limits: dict | None = None) -> tuple[str, str]:
        """A new key of `account`: (key id, the key)."""
        body: dict = {"label": "replicas"}
        if limits:
            body["limits"] = limits
        answer = self.http.post(f"/accounts/{account}/keys", json=body)
        assert answer.status_code == 201, answer.text
        return answer.json()["id"], answer.json()["key"]

    def account(self, account: str) -> dict:
        answer = self.http.get(f"/accounts/{account}")
        assert answer.status_code == 200, answer.text
        return answer.json()

    def row(self, request_id: str) -> dict | None:
        answer = self.http.get(f"/usage/{request_id}")
        if answer.status_code == 404:
            return None
        assert answer.status_code == 200, answer.text
        return answer.json()

    def rows(self, account: str) -> list[dict]:
        """Every ledger row of `account` (all pages; bounded)."""
        rows: list[dict] = []
        cursor = None
        for _ in range(100):
            params = {"account": account, "limit": 1000} | ({"cursor": cursor} if cursor else {})
            answer = self.http.get("/usage", params=params)
            assert answer.status_code == 200, answer.text
            page = answer.json()
            rows += page["data"]
            cursor = page.get("next_cursor")
            if not cursor:
                return rows
        raise AssertionError("more than 100 pages of ledger rows")


def money(value: str) -> Decimal:
    return Decimal(value)


def chat(tag: str, words: int = 5, delay_ms: int = 0, stream: bool = False, model: str = "m", **extra) -> dict:
    """A chat completion body that scripts the fake upstream; `max_tokens` is the answer's length (so
    the hold is small and exact) unless given."""
    body = {"model": model, "messages": [{"role": "user", "content": f"tag={tag} words={words} delay_ms={delay_ms}"}],
            "max_tokens": words}
    if stream:
        body["stream"] = True
    return body | extra


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def error_code(response: httpx.Response) -> str | None:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


@dataclass
class Answer:
    base: str  # which replica
    status: int
    body: dict | None
    headers: dict
    text: str
    error: str | None = None  # a transport error instead of an answer


async def _burst(calls: list[tuple[str, str, dict]], connections: int, timeout: float) -> list[Answer]:
    # One client (and pool) per replica, `connections` shared out between them, as a balancer keeps a
    # pool per upstream. One pool for both replicas, at its limit, closes an idle connection to one
    # replica to open one to the other, and httpcore then loses about one request in 4 000 to that
    # race (ReadError on a request the replica answered; never with a pool per replica).
    bases = sorted({base for base, _, _ in calls})
    share = max(1, connections // len(bases))
    limits = httpx.Limits(max_connections=share, max_keepalive_connections=share)
    clients = {base: httpx.AsyncClient(limits=limits, timeout=timeout) for base in bases}
    try:
        start = asyncio.Event()

        async def one(base: str, key: str, body: dict) -> Answer:
            await start.wait()
            client = clients[base]
            try:
                response = await client.post(f"{base}/v1/chat/completions", json=body, headers=auth(key))
            except httpx.HTTPError as error:
                return Answer(base, 0, None, {}, "", repr(error))
            try:
                parsed = response.json()
            except ValueError:
                parsed = None
            return Answer(base, response.status_code, parsed, dict(response.headers), response.text)

        tasks = [asyncio.ensure_future(one(*call)) for call in calls]
        await asyncio.sleep(0)
        start.set()  # every request created before any is sent
        return await asyncio.gather(*tasks)
    finally:
        for client in clients.values():
            await client.aclose()


def burst(calls: list[tuple[str, str, dict]], connections: int = 256, timeout: float = 60) -> list[Answer]:
    """Sends every (replica base, key, body) chat completion at once (up to `connections` open at a
    time) and returns the answers in order."""
    return asyncio.run(_burst(calls, connections, timeout))


@dataclass
class Stream:
    """A streamed chat completion read in a thread: its status, chunks and when it ended."""

    base: str
    key: str
    body: dict
    path: str = "/v1/chat/completions"
    status: int | None = None
    chunks: list[dict] = field(default_factory=list)
    done: bool = False  # `data: [DONE]` came
    error: str | None = None
    ended_at: float | None = None
    first_chunk: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    raw_error: str | None = None

    def start(self) -> "Stream":
        threading.Thread(target=self._run, daemon=True, name="stream").start()
        return self

    def _run(self) -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(30.0)) as client:
                with client.stream("POST", f"{self.base}{self.path}", json=self.body, headers=auth(self.key)) as response:
                    self.status = response.status_code
                    if response.status_code != 200:
                        self.raw_error = response.read().decode(errors="replace")
                        return
                    for line in response.iter_lines():
                        if not line.startswith("data: "):
                            continue
                        data = line[6:]
                        if data == "[DONE]":
                            self.done = True
                            continue
                        self.chunks.append(json.loads(data))
                        if content_of(self.chunks[-1]) or self.chunks[-1].get("type") == "response.output_text.delta":
                            self.first_chunk.set()
        except (httpx.HTTPError, ValueError) as error:
            self.error = repr(error)
        finally:
            self.ended_at = time.monotonic()
            self.first_chunk.set()
            self.finished.set()

    @property
    def id(self) -> str | None:
        return self.chunks[0]["id"] if self.chunks else None

    def content_chunks(self) -> int:
        return sum(1 for chunk in self.chunks if content_of(chunk))

    def finish(self) -> dict | None:
        """The chunk that carried a finish_reason."""
        for chunk in self.chunks:
            if any(choice.get("finish_reason") for choice in chunk.get("choices") or []):
                return chunk
        return None


def content_of(chunk: dict) -> str:
    return "".join((choice.get("delta") or {}).get("content") or "" for choice in chunk.get("choices") or [])


def wait_until(predicate, timeout: float, interval: float = 0.02):
    """Polls `predicate()` until it returns something truthy (returned) or `timeout` passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)
