#!/usr/bin/env python3
"""`make bench`: mnist-omp against NumPy and PyTorch, in one run.

Runs `mnist-omp bench --json`, then the same training step in NumPy
(numpy_step.py) and PyTorch (torch_step.py) at the same sizes, precisions and
thread counts, and prints our speed as a ratio to each (their ms/epoch divided
by ours: above 1 means mnist-omp is faster).  A baseline whose library is not
installed is reported as skipped.
"""

import argparse
import json
import os
import subprocess
import sys

from common import SKIPPED

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-omp", default="./mnist-omp")
    parser.add_argument("--sizes", default="6000,60000")
    parser.add_argument("--precisions", default="f32,f64")
    parser.add_argument("--threads", default=None)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()

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


if __name__ == "__main__":
    main()
