#!/usr/bin/env bash
# Runs every test suite, in the shape the test command runs them: two lanes
# at once, then the slow-viewer tests alone. Needs what scripts/test.sh
# installs and builds (framepipe with its tests, the custom-stage example).
#
#   browser lane   the reference uplink client's tests, then the browser
#                  tests but the standard clients'
#   swift lane     the Swift suites, the custom-stage example's tests, then
#                  the standard-client tests (ffmpeg, VLC, GStreamer, curl,
#                  an <img>), which balance the lanes
#
# Why two lanes: the browser lane mostly waits on real time (a camera page's
# frames, a token's exp, a heap sampled over seconds) while the Swift lane
# mostly computes; one after the other, they left a core idle for minutes.
# Both are proven under load (scripts/load-check.sh runs this same script
# beside busy loops), so neither depends on having the machine to itself.
#
# The swift lane prints as it goes; the browser lane's output is kept in
# $BROWSER_LOG (default .build/browser-lane.log) and printed when it ends.
# Every suite runs even when another failed; the exit status says whether
# any did. SUITES="swift" or SUITES="browser" runs one lane only.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS=${TEST_SECONDS:-0}  # scripts/test.sh passes its own count, so phases read as one timeline

suites=${SUITES:-swift browser}
browser_log=${BROWSER_LOG:-.build/browser-lane.log}
venv_python=$PWD/.build/browser-venv/bin/python
status=0
phase() { echo "== $1 (at ${SECONDS}s)"; }
wants() { [[ " $suites " == *" $1 "* ]]; }

browser_lane() {
    local failed=0
    echo "== reference uplink client (Examples/uplink-client, against framepipe serve)"
    (cd Examples/uplink-client && "$venv_python" -m pytest -q -p no:cacheprovider) || failed=1
    echo "== browser tests (headless Chromium with a fake camera, against framepipe serve) (at ${SECONDS}s of the lane)"
    (cd Tests/Browser && "$venv_python" -m pytest -q -p no:cacheprovider --ignore=test_standard_clients.py) || failed=1
    echo "== browser lane done (after ${SECONDS}s)"
    return $failed
}

# The test bundles SwiftPM built, run directly rather than by `swift test
# --skip-build`: framepipe and the custom-stage example share one build
# directory, and `swift test --skip-build` runs the bundle of whichever
# package was built last (framepipe's suites once ran the example's four
# tests and passed). A bundle's own runner is what `swift test` calls.
run_bundle() {
    local bundle=.build/debug/$1.xctest
    shift
    [ -t 1 ] || export NO_COLOR=1  # plain text in logs, which the load check reads
    local rc=0
    "$bundle" --testing-library swift-testing "$@" || rc=$?
    ((rc > 128)) && echo "the test process died of signal $((rc - 128)) ($bundle)"
    return $rc
}

swift_lane() {
    local failed=0
    phase "swift test (framepipe)"
    run_bundle framepipePackageTests --skip SlowViewerTests || failed=1

    phase "custom-stage example's tests (Examples/DropDuplicates)"
    run_bundle DropDuplicatesPackageTests || failed=1
    .build/debug/framepipe-dedup stages | grep -q '^drop-duplicates' || { echo "framepipe-dedup lists no drop-duplicates stage"; failed=1; }
    (cd Examples/DropDuplicates && ../../.build/debug/framepipe-dedup check pipelines.json) || failed=1

    phase "standard clients (ffmpeg, VLC, GStreamer, curl and a browser, against framepipe serve)"
    (cd Tests/Browser && "$venv_python" -m pytest -q -p no:cacheprovider test_standard_clients.py) || failed=1
    return $failed
}

lane=""
if wants browser; then
    # A process group of its own, so an interrupted run stops Chromium and
    # the relays the lane started too. SIGINT, not SIGTERM: pytest then
    # runs its fixtures' clean-up (shaped links, namespaces).
    export -f browser_lane
    export venv_python
    setsid bash -c browser_lane >"$browser_log" 2>&1 &
    lane=$!
    trap '[ -n "$lane" ] && kill -INT -- "-$lane" 2>/dev/null; wait; exit 130' INT TERM
    phase "browser lane started (uplink client, browser tests; output in $browser_log)"
fi

if wants swift; then
    swift_lane || status=1
fi

if [ -n "$lane" ]; then
    phase "waiting for the browser lane"
    wait "$lane" || status=1
    lane=""
    cat "$browser_log"
fi

if wants swift; then
    # The slow/stuck-viewer tests push hundreds of MB through loopback
    # sockets and measure delivery: they run alone, after everything else.
    phase "swift test (the slow-viewer tests, alone)"
    run_bundle framepipePackageTests --filter SlowViewerTests || status=1
fi
exit $status
