#!/usr/bin/env bash
# The project's whole test suite: the Swift tests (unit tests and the gateway against real local
# upstreams), then the wire-level suite that drives the built binary with the official `openai`
# Python SDK and validates every response against OpenAI's schemas.
set -euo pipefail
cd "$(dirname "$0")/.."

swift build --build-tests
# One test at a time: several tests time what the upstream sees (a close within 100 ms), which a
# machine busy with the other tests would blur; serially the suite still takes about 20 s.
swift test --skip-build --no-parallel

python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r tests/sdk/requirements.txt
python3 -m pytest -q tests/sdk
