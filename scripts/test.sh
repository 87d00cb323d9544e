#!/usr/bin/env bash
# Runs every test framepipe has, installing what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step says when it began, in seconds since the start: where the minutes go.
phase() { echo "== $1 (at ${SECONDS}s)"; }

bash scripts/install-deps.sh test

# The relay's executable first: the browser tests need nothing else, so
# they start while the Swift tests are still being compiled.
phase "swift build (the relay)"
swift build --product framepipe

# Two lanes at once (the browser-driven suites; the Swift tests' build and
# suites), then the slow-viewer tests alone: scripts/run-suites.sh.
TEST_SECONDS=$SECONDS bash scripts/run-suites.sh
phase "done"
