#!/usr/bin/env python3
"""NumPy baseline of the recipes for `make bench`: mnist-omp's recipes
trained by hand-written NumPy in float32 (recipe_driver.py says what is
shared with mnist-omp and what is timed).

The forward and backward passes of a ReLU network with softmax
cross-entropy, SGD with momentum (and Nesterov) and Adam/AdamW as SPEC part
2 and torch.optim define them, each update in place.  Run with --help for
the options.  Exits 77 when NumPy cannot be imported.
"""

import math

import recipe_driver


class Trainer:
    """A network from the recipe's initial weights and its optimiser."""

    def __init__(self, np, recipe):
        s = recipe.settings
        self.np, self.s = np, s
        self.x, self.y = recipe.x_train, recipe.y_train
        # W0, b0, W1, b1, ...: the layers' parameters, as the optimiser sees them.
        self.params = [p.astype(np.float32) for layer in recipe.layers for p in layer]
        self.velocity = [np.zeros_like(p) for p in self.params]
        self.first_moment = [np.zeros_like(p) for p in self.params]
        self.p1 = self.p2 = 1.0

    def forward(self, x):
        """Every layer's activations, the input first, the logits last."""
        np = self.np
        activations = [x]
        last = len(self.params) // 2 - 1
        for i in range(last + 1):
            z = activations[-1] @ self.params[2 * i]
            z += self.params[2 * i + 1]
            if i < last:
                np.maximum(z, 0, out=z)
            activations.append(z)
        return activations

    def step(self, indices, lr):
        """One step on the batch; returns its loss, before the update."""
        np = self.np
        x, labels = self.x[indices], self.y[indices]
        activations = self.forward(x)
        logits = activations[-1]
        rows = np.arange(len(labels))
        # Softmax cross-entropy, the mean over the batch, and its gradient.
        shifted = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        sums = e.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(sums[:, 0]) - shifted[rows, labels]))
        d = e
        d /= sums
        d[rows, labels] -= 1
        d *= np.float32(1 / len(labels))
        grads = [None] * len(self.params)
        for i in range(len(self.params) // 2 - 1, -1, -1):
            below = activations[i]
            grads[2 * i] = below.T @ d
            grads[2 * i + 1] = d.sum(axis=0)
            if i > 0:
                d = d @ self.params[2 * i].T
                d *= below > 0
        if self.s.optimizer == "sgd":
            self.sgd(grads, lr)
        else:
            self.adam(grads, lr)
        return loss

    def sgd(self, grads, lr):
        mu, wd = self.s.momentum, self.s.weight_decay
        for w, g, v in zip(self.params, grads, self.velocity):
            if wd:
                g += wd * w
            if mu:
                v *= mu
                v += g
                if self.s.nesterov:
                    g += mu * v
                else:
                    g = v
            w -= lr * g

    def adam(self, grads, lr):
        np, s = self.np, self.s
        b1, b2, wd = s.beta1, s.beta2, s.weight_decay
        self.p1 *= b1
        self.p2 *= b2
        step_size, root_c2 = lr / (1 - self.p1), math.sqrt(1 - self.p2)
        for w, g, m, v in zip(self.params, grads, self.first_moment, self.velocity):
            if s.optimizer == "adamw":
                w *= 1 - lr * wd
            elif wd:
                g += wd * w
            m *= b1
            m += (1 - b1) * g
            v *= b2
            g *= g
            g *= 1 - b2
            v += g
            denominator = np.sqrt(v)
            denominator /= root_c2
            denominator += s.eps
            np.divide(m, denominator, out=denominator)
            denominator *= step_size
            w -= denominator


def accuracy(np, trainer, recipe):
    logits = trainer.forward(recipe.x_test)[-1]
    return int(np.sum(np.argmax(logits, axis=1) == recipe.y_test))


if __name__ == "__main__":
    recipe_driver.main("numpy", "NumPy", "numpy", Trainer, accuracy)
