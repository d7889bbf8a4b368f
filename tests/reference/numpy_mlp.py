#!/usr/bin/env python3
"""The reference experiment in plain NumPy float64, independent of mnist-omp.

A straightforward implementation of the project's specification (part 1,
"The reference experiment"; README, "What it does"): the subsets and the
initial weights drawn by CPython's own `random` module, then full-batch
gradient descent on the MSE loss of a 784-H-10 ReLU network, every step
written as the specification writes it.  tests/numpy-agreement.sh embeds
its losses and holds `mnist-omp --precision f64` to them.

Prints one line per epoch, "EPOCH LOSS", the loss taken before that epoch's
update and written with repr() (enough digits to give the float64 back);
the test accuracy goes to standard error.  Run by hand, not by `make
check` (the tests need no Python):

    python3 tests/reference/numpy_mlp.py [--epochs N] [--lr X] [--hidden H]
        [--train-size N|all] [--test-size N|all] [--seed S] [--data DIR]

Only the reference experiment's configurations exist so far; the general
trainer's (more layers, other losses, batches, optimisers) are to come as
options of their own, each training step built from the layers list below.
"""

import argparse
import gzip
import os
import random
import struct
import sys

import numpy as np

TRAIN_TOTAL, TEST_TOTAL = 60000, 10000
N_CLASSES = 10
IDX_UBYTE = 0x08


def read_idx(folder, name):
    """The array in folder/name(.gz), an IDX file of unsigned bytes."""
    for path in (os.path.join(folder, name + ".gz"), os.path.join(folder, name)):
        if os.path.exists(path):
            break
    else:
        sys.exit("numpy_mlp.py: %s: no %s or %s.gz" % (folder, name, name))
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != IDX_UBYTE:
        sys.exit("numpy_mlp.py: %s: not an IDX file of unsigned bytes" % path)
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(">%dI" % ndim, raw[4:header])
    data = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if data.size != np.prod(shape):
        sys.exit("numpy_mlp.py: %s: %d bytes of data, its header says %s"
                 % (path, data.size, "x".join(map(str, shape))))
    return data.reshape(shape)


def load_split(folder, split, chosen):
    """Pixels / 255 (float64, one image a row) and one-hot labels of the
    images `chosen` of split ("train" or "t10k"), in that order."""
    images = read_idx(folder, split + "-images-idx3-ubyte")
    labels = read_idx(folder, split + "-labels-idx1-ubyte")
    x = images[chosen].reshape(len(chosen), -1).astype(np.float64) / 255.0
    y = np.zeros((len(chosen), N_CLASSES))
    y[np.arange(len(chosen)), labels[chosen]] = 1.0
    return x, y


def draw_subset(rng, total, size):
    """The first `size` of a seeded permutation of range(total)."""
    order = list(range(total))
    rng.shuffle(order)
    return order[:size]


def draw_layers(rng, widths):
    """[W, b] for each layer, from the input: W (n_in x n_out) drawn row by
    row from uniform(-1/sqrt(n_in), 1/sqrt(n_in)), b zero."""
    layers = []
    for n_in, n_out in zip(widths, widths[1:]):
        lo, hi = -1.0 / np.sqrt(n_in), 1.0 / np.sqrt(n_in)
        w = np.array([[rng.uniform(lo, hi) for _ in range(n_out)] for _ in range(n_in)])
        layers.append([w, np.zeros(n_out)])
    return layers


def forward(layers, x):
    """The activations of every layer, the input first, the logits last:
    ReLU between layers, the output linear."""
    activations = [x]
    for i, (w, b) in enumerate(layers):
        z = activations[-1] @ w + b
        activations.append(z if i == len(layers) - 1 else np.maximum(z, 0.0))
    return activations


def train_step(layers, x, y, lr):
    """One full-batch step of gradient descent on the MSE loss; returns the
    loss before the update."""
    activations = forward(layers, x)
    diff = activations[-1] - y
    loss = np.sum(diff * diff) / y.size
    grad = 2.0 / y.size * diff
    gradients = []
    for i in range(len(layers) - 1, -1, -1):
        w = layers[i][0]
        below = activations[i]
        gradients.append((below.T @ grad, grad.sum(axis=0)))
        if i > 0:
            grad = np.where(below > 0.0, grad @ w.T, 0.0)
    for (w, b), (dw, db) in zip(layers, reversed(gradients)):
        w -= lr * dw
        b -= lr * db
    return loss


def size_arg(total):
    def parse(text):
        size = total if text == "all" else int(text)
        if not 1 <= size <= total:
            raise argparse.ArgumentTypeError("must be 1-%d or all" % total)
        return size
    return parse


def positive(kind):
    def parse(text):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError("must be positive")
        return value
    return parse


def parse_args():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(
        description="The reference experiment in NumPy float64: prints every "
                    "epoch's loss, then the test accuracy on standard error.")
    p.add_argument("--epochs", type=positive(int), default=300)
    p.add_argument("--lr", type=positive(float), default=0.8)
    p.add_argument("--hidden", type=positive(int), default=32,
                   help="hidden units (32)")
    p.add_argument("--train-size", type=size_arg(TRAIN_TOTAL), default=6000)
    p.add_argument("--test-size", type=size_arg(TEST_TOTAL), default=1000)
    p.add_argument("--seed", type=int, default=1337,
                   help="seed of Python's random module (1337)")
    p.add_argument("--data", default=os.environ.get("MNIST_OMP_DATA")
                   or os.path.normpath(os.path.join(here, os.pardir, os.pardir, "data")),
                   help="folder of the MNIST IDX(.gz) files (default: "
                        "$MNIST_OMP_DATA, else data/ of the repository)")
    return p.parse_args()


def main():
    args = parse_args()
    # A Random of its own: the module's functions are this class's methods.
    rng = random.Random(args.seed)
    train_x, train_y = load_split(args.data, "train",
                                  draw_subset(rng, TRAIN_TOTAL, args.train_size))
    test_x, test_y = load_split(args.data, "t10k",
                                draw_subset(rng, TEST_TOTAL, args.test_size))
    layers = draw_layers(rng, [train_x.shape[1], args.hidden, N_CLASSES])
    for epoch in range(args.epochs):
        print(epoch, repr(float(train_step(layers, train_x, train_y, args.lr))))
    predicted = np.argmax(forward(layers, test_x)[-1], axis=1)
    correct = int(np.sum(predicted == np.argmax(test_y, axis=1)))
    print("test accuracy: %d of %d" % (correct, len(test_y)), file=sys.stderr)


if __name__ == "__main__":
    main()
