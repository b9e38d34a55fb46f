"""Real coding agents, one non-interactive turn each: Codex CLI (`codex exec`, Responses API) and
Claude Code (`claude -p`, Messages API).

First straight against the recording server (recorder.py), which shows the agent invocation works
and pins down what each agent sends; then through the gateway: translated to chat completions for the
fake upstream, passed through to upstreams that speak the agent's API, and the seed service's path
style. Through the gateway each run must exit 0, print the upstream's answer, and leave settled ledger
rows (cost > 0) whose `api` is the agent's API.

A test is skipped when its agent's binary is missing (tests/agents/requirements.txt installs both).
"""

from __future__ import annotations

import http.client
import json
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from agents import PROMPT, AgentRun, claude_binary, codex_binary, run_claude, run_codex
from agents_stack import (
    FAKE_REPLY, RECORDER_REPLY, UPSTREAM_ANTHROPIC_KEY, UPSTREAM_CLAUDE, UPSTREAM_NATIVE, UPSTREAM_NATIVE_KEY,
)

needs_codex = pytest.mark.skipif(
    codex_binary() is None, reason="no codex binary: pip install -r tests/agents/requirements.txt (openai-codex-cli-bin) or set CODEX_BIN"
)
needs_claude = pytest.mark.skipif(
    claude_binary() is None, reason="no claude binary: pip install -r tests/agents/requirements.txt (claude-agent-sdk) or set CLAUDE_BIN"
)


def ran(run: AgentRun, reply: str) -> None:
    """The agent finished its turn (exit 0) and printed `reply` as its answer."""
    assert run.returncode == 0, run.describe()
    assert run.stdout.strip() == reply, run.describe()


def input_texts(body: dict, role: str) -> list[str]:
    return [part["text"] for item in body["input"] if item.get("type") == "message" and item.get("role") == role
            for part in item["content"] if part.get("type") == "input_text"]


def message_texts(body: dict, role: str) -> list[str]:
    texts = []
    for message in body["messages"]:
        if message["role"] != role:
            continue
        content = message["content"]
        texts += [content] if isinstance(content, str) else [b["text"] for b in content if b.get("type") == "text"]
    return texts


def ledger(stack, key: str, api: str, model: str, user: str | None = None) -> list[dict]:
    """The key's rows: every one of the agent's API and model, at least one completed at a cost > 0."""
    rows = stack.settled_rows(key)
    assert rows, "no ledger row for the agent's request"
    assert {row.get("api") for row in rows} == {api}, rows
    assert {row["model"] for row in rows} == {model}, rows
    completed = [row for row in rows if row["status"] == "completed"]
    assert completed, rows
    for row in completed:
        assert Decimal(row["cost"]) > 0, row
        assert row["usage"]["prompt_tokens"] > 0 and row["usage"]["completion_tokens"] > 0, row
        if user is not None:
            assert row["user"] == user, row
    return rows


# --- straight against the recorder: the agents' own wire ---------------------------------------


@needs_codex
def test_codex_finishes_a_turn_against_the_recorder(recorder, tmp_path: Path):
    run = run_codex(recorder.url + "/v1", "sk-sy-direct", "agent-model", tmp_path)
    ran(run, "OK")
    assert [(r.method, r.path, r.query) for r in recorder.requests] == [("POST", "/v1/responses", "")], run.describe()
    request = recorder.requests[0]
    assert request.headers["authorization"] == "Bearer sk-sy-direct"
    assert request.headers["accept"] == "text/event-stream"
    body = request.body
    assert body["model"] == "agent-model"
    assert body["stream"] is True and body["store"] is False
    assert "instructions" not in body and "previous_response_id" not in body and "max_output_tokens" not in body
    assert body["include"] == ["reasoning.encrypted_content"]
    assert body["prompt_cache_key"] and body["tool_choice"] == "auto" and body["parallel_tool_calls"] is True
    # The system prompt is a developer message, the prompt the last user message.
    assert input_texts(body, "developer") and input_texts(body, "user")[-1] == PROMPT
    assert {item["type"] for item in body["input"]} == {"message"}
    assert {tool["type"] for tool in body["tools"]} >= {"function"}


@needs_codex
def test_codex_falls_back_to_http_when_the_recorder_refuses_the_websocket_with_426(recorder, tmp_path: Path):
    run = run_codex(recorder.url + "/v1", "sk-sy-direct", "agent-model", tmp_path, provider_extra="supports_websockets = true")
    ran(run, "OK")
    seen = [(r.method, r.path, r.status) for r in recorder.requests]
    assert seen == [("GET", "/v1/responses", 426), ("POST", "/v1/responses", 200)], run.describe()
    upgrade = recorder.requests[0].headers
    assert upgrade["upgrade"].lower() == "websocket" and upgrade["openai-beta"].startswith("responses_websockets=")


@needs_claude
@pytest.mark.parametrize("auth", ["x-api-key", "bearer"])
def test_claude_finishes_a_turn_against_the_recorder(recorder, tmp_path: Path, auth: str):
    run = run_claude(recorder.url, "sk-sy-direct", "agent-model", tmp_path, auth=auth)
    ran(run, "OK")
    assert [(r.method, r.path, r.query) for r in recorder.requests] == [("POST", "/v1/messages", "beta=true")], run.describe()
    headers = recorder.requests[0].headers
    if auth == "x-api-key":
        assert headers["x-api-key"] == "sk-sy-direct" and "authorization" not in headers
    else:
        assert headers["authorization"] == "Bearer sk-sy-direct" and "x-api-key" not in headers
    assert headers["anthropic-version"] == "2023-06-01"
    assert "claude-code-20250219" in headers["anthropic-beta"].split(",")
    body = recorder.requests[0].body
    assert body["model"] == "agent-model" and body["stream"] is True
    assert isinstance(body["max_tokens"], int) and body["max_tokens"] > 0
    assert isinstance(body["system"], list) and any("cache_control" in block for block in body["system"])
    assert message_texts(body, "user")[-1] == PROMPT
    assert {tool["name"] for tool in body["tools"]} >= {"Bash", "Read", "Edit", "Write"}


# --- through the gateway: translated to chat completions for the fake upstream ----------------------


@needs_codex
def test_codex_through_the_gateway(stack, tmp_path: Path):
    key = stack.new_key()
    run = run_codex(stack.v1, key, "agent-model", tmp_path)
    ran(run, FAKE_REPLY)
    ledger(stack, key, "responses", "agent-model")


@needs_codex
def test_codex_gets_426_for_a_websocket_and_falls_back_to_http(stack, tmp_path: Path):
    key = stack.new_key()
    # What Codex sends first when its provider says supports_websockets: a GET with Upgrade.
    address = urlsplit(stack.root)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    connection.request("GET", "/v1/responses", headers={
        "Authorization": f"Bearer {key}", "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "OpenAI-Beta": "responses_websockets=2026-02-06",
    })
    answer = connection.getresponse()
    error = json.loads(answer.read())
    connection.close()
    assert answer.status == 426, error
    assert error["error"]["message"] and "type" in error["error"]

    run = run_codex(stack.v1, key, "agent-model", tmp_path, provider_extra="supports_websockets = true")
    ran(run, FAKE_REPLY)
    ledger(stack, key, "responses", "agent-model")


@needs_claude
@pytest.mark.parametrize("auth", ["x-api-key", "bearer"])
def test_claude_through_the_gateway(stack, tmp_path: Path, auth: str):
    key = stack.new_key()
    run = run_claude(stack.root, key, "agent-model", tmp_path, auth=auth)
    ran(run, FAKE_REPLY)
    ledger(stack, key, "messages", "agent-model")


# --- through the gateway: passed through to upstreams that speak the agent's API --------------------


@needs_codex
def test_codex_through_the_gateway_to_a_native_responses_upstream(stack, recorder, tmp_path: Path):
    direct = run_codex(recorder.url + "/v1", "sk-sy-direct", "agent-native", tmp_path / "direct")
    ran(direct, "OK")
    sent = recorder.requests[-1].body

    key = stack.new_key()
    stack.recorder.clear()
    run = run_codex(stack.v1, key, "agent-native", tmp_path / "gateway")
    ran(run, RECORDER_REPLY)
    upstream = [r for r in stack.recorder.requests if r.path == "/v1/responses"]
    assert len(upstream) == 1, [(r.method, r.path, r.status) for r in stack.recorder.requests]
    request = upstream[0]
    assert request.headers["authorization"] == f"Bearer {UPSTREAM_NATIVE_KEY}"
    assert request.body["model"] == UPSTREAM_NATIVE
    # Passed through: the same fields as Codex sends (only `model` rewritten).
    assert set(request.body) == set(sent), (sorted(request.body), sorted(sent))
    for field in ("stream", "store", "include", "tool_choice", "parallel_tool_calls", "reasoning"):
        assert request.body[field] == sent[field], field
    assert [(i["type"], i.get("role")) for i in request.body["input"]] == [(i["type"], i.get("role")) for i in sent["input"]]
    assert [(t["type"], t.get("name")) for t in request.body["tools"]] == [(t["type"], t.get("name")) for t in sent["tools"]]
    ledger(stack, key, "responses", "agent-native")


@needs_claude
def test_claude_through_the_gateway_to_an_anthropic_upstream(stack, recorder, tmp_path: Path):
    direct = run_claude(recorder.url, "sk-sy-direct", "agent-claude", tmp_path / "direct")
    ran(direct, "OK")
    sent = recorder.requests[-1]

    key = stack.new_key()
    stack.recorder.clear()
    run = run_claude(stack.root, key, "agent-claude", tmp_path / "gateway")
    ran(run, RECORDER_REPLY)
    upstream = [r for r in stack.recorder.requests if r.path == "/v1/messages"]
    assert len(upstream) == 1, [(r.method, r.path, r.status) for r in stack.recorder.requests]
    request = upstream[0]
    assert request.headers["x-api-key"] == UPSTREAM_ANTHROPIC_KEY
    assert key not in json.dumps(request.headers)  # the caller's key never reaches the upstream
    # The caller's anthropic-version and anthropic-beta, forwarded unchanged.
    assert request.headers["anthropic-version"] == sent.headers["anthropic-version"]
    assert request.headers["anthropic-beta"] == sent.headers["anthropic-beta"]
    assert request.body["model"] == UPSTREAM_CLAUDE
    assert set(request.body) == set(sent.body), (sorted(request.body), sorted(sent.body))
    for field in ("stream", "max_tokens", "thinking", "context_management"):
        assert request.body.get(field) == sent.body.get(field), field
    assert [b.get("cache_control") for b in request.body["system"]] == [b.get("cache_control") for b in sent.body["system"]]
    assert [t["name"] for t in request.body["tools"]] == [t["name"] for t in sent.body["tools"]]
    assert [m["role"] for m in request.body["messages"]] == [m["role"] for m in sent.body["messages"]]
    ledger(stack, key, "messages", "agent-claude")


# --- the seed service's style: key, end user and model in the path ----------------------------------


@needs_codex
def test_codex_through_the_seed_style_path(stack, tmp_path: Path):
    key = stack.new_key()
    run = run_codex(f"{stack.root}/llm_api/{key}/alice/agent-model/v1", "unused", "ignored", tmp_path)
    ran(run, FAKE_REPLY)
    ledger(stack, key, "responses", "agent-model", user="alice")


@needs_claude
def test_claude_through_the_seed_style_path(stack, tmp_path: Path):
    key = stack.new_key()
    run = run_claude(f"{stack.root}/llm_api/{key}/alice/agent-model", "unused", "ignored", tmp_path)
    ran(run, FAKE_REPLY)
    ledger(stack, key, "messages", "agent-model", user="alice")
