/* The serial reference: each step of SPEC written as plainly as possible
 * (whole matrices, nested loops over samples, neurons and inputs, a naive
 * loop over the same layer list as the engine, no tiling, no threads).  It
 * is the yardstick the engine is tested against and never gets optimised. */
#ifndef MNIST_OMP_REFERENCE_H
#define MNIST_OMP_REFERENCE_H

#include "dataset.h"
#include "error.h"
#include "model.h"

struct reference;

/* Prepares for batches of up to ds->count images of ds (which must outlive r). */
int reference_create(struct reference **out, const struct mlp *m, const struct dataset *ds,
                     struct error *err);
void reference_destroy(struct reference *r);

/* Forward pass, loss and backward pass of the images batch[0 .. count) of
 * ds (batch NULL: all of ds in order); returns the batch's loss, and leaves
 * the gradient (layout of m->params) in reference_gradient. */
double reference_batch_gradient(struct reference *r, const struct mlp *m, const size_t *batch,
                                size_t count);
const void *reference_gradient(const struct reference *r);

/* Logits (ds->count x outputs, as doubles) of every image of ds: the step's
 * forward pass on its own, the yardstick of the engine's predictions. */
int reference_logits(const struct mlp *m, const struct dataset *ds, double *logits,
                     struct error *err);

#endif
