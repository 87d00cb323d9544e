#!/usr/bin/env bash
# What `GET /api/viewers` costs with many idle viewers: the relay with
# VIEWERS binary viewers watching nothing (framepipe-bench load --streams 0),
# then CALLS calls timed by curl one after another; prints p50, p90 and max.
# With BEFORE (a directory holding an earlier build's framepipe) the two
# builds take turns, ROUNDS times.
# Usage: Benchmarks/run-api-viewers.sh   Env: VIEWERS (1000), CALLS (60), ROUNDS (2), BEFORE, BUILD (.build/release).
# Not part of CI: it wants the machine to itself.
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/release-build.sh
source Benchmarks/wait-for-relay.sh
PORT=${PORT:-8198}
VIEWERS=${VIEWERS:-1000}
CALLS=${CALLS:-60}
ROUNDS=${ROUNDS:-2}
url="http://127.0.0.1:$PORT/api/viewers"

for round in $(seq "$ROUNDS"); do
    for server in ${BEFORE:+before} after; do
        binary=$([[ $server == before ]] && echo "$BEFORE/framepipe" || echo "$BUILD/framepipe")
        "$binary" serve --port "$PORT" --log-level warning --max-connections-per-address 0 \
            --upgrade-rate-per-address 0 --max-viewers 0 2>>/tmp/framepipe-api-viewers-serve.log &
        SERVER=$!
        wait_for_relay "$server" "$PORT"
        "$BUILD/framepipe-bench" load --url "ws://127.0.0.1:$PORT" --pid "$SERVER" --duration 60 --viewers "$VIEWERS" \
            --streams 0 --format binary >/dev/null &
        LOAD=$!
        # Timed once every viewer is listed.
        for _ in $(seq 300); do
            [[ $(curl -s "$url" | grep -o '"id"' | wc -l) -ge $VIEWERS ]] && break
            sleep 0.1
        done
        echo -n "$server (round $round), $VIEWERS viewers: "
        for _ in $(seq "$CALLS"); do curl -s -o /dev/null -w "%{time_total}\n" "$url"; done | sort -n |
            awk '{t[NR] = $1 * 1000} END {printf "p50 %.2f ms  p90 %.2f ms  max %.2f ms\n", t[int((NR + 1) / 2)], t[int(NR * 0.9)], t[NR]}'
        kill "$LOAD" "$SERVER" 2>/dev/null || true
        wait "$LOAD" "$SERVER" 2>/dev/null || true
    done
done
