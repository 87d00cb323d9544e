#!/usr/bin/env bash
# A dashboard's control path while the relay fans out: a viewer that watches
# nothing pings every PROBE_MS and times each pong, and GET /api/viewers is
# timed every 5 pings, GET /healthz (the request's path alone) half-way between
# (framepipe-bench load --probe-ms, in a process of its own), during a fan-out of
# 1 stream x FPS x FRAME_BYTES to VIEWERS binary viewers, all on loopback.
# With BEFORE (a directory holding an earlier build's framepipe) the two
# builds take turns, ROUNDS times, for a before/after table from one run.
# Appends the JSON lines to Benchmarks/control-latency.jsonl and prints a table.
# Usage: Benchmarks/run-control-latency.sh   Env: VIEWERS (1000), FPS (30), FRAME_BYTES (16000),
#   DURATION (15), ROUNDS (2), PROBE_MS (100: under the relay's 20 messages a second per viewer), BEFORE, BUILD (.build/release),
#   AFTER_PREFIX (runs the "after" relay under a command, e.g. "env NIO_SINGLETON_GROUP_LOOP_COUNT=1";
#   with BEFORE set to the same build, a before/after table of one setting against another).
# Not part of CI: it wants the machine to itself.
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/release-build.sh
source Benchmarks/wait-for-relay.sh
PORT=${PORT:-8192}
VIEWERS=${VIEWERS:-1000}
FRAME_BYTES=${FRAME_BYTES:-16000}
FPS=${FPS:-30}
DURATION=${DURATION:-15}
ROUNDS=${ROUNDS:-2}
PROBE_MS=${PROBE_MS:-100}
OUT=Benchmarks/control-latency.jsonl
RUN=$(date -u +%Y-%m-%dT%H:%MZ)
LINES=$(mktemp)
PYTHON=${PYTHON:-python3}

for round in $(seq "$ROUNDS"); do
    for server in ${BEFORE:+before} after; do
        binary=$([[ $server == before ]] && echo "$BEFORE/framepipe" || echo "$BUILD/framepipe")
        prefix=()
        [[ $server == after ]] && read -r -a prefix <<< "${AFTER_PREFIX:-}"
        "${prefix[@]}" "$binary" serve --port "$PORT" --log-level warning --max-connections-per-address 0 \
            --upgrade-rate-per-address 0 --max-viewers 0 2>>/tmp/framepipe-control-serve.log &
        SERVER=$!
        wait_for_relay "$server" "$PORT"
        label="control-$server-$VIEWERS-$FPS"
        echo "== $label (round $round)"
        # The probe is a process of its own, measuring inside the load's window (its viewers
        # connect in about 2 ms each, then WARMUP); in the loading process its pongs would
        # wait behind the load tool's own reading of a thousand viewers' frames.
        "$BUILD/framepipe-bench" load --url "ws://127.0.0.1:$PORT" --pid "$SERVER" --duration "$DURATION" --label "$label" \
            --viewers "$VIEWERS" --format binary --fps "$FPS" --frame-bytes "$FRAME_BYTES" > /tmp/framepipe-control-load.txt &
        LOAD=$!
        "$BUILD/framepipe-bench" load --url "ws://127.0.0.1:$PORT" --viewers 0 --streams 0 --probe-ms "$PROBE_MS" \
            --warmup "$(( 3 + 1 + VIEWERS * 2 / 1000 ))" --duration "$(( DURATION - 2 ))" > /tmp/framepipe-control-probe.txt
        wait "$LOAD"
        grep -v '^{' /tmp/framepipe-control-load.txt; grep -E 'pong|api/viewers|healthz' /tmp/framepipe-control-probe.txt
        "$PYTHON" - /tmp/framepipe-control-load.txt /tmp/framepipe-control-probe.txt "$RUN" <<'PY' | tee -a "$OUT" >> "$LINES"
import json, sys
load, probe = (json.loads(open(f).read().strip().splitlines()[-1]) for f in sys.argv[1:3])
load.update({k: v for k, v in probe.items() if k.startswith(("pong", "ping", "api_"))})
print(json.dumps({"run": sys.argv[3], **load}))
PY
        kill -TERM "$SERVER"; wait "$SERVER" 2>/dev/null || true
    done
done
"$PYTHON" - "$LINES" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault(r["label"].split("-")[1], []).append(r)
print("| build | viewers | pong p50 / p99 / max ms (lost) | /api/viewers p50 / p99 / max ms | /healthz p50 / p99 / max ms | frame latency p99 ms | fps median / min | server CPU % |")
print("|---|---|---|---|---|---|---|---|")
for server, rs in by.items():
    med = lambda k: statistics.median(r[k] for r in rs if r.get(k) is not None) if any(r.get(k) is not None for r in rs) else float("nan")
    print(f"| {server} | {rs[0]['viewers']} | {med('pong_p50_ms'):.1f} / {med('pong_p99_ms'):.1f} / {med('pong_max_ms'):.1f} ({sum(r['pings_lost'] for r in rs)}) "
          f"| {med('api_viewers_p50_ms'):.1f} / {med('api_viewers_p99_ms'):.1f} / {med('api_viewers_max_ms'):.1f} "
          f"| {med('api_healthz_p50_ms'):.1f} / {med('api_healthz_p99_ms'):.1f} / {med('api_healthz_max_ms'):.1f} "
          f"| {med('latency_p99_ms'):.1f} | {med('fps_median'):.1f} / {med('fps_min'):.1f} | {med('server_cpu_pct'):.0f} |")
print(f"(median over {len(next(iter(by.values())))} run(s) per build)")
PY
