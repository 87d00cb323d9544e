#!/usr/bin/env bash
# Memory per idle connected viewer: a relay (release build) with VIEWERS
# binary viewers that watch no stream, auth off and auth on (HS256, every
# viewer sending one viewer token, --max-viewers-per-token 0), read as RSS
# growth by `framepipe-bench load --pid`. With BEFORE (a directory holding an
# earlier build's framepipe and framepipe-bench) the builds take turns,
# ROUNDS times, for a before/after table from one run. PREFIX runs the relay
# under a command (PREFIX="env MALLOC_ARENA_MAX=1").
# Usage: Benchmarks/run-idle-memory.sh   Env: VIEWERS (1000), ROUNDS (2), BEFORE, BUILD (.build/release), PREFIX.
# Not part of CI: it wants the machine to itself.
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/release-build.sh
source Benchmarks/wait-for-relay.sh
PORT=${PORT:-8197}
VIEWERS=${VIEWERS:-1000}
ROUNDS=${ROUNDS:-2}
read -r -a prefix <<< "${PREFIX:-}"
secret=$(mktemp)
head -c 32 /dev/urandom | base64 > "$secret"
relay=
trap '[ -n "$relay" ] && kill "$relay" 2>/dev/null; rm -f "$secret"' EXIT

# One measure: prints the KB per viewer the load tool reports.
measure() {
    local bin=$1 auth=$2 args=(--port "$PORT" --log-level warning --max-connections-per-address 0
        --upgrade-rate-per-address 0 --max-viewers 0) token=()
    if [[ $auth == on ]]; then
        args+=(--max-viewers-per-token 0 --jwt-secret-file "$secret")
        token=(--viewer-token "$("$bin/framepipe" token --secret-file "$secret" --role viewer --stream '*')")
    fi
    "${prefix[@]}" "$bin/framepipe" serve "${args[@]}" >/dev/null 2>&1 &
    relay=$!
    wait_for_relay framepipe "$PORT"  # no start event to wait on from outside
    "$bin/framepipe-bench" load --url "ws://127.0.0.1:$PORT" --pid "$relay" --viewers "$VIEWERS" --streams 0 \
        --format binary --duration 3 "${token[@]}" 2>/dev/null | grep -o '"kb_per_viewer":[0-9.]*' | cut -d: -f2
    kill -INT "$relay"; wait "$relay" 2>/dev/null || true
    relay=
}

builds=("after=$BUILD")
[ -n "${BEFORE:-}" ] && builds=("before=$BEFORE" "${builds[@]}")
printf '| build | auth | %s\n|---|---|%s\n' "$(for r in $(seq "$ROUNDS"); do printf 'round %s | ' "$r"; done)" \
    "$(for _ in $(seq "$ROUNDS"); do printf -- '---|'; done)"
declare -A figures
for r in $(seq "$ROUNDS"); do
    for build in "${builds[@]}"; do
        for auth in on off; do figures[${build%%=*} $auth]+="$(measure "${build#*=}" "$auth") KB | "; done
    done
done
for build in "${builds[@]}"; do
    for auth in on off; do echo "| ${build%%=*} | $auth | ${figures[${build%%=*} $auth]}"; done
done
