"""Shared driver for the recipes' NumPy and PyTorch baselines of `make bench`.

numpy_recipe.py and torch_recipe.py train mnist-omp's recipes (their one
definition: `mnist-omp bench --list-recipes`) on the same data, from the
same initial weights and over the same batches as mnist-omp: the options
are read by tests/reference/numpy_mlp.py's parser, and its functions draw
the subsets, the weights and every epoch's shuffle from one CPython
`random` stream, as mnist-omp draws them.  Both train in float32 and time
each epoch: its batches' gathering, forward and backward passes, losses and
updates.  Outside the timing: loading and converting the data once, and the
draws, all made before the first epoch (CPython's shuffle of 60000 indices
takes about 40 ms, which a NumPy or PyTorch user's own shuffle would not).

Like common.py, this module imports no NumPy at load time.
"""

import argparse
import os
import random
import shlex
import statistics
import subprocess
import sys
import time

import common

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(HERE, os.pardir, "tests", "reference")


def _names(text):
    names = [name for name in text.split(",") if name]
    if not names:
        raise argparse.ArgumentTypeError("empty list: %r" % text)
    return names


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be positive: %r" % text)
    return value


def parse_args(tool):
    p = argparse.ArgumentParser(
        description="Train mnist-omp's recipes with %s, float32, from the "
                    "same initial weights over the same batches, timing each "
                    "epoch." % tool)
    p.add_argument("--recipe", type=_names, default=None,
                   help="recipes, comma-separated (default: all of them)")
    p.add_argument("--mnist-omp", default="./mnist-omp",
                   help="the program whose `bench --list-recipes` defines "
                        "the recipes (default ./mnist-omp)")
    p.add_argument("--threads", type=common._list(int),
                   default=[2 if (os.cpu_count() or 1) >= 2 else 1],
                   help="thread counts (default 2, or 1 on one core)")
    p.add_argument("--epochs", type=_positive, default=None,
                   help="epochs instead of each recipe's (a schedule then "
                        "spans them)")
    p.add_argument("--size", type=_positive, default=None,
                   help="training images instead of each recipe's")
    p.add_argument("--seed", type=int, default=common.SEED,
                   help="the seed of the draws (default %d)" % common.SEED)
    common.add_shared_options(p)
    args = p.parse_args()
    args.recipes = list_recipes(args.mnist_omp)
    unknown = [name for name in args.recipe or [] if name not in args.recipes]
    if unknown:
        p.error("--recipe: no recipe %s (the recipes: %s)"
                % (", ".join(unknown), ", ".join(args.recipes)))
    if args.recipe is None:
        args.recipe = list(args.recipes)
    return args


def list_recipes(program):
    """{name: options} from `program bench --list-recipes`, in its order."""
    try:
        listing = subprocess.run([program, "bench", "--list-recipes"],
                                 stdout=subprocess.PIPE, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit("%s: cannot list the recipes with %s (%s)"
                 % (os.path.basename(sys.argv[0]), program, e))
    recipes = {}
    for line in listing.stdout.splitlines():
        name, _, options = line.partition(" ")
        recipes[name] = options
    return recipes


def order(result):
    """The merged results of run_per_thread_count: recipe by recipe."""
    return (result["index"], result["threads"])


def import_reference():
    """tests/reference/numpy_mlp.py, imported once NumPy may load."""
    sys.path.insert(0, os.path.normpath(REFERENCE))
    import numpy_mlp
    return numpy_mlp


class Recipe:
    """A recipe's settings, data and draws, shared by every thread count.

    settings: numpy_mlp's reading of the options (hidden, optimizer,
    momentum, nesterov, weight_decay, beta1, beta2, eps, lr, schedule,
    epochs, batch, ...); x_train, x_test: float32 pixels / 255, one image a
    row; y_train, y_test: labels (intp); layers: [W, b] per layer in float64,
    W n_in x n_out; batches: every epoch's index arrays."""

    def __init__(self, np, reference, name, options, args):
        argv = shlex.split(options) + ["--data", args.data,
                                       "--seed", str(args.seed)]
        if args.epochs:
            argv += ["--epochs", str(args.epochs)]
        if args.size:
            argv += ["--train-size", str(args.size)]
        settings = reference.parse_args(argv)
        if settings.activation != "relu" or settings.loss != "xent":
            raise ValueError("recipe %s: the baselines train ReLU networks "
                             "with softmax cross-entropy only" % name)
        self.name, self.options, self.settings = name, options, settings
        images = reference.read_idx(args.data, "train-images-idx3-ubyte")
        labels = reference.read_idx(args.data, "train-labels-idx1-ubyte")
        test_images = reference.read_idx(args.data, "t10k-images-idx3-ubyte")
        test_labels = reference.read_idx(args.data, "t10k-labels-idx1-ubyte")
        rng = random.Random(settings.seed)
        train = reference.draw_subset(rng, len(labels), settings.train_size)
        test = reference.draw_subset(rng, len(test_labels), settings.test_size)
        self.x_train = pixels(np, images, train)
        self.y_train = labels[train].astype(np.intp)
        self.x_test = pixels(np, test_images, test)
        self.y_test = test_labels[test].astype(np.intp)
        self.widths = [self.x_train.shape[1]] + settings.hidden + [common.N_OUT]
        self.layers = reference.draw_layers(rng, self.widths)
        n = len(train)
        self.batches = [[np.asarray(b, dtype=np.intp)
                         for b in reference.epoch_batches(rng, n, settings.batch)]
                        for _ in range(settings.epochs)]
        self.total_steps = settings.epochs * reference.steps_per_epoch(
            n, settings.batch)
        self.reference = reference

    def learning_rate(self, t, epoch):
        """SPEC's rate of step t (from 1) in epoch `epoch` (from 0)."""
        return self.reference.learning_rate(self.settings, t, epoch,
                                            self.total_steps)


def pixels(np, images, chosen):
    return images[chosen].reshape(len(chosen), -1).astype(np.float32) / np.float32(255)


def train(recipe, trainer):
    """Trains `trainer` (fresh from the recipe's weights) epoch by epoch:
    trainer.step(indices, lr) runs one step and returns its loss.  Returns
    each epoch's seconds and loss (SPEC's: the batches' losses weighted by
    their sizes)."""
    seconds, losses, t = [], [], 0
    n = len(recipe.y_train)
    for epoch, batches in enumerate(recipe.batches):
        start = time.perf_counter()
        total = 0.0
        for indices in batches:
            t += 1
            total += trainer.step(indices, recipe.learning_rate(t, epoch)) * len(indices)
        seconds.append(time.perf_counter() - start)
        losses.append(total / n)
    return seconds, losses


def result(index, recipe, threads, seconds, losses, correct):
    return {"index": index, "recipe": recipe.name, "options": recipe.options,
            "network": "-".join(map(str, recipe.widths)), "precision": "f32",
            "size": len(recipe.y_train), "threads": threads,
            "epochs": len(seconds), "seed": recipe.settings.seed,
            "s_per_epoch_median": statistics.median(seconds),
            "s_min": min(seconds), "s_max": max(seconds),
            "training_seconds": sum(seconds), "epoch_seconds": seconds,
            "losses": losses, "test_correct": correct,
            "test_count": len(recipe.y_test),
            "test_accuracy": correct / len(recipe.y_test)}


def print_table(report):
    print("%s %s (BLAS: %s)" % (report["tool"], report["version"],
                                common.blas_summary(report)))
    print("%-6s %-15s %7s %6s %10s %21s %10s %12s %9s" % (
        "recipe", "network", "size", "epochs", "threads", "s/epoch (min - max)",
        "training", "final loss", "accuracy"))
    for r in report["results"]:
        print("%-6s %-15s %7d %6d %10d %7.4f (%.4f - %.4f) %9.3fs %12.6g %8.2f%%" % (
            r["recipe"], r["network"], r["size"], r["epochs"], r["threads"],
            r["s_per_epoch_median"], r["s_min"], r["s_max"],
            r["training_seconds"], r["losses"][-1], 100 * r["test_accuracy"]))


def start(tool):
    """common.start for the recipes: (args, notes, limit_threads)."""
    return common.start(tool, parse_args, order, print_table)


def run(tool, version, make_trainer, accuracy, limit_threads, args, notes):
    """Trains every recipe of `args` at each thread count.

    make_trainer(recipe) returns a fresh trainer from the recipe's initial
    weights (its one-off conversions done there, outside the timing);
    accuracy(trainer, recipe) counts the test images it classifies right;
    limit_threads(threads) is a context manager that caps the threads."""
    import numpy as np

    reference = import_reference()
    results = []
    for index, name in enumerate(args.recipe):
        recipe = Recipe(np, reference, name, args.recipes[name], args)
        for threads in args.threads:
            with limit_threads(threads):
                trainer = make_trainer(recipe)
                seconds, losses = train(recipe, trainer)
                correct = accuracy(trainer, recipe)
            results.append(result(index, recipe, threads, seconds, losses,
                                  correct))
            if not args.json:
                print("  trained %s with %d thread%s: %.4f s/epoch"
                      % (name, threads, "" if threads == 1 else "s",
                         results[-1]["s_per_epoch_median"]), file=sys.stderr)
    libs = common.loaded_blas()
    return {"tool": tool, "version": version,
            "blas": {"libraries": libs, "cpu_count": os.cpu_count()},
            "notes": notes + common.kernel_notes(libs), "results": results}


def main(tool, label, library, make_trainer, accuracy, limit_threads=None,
         before_import=None):
    """The whole of a baseline script: options, environment, the import of
    `library` (exit 77 when it is missing), the runs and the report.
    before_import(notes), if given, settles more of the environment first;
    limit_threads(library, limit_blas) wraps the BLAS limit."""
    args, notes, limit_blas = start(label)
    if before_import:
        before_import(notes)
    script = os.path.basename(sys.argv[0])
    try:
        __import__("numpy")
        module = __import__(library)
    except ImportError as e:
        common.skip("%s: skipped, cannot import %s (%s)" % (script, library, e))
    limit = limit_threads(module, limit_blas) if limit_threads else limit_blas
    try:
        report = run(tool, module.__version__,
                     lambda recipe: make_trainer(module, recipe),
                     lambda trainer, recipe: accuracy(module, trainer, recipe),
                     limit, args, notes)
    except (OSError, ValueError) as e:
        sys.exit("%s: %s" % (script, e))
    common.emit(report, args.json, print_table)
