#!/bin/sh
# The distributed trainer (./configure --with-mpi): under mpirun, 1 to 4
# ranks of 1 or 2 threads each save a model equal, byte for byte (`cmp`),
# to the one the program saves alone (no mpirun):
#   (a) full batch: the reference experiment, 20 epochs;
#   (b) mini-batch: SGD with momentum, cross-entropy, batch 100 of 2000;
#   (c) a rank that cannot read its data (truncated train-images, given to
#       one rank through an MPMD command line) ends the whole run: a status
#       other than 0 within 60 s (a hang fails), the file named on stderr,
#       no --save output;
#   (d) a run of 2 ranks stopped by SIGTERM leaves a checkpoint that 3
#       ranks resume to the bytes of a straight run of one process.
# Skipped (77) in a build without MPI.  Ranks oversubscribe the cores (4
# ranks on a two-core CI machine) and may run as root (CI's containers).
# Run time: about a minute on two cores.
set -u

. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"

if [ "${MNIST_OMP_MPI:-no}" != yes ]; then
    echo "skipped: this build has no MPI (./configure --with-mpi)"
    exit 77
fi
if [ -z "${MPIRUN:-}" ]; then
    echo "skipped: configure found no mpirun (Debian: apt-get install openmpi-bin)"
    exit 77
fi
testlib_start mpi

# Threads beyond the cores sleep rather than spin, and are not all bound to
# one core each rank (mpirun's default for two ranks or fewer).
OMP_WAIT_POLICY=passive
export OMP_WAIT_POLICY
mpi_flags="--oversubscribe --bind-to none"
[ "$(id -u)" -ne 0 ] || mpi_flags="$mpi_flags --allow-run-as-root"
data=${MNIST_OMP_DATA:-$srcdir/data}

# mpi NP THREADS ARG...: the program on NP ranks of THREADS threads, given
# 60 s (timeout's status, 124, says it hung).
mpi() {
    mpi_ranks=$1 mpi_threads=$2
    shift 2
    timeout -k 10 60 "$MPIRUN" $mpi_flags -x OMP_NUM_THREADS="$mpi_threads" -x OMP_WAIT_POLICY \
        -np "$mpi_ranks" "$prog" "$@"
}

expect_status 0 "mpirun starts the program on 2 ranks" -- mpi 2 1 --version

runs=0
# same_as_alone NAME OPTION...: every rank count (1 to 4) and thread count
# (1, 2) under mpirun saves the model the program saves alone.
same_as_alone() {
    name=$1
    shift
    echo "$name: mpirun -np 1..4, 1 and 2 threads a rank, against one process"
    alone=$work/alone.model
    rm -f "$alone"
    expect_status 0 "$name, alone" -- env OMP_NUM_THREADS=2 "$prog" "$@" --save "$alone"
    [ -s "$alone" ] || { fail "$name: no model saved by the run alone"; return; }
    for ranks in 1 2 3 4; do
        for threads in 1 2; do
            what="$name, -np $ranks, $threads thread(s) a rank"
            rm -f "$work/mpi.model"
            expect_status 0 "$what" -- mpi "$ranks" "$threads" "$@" --save "$work/mpi.model"
            runs=$((runs + 1))
            cmp -s "$alone" "$work/mpi.model" ||
                fail "$what: the saved model differs from the one of the run alone"
        done
    done
}

same_as_alone "(a) full batch, the reference experiment (20 epochs)" --epochs 20 --test-size 100
# Batches of 256 are 16 units, shared by up to 4 ranks; the last of an
# epoch, 208 images, is 2: the other ranks have none in that step.
same_as_alone "(b) mini-batch SGD with momentum, cross-entropy (batch 256 of 2000, 2 epochs)" \
    --train-size 2000 --test-size 100 --batch 256 --epochs 2 --hidden 64 --optimizer sgd \
    --momentum 0.9 --lr 0.1 --loss xent

# (c) A truncated train-images on one rank, the first or the second.
echo "(c) a rank whose train-images is truncated ends the run: status, message, no model, no hang"
bad=$work/bad
mkdir "$bad" || exit 99
gzip -dc "$data/train-images-idx3-ubyte.gz" | head -c 1000000 >"$bad/train-images-idx3-ubyte"
for file in train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    cp "$data/$file.gz" "$bad/" || exit 99
done
for bad_rank in 0 1; do
    if [ "$bad_rank" -eq 0 ]; then first=$bad second=$data; else first=$data second=$bad; fi
    what="(c) bad data on rank $bad_rank of 2"
    rm -f "$work/failed.model"
    timeout -k 10 60 "$MPIRUN" $mpi_flags -x OMP_NUM_THREADS=1 -x OMP_WAIT_POLICY \
        -np 1 "$prog" --data "$first" --epochs 20 --save "$work/failed.model" : \
        -np 1 "$prog" --data "$second" --epochs 20 --save "$work/failed.model" \
        >"$work/out" 2>"$work/err"
    status=$?
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
        fail "$what: the run hung (killed after 60 s)"
    elif [ "$status" -eq 0 ]; then
        fail "$what: exit status 0"
    fi
    grep -q -F "$bad/train-images-idx3-ubyte" "$work/err" ||
        fail "$what: stderr does not name $bad/train-images-idx3-ubyte: $(head -n 3 "$work/err")"
    [ ! -e "$work/failed.model" ] || fail "$what: the model was saved"
done

# (d) SIGTERM to mpirun once the run of 2 ranks has printed a few epochs
# (mpirun gives the ranks a terminal for stdout: a line may start with the
# progress line's carriage return); then 3 ranks resume its checkpoint.
echo "(d) 2 ranks stopped by SIGTERM, resumed by 3: the bytes of a straight run alone"
epochs=1000
ckpt=$work/stopped.ckpt
: >"$work/stopped.out"
"$MPIRUN" $mpi_flags -x OMP_NUM_THREADS=1 -x OMP_WAIT_POLICY -np 2 "$prog" --epochs "$epochs" \
    --test-size 100 --print-every 1 --checkpoint "$ckpt" --save "$work/stopped.model" \
    >"$work/stopped.out" 2>"$work/stopped.err" &
pid=$!
tries=0
while [ "$(grep -c 'Epoch: [0-9]' "$work/stopped.out")" -lt 5 ] && kill -0 "$pid" 2>/dev/null &&
    [ "$tries" -lt 600 ]; do
    sleep 0.05
    tries=$((tries + 1))
done
if kill -TERM "$pid" 2>/dev/null; then
    tries=0
    while kill -0 "$pid" 2>/dev/null && [ "$tries" -lt 600 ]; do
        sleep 0.1
        tries=$((tries + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        fail "(d) mpirun still runs 60 s after SIGTERM"
        kill -KILL "$pid"
    fi
    wait "$pid"
    status=$?
    [ "$status" -ne 0 ] || fail "(d) the run stopped by SIGTERM: exit status 0"
    expect_in "$work/stopped.err" 'terminated (SIGTERM)'
    [ ! -e "$work/stopped.model" ] || fail "(d) the run stopped by SIGTERM saved its model"
else
    wait "$pid"
    echo "(d) the run ended before the signal could be sent: only its resumption is checked"
fi
if [ -s "$ckpt" ]; then
    expect_status 0 "(d) the straight run alone" -- env OMP_NUM_THREADS=2 "$prog" \
        --epochs "$epochs" --test-size 100 --save "$work/straight.model"
    expect_status 0 "(d) -np 3 resumes" -- mpi 3 1 --resume "$ckpt" --epochs "$epochs" \
        --test-size 100 --save "$work/resumed.model"
    cmp -s "$work/straight.model" "$work/resumed.model" ||
        fail "(d) the model resumed by 3 ranks differs from the straight run's"
else
    fail "(d) no checkpoint in $ckpt after SIGTERM ($(head -n 3 "$work/stopped.err"))"
fi

echo "(e) bench under mpirun: ranks x threads, both times, the efficiency"
expect_status 0 "(e) mpirun -np 2 mnist-omp bench" -- \
    mpi 2 1 bench --sizes 600 --batch 256 --precision f32 --epochs 2 --warmup 0
expect_in "$work/out" "2 ranks x 1 thread on "
grep -Eq '^float32 +600 +256 +2 x 1 +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+% +[0-9.]+ MB$' \
    "$work/out" || fail "(e) no row of 600 images on 2 ranks x 1 thread: $(cat "$work/out")"

echo "(f) more ranks than a batch has units: refused, every rank ends"
expect_status 1 "(f) 3 ranks, batches of 100 (one unit)" -- \
    mpi 3 1 --train-size 1000 --batch 100 --epochs 1 --test-size 100 --save "$work/refused.model"
expect_in "$work/err" "a batch of 100 images is cut into 1 unit, fewer than the 3 ranks"
[ ! -e "$work/refused.model" ] || fail "(f) the refused run saved a model"

echo "(h) a training set of fewer units than ranks, evaluation only: refused, once"
expect_status 1 "(h) 2 ranks, a training set of 100 images (one unit), --epochs 0" -- \
    mpi 2 1 --load "$work/alone.model" --epochs 0 --train-size 100 --test-size 100
expect_in "$work/err" "a training set of 100 images is cut into 1 unit, fewer than the 2 ranks"
[ "$(grep -c 'fewer than the 2 ranks' "$work/err")" -eq 1 ] ||
    fail "(h) the refusal is not said once: $(cat "$work/err")"

if [ -s "$ckpt" ]; then
    echo "(i) a checkpoint resumed on other training images: refused once, before --log is touched"
    other=$work/other
    mkdir "$other" || exit 99
    for kind in images-idx3 labels-idx1; do
        cp "$data/t10k-$kind-ubyte.gz" "$other/train-$kind-ubyte.gz" || exit 99
        cp "$data/t10k-$kind-ubyte.gz" "$other/t10k-$kind-ubyte.gz" || exit 99
    done
    echo "the log of another run" >"$work/kept.log"
    expect_status 1 "(i) 2 ranks resume on other images" -- mpi 2 1 --resume "$ckpt" \
        --epochs "$epochs" --test-size 100 --data "$other" --log "$work/kept.log"
    expect_in "$work/err" "the checkpoint was made on other training images"
    [ "$(grep -c 'made on other training images' "$work/err")" -eq 1 ] ||
        fail "(i) the refusal is not said once: $(cat "$work/err")"
    [ "$(cat "$work/kept.log")" = "the log of another run" ] || fail "(i) --log was written"
fi

echo "(g) bench/ranks: 2 ranks x 1 thread against 1 x 2, the same model bytes"
expect_status 0 "(g) bench/ranks, one pair" -- env MPIRUN="$MPIRUN" MPIRUN_FLAGS="$mpi_flags" \
    sh "${top_srcdir:-$srcdir}/bench/ranks" "$prog" --pairs 1 --epochs 2 \
    --options "--train-size 600 --test-size 100 --batch 256 --hidden 16 --loss xent --lr 0.1"
grep -Eq '^ +1 +[0-9.]+ \([0-9.]+\) +[0-9.]+ \([0-9.]+\) +[0-9.]+ +identical$' "$work/out" ||
    fail "(g) no pair of identical models: $(cat "$work/out")"
expect_in "$work/out" "medians: 1 process "

testlib_finish "mpi: $runs runs under mpirun (1-4 ranks, 1-2 threads) saved the bytes of the run alone; a bad rank ends the run; 3 ranks resume 2's checkpoint"
