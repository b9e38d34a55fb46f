"""Limits are exact across replicas: requests per minute and concurrency, counted in PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections import Counter

from replica_helpers import Stream, burst, chat

RPM = 60
RPM_REQUESTS = 200
CONCURRENT = 4
STREAMS = 40
SECOND_WAVE = 12
STREAM_WORDS, STREAM_DELAY_MS = 60, 50  # about 3 s a stream: every refused request arrives while 4 run


def test_200_requests_over_two_replicas_against_60_per_minute_admit_exactly_60(pair, upstream, tag):
    account = pair.admin.create_account("100.00")
    _, key = pair.admin.create_key(account, limits={"requests_per_minute": RPM})
    replicas = [pair.a.base, pair.b.base]
    answers = burst([(replicas[i % 2], key, chat(tag)) for i in range(RPM_REQUESTS)])

    statuses = Counter(answer.status for answer in answers)
    by_replica = Counter((answer.base, answer.status) for answer in answers)
    assert statuses == {200: RPM, 429: RPM_REQUESTS - RPM}, f"statuses {dict(statuses)}; per replica {dict(by_replica)}; " \
        f"first odd answer: {next((a.text or a.error for a in answers if a.status not in (200, 429)), None)}"
    for answer in answers:
        if answer.status == 429:
            assert answer.body["error"]["code"] == "rate_limit_exceeded", answer.text
            assert answer.body["error"]["type"] == "rate_limit_exceeded", answer.text
            assert int(answer.headers["retry-after"]) >= 1, answer.headers
        else:
            assert answer.body["choices"][0]["message"]["content"] == "w1 w2 w3 w4 w5"
    # Only the admitted reached the upstream.
    assert len(upstream.records(tag)) == RPM
    # And the window is shared afterwards too: one more on either replica is refused.
    for base in replicas:
        again = burst([(base, key, chat(tag))])[0]
        assert again.status == 429 and error_code_of(again) == "rate_limit_exceeded", (base, again.status, again.text)
    assert len(upstream.records(tag)) == RPM


def error_code_of(answer) -> str | None:
    return (answer.body or {}).get("error", {}).get("code")


def test_a_concurrency_limit_of_4_is_never_exceeded_across_replicas(pair, upstream, tag):
    account = pair.admin.create_account("1000.00")
    _, key = pair.admin.create_key(account, limits={"concurrent": CONCURRENT})
    replicas = [pair.a.base, pair.b.base]
    samples: list[int] = []
    sampling = threading.Event()

    def sample() -> None:
        deadline = time.monotonic() + 60
        while not sampling.is_set() and time.monotonic() < deadline:
            samples.append(upstream.in_flight(tag))
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        for wave, count in enumerate((STREAMS, SECOND_WAVE)):
            streams = [
                Stream(replicas[i % 2], key, chat(tag, words=STREAM_WORDS, delay_ms=STREAM_DELAY_MS, stream=True)).start()
                for i in range(count)
            ]
            for stream in streams:
                assert stream.finished.wait(30), "a stream did not end within 30 s"
            statuses = Counter(stream.status for stream in streams)
            assert statuses == {200: CONCURRENT, 429: count - CONCURRENT}, \
                f"wave {wave}: {dict(statuses)}; errors: {[s.error or s.raw_error for s in streams if s.status not in (200, 429)][:3]}"
            for stream in streams:
                if stream.status == 200:
                    assert stream.done and stream.content_chunks() == STREAM_WORDS, (stream.error, len(stream.chunks))
                else:
                    assert '"rate_limit_exceeded"' in stream.raw_error, stream.raw_error
            # Every admitted stream has ended on the upstream too before the next wave starts.
            assert upstream.wait_for(lambda: upstream.in_flight(tag) == 0, timeout=5)
    finally:
        sampling.set()
        sampler.join(5)

    records = upstream.records(tag)
    assert len(records) == 2 * CONCURRENT, f"{len(records)} requests reached the upstream"
    assert upstream.max_in_flight(tag) == CONCURRENT, f"the upstream saw {upstream.max_in_flight(tag)} at once"
    assert len(samples) > 100 and max(samples) <= CONCURRENT, (len(samples), max(samples, default=None))
    assert max(samples) == CONCURRENT  # the limit was really reached: the check above is not vacuous
