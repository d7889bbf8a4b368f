#!/bin/sh
# `make check-valgrind`: mnist-omp under valgrind's memcheck, end to end on
# small data (train, save, load, resume, pictures, predict, bench, the CSV
# and gzip paths) and on every kind of malformed input (IDX, gzip, CSV,
# model files, pictures, paths that are directories or missing), then the
# fuzz targets' replays of their seeds and regression files.
#
# Every run must end with the expected status, no memcheck error and no
# definitely lost block (--errors-for-leak-kinds=definite): "possibly lost"
# and "still reachable" blocks are not errors, since libgomp keeps its
# thread pool (stacks and thread-local data) alive until exit, which memcheck
# reports as possibly lost.  OMP_NUM_THREADS=2 keeps runs short and still
# exercises the threaded paths.  tests/valgrind.supp suppresses what the
# libraries we use (libgomp, zlib, libpng) are known to trigger; it starts
# empty: add an entry only for a report inside such a library, with a
# comment saying why.
set -u

. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
builddir=${top_builddir:-.}
valgrind=${VALGRIND:-valgrind}
testlib_start valgrind
runs=0
. "$srcdir/tests/data-helpers.sh"

OMP_NUM_THREADS=2
export OMP_NUM_THREADS

vg_status=42
# Each process's report goes to its own file (%p), since valgrind follows no
# children here but a report must not mix with the program's own stderr.
memcheck() {
    rm -f "$work"/vg.*
    "$valgrind" --tool=memcheck --error-exitcode=$vg_status --leak-check=full \
        --errors-for-leak-kinds=definite --show-leak-kinds=definite --track-origins=yes \
        --suppressions="$srcdir/tests/valgrind.supp" --log-file="$work/vg.%p" "$@"
}


# run STATUS DESCRIPTION -- COMMAND...: the command under memcheck, output in
# $work/out and $work/err.  STATUS 1 also requires a "mnist-omp: " message.
run() {
    want=$1 what=$2
    shift 3
    memcheck "$@" >"$work/out" 2>"$work/err"
    got=$?
    runs=$((runs + 1))
    if [ "$got" -eq "$vg_status" ]; then
        fail "$what: memcheck found errors:"
        cat "$work"/vg.* >&2
    elif [ "$got" -ne "$want" ]; then
        fail "$what: exit status $got, expected $want: $(head -n 3 "$work/err")"
    elif [ "$want" -eq 1 ] && ! grep -q '^mnist-omp: ' "$work/err"; then
        fail "$what: no error message: $(head -n 3 "$work/err")"
    else
        echo "ok $runs - $what"
    fi
}

# mnist-omp on a data directory that is valid but for one file.
broken_dir() {
    rm -rf "$work/bad"
    cp -R "$work/small" "$work/bad"
}

# corrupt FILE OFFSET: overwrites one byte with 0xff.
corrupt() {
    printf '\377' | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

echo "valgrind: $("$valgrind" --version), OMP_NUM_THREADS=$OMP_NUM_THREADS"
make_idx_dir "$work/small" 300 100 || exit 99
small="--data $work/small --train-size 200 --test-size 50"

# ------------------------------------------------------------ end to end
run 0 "train, save, checkpoint, log" -- "$prog" $small --epochs 3 --save "$work/m.model" \
    --checkpoint "$work/c.ckpt" --log "$work/log.csv"
run 0 "load and evaluate" -- "$prog" $small --epochs 0 --load "$work/m.model"
run 0 "resume" -- "$prog" $small --epochs 5 --resume "$work/c.ckpt" --quiet
run 0 "float64, reference engine" -- "$prog" $small --epochs 2 --precision f64 \
    --engine reference
run 0 "plots and text art" -- "$prog" $small --epochs 2 --plots "$work/plots" --show 2
run 0 "the shipped data (gzip), one thread" -- "$prog" --train-size 200 --test-size 50 \
    --epochs 2 --threads 1
real_pgm >"$work/digit.pgm"
gzip -c "$work/digit.pgm" >"$work/digit.pgm.gz"
run 0 "predict" -- "$prog" predict --load "$work/m.model" "$work/digit.pgm" \
    "$work/digit.pgm.gz"
run 0 "export to safetensors" -- "$prog" export --load "$work/m.model" "$work/m.safetensors"
run 0 "export to .npz" -- "$prog" export --load "$work/m.model" "$work/m.npz"
run 0 "predict with safetensors" -- "$prog" predict --load "$work/m.safetensors" --logits \
    "$work/digit.pgm"
run 0 "train on from safetensors" -- "$prog" $small --epochs 1 --load "$work/m.safetensors"
run 0 "bench" -- "$prog" bench --data "$work/small" --sizes 100 --threads 1,2 \
    --precision f32,f64 --epochs 1 --warmup 0
mkdir "$work/csv"
{ csv_header; csv_rows 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4; } >"$work/csv/mnist_train.csv"
csv_rows 5 6 7 8 9 | gzip >"$work/csv/mnist_test.csv"
run 0 "CSV data (test split gzip, no header)" -- "$prog" --data "$work/csv" --train-size all \
    --test-size all --epochs 3 --hidden 4

# ------------------------------------------------------------ malformed IDX
# The *_case functions take the malformed file from $work/input (not from
# a pipe: a function at the end of a pipeline runs in a subshell, whose
# failures would be lost).
idx_case() {
    name=$1 what=$2
    broken_dir
    cp "$work/input" "$work/bad/$name"
    run 1 "IDX $name: $what" -- "$prog" --data "$work/bad" --train-size 10 --test-size 10 \
        --epochs 1
}
images=train-images-idx3-ubyte labels=train-labels-idx1-ubyte
cat "$work/small/$labels" >"$work/input"
idx_case "$images" "wrong magic (a label file)"
: >"$work/input"
idx_case "$images" "empty file"
idx_images_header 300 | head -c 10 >"$work/input"
idx_case "$images" "truncated header"
{ idx_images_header 300; real_images train 20; } >"$work/input"
idx_case "$images" "truncated records"
{ idx_images_header 300 27 29; real_images train 300; } >"$work/input"
idx_case "$images" "27x29 images"
{ idx_images_header 2147483648 65536 65536; } >"$work/input"
idx_case "$images" "2^31 images of 65536x65536"
{ idx_images_header 0; } >"$work/input"
idx_case "$images" "no images"
{ cat "$work/small/$images"; bytes 0; } >"$work/input"
idx_case "$images" "trailing byte"
{ idx_labels_header 300; real_labels train 299; bytes 10; } >"$work/input"
idx_case "$labels" "label 10"
{ idx_labels_header 299; real_labels train 299; } >"$work/input"
idx_case "$labels" "count mismatch"
gzip -c "$work/small/$images" >"$work/images.gz"
corrupt "$work/images.gz" 2000
cp "$work/images.gz" "$work/input"
idx_case "$images" "corrupt gzip"
gzip -c "$work/small/$images" | head -c 3000 >"$work/input"
idx_case "$images" "truncated gzip"
{ idx_labels_header 300; head -c 4194304 /dev/zero; } | gzip -1 >"$work/input"
idx_case "$labels" "gzip bomb (4 MiB behind 300 labels)"
broken_dir
rm "$work/bad/$images" && mkdir "$work/bad/$images"
run 1 "IDX images path is a directory" -- "$prog" --data "$work/bad" --epochs 1
run 1 "--data is a file" -- "$prog" --data "$work/small/$images" --epochs 1
run 1 "--data does not exist" -- "$prog" --data "$work/nowhere" --epochs 1

# ------------------------------------------------------------ malformed CSV
csv_case() {
    what=$1
    rm -rf "$work/badcsv" && mkdir "$work/badcsv"
    cp "$work/input" "$work/badcsv/mnist_train.csv"
    cp "$work/csv/mnist_test.csv" "$work/badcsv/"
    run 1 "CSV: $what" -- "$prog" --data "$work/badcsv" --train-size 1 --test-size 1 --epochs 1
}
row=$(csv_rows 3)
: >"$work/input"
csv_case "empty file"
csv_header >"$work/input"
csv_case "header only"
echo "${row%,*}" >"$work/input"
csv_case "too few fields"
echo "$row,0" >"$work/input"
csv_case "too many fields"
echo "1${row}" >"$work/input"
csv_case "label 13"
echo "${row%,*},256" >"$work/input"
csv_case "pixel 256"
echo "${row%,*},-1" >"$work/input"
csv_case "negative pixel"
echo "${row%,*},x" >"$work/input"
csv_case "pixel not a number"
printf '%s\n\n%s\n' "$row" "$row" >"$work/input"
csv_case "blank line"
{ csv_header; csv_rows 1 2 3 4 5 6 7 8; } | gzip | head -c 1000 >"$work/input"
csv_case "truncated gzip"

# ------------------------------------------------------------ malformed model files
model_case() {
    what=$1
    shift
    cp "$work/input" "$work/bad.model"
    run 1 "model: $what" -- "$prog" $small --epochs 0 --load "$work/bad.model" "$@"
}
: >"$work/input"
model_case "empty"
echo "not a model" >"$work/input"
model_case "garbage"
head -c 50 "$work/m.model" >"$work/input"
model_case "truncated header"
head -c 2000 "$work/m.model" >"$work/input"
model_case "truncated parameters"
{ cat "$work/m.model"; bytes 0; } >"$work/input"
model_case "trailing byte"
cp "$work/m.model" "$work/crc.model" && corrupt "$work/crc.model" 500
cp "$work/crc.model" "$work/input"
model_case "checksum mismatch"
{ head -c 8 "$work/m.model"; bytes 2 0 0 0; tail -c +13 "$work/m.model"; } >"$work/input"
model_case "version 2"
huge_model "$work/m.model" >"$work/input"
model_case "2^20-2^20-2^20 layers"
run 1 "model: --resume a model file" -- "$prog" $small --epochs 5 --resume "$work/m.model"
run 1 "model: a directory" -- "$prog" $small --epochs 0 --load "$work"
run 1 "model: missing" -- "$prog" $small --epochs 0 --load "$work/none.model"
run 2 "model: --hidden differs" -- "$prog" $small --epochs 1 --load "$work/m.model" --hidden 5
run 1 "predict: bad model" -- "$prog" predict --load "$work/crc.model" "$work/digit.pgm"

# ------------------------------------------------------------ malformed pictures
image_case() {
    what=$1
    cp "$work/input" "$work/bad.image"
    run 1 "picture: $what" -- "$prog" predict --load "$work/m.model" "$work/bad.image"
}
png=$work/plots/samples.png
[ -f "$png" ] || png=$work/plots/samples.pgm  # built without libpng
: >"$work/input"
image_case "empty"
echo "hello" >"$work/input"
image_case "not a picture"
printf 'P6\n1 1\n255\n\0\0\0' >"$work/input"
image_case "P6 (color)"
printf 'P2\n28 28\n0\n' >"$work/input"
image_case "maxval 0"
printf 'P5\n28 28\n255\n\1\2\3' >"$work/input"
image_case "truncated P5"
printf 'P2\n28 28\n255\n1 2 x' >"$work/input"
image_case "P2 junk"
printf 'P5\n16384 16384\n255\n' >"$work/input"
image_case "16384x16384 P5 with no data"
printf 'P5\n3 3\n255\n123456789' >"$work/input"
image_case "3x3 (not 28x28)"
head -c 100 "$png" >"$work/input"
image_case "truncated PNG/PGM"
cp "$png" "$work/crc.png" && corrupt "$work/crc.png" 40
cp "$work/crc.png" "$work/input"
image_case "corrupt PNG/PGM"
gzip -c "$work/digit.pgm" | head -c 200 >"$work/input"
image_case "truncated gzip"
run 1 "picture: a directory" -- "$prog" predict --load "$work/m.model" "$work"
run 1 "picture: missing" -- "$prog" predict --load "$work/m.model" "$work/none.pgm"

# ------------------------------------------------------------ fuzz seeds and regressions
for name in idx csv model image safetensors; do
    replay=$builddir/tests/fuzz/replay_$name
    if [ ! -x "$replay" ]; then
        fail "$replay is missing (it is built by make check-valgrind)"
        continue
    fi
    run 0 "fuzz target $name on its seeds and regressions" -- "$replay"
done

testlib_finish "check-valgrind: $runs runs under memcheck, no error, no definite leak"
