#!/usr/bin/env bash
# The coding-agent suite (tests/agents, pytest): the real Codex CLI (`codex exec`, OpenAI Responses
# API) and Claude Code (`claude -p`, Anthropic Messages API), each one non-interactive turn, first
# against a recording server, then through the gateway (translated to the fake upstream, passed
# through to upstreams that speak their API, seed-style paths), checking the answer and the ledger.
#
# Both agents are binaries inside PyPI packages (openai-codex-cli-bin, claude-agent-sdk), installed
# from the pinned lock file tests/agents/requirements.txt into a virtual environment of its own,
# .build/agents-venv, never into the system's Python. The venv is (re)made only when it is missing,
# its Python is gone, or the lock file or the Python it is made from changed (their hash and path are
# kept in the venv, .switchyard-lock). The two agents' wheels are big (~320 MB, ~830 MB unpacked) and
# pip's own cache does not keep them, so the lock file's wheels are kept beside pip's cache, in
# ${XDG_CACHE_HOME:-~/.cache}/switchyard/agents-wheels/HASH (outside the clone, so a fresh clone on the
# same machine, as CI makes, downloads nothing; fetched once per lock file, older ones removed):
# remaking the venv then takes seconds. AGENTS_WHEELS overrides the folder.
#
#   scripts/test-agents.sh [pytest args…]    e.g. -k codex, -x
#   PYTHON=python3.11                        the Python the venv is made from (default: python3)
#
# It tests the built binaries, .build/debug/switchyard and .build/debug/switchyard-fake-upstream
# (`swift build`), or those named by SWITCHYARD_BIN and SWITCHYARD_FAKE_UPSTREAM_BIN; CODEX_BIN and
# CLAUDE_BIN override the agents' binaries. Nothing leaves the machine: the agents talk to 127.0.0.1
# only (no login, no update check, no telemetry).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
venv=.build/agents-venv lock=tests/agents/requirements.txt
pip_flags=(--quiet --disable-pip-version-check --require-virtualenv)

want="$(sha256sum "$lock" | cut -d' ' -f1) $("$python" -c 'import os, sys; print(os.path.realpath(sys.executable), sys.version.split()[0])')"
have=""
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c '' 2>/dev/null; then
    have=$(cat "$venv/.switchyard-lock" 2>/dev/null || true)
fi
if [ "$have" != "$want" ]; then
    echo "test-agents: making $venv from $lock"
    rm -rf "$venv"
    mkdir -p .build
    if ! "$python" -m venv "$venv"; then
        echo "test-agents: '$python -m venv' failed; on Debian or Ubuntu: apt-get install python3-venv" >&2
        exit 1
    fi
    store=${AGENTS_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/switchyard/agents-wheels}
    wheels=$store/$(sha256sum "$lock" | cut -c1-16)
    mkdir -p "$wheels"
    find "$store" -mindepth 1 -maxdepth 1 ! -path "$wheels" -exec rm -rf {} +
    if [ ! -f "$wheels/.complete" ]; then
        "$venv/bin/python" -m pip download "${pip_flags[@]}" --dest "$wheels" -r "$lock"  # only what is missing
        touch "$wheels/.complete"
    fi
    "$venv/bin/python" -m pip install "${pip_flags[@]}" --no-index --find-links "$wheels" -r "$lock"
    "$venv/bin/python" -m pip check >/dev/null
    echo "$want" >"$venv/.switchyard-lock"
fi

versions=$("$venv/bin/python" - <<'EOF'
from importlib.metadata import version
print(f"openai-codex-cli-bin {version('openai-codex-cli-bin')}, claude-agent-sdk {version('claude-agent-sdk')}")
EOF
)
echo "test-agents: tests/agents with $versions ($venv)"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/agents "$@"
