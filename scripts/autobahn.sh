#!/usr/bin/env bash
# Run the Autobahn|Testsuite fuzzing client against forkloop's WebSocket echo server.
#
# autobahntestsuite needs Python 2.7. This script finds one (AUTOBAHN_PYTHON2, python2.7 on
# PATH, or pyenv's 2.7.x), makes a virtualenv for the suite under AUTOBAHN_VENV (default
# /tmp/forkloop-autobahn) on first use, starts scripts/autobahn_server.py on loopback, runs the
# cases of issue 4 (1-7, 9, 10, 12, 13; AUTOBAHN_CASES overrides, e.g. "1.*,2.*"), and prints
# the summary. Exit status: 0 when every case is OK, NON-STRICT or INFORMATIONAL (or when no
# Python 2.7 exists: then it says SKIP), 1 when a case is not, 2 when the suite cannot be set up.
# Reports: AUTOBAHN_OUT (default /tmp/forkloop-autobahn-reports), index.html for humans.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${AUTOBAHN_VENV:-/tmp/forkloop-autobahn}"
OUT="${AUTOBAHN_OUT:-/tmp/forkloop-autobahn-reports}"
CASES="${AUTOBAHN_CASES:-1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*,12.*,13.*}"
PORT="${AUTOBAHN_PORT:-9001}"
PY3="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY3" ] || PY3="$(command -v python3)"

is_python27() {
    "$1" -c 'import sys; assert sys.version_info[:2] == (2, 7)' >/dev/null 2>&1
}

find_python2() {
    local root="${PYENV_ROOT:-$HOME/.pyenv}" candidate
    for candidate in "${AUTOBAHN_PYTHON2:-}" "$(command -v python2.7 || true)" \
        "$(command -v python2 || true)" "$root"/versions/2.7*/bin/python; do
        if [ -n "$candidate" ] && [ -x "$candidate" ] && is_python27 "$candidate"; then
            echo "$candidate"
            return
        fi
    done
}

PY2="$(find_python2)"
if [ -z "$PY2" ]; then
    echo "SKIP: no Python 2.7 found (set AUTOBAHN_PYTHON2); autobahntestsuite needs it"
    exit 0
fi

if [ ! -x "$VENV/bin/wstest" ]; then
    echo "setting up autobahntestsuite in $VENV (Python 2.7: $PY2) ..."
    boot="$VENV.bootstrap"
    if ! { "$PY2" -m pip install -q --disable-pip-version-check --target "$boot" "virtualenv<20.22" \
        && PYTHONPATH="$boot" "$PY2" -m virtualenv -q "$VENV" \
        && "$VENV/bin/pip" install -q --disable-pip-version-check autobahntestsuite; } >"$VENV.setup.log" 2>&1
    then
        echo "ERROR: could not install autobahntestsuite (log: $VENV.setup.log):"
        tail -n 5 "$VENV.setup.log"
        exit 2
    fi
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PY3" "$ROOT/scripts/autobahn_server.py" \
    --host 127.0.0.1 --port "$PORT" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    if grep -q "autobahn echo server" "$work/server.log" 2>/dev/null; then break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "ERROR: the echo server exited:"; cat "$work/server.log"; exit 2
    fi
    sleep 0.1
done

cases_json="$("$PY3" -c 'import json, sys; print(json.dumps(sys.argv[1].split(",")))' "$CASES")"
cat >"$work/fuzzingclient.json" <<JSON
{
  "outdir": "$OUT",
  "servers": [{"agent": "forkloop", "url": "ws://127.0.0.1:$PORT/"}],
  "cases": $cases_json,
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
JSON

rm -rf "$OUT"
mkdir -p "$OUT"
echo "running Autobahn|Testsuite cases $CASES against ws://127.0.0.1:$PORT/ ..."
(cd "$work" && "$VENV/bin/wstest" -m fuzzingclient -s "$work/fuzzingclient.json") >"$work/wstest.log" 2>&1 || {
    echo "ERROR: wstest failed:"; tail -n 20 "$work/wstest.log"; exit 2
}
"$PY3" "$ROOT/scripts/autobahn_summary.py" "$OUT/index.json" "$@"
