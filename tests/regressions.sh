#!/bin/sh
# The inputs that once crashed a fuzz target, tests/regressions/NAME/, and
# the malformed seeds of the fuzz targets, tests/fuzz/NAME/bad-*, fed to the
# command line the way a user would give them: IDX files (as the training
# images, then as the training labels), CSV files (as mnist_train.csv), model
# files (--load and --resume), safetensors files (export --load and --load)
# and pictures (predict).  Each must be refused
# cleanly: status 1 and a message naming the file.  A regression file whose
# name starts with "valid-" is a sound input and must be accepted (status 0).
# (The fuzz targets themselves replay all these files in
# tests/fuzz/replay_NAME.)
set -u

. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
regressions=$srcdir/tests/regressions
seeds=$srcdir/tests/fuzz
testlib_start regressions
checked=0
. "$srcdir/tests/data-helpers.sh"


# check FILE NAMED_AS -- COMMAND...: runs the command; status 1 and an error
# naming NAMED_AS, or status 0 for a valid-* FILE; never a sanitizer report
# (in a --enable-sanitizers build).
check() {
    file=$1 named=$2
    shift 3
    "$@" >"$work/out" 2>"$work/err"
    got=$?
    checked=$((checked + 1))
    if report=$(sanitizer_report "$work/err"); then
        fail "$file: sanitizer report: $report"
        return
    fi
    case $(basename "$file") in
    valid-*)
        [ "$got" -eq 0 ] || fail "$file: exit status $got, expected 0: $(head -n 2 "$work/err")"
        return ;;
    esac
    if [ "$got" -ne 1 ]; then
        fail "$file: exit status $got, expected 1: $(head -n 3 "$work/err")"
    elif ! grep -q "^mnist-omp: .*$named" "$work/err"; then
        fail "$file: the message does not name $named: $(head -n 2 "$work/err")"
    fi
}

# Every kind of input has malformed seeds: a missing or misplaced seed
# directory must not pass as "nothing to check".
for kind in idx csv model image safetensors; do
    ls "$seeds/$kind"/bad-* >/dev/null 2>&1 || fail "no malformed seeds in $seeds/$kind"
done

# A valid data directory to put each file into, and a model for predict.
make_idx_dir "$work/good" 20 10
"$prog" --data "$work/good" --train-size all --test-size all --epochs 1 --hidden 2 \
    --save "$work/good.model" --quiet >/dev/null 2>"$work/err" ||
    { echo "cannot make a model: $(cat "$work/err")" >&2; exit 99; }

# The other file of the pair holds as many records as the one tested
# declares, so that the counts agree and every check of the file is reached.
for file in "$regressions"/idx/* "$seeds"/idx/bad-*; do
    [ -f "$file" ] || continue
    rm -rf "$work/d" && cp -R "$work/good" "$work/d"
    cp "$file" "$work/d/train-images-idx3-ubyte"
    count=$(idx_declared_count "$file" 2051)
    { idx_labels_header "$count"; real_labels train "$count"; } >"$work/d/train-labels-idx1-ubyte"
    check "$file" train-images-idx3-ubyte -- "$prog" --data "$work/d" --epochs 1 \
        --train-size all --test-size 10
    rm -rf "$work/d" && cp -R "$work/good" "$work/d"
    cp "$file" "$work/d/train-labels-idx1-ubyte"
    count=$(idx_declared_count "$file" 2049)
    { idx_images_header "$count"; real_images train "$count"; } >"$work/d/train-images-idx3-ubyte"
    check "$file" train-labels-idx1-ubyte -- "$prog" --data "$work/d" --epochs 1 \
        --train-size all --test-size 10
done

for file in "$regressions"/csv/* "$seeds"/csv/bad-*; do
    [ -f "$file" ] || continue
    rm -rf "$work/d" && mkdir "$work/d"
    cp "$file" "$work/d/mnist_train.csv"
    { csv_header; csv_rows 1 2 3; } >"$work/d/mnist_test.csv"
    check "$file" mnist_train.csv -- "$prog" --data "$work/d" --epochs 1 --test-size 3
done

for file in "$regressions"/model/* "$seeds"/model/bad-*; do
    [ -f "$file" ] || continue
    cp "$file" "$work/file.model"
    check "$file" file.model -- "$prog" --data "$work/good" --test-size 10 --epochs 0 \
        --load "$work/file.model"
    case $(basename "$file") in valid-*) continue ;; esac  # a model need not be a checkpoint
    check "$file" file.model -- "$prog" --data "$work/good" --epochs 2 --resume "$work/file.model"
done

for file in "$regressions"/safetensors/* "$seeds"/safetensors/bad-*; do
    [ -f "$file" ] || continue
    cp "$file" "$work/file.safetensors"
    check "$file" file.safetensors -- "$prog" export --load "$work/file.safetensors" \
        --activation tanh "$work/exported.model"
    check "$file" file.safetensors -- "$prog" --data "$work/good" --test-size 10 --epochs 0 \
        --load "$work/file.safetensors"
done

for file in "$regressions"/image/* "$seeds"/image/bad-*; do
    [ -f "$file" ] || continue
    cp "$file" "$work/file.image"
    check "$file" file.image -- "$prog" predict --load "$work/good.model" "$work/file.image"
done

testlib_finish "regressions: $checked runs on regression files and malformed seeds, all as expected"
