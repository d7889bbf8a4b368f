"""Exported weights in Python, as README shows them: the .safetensors file
read with json and numpy.frombuffer (no safetensors package), the .npz with
numpy.load, and (with "torch") both given to load_state_dict of the matching
nn.Sequential.  The logits of the first COUNT test images must match those
`mnist-omp predict --logits` prints for the same file within the forward
error bound of a dot product (Higham, Accuracy and Stability, 3.1): a sum of
n products in unit roundoff u is off by at most n u times the sum of their
magnitudes, and each layer passes its input's error on through |W| (ReLU and
tanh are 1-Lipschitz, sigmoid 1/4).  The bound is summed over both
computations compared: mnist-omp's in the file's precision and the one here
(NumPy in float64, torch in the file's precision).

usage: weights_python.py numpy|torch MNIST_OMP MNIST_DIR WORK COUNT STEM...
(STEM.safetensors and STEM.npz hold one network each)
"""
import gzip
import json
import os
import subprocess
import sys

import numpy as np

ACTIVATIONS = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh,
               "sigmoid": lambda z: 1 / (1 + np.exp(-z))}
DTYPES = {"F32": np.float32, "F64": np.float64}


def load_safetensors(path):
    """Two lines of README: the header, then each tensor as an array."""
    with open(path, "rb") as f:
        data = f.read()
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + length])
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, t in header.items():
        begin, end = t["data_offsets"]
        raw = data[8 + length + begin:8 + length + end]
        tensors[name] = np.frombuffer(raw, dtype="<" + np.dtype(DTYPES[t["dtype"]]).str[1:]
                                      ).reshape(t["shape"])
    return tensors, meta


def test_images(mnist_dir, work, count):
    with gzip.open(os.path.join(mnist_dir, "t10k-images-idx3-ubyte.gz")) as f:
        raw = f.read()
    images = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 28, 28)[:count]
    paths = []
    for i, image in enumerate(images):
        path = os.path.join(work, "test-%d.pgm" % i)
        with open(path, "wb") as f:
            f.write(b"P5\n28 28\n255\n" + image.tobytes())
        paths.append(path)
    return images.reshape(count, -1).astype(np.float64) / 255.0, paths


def mnist_omp_logits(prog, model, paths):
    out = subprocess.run([prog, "predict", "--load", model, "--logits"] + paths,
                         check=True, capture_output=True, text=True).stdout
    rows = [line.split("logits:")[1].split() for line in out.splitlines()]
    return np.array([[float(v.split(":")[1]) for v in row] for row in rows])


def layers_of(tensors):
    n = len(tensors) // 2
    return [(tensors["%d.weight" % (2 * l)], tensors["%d.bias" % (2 * l)]) for l in range(n)]


def error_bound(layers, activation, x, u):
    """Per logit: the forward error bound of one computation in roundoff u."""
    h, err = np.abs(x), u * np.abs(x)  # the pixels rounded to the precision
    for l, (w, b) in enumerate(layers):
        w, b = np.abs(w.astype(np.float64)), np.abs(b.astype(np.float64))
        magnitude = h @ w.T + b  # the terms' magnitudes summed
        err = (w.shape[1] + 1) * u * magnitude + err @ w.T
        if l + 1 < len(layers):
            # |relu(z)| <= |z|, |tanh(z)| <= min(|z|, 1), 0 < sigmoid(z) < 1;
            # the activation itself is rounded (libm: within a few ulps).
            h = {"relu": magnitude, "tanh": np.minimum(magnitude, 1.0),
                 "sigmoid": np.ones_like(magnitude)}[activation]
            err = err + 4 * u * h
    return err


def numpy_logits(layers, activation, x):
    h = x
    for l, (w, b) in enumerate(layers):
        h = h @ w.astype(np.float64).T + b.astype(np.float64)
        if l + 1 < len(layers):
            h = ACTIVATIONS[activation](h)
    return h


def torch_logits(tensors, activation, x):
    import torch
    modules = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid}
    layers = layers_of(tensors)
    dtype = torch.float64 if layers[0][0].dtype == np.float64 else torch.float32
    stack = []
    for l, (w, _) in enumerate(layers):
        stack.append(torch.nn.Linear(w.shape[1], w.shape[0]))
        if l + 1 < len(layers):
            stack.append(modules[activation]())
    model = torch.nn.Sequential(*stack).to(dtype)
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()})
    with torch.no_grad():
        return model(torch.from_numpy(x).to(dtype)).double().numpy()


def main():
    kind, prog, mnist_dir, work, count = sys.argv[1:6]
    x, paths = test_images(mnist_dir, work, int(count))
    failures = 0
    for stem in sys.argv[6:]:
        st, meta = load_safetensors(stem + ".safetensors")
        npz = dict(np.load(stem + ".npz"))
        activation = meta["activation"]
        ours = mnist_omp_logits(prog, stem + ".safetensors", paths)
        u = float(np.finfo(layers_of(st)[0][0].dtype).eps) / 2
        here = u if kind == "torch" else float(np.finfo(np.float64).eps) / 2
        bound = (error_bound(layers_of(st), activation, x, u) +
                 error_bound(layers_of(st), activation, x, here))
        for source, tensors in (("safetensors", st), ("npz", npz)):
            if kind == "numpy":
                logits = numpy_logits(layers_of(tensors), activation, x)
            else:
                logits = torch_logits(tensors, activation, x)
            worst = np.max(np.abs(logits - ours) / bound)
            # A prediction may differ only where mnist-omp's two best logits
            # are closer than the bound allows to tell apart.
            top2 = np.sort(ours, axis=1)[:, -2:]
            close = top2[:, 1] - top2[:, 0] <= 2 * bound.max(axis=1)
            differ = (logits.argmax(axis=1) != ours.argmax(axis=1)) & ~close
            print("%s %s (%s): %d images, largest difference %.3g of the bound, "
                  "largest relative difference %.3g" %
                  (os.path.basename(stem), source, kind, len(x), worst,
                   np.max(np.abs(logits - ours) / np.maximum(np.abs(ours), 1e-300))))
            if not worst <= 1 or differ.any():
                print("FAIL: %s %s: logits differ beyond the bound (%d predictions differ)" %
                      (stem, source, differ.sum()))
                failures += 1
    sys.exit(1 if failures else 0)


main()
