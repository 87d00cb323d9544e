#!/usr/bin/env bash
# Runs each libFuzzer target for a fixed time (default 300 s each) under
# AddressSanitizer, growing the committed corpus in Fuzz/Corpus. Not part of
# CI: it is a search, not a check. A crash leaves crash-* files in
# .build/fuzz-artifacts and exits non-zero.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (targets: frame-path config resp request-path cluster-wire)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-300}
shift || true
TARGETS=("${@:-frame-path config resp request-path cluster-wire}")
TARGETS=(${TARGETS[*]})
ARTIFACTS=.build/fuzz-artifacts
mkdir -p "$ARTIFACTS"
swift build --package-path Fuzz -c debug --scratch-path .build-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
for target in "${TARGETS[@]}"; do
    echo "== fuzz-$target for ${SECONDS_EACH}s"
    # -rss_limit_mb: the 40 MP cap means no legitimate input needs more.
    .build-fuzz/debug/fuzz-"$target" "Fuzz/Corpus/$target" -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 \
        -max_len=262144 -artifact_prefix="$ARTIFACTS/$target-" -print_final_stats=1 2>&1 | tee ".build/fuzz-$target.log" | grep -E "^#[0-9]+ +(DONE|INITED)|stat::number_of_executed_units|ERROR|crash" || true
    if grep -q "ERROR: libFuzzer\|ERROR: AddressSanitizer\|SUMMARY: " ".build/fuzz-$target.log"; then
        echo "fuzz-$target found a crash: see .build/fuzz-$target.log and $ARTIFACTS" >&2
        exit 1
    fi
done
