"""Keys, balances and the ledger as a client of the openai SDK sees them."""
from decimal import Decimal

import openai
import pytest

import json
import subprocess

from conftest import ADMIN_KEY, _binary
from openai_schema import validate
from raw_http import httpx

MESSAGES = [{"role": "user", "content": "hello there"}]


def admin(stack) -> httpx.Client:
    return httpx.Client(base_url=stack.url.removesuffix("/v1"), headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)


def new_account(stack, balance: str, models=None) -> str:
    """A fresh account with `balance` and a key (allowed `models`); returns the key."""
    with admin(stack) as api:
        account = api.post("/admin/v1/accounts", json={"name": "sdk", "balance": balance})
        assert account.status_code == 201, account.text
        body = {"label": "sdk"} | ({"models": models} if models else {})
        key = api.post(f"/admin/v1/accounts/{account.json()['id']}/keys", json=body)
        assert key.status_code == 201, key.text
        return key.json()["key"]


def sdk(stack, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.url, api_key=key, max_retries=0, timeout=20)


def test_a_wrong_key_is_an_authentication_error(stack):
    with sdk(stack, "sk-sy-not-a-key") as client:
        with pytest.raises(openai.AuthenticationError) as raised:
            client.chat.completions.create(model="m", messages=MESSAGES)
    assert raised.value.code == "invalid_api_key"
    validate(raised.value.response.json(), "ErrorResponse")


def test_a_model_outside_the_keys_allow_list_is_permission_denied(stack):
    key = new_account(stack, "1.00", models=["demo"])
    with sdk(stack, key) as client:
        assert client.chat.completions.create(model="demo", messages=MESSAGES).choices[0].message.content
        with pytest.raises(openai.PermissionDeniedError) as raised:
            client.chat.completions.create(model="m", messages=MESSAGES)
    assert raised.value.code == "model_not_allowed"


def test_an_empty_balance_is_refused_with_402_insufficient_quota(stack):
    key = new_account(stack, "0.005")
    with sdk(stack, key) as client:
        with pytest.raises(openai.APIStatusError) as raised:
            client.chat.completions.create(model="priced", messages=MESSAGES)
    assert raised.value.status_code == 402
    assert raised.value.type == "insufficient_quota"
    validate(raised.value.response.json(), "ErrorResponse")


def test_a_request_is_charged_and_appears_in_the_usage_listing(stack):
    key = new_account(stack, "1.00")
    headers = {"Authorization": f"Bearer {key}"}
    with sdk(stack, key) as client:
        reply = client.chat.completions.create(model="priced", messages=MESSAGES, user="end-user-7")
        stream = client.chat.completions.create(model="priced", messages=MESSAGES, stream=True)
        streamed_ids = {chunk.id for chunk in stream}
    account = httpx.get(f"{stack.url}/account", headers=headers).json()
    assert Decimal(account["balance"]) == Decimal("0.98")
    assert account["held"] == "0.00"
    seed_style = httpx.get(f"{stack.url.removesuffix('/v1')}/api_user/info", params={"openid": key, "type": "json"}).json()
    assert seed_style["balance"] == account["balance"]

    rows = httpx.get(f"{stack.url}/usage", headers=headers).json()["data"]
    assert [row["id"] for row in rows] == [*streamed_ids, reply.id]
    first = rows[-1]
    assert first["user"] == "end-user-7"
    assert first["usage"]["prompt_tokens"] == reply.usage.prompt_tokens
    assert first["usage"]["completion_tokens"] == reply.usage.completion_tokens
    assert first["usage_source"] == "reported"
    assert first["cost"] == "0.01"
    assert first["status"] == "completed"


def test_a_key_limit_set_through_the_admin_api_is_a_rate_limit_error(stack):
    with admin(stack) as api:
        account = api.post("/admin/v1/accounts", json={"name": "sdk-limited", "balance": "1.00"}).json()
        created = api.post(
            f"/admin/v1/accounts/{account['id']}/keys", json={"label": "slow", "limits": {"requests_per_minute": 1}}
        )
        assert created.status_code == 201, created.text
        assert created.json()["limits"] == {"requests_per_minute": 1, "tokens_per_minute": None, "concurrent": None}
        bad = api.post(f"/admin/v1/accounts/{account['id']}/keys", json={"limits": {"requests_per_minute": 0}})
        assert bad.status_code == 400
        assert bad.json()["error"]["param"] == "limits.requests_per_minute"
        validate(bad.json(), "ErrorResponse")
    key = created.json()["key"]
    with sdk(stack, key) as client:
        first = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
        assert first.headers["x-ratelimit-limit-requests"] == "1"
        assert first.headers["x-ratelimit-remaining-requests"] == "0"
        with pytest.raises(openai.RateLimitError) as raised:
            client.chat.completions.create(model="m", messages=MESSAGES)
    assert raised.value.code == "rate_limit_exceeded"
    assert int(raised.value.response.headers["retry-after"]) >= 1
    assert raised.value.response.headers["x-ratelimit-limit-requests"] == "1"
    validate(raised.value.response.json(), "ErrorResponse")
    info = httpx.get(f"{stack.url}/account", headers={"Authorization": f"Bearer {key}"}).json()
    assert info["key"]["limits"]["requests_per_minute"] == 1


def cli(stack, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(_binary("SWITCHYARD_BIN", "switchyard")), *args, "--config", str(stack.config)],
        capture_output=True, text=True, timeout=60,
    )
    assert (done.returncode == 0) == ok, done.stdout + done.stderr
    return done


def test_the_cli_sets_and_clears_limits_on_the_gateways_database(stack):
    created = json.loads(cli(stack, "accounts", "create", "--name", "cli", "--balance", "1", "--rpm", "600", "--tpm", "200000",
                             "--concurrent", "10").stdout)
    assert created["limits"] == {"requests_per_minute": 600, "tokens_per_minute": 200000, "concurrent": 10}
    account = created["id"]
    updated = json.loads(cli(stack, "accounts", "update", account, "--rpm", "1").stdout)
    assert updated["limits"] == {"requests_per_minute": 1, "tokens_per_minute": None, "concurrent": None}
    key = json.loads(cli(stack, "keys", "create", "--account", account, "--label", "cli", "--concurrent", "2").stdout)
    assert key["limits"] == {"requests_per_minute": None, "tokens_per_minute": None, "concurrent": 2}
    cli(stack, "accounts", "update", account, "--rpm", "0", ok=False)
    cli(stack, "accounts", "update", account, "--rpm", "5", "--clear-limits", ok=False)

    # The running gateway reads the limits from the database.
    with sdk(stack, key["key"]) as client:
        client.chat.completions.create(model="m", messages=MESSAGES)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="m", messages=MESSAGES)
    info = httpx.get(f"{stack.url}/account", headers={"Authorization": f"Bearer {key['key']}"}).json()
    assert info["limits"]["requests_per_minute"] == 1
    assert info["key"]["limits"]["concurrent"] == 2

    cleared = json.loads(cli(stack, "accounts", "update", account, "--clear-limits").stdout)
    assert cleared["limits"] is None
    shown = json.loads(cli(stack, "accounts", "show", account).stdout)
    assert shown["limits"] is None and shown["name"] == "cli"
