#!/usr/bin/env bash
# Runs every test framepipe has, installing what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step says when it began, in seconds since the start: where the minutes go.
phase() { echo "== $1 (at ${SECONDS}s)"; }

bash scripts/install-deps.sh test

phase "swift build (framepipe, with its tests)"
swift build --build-tests

phase "swift build (the custom-stage example, Examples/DropDuplicates)"
# Before the lanes: beside the browser tests it took 65 s, alone 25 s.
# Built in framepipe's own .build: the same dependencies with the same flags
# are reused, where a separate build directory compiled them all again
# (seven minutes on a 2-core machine). It plans afresh: with the build
# directory shared, SwiftPM's cached plan is framepipe's, and with it the
# example's build found nothing to do and left a stale framepipe-dedup.
swift build --package-path Examples/DropDuplicates --scratch-path .build --build-tests --disable-build-manifest-caching

# Two lanes at once (the browser tests; the Swift suites, the example's
# tests and the standard clients), then the slow-viewer tests alone:
# scripts/run-suites.sh.
TEST_SECONDS=$SECONDS bash scripts/run-suites.sh
phase "done"
