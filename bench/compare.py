#!/usr/bin/env python3
"""`make bench`: mnist-omp against NumPy and PyTorch, in one run.

First the reference experiment's step: runs `mnist-omp bench --json`, then
the same training step in NumPy (numpy_step.py) and PyTorch (torch_step.py)
at the same sizes, precisions and thread counts.  Then the recipes: runs
`mnist-omp bench --recipe ... --json` and the same recipes, from the same
weights over the same batches, in NumPy (numpy_recipe.py) and PyTorch
(torch_recipe.py), float32, at 2 threads (1 on one core), for a few epochs
each (--recipe-epochs; --full: each recipe's own), in --rounds rounds that
take turns (ours, NumPy, PyTorch, then again), so that a burst of load from
a neighbour on a shared machine slows one round of each rather than one
program's only run; each keeps its fastest round.  Prints our speed as a
ratio to each (their seconds per epoch divided by ours: above 1 means
mnist-omp is faster), and the range of the ratios round by round.  A
baseline whose library is not installed is reported as skipped.
"""

import argparse
import json
import os
import subprocess
import sys

from common import SKIPPED
from recipe_driver import list_recipes

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(command):
    """Runs a command that prints one JSON object; None when it was skipped."""
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if result.returncode == SKIPPED:
        return None
    if result.returncode != 0:
        sys.exit("compare.py: %s failed with status %d" % (command[0], result.returncode))
    return json.loads(result.stdout)


def by_key(report):
    return {(r["size"], r["precision"], r["threads"]): r for r in report["results"]}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-omp", default="./mnist-omp")
    parser.add_argument("--sizes", default="6000,60000",
                        help="the step's training-set sizes (6000,60000)")
    parser.add_argument("--precisions", default="f32,f64",
                        help="the step's precisions (f32,f64)")
    parser.add_argument("--threads", default=None,
                        help="the step's thread counts (mnist-omp's default)")
    parser.add_argument("--epochs", type=int, default=10,
                        help="the step's timed epochs (10)")
    parser.add_argument("--warmup", type=int, default=2,
                        help="the step's untimed epochs (2)")
    parser.add_argument("--recipes", default=None,
                        help="recipes to compare, comma-separated, or none "
                             "(default: all of `mnist-omp bench --list-recipes`)")
    parser.add_argument("--recipe-threads",
                        default="2" if (os.cpu_count() or 1) >= 2 else "1",
                        help="the recipes' thread counts (2, or 1 on one core)")
    parser.add_argument("--recipe-epochs", type=int, default=4,
                        help="epochs of each recipe (4; the schedule spans them)")
    parser.add_argument("--full", action="store_true",
                        help="train each recipe for its own epochs")
    parser.add_argument("--recipe-size", type=int, default=None,
                        help="training images of each recipe (its own: all)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of the recipes' runs, taking turns; each "
                             "program keeps its fastest (3)")
    parser.add_argument("--skip-step", action="store_true",
                        help="compare the recipes only")
    args = parser.parse_args()
    if args.recipe_epochs < 1:
        parser.error("--recipe-epochs must be at least 1")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def main():
    args = parse_args()
    if not args.skip_step:
        compare_step(args)
    if args.recipes != "none":
        compare_recipes(args)


def compare_step(args):
    ours_cmd = [args.mnist_omp, "bench", "--json", "--sizes", args.sizes,
                "--precision", args.precisions, "--epochs", str(args.epochs),
                "--warmup", str(args.warmup)]
    if args.threads:
        ours_cmd += ["--threads", args.threads]
    print("$ " + " ".join(ours_cmd), file=sys.stderr)
    ours = run_json(ours_cmd)
    threads = args.threads or ",".join(
        str(t) for t in sorted({r["threads"] for r in ours["results"]}))

    baselines = {}
    for tool in ("numpy", "torch"):
        cmd = [sys.executable, os.path.join(HERE, tool + "_step.py"), "--json",
               "--sizes", args.sizes, "--precisions", args.precisions,
               "--threads", threads, "--epochs", str(args.epochs),
               "--warmup", str(args.warmup)]
        print("$ " + " ".join(cmd), file=sys.stderr)
        baselines[tool] = run_json(cmd)

    print_versions(ours, baselines)
    print()
    header = ("prec", "N", "thr", "ms/epoch", "GFLOP/s", "%peak", "speedup",
              "numpy ms", "x numpy", "torch ms", "x torch")
    print("%-4s %6s %3s %9s %8s %6s %7s %9s %7s %9s %7s" % header)
    tables = {tool: by_key(r) for tool, r in baselines.items() if r}
    for r in ours["results"]:
        key = (r["size"], r["precision"], r["threads"])
        cells = []
        for tool in ("numpy", "torch"):
            theirs = tables.get(tool, {}).get(key)
            if theirs:
                ms = theirs["ms_per_epoch_median"]
                cells += ["%9.3f" % ms, "%6.1fx" % (ms / r["ms_per_epoch_median"])]
            else:
                cells += ["%9s" % "-", "%7s" % "-"]
        print("%-4s %6d %3d %9.3f %8.1f %5.0f%% %7.2f %s"
              % (r["precision"], r["size"], r["threads"], r["ms_per_epoch_median"],
                 r["gflops"], 100 * r["fraction_of_peak"], r["speedup"], " ".join(cells)))
    print("\nms/epoch: median of %d timed epochs after %d warm-up epochs; "
          "x numpy / x torch: their ms/epoch divided by ours." % (args.epochs, args.warmup))


def print_versions(ours, baselines):
    print("mnist-omp %s on %s (%s kernels, %d cores)"
          % (ours["version"], ours["cpu"], ours["kernels"], ours["cores"]))
    for tool, report in baselines.items():
        if report is None:
            print("%s: skipped (not installed)" % tool)
            continue
        print("%s %s, BLAS: %s" % (tool, report.get("version", "?"),
                                   json.dumps(report.get("blas", {}))))
        for note in report.get("notes", []):
            print("  note: " + note)


def kernel_peaks(result):
    """Our kernels' %peak, layer by layer: "0:52/93 1:16/13/17" (forward,
    weight gradient, input gradient)."""
    layers = {}
    for k in result["kernels"]:
        layers.setdefault(k["layer"], []).append(
            "%.0f" % (100 * k["fraction_of_peak"]))
    return " ".join("%d:%s" % (layer, "/".join(cells))
                    for layer, cells in sorted(layers.items()))


def fastest(reports):
    """The rounds' reports of one program as one: each recipe's result from
    the round in which it ran fastest, with "rounds" (its s/epoch in each
    round, in order).  None when the program was skipped."""
    if reports[0] is None:
        return None
    best, seconds = {}, {}
    for report in reports:
        for r in report["results"]:
            key = (r["recipe"], r["threads"])
            seconds.setdefault(key, []).append(r["s_per_epoch_median"])
            if key not in best or r["s_per_epoch_median"] < best[key]["s_per_epoch_median"]:
                best[key] = r
    merged = dict(reports[0])
    merged["results"] = [dict(best[(r["recipe"], r["threads"])],
                              rounds=seconds[(r["recipe"], r["threads"])])
                         for r in reports[0]["results"]]
    return merged


def ratio_range(theirs, ours):
    """Their s/epoch over ours, round by round: "4.1-4.9x" (one value: "4.5x")."""
    ratios = [t / o for t, o in zip(theirs["rounds"], ours["rounds"])]
    low, high = min(ratios), max(ratios)
    return "%.1fx" % low if len(ratios) == 1 else "%.1f-%.1fx" % (low, high)


def compare_recipes(args):
    names = args.recipes or ",".join(list_recipes(args.mnist_omp))
    common = ["--recipe", names, "--json", "--threads", args.recipe_threads]
    if not args.full:
        common += ["--epochs", str(args.recipe_epochs)]
    size = ["--sizes", str(args.recipe_size)] if args.recipe_size else []
    commands = {"ours": [args.mnist_omp, "bench"] + common + size}
    for tool in ("numpy", "torch"):
        commands[tool] = [sys.executable, os.path.join(HERE, tool + "_recipe.py"),
                          "--mnist-omp", args.mnist_omp] + common
        if args.recipe_size:
            commands[tool] += ["--size", str(args.recipe_size)]
    reports = {program: [] for program in commands}
    for round_number in range(args.rounds):
        for program, cmd in commands.items():
            if round_number and reports[program][0] is None:
                continue  # skipped: its library is not installed
            print("$ " + " ".join(cmd) + ("   # round %d of %d" % (round_number + 1, args.rounds)
                                           if args.rounds > 1 else ""), file=sys.stderr)
            reports[program].append(run_json(cmd))
    ours = fastest(reports.pop("ours"))
    baselines = {tool: fastest(rounds) for tool, rounds in reports.items()}

    print("\nThe recipes, float32, %s, the same initial weights and batches in "
          "all three:" % ("each recipe's own epochs" if args.full
                          else "%d epochs each" % args.recipe_epochs))
    if args.skip_step:
        print_versions(ours, baselines)
    tables = {tool: {(r["recipe"], r["threads"]): r for r in report["results"]}
              for tool, report in baselines.items() if report}
    print("%-6s %3s %6s %8s %8s %7s %10s %8s %7s %10s %8s %8s %8s  %s" % (
        "recipe", "thr", "epochs", "s/epoch", "numpy s", "x numpy", "rounds", "torch s",
        "x torch", "rounds", "acc", "numpy", "torch", "%peak (layer:F/W/I)"))
    for r in ours["results"]:
        speed, accuracy = [], []
        for tool in ("numpy", "torch"):
            theirs = tables.get(tool, {}).get((r["recipe"], r["threads"]))
            if theirs:
                s = theirs["s_per_epoch_median"]
                speed += ["%8.4f" % s, "%6.1fx" % (s / r["s_per_epoch_median"]),
                          "%10s" % ratio_range(theirs, r)]
                accuracy.append("%7.2f%%" % (100 * theirs["test_accuracy"]))
            else:
                speed += ["%8s" % "-", "%7s" % "-", "%10s" % "-"]
                accuracy.append("%8s" % "-")
        print("%-6s %3d %6d %8.4f %s %7.2f%% %s  %s" % (
            r["recipe"], r["threads"], r["epochs"], r["s_per_epoch_median"],
            " ".join(speed), 100 * r["test_accuracy"], " ".join(accuracy),
            kernel_peaks(r)))
    trained = ("each recipe's own epochs" if args.full else
               "%d epochs, not the recipe's whole run (--full trains that)"
               % args.recipe_epochs)
    print("\ns/epoch: median over the epochs (mnist-omp's: all but the last, "
          "which it profiles),\nin the fastest of %d rounds.  x numpy, x torch: "
          "their s/epoch divided by ours;\nrounds: the same ratio round by round "
          "(the least and the most).  acc, numpy,\ntorch: the test accuracy of "
          "mnist-omp, NumPy and PyTorch on %d test images after\n%s.\n%%peak: "
          "the rate of each of our kernels as a share of the FMA peak, layer by\n"
          "layer: forward / weight gradient / input gradient (layer 0 skips the "
          "zero\npixels: its rate counts the dense-equivalent work)."
          % (args.rounds, ours["results"][0]["test_count"] if ours["results"] else 0,
             trained))


if __name__ == "__main__":
    main()
