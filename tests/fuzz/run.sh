#!/bin/sh
# Runs one libFuzzer target for a bounded time; `make fuzz` calls it for each.
#
#   run.sh NAME MAX_LEN SRCDIR SECONDS [LIBFUZZER_FLAG...]
#
# The target is tests/fuzz/fuzz_NAME (in the build tree).  It starts from the
# seeds, $SRCDIR/tests/fuzz/NAME/, and the regression files,
# $SRCDIR/tests/regressions/NAME/, which it only reads; what it discovers
# goes to fuzz-corpus/NAME/ in the build tree, kept from run to run.  Any
# crash, sanitizer report, leak, timeout (an input taking more than 20 s) or
# memory blow-up (over 2 GB) fails the run: the input that caused it is left
# in fuzz-artifacts/ and named, with how to replay it.  The full log is
# fuzz-NAME.log.
set -u
name=$1 max_len=$2 srcdir=$3 seconds=$4
shift 4

target=tests/fuzz/fuzz_$name
corpus=fuzz-corpus/$name
artifacts=fuzz-artifacts
log=fuzz-$name.log
mkdir -p "$corpus" "$artifacts" || exit 1

dirs="$corpus $srcdir/tests/fuzz/$name"
[ -d "$srcdir/tests/regressions/$name" ] && dirs="$dirs $srcdir/tests/regressions/$name"

echo "fuzz $name: ${seconds} s, inputs up to $max_len bytes (log: $log)"
# No -jobs/-fork: a crash must stop the run and fail `make fuzz` at once.
# shellcheck disable=SC2086
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
"./$target" -max_total_time="$seconds" -max_len="$max_len" -timeout=20 \
    -rss_limit_mb=2048 -use_value_profile=1 -print_final_stats=1 \
    -artifact_prefix="$artifacts/$name-" "$@" $dirs >"$log" 2>&1
status=$?

# The last status line: executions, coverage, corpus size.
grep -E '^#[0-9]+' "$log" | tail -n 1 | sed "s/^/fuzz $name: /"
grep -E '^stat::number_of_executed_units' "$log" | sed "s/^/fuzz $name: /"
if [ "$status" -ne 0 ]; then
    echo "fuzz $name: FAILED (exit status $status); the end of $log:" >&2
    tail -n 60 "$log" >&2
    for artifact in "$artifacts/$name-"*; do
        [ -e "$artifact" ] || continue
        echo "fuzz $name: failing input: $artifact; replay it with: ./$target $artifact" >&2
        echo "fuzz $name: once fixed, keep it as a regression: mkdir -p $srcdir/tests/regressions/$name && cp $artifact $srcdir/tests/regressions/$name/NAME" >&2
    done
    exit 1
fi
echo "fuzz $name: passed"
