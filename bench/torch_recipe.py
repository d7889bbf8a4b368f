#!/usr/bin/env python3
"""PyTorch baseline of the recipes for `make bench`: mnist-omp's recipes
trained the way a PyTorch user writes it, in float32 on the CPU
(recipe_driver.py says what is shared with mnist-omp and what is timed).

An nn.Sequential of nn.Linear and nn.ReLU, nn.CrossEntropyLoss, and
torch.optim's SGD (momentum, Nesterov), Adam or AdamW, the rate of each step
set in the optimiser's parameter groups; Linear.weight holds mnist-omp's
W transposed.  Run with --help for the options.  Exits 77 when torch cannot
be imported.
"""

import contextlib
import os

import recipe_driver
from torch_step import QUIET_POOLS


class Trainer:
    """A network from the recipe's initial weights and its optimiser."""

    def __init__(self, torch, recipe):
        s = recipe.settings
        modules = []
        for i, (n_in, n_out) in enumerate(zip(recipe.widths, recipe.widths[1:])):
            if i:
                modules.append(torch.nn.ReLU())
            modules.append(torch.nn.Linear(n_in, n_out))
        self.model = torch.nn.Sequential(*modules)
        linears = [m for m in modules if isinstance(m, torch.nn.Linear)]
        with torch.no_grad():
            for linear, (w, b) in zip(linears, recipe.layers):
                linear.weight.copy_(torch.from_numpy(w.T.copy()))
                linear.bias.copy_(torch.from_numpy(b))
        parameters = self.model.parameters()
        if s.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(
                parameters, lr=s.lr, momentum=s.momentum, nesterov=s.nesterov,
                weight_decay=s.weight_decay)
        else:
            kind = torch.optim.AdamW if s.optimizer == "adamw" else torch.optim.Adam
            self.optimizer = kind(parameters, lr=s.lr, betas=(s.beta1, s.beta2),
                                  eps=s.eps, weight_decay=s.weight_decay)
        self.loss = torch.nn.CrossEntropyLoss()
        self.x = torch.from_numpy(recipe.x_train)
        self.y = torch.from_numpy(recipe.y_train).long()
        # The batches' index tensors, made once like the other conversions.
        self.indices = {id(b): torch.from_numpy(b).long()
                        for batches in recipe.batches for b in batches}

    def step(self, indices, lr):
        """One step on the batch; returns its loss, before the update."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        chosen = self.indices[id(indices)]
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(self.model(self.x[chosen]), self.y[chosen])
        loss.backward()
        self.optimizer.step()
        return loss.item()


def accuracy(torch, trainer, recipe):
    with torch.no_grad():
        logits = trainer.model(torch.from_numpy(recipe.x_test))
    return int((logits.argmax(dim=1) == torch.from_numpy(recipe.y_test)).sum())


def quiet_pools(notes):
    """torch_step.py's reason: idle OpenMP and BLAS threads must not spin."""
    quiet = ["%s=%s" % (var, value) for var, value in QUIET_POOLS.items()
             if os.environ.setdefault(var, value) == value]
    if quiet:
        notes.append("%s: idle OpenMP and BLAS threads wait without spinning"
                     % " ".join(quiet))


def limit_threads(torch, limit_blas):
    torch.set_num_interop_threads(1)

    @contextlib.contextmanager
    def limit(threads):
        torch.set_num_threads(threads)
        with limit_blas(threads):
            yield

    return limit


if __name__ == "__main__":
    recipe_driver.main("torch", "PyTorch", "torch", Trainer, accuracy,
                       limit_threads, quiet_pools)
