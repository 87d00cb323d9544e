#!/usr/bin/env bash
# MJPEG over HTTP against the WebSocket path, on the same relay build, in
# interleaved rounds (each scenario gets a fresh relay):
#   ws-binary-200 / mjpeg-200: one 30 fps × 60 KB stream watched by 200
#     WebSocket binary viewers, or by 200 MJPEG clients of /api/streams/{id}/mjpeg;
#   ingest-ws / ingest-mpjpeg: 4 streams × 30 fps × 60 KB sent over
#     WebSocket binary, or as chunked multipart POSTs to /api/streams/{id}/ingest,
#     one viewer watching all (CPU per delivered frame = per ingested frame).
# Appends each JSON line to Benchmarks/standard-clients.jsonl.
#
# Usage: [ROUNDS=2] [DURATION=15] Benchmarks/run-standard-clients.sh [RELAY_DIR] [LABEL]
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/wait-for-relay.sh
RELAY_DIR=${1:-.build/release}
LABEL=${2:-$(git rev-parse --short HEAD)}
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-15}
PORT=${PORT:-8193}
OUT=Benchmarks/standard-clients.jsonl

run() {
    local name=$1; shift
    "$RELAY_DIR/framepipe" serve --port "$PORT" --insecure --log-level warning --max-connections-per-address 0 \
        --upgrade-rate-per-address 0 --max-viewers 0 2>>/tmp/framepipe-standard-clients.log &
    local server=$!
    wait_for_relay framepipe "$PORT"
    .build/release/framepipe-bench load --url "ws://127.0.0.1:$PORT" --pid "$server" --duration "$DURATION" \
        --label "$LABEL $name" "$@" > /tmp/framepipe-standard-clients.txt
    kill -TERM "$server"; wait "$server" || true
    echo "== $name"
    grep -E "delivered fps|added latency|server CPU" /tmp/framepipe-standard-clients.txt
    tail -1 /tmp/framepipe-standard-clients.txt >> "$OUT"
}

for round in $(seq "$ROUNDS"); do
    echo "# round $round"
    run ws-binary-200 --viewers 200 --format binary --warmup 5
    run mjpeg-200 --viewers 200 --format mjpeg --warmup 5
    run ingest-ws --streams 4 --viewers 1 --format binary --warmup 3
    run ingest-mpjpeg --streams 4 --viewers 1 --format binary --ingest mpjpeg --warmup 3
done
