#!/usr/bin/env bash
# Runs each hostile client against a release-built relay on its default
# limits while framepipe-bench measures one ordinary stream and five
# viewers beside it; prints and appends the figures to Benchmarks/hostile.jsonl.
# Usage: Benchmarks/run-hostile.sh [SECONDS]   (not part of CI)
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/wait-for-relay.sh
swift build -c release --product framepipe >/dev/null && swift build -c release --product framepipe-bench >/dev/null
PORT=${PORT:-8195}
SECONDS_PER_ATTACK=${1:-15}
OUT=Benchmarks/hostile.jsonl
.build/release/framepipe serve --port "$PORT" --log-level warning 2>/tmp/framepipe-hostile-serve.log &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null || true' EXIT
wait_for_relay framepipe "$PORT"

for attack in none slowloris endless-message tiny-messages connection-flood; do
    echo "== $attack"
    .build/release/framepipe-bench load --url "ws://127.0.0.1:$PORT" --pid "$SERVER" --viewers 5 --format binary \
        --warmup 2 --duration "$SECONDS_PER_ATTACK" --label "beside-$attack" > /tmp/framepipe-hostile-bench.txt &
    BENCH=$!
    sleep 2
    if [[ $attack != none ]]; then
        python3 Benchmarks/hostile_clients.py "$attack" "$PORT" "$((SECONDS_PER_ATTACK - 1))" | tee -a "$OUT"
    fi
    wait "$BENCH"
    grep -E "delivered fps|added latency|server CPU" /tmp/framepipe-hostile-bench.txt
    tail -1 /tmp/framepipe-hostile-bench.txt >> "$OUT"
    kill -0 "$SERVER"  # still up
done
echo "relay still up; limit hits:"
curl -s "http://127.0.0.1:$PORT/metrics" | grep framepipe_limit_hits_total
