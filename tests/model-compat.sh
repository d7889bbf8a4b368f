#!/bin/sh
# Model files across versions, through the command line: the committed
# version-1 model and version-2 checkpoint (tests/data/model-files, written
# by the last build that wrote those versions) still load, predict and
# resume, the resumed checkpoint ending with the very parameters the old
# build's straight run saved; and version-3 files of a deep mini-batch Adam
# network predict and resume to the bytes of a straight run.
set -u

. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
fixtures=$srcdir/tests/data/model-files
digit=$srcdir/tests/fuzz/image/digit-28x28.pgm
testlib_start model-compat

# params FILE OFFSET COUNT: the COUNT parameter bytes at OFFSET of FILE.
params() {
    tail -c +$(($2 + 1)) "$1" | head -c "$3"
}

# Version 1: evaluated, and classified by predict.
expect_status 0 "--load a version-1 model" -- \
    "$prog" --load "$fixtures/v1-784-2-10-f32.model" --epochs 0 --test-size 10 -q
expect_status 0 "predict with a version-1 model" -- \
    "$prog" predict --load "$fixtures/v1-784-2-10-f32.model" "$digit"
expect_in "$work/out" "digit-28x28.pgm: [0-9] "

# Version 2: resumed from epoch 1 to 2, it ends as the old build's straight
# 2-epoch run did.  784-3-10 float64 has 2395 parameters (19160 bytes), at
# offset 72 in the old version-1 model and 148 + 3*4 in a version-3 one.
expect_status 0 "--resume a version-2 checkpoint" -- \
    "$prog" --resume "$fixtures/v2-784-3-10-f64.ckpt" --epochs 2 --save "$work/resumed.model" -q
if [ -f "$work/resumed.model" ]; then
    params "$fixtures/v1-784-3-10-f64-2-epochs.model" 72 19160 >"$work/old.params"
    params "$work/resumed.model" 160 19160 >"$work/new.params"
    cmp -s "$work/old.params" "$work/new.params" ||
        fail "the resumed version-2 checkpoint's parameters differ from the old build's straight run"
    [ "$(wc -c <"$work/resumed.model")" -eq $((160 + 19160 + 4)) ] ||
        fail "the resumed model is not a version-3 784-3-10 float64 model file"
fi

# Resumed, a version-2 checkpoint saves a version-3 one (its stream
# re-derived), which resumes to the run's bytes: 1 epoch, then 2 and 3, as
# 1 then 3.
expect_status 0 "a version-2 checkpoint resumed to a version-3 one" -- \
    "$prog" --resume "$fixtures/v2-784-3-10-f64.ckpt" --epochs 2 --checkpoint "$work/two.ckpt" -q
expect_status 0 "that one resumed to 3 epochs" -- \
    "$prog" --resume "$work/two.ckpt" --epochs 3 --save "$work/three-in-two.model" -q
expect_status 0 "the version-2 checkpoint resumed to 3 epochs" -- \
    "$prog" --resume "$fixtures/v2-784-3-10-f64.ckpt" --epochs 3 --save "$work/three.model" -q
cmp -s "$work/three.model" "$work/three-in-two.model" ||
    fail "a version-2 checkpoint resumed through a version-3 one ends elsewhere"

# Version 3: a deep mini-batch Adam network predicts, and a 1-epoch run's
# checkpoint resumed to 3 epochs saves the same bytes as a straight 3-epoch
# run (a constant schedule, which does not depend on the planned epochs).
deep="--hidden 8,5 --activation tanh --loss xent --optimizer adam --lr 0.01 --batch 32
      --train-size 100 --test-size 10 --seed 3 -q"
# shellcheck disable=SC2086 # $deep is a list of options
expect_status 0 "a straight 3-epoch run" -- "$prog" $deep --epochs 3 --save "$work/straight.model"
# shellcheck disable=SC2086
expect_status 0 "a 1-epoch run" -- "$prog" $deep --epochs 1 --checkpoint "$work/one.ckpt"
expect_status 0 "--resume it to 3 epochs" -- \
    "$prog" --resume "$work/one.ckpt" --epochs 3 --save "$work/resumed-deep.model" -q
cmp -s "$work/straight.model" "$work/resumed-deep.model" ||
    fail "the resumed mini-batch Adam run saved other bytes than the straight run"
expect_status 0 "predict with a deep network" -- \
    "$prog" predict --load "$work/straight.model" "$digit"
expect_in "$work/out" "digit-28x28.pgm: [0-9] "

testlib_finish "model-compat: versions 1 and 2 load, predict and resume; version 3 resumes bitwise"
