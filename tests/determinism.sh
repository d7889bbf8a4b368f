#!/bin/sh
# Bitwise identical weights whatever the thread count and the instruction
# set, at the sizes users run: the reference experiment (6000 images, 47
# units) and the whole training set (60000 images, 469 units), compared byte
# for byte (`cmp` of the saved models) with a one-thread run.  Thread counts
# from 2 to 256, odd ones among them, so that threads own ranges of units of
# uneven lengths, of one unit, or none (256 threads on 47 units).  Every thread count runs the kernels this
# CPU picks; every instruction set this CPU and build can run (the others
# are named as skipped) runs at 1 and 33 threads.
#
# Mini-batch runs (SPEC part 2) too: Adam with cross-entropy on two hidden
# layers, and SGD with momentum, Nesterov, weight decay, a cosine schedule
# and tanh, each with a last batch smaller than the others, at 2, 3, 7, 16
# and 64 threads and every usable instruction set at each of 1, 2, 3, 7, 16
# and 64 threads.
#
# Run time: about a minute on two cores.  Under the sanitizers
# (--enable-sanitizers, some ten times slower), the reference experiment
# runs 20 epochs instead of 300 and the whole training set 1 instead of 3:
# what they look for is in the code paths, which every epoch takes alike;
# the normal build checks all the epochs.
set -u

. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
testlib_start determinism

# Threads beyond the two cores of a CI machine sleep rather than spin.
OMP_WAIT_POLICY=passive
export OMP_WAIT_POLICY

thread_counts="2 3 5 8 16 24 32 33 64 128 256"
isa_thread_counts="1 33"
expect_status 0 "probe" -- "$prog" --train-size 10 --test-size 10 --epochs 1 --threads 2
if ! grep -q ', 2 threads$' "$work/out"; then
    echo "skipped: thread counts other than 1 (this build runs one thread: $(sed -n 's/^Training: *//p' "$work/out"))"
    thread_counts=
    isa_thread_counts=1
fi

isas=
for isa in portable avx2 avx512; do
    if usable_isa "$isa"; then
        isas="$isas $isa"
    else
        echo "skipped: MNIST_OMP_ISA=$isa ($unusable_why)"
    fi
done

default_epochs=300 full_epochs=3
if [ "${MNIST_OMP_SANITIZERS:-no}" = yes ]; then
    default_epochs=20 full_epochs=1
    echo "sanitizer build: the reference experiment runs $default_epochs epochs, not 300, and all 60000 images $full_epochs, not 3"
fi

runs=0
# same_bytes NAME REFERENCE DESCRIPTION -- COMMAND...: COMMAND --save's a
# model equal, byte for byte, to REFERENCE.
same_bytes() {
    run_name="$1, $3" run_reference=$2
    shift 4
    rm -f "$work/model"
    expect_status 0 "$run_name" -- "$@" --save "$work/model"
    runs=$((runs + 1))
    cmp -s "$run_reference" "$work/model" ||
        fail "$run_name: the saved model differs from the one-thread run's"
}

# check_size TAG NAME OPTION...: every thread count ($thread_counts) and
# instruction set (at $isa_thread_counts) against one thread.
check_size() {
    reference=$work/$1.model name=$2
    shift 2
    expect_status 0 "$name, --threads 1" -- "$prog" "$@" --threads 1 --save "$reference"
    [ -s "$reference" ] || { fail "$name: no model saved"; return; }
    for threads in $thread_counts; do
        same_bytes "$name" "$reference" "--threads $threads" -- "$prog" "$@" --threads "$threads"
    done
    for isa in $isas; do
        for threads in $isa_thread_counts; do
            same_bytes "$name" "$reference" "MNIST_OMP_ISA=$isa --threads $threads" -- \
                env MNIST_OMP_ISA="$isa" "$prog" "$@" --threads "$threads"
        done
    done
}

check_size default "reference experiment ($default_epochs epochs)" --epochs "$default_epochs"
check_size full "all 60000 images ($full_epochs epochs)" --train-size all --epochs "$full_epochs"

if [ -n "$thread_counts" ]; then
    thread_counts="2 3 7 16 64"
    isa_thread_counts="1 2 3 7 16 64"
fi
check_size adam "mini-batch Adam (batch 64 of 2000, 784-48-24-10, xent, 3 epochs)" \
    --train-size 2000 --test-size 100 --batch 64 --optimizer adam --lr 0.001 --loss xent \
    --hidden 48,24 --epochs 3
check_size nesterov "momentum and Nesterov (batch 96 of 2000, tanh, cosine, weight decay, 3 epochs)" \
    --train-size 2000 --test-size 100 --batch 96 --momentum 0.9 --nesterov \
    --weight-decay 0.0001 --lr 0.05 --schedule cosine --activation tanh --epochs 3

testlib_finish "determinism: $runs runs saved the one-thread bytes (full batch and mini-batch Adam and Nesterov; kernels$isas)"
