#!/usr/bin/env bash
# The web console's browser suite (tests/console, pytest + Selenium) in headless Chromium — Debian's
# `chromium` and `chromium-driver`, nothing downloaded — against the real gateway binary, in a virtual
# environment of its own, .build/console-venv, never in the system's Python. The venv is (re)made only
# when it is missing, its Python is gone, or its lock file (tests/console/requirements.txt) or the
# Python it is made from changed (their hash and path are kept in the venv, .switchyard-lock); pip's
# cache makes a reinstall quick. Screenshots of every page (desktop 1280×800, phone 390×844) land in
# .build/console-screenshots/ and are copied to docs/console/.
#
#   scripts/test-console.sh [pytest args…]     e.g. -k playground, -x
#   CONSOLE_TESTS_OPTIONAL=1                   without chromium: skip (exit 0) instead of failing
#   CONSOLE_DEV_SERVER=1                       test console/ as it is in the work tree, through
#                                              tests/console/dev_server.py, even when the binary serves
#                                              an (older) embedded console
#   PYTHON=python3.11                          the Python the venv is made from (default: python3)
#
# It tests the built binaries, .build/debug/switchyard and .build/debug/switchyard-fake-upstream
# (`swift build`), or those named by SWITCHYARD_BIN and SWITCHYARD_FAKE_UPSTREAM_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
pip_flags=(--quiet --disable-pip-version-check --require-virtualenv)
venv=.build/console-venv lock=tests/console/requirements.txt
chromium=${CHROMIUM_BIN:-/usr/bin/chromium} chromedriver=${CHROMEDRIVER_BIN:-/usr/bin/chromedriver}

if [ ! -x "$chromium" ] || [ ! -x "$chromedriver" ]; then
    if [ "${CONSOLE_TESTS_OPTIONAL:-}" = 1 ]; then
        echo "test-console: SKIPPED: $chromium or $chromedriver is missing (apt-get install chromium chromium-driver);" \
            "CONSOLE_TESTS_OPTIONAL=1 lets the run pass without the browser suite"
        exit 0
    fi
    echo "test-console: $chromium or $chromedriver is missing: apt-get install chromium chromium-driver" \
        "(or set CONSOLE_TESTS_OPTIONAL=1 to skip the browser suite)" >&2
    exit 1
fi

# Makes (or keeps) the venv with exactly the packages of the lock file.
want="$(sha256sum "$lock" | cut -d' ' -f1) $("$python" -c 'import os, sys; print(os.path.realpath(sys.executable), sys.version.split()[0])')"
have=""
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c '' 2>/dev/null; then
    have=$(cat "$venv/.switchyard-lock" 2>/dev/null || true)
fi
if [ "$have" != "$want" ]; then
    echo "test-console: making $venv from $lock"
    mkdir -p .build
    rm -rf "$venv"
    if ! "$python" -m venv "$venv"; then
        echo "test-console: '$python -m venv' failed; on Debian or Ubuntu: apt-get install python3-venv" >&2
        exit 1
    fi
    "$venv/bin/python" -m pip install "${pip_flags[@]}" -r "$lock"
    "$venv/bin/python" -m pip check >/dev/null
    echo "$want" >"$venv/.switchyard-lock"
fi

selenium=$("$venv/bin/python" -c 'import selenium; print(selenium.__version__)')
echo "test-console: tests/console with selenium $selenium, $("$chromium" --version 2>/dev/null | head -1) ($venv)"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/console "$@"
