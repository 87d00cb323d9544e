#!/usr/bin/env bash
# A scripted streamer (Examples/uplink-client) behind a real shaped uplink:
# the client runs in a network namespace whose own end of a veth pair is
# shaped with tc tbf (its uplink), the relay listens on the host's end, and
# a viewer (framepipe-bench watch) on this host reports each frame's age from
# its capture timestamp (one clock here). Three runs: no flow control (as
# streamers sent before acks), one credit with fixed ~80 KB frames, and one
# credit with the pacer choosing size and rate. Needs root, the debug build
# and the browser venv (bash scripts/test.sh sets both up).
#   bash Benchmarks/run-slow-uplink-client.sh [RATE]     default: 2mbit
set -euo pipefail
cd "$(dirname "$0")/.."
rate="${1:-2mbit}"
seconds="${SECONDS_MEASURED:-20}"
tag=$(printf '%x' $RANDOM$RANDOM)
ns="fp-ub-$tag" host_if="fpb${tag:0:8}h" ns_if="fpb${tag:0:8}n"
subnet=$((RANDOM % 250 + 1))
host_addr="10.251.$subnet.1" ns_addr="10.251.$subnet.2"
relay_pid=""
cleanup() {
  [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null || true
  ip link del "$host_if" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$ns"
ip link add "$host_if" type veth peer name "$ns_if"
ip link set "$ns_if" netns "$ns"
ip addr add "$host_addr/30" dev "$host_if"; ip link set "$host_if" up
ip netns exec "$ns" ip addr add "$ns_addr/30" dev "$ns_if"
ip netns exec "$ns" ip link set "$ns_if" up
ip netns exec "$ns" ip link set lo up
ip netns exec "$ns" tc qdisc add dev "$ns_if" root tbf rate "$rate" burst 16kb latency 200ms

log=$(mktemp)
.build/debug/framepipe serve --host "$host_addr" --insecure --port 0 >"$log" 2>&1 &
relay_pid=$!
for _ in $(seq 100); do grep -qo "dashboard=http://$host_addr:[0-9]*" "$log" && break; sleep 0.1; done
port=$(grep -o "dashboard=http://$host_addr:[0-9]*" "$log" | head -1 | sed 's/.*://')
py=.build/browser-venv/bin/python
client=Examples/uplink-client/uplink_client.py
for mode in "push:--credits 0 --fixed" "credit-fixed:--credits 1 --fixed" "credit-adaptive:--credits 1"; do
  label=${mode%%:*} args=${mode#*:}
  id="bench-$label"
  .build/debug/framepipe-bench watch --url "ws://$host_addr:$port" --query "streams=$id" --duration "$((seconds + 5))" --warmup 5 --label "$label" >/tmp/watch-$tag.json &
  watcher=$!
  # 640x480 at quality 80 with 30% fine detail: ~76 KB frames, 10 fps asked (6 Mbit/s).
  ip netns exec "$ns" "$py" "$client" "ws://$host_addr:$port/ws/stream/$id" --width 640 --height 480 --quality 80 \
    --detail 0.3 --fps 10 --duration "$((seconds + 5))" $args | tail -1 >/tmp/client-$tag.json
  wait "$watcher" || true
  echo "== $rate uplink, $label"
  tail -1 /tmp/watch-$tag.json
  cat /tmp/client-$tag.json
done
rm -f "$log" /tmp/watch-$tag.json /tmp/client-$tag.json
