#!/bin/sh
# Proves that tests/golden.sh bites: mnist-omp built with changes that a
# reviewer could make without noticing, and that move the published bits,
# must fail it, because its trained parameters changed.  Not part of
# `make check` (it builds mnist-omp twice more, a minute or two each on two
# cores); .ci/run runs it.
#
#   sh tests/mutation.sh [BUILDDIR]
#
# BUILDDIR (default .) is a configured and built tree: its mnist-omp must
# pass tests/golden.sh (so that a golden test which fails on everything
# proves nothing), and `make distdir` there gives the clean sources that the
# mutants are configured from, each in a directory of its own.
#
# The mutants, through CFLAGS only, which configure puts after the
# project's -ffp-contract=off, so they win:
#   contraction: a*b+c fused into one rounding (FMA), as -ffp-contract=fast
#     does on a CPU that has FMA (x86-64-v3);
#   reassociation: sums reordered, as -fassociative-math (part of
#     -ffast-math) lets the vectoriser do.
set -u

builddir=$(cd "${1:-.}" && pwd) || exit 99
[ -x "$builddir/mnist-omp" ] || { echo "mutation.sh: no mnist-omp in $builddir: build it first" >&2; exit 99; }
work=$(mktemp -d "${TMPDIR:-/tmp}/mnist-omp-mutation.XXXXXX") || exit 99
trap 'rm -rf "$work"' EXIT
src=$work/src
failures=0

make -s -C "$builddir" distdir distdir="$src" top_distdir="$src" >"$work/distdir.log" 2>&1 ||
    { cat "$work/distdir.log" >&2; echo "mutation.sh: make distdir failed in $builddir" >&2; exit 99; }

# golden PROGRAM LOG: runs tests/golden.sh on PROGRAM; its status.
golden() {
    MNIST_OMP=$1 top_srcdir=$src MNIST_OMP_DATA=$src/data sh "$src/tests/golden.sh" >"$2" 2>&1
}

if ! golden "$builddir/mnist-omp" "$work/control.log"; then
    cat "$work/control.log" >&2
    echo "mutation.sh: $builddir/mnist-omp itself fails tests/golden.sh: nothing to compare" >&2
    exit 1
fi
echo "control: $builddir/mnist-omp passes tests/golden.sh"

# mutant NAME CFLAGS: builds mnist-omp with CFLAGS; tests/golden.sh must
# fail on it, saying that the trained parameters changed (not crashing).
mutant() {
    name=$1 cflags=$2
    mkdir "$work/$name"
    if ! (cd "$work/$name" && "$src/configure" -q CFLAGS="$cflags" &&
            make -s -j2 mnist-omp) >"$work/$name.build" 2>&1; then
        cat "$work/$name.build" >&2
        echo "FAIL: $name: could not build with CFLAGS='$cflags'" >&2
        failures=$((failures + 1))
        return
    fi
    if golden "$work/$name/mnist-omp" "$work/$name.log"; then
        echo "FAIL: $name (CFLAGS='$cflags'): tests/golden.sh passes, so it cannot tell" >&2
        failures=$((failures + 1))
    elif grep -q 'the trained parameters changed' "$work/$name.log"; then
        echo "ok: $name (CFLAGS='$cflags') fails tests/golden.sh, as it must:"
        sed -n 's/^FAIL: /    /p' "$work/$name.log" | cut -c 1-150
    else
        cat "$work/$name.log" >&2
        echo "FAIL: $name: tests/golden.sh failed, but not because the parameters changed" >&2
        failures=$((failures + 1))
    fi
}

# The contraction mutant needs FMA instructions to run.
if grep -qw fma /proc/cpuinfo 2>/dev/null; then
    mutant contraction '-g -O2 -ffp-contract=fast -march=x86-64-v3'
else
    echo "skipped: contraction (this CPU has no FMA, or no /proc/cpuinfo says so)"
fi
mutant reassociation '-g -O2 -fassociative-math -fno-signed-zeros -fno-trapping-math'

if [ "$failures" -ne 0 ]; then
    echo "mutation.sh: $failures mutant(s) not caught" >&2
    exit 1
fi
echo "mutation.sh: every mutant fails tests/golden.sh"
