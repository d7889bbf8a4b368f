#!/bin/sh
# Exported weights in NumPy (tests/weights_python.py; with library=torch, as
# tests/weights-torch.sh sets it, through PyTorch's load_state_dict): the
# logits of 300 test images from the .safetensors and the .npz match
# mnist-omp's own within the forward error bound, for float32 ReLU and
# float64 tanh (two hidden layers) networks.  Skipped (77) without a python3
# that has the library.
set -u

library=${library:-numpy}
case $library in
torch) name=PyTorch ;;
*) name=NumPy ;;
esac
. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
testlib_start "weights-$library"

python=
for py in /usr/bin/python3 python3; do
    if "$py" -c "import numpy, $library" >/dev/null 2>&1; then
        python=$py
        break
    fi
done
if [ -z "$python" ]; then
    echo "SKIP: no python3 with $name"
    exit 77
fi

small="--train-size 500 --test-size 20 --epochs 2 -q"
# shellcheck disable=SC2086 # $small is a list of options
{
    expect_status 0 "train f32 784-16-10 relu" -- "$prog" $small --hidden 16 --save "$work/relu32.model"
    expect_status 0 "train f64 784-12-8-10 tanh xent" -- "$prog" $small --hidden 12,8 \
        --activation tanh --loss xent --precision f64 --save "$work/tanh64.model"
}
for net in relu32 tanh64; do
    for format in safetensors npz; do
        expect_status 0 "$net: export to $format" -- \
            "$prog" export --load "$work/$net.model" "$work/$net.$format"
    done
done
mkdir "$work/images"
"$python" "$srcdir/tests/weights_python.py" "$library" "$prog" "$MNIST_OMP_DATA" "$work/images" \
    300 "$work/relu32" "$work/tanh64" || fail "$name disagrees with mnist-omp"

testlib_finish "weights-$library: $name agrees with mnist-omp on both exports"
