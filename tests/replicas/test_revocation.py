"""Changes made through the admin API on replica A are seen by replica B within 1 s, even where B
had just cached the key's lookup (the cache is for 5 s; NOTIFY drops it)."""

from __future__ import annotations

import time

import httpx

from replica_helpers import auth, chat, error_code

WITHIN_S = 1.0
POLL_S = 0.05
POLL_FOR_S = 5.0  # poll past the limit, to report how late a late change was


def poll_b(pair, key: str, tag: str, refused) -> tuple[float | None, list]:
    """Sends a chat completion to B every 50 ms (for at most POLL_FOR_S) until `refused(answer)`;
    returns the seconds that took (None: never) and the answers seen."""
    seen = []
    start = time.monotonic()
    with httpx.Client(base_url=pair.b.base, headers=auth(key), timeout=5) as client:
        while time.monotonic() - start < POLL_FOR_S:
            sent = time.monotonic()
            answer = client.post("/v1/chat/completions", json=chat(tag))
            seen.append((round(sent - start, 3), answer.status_code, error_code(answer)))
            if refused(answer):
                print(f"B refused {sent - start:.3f}s after the change ({len(seen)} polls)")
                return sent - start, seen
            time.sleep(max(0.0, POLL_S - (time.monotonic() - sent)))
    return None, seen


def warm(pair, key: str, tag: str) -> None:
    """Both replicas have just looked the key up (and cached it)."""
    for base in (pair.b.base, pair.a.base, pair.b.base):
        answer = httpx.post(f"{base}/v1/chat/completions", json=chat(tag), headers=auth(key), timeout=10)
        assert answer.status_code == 200, (base, answer.text)


def test_a_key_revoked_on_a_is_refused_by_b_within_a_second(pair, tag):
    account = pair.admin.create_account("10.00")
    key_id, key = pair.admin.create_key(account)
    warm(pair, key, tag)

    revoked = pair.admin.http.delete(f"/keys/{key_id}")
    assert revoked.status_code in (200, 204), revoked.text
    took, seen = poll_b(pair, key, tag, lambda answer: answer.status_code == 401)
    assert took is not None, f"B still served the revoked key after {POLL_FOR_S}s: {seen[-3:]}"
    assert took <= WITHIN_S, f"B refused the revoked key only {took:.3f}s after the revocation: {seen}"
    assert all(status == 200 for _, status, _ in seen[:-1]) and seen[-1][2] == "invalid_api_key", seen
    # And it stays refused, on both.
    for base in (pair.b.base, pair.a.base):
        answer = httpx.post(f"{base}/v1/chat/completions", json=chat(tag), headers=auth(key), timeout=10)
        assert answer.status_code == 401 and error_code(answer) == "invalid_api_key", (base, answer.text)


def test_an_account_suspended_on_a_is_refused_by_b_within_a_second(pair, tag):
    account = pair.admin.create_account("10.00")
    _, key = pair.admin.create_key(account)
    warm(pair, key, tag)

    suspended = pair.admin.http.patch(f"/accounts/{account}", json={"status": "suspended"})
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended", suspended.text
    took, seen = poll_b(pair, key, tag, lambda answer: answer.status_code == 403)
    assert took is not None, f"B still served the suspended account after {POLL_FOR_S}s: {seen[-3:]}"
    assert took <= WITHIN_S, f"B refused the suspended account only {took:.3f}s after: {seen}"
    assert seen[-1][2] == "account_suspended", seen


def test_a_limit_lowered_on_a_applies_on_b_within_a_second(pair, tag):
    account = pair.admin.create_account("10.00")
    key_id, key = pair.admin.create_key(account, limits={"requests_per_minute": 1000})
    warm(pair, key, tag)  # 3 requests counted in this minute

    lowered = pair.admin.http.patch(f"/keys/{key_id}", json={"limits": {"requests_per_minute": 3}})
    assert lowered.status_code == 200, lowered.text
    took, seen = poll_b(pair, key, tag, lambda answer: answer.status_code == 429)
    assert took is not None, f"B still admitted past the lowered limit after {POLL_FOR_S}s: {seen[-3:]}"
    assert took <= WITHIN_S, f"B applied the lowered limit only {took:.3f}s after: {seen}"
    assert seen[-1][2] == "rate_limit_exceeded", seen
