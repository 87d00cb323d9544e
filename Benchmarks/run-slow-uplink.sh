#!/usr/bin/env bash
# The camera page behind a real shaped uplink (a network namespace holding
# the relay, tc tbf on the host's end): prints the capture-to-viewer age,
# the dashboard's shown age against the true one, the frame rate, and what
# the page says it does. Needs root, the debug build and the browser venv
# (bash scripts/test.sh sets both up).
#   bash Benchmarks/run-slow-uplink.sh [RATE ...]     default: 1mbit 4mbit
# Each rate runs twice: with the dashboard's tile small (the camera is asked
# for ~480 px) and opened large (the camera is asked for its full picture).
set -euo pipefail
cd "$(dirname "$0")/.."
rates=("${@:-1mbit}")
[ $# -eq 0 ] && rates=(1mbit 4mbit)
for rate in "${rates[@]}"; do
  for large in 0 1; do
    echo "== uplink $rate, 1280x720 chosen, 15 fps, tile $([ $large = 1 ] && echo large || echo small), ${UPLINK_MEASURE_SECONDS:-30} s measured"
    (cd Tests/Browser && UPLINK_RATE="$rate" UPLINK_LARGE_TILE=$large UPLINK_MEASURE_SECONDS="${UPLINK_MEASURE_SECONDS:-30}" \
      ../../.build/browser-venv/bin/python -m pytest -q -s \
      "test_uplink.py::test_camera_behind_a_1_mbit_uplink_shows_fresh_pictures_with_their_true_age" 2>&1 | grep -E "^UPLINK|passed|failed")
  done
done
