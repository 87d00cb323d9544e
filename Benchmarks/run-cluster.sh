#!/usr/bin/env bash
# Cross-node delivery versus same-node, on a cluster of two release-built
# nodes sharing a throwaway redis-server, appending each result's JSON line
# to Benchmarks/cluster.jsonl. Streamers always connect to node A; viewers
# connect to A (same-node) or to B (cross-node, through Redis).
# Usage: Benchmarks/run-cluster.sh [fanout|multi|throughput ...]   (default: all)
# Not part of CI: it wants the machine to itself.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product framepipe >/dev/null && swift build -c release --product framepipe-bench >/dev/null
REDIS_PORT=${REDIS_PORT:-6479}
A=8191 B=8192
OUT=Benchmarks/cluster.jsonl
DURATION=${DURATION:-15}
UNLIMITED="--max-connections-per-address 0 --upgrade-rate-per-address 0 --max-viewers 0 --max-stream-fps 0"

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --loglevel warning &
REDIS=$!
trap 'kill $REDIS 2>/dev/null || true' EXIT
sleep 0.5

# node PORT ID: starts a node, leaves its pid in $NODE
node() {
    .build/release/framepipe serve --port "$1" --redis "redis://127.0.0.1:$REDIS_PORT" --node-id "$2" \
        --log-level warning $UNLIMITED 2>>/tmp/framepipe-cluster-bench.log &
    NODE=$!
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$1/healthz" | grep -q '"state": "connected"' && return
        sleep 0.1
    done
    echo "node $2 did not join" >&2; exit 1
}

# load same|cross LABEL ARGS...: one scenario on two fresh nodes
load() {
    local where=$1 label=$2; shift 2
    node $A node-a; local pa=$NODE
    node $B node-b; local pb=$NODE
    local viewers=()
    [[ $where == cross ]] && viewers=(--viewer-url "ws://127.0.0.1:$B" --viewer-pid "$pb")
    echo "== $label"
    .build/release/framepipe-bench load --url "ws://127.0.0.1:$A" --pid "$pa" --duration "$DURATION" --label "$label" "${viewers[@]}" "$@" \
        | tee /tmp/framepipe-bench-last.txt
    tail -1 /tmp/framepipe-bench-last.txt >> "$OUT"
    kill -TERM "$pa" "$pb"; wait "$pa" "$pb" || true
}

want() { [[ ${#SELECTED[@]} -eq 0 ]] || [[ " ${SELECTED[*]} " == *" $1 "* ]]; }
SELECTED=("$@")

for where in same cross; do
    for v in 1 50 200; do
        want fanout && load $where "cluster-$where-node-$v" --viewers "$v" --format binary
    done
    want multi && load $where "cluster-$where-node-multi-16x15x40-100x4" --streams 16 --fps 15 --frame-bytes 40000 --viewers 100 --streams-per-viewer 4 --format binary
    # Frames through Redis as fast as 8 cameras at 60 fps send them (29 MB/s).
    want throughput && load $where "cluster-$where-node-throughput-8x60x60-10" --streams 8 --fps 60 --viewers 10 --format binary
done
