/* Images and models for the tests of the engine and of prediction.  The
 * helpers fail the running test (through ck_assert) when they cannot do what
 * they say. */
#ifndef MNIST_OMP_TESTDATA_H
#define MNIST_OMP_TESTDATA_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "mnist.h"
#include "model.h"

/* Classes of every model and label made here. */
enum { TESTDATA_CLASSES = 10 };

/* `count` random images of rows x cols pixels with random labels: about three
 * quarters of the pixels are exact zeros, as in the real digits, so that the
 * engine's sparse paths are exercised. */
void make_random_images(struct dataset *ds, size_t count, size_t rows, size_t cols,
                        int64_t seed);

/* Random images shaped like MNIST's. */
void make_random_dataset(struct dataset *ds, size_t count, int64_t seed);

/* The first `count` images of one split of the shipped MNIST, in file order. */
void load_mnist_slice(struct dataset *ds, enum mnist_split split, size_t count);

/* A new network of those widths (n_layers + 1 of them), drawn by
 * mlp_init_uniform from the seed. */
void make_network(struct mlp *m, size_t n_layers, const size_t *widths,
                  enum activation activation, enum loss loss, enum precision precision,
                  int64_t seed);

/* A new inputs-hidden-10 ReLU/MSE model (the tutorial's kind), drawn from the seed. */
void make_model(struct mlp *m, size_t inputs, size_t hidden, enum precision precision,
                int64_t seed);

/* A new model with the shape and parameters of `initial`. */
void copy_model(struct mlp *copy, const struct mlp *initial);

#endif
