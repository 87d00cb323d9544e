#!/usr/bin/env bash
# Runs the BENCHMARKS.md load scenarios against a fresh release-built relay
# per scenario, appending each result's JSON line to Benchmarks/results.jsonl.
# Usage: Benchmarks/run-load.sh [SCENARIO...]   (default: all)
# Not part of CI: it takes minutes and wants the machine to itself.
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/wait-for-relay.sh
swift build -c release --product framepipe >/dev/null && swift build -c release --product framepipe-bench >/dev/null
PORT=${PORT:-8190}
OUT=Benchmarks/results.jsonl
DURATION=${DURATION:-15}
# The load tool opens every connection from one address, faster than the
# per-address defaults allow a real client to.
UNLIMITED="--max-connections-per-address 0 --upgrade-rate-per-address 0 --max-viewers 0"

# serve PIPELINE: starts the relay, leaves its pid in $SERVER
serve() {
    .build/release/framepipe serve --port "$PORT" --pipeline "$1" --log-level warning $UNLIMITED 2>>/tmp/framepipe-bench-serve.log &
    SERVER=$!
    wait_for_relay framepipe "$PORT"
}

# load LABEL PIPELINE ARGS...: one scenario on a fresh server
load() {
    local label=$1 pipeline=$2; shift 2
    serve "$pipeline"
    echo "== $label"
    .build/release/framepipe-bench load --url "ws://127.0.0.1:$PORT" --pid "$SERVER" --duration "$DURATION" --label "$label" "$@" | tee /tmp/framepipe-bench-last.txt
    tail -1 /tmp/framepipe-bench-last.txt >> "$OUT"
    kill -TERM "$SERVER"; wait "$SERVER" || true
}

# baseline VIEWERS: the plain Python broadcast loop, for comparison
baseline() {
    local python=${PYTHON:-.build/browser-venv/bin/python}
    "$python" -c "import websockets" 2>/dev/null || "$python" -m pip install --quiet websockets==17.4
    "$python" Benchmarks/plain_broadcast.py "$PORT" &
    SERVER=$!
    sleep 1
    echo "== python-broadcast-$1"
    .build/release/framepipe-bench load --url "ws://127.0.0.1:$PORT" --pid "$SERVER" --duration "$DURATION" --label "python-broadcast-$1" --viewers "$1" --format binary | tee /tmp/framepipe-bench-last.txt
    tail -1 /tmp/framepipe-bench-last.txt >> "$OUT"
    kill "$SERVER"; wait "$SERVER" || true
}

want() { [[ ${#SELECTED[@]} -eq 0 ]] || [[ " ${SELECTED[*]} " == *" $1 "* ]]; }
SELECTED=("$@")

for v in 1 50 200 500 1000; do
    want "fanout" && load "fanout-json-$v" standard --viewers "$v"
done
for v in 1 50 200 500 1000; do
    want "fanout-binary" && load "fanout-binary-$v" standard --viewers "$v" --format binary
done
for v in 50 200 500; do
    want "isolation" && load "isolation-json-$v" standard --viewers "$v" --stuck 10 --slow 10
done
want "multi" && load "multi-16x15x40-100x4" standard --streams 16 --fps 15 --frame-bytes 40000 --viewers 100 --streams-per-viewer 4 --format binary
for p in passthrough standard strict; do
    want "pipelines" && load "pipeline-$p-200" "$p" --viewers 200 --ingest json
done
for v in 50 200 500; do
    want "baseline" && baseline "$v"
done
exit 0
