"""Helpers shared by the media tests (test_files.py, test_images.py, test_audio.py): accounts of their
own (so each test reads only its own ledger rows and balance), settled ledger rows, exact costs, error
bodies and multipart requests made by hand."""

from __future__ import annotations

import copy
import json
import time
from decimal import ROUND_HALF_UP, Decimal

import openai

from openai_schema import validate
from raw_http import httpx
from sdk_helpers import ERROR, parse_sse_events
from test_accounts import new_account

MICRO = Decimal("0.000001")
SETTLE_TIMEOUT_S = 10.0


def money(value) -> Decimal:
    """A cost as the gateway rounds it: once, half up, to a micro-unit."""
    return Decimal(value).quantize(MICRO, rounding=ROUND_HALF_UP)


def token_cost(prompt_tokens: int, completion_tokens: int, price: dict) -> Decimal:
    """The cost of a per-1K-token price {input, output}."""
    return money((prompt_tokens * Decimal(price["input"]) + completion_tokens * Decimal(price["output"])) / 1000)


class Account:
    """A fresh account (created through the admin API) with a key, an SDK client and raw HTTP."""

    def __init__(self, stack, balance: str = "10.00", models=None) -> None:
        self.stack = stack
        self.key = new_account(stack, balance, models)
        self.client = openai.OpenAI(base_url=stack.url, api_key=self.key, max_retries=0, timeout=20)
        self.http = httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=20)

    def close(self) -> None:
        self.client.close()
        self.http.close()

    def info(self) -> dict:
        response = self.http.get("/account")
        assert response.status_code == 200, response.text
        return response.json()

    def balance(self) -> Decimal:
        return Decimal(self.info()["balance"])

    def held(self) -> Decimal:
        return Decimal(self.info()["held"])

    def rows(self) -> list[dict]:
        """The account's ledger rows, newest first."""
        response = self.http.get("/usage", params={"limit": 100})
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def settled(self, count: int = 1, timeout: float = SETTLE_TIMEOUT_S) -> list[dict]:
        """The account's ledger rows, newest first, once there are `count` and none is still running
        (a stream is settled a moment after its last byte)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.rows()
            if len(rows) >= count and all(row["status"] != "running" for row in rows):
                return rows
            assert time.monotonic() < deadline, f"expected {count} settled ledger rows, have: {rows}"
            time.sleep(0.05)

    def last_row(self) -> dict:
        return self.settled(1)[0]


def error_of(exc: openai.APIStatusError) -> dict:
    """The error object of an SDK status error, after validating the body against ErrorResponse."""
    return raw_error(exc.response)


def raw_error(response) -> dict:
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    validate(body, ERROR)
    return body["error"]


def validate_file(body: dict) -> None:
    """A File object against OpenAI's `OpenAIFile`. OpenAI itself sends `"status_details": null`, which
    that schema (a string) does not allow: a null there is dropped first, as sdk_helpers drops the
    Responses API's documented nulls."""
    body = copy.deepcopy(body)
    if body.get("status_details", "") is None:
        del body["status_details"]
    validate(body, "OpenAIFile")


def events_of(text: str) -> list[tuple[str | None, dict]]:
    """(`event:` name or None, parsed data) of an SSE body, [DONE] left out."""
    return [(name, json.loads(data)) for name, data in parse_sse_events(text) if data != "[DONE]"]


def post_multipart(http: httpx.Client, path: str, fields: list[tuple[str, str]], files: list[tuple[str, tuple]],
                   stream: bool = False):
    """POSTs multipart/form-data with the fields and files in the order given (repeated names kept);
    `files` items are (field name, (filename, bytes, content type)). Returns the response (read whole
    unless `stream`: then a context manager)."""
    parts = [(name, (None, value)) for name, value in fields] + list(files)
    if stream:
        return http.stream("POST", path, files=parts, timeout=httpx.Timeout(20.0, read=5.0))
    return http.post(path, files=parts)
