#!/usr/bin/env bash
# The project's whole test suite: the Swift tests (unit tests and the gateway against real local
# upstreams), then the wire-level suite that drives the built binary with the official `openai`
# Python SDK, 2.x and 3.x, and the `anthropic` SDK, and validates every response against OpenAI's
# schemas; the real-engine suite; the real coding agents (Codex CLI, Claude Code) through it; and the
# web console in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

swift build --build-tests
# One test at a time: several tests time what the upstream sees (a close within 100 ms), which a
# machine busy with the other tests would blur; serially the suite still takes about 20 s.
swift test --skip-build --no-parallel

# The wire suite once per openai SDK line (2.x on httpx, 3.x on httpx2), each from its pinned lock file
# in a venv of its own under .build/ (made once, remade only when its lock file changes), never in
# the system's Python; then the real-engine suite (llama.cpp as a managed engine; its first install
# compiles llama.cpp, minutes; later ones take seconds from pip's cache). Both run whatever the
# other's outcome; the first failure's status is the script's. Last, the agents' suite (Codex CLI and
# Claude Code from their PyPI packages, ~320 MB of wheels fetched once into ~/.cache/switchyard).
status=0
scripts/test-sdk.sh || status=$?
scripts/test-engines.sh || { engines=$?; [ "$status" != 0 ] || status=$engines; }
scripts/test-agents.sh || { agents=$?; [ "$status" != 0 ] || status=$agents; }
# Several replicas on one PostgreSQL (tests/replicas): needs SWITCHYARD_TEST_POSTGRES_URL and psql, which
# .ci/run provides; skipped with a line saying so without them.
scripts/test-replicas.sh || { replicas=$?; [ "$status" != 0 ] || status=$replicas; }
# The web console in a real browser: Debian's headless chromium and chromium-driver (apt), Selenium
# from tests/console/requirements.txt in .build/console-venv; screenshots in .build/console-screenshots.
scripts/test-console.sh || { console=$?; [ "$status" != 0 ] || status=$console; }
exit "$status"
