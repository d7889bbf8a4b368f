#!/usr/bin/env python3
"""PyTorch baseline for `make bench`: the mnist-omp training step in torch,
on the CPU, with plain tensor operations (no autograd).

Run with --help for the options.  Exits 77 when torch cannot be imported.
"""

import contextlib
import os
import sys

import common

# torch runs its element-wise operations on an OpenMP pool and its matrix
# products in the BLAS, which (Debian's OpenBLAS) may keep a pool of its own
# threads.  Both spin when idle, so with T threads each they fight over the
# cores; when neither waits spinning, T > 1 runs up to twice as fast here.
QUIET_POOLS = {"OMP_WAIT_POLICY": "passive", "OPENBLAS_THREAD_TIMEOUT": "4"}


def prepare(torch, pixels, onehot, w1, w2, precision):
    """Returns one epoch of training from the initial weights, as a
    function; X and Y are converted to the precision here, once."""
    dtype = torch.float32 if precision == "f32" else torch.float64
    X = torch.from_numpy(pixels).to(dtype) / 255
    Y = torch.from_numpy(onehot).to(dtype)
    W1 = torch.tensor(w1, dtype=dtype)    # copies: w1 is used again
    W2 = torch.tensor(w2, dtype=dtype)
    b1 = torch.zeros(common.N_HIDDEN, dtype=dtype)
    b2 = torch.zeros(common.N_OUT, dtype=dtype)
    lr = common.LEARNING_RATE
    scale = 2 / Y.numel()

    def step():
        A1 = torch.clamp_min(X @ W1 + b1, 0)
        L2 = A1 @ W2 + b2
        D = L2 - Y
        loss = torch.sum(D * D) / Y.numel()
        dL2 = scale * D
        dW2, db2 = A1.T @ dL2, dL2.sum(dim=0)
        dL1 = (dL2 @ W2.T) * (A1 > 0)
        dW1, db1 = X.T @ dL1, dL1.sum(dim=0)
        W1.sub_(lr * dW1)
        b1.sub_(lr * db1)
        W2.sub_(lr * dW2)
        b2.sub_(lr * db2)
        return loss

    return step


def main():
    args, notes, limit_blas = common.start("PyTorch")
    quiet = ["%s=%s" % (var, value) for var, value in QUIET_POOLS.items()
             if os.environ.setdefault(var, value) == value]
    if quiet:
        notes.append("%s: idle OpenMP and BLAS threads wait without spinning"
                     % " ".join(quiet))
    try:
        import torch
    except ImportError as e:
        common.skip("torch_step.py: skipped, cannot import torch (%s)" % e)
    torch.set_num_interop_threads(1)

    @contextlib.contextmanager
    def limit_threads(threads):
        torch.set_num_threads(threads)
        with limit_blas(threads):
            yield

    try:
        with torch.no_grad():
            report = common.run(
                "torch", torch.__version__,
                lambda *data: prepare(torch, *data), limit_threads, args,
                notes)
    except (OSError, ValueError) as e:
        sys.exit("%s: %s" % (os.path.basename(__file__), e))
    common.emit(report, args.json)


if __name__ == "__main__":
    main()
