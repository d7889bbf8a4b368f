#!/usr/bin/env python3
"""NumPy baseline for `make bench`: the mnist-omp training step in NumPy.

Run with --help for the options.  Exits 77 when NumPy cannot be imported.
"""

import os
import sys

import common


def prepare(np, pixels, onehot, w1, w2, precision):
    """Returns one epoch of training from the initial weights, as a
    function; X and Y are converted to the precision here, once."""
    dtype = np.float32 if precision == "f32" else np.float64
    X = pixels.astype(dtype) / dtype(255)
    Y = onehot.astype(dtype)
    params = (w1.astype(dtype), np.zeros(common.N_HIDDEN, dtype),
              w2.astype(dtype), np.zeros(common.N_OUT, dtype))
    lr = dtype(common.LEARNING_RATE)
    scale = dtype(2) / dtype(Y.size)

    def step():
        W1, b1, W2, b2 = params     # updated in place below
        A1 = np.maximum(X @ W1 + b1, 0)
        L2 = A1 @ W2 + b2
        D = L2 - Y
        loss = np.sum(D * D) / Y.size
        dL2 = scale * D
        dW2, db2 = A1.T @ dL2, dL2.sum(axis=0)
        dL1 = (dL2 @ W2.T) * (A1 > 0)
        dW1, db1 = X.T @ dL1, dL1.sum(axis=0)
        W1 -= lr * dW1
        b1 -= lr * db1
        W2 -= lr * dW2
        b2 -= lr * db2
        return loss

    return step


def main():
    args, notes, limit_threads = common.start("NumPy")
    try:
        import numpy as np
    except ImportError as e:
        common.skip("numpy_step.py: skipped, cannot import numpy (%s)" % e)
    try:
        report = common.run(
            "numpy", np.__version__,
            lambda *data: prepare(np, *data), limit_threads, args, notes)
    except (OSError, ValueError) as e:
        sys.exit("%s: %s" % (os.path.basename(__file__), e))
    common.emit(report, args.json)


if __name__ == "__main__":
    main()
