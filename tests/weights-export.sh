#!/bin/sh
# mnist-omp export and --load of safetensors, with no Python: model files of
# both precisions, one and two hidden layers, ReLU and tanh, go to
# safetensors and back to the very same bytes, and through either file
# predict, train on and export .npz alike; the .npz is a well-formed zip of
# .npy files; and safetensors files crafted here byte by byte, each with one
# fault, are refused with a message naming the file and the fault.
set -u

. "${top_srcdir:-$(dirname "$0")/..}/tests/testlib.sh"
digit=$srcdir/tests/fuzz/image/digit-28x28.pgm
testlib_start weights-export

small="--train-size 100 --test-size 20 --epochs 1 -q"
# shellcheck disable=SC2086 # $small is a list of options
{
    expect_status 0 "train f32 784-8-10 relu" -- "$prog" $small --hidden 8 --save "$work/relu.model"
    expect_status 0 "train f64 784-8-5-10 tanh xent adam" -- "$prog" $small --hidden 8,5 \
        --activation tanh --loss xent --optimizer adam --lr 0.01 --batch 20 --precision f64 \
        --save "$work/tanh64.model"
    expect_status 0 "train f32 784-6-4-10 tanh, step schedule" -- "$prog" $small --hidden 6,4 \
        --activation tanh --schedule step --step-epochs 1 --step-gamma 0.5 --seed -7 \
        --save "$work/tanh32.model"
}
for net in relu tanh64 tanh32; do
    m=$work/$net
    expect_status 0 "$net: export to safetensors" -- \
        "$prog" export --load "$m.model" "$m.safetensors"
    expect_status 0 "$net: safetensors back to a model file" -- \
        "$prog" export --load "$m.safetensors" "$m.back.model"
    cmp -s "$m.model" "$m.back.model" ||
        fail "$net: model -> safetensors -> model is not the same file"
    expect_status 0 "$net: safetensors to safetensors" -- \
        "$prog" export --load "$m.safetensors" "$m.again.safetensors"
    cmp -s "$m.safetensors" "$m.again.safetensors" ||
        fail "$net: safetensors -> safetensors is not the same file"
    expect_status 0 "$net: export to .npz" -- "$prog" export --load "$m.model" "$m.npz"
    expect_status 0 "$net: safetensors to .npz" -- \
        "$prog" export --load "$m.safetensors" "$m.from-st.npz"
    cmp -s "$m.npz" "$m.from-st.npz" || fail "$net: the .npz depends on where it came from"
    for from in model safetensors; do
        expect_status 0 "$net: predict with the $from" -- \
            "$prog" predict --load "$m.$from" --logits "$digit"
        mv "$work/out" "$m.$from.predicted"
        # shellcheck disable=SC2086
        expect_status 0 "$net: --load the $from and train on" -- \
            "$prog" --load "$m.$from" --train-size 100 --test-size 20 --epochs 1 -q \
            --save "$m.$from.trained"
    done
    cmp -s "$m.model.predicted" "$m.safetensors.predicted" ||
        fail "$net: predict gives other logits with the safetensors file"
    cmp -s "$m.model.trained" "$m.safetensors.trained" ||
        fail "$net: training on from the safetensors file ends elsewhere"
done

# Outputs follow the rule of every output (atomic_file.h).
mkdir "$work/dir.npz" "$work/dir.safetensors"
for format in npz safetensors; do
    expect_status 1 "export to a directory named .$format" -- \
        "$prog" export --load "$work/relu.model" "$work/dir.$format"
    expect_in "$work/err" "dir.$format"
done

# The zip structure, read here from the bytes: 4 members (784-8-10) in
# local headers, a central directory and its end record; and by Python's
# zipfile, when there is a python3, which also checks every CRC-32.
bytes() { od -An -tx1 -v "$1" | tr -d ' \n'; }
npz=$(bytes "$work/relu.npz")
case $npz in
    504b0304*) ;;
    *) fail ".npz: no local file header at its start" ;;
esac
case $npz in
    *504b0506000000000400040*) ;;
    *) fail ".npz: no end record of a 4-member archive" ;;
esac
[ "$(grep -c -a 'NUMPY' "$work/relu.npz")" -ge 1 ] || fail ".npz: no .npy member"
for py in /usr/bin/python3 python3; do
    command -v "$py" >/dev/null 2>&1 || continue
    expect_status 0 "python's zipfile reads the .npz" -- "$py" -c '
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
names = [i.filename for i in z.infolist()]
assert names == ["0.weight.npy", "0.bias.npy", "2.weight.npy", "2.bias.npy"], names
assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
assert z.read("0.weight.npy").startswith(b"\x93NUMPY\x01\x00")
' "$work/relu.npz"
    break
done

# ---------------------------------------------------------------- crafted files

# le8 N: N as 8 little-endian bytes (N < 65536).
le8() {
    printf "\\$(printf %03o $(($1 % 256)))\\$(printf %03o $(($1 / 256)))\\000\\000\\000\\000\\000\\000"
}
# craft NAME HEADER DATA: $work/NAME.safetensors with that JSON header and
# data (a printf format of octal escapes).
craft() {
    { le8 "$(printf %s "$2" | wc -c)"; printf %s "$2"; printf "$3"; } >"$work/$1.safetensors"
}
one='\000\000\200\077'  # 1.0f
nan='\000\000\300\177'
inf='\000\000\200\177'
w='"0.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}'
b='"0.bias":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}'
hidden_w='"0.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}'
hidden_b='"0.bias":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}'
out_w='"2.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[24,32]}'
out_b='"2.bias":{"dtype":"F32","shape":[1],"data_offsets":[32,36]}'
nine="$one$one$one$one$one$one$one$one$one"

# A network of another program: no metadata.  Without hidden layers it
# needs no --activation; with them it does, and once exported here its
# metadata says it.
craft linear "{$w,$b}" "$one$one$one"
expect_status 0 "a linear network without metadata" -- \
    "$prog" export --load "$work/linear.safetensors" "$work/linear.model"
craft foreign "{$hidden_w,$hidden_b,$out_w,$out_b}" "$nine"
expect_status 1 "a hidden layer without metadata or --activation" -- \
    "$prog" export --load "$work/foreign.safetensors" "$work/foreign.model"
expect_in "$work/err" "foreign.safetensors: the file does not say the hidden layers' activation: give --activation"
expect_status 0 "a hidden layer without metadata, --activation tanh" -- \
    "$prog" export --load "$work/foreign.safetensors" --activation tanh "$work/foreign.model"
expect_status 0 "... exported with its metadata" -- \
    "$prog" export --load "$work/foreign.model" "$work/ours.safetensors"
expect_status 0 "... which says the activation" -- \
    "$prog" export --load "$work/ours.safetensors" "$work/ours.model"
cmp -s "$work/foreign.model" "$work/ours.model" || fail "a foreign network's round trip differs"
expect_status 1 "--activation against the metadata" -- \
    "$prog" export --load "$work/ours.safetensors" --activation relu "$work/x.model"
expect_in "$work/err" "ours.safetensors: the file's activation is tanh, not relu as --activation says"
expect_status 1 "training: --activation against the file" -- \
    "$prog" --load "$work/tanh64.safetensors" --activation relu --epochs 0 -q
expect_in "$work/err" "tanh64.safetensors: the file's activation is tanh, not relu as --activation says"

# refuse NAME PATTERN: loading $work/NAME.safetensors fails (status 1, no
# output file) with "PATH: ...PATTERN".
refused=0
refuse() {
    refused=$((refused + 1))
    rm -f "$work/refused.model"
    expect_status 1 "$1" -- "$prog" export --load "$work/$1.safetensors" "$work/refused.model"
    expect_in "$work/err" "$work/$1.safetensors: .*$2"
    [ ! -e "$work/refused.model" ] || fail "$1: an output was written"
}
craft bf16 "{${w%F32*}BF16${w#*F32},$b}" "$one$one$one"
refuse bf16 "tensor 0.weight has dtype BF16; this program reads F32 and F64"
craft mixed "{${w%F32*}F64${w#*F32},$b}" "$one$one$one"
refuse mixed "tensors of both F32 and F64: a network has one dtype"
craft no-bias "{$w}" "$one$one"
refuse no-bias "there is no tensor 0.bias"
craft no-layer "{$hidden_w,$hidden_b,$out_b}" "$nine"
refuse no-layer "there is no tensor 2.weight"
craft extra "{$w,$b,\"head.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}" \
    "$one$one$one$one"
refuse extra "unexpected tensor \"head.weight\""
craft odd-index "{$w,$b,\"1.weight\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[12,16]}}" \
    "$one$one$one$one"
refuse odd-index "unexpected tensor \"1.weight\""
craft no-tensors '{"__metadata__":{}}' ""
refuse no-tensors "the file holds no tensors"
craft no-chain "{$hidden_w,$hidden_b,${out_w%%\[1,2\]*}[1,3]${out_w#*\[1,2\]},$out_b}" "$nine$one$one"
refuse no-chain "the shapes do not chain: 2.weight takes 3 inputs, but the layer before gives 2"
craft bias-chain "{$w,${b%%\[1\]*}[2]${b#*\[1\]}}" "$one$one$one$one"
refuse bias-chain "the shapes do not chain: 0.bias has 2 elements for the 1 outputs of 0.weight"
craft flat "{${w%%\[1,2\]*}[2]${w#*\[1,2\]},$b}" "$one$one$one"
refuse flat "tensor 0.weight has 1 dimensions, not 2"
craft zero-width "{${w%%\[1,2\]*}[1,0]${w#*\[1,2\]},$b}" "$one"
refuse zero-width "tensor 0.weight's shape has a dimension that is not a width"
{ le8 1000; printf '{}'; } >"$work/long-header.safetensors"
refuse long-header "the header is 1000 bytes long, longer than the 2 bytes of the file after its length"
printf 'abc' >"$work/short.safetensors"
refuse short "3 bytes, too short for a safetensors file"
craft past-end "{$w,${b%%\[8,12\]*}[8,12]${b#*\[8,12\]}}" "$one$one"
refuse past-end "tensor 0.bias's data_offsets \[8, 12\] reach past the 8 bytes of data"
craft overlap "{$w,${b%%\[8,12\]*}[4,8]${b#*\[8,12\]}}" "$one$one$one"
refuse overlap "data overlap another tensor's"
craft gap "{${w%%\[0,8\]*}[4,12]${w#*\[0,8\]},${b%%\[8,12\]*}[12,16]${b#*\[8,12\]}}" \
    "$one$one$one$one"
refuse gap "bytes 0 to 4 of the data belong to no tensor"
craft trailing "{$w,$b}" "$one$one$one$one"
refuse trailing "bytes 12 to 16 of the data belong to no tensor"
craft backwards "{${w%%\[0,8\]*}[8,0]${w#*\[0,8\]},$b}" "$one$one$one"
refuse backwards "tensor 0.weight's data_offsets are not \[begin, end\]"
craft not-json "{$w,$b" "$one$one$one"
refuse not-json "the header is not JSON: "
craft array '[1,2]' ""
refuse array "the header is not a JSON object"
craft duplicate "{$w,$b,$b}" "$one$one$one"
refuse duplicate "the header is not JSON: duplicate object key"
craft no-dtype '{"0.weight":{"shape":[1,2],"data_offsets":[0,8]},'"$b}" "$one$one$one"
refuse no-dtype "tensor 0.weight needs a string dtype, a shape array and a data_offsets array"
craft nan "{$w,$b}" "$one$nan$one"
refuse nan "tensor 0.weight's element 1 is -*nan: every parameter must be finite"
craft inf "{$w,$b}" "$one$one$inf"
refuse inf "tensor 0.bias's element 0 is inf: every parameter must be finite"
craft metadata-not-strings "{\"__metadata__\":{\"epochs\":3},$w,$b}" "$one$one$one"
refuse metadata-not-strings "__metadata__ \"epochs\" is not a string"
craft metadata-partial "{\"__metadata__\":{\"format\":\"mnist-omp\",\"activation\":\"relu\",\"loss\":\"mse\",\"network\":\"2-1\"},$w,$b}" "$one$one$one"
refuse metadata-partial "the mnist-omp metadata has no string \"epochs_done\""
craft metadata-network "{\"__metadata__\":{\"format\":\"mnist-omp\",\"activation\":\"relu\",\"loss\":\"mse\",\"network\":\"2-2\"},$w,$b}" "$one$one$one"
refuse metadata-network "the metadata says network 2-2, but the tensors make 2-1"
# Our own metadata with one bad value (of the same length, which keeps the
# header's), in the f32 ReLU export.
sed 's/"momentum":"0"/"momentum":"2"/' "$work/relu.safetensors" >"$work/momentum.safetensors"
refuse momentum "momentum 2 is invalid: it must lie in \[0, 1)"
sed 's/"optimizer":"sgd"/"optimizer":"sgx"/' "$work/relu.safetensors" >"$work/optimizer.safetensors"
refuse optimizer "metadata \"optimizer\" is \"sgx\", not a valid value"

# The other loaders refuse the same way.
expect_status 1 "predict with a bad safetensors file" -- \
    "$prog" predict --load "$work/nan.safetensors" "$digit"
expect_in "$work/err" "nan.safetensors: tensor 0.weight's element 1"
expect_status 1 "--load of a bad safetensors file" -- \
    "$prog" --load "$work/overlap.safetensors" --epochs 0 -q
expect_in "$work/err" "overlap.safetensors: tensor 0.bias's data overlap"

testlib_finish "weights-export: safetensors round trips bitwise, .npz is a zip of .npy, $refused crafted faults refused"
