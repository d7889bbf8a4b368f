# Shell functions that write small MNIST data sets and malformed files, for
# tests/edge-cases.sh, tests/regressions.sh and tests/valgrind.sh (sourced,
# POSIX sh).  Real images come from the shipped data, $MNIST_OMP_DATA.

# bytes N...: writes each N (0-255) as one byte.
bytes() {
    for byte in "$@"; do
        printf "\\$(printf '%03o' "$byte")"
    done
}

# be32 N: N as 4 big-endian bytes, as IDX headers store sizes.
be32() {
    bytes $(( ($1 >> 24) & 255 )) $(( ($1 >> 16) & 255 )) $(( ($1 >> 8) & 255 )) $(( $1 & 255 ))
}

# idx_images_header COUNT [ROWS COLS] / idx_labels_header COUNT
idx_images_header() {
    be32 2051; be32 "$1"; be32 "${2:-28}"; be32 "${3:-28}"
}
idx_labels_header() {
    be32 2049; be32 "$1"
}

# real_images SPLIT N / real_labels SPLIT N: the first N images (labels) of
# the shipped split (train or t10k), without their header.
real_images() {
    gzip -dc "$MNIST_OMP_DATA/$1-images-idx3-ubyte.gz" | head -c $((16 + $2 * 784)) |
        tail -c $(($2 * 784))
}
real_labels() {
    gzip -dc "$MNIST_OMP_DATA/$1-labels-idx1-ubyte.gz" | head -c $((8 + $2)) | tail -c "$2"
}

# real_pgm: the first test image of the shipped data as a plain PGM.
real_pgm() {
    real_images t10k 1 | od -An -v -tu1 | { printf 'P2\n28 28\n255\n'; cat; }
}

# huge_model MODEL: MODEL (format version 3) with a layer list that claims
# 2^20-2^20-2^20 in place of its own (n_layers at offset 144, at most 64, then
# the widths).
huge_model() {
    layers=$(od -An -tu1 -j144 -N1 "$1" | tr -d ' ')
    head -c 144 "$1"; bytes 2 0 0 0  0 0 16 0  0 0 16 0  0 0 16 0
    tail -c +$((148 + 4 * (layers + 1) + 1)) "$1"
}

# make_idx_dir DIR NTRAIN NTEST: a data directory holding the first NTRAIN
# training and NTEST test images of the shipped data as raw IDX files.
make_idx_dir() {
    mkdir -p "$1" || return 1
    { idx_images_header "$2"; real_images train "$2"; } >"$1/train-images-idx3-ubyte"
    { idx_labels_header "$2"; real_labels train "$2"; } >"$1/train-labels-idx1-ubyte"
    { idx_images_header "$3"; real_images t10k "$3"; } >"$1/t10k-images-idx3-ubyte"
    { idx_labels_header "$3"; real_labels t10k "$3"; } >"$1/t10k-labels-idx1-ubyte"
}

# csv_header: the tutorial's header line.
csv_header() {
    awk 'BEGIN { printf "label"; for (r = 1; r <= 28; r++) for (c = 1; c <= 28; c++)
                 printf ",%dx%d", r, c; printf "\n" }'
}

# csv_rows LABEL... : one synthetic image a line, a blob whose place and
# brightness depend on the label (so that a network can tell them apart).
csv_rows() {
    awk -v labels="$*" 'BEGIN {
        n = split(labels, label, " ")
        for (k = 1; k <= n; k++) {
            d = label[k]; printf "%d", d
            for (i = 0; i < 784; i++) {
                r = int(i / 28); c = i % 28
                v = ((r - 4 - 2 * d) ^ 2 + (c - 6 - d - k % 3) ^ 2 < 20) ? 100 + 15 * d : 0
                printf ",%d", v
            }
            printf "\n"
        }
    }'
}

# idx_declared_count FILE MAGIC: the record count FILE's header declares when
# it starts with MAGIC (2051 images, 2049 labels) and the count is 1-1000;
# otherwise 1.  So that a valid companion file can match it.
idx_declared_count() {
    set -- $(od -An -v -tu1 -N8 "$1" 2>/dev/null) "$2"
    if [ $# -eq 9 ] && [ $(($1 * 16777216 + $2 * 65536 + $3 * 256 + $4)) -eq "$9" ]; then
        count=$(($5 * 16777216 + $6 * 65536 + $7 * 256 + $8))
        if [ "$count" -ge 1 ] && [ "$count" -le 1000 ]; then
            echo "$count"
            return
        fi
    fi
    echo 1
}
