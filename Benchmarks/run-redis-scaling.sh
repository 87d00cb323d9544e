#!/usr/bin/env bash
# Where one Redis runs out, and what a 3-shard Redis Cluster changes: two
# release-built relays, S streams at 30 fps x 60 KB on node A, watched by
# viewers on node B, so every frame crosses through Redis once. For S in
# $STREAMS, through one redis-server and through a Redis Cluster of three
# primaries (sharded pub/sub), it reads the fps and age the viewers see
# (framepipe-bench load) and the CPU each Redis process and each relay
# used (from /proc), and appends one JSON line per run to
# Benchmarks/redis-scaling.jsonl.
# Usage: Benchmarks/run-redis-scaling.sh   (STREAMS="4 8 16 24" DURATION=10 BUILD=.build/release)
# Not part of CI: it wants the machine to itself.
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/release-build.sh
STREAMS=${STREAMS:-"4 8 16 24"}
DURATION=${DURATION:-10}
WARMUP=3
OUT=Benchmarks/redis-scaling.jsonl
A=8191 B=8192
UNLIMITED="--max-connections-per-address 0 --upgrade-rate-per-address 0 --max-viewers 0 --max-stream-fps 0"
TICK=$(getconf CLK_TCK)
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# CPU seconds a process has used so far (user + system).
cpu() { awk -v t="$TICK" '{printf "%.3f", ($14 + $15) / t}' "/proc/$1/stat"; }
# Read and write system calls a process has made so far (how many frames each one carries),
# and the bytes they moved (a frame copied in once and out once per subscriber: about 120 KB).
syscalls() { awk '/^sysc[rw]:/ {n += $2} END {print n}' "/proc/$1/io"; }
iobytes() { awk '/^[rw]char:/ {n += $2} END {printf "%d", n}' "/proc/$1/io"; }

# Messages published on each of $PORTS so far (PUBLISH on one Redis, SPUBLISH on a
# shard): which shard carries how many streams' frames, as Redis counts them.
published() {
    for port in $PORTS; do
        redis-cli -p "$port" info commandstats | awk -F'[=,:]' '/^cmdstat_s?publish:/ {n += $3} END {printf "%d ", n}'
    done
}

# redis PORT [ARGS...]: starts a redis-server, leaves its pid in $REDIS
redis() {
    local port=$1; shift
    mkdir -p "$WORK/$port"
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --loglevel warning --dir "$WORK/$port" "$@" &
    REDIS=$!
    PIDS+=("$REDIS")
    for _ in $(seq 100); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && return; sleep 0.05; done
    echo "redis on $port did not start" >&2; exit 1
}

# node PORT ID URL: starts a relay, leaves its pid in $NODE
node() {
    "$BUILD/framepipe" serve --port "$1" --redis "$3" --node-id "$2" --log-level warning $UNLIMITED 2>>"$WORK/nodes.log" &
    NODE=$!
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$1/healthz" | grep -q '"state": "connected"' && return
        sleep 0.1
    done
    echo "node $2 did not join: $(tail -5 "$WORK/nodes.log")" >&2; exit 1
}

# run MODE URL S REDIS_PIDS...: one measurement on two fresh relays
run() {
    local mode=$1 url=$2 streams=$3; shift 3
    local redis_pids=("$@")
    node $A node-a "$url"; local pa=$NODE
    node $B node-b "$url"; local pb=$NODE
    local before=() after=() calls0=0 calls1=0 bytes0=0 bytes1=0
    for pid in "${redis_pids[@]}"; do
        before+=("$(cpu "$pid")"); calls0=$((calls0 + $(syscalls "$pid"))); bytes0=$((bytes0 + $(iobytes "$pid")))
    done
    local a0 b0 t0 t1 p0 p1
    p0=$(published)
    a0=$(cpu "$pa"); b0=$(cpu "$pb"); t0=$(date +%s.%N)
    "$BUILD/framepipe-bench" load --url "ws://127.0.0.1:$A" --pid "$pa" --viewer-url "ws://127.0.0.1:$B" --viewer-pid "$pb" \
        --streams "$streams" --fps 30 --frame-bytes 60000 --viewers 2 --format binary \
        --warmup "$WARMUP" --duration "$DURATION" --label "redis-scaling-$mode-$streams" > "$WORK/load.txt"
    t1=$(date +%s.%N)
    for pid in "${redis_pids[@]}"; do
        after+=("$(cpu "$pid")"); calls1=$((calls1 + $(syscalls "$pid"))); bytes1=$((bytes1 + $(iobytes "$pid")))
    done
    local a1 b1
    a1=$(cpu "$pa"); b1=$(cpu "$pb"); p1=$(published)
    kill -TERM "$pa" "$pb"; wait "$pa" "$pb" 2>/dev/null || true
    python3 - "$mode" "$streams" "$t0" "$t1" "$a0" "$a1" "$b0" "$b1" "${before[*]}" "${after[*]}" "$(tail -1 "$WORK/load.txt")" "$((calls1 - calls0))" "$((bytes1 - bytes0))" "$p0" "$p1" <<'EOF' | tee -a "$OUT"
import json, sys
mode, streams, t0, t1, a0, a1, b0, b1, before, after, load, calls, moved, p0, p1 = sys.argv[1:]
elapsed = float(t1) - float(t0)
load = json.loads(load)
crossing = int(streams) * load["fps_median"] * load["ratio_median"]  # frames/s through Redis
shards = [round((float(y) - float(x)) / elapsed * 100, 1) for x, y in zip(before.split(), after.split())]
frames = crossing * elapsed
print(json.dumps({
    "mode": mode, "streams": int(streams), "fps_median": load["fps_median"], "fps_min": load["fps_min"],
    "ratio_min": load["ratio_min"], "age_p50_ms": load["latency_p50_ms"], "age_p99_ms": load["latency_p99_ms"],
    "crossing_fps": round(crossing, 1), "redis_cpu_pct": shards, "redis_cpu_pct_total": round(sum(shards), 1),
    "redis_us_per_crossing_frame": round(sum(shards) / 100 * elapsed / frames * 1e6, 1),
    "redis_syscalls_per_crossing_frame": round(int(calls) / frames, 2),
    "redis_kb_moved_per_crossing_frame": round(int(moved) / frames / 1000, 1),
    "relay_a_cpu_pct": round((float(a1) - float(a0)) / elapsed * 100, 1),
    "relay_b_cpu_pct": round((float(b1) - float(b0)) / elapsed * 100, 1),
    "relays_us_per_crossing_frame": round((float(a1) - float(a0) + float(b1) - float(b0)) / frames * 1e6, 1),
    # Frames each Redis (each shard) carried a second, in streams' worth (30 fps each).
    "streams_per_shard": [round((int(y) - int(x)) / elapsed / 30, 1) for x, y in zip(p0.split(), p1.split())],
}))
EOF
}

# One Redis.
PORTS=6479
redis 6479; ONE=$REDIS
for s in $STREAMS; do run one "redis://127.0.0.1:6479" "$s" "$ONE"; done
kill "$ONE"

# A Redis Cluster of three primaries (no replicas: a replica would take a
# copy of every SPUBLISH, which is the replication's cost, not the scaling's).
SHARDS=()
for port in 6481 6482 6483; do
    redis "$port" --cluster-enabled yes --cluster-config-file nodes.conf; SHARDS+=("$REDIS")
done
redis-cli --cluster create 127.0.0.1:6481 127.0.0.1:6482 127.0.0.1:6483 --cluster-replicas 0 --cluster-yes >/dev/null
for _ in $(seq 200); do
    ok=0
    for port in 6481 6482 6483; do redis-cli -p "$port" cluster info | grep -q cluster_state:ok && ok=$((ok + 1)); done
    [[ $ok == 3 ]] && break
    sleep 0.1
done
PORTS="6481 6482 6483"
for s in $STREAMS; do
    # Each stream publishes on the least used shard among its channels'
    # (FramePlacement): streams_per_shard in the JSON line is what each
    # shard carried, counted by Redis.
    run cluster "redis+cluster://127.0.0.1:6481,127.0.0.1:6482,127.0.0.1:6483" "$s" "${SHARDS[@]}"
done
