# What the shell tests share (sourced, POSIX sh): the program under test, the
# source directory, a scratch directory removed on exit, and the checks, which
# count failures instead of stopping at the first.  Call testlib_start NAME
# before anything else.

prog=${MNIST_OMP:-./mnist-omp}
srcdir=${top_srcdir:-.}
failures=0

# testlib_start NAME: makes the scratch directory $work.
testlib_start() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/mnist-omp-$1.XXXXXX") || exit 99
    trap 'rm -rf "$work"' EXIT
}

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# testlib_finish SUMMARY: exits 1 when a check failed, else prints SUMMARY.
testlib_finish() {
    if [ "$failures" -ne 0 ]; then
        echo "$failures check(s) failed" >&2
        exit 1
    fi
    echo "$1"
}

# expect_status STATUS DESCRIPTION -- COMMAND...: runs the command, its output
# in $work/out and $work/err; a sanitizer report fails it too.
expect_status() {
    want=$1 what=$2
    shift 3
    "$@" >"$work/out" 2>"$work/err"
    got=$?
    [ "$got" -eq "$want" ] || fail "$what: exit status $got, expected $want ($(head -n 2 "$work/err"))"
    ! report=$(sanitizer_report "$work/err") || fail "$what: sanitizer report: $report"
}

# sanitizer_report FILE: prints the start of a sanitizer report in FILE;
# fails when there is none.
sanitizer_report() {
    grep -m 3 -e 'Sanitizer' -e 'runtime error: ' "$1"
}

# expect_in FILE PATTERN: a line of FILE matches the basic regular expression.
expect_in() {
    grep -q -e "$2" "$1" || fail "'$2' not found in $(basename "$1"): $(head -n 3 "$1")"
}

# usable_isa ISA: succeeds when $prog can run the kernels of instruction set
# ISA (MNIST_OMP_ISA) here; when this CPU or this build lacks them, fails and
# sets $unusable_why to the program's message.  Any other failure is a
# failed check.
usable_isa() {
    MNIST_OMP_ISA=$1 "$prog" --train-size 10 --test-size 10 --epochs 1 -q \
        >/dev/null 2>"$work/isa.err" && return 0
    unusable_why=$(head -n 1 "$work/isa.err")
    case $unusable_why in
        *"cannot run the $1 kernels"* | *"unknown instruction set '$1'"*) ;;
        *) fail "MNIST_OMP_ISA=$1: unexpected failure: $unusable_why" ;;
    esac
    return 1
}

# A background job of a script starts with SIGINT ignored, and mnist-omp
# leaves an ignored signal ignored: $with_sigint runs a command with SIGINT
# back to its default (empty where env cannot, and SIGINT cases are skipped).
if env --default-signal=INT true 2>/dev/null; then
    with_sigint="env --default-signal=INT"
else
    with_sigint=
fi
