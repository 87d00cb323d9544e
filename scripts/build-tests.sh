#!/usr/bin/env bash
# Builds what the suites run: framepipe with its tests, then the custom-stage
# example (Examples/DropDuplicates) with its tests. scripts/test.sh and
# scripts/load-check.sh both call it, so their builds cannot drift apart.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS=${TEST_SECONDS:-0}  # scripts/test.sh passes its own count, so phases read as one timeline
phase() { echo "== $1 (at ${SECONDS}s)"; }

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
