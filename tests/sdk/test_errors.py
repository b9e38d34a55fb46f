"""Errors: the gateway's own and the upstream's, as the SDK raises them and as raw bodies."""

from __future__ import annotations

import time

import openai
import pytest

from openai_schema import validate
from sdk_helpers import ERROR, MAX_BODY_BYTES, USER_HI, fake


def error_of(exc: openai.APIStatusError) -> dict:
    """The error object of an SDK status error, after validating the body against ErrorResponse."""
    body = exc.response.json()
    validate(body, ERROR)
    assert exc.response.headers["content-type"].startswith("application/json")
    return body["error"]


def raw_error(response) -> dict:
    body = response.json()
    validate(body, ERROR)
    return body["error"]


# --- requests the gateway refuses itself ---


@pytest.mark.parametrize("payload", [b"{not json", b"", b"[1, 2]", b'{"model": "m", "messages": [}'])
def test_malformed_json_is_400(http, payload):
    response = http.post("/chat/completions", content=payload, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    error = raw_error(response)
    assert error["type"] == "invalid_request_error"
    assert error["message"]


@pytest.mark.parametrize(
    "body, param",
    [
        ({"messages": USER_HI}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": 42, "messages": USER_HI}, "model"),
        ({"model": "m", "messages": "hello"}, "messages"),
        ({"model": "m", "messages": USER_HI, "stream": "yes"}, "stream"),
    ],
    ids=["no-model", "no-messages", "model-int", "messages-string", "stream-string"],
)
def test_missing_or_mistyped_fields_are_bad_requests(client, body, param):
    with pytest.raises(openai.BadRequestError) as caught:
        client.post("/chat/completions", body=body, cast_to=object)
    assert caught.value.status_code == 400
    error = error_of(caught.value)
    assert error["param"] == param, error
    assert error["message"]


def test_completions_without_prompt_is_a_bad_request(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.post("/completions", body={"model": "m"}, cast_to=object)
    assert error_of(caught.value)["param"] == "prompt"


@pytest.mark.parametrize("stream", [False, True])
def test_unknown_model_is_404_model_not_found(client, stream):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="no-such-model", messages=USER_HI, stream=stream)
    error = error_of(caught.value)
    assert error["code"] == "model_not_found"
    assert "no-such-model" in error["message"]


def test_embeddings_on_a_chat_only_model_is_refused(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="m", input="hello", encoding_format="float")
    assert error_of(caught.value)["param"] == "model"


def test_chat_on_an_embeddings_only_model_is_refused(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="emb", messages=USER_HI)
    assert error_of(caught.value)["param"] == "model"


def test_body_over_the_limit_is_413(client):
    big = "x " * MAX_BODY_BYTES
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": big}])
    assert caught.value.status_code == 413
    assert error_of(caught.value)["message"]


def test_body_just_under_the_limit_is_served(client):
    content = "y " * ((MAX_BODY_BYTES - 1024) // 2)
    completion = client.chat.completions.create(
        model="m-unbounded", messages=[{"role": "user", "content": content}], extra_body=fake(tokens=1)
    )
    assert completion.usage.prompt_tokens == (MAX_BODY_BYTES - 1024) // 2


@pytest.mark.parametrize("stream", [False, True])
def test_a_prompt_over_the_context_window_is_context_length_exceeded(client, stream):
    content = "y " * 20_000  # 40 000 bytes: about 10 000 tokens, over m's 8 192
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": content}], stream=stream)
    error = error_of(caught.value)
    assert error["code"] == "context_length_exceeded" and error["param"] == "messages"
    assert error["message"].startswith("This model's maximum context length is 8192 tokens.")


def test_max_tokens_beyond_the_context_is_context_length_exceeded(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="m", messages=USER_HI, max_tokens=100_000)
    error = error_of(caught.value)
    assert error["code"] == "context_length_exceeded" and error["param"] == "max_tokens"


def test_unknown_route_is_an_openai_404(http):
    response = http.get("/no/such/route")
    assert response.status_code == 404
    raw_error(response)


# --- upstream failures before the first byte ---


@pytest.mark.parametrize("stream", [False, True])
def test_unreachable_upstream_is_502_or_504(client, stream):
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="m-dead", messages=USER_HI, stream=stream)
    status, error = caught.value.status_code, error_of(caught.value)
    expected = {502: "upstream_unreachable", 504: "upstream_timeout"}
    assert status in expected, f"got HTTP {status}: {error}"
    assert error["code"] == expected[status], f"HTTP {status} with code {error['code']!r}"
    assert time.monotonic() - started < 5, "connect timeout is 1s"


@pytest.mark.parametrize("stream", [False, True])
def test_slow_upstream_is_504_after_the_first_byte_timeout(client, stream):
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(
            model="m", messages=USER_HI, stream=stream, extra_body=fake(first_byte_delay_ms=5000)
        )
    elapsed = time.monotonic() - started
    assert caught.value.status_code == 504
    assert error_of(caught.value)["code"] == "upstream_timeout"
    assert 2.5 <= elapsed < 4.9, f"first_byte timeout is 3s, answered after {elapsed:.1f}s"


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_400_passes_through(client, stream):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="m", messages=USER_HI, stream=stream, extra_body=fake(status=400, message="bad thing", code="bad_code")
        )
    assert "bad thing" in caught.value.message
    error = error_of(caught.value)
    assert error["message"] == "bad thing"
    assert error["code"] == "bad_code"


def test_upstream_429_passes_through_with_retry_after(client):
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(
            # A model of its own: the upstream's retry-after keeps its deployment out for 7 s.
            model="m-429", messages=USER_HI, extra_body=fake(status=429, message="slow down", retry_after="7")
        )
    assert caught.value.status_code == 429
    assert caught.value.response.headers.get("retry-after") == "7"
    assert "slow down" in error_of(caught.value)["message"]


@pytest.mark.parametrize("status", [500, 503])
def test_upstream_5xx_becomes_502(client, status):
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="m", messages=USER_HI, extra_body=fake(status=status, message="boom"))
    assert caught.value.status_code == 502
    assert error_of(caught.value)["code"] == "upstream_error"


def test_upstream_rejecting_the_gateway_credentials_is_502(client):
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="m", messages=USER_HI, extra_body=fake(status=401, message="bad key"))
    assert caught.value.status_code == 502


def test_upstream_dropping_the_connection_before_answering_is_502(client):
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="m", messages=USER_HI, extra_body=fake(die_after=0))
    assert caught.value.status_code == 502
    assert error_of(caught.value)["code"] == "upstream_error"


def test_stream_only_upstream_failing_midway_gives_an_error_not_a_partial_answer(client):
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="m-always", messages=USER_HI, extra_body=fake(tokens=5, die_after=2))
    assert caught.value.status_code == 502
    error_of(caught.value)


def test_gateway_survives_the_errors(client):
    completion = client.chat.completions.create(model="m", messages=USER_HI, extra_body=fake(tokens=2))
    assert completion.choices[0].message.content == "w1 w2"
