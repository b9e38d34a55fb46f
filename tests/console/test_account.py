"""My account in a real browser: the balance drops by exactly the ledger row's cost, the usage chart
per day and model, the ledger's date filter, paging and CSV download."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from conftest import money


def test_the_balance_drops_by_exactly_the_ledger_row_s_cost(page, stack):
    account = stack.new_account("5.00")
    page.open("account")
    page.paste_key(account.key)
    page.wait(lambda: page.field("balance") == "5.00", what="the balance")
    before = money(page.field("balance"))
    assert page.field("held") == "0.00" and page.field("multiplier") == "1" and page.field("status") == "active"

    page.open("playground", reload=False)  # the key is already there: same tab
    page.choose_model("qwen")
    page.send("What does this cost?")
    page.wait_settled()
    cost = money(page.stat("cost"))
    request_id = page.find(".pane[data-pane='0']").get_attribute("data-request-id")
    row = stack.row(account.key, request_id)
    assert Decimal(row["cost"]) == cost > 0

    page.open("account", reload=False)
    page.wait(lambda: page.field("balance") not in ("", "5.00"), what="the new balance")
    after = money(page.field("balance"))
    assert before - after == cost, f"{before} - {after} != {cost}"
    assert money(stack.account(account.key)["balance"]) == after
    assert page.field("held") == "0.00"


def test_usage_chart_ledger_paging_date_filter_and_csv(page, stack):
    account = stack.new_account("5.00")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: stack.chat(account.key, "quick"), range(26)))
        list(pool.map(lambda _: stack.chat(account.key, "qwen"), range(2)))
    page.open("account")
    page.paste_key(account.key)

    # The chart: today's bar in two colours, one per model, and the totals of the range.
    page.wait(lambda: page.text("#acct-usage-totals [data-total=requests]") == "28 requests", what="the totals")
    assert len(page.finds("#acct-usage-chart svg.chart rect")) == 2
    legend = page.text("#acct-usage-chart .legend")
    assert "quick (26)" in legend and "qwen (2)" in legend
    summary = stack_summary(stack, account.key)
    assert page.text("#acct-usage-totals [data-total=cost]") == f"cost {summary['cost']}"
    assert page.text("#acct-usage-totals [data-total=tokens]") == f"{summary['tokens']:,} tokens"
    page.js("const s = document.getElementById('acct-usage-metric'); s.value = 'cost';"
            "s.dispatchEvent(new Event('change'))")
    assert len(page.finds("#acct-usage-chart svg.chart rect")) == 2

    # The ledger: 25 a page, newest first; Older, then Newer.
    rows = lambda: page.finds("#acct-usage-ledger tbody tr")  # noqa: E731
    page.wait(lambda: len(rows()) == 25, what="the first page")
    page.click("#acct-usage-next")
    page.wait(lambda: len(rows()) == 3, what="the second page")
    assert not page.find("#acct-usage-next").is_enabled()
    page.click("#acct-usage .pager button")  # ← Newer
    page.wait(lambda: len(rows()) == 25, what="the first page again")

    # CSV: fetched with the bearer header, saved from a Blob.
    before = set(page.driver.downloads.iterdir())
    page.click("#acct-usage-csv")
    csv = page.wait(lambda: next((p for p in set(page.driver.downloads.iterdir()) - before
                                  if p.suffix == ".csv"), None), what="the CSV download")
    page.wait(lambda: csv.read_text().count("\n") == 29, what="the whole CSV")
    lines = csv.read_text().splitlines()
    assert lines[0].startswith("id,started_at,")
    assert sum(1 for line in lines if ",quick," in line) == 26

    # A range without requests.
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%d")
    page.js("document.getElementById('acct-usage-from').value = arguments[0];"
            "document.getElementById('acct-usage-to').value = arguments[0]", tomorrow)
    page.click("#acct-usage form.filters button[type=submit]")
    page.wait(lambda: page.text("#acct-usage-totals [data-total=requests]") == "0 requests", what="an empty range")
    assert "No requests in this range." in page.text("#acct-usage-ledger")
    assert not page.finds("#acct-usage-chart svg.chart")


def stack_summary(stack, key) -> dict:
    from console_stack import http_json

    status, answer = http_json("GET", f"{stack.api}/v1/usage/summary", key)
    assert status == 200, answer
    cost = sum((Decimal(r["cost"]) for r in answer["data"]), Decimal(0))
    tokens = sum(r["prompt_tokens"] + r["completion_tokens"] for r in answer["data"])
    text = format(cost.normalize(), "f")
    if "." not in text:
        text += ".00"
    elif len(text.split(".")[1]) < 2:
        text += "0"
    return {"cost": text, "tokens": tokens}
