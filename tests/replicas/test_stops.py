"""Stops reach the replica that runs the generation: `suspend_current_generate` and cancel-by-id sent
to replica A stop streams running on replica B; the upstream sees its connection closed within
100 ms of the stop's answer, and the stream is billed as a stop is billed on one replica."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal

import httpx
import openai

from replica_helpers import Stream, auth, chat, money, wait_until

WITHIN_S = 0.100
LONG = {"words": 400, "delay_ms": 25}  # about 10 s unless stopped
INPUT_PRICE, OUTPUT_PRICE = Decimal("0.001"), Decimal("0.002")  # model `m`: per token (1.00 / 2.00 per 1K)


@dataclass
class SdkStream:
    """A streamed chat completion made with the openai SDK in the seed service's style
    (`/llm_api/{key}/{userid}/m/v1`), read in a thread."""

    base: str
    key: str
    userid: str
    tag: str
    chunks: list = field(default_factory=list)
    error: str | None = None
    first_chunk: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)

    def start(self) -> "SdkStream":
        threading.Thread(target=self._run, daemon=True, name="sdk-stream").start()
        return self

    def _run(self) -> None:
        try:
            with openai.OpenAI(base_url=f"{self.base}/llm_api/{self.key}/{self.userid}/m/v1", api_key="placeholder",
                               max_retries=0, timeout=30) as client:
                stream = client.chat.completions.create(
                    model="ignored", stream=True, stream_options={"include_usage": True}, max_tokens=LONG["words"],
                    messages=[{"role": "user", "content": f"tag={self.tag} words={LONG['words']} delay_ms={LONG['delay_ms']}"}],
                )
                for chunk in stream:
                    self.chunks.append(chunk)
                    if chunk.choices and chunk.choices[0].delta.content:
                        self.first_chunk.set()
        except openai.OpenAIError as error:
            self.error = repr(error)
        finally:
            self.first_chunk.set()
            self.finished.set()

    @property
    def id(self) -> str | None:
        return self.chunks[0].id if self.chunks else None

    def content_chunks(self) -> int:
        return sum(1 for chunk in self.chunks if chunk.choices and chunk.choices[0].delta.content)


def settled(admin, request_id: str, timeout: float = 10) -> dict:
    row = wait_until(lambda: (r := admin.row(request_id)) and r["status"] != "running" and r, timeout, 0.05)
    assert row, f"ledger row {request_id} not settled within {timeout}s: {admin.row(request_id)}"
    return row


def assert_billed_as_a_stop(row: dict, relayed_chunks: int) -> None:
    assert row["status"] == "cancelled" and row["end_reason"] == "cancelled", row
    # Billed as today: the upstream's usage never came (it was cut), so the tokens relayed.
    assert row["usage"]["completion_tokens"] == relayed_chunks, (row["usage"], relayed_chunks)
    assert row["usage_source"] == "estimated", row
    expected = row["usage"]["prompt_tokens"] * INPUT_PRICE + row["usage"]["completion_tokens"] * OUTPUT_PRICE
    assert money(row["cost"]) == expected and expected > 0, (row["cost"], expected)


def closed_within(upstream, tag: str, answered_at: float) -> float:
    """How long after `answered_at` the upstream saw the client close the request tagged `tag`."""
    assert upstream.wait_for(lambda: any(r.ended for r in upstream.records(tag)), timeout=5), \
        f"the upstream request {tag} is still running 5 s after the stop"
    (record,) = upstream.records(tag)
    assert record.finished_at is None and record.closed_at is not None, "the upstream was not stopped: it finished"
    print(f"{tag}: the upstream saw the close {(record.closed_at - answered_at) * 1000:+.1f} ms from the stop's answer")
    return record.closed_at - answered_at


def test_suspend_sent_to_a_stops_the_end_users_streams_on_both_replicas(pair, upstream, tag):
    account = pair.admin.create_account("100.00")
    _, key = pair.admin.create_key(account)
    user, other = f"alice-{tag}", f"bob-{tag}"
    on_b = SdkStream(pair.b.base, key, user, f"{tag}-b").start()
    on_a = SdkStream(pair.a.base, key, user, f"{tag}-a").start()
    bystander = SdkStream(pair.b.base, key, other, f"{tag}-other").start()
    for stream in (on_b, on_a, bystander):
        assert stream.first_chunk.wait(15) and stream.error is None and stream.chunks, stream.error
    before = money(pair.admin.account(account)["balance"])

    answer = httpx.get(f"{pair.a.base}/llm_api/suspend_current_generate", params={"openid": key, "userid": user}, timeout=10)
    answered_at = time.monotonic()
    assert answer.status_code == 200, answer.text
    assert answer.json()["stopped"] == 2, answer.json()  # counts the one on B too

    for name, stream in (("B", on_b), ("A", on_a)):
        late = closed_within(upstream, stream.tag, answered_at)
        assert late <= WITHIN_S, f"the stream on {name}: upstream closed {late * 1000:.0f} ms after the suspend's answer"
        assert stream.finished.wait(5), f"the client's stream on {name} did not end"
        assert stream.error is None, stream.error
        finish = [c for c in stream.chunks if c.choices and c.choices[0].finish_reason]
        assert finish and finish[-1].choices[0].finish_reason == "stop"
        assert (finish[-1].model_extra or {}).get("end_reason") == "cancelled", finish[-1]
        assert stream.chunks[-1].usage is not None and stream.chunks[-1].usage.completion_tokens == stream.content_chunks()
    # Another end user's stream on B runs on.
    (running,) = upstream.records(f"{tag}-other")
    assert not running.ended and not bystander.finished.is_set()

    rows = []
    for stream in (on_b, on_a):
        row = settled(pair.admin, stream.id)
        assert row["user"] == user
        assert_billed_as_a_stop(row, stream.content_chunks())
        rows.append(row)

    # Stopping the bystander from A as well (and so ending the test's last stream).
    answer = httpx.get(f"{pair.a.base}/llm_api/suspend_current_generate", params={"openid": key, "userid": other}, timeout=10)
    assert answer.status_code == 200 and answer.json()["stopped"] == 1, answer.text
    assert bystander.finished.wait(5)
    rows.append(settled(pair.admin, bystander.id))
    assert_billed_as_a_stop(rows[-1], bystander.content_chunks())

    # Stopping again stops nothing, on either replica.
    for base in (pair.a.base, pair.b.base):
        again = httpx.get(f"{base}/llm_api/suspend_current_generate", params={"openid": key, "userid": user}, timeout=10)
        assert again.status_code == 200 and again.json()["stopped"] == 0, again.text

    shown = pair.admin.account(account)
    assert money(shown["held"]) == 0, shown
    assert before - money(shown["balance"]) == sum(money(row["cost"]) for row in rows)


def test_cancel_by_id_sent_to_a_stops_a_stream_on_b(pair, upstream, tag):
    account = pair.admin.create_account("100.00")
    _, key = pair.admin.create_key(account)
    stranger_account = pair.admin.create_account("1.00")
    _, stranger = pair.admin.create_key(stranger_account)
    stream = Stream(pair.b.base, key, chat(tag, stream=True, stream_options={"include_usage": True}, **LONG)).start()
    assert stream.first_chunk.wait(15) and stream.id, (stream.status, stream.error, stream.raw_error)

    # Another account's cancel does not find it, and stops nothing.
    refused = httpx.post(f"{pair.a.base}/v1/chat/completions/{stream.id}/cancel", headers=auth(stranger), timeout=10)
    assert refused.status_code == 404, refused.text
    time.sleep(0.2)  # what a wrongly delivered stop would need to arrive
    assert not upstream.records(tag)[0].ended

    answer = httpx.post(f"{pair.a.base}/v1/chat/completions/{stream.id}/cancel", headers=auth(key), timeout=10)
    answered_at = time.monotonic()
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"id": stream.id, "object": "request.cancellation", "cancelled": True}, answer.json()
    late = closed_within(upstream, tag, answered_at)
    assert late <= WITHIN_S, f"upstream closed {late * 1000:.0f} ms after the cancel's answer"

    assert stream.finished.wait(5) and stream.error is None, stream.error
    assert stream.done, "the stopped stream ends cleanly with [DONE]"
    finish = stream.finish()
    assert finish and finish["choices"][0]["finish_reason"] == "stop" and finish.get("end_reason") == "cancelled", finish
    assert_billed_as_a_stop(settled(pair.admin, stream.id), stream.content_chunks())
    for base in (pair.a.base, pair.b.base):  # once stopped, it is gone everywhere
        again = httpx.post(f"{base}/v1/chat/completions/{stream.id}/cancel", headers=auth(key), timeout=10)
        assert again.status_code == 404, (base, again.text)


def test_a_responses_stream_on_b_is_cancelled_by_its_id_on_a(pair, upstream, tag):
    account = pair.admin.create_account("100.00")
    _, key = pair.admin.create_key(account)
    body = {"model": "m", "input": f"tag={tag} words={LONG['words']} delay_ms={LONG['delay_ms']}", "stream": True,
            "max_output_tokens": LONG["words"]}
    stream = Stream(pair.b.base, key, body, path="/v1/responses").start()
    assert stream.first_chunk.wait(15) and stream.chunks, (stream.status, stream.error, stream.raw_error)
    created = next(chunk for chunk in stream.chunks if chunk.get("type") == "response.created")
    response_id = created["response"]["id"]

    answer = httpx.post(f"{pair.a.base}/v1/responses/{response_id}/cancel", headers=auth(key), timeout=10)
    answered_at = time.monotonic()
    assert answer.status_code == 200, answer.text
    late = closed_within(upstream, tag, answered_at)
    assert late <= WITHIN_S, f"upstream closed {late * 1000:.0f} ms after the cancel's answer"
    assert stream.finished.wait(5) and stream.error is None, stream.error
    last = stream.chunks[-1]
    assert last.get("type") == "response.incomplete" and last["response"]["status"] == "cancelled", last
