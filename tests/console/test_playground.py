"""The playground in a real browser: a reply streams and is seen to grow, Stop (the button or Esc)
cancels it through the API and the page shows end_reason cancelled, the figures are the ledger's,
the raw and code views, side by side, a whole answer, and the API's own error messages."""

from __future__ import annotations

import re
import time
from decimal import Decimal

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from console_stack import TOKENS, http_json

TEST_REPLY = "This is Switchyard's built-in test model"


def ms(value) -> str:
    """How the page shows a duration in milliseconds (ui.js fmtMs)."""
    return f"{round(value)} ms" if value < 10000 else f"{value / 1000:.1f} s"


def test_a_reply_streams_token_by_token_and_shows_the_ledger_row(page, stack):
    account = stack.new_account("5.00")
    page.open("playground")
    page.paste_key(account.key)
    page.choose_model("qwen")
    page.send("Tell me about Switchyard")  # Enter sends
    lengths = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        lengths.append(len(page.reply()))
        if page.text(".pane[data-pane='0'] .pane-state") == "done":
            break
        time.sleep(0.05)
    lengths.append(len(page.reply()))
    seen = [n for n in lengths if n > 0]
    assert seen == sorted(seen), f"the reply shrank: {lengths}"
    assert len(set(seen)) >= 8, f"the reply did not grow token by token: {lengths}"
    assert page.reply().startswith(TEST_REPLY)

    page.wait_settled()
    request_id = page.find(".pane[data-pane='0']").get_attribute("data-request-id")
    assert request_id and request_id.startswith("chatcmpl-")
    row = stack.row(account.key, request_id)
    usage = row["usage"]
    assert page.stat("tokens") == f"{usage['prompt_tokens']} + {usage['completion_tokens']} = {usage['total_tokens']}"
    assert usage["completion_tokens"] == TOKENS
    assert page.stat("cost") == row["cost"] and Decimal(row["cost"]) > 0
    assert page.stat("first-token") == ms(row["timings_ms"]["first_token"])
    assert page.stat("generation") == ms(row["timings_ms"]["generation"])
    assert page.stat("status") == row["status"] == "completed"
    assert re.fullmatch(r"\d+ ms|\d+\.\d s", page.stat("latency"))

    # Raw: the exact request (key masked) and every event as received.
    page.click("#pg-tab-raw")
    raw_request = page.visible(".raw-pane[data-pane='0'] .raw-request").text
    assert '"model": "qwen"' in raw_request and '"stream": true' in raw_request and '"include_usage": true' in raw_request
    assert "Tell me about Switchyard" in raw_request
    assert account.key not in raw_request and "Bearer ••••" in raw_request
    events = page.visible(".raw-pane[data-pane='0'] .raw-events").text
    assert events.count("data: {") >= TOKENS + 1 and events.rstrip().endswith("data: [DONE]")
    assert request_id in events


def test_the_code_view_shows_the_call_with_this_origin_and_no_key(page, stack):
    account = stack.new_account("1.00")
    page.open("playground")
    page.paste_key(account.key)
    page.choose_model("qwen")
    page.type("#pg-system", "Be brief.")
    page.type("#pg-temperature", "0.5")
    page.type("#pg-user", "alice")
    page.type("#pg-message", "Hello from the code view")
    page.click("#pg-tab-code")
    origin = stack.origin
    samples = {}
    for sample in ("curl", "python", "javascript", "seed"):
        page.click(f"#pg-code-{sample}")
        samples[sample] = page.visible("#pg-code-text").text
    assert f"curl -N {origin}/v1/chat/completions" in samples["curl"]
    assert 'Authorization: Bearer $SWITCHYARD_KEY' in samples["curl"]
    assert '"content": "Be brief."' in samples["curl"] and '"temperature": 0.5' in samples["curl"]
    assert f'OpenAI(base_url="{origin}/v1", api_key=os.environ["SWITCHYARD_KEY"])' in samples["python"]
    assert 'temperature=0.5,' in samples["python"] and "stream_options={" in samples["python"] and '"include_usage": True' in samples["python"]
    assert f'fetch("{origin}/v1/chat/completions"' in samples["javascript"]
    assert "process.env.SWITCHYARD_KEY" in samples["javascript"]
    assert f"{origin}/llm_api/YOUR_KEY/alice/qwen/v1/chat/completions" in samples["seed"]
    for text in samples.values():
        assert account.key not in text
        assert "Hello from the code view" in text
    assert account.key not in page.js("return document.body.innerText")


@pytest.mark.parametrize("how", ["button", "escape"])
def test_stop_cancels_the_stream_and_shows_end_reason_cancelled(page, stack, how):
    account = stack.new_account("5.00")
    page.open("playground")
    page.paste_key(account.key)
    page.choose_model("slow-model")
    page.send("A long story, please")
    page.wait(lambda: len(page.reply()) > 40, what="the reply to begin")
    if how == "button":
        page.click("#pg-stop")
    else:
        ActionChains(page.driver).send_keys(Keys.ESCAPE).perform()
    page.wait(lambda: page.stat("end-reason") == "cancelled", what="end reason cancelled")
    assert page.text(".pane[data-pane='0'] .pane-state") == "cancelled"
    stopped_at = len(page.reply())
    time.sleep(0.5)
    assert len(page.reply()) == stopped_at, "the reply went on after Stop"
    page.wait_settled()
    request_id = page.find(".pane[data-pane='0']").get_attribute("data-request-id")
    row = stack.row(account.key, request_id)
    assert row["end_reason"] == "cancelled"
    assert 0 < row["usage"]["completion_tokens"] < 600
    assert page.stat("cost") == row["cost"]
    assert page.stat("status") == row["status"]
    # The page can send again at once.
    assert page.find("#pg-send").is_enabled() and not page.find("#pg-stop").is_enabled()


def test_side_by_side_sends_the_same_prompt_to_two_models(page, stack):
    account = stack.new_account("5.00")
    page.open("playground")
    page.paste_key(account.key)
    page.choose_model("qwen")
    page.click("label[for=pg-compare]")
    page.choose_model("yi-34b-t", "#pg-model-b")
    page.send("Compare yourselves")
    page.wait(lambda: len(page.reply(0)) > 10 and len(page.reply(1)) > 10, what="both replies to stream")
    page.wait_settled(0)
    page.wait_settled(1)
    assert page.text(".pane[data-pane='0'] .pane-title") == "qwen"
    assert page.text(".pane[data-pane='1'] .pane-title") == "yi-34b-t"
    ids = set()
    for pane in (0, 1):
        request_id = page.find(f".pane[data-pane='{pane}']").get_attribute("data-request-id")
        ids.add(request_id)
        row = stack.row(account.key, request_id)
        assert page.stat("cost", pane) == row["cost"]
        assert page.stat("tokens", pane).endswith(f"= {row['usage']['total_tokens']}")
        assert re.fullmatch(r"\d+ ms|\d+\.\d s", page.stat("latency", pane))
    assert len(ids) == 2
    rows = {stack.row(account.key, i)["model"] for i in ids}
    assert rows == {"qwen", "yi-34b-t"}


def test_a_whole_answer_without_streaming(page, stack):
    account = stack.new_account("5.00")
    page.open("playground")
    page.paste_key(account.key)
    page.choose_model("qwen")
    page.click("label[for=pg-stream]")  # off
    page.type("#pg-max-tokens", "64")
    page.send("Whole, please")
    page.wait_settled()
    assert page.reply().startswith(TEST_REPLY)
    request_id = page.find(".pane[data-pane='0']").get_attribute("data-request-id")
    row = stack.row(account.key, request_id)
    assert page.stat("cost") == row["cost"]
    page.click("#pg-tab-raw")
    assert '"max_tokens": 64' in page.visible(".raw-request").text
    assert '"stream"' not in page.visible(".raw-request").text
    assert request_id in page.visible(".raw-response").text


def test_the_api_s_own_error_messages_are_shown(page, stack):
    # A wrong key: the models list cannot load, and the page says what the API said.
    wrong = "sk-sy-not-a-real-key-000000000000000000000000"
    stack.secrets.append(wrong)
    status, body = http_json("GET", f"{stack.api}/v1/models", wrong)
    assert status == 401
    page.open("playground")
    page.paste_key(wrong)
    page.wait(lambda: page.text(".pg-settings .alert-message") == body["error"]["message"], what="the 401 message")

    # An empty account: 402 with the API's message in the reply's place.
    broke = stack.new_account("0")
    status, body = http_json("POST", f"{stack.api}/v1/chat/completions", broke.key,
                             {"model": "qwen", "stream": True, "stream_options": {"include_usage": True},
                              "messages": [{"role": "user", "content": "Hello"}]})
    assert status == 402, body
    page.click("[data-action=forget-key]")
    page.paste_key(broke.key)
    page.choose_model("qwen")
    page.send("Hello")
    page.wait(lambda: page.text(".pane[data-pane='0'] .msg.assistant .alert-message") == body["error"]["message"],
              what="the 402 message")
    assert "insufficient_quota" in page.text(".pane[data-pane='0'] .msg.assistant .alert-details")
    assert page.text(".pane[data-pane='0'] .pane-state") == "error"


def test_stop_abandons_a_whole_answer_and_the_ledger_says_client_closed(page, stack):
    account = stack.new_account("5.00")
    page.open("playground")
    page.paste_key(account.key)
    page.choose_model("slow-model")
    page.click("label[for=pg-stream]")  # off: the id is not known before the answer
    page.send("A long story, whole")
    page.wait(lambda: page.text(".pane[data-pane='0'] .pane-state") == "waiting", what="the request to be sent")
    time.sleep(0.5)
    page.click("#pg-stop")
    page.wait_settled()
    assert page.stat("end-reason") == "client_closed"
    assert page.stat("status") == "client_closed"
    status, rows = http_json("GET", f"{stack.api}/v1/usage", account.key)
    row = rows["data"][0]
    assert row["end_reason"] == "client_closed" and row["http_request_id"].startswith("console-")
    assert page.stat("cost") == row["cost"]
