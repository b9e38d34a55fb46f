"""Runs the two real coding agents that PyPI ships as binaries, one non-interactive turn each.

- Codex CLI (`openai-codex-cli-bin`: `codex_cli_bin/bin/codex`) speaks only the OpenAI Responses API:
  `codex exec` with a CODEX_HOME of its own whose config.toml defines a provider `switchyard`
  (`base_url` … `/v1`, `env_key`, `wire_api = "responses"`).
- Claude Code (bundled in `claude-agent-sdk`: `claude_agent_sdk/_bundled/claude`) speaks the
  Anthropic Messages API: `claude -p` with ANTHROPIC_BASE_URL (the server's root: Claude Code appends
  `/v1/messages?beta=true` itself), ANTHROPIC_API_KEY (sent as `x-api-key`) or ANTHROPIC_AUTH_TOKEN
  (sent as `Authorization: Bearer`).

Both get a fresh HOME, a minimal environment (nothing of the caller's OPENAI_* / ANTHROPIC_* leaks
in) and a time limit; the whole process group is killed when it runs over. CODEX_BIN and CLAUDE_BIN
override where the binaries are found (default: the packages installed in this Python).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

AGENT_TIMEOUT_S = 120.0
PROMPT = "Reply with the word OK"


def codex_binary() -> Path | None:
    given = os.environ.get("CODEX_BIN")
    if given:
        return Path(given) if Path(given).is_file() else None
    try:
        from codex_cli_bin import bundled_codex_path

        return bundled_codex_path()
    except (ImportError, FileNotFoundError):
        return None


def claude_binary() -> Path | None:
    given = os.environ.get("CLAUDE_BIN")
    if given:
        return Path(given) if Path(given).is_file() else None
    try:
        import claude_agent_sdk
    except ImportError:
        return None
    path = Path(claude_agent_sdk.__file__).resolve().parent / "_bundled" / "claude"
    return path if path.is_file() else None


@dataclass
class AgentRun:
    argv: list[str]
    env: dict[str, str]
    returncode: int | None  # None: killed at the time limit
    stdout: str
    stderr: str
    elapsed: float
    files: dict[str, str] = field(default_factory=dict)  # config files written for the run

    def describe(self) -> str:
        env = {k: ("…" if "KEY" in k or "TOKEN" in k else v) for k, v in self.env.items()}
        status = "timed out" if self.returncode is None else f"exit {self.returncode}"
        return (
            f"{status} after {self.elapsed:.1f}s\nargv: {self.argv}\nenv: {env}\n"
            + "".join(f"--- {name}:\n{text}\n" for name, text in self.files.items())
            + f"--- stdout:\n{self.stdout[-4000:]}\n--- stderr:\n{self.stderr[-6000:]}"
        )


def _run(argv: list[str], env: dict[str, str], cwd: Path, timeout: float, files: dict[str, str]) -> AgentRun:
    started = time.monotonic()
    popen = subprocess.Popen(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )
    try:
        out, err = popen.communicate(timeout=timeout)
        code: int | None = popen.returncode
    except subprocess.TimeoutExpired:
        os.killpg(popen.pid, signal.SIGKILL)
        out, err = popen.communicate()
        code = None
    return AgentRun(argv, env, code, out, err, time.monotonic() - started, files)


def _base_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
    }


def codex_config(base_url: str, model: str, provider_extra: str = "") -> str:
    """config.toml for `codex exec` against base_url (ending in /v1): the provider `switchyard`, no
    update check, no analytics or feedback. `provider_extra` adds lines to the provider's table (e.g.
    `supports_websockets = true`)."""
    return f"""\
model = {model!r}
model_provider = "switchyard"
check_for_update_on_startup = false

[analytics]
enabled = false

[feedback]
enabled = false

[model_providers.switchyard]
name = "Switchyard"
base_url = {base_url!r}
env_key = "SWITCHYARD_API_KEY"
wire_api = "responses"
# One request per turn: a failure shows at once instead of after Codex's retries (5 stream
# reconnects, each of which retries 5xx 4 times).
request_max_retries = 0
stream_max_retries = 0
{provider_extra}
"""


def run_codex(
    base_url: str, api_key: str, model: str, workdir: Path, provider_extra: str = "",
    prompt: str = PROMPT, timeout: float = AGENT_TIMEOUT_S, binary: Path | None = None,
) -> AgentRun:
    """`codex exec` one turn against base_url (…/v1). The key goes in SWITCHYARD_API_KEY (sent as
    `Authorization: Bearer`). stdout is the agent's last message."""
    binary = binary or codex_binary()
    assert binary is not None, "no codex binary"
    home, codex_home, cwd = workdir / "home", workdir / "codex-home", workdir / "work"
    for path in (home, codex_home, cwd):
        path.mkdir(parents=True, exist_ok=True)
    config = codex_config(base_url, model, provider_extra)
    (codex_home / "config.toml").write_text(config)
    env = _base_env(home) | {"CODEX_HOME": str(codex_home), "SWITCHYARD_API_KEY": api_key}
    argv = [
        str(binary), "exec", "--skip-git-repo-check", "--ephemeral", "--strict-config", "--color", "never",
        "--sandbox", "read-only", "--cd", str(cwd), prompt,
    ]
    return _run(argv, env, cwd, timeout, {"config.toml": config})


def run_claude(
    base_url: str, api_key: str, model: str, workdir: Path, auth: str = "x-api-key",
    prompt: str = PROMPT, timeout: float = AGENT_TIMEOUT_S, binary: Path | None = None,
) -> AgentRun:
    """`claude -p` one turn against base_url (the server's root, no /v1). auth "x-api-key" sets
    ANTHROPIC_API_KEY (header `x-api-key`), "bearer" sets ANTHROPIC_AUTH_TOKEN (header
    `Authorization: Bearer`). stdout is the answer's text."""
    binary = binary or claude_binary()
    assert binary is not None, "no claude binary"
    home, cwd = workdir / "home", workdir / "work"
    for path in (home, cwd):
        path.mkdir(parents=True, exist_ok=True)
    env = _base_env(home) | {
        "ANTHROPIC_BASE_URL": base_url,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",  # no /api/hello check, telemetry, update check
        "DISABLE_AUTOUPDATER": "1",
        # One request per turn: a failure shows at once instead of after ~10 retries over 2-3 minutes
        # (429, 5xx, 529 and even 401 are retried with backoff from 0.5 s doubling to ~35 s).
        "CLAUDE_CODE_MAX_RETRIES": "0",
    }
    env["ANTHROPIC_API_KEY" if auth == "x-api-key" else "ANTHROPIC_AUTH_TOKEN"] = api_key
    argv = [
        str(binary), "-p", prompt, "--model", model, "--output-format", "text", "--no-session-persistence",
        "--permission-prompts", "none", "--strict-mcp-config",
    ]
    return _run(argv, env, cwd, timeout, {})
