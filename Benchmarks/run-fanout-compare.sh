#!/usr/bin/env bash
# Fan-out cost side by side, in one run: framepipe, the plain Python
# `websockets.broadcast` loop (plain_broadcast.py) and the floor
# (floor_broadcast.c: the same bytes send()ed to the same sockets, no
# WebSocket library, no relay logic), each on a fresh process, for JSON
# viewers (JSON data-URL streamer, as the original dashboard) and binary
# viewers, 1 stream x 30 fps x 64 KB, limits off, all on loopback.
# Appends the JSON lines to Benchmarks/fanout-compare.jsonl and prints a table.
# Usage: Benchmarks/run-fanout-compare.sh [VIEWERS...]   (default: 200 400)
# Env: BUILD (release build directory, default .build/release), DURATION (15),
#      ROUNDS (1: each server once per cell; more interleave the servers again),
#      SERVERS ("framepipe python floor"; a subset to re-measure one),
#      BEFORE (a directory with an earlier build's framepipe: adds it to the
#      run as server "before", for a before/after table from one run),
#      AFTER_PREFIX (runs server "framepipe" under a command, e.g.
#      "env NIO_SINGLETON_GROUP_LOOP_COUNT=1"; with BEFORE set to the same
#      build, a table of one setting against another).
# Not part of CI: it takes about 6 minutes per round and wants the machine to itself.
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/release-build.sh
source Benchmarks/wait-for-relay.sh
PORT=${PORT:-8191}
DURATION=${DURATION:-15}
ROUNDS=${ROUNDS:-1}
read -r -a prefix <<< "${AFTER_PREFIX:-}"
OUT=Benchmarks/fanout-compare.jsonl
PYTHON=${PYTHON:-.build/browser-venv/bin/python}
"$PYTHON" -c "import websockets" 2>/dev/null || "$PYTHON" -m pip install --quiet websockets==17.4
FLOOR=$(mktemp -d)/floor_broadcast
cc -O2 -o "$FLOOR" Benchmarks/floor_broadcast.c -lcrypto
VIEWERS=("$@")
[[ ${#VIEWERS[@]} -gt 0 ]] || VIEWERS=(200 400)
RUN=$(date -u +%Y-%m-%dT%H:%MZ)
LINES=$(mktemp)

start() {
    case $1 in
        framepipe) "${prefix[@]}" "$BUILD/framepipe" serve --port "$PORT" --log-level warning \
                       --max-connections-per-address 0 --upgrade-rate-per-address 0 --max-viewers 0 2>>/tmp/framepipe-compare-serve.log & ;;
        python) "$PYTHON" Benchmarks/plain_broadcast.py "$PORT" & ;;
        floor) "$FLOOR" "$PORT" & ;;
        before) "$BEFORE/framepipe" serve --port "$PORT" --log-level warning \
                    --max-connections-per-address 0 --upgrade-rate-per-address 0 --max-viewers 0 2>>/tmp/framepipe-compare-serve.log & ;;
    esac
    SERVER=$!
    wait_for_relay "$1" "$PORT"
}

for round in $(seq "$ROUNDS"); do
    for format in json binary; do
        ingest=$([[ $format == json ]] && echo json || echo binary)
        for v in "${VIEWERS[@]}"; do
            for server in ${SERVERS:-${BEFORE:+before} framepipe python floor}; do
                start "$server"
                label="compare-$server-$format-$v"
                echo "== $label (round $round)"
                "$BUILD/framepipe-bench" load --url "ws://127.0.0.1:$PORT" --pid "$SERVER" --duration "$DURATION" \
                    --label "$label" --viewers "$v" --format "$format" --ingest "$ingest" --frame-bytes 64000 \
                    | tee /tmp/framepipe-compare-last.txt
                tail -1 /tmp/framepipe-compare-last.txt | sed "s/^{/{\"run\":\"$RUN\",/" | tee -a "$OUT" >> "$LINES"
                kill -TERM "$SERVER"; wait "$SERVER" 2>/dev/null || true
                sleep 1
            done
        done
    done
done
"$PYTHON" - "$LINES" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cells = {}
for r in rows:
    server = r["label"].split("-")[1]
    cells.setdefault((r["format"], r["viewers"]), {}).setdefault(server, []).append(r)
before = any(s == "before" for by in cells.values() for s in by)
print("| viewers | format | " + ("before µs/frame | " if before else "") + "framepipe µs/frame | Python µs/frame | floor µs/frame "
      "| framepipe ÷ Python | floor ÷ Python | p99 ms framepipe / Python / floor | fps min framepipe / Python / floor "
      "| KB/viewer framepipe / Python / floor |")
print("|---|---|" + ("---|" if before else "") + "---|---|---|---|---|---|---|---|")
for (fmt, v), by in sorted(cells.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    med = lambda s, k: statistics.median(x[k] for x in by[s]) if s in by and all(x[k] is not None for x in by[s]) else float("nan")
    fp, py, fl = (med(s, "server_cpu_us_per_frame") for s in ("framepipe", "python", "floor"))
    ratio = lambda a, b: f"{a / b:.2f}×" if a == a and b == b else "–"
    p99 = " / ".join(f"{med(s, 'latency_p99_ms'):.1f}" for s in ("framepipe", "python", "floor"))
    fps = " / ".join(f"{med(s, 'fps_min'):.1f}" for s in ("framepipe", "python", "floor"))
    kb = " / ".join(f"{med(s, 'kb_per_viewer'):.1f}" for s in ("framepipe", "python", "floor"))
    earlier = f"{med('before', 'server_cpu_us_per_frame'):.2f} ({ratio(med('before', 'server_cpu_us_per_frame'), py)}) | " if before else ""
    print(f"| {v} | {fmt} | {earlier}{fp:.2f} | {py:.2f} | {fl:.2f} | {ratio(fp, py)} | {ratio(fl, py)} | {p99} | {fps} | {kb} |")
PY
