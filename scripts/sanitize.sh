#!/usr/bin/env bash
# Runs the whole test suite under AddressSanitizer and ThreadSanitizer, each in its own scratch
# path (.build-asan, .build-tsan) so neither disturbs the plain .build. Slow (each builds everything
# instrumented and the suite runs 2-10x slower), so it is not part of CI: run it by hand after
# changing anything that touches memory or threads.
#
# Usage: scripts/sanitize.sh [asan|tsan|all] [extra swift test arguments, e.g. --filter StoreTests]
# Exit status: non-zero when a build fails, a test fails, or a sanitizer reports (ASan aborts the
# test process at its first report; TSan reports every race and fails the process at exit).
#
# Findings in the toolchain's own libraries (not reactord's code) are suppressed in
# scripts/asan-suppressions.txt, lsan-suppressions.txt and tsan-suppressions.txt, each with its
# reason. ThreadSanitizer: known false positives of the toolchain's own libraries are listed in
# scripts/tsan-suppressions.txt, each with the reason; a race in reactord's code is never listed
# there, it is fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
# The Swift runtime's crash backtracer would attach to a process a sanitizer is already reporting
# on (and, under ASan, trip over its own memory reads): leave reports to the sanitizers.
export SWIFT_BACKTRACE=enable=no
# Tests that measure resident memory or time: a sanitizer's shadow memory and quarantine inflate
# RSS, and its slowdown breaks schedules and puts commands in SLOWLOG (which the Redis differential
# test compares), so their bounds mean nothing here.
skip='LargeValueTests|slowReaderGetsEveryByteWhileServerMemoryStaysBounded|openLoopKeepsTheSchedule'
skip+='|handWrittenSequencesGetRedisReplies'
which=${1:-all}
shift || true

run_asan() {
    echo "== AddressSanitizer (.build-asan)"
    # detect_leaks: LeakSanitizer runs when each test process exits (XCTest's, then Swift
    # Testing's). The suppressions name XCTest's own objects (scripts/lsan-suppressions.txt).
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:suppressions=$PWD/scripts/asan-suppressions.txt} \
        LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/scripts/lsan-suppressions.txt:print_suppressions=0} \
        swift test --scratch-path .build-asan --sanitize=address --skip "$skip" "$@"
}

run_tsan() {
    echo "== ThreadSanitizer (.build-tsan)"
    # The full-disk stand-in (a file-size limit, `ulimit -f 64`) also limits ThreadSanitizer's
    # own file-backed mappings: the instrumented server dies of SIGBUS before it starts.
    TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=0:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan-suppressions.txt} \
        swift test --scratch-path .build-tsan --sanitize=thread --skip "$skip|healthSays503WhileTheLogCannotBeWritten" "$@"
}

case $which in
    asan) run_asan "$@" ;;
    tsan) run_tsan "$@" ;;
    all) run_asan "$@"; run_tsan "$@" ;;
    *) echo "usage: scripts/sanitize.sh [asan|tsan|all] [swift test arguments]" >&2; exit 2 ;;
esac
