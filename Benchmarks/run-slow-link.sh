#!/usr/bin/env bash
# Delivery to a viewer behind a real slow link: a network namespace joined
# to this host by a veth pair, its host end shaped with `tc ... tbf`. One
# 30 fps stream (JSON ingest, so every frame carries the sender's
# timestamp), a loopback viewer beside the shaped one, and the shaped viewer
# running inside the namespace (`framepipe-bench watch`). Appends each
# result's JSON lines to Benchmarks/slow-link.jsonl.
#
# Scenario device1 is a device reading one message a second straight from
# its socket (Benchmarks/slow_reader.py); reader1 is the watch tool doing
# the same through its client library, which reads ahead into a buffer;
# mjpeg2mbit is an MJPEG client of /api/streams/load-0/mjpeg behind
# 2 Mbit/s (Benchmarks/mjpeg_watch.py, ages by X-Timestamp).
#
# Usage: [CONFIG=FILE] [SCENARIOS="2mbit 500kbit …"] Benchmarks/run-slow-link.sh [RELAY_DIR] [LABEL]
#   RELAY_DIR holds the framepipe binary to measure (default .build/release);
#   the clients always come from .build/release (or $BENCH_DIR).
# Needs root (ip netns, tc). Not part of CI: it takes minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/wait-for-relay.sh
RELAY_DIR=${1:-.build/release}
LABEL=${2:-$(git rev-parse --short HEAD)}
BENCH_DIR=${BENCH_DIR:-.build/release}
DURATION=${DURATION:-20}
PORT=${PORT:-8191}
# The pipelines file the relay runs: an older build needs its own (CONFIG=…/pipelines.json).
CONFIG=${CONFIG:-pipelines.json}
LOG_LEVEL=${LOG_LEVEL:-warning}
OUT=Benchmarks/slow-link.jsonl
NS=fp-slow-$$
HOST_IF=fps$$h
NS_IF=fps$$n
HOST_IP=10.251.0.1
NS_IP=10.251.0.2

cleanup() {
    [[ -n ${SERVER:-} ]] && kill -TERM "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
    ip link del "$HOST_IF" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT

if ! ip netns add "$NS" 2>/dev/null; then
    echo "cannot create a network namespace here (needs root and CAP_NET_ADMIN): no slow link to measure" >&2
    exit 2
fi
ip link add "$HOST_IF" type veth peer name "$NS_IF"
ip link set "$NS_IF" netns "$NS"
ip addr add "$HOST_IP/30" dev "$HOST_IF"
ip link set "$HOST_IF" up
ip netns exec "$NS" ip addr add "$NS_IP/30" dev "$NS_IF"
ip netns exec "$NS" ip link set "$NS_IF" up
ip netns exec "$NS" ip link set lo up

# scenario NAME RATE FRAME_BYTES [watch options...]
scenario() {
    local name=$1 rate=$2 bytes=$3; shift 3
    tc qdisc replace dev "$HOST_IF" root tbf rate "$rate" burst 16kb latency 200ms
    "$RELAY_DIR/framepipe" serve --host "$HOST_IP" --port "$PORT" --insecure --log-level "$LOG_LEVEL" --config "$CONFIG" \
        --max-connections-per-address 0 --upgrade-rate-per-address 0 2>>/tmp/framepipe-slow-link.log &
    SERVER=$!
    wait_for_relay framepipe "$HOST_IP" "$PORT"
    echo "== $name ($rate, ~$((bytes / 1000)) KB frames) on $LABEL"
    if [[ ${1:-} == --mjpeg ]]; then
        # An MJPEG client of the stream, reading as fast as its link allows.
        ip netns exec "$NS" python3 Benchmarks/mjpeg_watch.py "http://$HOST_IP:$PORT" load-0 "$DURATION" \
            "$LABEL $name shaped" "${WARMUP:-3}" > /tmp/framepipe-slow-watch.txt &
    elif [[ ${1:-} == --device-reads ]]; then
        # A device that reads one message at a time from its socket, buffering nothing itself.
        ip netns exec "$NS" env SLOW_READER_TRACE=${SLOW_READER_TRACE:-} python3 Benchmarks/slow_reader.py "ws://$HOST_IP:$PORT" "$DURATION" "$2" \
            "$LABEL $name shaped" "${WARMUP:-3}" > /tmp/framepipe-slow-watch.txt &
    else
        ip netns exec "$NS" "$BENCH_DIR/framepipe-bench" watch --url "ws://$HOST_IP:$PORT" --duration "$DURATION" \
            --label "$LABEL $name shaped" "$@" > /tmp/framepipe-slow-watch.txt &
    fi
    local watcher=$!
    sleep 0.5
    "$BENCH_DIR/framepipe-bench" load --url "ws://$HOST_IP:$PORT" --ingest json --frame-bytes "$bytes" --fps 30 \
        --viewers 1 --format binary --warmup 3 --duration $((DURATION - 4)) --label "$LABEL $name loopback" \
        > /tmp/framepipe-slow-load.txt
    wait "$watcher" || true
    grep -E "^viewer" /tmp/framepipe-slow-watch.txt
    grep -E "delivered fps|added latency" /tmp/framepipe-slow-load.txt | sed 's/^/  loopback viewer: /'
    tail -1 /tmp/framepipe-slow-watch.txt >> "$OUT"
    tail -1 /tmp/framepipe-slow-load.txt >> "$OUT"
    kill -TERM "$SERVER"; wait "$SERVER" || true
    SERVER=
}

want() { [[ ${#SELECTED[@]} -eq 0 ]] || [[ " ${SELECTED[*]} " == *" $1 "* ]]; }
SELECTED=(${SCENARIOS:-})

want 2mbit && scenario 2mbit-27k 2mbit 27000
want 500kbit && scenario 500kbit-27k 500kbit 27000
want 20mbit && scenario 20mbit-150k 20mbit 150000
want reader && scenario reader-2-per-s 100mbit 27000 --read-rate 2
want reader1 && scenario reader-1-per-s 100mbit 27000 --read-rate 1
want device1 && scenario device-1-per-s 100mbit 27000 --device-reads 1
want mjpeg2mbit && scenario mjpeg-2mbit-27k 2mbit 27000 --mjpeg
want credits && scenario reader-2-per-s-credits 100mbit 27000 --read-rate 2 --ack --query flow=credit
want credits1 && scenario reader-2-per-s-1-credit 100mbit 27000 --read-rate 2 --ack --query "flow=credit&credits=1"
exit 0
