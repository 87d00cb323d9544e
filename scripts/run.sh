#!/usr/bin/env bash
# Installs what is missing and runs framepipe on defaults (any extra
# arguments go to `framepipe serve`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh run
echo "building framepipe (release; the first build compiles every dependency and takes a few minutes)"
swift build -c release --product framepipe
exec .build/release/framepipe serve "$@"
