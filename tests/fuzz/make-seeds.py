#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets: tests/fuzz/{idx,csv,model,image,safetensors}/.

Small valid files of every form each loader reads, and malformed ones near
each of its checks, a few KB at most.  The malformed ones are named bad-*:
tests/regressions.sh also gives each to the command line, which must refuse
it (so an IDX bad-* file must be bad both as an image and as a label file).  The files are committed; run this
again (from anywhere) only to change them:  python3 tests/fuzz/make-seeds.py
"""
import gzip
import json
import os
import shutil
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def gz(data):
    # mtime=0: the same bytes every time
    return gzip.compress(data, compresslevel=9, mtime=0)


def corpus(name, files):
    directory = os.path.join(HERE, name)
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    for file_name, data in files.items():
        with open(os.path.join(directory, file_name), "wb") as f:
            f.write(data)


# ------------------------------------------------------------------ IDX
def idx_images(count, rows=28, cols=28, magic=0x803, pixels=None):
    if pixels is None:
        pixels = bytes((i * 37 + (i // 28) * 11) % 256 if (i % 28) in range(8, 20) else 0
                       for i in range(count * rows * cols))
    return struct.pack(">IIII", magic, count, rows, cols) + pixels


def idx_labels(count, labels=None, magic=0x801):
    if labels is None:
        labels = bytes(i % 10 for i in range(count))
    return struct.pack(">II", magic, count) + labels


one = idx_images(1)
two = idx_images(2)
labels3 = idx_labels(3)
corpus_idx = {
    "images-1": one,
    "images-2": two,
    "labels-1": idx_labels(1),
    "labels-3": labels3,
    "images-1.gz": gz(one),
    "labels-3.gz": gz(labels3),
    "images-2-gzip-concatenated.gz": gz(two[:400]) + gz(two[400:]),
    "bad-empty": b"",
    "bad-magic-swapped": struct.pack("<IIII", 0x803, 1, 28, 28) + one[16:],
    "bad-header-truncated": one[:10],
    "bad-dims-27x28": idx_images(1, 27, 28),
    "bad-dims-65536x65536-2pow31": struct.pack(">IIII", 0x803, 1 << 31, 1 << 16, 1 << 16),
    "bad-count-2pow31": struct.pack(">IIII", 0x803, 1 << 31, 28, 28) + one[16:],
    "bad-count-zero": struct.pack(">IIII", 0x803, 0, 28, 28),
    "bad-records-truncated": two[:-100],
    "bad-trailing-byte": one + b"\0",
    "bad-label-10": idx_labels(3, bytes([1, 10, 2])),
    "bad-label-255": idx_labels(1, bytes([255])),
    "bad-labels-count-2pow32-1": struct.pack(">II", 0x801, 0xFFFFFFFF) + b"\1\2\3",
    "bad-gzip-truncated.gz": gz(two)[:-30],
    "bad-gzip-corrupt.gz": (lambda b: b[:40] + bytes([b[40] ^ 0x55]) + b[41:])(gz(two)),
    "bad-gzip-crc.gz": (lambda b: b[:-8] + bytes([b[-8] ^ 1]) + b[-7:])(gz(one)),
    "bad-gzip-header-only.gz": gz(one)[:10],
    # A gzip bomb: the header declares one label, the stream inflates to 1 MB.
    "bad-gzip-bomb-labels.gz": gz(struct.pack(">II", 0x801, 1) + b"\0" * (1 << 20)),
}
corpus("idx", corpus_idx)


# ------------------------------------------------------------------ CSV
def csv_row(label, seed=0, pixels=None):
    if pixels is None:
        pixels = [((i * 13 + seed * 7) % 256) if 300 <= i < 480 else 0 for i in range(784)]
    return ",".join(str(v) for v in [label] + list(pixels))


header = "label," + ",".join("%dx%d" % (r, c) for r in range(1, 29) for c in range(1, 29))
row_a, row_b = csv_row(7, 1), csv_row(2, 2)
corpus("csv", {
    "header-1-row.csv": (header + "\n" + row_a + "\n").encode(),
    "no-header-2-rows.csv": (row_a + "\n" + row_b).encode(),   # no final newline
    "crlf.csv": (header + "\r\n" + row_a + "\r\n").encode(),
    "gzip.csv.gz": gz((header + "\n" + row_b + "\n").encode()),
    "bad-empty.csv": b"",
    "bad-header-only.csv": (header + "\n").encode(),
    "bad-blank-line.csv": (row_a + "\n\n" + row_b + "\n").encode(),
    "bad-too-few-fields.csv": (row_a.rsplit(",", 1)[0] + "\n").encode(),
    "bad-too-many-fields.csv": (row_a + ",0\n").encode(),
    "bad-label-10.csv": (csv_row(10) + "\n").encode(),
    "bad-pixel-256.csv": (csv_row(1, pixels=[256] + [0] * 783) + "\n").encode(),
    "bad-pixel-negative.csv": (csv_row(1, pixels=[0, -1] + [0] * 782) + "\n").encode(),
    "bad-pixel-huge.csv": (csv_row(1, pixels=["99999999999999999999999"] + [0] * 783) + "\n").encode(),
    "bad-pixel-text.csv": (csv_row(1, pixels=["1x"] + [0] * 783) + "\n").encode(),
    "bad-empty-field.csv": (csv_row(1, pixels=[""] + [0] * 783) + "\n").encode(),
    "bad-lone-cr.csv": (row_a.replace(",0,", ",0\r,", 1) + "\n").encode(),
    "bad-gzip-truncated.csv.gz": gz((row_a + "\n" + row_b + "\n").encode())[:-12],
})


# ------------------------------------------------------------------ model files
def legacy_file(n_in, n_hidden, n_out, f64=False, kind=1, epochs=3, seed=1337, lr=0.8,
                train=100, test=10, version=None, params=None, crc_xor=0,
                fingerprint=(0x12345678, 0x9abcdef0)):
    # versions 1 and 2, as mnist-omp wrote them before version 3: version 1
    # for models, 2 (with the data fingerprint after the header) for
    # checkpoints
    if version is None:
        version = 2 if kind == 2 else 1
    count = n_in * n_hidden + n_hidden + n_hidden * n_out + n_out
    if params is None:
        params = [((i * 0.37) % 2.0) - 1.0 for i in range(count)]
    header = b"MNISTOMP" + struct.pack("<IIIIIIQqdQQ", version, kind, n_in, n_hidden, n_out,
                                       8 if f64 else 4, epochs, seed, lr, train, test)
    if version == 2:
        header += struct.pack("<II", *fingerprint)
    body = header + struct.pack("<%d%s" % (len(params), "d" if f64 else "f"), *params)
    return body + struct.pack("<I", zlib.crc32(body) ^ crc_xor)


def param_count(widths):
    return sum(a * b + b for a, b in zip(widths, widths[1:]))


def model_file(widths, f64=False, kind=1, activation=1, loss=1, optimizer=1, schedule=1,
               nesterov=0, epochs_done=3, seed=1337, train=100, test=10, batch=0, epochs=3,
               step_epochs=0, lr=0.8, momentum=0.0, weight_decay=0.0, beta1=0.9, beta2=0.999,
               eps=1e-8, step_gamma=0.0, n_layers=None, params=None, moments=None,
               fingerprint=(1, 0x12345678, 0x9abcdef0), epoch=None, step=None, p1=None, p2=None,
               mt=None, magic=b"MNISTOMP", version=3, crc_xor=0):
    # version 3 (doc/model-format.md); the codes are 1-based, the checkpoint
    # state's stream is a real CPython MT19937 state
    if n_layers is None:
        n_layers = len(widths) - 1
    if epoch is None:
        epoch = epochs_done
    if step is None:
        step = epoch
    if p1 is None or p2 is None:
        p1 = p2 = 1.0
        for _ in range(step if optimizer > 1 else 0):
            p1 *= beta1
            p2 *= beta2
    count = param_count(widths)
    fmt = "<%d%s" % (count, "d" if f64 else "f")
    if params is None:
        params = [((i * 0.37) % 2.0) - 1.0 for i in range(count)]
    if moments is None:
        n_moments = 2 if optimizer > 1 else (1 if momentum != 0 else 0)
        moments = [[((i * 0.11 + k) % 1.0) for i in range(count)] for k in range(n_moments)]
    if mt is None:
        import random
        state = random.Random(seed).getstate()[1]
        mt = (state[624], list(state[:624]))
    body = magic + struct.pack("<IIIIIIII", version, kind, 8 if f64 else 4, activation, loss,
                               optimizer, schedule, nesterov)
    body += struct.pack("<QqQQQII", epochs_done, seed, train, test, batch, epochs, step_epochs)
    body += struct.pack("<7d", lr, momentum, weight_decay, beta1, beta2, eps, step_gamma)
    body += struct.pack("<I", n_layers) + struct.pack("<%dI" % len(widths), *widths)
    if kind == 2:
        body += struct.pack("<IIIIQddI", *fingerprint, epoch, step, p1, p2, mt[0])
        body += struct.pack("<624I", *mt[1])
    body += struct.pack(fmt, *params)
    if kind == 2:
        for moment in moments:
            body += struct.pack(fmt, *moment)
    return body + struct.pack("<I", zlib.crc32(body) ^ crc_xor)


small = model_file([3, 2, 2])
adam = dict(kind=2, optimizer=2, epochs_done=5, step=40, batch=16, epochs=10)
small_adam = model_file([3, 2, 2], **adam)
count_322 = param_count([3, 2, 2])
corpus("model", {
    "model-3-2-2-f32": small,
    "model-4-3-2-2-1-f64-tanh-xent": model_file([4, 3, 2, 2, 1], f64=True, activation=2, loss=2),
    "model-784-1-10-f32-sigmoid": model_file([784, 1, 10], activation=3, epochs_done=300,
                                             epochs=300),
    "model-1-1-f64-negative-seed-lr-0": model_file([1, 1], f64=True, seed=-5, lr=0.0),
    "checkpoint-adam-3-2-2-f32": small_adam,
    "checkpoint-adamw-step-2-3-1-f64": model_file([2, 3, 1], f64=True, kind=2, optimizer=3,
                                                  schedule=3, step_epochs=2, step_gamma=0.5,
                                                  weight_decay=0.01, epochs_done=4, step=8),
    "checkpoint-sgd-nesterov-2-1-3-f64": model_file([2, 1, 3], f64=True, kind=2, momentum=0.9,
                                                    nesterov=1, schedule=2, batch=1),
    "checkpoint-sgd-2-2-f32-no-fingerprint": model_file([2, 2], kind=2, fingerprint=(0, 0, 0)),
    "checkpoint-at-start-2-2-f32": model_file([2, 2], kind=2, optimizer=2, epochs_done=0),
    # versions 1 and 2 still load
    "v1-model-3-2-2-f32": legacy_file(3, 2, 2),
    "v1-model-1-1-1-f64-negative-seed": legacy_file(1, 1, 1, f64=True, seed=-5, lr=0.0),
    "v1-checkpoint-3-2-2-f32": legacy_file(3, 2, 2, kind=2, version=1),
    "v2-checkpoint-2-1-3-f64": legacy_file(2, 1, 3, f64=True, kind=2),
    "bad-empty": b"",
    "bad-magic": model_file([3, 2, 2], magic=b"MNISTOMQ"),
    "bad-magic-short": b"MNIST",
    "bad-version-4": model_file([3, 2, 2], version=4),
    "bad-version-0": model_file([3, 2, 2], version=0),
    "bad-kind-0": model_file([3, 2, 2], kind=0),
    "bad-kind-3": model_file([3, 2, 2], kind=3),
    "bad-precision-2": small[:16] + struct.pack("<I", 2) + small[20:],
    "bad-activation-0": model_file([3, 2, 2], activation=0),
    "bad-loss-3": model_file([3, 2, 2], loss=3),
    "bad-optimizer-4": model_file([3, 2, 2], optimizer=4),
    "bad-schedule-0": model_file([3, 2, 2], schedule=0),
    "bad-nesterov-2": model_file([3, 2, 2], nesterov=2, momentum=0.9),
    "bad-nesterov-without-momentum": model_file([3, 2, 2], nesterov=1),
    "bad-nesterov-adam": model_file([3, 2, 2], nesterov=1, optimizer=2, momentum=0.9),
    "bad-step-schedule-without-period": model_file([3, 2, 2], schedule=3),
    "bad-layers-0": model_file([3], n_layers=0),
    "bad-layers-65": model_file([3, 2, 2], n_layers=65),
    "bad-width-zero": model_file([3, 0, 2]),
    "bad-width-2pow20-plus-1": small[:152] + struct.pack("<I", (1 << 20) + 1) + small[156:],
    "bad-widths-2pow20-64-layers": (lambda b: b + struct.pack("<I", zlib.crc32(b)))(
        small[:144] + struct.pack("<I", 64) + struct.pack("<65I", *[1 << 20] * 65) + b"\0" * 64),
    "bad-width-larger-than-data": small[:148] + struct.pack("<I", 4) + small[152:],
    "bad-momentum-without-velocity": small_adam[:28] + struct.pack("<I", 1) + small_adam[32:96]
                                     + struct.pack("<d", 0.9) + small_adam[104:],
    "bad-truncated-header": small[:100],
    "bad-truncated-widths": small[:150],
    "bad-truncated-state": small_adam[:1000],
    "bad-truncated-params": small[:-9],
    "bad-truncated-moments": small_adam[:-9],
    "bad-trailing-bytes": small + b"\0\0",
    "bad-crc": model_file([3, 2, 2], crc_xor=1),
    "bad-nan-param": model_file([3, 2, 2], params=[0.0] * 5 + [float("nan")] + [0.0] * 8),
    "bad-inf-param-f64": model_file([1, 1, 1], f64=True, params=[0.0, float("inf"), 0.0, 0.0]),
    "bad-inf-moment": model_file([3, 2, 2], **adam, moments=[[0.0] * count_322,
                                 [0.0] * (count_322 - 1) + [float("inf")]]),
    "bad-negative-second-moment": model_file([3, 2, 2], **adam, moments=[[0.0] * count_322,
                                             [-1.0] + [0.0] * (count_322 - 1)]),
    "bad-lr-negative": model_file([3, 2, 2], lr=-0.5),
    "bad-lr-nan": model_file([3, 2, 2], lr=float("nan")),
    "bad-momentum-negative": model_file([3, 2, 2], momentum=-0.5),
    "bad-beta1-1": model_file([3, 2, 2], beta1=1.0),
    "bad-eps-negative": model_file([3, 2, 2], eps=-1e-8),
    "bad-eps-0": model_file([3, 2, 2], eps=0.0),
    "bad-momentum-1": model_file([3, 2, 2], momentum=1.0),
    "bad-step-schedule-without-factor": model_file([3, 2, 2], schedule=3, step_epochs=2),
    "bad-weight-decay-inf": model_file([3, 2, 2], weight_decay=float("inf")),
    "bad-step-gamma-negative": model_file([3, 2, 2], schedule=3, step_epochs=1, step_gamma=-1),
    "bad-epochs-done-2pow40": model_file([3, 2, 2], epochs_done=1 << 40, epoch=3),
    "bad-epochs-over-limit": model_file([3, 2, 2], epochs=100000001),
    "bad-fingerprint-flag-2": model_file([3, 2, 2], kind=2, fingerprint=(2, 1, 2)),
    "bad-fingerprint-without-flag": model_file([3, 2, 2], kind=2, fingerprint=(0, 1, 2)),
    "bad-epoch-after-epochs-done": model_file([3, 2, 2], **dict(adam, epochs_done=2), epoch=3),
    "bad-step-before-any-epoch": model_file([3, 2, 2], kind=2, epochs_done=0, step=4),
    "bad-p1-over-1": model_file([3, 2, 2], **adam, p1=1.5, p2=0.5),
    "bad-p1-not-1-at-step-0": model_file([3, 2, 2], kind=2, epochs_done=0, p1=0.9, p2=1.0),
    "bad-mt-index-625": model_file([3, 2, 2], kind=2, mt=(625, [1] * 624)),
    "bad-mt-all-zero": model_file([3, 2, 2], kind=2, mt=(624, [0] * 624)),
    "bad-v1-size-zero": legacy_file(0, 2, 2),
    "bad-v1-size-2pow32-1": legacy_file(3, 2, 2)[:16] + struct.pack("<I", 0xFFFFFFFF)
                            + legacy_file(3, 2, 2)[20:],
    "bad-v1-lr-nan": legacy_file(3, 2, 2, lr=float("nan")),
    "bad-v1-nan-param": legacy_file(3, 2, 2, params=[0.0] * 5 + [float("nan")] + [0.0] * 8),
    "bad-v1-crc": legacy_file(3, 2, 2, crc_xor=1),
    "bad-version-2-model": legacy_file(3, 2, 2, kind=1, version=2),
    "bad-version-2-no-fingerprint": legacy_file(3, 2, 2, kind=2)[:72]
                                    + legacy_file(3, 2, 2, kind=2)[80:],
})


# ------------------------------------------------------------------ pictures
def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width, height, rows, color_type=0, depth=8, interlace=0, extra=b"", palette=None,
        raw=None):
    """rows: packed scanlines without filter bytes (for interlace=0); raw: the
    whole filtered image data, when given."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, interlace)
    if raw is None:
        raw = b"".join(b"\0" + row for row in rows)
    chunks = png_chunk(b"IHDR", ihdr)
    if palette is not None:
        chunks += png_chunk(b"PLTE", palette)
    chunks += extra + png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def adam7(width, height, pixel):
    """Filtered image data of an interlaced 8-bit gray picture."""
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
              (0, 1, 1, 2)]
    out = b""
    for x0, y0, dx, dy in passes:
        xs = range(x0, width, dx)
        for y in range(y0, height, dy):
            if len(xs):
                out += b"\0" + bytes(pixel(x, y) for x in xs)
    return out


gray8 = [bytes((x * 40 + y * 20) % 256 for x in range(6)) for y in range(5)]
digit = bytes(((x - 14) ** 2 + (y - 14) ** 2 < 80) * 255 for y in range(28) for x in range(28))
pgm_digit = b"P2\n# a digit\n28 28\n255\n" + "\n".join(
    " ".join(str(digit[y * 28 + x]) for x in range(28)) for y in range(28)).encode() + b"\n"
corpus("image", {
    "plain.pgm": b"P2\n3 2\n255\n0 128 255\n10 20 30\n",
    "plain-comments-maxval-15.pgm": b"P2 # comment\n2 # w\n2\n15\n0 15\n# mid\n7 8\n",
    "binary.pgm": b"P5\n4 2\n255\n" + bytes(range(0, 256, 32)),
    "binary-16bit.pgm": b"P5\n2 2\n65535\n" + struct.pack(">4H", 0, 1000, 40000, 65535),
    "binary-comment-before-raster.pgm": b"P5\n2 1\n255#c\n\x10\x20",
    "digit-28x28.pgm": pgm_digit,
    "digit-28x28.pgm.gz": gz(b"P5\n28 28\n255\n" + digit),
    "gray8.png": png(6, 5, gray8),
    "gray1.png": png(9, 2, [b"\xaa\x80", b"\x55\x00"], depth=1),
    "gray16-alpha.png": png(2, 2, [struct.pack(">4H", 0, 65535, 30000, 100)] * 2, color_type=4,
                            depth=16),
    "rgb8.png": png(2, 2, [bytes([255, 0, 0, 0, 255, 0]), bytes([0, 0, 255, 9, 9, 9])],
                    color_type=2),
    "rgba8-trns.png": png(2, 1, [bytes([1, 2, 3, 4, 5, 6, 7, 8])], color_type=6),
    "palette4.png": png(3, 2, [b"\x01\x20", b"\x21\x00"], color_type=3, depth=4,
                        palette=bytes([0, 0, 0, 255, 255, 255, 90, 10, 200])),
    "gray8-interlaced.png": png(9, 9, None, interlace=1,
                                raw=adam7(9, 9, lambda x, y: (x * 29 + y * 3) % 256)),
    "gray8-trns.png": png(2, 2, [b"\x00\x10", b"\x20\x30"],
                          extra=png_chunk(b"tRNS", b"\x00\x10")),
    "bad-empty": b"",
    "bad-not-an-image": b"hello, world\n",
    "bad-ppm-p6.ppm": b"P6\n1 1\n255\n\0\0\0",
    "bad-pgm-maxval-0.pgm": b"P2\n1 1\n0\n0\n",
    "bad-pgm-width-0.pgm": b"P5\n0 1\n255\n",
    "bad-pgm-too-wide.pgm": b"P5\n16385 1\n255\n",
    "bad-pgm-huge-number.pgm": b"P2\n99999999999999999999999 1\n255\n0\n",
    "bad-pgm-16384x16384-no-data.pgm": b"P5\n16384 16384\n255\n\0",
    "bad-pgm-sample-over-maxval.pgm": b"P2\n2 1\n10\n3 11\n",
    "bad-pgm-16bit-over-maxval.pgm": b"P5\n1 1\n1000\n\xff\xff",
    "bad-pgm-truncated.pgm": b"P5\n4 4\n255\n\0\1\2",
    "bad-pgm-plain-junk.pgm": b"P2\n2 1\n255\n1 x\n",
    "bad-png-truncated.png": png(6, 5, gray8)[:60],
    "bad-png-crc.png": (lambda b: b[:29] + bytes([b[29] ^ 1]) + b[30:])(png(6, 5, gray8)),
    "bad-png-16384x16384-short.png": png(16384, 16384, [b"\0" * 16384]),
    "bad-png-zero-width.png": png(0, 1, [b""]),
    "bad-png-depth-3.png": png(2, 2, [b"\0", b"\0"], depth=3),
    "bad-png-no-idat.png": b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)) + png_chunk(b"IEND", b""),
    "bad-png-signature-only.png": b"\x89PNG\r\n\x1a\n",
    "bad-gzip-truncated.pgm.gz": gz(b"P5\n28 28\n255\n" + digit)[:-20],
})


# ------------------------------------------------------------------ safetensors
def safetensors_file(widths, f64=False, metadata=None, tensors=None, header=None, data=None,
                     length=None):
    # src/weights.h's tensors (k.weight n_out x n_in, k.bias) in order, F32 or
    # F64; metadata (strings) as __metadata__; tensors, header, data, length
    # replace what would be written, for the malformed ones
    fmt = "d" if f64 else "f"
    if tensors is None:
        tensors, offset, values = {}, 0, []
        for l, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
            for name, shape in (("weight", [n_out, n_in]), ("bias", [n_out])):
                count = n_out * n_in if name == "weight" else n_out
                end = offset + count * (8 if f64 else 4)
                tensors["%d.%s" % (2 * l, name)] = {"dtype": "F64" if f64 else "F32",
                                                     "shape": shape, "data_offsets": [offset, end]}
                values += [((len(values) + i) * 0.37) % 2.0 - 1.0 for i in range(count)]
                offset = end
        if data is None:
            data = struct.pack("<%d%s" % (len(values), fmt), *values)
    if header is None:
        body = dict(tensors)
        if metadata is not None:
            body = {"__metadata__": metadata, **body}
        header = json.dumps(body, separators=(",", ":")).encode()
        header += b" " * (-len(header) % 8)
    if length is None:
        length = len(header)
    return struct.pack("<Q", length) + header + data


def ours(widths, activation="relu", loss="mse", **changes):
    # the metadata src/safetensors.c writes
    meta = {"format": "mnist-omp", "network": "-".join(map(str, widths)),
            "activation": activation, "loss": loss, "epochs_done": "3", "seed": "1337",
            "train_size": "100", "test_size": "10", "batch": "0", "epochs": "3",
            "optimizer": "sgd", "momentum": "0", "nesterov": "false", "weight_decay": "0",
            "beta1": "0.9", "beta2": "0.999", "eps": "1e-08", "schedule": "constant",
            "lr": "0.8", "step_epochs": "0", "step_gamma": "0"}
    meta.update(changes)
    return meta


def with_tensor(widths, name, **fields):
    tensors = json.loads(json.dumps(safetensors_tensors(widths)))
    tensors[name].update(fields)
    return tensors


def safetensors_parts(widths, f64=False):
    # the tensor entries and the data of safetensors_file, apart
    file = safetensors_file(widths, f64)
    length = struct.unpack("<Q", file[:8])[0]
    return json.loads(file[8:8 + length]), file[8 + length:]


def safetensors_tensors(widths, f64=False):
    return safetensors_parts(widths, f64)[0]


small_data = safetensors_parts([3, 2, 2])[1]
corpus("safetensors", {
    "ours-3-2-2-f32": safetensors_file([3, 2, 2], metadata=ours([3, 2, 2])),
    "ours-4-3-2-2-1-f64-tanh-xent": safetensors_file(
        [4, 3, 2, 2, 1], f64=True, metadata=ours([4, 3, 2, 2, 1], "tanh", "xent",
                                                  optimizer="adam", batch="16", lr="0.001")),
    "ours-784-1-10-f32-sigmoid": safetensors_file([784, 1, 10], metadata=ours(
        [784, 1, 10], "sigmoid", schedule="step", step_epochs="2", step_gamma="0.5")),
    "foreign-3-2-2-f32": safetensors_file([3, 2, 2]),
    "foreign-other-metadata-2-1-f64": safetensors_file([2, 1], f64=True,
                                                      metadata={"format": "pt"}),
    "bad-empty": b"",
    "bad-short": b"\x02\x00\x00",
    "bad-header-longer-than-file": safetensors_file([3, 2, 2], length=1 << 40),
    "bad-not-json": safetensors_file([3, 2, 2], header=b"{\"0.weight\":"),
    "bad-not-object": safetensors_file([3, 2, 2], header=b"[1,2,3] "),
    "bad-dtype-bf16": safetensors_file([3, 2, 2], tensors=with_tensor([3, 2, 2], "0.weight",
                                                                       dtype="BF16"),
                                       data=small_data),
    "bad-mixed-dtypes": safetensors_file([3, 2, 2], tensors=with_tensor([3, 2, 2], "2.bias",
                                                                         dtype="F64"),
                                         data=small_data),
    "bad-missing-bias": safetensors_file([3, 2, 2], tensors={
        k: v for k, v in safetensors_tensors([3, 2, 2]).items() if k != "2.bias"},
        data=small_data),
    "bad-extra-tensor": safetensors_file([3, 2, 2], tensors={
        **safetensors_tensors([3, 2, 2]),
        "lm_head.weight": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
        data=small_data),
    "bad-no-chain": safetensors_file([3, 2, 2], tensors=with_tensor([3, 2, 2], "2.weight",
                                                                     shape=[2, 3]),
                                     data=small_data),
    "bad-offsets-past-end": safetensors_file([3, 2, 2], data=small_data[:-4]),
    "bad-offsets-overlap": safetensors_file([3, 2, 2], tensors=with_tensor(
        [3, 2, 2], "0.bias", data_offsets=[0, 8]), data=small_data),
    "bad-offsets-gap": safetensors_file([3, 2, 2], data=small_data + b"\0\0\0\0"),
    "bad-nan": safetensors_file([3, 2, 2], metadata=ours([3, 2, 2]),
                                data=struct.pack("<f", float("nan")) + small_data[4:]),
    "bad-inf-f64": safetensors_file([2, 1], f64=True, data=struct.pack("<3d", 1, float("inf"), 0)),
    "bad-metadata-not-string": safetensors_file([3, 2, 2], metadata={"format": 1}),
    "bad-metadata-incomplete": safetensors_file([3, 2, 2], metadata={"format": "mnist-omp",
                                                                     "network": "3-2-2"}),
    "bad-metadata-lr-negative": safetensors_file([3, 2, 2], metadata=ours([3, 2, 2], lr="-1")),
    "bad-metadata-seed-junk": safetensors_file([3, 2, 2], metadata=ours([3, 2, 2], seed="1e3")),
    "bad-metadata-network": safetensors_file([3, 2, 2], metadata=ours([3, 3, 2])),
})
