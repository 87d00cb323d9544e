# Sourced by the benchmark scripts that compare builds: BUILD is the
# directory holding framepipe and framepipe-bench (default .build/release,
# which is built first; an earlier build's directory is used as it is).
BUILD=${BUILD:-.build/release}
if [[ $BUILD == .build/release ]]; then
    swift build -c release --product framepipe >/dev/null && swift build -c release --product framepipe-bench >/dev/null
fi
