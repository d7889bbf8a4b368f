/* The network: a two-layer perceptron n_in -> n_hidden (ReLU) -> n_out, whose
 * parameters live in one block so that gradients, checkpoints and comparisons
 * can treat them as a single array. */
#ifndef MNIST_OMP_MODEL_H
#define MNIST_OMP_MODEL_H

#include <stddef.h>

#include "error.h"
#include "rng.h"

enum precision { PRECISION_F32, PRECISION_F64 };

struct mlp {
    size_t n_in, n_hidden, n_out;
    enum precision precision;
    void *params;  /* W1 (n_in x n_hidden), b1 (n_hidden), W2 (n_hidden x n_out), b2 (n_out), row-major */
};

/* Where each tensor starts inside params, counted in elements. */
struct mlp_layout {
    size_t w1, b1, w2, b2, count;
};

struct mlp_layout mlp_layout(size_t n_in, size_t n_hidden, size_t n_out);

/* Allocates a model with all parameters zero. */
int mlp_create(struct mlp *m, size_t n_in, size_t n_hidden, size_t n_out,
               enum precision precision, struct error *err);
void mlp_free(struct mlp *m);

size_t mlp_param_count(const struct mlp *m);
size_t precision_size(enum precision precision);
const char *precision_name(enum precision precision);        /* "float32", "float64" */
const char *precision_short_name(enum precision precision);  /* "f32", "f64" */
/* Reads either name; -1 for anything else. */
int precision_parse(const char *name, enum precision *precision);

/* Checks that images of `pixels` pixels fit the inputs of m. */
int mlp_check_inputs(const struct mlp *m, size_t pixels, struct error *err);

/* Xavier-uniform initialisation drawn exactly as the tutorial does: W1 row by
 * row from uniform(-1/sqrt(n_in), 1/sqrt(n_in)), then W2 with bound
 * 1/sqrt(n_hidden); biases zero. */
void mlp_init_xavier(struct mlp *m, struct py_random *rng);

/* Nonzero when every parameter is a finite number. */
int mlp_is_finite(const struct mlp *m);

/* Parameter i as a double, whatever the precision. */
double mlp_param(const struct mlp *m, size_t i);

#endif
