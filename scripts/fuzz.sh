#!/usr/bin/env bash
# Builds the libFuzzer targets of Fuzz/ (AddressSanitizer + libFuzzer, Fuzz/README.md) and runs
# them. Each run starts from the committed seeds in Fuzz/Corpus/<target>/ (read only) and writes
# what it discovers to a fresh working corpus in a temporary directory, so committed corpora never
# grow; crashes, hangs and leaks are saved as Fuzz/Artifacts/<target>/crash-* (or timeout-*,
# leak-*) and the run fails.
#
# Usage:
#   scripts/fuzz.sh list                      the targets
#   scripts/fuzz.sh build                     build them all
#   scripts/fuzz.sh TARGET SECONDS [ARGS...]  run one target (ARGS go to libFuzzer)
#   scripts/fuzz.sh all SECONDS               every target, two at a time (one per core)
#   scripts/fuzz.sh replay TARGET FILE...     run a target once on each given input (a saved crash)
# Environment: FUZZ_CONFIG=release|debug (default release: several times more executions per
# second), FUZZ_NO_BUILD=1 to skip the build, FUZZ_KEEP_CORPUS=1 to keep the working corpus,
# FUZZ_NICE (default 10) for the niceness of the fuzzing processes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
config=${FUZZ_CONFIG:-release}
nice_level=${FUZZ_NICE:-10}
# -enable-testing: the targets reach internal parsers through `@testable import` in every
# configuration (SwiftPM enables testing only in debug by default).
build_flags=(--package-path Fuzz -c "$config" -Xswiftc -enable-testing -Xswiftc -sanitize=fuzzer,address)

targets() {
    ls Fuzz/Sources | grep '^Fuzz' | grep -v '^FuzzSupport$'
}

build() {
    [ "${FUZZ_NO_BUILD:-}" = 1 ] && return
    local log
    log=$(mktemp)
    # Quiet unless it fails (the linker warns once per ASan symbol it cannot export: noise).
    if ! nice -n "$nice_level" swift build "${build_flags[@]}" > "$log" 2>&1; then
        grep -v "Cannot export local symbol" "$log" >&2
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
}

bin_path() {
    swift build "${build_flags[@]}" --show-bin-path
}

# The longest input each target is fed: long enough for a few dozen requests or records, short
# enough for thousands of executions a second.
max_len() {
    case $1 in
        FuzzKVLine|FuzzKVRESP|FuzzRecovery|FuzzLogRoundTrip|FuzzSnapshot) echo 4096 ;;
        *) echo 2048 ;;
    esac
}

libfuzzer_options() {
    local target=$1 dict="Fuzz/Corpus/$1.dict"
    # -timeout: one input taking longer is a hang. -detect_leaks: LeakSanitizer after each input
    # that allocated more than it freed. -rss_limit_mb: a target that grows past it fails.
    echo "-max_len=$(max_len "$target") -timeout=10 -detect_leaks=1 -rss_limit_mb=2048 -print_final_stats=1"
    [ -f "$dict" ] && echo "-dict=$dict"
    echo "-artifact_prefix=$root/Fuzz/Artifacts/$target/"
}

run() {
    local target=$1 seconds=$2
    shift 2
    local bin work log status
    bin=$(bin_path)/$target
    [ -x "$bin" ] || { echo "no such target: $target (scripts/fuzz.sh list)" >&2; return 2; }
    mkdir -p "Fuzz/Artifacts/$target"
    work=$(mktemp -d "${TMPDIR:-/tmp}/reactord-fuzz-corpus-$target-XXXXXX")
    log=$work.log
    status=0
    # SWIFT_BACKTRACE: leave crashes to libFuzzer and ASan, whose reports name the input.
    SWIFT_BACKTRACE=enable=no nice -n "$nice_level" "$bin" $(libfuzzer_options "$target") \
        -max_total_time="$seconds" "$@" "$work" "Fuzz/Corpus/$target" > "$log" 2>&1 || status=$?
    local runs found seeds
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    found=$(find "$work" -type f | wc -l)
    seeds=$(find "Fuzz/Corpus/$target" -type f | wc -l)
    echo "$target: exit $status, ${runs:-0} executions in ${seconds}s, corpus $((found + seeds)) inputs ($seeds seeds + $found new)"
    if [ "$status" != 0 ]; then
        grep -E "ERROR|invariant|SUMMARY|Test unit written|Fatal error|panic" "$log" | head -20 >&2 || true
        echo "  libFuzzer's log: $log" >&2
    fi
    if [ "${FUZZ_KEEP_CORPUS:-}" = 1 ]; then
        echo "  working corpus kept in $work, log $log"
    else
        rm -rf "$work"
        if [ "$status" = 0 ]; then rm -f "$log"; fi
    fi
    return "$status"
}

case ${1:-} in
    list) targets ;;
    build) build ;;
    all)
        seconds=${2:?usage: scripts/fuzz.sh all SECONDS}
        build
        failed=0
        running=0
        for target in $(targets); do
            if [ $running -ge 2 ]; then
                wait -n || failed=1  # whichever finishes first frees its core
                running=$((running - 1))
            fi
            FUZZ_NO_BUILD=1 run "$target" "$seconds" &
            running=$((running + 1))
        done
        while [ $running -gt 0 ]; do
            wait -n || failed=1
            running=$((running - 1))
        done
        exit $failed
        ;;
    replay)
        target=${2:?usage: scripts/fuzz.sh replay TARGET FILE...}
        shift 2
        build
        SWIFT_BACKTRACE=enable=no "$(bin_path)/$target" -detect_leaks=1 "$@"
        ;;
    ""|-h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    *)
        target=$1
        seconds=${2:?usage: scripts/fuzz.sh TARGET SECONDS}
        shift 2
        build
        run "$target" "$seconds" "$@"
        ;;
esac
