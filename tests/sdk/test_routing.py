"""Routing and rate limits as a client of the openai SDK sees them: a dead deployment is invisible, a
limit is a RateLimitError with retry-after, and answers carry OpenAI's x-ratelimit headers."""
import openai
import pytest

from conftest import ADMIN_KEY
from openai_schema import validate
from raw_http import httpx
from sdk_helpers import USER_HI, fake
from test_accounts import new_account, sdk


@pytest.mark.parametrize("stream", [False, True])
def test_a_dead_first_deployment_is_invisible_to_the_caller(client, stream):
    if stream:
        chunks = list(client.chat.completions.create(model="m-routed", messages=USER_HI, stream=True))
        assert chunks and all(chunk.model == "m-routed" for chunk in chunks)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        reply = client.chat.completions.create(model="m-routed", messages=USER_HI)
        assert reply.model == "m-routed"
        assert reply.choices[0].message.content


def test_the_ledger_names_what_was_tried(stack, client):
    reply = client.chat.completions.create(model="m-routed", messages=USER_HI)
    usage = httpx.get(
        f"{stack.url}/usage", headers={"Authorization": f"Bearer {stack.key}"}, params={"limit": 50}, timeout=10
    ).json()
    row = next(r for r in usage["data"] if r["id"] == reply.id)
    assert row["deployment"] == "fake/upstream-routed"
    assert row["attempts"] == "dead/gone:connect_error,fake/upstream-routed:ok"


def test_a_model_limit_is_a_rate_limit_error_with_retry_after_and_headers(stack):
    key = new_account(stack, "1.00")  # an account of its own: the model's limit is shared by all callers
    with sdk(stack, key) as client:
        seen = []
        for _ in range(3):
            raw = client.chat.completions.with_raw_response.create(model="m-limited", messages=USER_HI)
            seen.append(raw.headers.get("x-ratelimit-remaining-requests"))
            assert raw.headers.get("x-ratelimit-limit-requests") == "3"
            assert raw.headers.get("x-ratelimit-reset-requests")
            validate(raw.http_response.json(), "CreateChatCompletionResponse")
        assert seen == ["2", "1", "0"]
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="m-limited", messages=USER_HI)
    assert caught.value.status_code == 429
    assert int(caught.value.response.headers["retry-after"]) >= 1
    assert caught.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    body = caught.value.response.json()
    validate(body, "ErrorResponse")
    assert body["error"]["type"] == "rate_limit_exceeded"
    assert body["error"]["code"] == "rate_limit_exceeded"
