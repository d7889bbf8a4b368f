"""Shared driver for the NumPy and PyTorch baselines of `make bench`.

numpy_step.py and torch_step.py time the same full-batch training step as
`mnist-omp bench` (784-32-10 MLP, MSE loss, lr 0.8) on the same data and
initial weights, so that their speed and first-epoch loss can be set beside
ours.  The environment handling here (the OpenBLAS kernel, thread counts,
what BLAS is loaded, the report) also serves the recipes' baselines
(recipe_driver.py).  This module imports no NumPy at load time: the
environment must be settled before the array library loads its BLAS.
"""

import argparse
import contextlib
import ctypes
import gzip
import json
import math
import os
import random
import re
import statistics
import struct
import subprocess
import sys
import time

SEED = 1337
TRAIN_TOTAL, TEST_TOTAL = 60000, 10000
N_IN, N_HIDDEN, N_OUT = 784, 32, 10
LEARNING_RATE = 0.8
SKIPPED = 77  # the exit status that the caller reads as "skipped"

# Set in the environment of a re-executed run, so that it does not re-execute.
DROPPED_ENV = "MNIST_OMP_BENCH_DROPPED"   # what OPENBLAS_CORETYPE etc. were
CHILD_ENV = "MNIST_OMP_BENCH_CHILD"       # threads fixed by the environment
LIMITS_NOTE = ("threadpoolctl is missing: each thread count ran in its own "
               "process with OPENBLAS_NUM_THREADS/OMP_NUM_THREADS set")
KERNEL_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
               "BLIS_NUM_THREADS")


def skip(reason):
    """Exits with the status that the caller treats as "skipped"."""
    print(reason, file=sys.stderr)
    sys.exit(SKIPPED)


def _list(kind, choices=None):
    def parse(text):
        items = [kind(item) for item in text.split(",") if item]
        if not items or any(choices and item not in choices for item in items):
            raise argparse.ArgumentTypeError("bad list: %r" % text)
        if kind is int and min(items) < 1:
            raise argparse.ArgumentTypeError("must be positive: %r" % text)
        return items
    return parse


def add_shared_options(p):
    """The options of every baseline: the data, JSON output and the
    OpenBLAS kernel."""
    repo_data = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             os.pardir, "data")
    p.add_argument("--data", default=os.environ.get("MNIST_OMP_DATA")
                   or os.path.normpath(repo_data),
                   help="folder of the MNIST IDX files (default: "
                        "$MNIST_OMP_DATA, else data/ of the repository)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object instead of a table")
    p.add_argument("--keep-coretype", action="store_true",
                   help="keep OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE from the "
                        "environment instead of letting OpenBLAS choose")


def parse_args(tool):
    p = argparse.ArgumentParser(
        description="Time the mnist-omp training step (full-batch gradient "
                    "descent, one epoch a step) with %s." % tool)
    p.add_argument("--sizes", type=_list(int), default=[6000, 60000],
                   help="training-set sizes N (default 6000,60000)")
    p.add_argument("--precisions", type=_list(str, ("f32", "f64")),
                   default=["f32", "f64"], help="f32 and/or f64")
    p.add_argument("--threads", type=_list(int), default=[1, 2],
                   help="thread counts (default 1,2)")
    p.add_argument("--epochs", type=int, default=20,
                   help="timed epochs per measurement (default 20)")
    p.add_argument("--warmup", type=int, default=3,
                   help="untimed epochs before them (default 3)")
    add_shared_options(p)
    args = p.parse_args()
    if args.epochs < 1 or args.warmup < 0:
        p.error("--epochs must be at least 1 and --warmup at least 0")
    if max(args.sizes) > TRAIN_TOTAL:
        p.error("--sizes: MNIST has %d training images" % TRAIN_TOTAL)
    return args


def start(tool, parse=None, order=None, print_table=None):
    """Parses the options and settles the environment before NumPy or torch
    is imported.  Returns (args, notes, limit_threads): limit_threads(T) is
    a context manager capping the BLAS and OpenMP threads to T.  Without
    threadpoolctl, the thread counts are run as child processes instead; in
    the parent this prints their merged report and exits.

    parse(tool), order(result) (the sort key of the merged results) and
    print_table(report) are the training step's unless given: the recipes
    (recipe_driver.py) pass their own."""
    args = (parse or parse_args)(tool)
    settle_environment(args)
    try:
        from threadpoolctl import threadpool_limits
        return args, [], lambda threads: threadpool_limits(limits=threads)
    except ImportError:
        report = run_per_thread_count(args, order or step_order)
        if report is not None:
            emit(report, args.json, print_table)
            sys.exit(0)
        return args, [LIMITS_NOTE], lambda threads: contextlib.nullcontext()


def settle_environment(args):
    """Re-executes this script without a forced OpenBLAS kernel.

    OPENBLAS_CORETYPE (with OPENBLAS_L2_SIZE) pins OpenBLAS to an older
    kernel; it is read when the library loads, so it has to go before NumPy
    or torch is imported.  kernel_notes() tells about it afterwards.
    """
    if (args.keep_coretype or DROPPED_ENV in os.environ
            or "OPENBLAS_CORETYPE" not in os.environ):
        return
    env = dict(os.environ)
    env[DROPPED_ENV] = " and ".join("%s=%s" % (var, env.pop(var))
                                    for var in KERNEL_VARS if var in env)
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def kernel_notes(libs):
    kernels = ", ".join(lib.get("architecture", "?") for lib in libs
                        if lib["internal_api"] == "openblas")
    notes = []
    if DROPPED_ENV in os.environ:
        notes.append("%s set in the environment: measured without, so that "
                     "OpenBLAS picks its own kernel for this CPU; it picked %s"
                     % (os.environ[DROPPED_ENV],
                        kernels or "none (no OpenBLAS is loaded)"))
    elif kernels and "OPENBLAS_CORETYPE" in os.environ:
        notes.append("OPENBLAS_CORETYPE=%s kept (--keep-coretype): OpenBLAS "
                     "ran its %s kernel"
                     % (os.environ["OPENBLAS_CORETYPE"], kernels))
    if not kernels and not any(lib["internal_api"] in ("mkl", "blis")
                               for lib in libs):
        names = ", ".join(lib["internal_api"] for lib in libs) or "not known"
        notes.append(
            "the BLAS loaded is %s: unoptimized and single-threaded, so this "
            "baseline is far slower than it could be (install "
            "libopenblas0-openmp or -pthread: Debian's libblas.so.3 then "
            "points to OpenBLAS)" % names)
    return notes


def step_order(result):
    return (result["size"], result["precision"], result["threads"])


def run_per_thread_count(args, order):
    """Without threadpoolctl: one run of this script per thread count, its
    BLAS and OpenMP thread counts set through the environment.  Returns the
    merged report, its results sorted by order(result), or None in such a
    run itself."""
    if CHILD_ENV in os.environ:
        return None
    report = None
    for threads in args.threads:
        env = dict(os.environ, **{var: str(threads) for var in THREAD_VARS})
        env[CHILD_ENV] = "1"
        argv = [sys.executable] + sys.argv + ["--threads", str(threads),
                                              "--json"]
        child = subprocess.run(argv, env=env, stdout=subprocess.PIPE)
        if child.returncode != 0:
            sys.exit(child.returncode)
        part = json.loads(child.stdout)
        if report is None:
            report = part
        else:
            report["results"] += part["results"]
    report["results"].sort(key=order)
    return report


def _read_idx(folder, name):
    for path in (os.path.join(folder, name + ".gz"),
                 os.path.join(folder, name)):
        if os.path.exists(path):
            break
    else:
        raise OSError("%s: no %s(.gz)" % (folder, name))
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[:3] != b"\0\0\x08":
        raise ValueError("%s: not an IDX file of unsigned bytes" % path)
    ndim = raw[3]
    dims = struct.unpack(">%dI" % ndim, raw[4:4 + 4 * ndim])
    if len(raw) != 4 + 4 * ndim + math.prod(dims):
        raise ValueError("%s: size does not match its header" % path)
    return raw[4 + 4 * ndim:], dims


def load_experiment(folder, size):
    """The first `size` training images, labels and the initial weights,
    drawn as mnist-omp draws them (README, "What it does"): seed 1337, shuffle of the
    training set, shuffle of the test set, W1 then W2 row by row.

    Returns (pixels, labels, w1, w2): uint8 arrays of N x 784 and N, and
    float64 arrays of 784 x 32 and 32 x 10.
    """
    import numpy as np

    pixels, dims = _read_idx(folder, "train-images-idx3-ubyte")
    labels, ldims = _read_idx(folder, "train-labels-idx1-ubyte")
    if dims != (TRAIN_TOTAL, 28, 28) or ldims != (TRAIN_TOTAL,):
        raise ValueError("%s: expected %d 28x28 training images and labels"
                         % (folder, TRAIN_TOTAL))
    rng = random.Random(SEED)
    order = list(range(TRAIN_TOTAL))
    rng.shuffle(order)
    rng.shuffle(list(range(TEST_TOTAL)))
    w1 = [rng.uniform(-1 / math.sqrt(N_IN), 1 / math.sqrt(N_IN))
          for _ in range(N_IN * N_HIDDEN)]
    w2 = [rng.uniform(-1 / math.sqrt(N_HIDDEN), 1 / math.sqrt(N_HIDDEN))
          for _ in range(N_HIDDEN * N_OUT)]
    keep = np.array(order[:size])
    images = np.frombuffer(pixels, np.uint8).reshape(TRAIN_TOTAL, N_IN)
    return (images[keep], np.frombuffer(labels, np.uint8)[keep],
            np.array(w1).reshape(N_IN, N_HIDDEN),
            np.array(w2).reshape(N_HIDDEN, N_OUT))


def time_epochs(step, epochs, warmup):
    """Runs warmup + epochs training steps; `step` returns the loss.
    Returns the timed epochs' milliseconds and the first epoch's loss."""
    first_loss, times = None, []
    for epoch in range(warmup + epochs):
        start = time.perf_counter()
        loss = float(step())
        elapsed = time.perf_counter() - start
        if epoch == 0:
            first_loss = loss
        if epoch >= warmup:
            times.append(elapsed * 1e3)
    return times, first_loss


def result(size, precision, threads, times, first_loss):
    median = statistics.median(times)
    return {"size": size, "precision": precision, "threads": threads,
            "ms_per_epoch_median": median, "ms_min": min(times),
            "ms_max": max(times), "samples_per_s": size / (median / 1e3),
            "first_loss": first_loss}


def loaded_blas():
    """The BLAS libraries this process has loaded: threadpoolctl's view of
    them if it has one, else what /proc/self/maps and OpenBLAS itself say."""
    try:
        from threadpoolctl import threadpool_info
        libs = [{key: lib[key] for key in
                 ("internal_api", "version", "architecture", "threading_layer",
                  "num_threads", "filepath") if lib.get(key) is not None}
                for lib in threadpool_info() if lib["user_api"] == "blas"]
        if libs:
            return libs
    except ImportError:
        pass
    try:
        with open("/proc/self/maps") as maps:
            paths = {os.path.realpath(line.split()[-1]) for line in maps
                     if re.search(r"/lib(open)?blas[^/]*\.so|/libmkl_rt|"
                                  r"/libblis", line)}
    except OSError:
        paths = set()
    openblas = [path for path in paths if "/libopenblas" in path]
    return ([_describe_openblas(path) for path in openblas] if openblas else
            [{"internal_api": _library_kind(path), "filepath": path}
             for path in sorted(paths)])


def _describe_openblas(path):
    lib = ctypes.CDLL(path)
    lib.openblas_get_config.restype = ctypes.c_char_p
    lib.openblas_get_corename.restype = ctypes.c_char_p
    config = lib.openblas_get_config().decode().split()
    return {"internal_api": "openblas",
            "version": config[1] if len(config) > 1 else None,
            "architecture": lib.openblas_get_corename().decode(),
            "num_threads": lib.openblas_get_num_threads(), "filepath": path}


def _library_kind(path):
    for mark, kind in (("mkl", "mkl"), ("blis", "blis"), ("atlas", "atlas"),
                       ("/blas/libblas", "netlib reference (unoptimized)")):
        if mark in path:
            return kind
    return "unknown"


def emit(report, as_json, print_table=None):
    """Prints the report as JSON, or its notes (on standard error) and its
    table, the training step's unless print_table is given."""
    if as_json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return
    for note in report["notes"]:
        print("note: " + note, file=sys.stderr)
    (print_table or print_step_table)(report)


def blas_summary(report):
    return "; ".join(
        " ".join(str(lib[key]) for key in ("internal_api", "version",
                                           "architecture") if key in lib)
        for lib in report["blas"]["libraries"]) or "none found"


def print_step_table(report):
    print("%s %s (BLAS: %s)" % (report["tool"], report["version"],
                                blas_summary(report)))
    print("%7s %4s %7s %11s %21s %11s %19s" % (
        "size", "prec", "threads", "ms/epoch", "(min - max)", "samples/s",
        "first loss"))
    for r in report["results"]:
        print("%7d %4s %7d %11.3f %9.3f - %9.3f %11.0f %19.17g" % (
            r["size"], r["precision"], r["threads"], r["ms_per_epoch_median"],
            r["ms_min"], r["ms_max"], r["samples_per_s"], r["first_loss"]))


def run(tool, version, prepare, limit_threads, args, notes):
    """Measures every size, precision and thread count of `args`.

    prepare(pixels, onehot_labels, w1, w2, precision) returns a function
    that runs one training step and returns its loss; everything it converts
    (X to the precision, Y one-hot) is done once, outside the timing.
    limit_threads(threads) is a context manager that caps the threads.
    """
    import numpy as np

    results = []
    for size in args.sizes:
        pixels, labels, w1, w2 = load_experiment(args.data, size)
        onehot = np.eye(N_OUT, dtype=np.uint8)[labels]
        for precision in args.precisions:
            for threads in args.threads:
                with limit_threads(threads):
                    step = prepare(pixels, onehot, w1, w2, precision)
                    times, loss = time_epochs(step, args.epochs, args.warmup)
                results.append(result(size, precision, threads, times, loss))
    libs = loaded_blas()
    return {"tool": tool, "version": version,
            "blas": {"libraries": libs, "cpu_count": os.cpu_count()},
            "notes": notes + kernel_notes(libs), "results": results}
