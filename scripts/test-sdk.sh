#!/usr/bin/env bash
# The wire-level suite (tests/sdk, pytest) once per line of the official `openai` Python SDK: for each
# lock file tests/sdk/requirements-openai<N>.txt, in a virtual environment of its own,
# .build/sdk-venv-<N>, never in the system's Python. A venv is (re)made only when it is missing, its
# Python is gone, or its lock file or the Python it is made from changed (their hash and path are kept
# in the venv, .switchyard-lock); pip's cache makes a reinstall quick. Runs every line even when one fails, and exits with the first failure's status.
#
#   scripts/test-sdk.sh [pytest args…]       e.g. -k streaming, -x
#   SDK_LINES="3" scripts/test-sdk.sh        only some lines (default: every lock file)
#   PYTHON=python3.11                        the Python the venvs are made from (default: python3)
#
# It tests the built binaries, .build/debug/switchyard and .build/debug/switchyard-fake-upstream
# (`swift build`), or those named by SWITCHYARD_BIN and SWITCHYARD_FAKE_UPSTREAM_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
pip_flags=(--quiet --disable-pip-version-check --require-virtualenv)

# Makes (or keeps) the venv $1 with exactly the packages of lock file $2.
sdk_venv() {
    local venv=$1 lock=$2 want have=""
    want="$(sha256sum "$lock" | cut -d' ' -f1) $("$python" -c 'import os, sys; print(os.path.realpath(sys.executable), sys.version.split()[0])')"
    if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c '' 2>/dev/null; then
        have=$(cat "$venv/.switchyard-lock" 2>/dev/null || true)
    fi
    [ "$have" = "$want" ] && return 0
    echo "test-sdk: making $venv from $lock"
    rm -rf "$venv"
    if ! "$python" -m venv "$venv"; then
        echo "test-sdk: '$python -m venv' failed; on Debian or Ubuntu: apt-get install python3-venv" >&2
        return 1
    fi
    "$venv/bin/python" -m pip install "${pip_flags[@]}" -r "$lock"
    "$venv/bin/python" -m pip check >/dev/null
    echo "$want" >"$venv/.switchyard-lock"
}

if [ -n "${SDK_LINES:-}" ]; then
    read -r -a lines <<<"$SDK_LINES"
else
    lines=()
    for lock in tests/sdk/requirements-openai*.txt; do
        n=${lock#tests/sdk/requirements-openai}
        lines+=("${n%.txt}")
    done
fi

status=0
summary=()
for n in "${lines[@]}"; do
    lock=tests/sdk/requirements-openai$n.txt venv=.build/sdk-venv-$n
    [ -f "$lock" ] || { echo "test-sdk: no lock file $lock" >&2; exit 2; }
    mkdir -p .build
    sdk_venv "$venv" "$lock"
    sdk=$("$venv/bin/python" -c 'import openai; print(openai.__version__)')
    echo "test-sdk: tests/sdk with openai $sdk ($venv)"
    line_status=0
    "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/sdk "$@" || line_status=$?
    summary+=("openai $sdk: $([ "$line_status" = 0 ] && echo passed || echo "FAILED (pytest exit $line_status)")")
    [ "$status" != 0 ] || status=$line_status
done
printf 'test-sdk: %s\n' "${summary[@]}"
exit "$status"
