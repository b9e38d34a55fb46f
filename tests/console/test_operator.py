"""The operator's console in a real browser: create an account, top it up (a fresh idempotency key
per click), create a key (the secret shown once) and use it in the playground; suspend, activate,
set models and limits, revoke; the catalog with prices; usage across accounts; engines started and
stopped."""

from __future__ import annotations

import json
from decimal import Decimal

from console_stack import ADMIN_KEY, http_json


def open_admin(page, section: str = "accounts") -> None:
    page.open(f"admin/{section}")
    if not page.js("return sessionStorage.getItem('switchyard.adminKey')"):
        page.paste_key(ADMIN_KEY, admin=True)


def credit_bodies(page) -> list[dict]:
    """The bodies of the POST …/credits requests the page made (Chrome's performance log)."""
    bodies = []
    for entry in page.driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") != "Network.requestWillBeSent":
            continue
        request = message["params"]["request"]
        page.network_urls.append(request["url"])
        if request["method"] == "POST" and request["url"].endswith("/credits") and request.get("postData"):
            bodies.append(json.loads(request["postData"]))
    return bodies


def test_operator_creates_an_account_and_a_key_and_the_playground_uses_it(page, stack):
    open_admin(page)
    page.wait(lambda: page.finds("#adm-accounts table"), what="the accounts table")
    page.click("details.create > summary")
    page.type("#adm-new-name", "made-in-the-browser")
    page.type("#adm-new-balance", "3.00")
    page.type("#adm-new-multiplier", "0.5")
    page.click("#adm-new-submit")
    page.wait(lambda: "made-in-the-browser" in page.text("#adm-detail-h"), what="the new account's page")
    account_id = page.text("#adm-detail-h code")
    assert page.field("balance", "#adm-account-detail") == "3.00"
    assert page.field("multiplier", "#adm-account-detail") == "0.5"

    # Two top-ups: each click has its own idempotency key, so both count.
    page.drain_logs()
    for expected in ("4.00", "5.00"):
        page.type("#adm-credit-amount", "1.00")
        page.click("#adm-credit-submit")
        page.wait(lambda: page.field("balance", "#adm-account-detail") == expected, what=f"the balance {expected}")
    bodies = credit_bodies(page)
    assert len(bodies) == 2 and bodies[0]["idempotency_key"] != bodies[1]["idempotency_key"], bodies
    assert all(len(b["idempotency_key"]) == 36 for b in bodies)

    # A key: the secret is shown once, with a copy button.
    page.type("#adm-key-label", "browser-key")
    page.click("#adm-key-submit")
    secret = page.wait(lambda: page.text("#adm-secret"), what="the new key's secret")
    stack.secrets.append(secret)
    assert secret.startswith("sk-sy-")
    assert page.finds(".secret button") and "Copy key" in page.text(".secret")
    page.wait(lambda: "browser-key" in page.text("#adm-keys"), what="the key in the list")
    assert secret not in page.text("#adm-keys")

    # The playground with that key, pasted as a person would.
    page.open("playground", reload=False)
    page.paste_key(secret)
    page.choose_model("qwen")
    page.send("Hello from a key made in the browser")
    page.wait_settled()
    assert stack.account(secret)["id"] == account_id
    request_id = page.find(".pane[data-pane='0']").get_attribute("data-request-id")
    row = stack.row(secret, request_id)
    tokens = row["usage"]["prompt_tokens"] + row["usage"]["completion_tokens"]
    assert Decimal(row["cost"]) == Decimal(tokens) * Decimal("0.04") / 1000 * Decimal("0.5")
    assert page.stat("cost") == row["cost"]

    # The secret is gone from the operator's page once it is left.
    open_admin(page)
    page.click(f"button[data-account='{account_id}']")
    page.wait(lambda: "browser-key" in page.text("#adm-keys"), what="the keys")
    assert secret not in page.js("return document.body.innerText")


def test_suspend_activate_models_limits_and_revoke(page, stack):
    account = stack.new_account("2.00")
    open_admin(page)
    page.click(f"button[data-account='{account.id}']")
    page.wait(lambda: account.id in page.text("#adm-detail-h"), what="the account's page")

    page.click("#adm-toggle-status")
    page.wait(lambda: page.field("status", "#adm-account-detail") == "suspended", what="suspended")
    assert http_json("GET", f"{stack.api}/admin/v1/accounts/{account.id}", ADMIN_KEY)[1]["status"] == "suspended"
    status, refusal = http_json("POST", f"{stack.api}/v1/chat/completions", account.key,
                                {"model": "qwen", "messages": [{"role": "user", "content": "Hi"}]})
    assert status == 403, refusal

    # The playground cannot even list the models: it says why, in the API's words.
    status, models = http_json("GET", f"{stack.api}/v1/models", account.key)
    assert status == 403 and models["error"]["message"] == refusal["error"]["message"], models
    page.open("playground", reload=False)
    page.paste_key(account.key)
    page.wait(lambda: page.text(".pg-settings .alert-message") == refusal["error"]["message"],
              what="the API's message for a suspended account")

    page.open("admin/accounts", reload=False)
    page.click(f"button[data-account='{account.id}']")
    page.wait(lambda: page.field("status", "#adm-account-detail") == "suspended", what="the account's page")
    page.click("#adm-toggle-status")
    page.wait(lambda: page.field("status", "#adm-account-detail") == "active", what="active again")

    page.type("#adm-set-models", "qwen, yi-34b-t")
    page.type("#adm-set-rpm", "120")
    page.type("#adm-set-concurrent", "3")
    page.type("#adm-set-multiplier", "0.8")
    page.click("#adm-set-submit")
    page.wait(lambda: page.field("multiplier", "#adm-account-detail") == "0.8", what="the new settings")
    status, stored = http_json("GET", f"{stack.api}/admin/v1/accounts/{account.id}", ADMIN_KEY)
    assert stored["models"] == ["qwen", "yi-34b-t"]
    assert stored["limits"] == {"requests_per_minute": 120, "tokens_per_minute": None, "concurrent": 3}
    assert stored["price_multiplier"] == "0.8" and stored["status"] == "active"

    # A bad value: the API's own message.
    page.type("#adm-set-rpm", "0")
    page.click("#adm-set-submit")
    status, bad = http_json("PATCH", f"{stack.api}/admin/v1/accounts/{account.id}", ADMIN_KEY,
                            {"limits": {"requests_per_minute": 0, "tokens_per_minute": None, "concurrent": 3}})
    assert status == 400
    page.wait(lambda: page.text("#adm-account-detail .alert-message") == bad["error"]["message"], what="the 400 message")

    # Revoke: two clicks (the second confirms); the key stops working at once.
    status, listed = http_json("GET", f"{stack.api}/admin/v1/accounts/{account.id}/keys", ADMIN_KEY)
    key_id = listed["data"][0]["id"]
    page.click(f"button[data-key='{key_id}']")
    assert page.text(f"button[data-key='{key_id}']") == "Confirm revoke"
    page.click(f"button[data-key='{key_id}']")
    page.wait(lambda: not page.finds(f"button[data-key='{key_id}']"), what="the key to be revoked")
    assert http_json("GET", f"{stack.api}/v1/account", account.key)[0] == 401


def test_catalog_usage_and_engines(page, stack):
    account = stack.new_account("1.00")
    for _ in range(3):
        stack.chat(account.key, "quick")
    open_admin(page, "models")
    page.wait(lambda: "qwen" in page.text("#adm-models"), what="the catalog")
    catalog = page.text("#adm-models")
    assert "0.04 in / 0.04 out per 1K tokens" in catalog
    assert "0.019 per second (at most 120 s billed)" in catalog
    assert "0.001 per request" in catalog
    assert "demo/Qwen2-72B-Instruct" in catalog and "engine-a/fake-model" in catalog

    page.click("#adm-tab-usage")
    page.type("#adm-usage-account", account.id)
    page.click("#adm-usage form.filters button[type=submit]")
    page.wait(lambda: page.text("#adm-usage-totals [data-total=requests]") == "3 requests", what="the account's usage")
    assert len(page.finds("#adm-usage-ledger tbody tr")) == 3
    assert account.id in page.text("#adm-usage-ledger")

    page.click("#adm-tab-engines")
    state = lambda: page.text("#adm-engines tbody tr .badge")  # noqa: E731
    page.wait(lambda: state() == "stopped", what="the engine, stopped")
    page.click("button[data-engine='engine-a'][data-action='start']")
    page.wait(lambda: state() == "ready", timeout=40, what="the engine to be ready")
    status, engines = http_json("GET", f"{stack.api}/admin/v1/engines", ADMIN_KEY)
    assert engines["data"][0]["state"] == "ready"
    assert str(engines["data"][0]["pid"]) in page.text("#adm-engines")
    page.click("button[data-engine='engine-a'][data-action='stop']")
    page.wait(lambda: state() == "stopped", timeout=40, what="the engine to stop")


def test_the_admin_key_is_asked_for_and_a_wrong_one_is_refused(page, stack):
    page.open("admin")
    assert "Paste the admin key" in page.text("#view-admin")
    wrong = "sk-admin-wrong-000000000"
    stack.secrets.append(wrong)
    status, body = http_json("GET", f"{stack.api}/admin/v1/accounts", wrong)
    assert status == 401
    page.paste_key(wrong, admin=True)
    page.wait(lambda: page.text("#view-admin .alert-message") == body["error"]["message"], what="the 401 message")
