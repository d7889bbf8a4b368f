#!/bin/sh
# Two builds of mnist-omp (gcc and clang in CI) save the same bytes: a short
# run of the reference experiment, float32 and float64, with every
# instruction set both can run here, the whole training set for a few
# epochs, and mini-batch runs of the general trainer (tanh, sigmoid, softmax
# cross-entropy, Adam, Nesterov, a schedule); `cmp` of the saved models.  Not part of `make check`: .ci/run
# builds the second compiler's mnist-omp and runs it.
#
#   sh tests/compare-builds.sh FIRST_MNIST_OMP SECOND_MNIST_OMP
set -u

[ $# -eq 2 ] || { echo "usage: sh tests/compare-builds.sh FIRST_MNIST_OMP SECOND_MNIST_OMP" >&2; exit 2; }
first=$1 second=$2
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
testlib_start compare-builds
OMP_WAIT_POLICY=passive
export OMP_WAIT_POLICY

isas=
for isa in portable avx2 avx512; do
    prog=$first
    usable_isa "$isa" || { echo "skipped: MNIST_OMP_ISA=$isa in $first ($unusable_why)"; continue; }
    prog=$second
    usable_isa "$isa" || { echo "skipped: MNIST_OMP_ISA=$isa in $second ($unusable_why)"; continue; }
    isas="$isas $isa"
done
[ -n "$isas" ] || fail "the two builds share no instruction set"

compared=0
# same_bytes DESCRIPTION OPTION...: both programs save the same model.
same_bytes() {
    run_what=$1
    shift
    for isa in $isas; do
        expect_status 0 "$first $run_what ($isa)" -- env MNIST_OMP_ISA="$isa" "$first" "$@" --save "$work/first.model"
        expect_status 0 "$second $run_what ($isa)" -- env MNIST_OMP_ISA="$isa" "$second" "$@" --save "$work/second.model"
        cmp -s "$work/first.model" "$work/second.model" || fail "$run_what, MNIST_OMP_ISA=$isa: the builds saved different models"
        compared=$((compared + 1))
    done
}
same_bytes "float32, 20 epochs" --epochs 20
same_bytes "float64, 20 epochs" --epochs 20 --precision f64
same_bytes "all 60000 images, 2 epochs" --epochs 2 --train-size all
same_bytes "784-64-32-10 tanh, xent, Adam, batches of 100, 3 epochs" --hidden 64,32 \
    --activation tanh --loss xent --batch 100 --optimizer adam --lr 0.001 --train-size 2000 --epochs 3
same_bytes "784-16-10 sigmoid, Nesterov, weight decay, cosine, batches of 128, 3 epochs" --hidden 16 \
    --activation sigmoid --batch 128 --optimizer sgd --lr 0.1 --momentum 0.9 --nesterov \
    --weight-decay 0.0005 --schedule cosine --train-size 3000 --epochs 3 --precision f64

testlib_finish "compare-builds: $compared runs saved the same bytes in both builds (kernels$isas)"
