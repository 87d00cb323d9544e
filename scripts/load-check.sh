#!/usr/bin/env bash
# Runs the test suites several times with busy loops beside them, as a
# loaded CI machine would, and reports every failure with its test. The
# suites run in the test command's own shape (scripts/run-suites.sh: two
# lanes at once, then the slow viewers). Not part of the default test
# command: run it before you stop (issue 27).
#
#   bash scripts/load-check.sh [RUNS] [BUSY]      default: 5 runs, 2 busy loops
#   SUITES="swift browser" selects what runs (default both); LOADED=0 runs unloaded.
# Needs what scripts/test.sh installs and builds (run it once first).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
busy=${2:-2}
suites=${SUITES:-swift browser}
[ "${LOADED:-1}" = 0 ] && busy=0
report=$(mktemp)
pids=()
stop_busy() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; pids=(); }
trap 'stop_busy; rm -f "$report"' EXIT

# Built before the first run: the runs' own builds then find nothing to do.
# Its output is kept and shown if the build fails.
build_log=$(mktemp)
if ! bash scripts/build-tests.sh >"$build_log" 2>&1; then cat "$build_log"; echo "load-check: the build failed" >&2; exit 1; fi
rm -f "$build_log"
failed_runs=0
for run in $(seq "$runs"); do
  for _ in $(seq "$busy"); do (while :; do :; done) & pids+=($!); done
  log=$(mktemp)
  failures=()
  # The suites as the test command runs them: two lanes at once, then the slow viewers.
  rc=0
  SUITES=$suites BROWSER_LOG="$log.browser" bash scripts/run-suites.sh >"$log" 2>&1 || rc=$?
  rm -f "$log.browser"
  while IFS= read -r line; do failures+=("swift: $line"); done < <(grep -oE "✘ Test [^ ]+\(.*\) (failed|recorded)" "$log" | sed -E 's/ (failed|recorded)$//' | sort -u)
  while IFS= read -r line; do failures+=("swift: $line"); done < <(grep -E "^the test process died of signal" "$log")
  while IFS= read -r line; do failures+=("browser: $line"); done < <(grep -E "^(FAILED|ERROR) " "$log" | sed -E 's/^(FAILED|ERROR) //')
  if ! grep -q "^== browser lane done" "$log" && [[ " $suites " == *" browser "* ]]; then failures+=("browser: the lane did not finish"); fi
  if [ "$rc" -ne 0 ] && [ ${#failures[@]} -eq 0 ]; then failures+=("the suites exited with $rc without naming a test"); fi
  stop_busy
  if [ ${#failures[@]} -eq 0 ]; then
    echo "run $run of $runs ($busy busy loops): all passed" | tee -a "$report"
  else
    failed_runs=$((failed_runs + 1))
    echo "run $run of $runs ($busy busy loops): ${#failures[@]} failed" | tee -a "$report"
    for f in "${failures[@]}"; do echo "  $f" | tee -a "$report"; done
    cp "$log" ".build/load-check-run-$run.log"
    echo "  (log kept in .build/load-check-run-$run.log)" | tee -a "$report"
  fi
  rm -f "$log"
done
echo "== $((runs - failed_runs)) of $runs runs passed with $busy busy loops ($suites)"
[ "$failed_runs" -eq 0 ]
