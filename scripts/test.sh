#!/usr/bin/env bash
# Runs every test framepipe has, installing what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step says when it began, in seconds since the start: where the minutes go.
phase() { echo "== $1 (at ${SECONDS}s)"; }

bash scripts/install-deps.sh test

TEST_SECONDS=$SECONDS bash scripts/build-tests.sh

# Two lanes at once (the browser tests; the Swift suites, the example's
# tests and the standard clients), then the slow-viewer tests alone:
# scripts/run-suites.sh.
TEST_SECONDS=$SECONDS bash scripts/run-suites.sh
phase "done"
