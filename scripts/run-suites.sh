#!/usr/bin/env bash
# Runs every test suite, in the shape the test command runs them: two lanes
# at once, then the slow-viewer tests alone. Needs the relay's executable
# built (`swift build --product framepipe`) and what
# scripts/install-deps.sh test installs.
#
#   browser lane   the reference uplink client's tests, then the browser
#                  tests: they need only the relay's executable
#   swift lane     builds the Swift tests and the custom-stage example (a
#                  no-op when they are built), runs the example's tests,
#                  then the Swift suites
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
    (cd Tests/Browser && "$venv_python" -m pytest -q -p no:cacheprovider) || failed=1
    echo "== browser lane done (after ${SECONDS}s)"
    return $failed
}

swift_lane() {
    phase "swift build (the tests)"
    swift build --build-tests || return 2

    phase "custom-stage example (Examples/DropDuplicates)"
    # Built in framepipe's own .build: the same dependencies with the same
    # flags are reused, where a separate build directory compiled them all
    # again (seven minutes on a 2-core machine). Its build plans afresh: with
    # the build directory shared, SwiftPM's cached plan is framepipe's, and
    # with it the example's build found nothing to do and left a stale
    # framepipe-dedup (seen here).
    local example=(--package-path Examples/DropDuplicates --scratch-path .build)
    local failed=0
    swift build "${example[@]}" --build-tests --disable-build-manifest-caching || return 2
    swift test "${example[@]}" --skip-build || failed=1
    .build/debug/framepipe-dedup stages | grep -q '^drop-duplicates' || { echo "framepipe-dedup lists no drop-duplicates stage"; failed=1; }
    (cd Examples/DropDuplicates && ../../.build/debug/framepipe-dedup check pipelines.json) || failed=1

    phase "swift test (framepipe)"
    swift test --skip-build --skip SlowViewerTests || failed=1
    return $failed
}

# 0: passed; 1: a test failed; 2: a build failed, so nothing more can run.
lane=""
if wants browser; then
    # A process group of its own, so an interrupted run stops Chromium and
    # the relays the lane started too. SIGINT, not SIGTERM: pytest then
    # runs its fixtures' clean-up (shaped links, namespaces).
    export -f browser_lane
    export venv_python
    setsid bash -c browser_lane >"$browser_log" 2>&1 &
    lane=$!
    trap '[ -n "$lane" ] && kill -INT -- "-$lane" 2>/dev/null; wait' INT TERM
    phase "browser lane started (uplink client, browser tests; output in $browser_log)"
fi

built=yes
if wants swift; then
    swift_lane
    case $? in 0) ;; 2) status=1; built=no ;; *) status=1 ;; esac
fi

if [ -n "$lane" ]; then
    phase "waiting for the browser lane"
    wait "$lane" || status=1
    lane=""
    cat "$browser_log"
fi

if wants swift && [ "$built" = yes ]; then
    # The slow/stuck-viewer tests push hundreds of MB through loopback
    # sockets and measure delivery: they run alone, after everything else.
    phase "swift test (the slow-viewer tests, alone)"
    swift test --skip-build --filter SlowViewerTests || status=1
fi
exit $status
