#!/usr/bin/env python3
"""The specification's trainer in plain NumPy float64, independent of mnist-omp.

A straightforward implementation of the project's specification, both parts
("The reference experiment" and "Beyond the tutorial"): the subsets, the
initial weights and every epoch's shuffle drawn by CPython's own `random`
module from one stream, then training an MLP of any depth, each formula
written as the specification writes it, one function per paragraph.
tests/numpy-agreement.sh and tests/numpy-minibatch.sh embed its losses and
hold `mnist-omp --precision f64` to them.

Prints one line per epoch, "EPOCH LOSS", the epoch's loss (each batch's
taken before its update) written with repr() (enough digits to give the
float64 back); with --eval-every K, an epoch after which the test accuracy
is evaluated has a third field, that accuracy in percent as mnist-omp's
--log writes it (%.2f).  The final test accuracy goes to standard error.
Run by hand, not by `make check` (the tests need no Python):

    python3 tests/reference/numpy_mlp.py [--hidden LIST]
        [--activation relu|tanh|sigmoid] [--loss mse|xent] [--batch B|all]
        [--optimizer sgd|adam|adamw] [--momentum MU] [--nesterov]
        [--weight-decay WD] [--beta1 B1] [--beta2 B2] [--eps E] [--lr X]
        [--schedule constant|cosine|step] [--step-epochs E] [--step-gamma G]
        [--epochs N] [--train-size N|all] [--test-size N|all] [--seed S]
        [--eval-every K] [--data DIR]

With no options it is the reference experiment (784-32-10, ReLU, MSE,
full-batch gradient descent at lr 0.8, 300 epochs).
"""

import argparse
import gzip
import math
import os
import random
import struct
import sys

import numpy as np

TRAIN_TOTAL, TEST_TOTAL = 60000, 10000
N_CLASSES = 10
IDX_UBYTE = 0x08


# Data ----------------------------------------------------------------------

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
    """Pixels / 255 (float64, one image a row) and the labels of the images
    `chosen` of split ("train" or "t10k"), in that order."""
    images = read_idx(folder, split + "-images-idx3-ubyte")
    labels = read_idx(folder, split + "-labels-idx1-ubyte")
    x = images[chosen].reshape(len(chosen), -1).astype(np.float64) / 255.0
    return x, labels[chosen].astype(np.intp)


def one_hot(labels):
    y = np.zeros((len(labels), N_CLASSES))
    y[np.arange(len(labels)), labels] = 1.0
    return y


# Random draws --------------------------------------------------------------

def draw_subset(rng, total, size):
    """The first `size` of a seeded permutation of range(total)."""
    order = list(range(total))
    rng.shuffle(order)
    return order[:size]


# Network -------------------------------------------------------------------

def draw_layers(rng, widths):
    """[W, b] for each layer, from the input: W (n_in x n_out) drawn row by
    row from uniform(-1/sqrt(n_in), 1/sqrt(n_in)), then the next layer; b
    zero."""
    layers = []
    for n_in, n_out in zip(widths, widths[1:]):
        lo, hi = -1.0 / np.sqrt(n_in), 1.0 / np.sqrt(n_in)
        w = np.array([[rng.uniform(lo, hi) for _ in range(n_out)] for _ in range(n_in)])
        layers.append([w, np.zeros(n_out)])
    return layers


def relu(z):
    return np.where(z > 0.0, z, 0.0)


def relu_derivative(a):
    # a > 0 exactly where z > 0.
    return np.where(a > 0.0, 1.0, 0.0)


def tanh_derivative(a):
    return 1.0 - a * a


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_derivative(a):
    return a * (1.0 - a)


# Each activation and its derivative a' written in terms of a.
ACTIVATIONS = {
    "relu": (relu, relu_derivative),
    "tanh": (np.tanh, tanh_derivative),
    "sigmoid": (sigmoid, sigmoid_derivative),
}


def forward(layers, activation, x):
    """The activations of every layer, the input first, the logits last:
    `activation` after every hidden layer, the output linear."""
    function = ACTIVATIONS[activation][0]
    activations = [x]
    for i, (w, b) in enumerate(layers):
        z = activations[-1] @ w + b
        activations.append(z if i == len(layers) - 1 else function(z))
    return activations


def backward(layers, activation, activations, d_logits):
    """[dW, db] of every layer, from the gradient of the loss with respect
    to the logits."""
    derivative = ACTIVATIONS[activation][1]
    gradients = [None] * len(layers)
    grad = d_logits
    for i in range(len(layers) - 1, -1, -1):
        below = activations[i]
        gradients[i] = [below.T @ grad, grad.sum(axis=0)]
        if i > 0:
            grad = (grad @ layers[i][0].T) * derivative(below)
    return gradients


# Loss ----------------------------------------------------------------------

def mse(logits, labels):
    """The loss over the batch and its gradient with respect to the logits."""
    diff = logits - one_hot(labels)
    b10 = logits.shape[0] * N_CLASSES
    return np.sum(diff * diff) / b10, 2.0 / b10 * diff


def xent(logits, labels):
    """Softmax cross-entropy, mean over the batch, and its gradient."""
    b = logits.shape[0]
    m = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - m)
    s = e.sum(axis=1, keepdims=True)
    picked = logits[np.arange(b), labels][:, None]
    loss = (1.0 / b) * np.sum(np.log(s) - (picked - m))
    return loss, (e / s - one_hot(labels)) / b


LOSSES = {"mse": mse, "xent": xent}


# Batches -------------------------------------------------------------------

def epoch_batches(rng, n, batch):
    """The index lists of an epoch's batches: the training subset in its
    order when batch >= n (nothing drawn), else order[0:B], order[B:2B], ...
    of a fresh shuffle from the run's stream, the last holding the rest."""
    if batch >= n:
        return [np.arange(n)]
    order = list(range(n))
    rng.shuffle(order)
    return [order[k:k + batch] for k in range(0, n, batch)]


def steps_per_epoch(n, batch):
    return 1 if batch >= n else -(-n // batch)


# Optimisers ----------------------------------------------------------------

def sgd(args, state, params, grads, lr):
    """SGD with momentum MU, Nesterov and weight decay WD added to g."""
    mu, wd = args.momentum, args.weight_decay
    for w, g, v in zip(params, grads, state["v"]):
        g = g + wd * w
        v[...] = mu * v + g
        if args.nesterov:
            w -= lr * (g + mu * v)
        else:
            w -= lr * v


def adam(args, state, params, grads, lr):
    """Adam (WD added to g) or AdamW (w decayed by (1 - lr*WD) first)."""
    b1, b2, eps, wd = args.beta1, args.beta2, args.eps, args.weight_decay
    decoupled = args.optimizer == "adamw"
    state["p1"] = state["p1"] * b1
    state["p2"] = state["p2"] * b2
    c1, c2 = 1.0 - state["p1"], 1.0 - state["p2"]
    for w, g, m, v in zip(params, grads, state["m"], state["v"]):
        if decoupled:
            w *= 1.0 - lr * wd
        else:
            g = g + wd * w
        m[...] = b1 * m + (1.0 - b1) * g
        v[...] = b2 * v + ((1.0 - b2) * g) * g
        w -= ((lr / c1) * m) / (np.sqrt(v) / math.sqrt(c2) + eps)


OPTIMIZERS = {"sgd": sgd, "adam": adam, "adamw": adam}


def fresh_state(params):
    """Every state zero, p1 = p2 = 1, no step taken (t = 0)."""
    return {"t": 0, "m": [np.zeros_like(p) for p in params],
            "v": [np.zeros_like(p) for p in params],
            "p1": 1.0, "p2": 1.0}


# Learning rate -------------------------------------------------------------

def learning_rate(args, t, epoch, total_steps):
    """The lr of step t (from 1) during epoch `epoch` (from 0)."""
    if args.schedule == "cosine":
        return args.lr * 0.5 * (1.0 + math.cos(math.pi * (t - 1) / total_steps))
    if args.schedule == "step":
        factor = 1.0
        for _ in range(epoch // args.step_epochs):
            factor *= args.step_gamma
        return args.lr * factor
    return args.lr


# Evaluation ----------------------------------------------------------------

def correct_count(layers, activation, x, labels):
    """How many images' first maximum of the logits is their label."""
    predicted = np.argmax(forward(layers, activation, x)[-1], axis=1)
    return int(np.sum(predicted == labels))


def evaluated_after(args, epoch):
    last = epoch == args.epochs - 1
    return last or (args.eval_every is not None and (epoch + 1) % args.eval_every == 0)


# Training ------------------------------------------------------------------

def train_step(args, state, layers, x, labels, lr):
    """Forward, loss, backward and update on one batch; returns the loss
    before the update."""
    activations = forward(layers, args.activation, x)
    loss, d_logits = LOSSES[args.loss](activations[-1], labels)
    gradients = backward(layers, args.activation, activations, d_logits)
    params = [p for layer in layers for p in layer]
    grads = [g for gradient in gradients for g in gradient]
    OPTIMIZERS[args.optimizer](args, state, params, grads, lr)
    return loss


def train_epoch(args, rng, state, layers, train_x, train_labels, epoch, total_steps):
    """One epoch's steps; returns its loss: a single batch's loss as is, else
    sum(batch loss * batch size) / N."""
    n = len(train_labels)
    batches = epoch_batches(rng, n, args.batch)
    total = 0.0
    for chosen in batches:
        state["t"] += 1
        lr = learning_rate(args, state["t"], epoch, total_steps)
        loss = train_step(args, state, layers, train_x[chosen], train_labels[chosen], lr)
        if len(batches) == 1:
            return loss
        total += loss * len(chosen)
    return total / n


# Options -------------------------------------------------------------------

def size_arg(total):
    def parse(text):
        size = total if text == "all" else int(text)
        if not 1 <= size <= total:
            raise argparse.ArgumentTypeError("must be 1-%d or all" % total)
        return size
    return parse


def batch_arg(text):
    if text == "all":
        return TRAIN_TOTAL
    return positive(int)(text)


def positive(kind):
    def parse(text):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError("must be positive")
        return value
    return parse


def non_negative(text):
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def below_one(text):
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError("must be in [0, 1)")
    return value


def widths_arg(text):
    return [positive(int)(width) for width in text.split(",")]


def parse_args(argv=None):
    """The options of argv (default: the command line's); bench/'s baselines
    read mnist-omp's recipes with it."""
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(
        description="SPEC's trainer in NumPy float64: prints every epoch's "
                    "loss, then the test accuracy on standard error.")
    p.add_argument("--hidden", type=widths_arg, default=[32],
                   help="hidden layers' widths, comma-separated (32)")
    p.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu")
    p.add_argument("--loss", choices=sorted(LOSSES), default="mse")
    p.add_argument("--batch", type=batch_arg, default=TRAIN_TOTAL,
                   help="images per step, or all (all)")
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], default="sgd")
    p.add_argument("--momentum", type=below_one, default=0.0)
    p.add_argument("--nesterov", action="store_true")
    p.add_argument("--weight-decay", type=non_negative, default=None,
                   help="0, or 0.01 for adamw")
    p.add_argument("--beta1", type=below_one, default=0.9)
    p.add_argument("--beta2", type=below_one, default=0.999)
    p.add_argument("--eps", type=positive(float), default=1e-8)
    p.add_argument("--lr", type=positive(float), default=0.8)
    p.add_argument("--schedule", choices=["constant", "cosine", "step"], default="constant")
    p.add_argument("--step-epochs", type=positive(int))
    p.add_argument("--step-gamma", type=positive(float))
    p.add_argument("--epochs", type=positive(int), default=300)
    p.add_argument("--train-size", type=size_arg(TRAIN_TOTAL), default=6000)
    p.add_argument("--test-size", type=size_arg(TEST_TOTAL), default=1000)
    p.add_argument("--seed", type=int, default=1337,
                   help="seed of Python's random module (1337)")
    p.add_argument("--eval-every", type=positive(int),
                   help="also evaluate after every K-th epoch")
    p.add_argument("--data", default=os.environ.get("MNIST_OMP_DATA")
                   or os.path.normpath(os.path.join(here, os.pardir, os.pardir, "data")),
                   help="folder of the MNIST IDX(.gz) files (default: "
                        "$MNIST_OMP_DATA, else data/ of the repository)")
    args = p.parse_args(argv)
    if args.nesterov and not args.momentum > 0:
        p.error("--nesterov needs --momentum above 0")
    if args.schedule == "step" and (args.step_epochs is None or args.step_gamma is None):
        p.error("--schedule step needs --step-epochs and --step-gamma")
    if args.weight_decay is None:
        args.weight_decay = 0.01 if args.optimizer == "adamw" else 0.0
    return args


def main():
    args = parse_args()
    # A Random of its own: the module's functions are this class's methods.
    rng = random.Random(args.seed)
    train_x, train_labels = load_split(args.data, "train",
                                       draw_subset(rng, TRAIN_TOTAL, args.train_size))
    test_x, test_labels = load_split(args.data, "t10k",
                                     draw_subset(rng, TEST_TOTAL, args.test_size))
    layers = draw_layers(rng, [train_x.shape[1]] + args.hidden + [N_CLASSES])
    state = fresh_state([p for layer in layers for p in layer])
    total_steps = args.epochs * steps_per_epoch(len(train_labels), args.batch)
    for epoch in range(args.epochs):
        loss = train_epoch(args, rng, state, layers, train_x, train_labels, epoch, total_steps)
        line = "%d %r" % (epoch, float(loss))
        if args.eval_every is not None and evaluated_after(args, epoch):
            correct = correct_count(layers, args.activation, test_x, test_labels)
            line += " %.2f" % (100.0 * correct / len(test_labels))
        print(line, flush=True)
    correct = correct_count(layers, args.activation, test_x, test_labels)
    print("test accuracy: %d of %d" % (correct, len(test_labels)), file=sys.stderr)


if __name__ == "__main__":
    main()
