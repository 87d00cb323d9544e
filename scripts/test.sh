#!/usr/bin/env bash
# Runs every test framepipe has, installing what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step says when it began, in seconds since the start: where the minutes go.
phase() { echo "== $1 (at ${SECONDS}s)"; }

bash scripts/install-deps.sh test

phase "swift build (framepipe)"
swift build --build-tests
phase "swift test (framepipe)"
# The slow/stuck-viewer tests push hundreds of MB through loopback sockets and
# measure delivery: they run alone, after everything else.
swift test --skip-build --skip SlowViewerTests
swift test --skip-build --filter SlowViewerTests

phase "custom-stage example (Examples/DropDuplicates)"
# Built in framepipe's own .build: the same dependencies with the same flags
# are reused, where a separate build directory compiled them all again
# (seven minutes on a 2-core machine).
example=(--package-path Examples/DropDuplicates --scratch-path .build)
swift build "${example[@]}" --build-tests
swift test "${example[@]}" --skip-build
.build/debug/framepipe-dedup stages | grep -q '^drop-duplicates'
(cd Examples/DropDuplicates && ../../.build/debug/framepipe-dedup check pipelines.json)

phase "reference uplink client (Examples/uplink-client, against framepipe serve)"
(cd Examples/uplink-client && ../../.build/browser-venv/bin/python -m pytest -q)

phase "browser tests (headless Chromium with a fake camera, against framepipe serve)"
(cd Tests/Browser && ../../.build/browser-venv/bin/python -m pytest -q)
phase "done"
