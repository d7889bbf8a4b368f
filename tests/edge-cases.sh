#!/bin/sh
# Numeric edge cases and resource bounds, end to end:
#   - divergence stops with status 1, names the epoch, and saves nothing (a
#     new --save or --checkpoint file is not created, an existing one is left
#     as it was);
#   - --lr 0 (the loss stays exactly the same), one training image, one hidden
#     unit, more threads than images, a training set missing half the classes:
#     status 0, finite losses, an accuracy;
#   - batches of one image and a last batch of one, a batch larger than the
#     training set (the same bytes as --batch all), --lr 0 with Adam and AdamW,
#     a deep network one unit wide, --eval-every beyond the run;
#   - hostile data at the command line: a header claiming 2^31 images of
#     65536x65536 pixels, or 2^21 images in a file holding one, and gzip
#     bombs, are refused with status 1 without allocating what they claim.
set -u

. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
testlib_start edge
. "$srcdir/tests/data-helpers.sh"

# finite_losses DESCRIPTION LOG: every loss of a --log file is a finite number.
finite_losses() {
    awk -F, 'NR > 1 && $2 !~ /^[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$/ { print; bad = 1 }
             END { exit bad || NR < 2 }' "$2" >"$work/bad-losses" ||
        fail "$1: a loss is not a finite number: $(head -n 2 "$work/bad-losses")"
}

# trained DESCRIPTION: a run that ended well printed an accuracy and no NaN.
trained() {
    expect_in "$work/out" '^Test Set Accuracy = [0-9.]*% ([0-9]* of [0-9]*)$'
    ! grep -q -i -w -e nan -e inf "$work/out" || fail "$1: NaN or infinity in the output"
}

small="--train-size 100 --test-size 10 --print-every 1"

# ------------------------------------------------------------ divergence
# float32: the loss overflows within a few epochs at this rate.
expect_status 1 "divergence (f32)" -- "$prog" $small --epochs 50 --lr 1e6 \
    --save "$work/new.model" --checkpoint "$work/new.ckpt" --log "$work/diverged.csv"
expect_in "$work/err" '^mnist-omp: training diverged: the loss became [a-zA-Z]* at epoch [0-9][0-9]*; try a smaller learning rate'
epoch=$(sed -n 's/.* at epoch \([0-9]*\);.*/\1/p' "$work/err")
[ ! -e "$work/new.model" ] || fail "divergence: --save created a (non-finite) model file"
[ ! -e "$work/new.ckpt" ] || fail "divergence: --checkpoint created a (non-finite) checkpoint"
leftovers=$(find "$work" -name 'new.*.*' -o -name '.mnist-omp-*')
[ -z "$leftovers" ] || fail "divergence: temporary files left behind: $leftovers"
# The log holds the finite losses before the epoch named.
[ "$(($(wc -l <"$work/diverged.csv") - 1))" -eq "${epoch:-0}" ] ||
    fail "divergence: the log should hold the ${epoch:-?} epochs before divergence"

# float64 needs a larger rate; an existing --save file is left as it was.
expect_status 0 "a model to keep" -- "$prog" $small --epochs 2 --save "$work/kept.model" --quiet
cp "$work/kept.model" "$work/kept.orig" && cp "$work/kept.model" "$work/kept.ckpt"
expect_status 1 "divergence (f64)" -- "$prog" $small --epochs 50 --lr 1e30 --precision f64 \
    --save "$work/kept.model" --checkpoint "$work/kept.ckpt"
expect_in "$work/err" 'diverged: the loss became [a-zA-Z]* at epoch [0-9]'
cmp -s "$work/kept.model" "$work/kept.orig" || fail "divergence overwrote an existing --save file"
cmp -s "$work/kept.ckpt" "$work/kept.orig" || fail "divergence overwrote an existing --checkpoint"

# The last update may overflow the parameters while every loss computed
# (each one before its epoch's update) was finite: that run must fail too,
# naming the epoch, not "succeed" with a non-finite model.
if [ -n "$epoch" ]; then
    expect_status 1 "divergence in the last update" -- "$prog" $small --epochs "$epoch" \
        --lr 1e6 --save "$work/last.model"
    expect_in "$work/err" "diverged: .* in the update of epoch $((epoch - 1));"
    [ ! -e "$work/last.model" ] || fail "divergence in the last update: a model was saved"
else
    fail "divergence (f32): no epoch named"
fi

# ------------------------------------------------------------ degenerate but valid runs
expect_status 0 "--lr 0" -- "$prog" $small --epochs 4 --lr 0 --log "$work/lr0.csv"
finite_losses "--lr 0" "$work/lr0.csv"
[ "$(awk -F, 'NR > 1 { print $2 }' "$work/lr0.csv" | sort -u | wc -l)" -eq 1 ] ||
    fail "--lr 0: the loss changed: $(cut -d, -f2 "$work/lr0.csv" | tr '\n' ' ')"
trained "--lr 0"

expect_status 0 "one training image" -- "$prog" --train-size 1 --test-size 10 --epochs 5 \
    --log "$work/one.csv"
finite_losses "one training image" "$work/one.csv"
trained "one training image"
expect_in "$work/out" '(train 1 of 60000'

expect_status 0 "one hidden unit" -- "$prog" --train-size 200 --test-size 50 --epochs 5 \
    --hidden 1 --log "$work/h1.csv"
finite_losses "one hidden unit" "$work/h1.csv"
trained "one hidden unit"
expect_in "$work/out" '784-1-10 ReLU MLP'

expect_status 0 "1 image, 1 hidden unit, 8 threads, f64" -- "$prog" --train-size 1 \
    --test-size 1 --hidden 1 --threads 8 --precision f64 --epochs 3 --log "$work/tiny.csv"
finite_losses "1 image, 1 hidden unit" "$work/tiny.csv"
trained "1 image, 1 hidden unit"

# Three images cannot hold all ten digits.
expect_status 0 "three training images" -- "$prog" --train-size 3 --test-size 20 --seed 7 \
    --epochs 10 --log "$work/three.csv"
finite_losses "three training images" "$work/three.csv"
trained "three training images"

# A CSV data set whose training half holds only the digits 0-4 (the test
# half has all ten), with the pictures, whose confusion matrix then has
# empty columns.
csv=$work/csv-0-4
mkdir "$csv"
{ csv_header; csv_rows 0 1 2 3 4 0 1 2 3 4 0 1 2 3 4 0 1 2 3 4; } >"$csv/mnist_train.csv"
{ csv_header; csv_rows 0 1 2 3 4 5 6 7 8 9; } >"$csv/mnist_test.csv"
expect_status 0 "digits 0-4 only" -- "$prog" --data "$csv" --train-size all --test-size all \
    --epochs 30 --log "$work/csv.csv" --plots "$work/plots"
finite_losses "digits 0-4 only" "$work/csv.csv"
trained "digits 0-4 only"
expect_in "$work/out" '(train 20 of 20, test 10 of 10'
[ -s "$work/plots/confusion.txt" ] || fail "digits 0-4 only: no confusion matrix"
! grep -q -i nan "$work/plots/confusion.txt" || fail "digits 0-4 only: NaN in the confusion matrix"

# ------------------------------------------------------------ the general trainer's edges
# One image a step; a last batch of one image.
for batch in 1 99; do
    expect_status 0 "--batch $batch" -- "$prog" $small --epochs 2 --batch "$batch" \
        --optimizer adam --lr 0.001 --log "$work/b$batch.csv"
    finite_losses "--batch $batch" "$work/b$batch.csv"
    trained "--batch $batch"
    expect_in "$work/out" ", batches of $batch, Adam "
done
# A batch of at least N is one batch of the subset in its order, nothing
# drawn: the same bytes as --batch all.
expect_status 0 "--batch all" -- "$prog" $small --epochs 3 --batch all --momentum 0.5 \
    --save "$work/all.model" --quiet
expect_status 0 "--batch 1000 of 100" -- "$prog" $small --epochs 3 --batch 1000 --momentum 0.5 \
    --save "$work/big-batch.model"
expect_in "$work/out" ', full batch, SGD (momentum 0.5, weight decay 0)$'
cmp -s "$work/all.model" "$work/big-batch.model" || fail "--batch 1000 of 100 images differs from --batch all"
# --lr 0 leaves Adam's and AdamW's weights (decoupled decay included) alone.
for optimizer in adam adamw; do
    expect_status 0 "--lr 0, $optimizer" -- "$prog" $small --epochs 3 --lr 0 \
        --optimizer "$optimizer" --log "$work/lr0-$optimizer.csv"
    [ "$(awk -F, 'NR > 1 { print $2 }' "$work/lr0-$optimizer.csv" | sort -u | wc -l)" -eq 1 ] ||
        fail "--lr 0, $optimizer: the loss changed"
done
# A deep network of one unit a layer, sigmoid and cross-entropy.
expect_status 0 "784-1-1-1-10 sigmoid xent" -- "$prog" $small --epochs 3 --hidden 1,1,1 \
    --activation sigmoid --loss xent --log "$work/deep.csv"
finite_losses "784-1-1-1-10" "$work/deep.csv"
trained "784-1-1-1-10"
expect_in "$work/out" '^mnist-omp: 784-1-1-1-10 sigmoid MLP, cross-entropy loss, full-batch gradient descent$'
# --eval-every beyond the run: only the last epoch is evaluated.
expect_status 0 "--eval-every 1000" -- "$prog" $small --epochs 3 --eval-every 1000 \
    --log "$work/eval.csv"
[ "$(awk -F, 'NR > 1 && $4 != ""' "$work/eval.csv" | cut -d, -f1)" = 2 ] ||
    fail "--eval-every 1000 over 3 epochs: only epoch 2 should be evaluated"

# ------------------------------------------------------------ resource bounds
# A data directory whose training images are $1 (the labels and the test
# split are valid).
hostile_dir() {
    rm -rf "$work/hostile"
    make_idx_dir "$work/hostile" 1 1
    cat >"$work/hostile/train-images-idx3-ubyte"
}

# Refused, status 1, with the message given; with the address space limited
# to 1 GiB where that is possible (not in a sanitizer build, which reserves
# terabytes up front: configure finds one from CFLAGS too), so that
# allocating what a header claims fails.
if [ "${MNIST_OMP_SANITIZERS:-no}" = yes ]; then
    echo "note: sanitizer build: the resource-bound cases run without their 1 GiB address-space limit"
fi
expect_refused() {
    what=$1 message=$2
    shift 2
    if [ "${MNIST_OMP_SANITIZERS:-no}" = yes ]; then
        expect_status 1 "$what" -- "$prog" "$@"
    else
        expect_status 1 "$what" -- sh -c 'ulimit -v 1048576 && exec "$@"' sh "$prog" "$@"
    fi
    expect_in "$work/err" "$message"
    ! grep -q 'out of memory' "$work/err" || fail "$what: allocated what the header claims"
}

{ idx_images_header 2147483648 65536 65536; } | hostile_dir
expect_refused "2^31 images of 65536x65536" 'train-images-idx3-ubyte: images are 65536x65536, expected 28x28' \
    --data "$work/hostile" --epochs 1

{ idx_images_header 2097152; real_images train 1; } | hostile_dir
expect_refused "2^21 images claimed, 1 held" 'train-images-idx3-ubyte: truncated: expected 2097152 images' \
    --data "$work/hostile" --epochs 1

# gzip bombs: 64 MiB of zeros behind headers declaring one image, then one
# label: reading stops one byte past what the header declares.
{ idx_images_header 1; head -c 67108864 /dev/zero; } | gzip -1 >"$work/bomb.gz"
hostile_dir <"$work/bomb.gz"
expect_refused "gzip bomb (images)" 'train-images-idx3-ubyte: trailing data after the 1 images' \
    --data "$work/hostile" --epochs 1
rm -rf "$work/hostile"
make_idx_dir "$work/hostile" 1 1
{ idx_labels_header 1; head -c 67108864 /dev/zero; } | gzip -1 >"$work/hostile/train-labels-idx1-ubyte"
expect_refused "gzip bomb (labels)" 'train-labels-idx1-ubyte: trailing data after the 1 labels' \
    --data "$work/hostile" --epochs 1

# A model file whose header claims 2^20-2^20-2^20 parameters (terabytes).
huge_model "$work/kept.model" >"$work/huge.model"
expect_refused "model claiming 2^60 parameters" 'huge.model: truncated: .* but a 1048576-1048576-1048576 float32 model file has' \
    --load "$work/huge.model" --epochs 0 --test-size 10

testlib_finish "edge cases: all checks passed"
