"""The seed service's way of calling and stopping, through the openai SDK: only the base URL changes."""
import threading
import time

import openai

from openai_schema import validate
from raw_http import httpx

MESSAGES = [{"role": "user", "content": "hello there"}]
SLOW = {"fake": {"tokens": 300, "delay_ms": 20}}


def seed_client(stack, userid: str, model: str = "m") -> openai.OpenAI:
    # SDKs always send a bearer token; here it is a placeholder and the key travels in the path.
    return openai.OpenAI(
        base_url=f"{stack.url.removesuffix('/v1')}/llm_api/{stack.key}/{userid}/{model}/v1",
        api_key="placeholder", max_retries=0, timeout=20,
    )


def test_a_path_style_call_names_key_user_and_model_in_the_url(stack):
    with seed_client(stack, "seed-user") as client:
        raw = client.chat.completions.with_raw_response.create(model="whatever", messages=MESSAGES)
    body = raw.http_response.json()
    validate(body, "CreateChatCompletionResponse")
    assert body["model"] == "m"
    rows = httpx.get(f"{stack.url}/usage", headers={"Authorization": f"Bearer {stack.key}"}).json()["data"]
    assert rows[0]["id"] == body["id"] and rows[0]["user"] == "seed-user"


def test_an_empty_model_segment_uses_the_bodys_model(stack):
    with seed_client(stack, "seed-user", model="") as client:
        reply = client.chat.completions.create(model="demo", messages=MESSAGES)
    assert reply.model == "demo"


def suspend_later(stack, userid: str, delay: float, result: dict):
    def run():
        time.sleep(delay)
        result["answer"] = httpx.get(
            f"{stack.url.removesuffix('/v1')}/llm_api/suspend_current_generate",
            params={"openid": stack.key, "userid": userid},
        ).json()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_suspend_ends_the_sdks_stream_cleanly_with_what_was_generated(stack):
    result: dict = {}
    with seed_client(stack, "stopper") as client:
        stream = client.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}, extra_body=SLOW
        )
        thread = suspend_later(stack, "stopper", 0.3, result)
        chunks = list(stream)  # ends without raising
        thread.join()
    assert result["answer"]["stopped"] == 1
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish and finish[-1].choices[0].finish_reason == "stop"
    assert finish[-1].model_extra.get("end_reason") == "cancelled"
    assert chunks[-1].usage.completion_tokens == len(content.split())
    for chunk in chunks:
        validate(chunk.model_dump(exclude_unset=True), "CreateChatCompletionStreamResponse")


def test_cancel_by_the_response_id(stack, http):
    with openai.OpenAI(base_url=stack.url, api_key=stack.key, max_retries=0, timeout=20) as client:
        stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True, extra_body=SLOW)
        first = next(iter(stream))
        cancelled = http.post(f"/chat/completions/{first.id}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["cancelled"] is True
        rest = list(stream)
    assert rest[-1].choices[0].finish_reason == "stop"
    assert http.post(f"/chat/completions/{first.id}/cancel").status_code == 404
