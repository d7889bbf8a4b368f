/* Images and models for the engine's tests: see testdata.h. */
#include "testdata.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "rng.h"
#include "testdir.h"

void make_random_images(struct dataset *ds, size_t count, size_t rows, size_t cols,
                        int64_t seed)
{
    struct py_random rng;
    py_random_seed(&rng, seed);
    ds->count = count;
    ds->rows = rows;
    ds->cols = cols;
    ds->pixels = malloc(count * rows * cols);
    ds->labels = malloc(count);
    ck_assert_ptr_nonnull(ds->pixels);
    ck_assert_ptr_nonnull(ds->labels);
    for (size_t i = 0; i < count * rows * cols; i++)
        ds->pixels[i] = py_random_randbelow(&rng, 4) == 0
                            ? (uint8_t)(1 + py_random_randbelow(&rng, 255)) : 0;
    for (size_t n = 0; n < count; n++)
        ds->labels[n] = (uint8_t)py_random_randbelow(&rng, TESTDATA_CLASSES);
}

void make_random_dataset(struct dataset *ds, size_t count, int64_t seed)
{
    make_random_images(ds, count, 28, 28, seed);
}

void load_mnist_slice(struct dataset *ds, enum mnist_split split, size_t count)
{
    const char *dir = testdir_data();
    struct dataset all;
    struct error err;
    size_t *order = malloc(count * sizeof *order);
    ck_assert_ptr_nonnull(order);
    ck_assert_msg(mnist_load(&all, dir, split, &err) == 0, "%s", err.msg);
    for (size_t i = 0; i < count; i++)
        order[i] = i;
    ck_assert_msg(dataset_select(ds, &all, order, count, &err) == 0, "%s", err.msg);
    dataset_free(&all);
    free(order);
}

void make_network(struct mlp *m, size_t n_layers, const size_t *widths,
                  enum activation activation, enum loss loss, enum precision precision,
                  int64_t seed)
{
    struct py_random rng;
    struct error err;
    ck_assert_msg(mlp_create(m, n_layers, widths, activation, loss, precision, &err) == 0, "%s",
                  err.msg);
    py_random_seed(&rng, seed);
    mlp_init_uniform(m, &rng);
}

void make_model(struct mlp *m, size_t inputs, size_t hidden, enum precision precision,
                int64_t seed)
{
    const size_t widths[3] = {inputs, hidden, TESTDATA_CLASSES};
    make_network(m, 2, widths, ACTIVATION_RELU, LOSS_MSE, precision, seed);
}

void copy_model(struct mlp *copy, const struct mlp *initial)
{
    struct error err;
    ck_assert_msg(mlp_create(copy, initial->n_layers, initial->widths, initial->activation,
                             initial->loss, initial->precision, &err) == 0, "%s", err.msg);
    memcpy(copy->params, initial->params,
           mlp_param_count(initial) * precision_size(initial->precision));
}
