/* The serial reference: the training step of the reference experiment
 * written as plainly as possible (whole matrices, nested loops over samples,
 * neurons and inputs, no tiling, no threads).  It is the yardstick the
 * engine is tested against and never gets optimised. */
#ifndef MNIST_OMP_REFERENCE_H
#define MNIST_OMP_REFERENCE_H

#include "dataset.h"
#include "error.h"
#include "model.h"

struct reference;

int reference_create(struct reference **out, const struct mlp *m, const struct dataset *ds,
                     struct error *err);
void reference_destroy(struct reference *r);

/* One full-batch gradient-descent step; returns the loss before the update. */
double reference_epoch(struct reference *r, struct mlp *m, double lr);

/* Logits (ds->count x n_out, as doubles) of every image of ds: the step's
 * forward pass on its own, the yardstick of the engine's predictions. */
int reference_logits(const struct mlp *m, const struct dataset *ds, double *logits,
                     struct error *err);

#endif
