#!/usr/bin/env bash
# The real-engine suite (tests/engines): the gateway starts llama.cpp (llama-cpp-python's server) as
# a managed engine serving the tiny model ../shared/engines/make_tiny_gguf.py writes, and the tests
# check loading, warm requests, swaps, idle stops and billing against that real process.
#
# The engine lives in a venv of its own, .build/engine-venv, made from tests/engines/requirements-engine.txt
# and remade only when that file changes. The first install compiles llama.cpp (5–9 minutes on two
# cores); pip keeps the built wheel in its cache, so a later install on the same machine takes seconds.
# The tests themselves run in the SDK suite's openai 3.x venv (scripts/test-sdk.sh makes it).
#
#   scripts/test-engines.sh [pytest args…]
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
venv=.build/engine-venv lock=tests/engines/requirements-engine.txt
want="$(sha256sum "$lock" | cut -d' ' -f1) $("$python" -c 'import os, sys; print(os.path.realpath(sys.executable), sys.version.split()[0])')"
have=$(cat "$venv/.switchyard-lock" 2>/dev/null || true)
if [ "$have" != "$want" ] || ! "$venv/bin/python" -c 'import llama_cpp' 2>/dev/null; then
    echo "test-engines: making $venv from $lock (compiling llama.cpp the first time: minutes)"
    rm -rf "$venv"
    mkdir -p .build
    "$python" -m venv "$venv"
    # -march=native builds can die with SIGILL on another CPU, so the wheel is built portable.
    CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --require-virtualenv -r "$lock"
    echo "$want" >"$venv/.switchyard-lock"
fi

runner=.build/sdk-venv-3/bin/python
[ -x "$runner" ] || { echo "test-engines: $runner is missing: run scripts/test-sdk.sh first" >&2; exit 2; }
exec "$runner" -m pytest -q -p no:cacheprovider tests/engines "$@"
