#!/usr/bin/env bash
# Runs every test framepipe has, installing what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh test

echo "== swift test (framepipe)"
swift build --build-tests
# The slow/stuck-viewer tests push hundreds of MB through loopback sockets and
# measure delivery: they run alone, after everything else.
swift test --skip-build --skip SlowViewerTests
swift test --skip-build --filter SlowViewerTests

echo "== custom-stage example (Examples/DropDuplicates)"
swift build --package-path Examples/DropDuplicates --build-tests
swift test --package-path Examples/DropDuplicates --skip-build
Examples/DropDuplicates/.build/debug/framepipe-dedup stages | grep -q '^drop-duplicates'
(cd Examples/DropDuplicates && .build/debug/framepipe-dedup check pipelines.json)

echo "== browser tests (headless Chromium with a fake camera, against framepipe serve)"
(cd Tests/Browser && ../../.build/browser-venv/bin/python -m pytest -q)
