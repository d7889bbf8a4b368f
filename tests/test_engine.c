/* The OpenMP engine against the serial reference over a matrix of networks,
 * losses, batches and precisions, central-difference checks of its
 * gradient, bitwise determinism across thread counts, the whole-dataset
 * structure it keeps, and engines training side by side in threads of
 * their own.
 *
 * Every test that runs OpenMP code runs in a child that Check forks: the
 * parent never starts libgomp's thread pool, because a child forked after
 * that can hang. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "kernels.h"
#include "mnist.h"
#include "model.h"
#include "optimizer.h"
#include "pixel_lists.h"
#include "reference.h"
#include "rng.h"
#include "testdata.h"
#include "train.h"

enum { WIDTH = 784 };

/* Tolerances.  The engine and the reference differ only in the order of
 * the terms of the weight gradients' sums (per unit, then in the units'
 * tree), an error that scales with the sum of the terms' magnitudes.
 * float64: 1.1e-16 a term; relative to the largest magnitude of each tensor
 * (an error of summation order scales with the tensor, not with each,
 * possibly tiny, element), even a few hundred terms with cancellation stay
 * below 1e-13, so 1e-12 leaves a margin yet catches any wrong or missing
 * term, which shows at 1e-4 or more.  float32 (6e-8 a term) loses digits
 * to cancellation where a gradient is small beside its terms (a network
 * one unit wide): there each tensor of the engine must be as close to the
 * float64 gradient of the same parameters as the float32 reference is,
 * within F32_ERROR_RATIO, plus F32_FLOOR of the tensor's largest magnitude
 * (a few ulps, for a reference that happens to be exact).  The reference
 * sums in two orders, the batch's and its reverse (the same gradient,
 * rounded otherwise), so that one order's lucky cancellation (a tensor of
 * one element can come out nearly exact) does not stand for float32's
 * rounding.  The losses:
 * RTOL_F32 relative. */
#define RTOL_F64 1e-12
#define RTOL_F32 1e-5
#define F32_ERROR_RATIO 4.0
#define F32_FLOOR 1e-6

static double rtol_of(enum precision precision)
{
    return precision == PRECISION_F64 ? RTOL_F64 : RTOL_F32;
}

/* Each tensor (a layer's W, its b) of the float64 array got agrees with
 * want within rtol of that tensor's largest magnitude. */
static void assert_f64_tensors_close_within(const struct mlp *m, const double *got,
                                            const double *want, double rtol, const char *what)
{
    for (size_t l = 0; l < m->n_layers; l++) {
        const struct mlp_layer layer = mlp_layer(m, l);
        const size_t bounds[3] = {layer.weights, layer.bias, layer.bias + layer.n_out};
        for (int t = 0; t < 2; t++) {
            double scale = 0;
            for (size_t i = bounds[t]; i < bounds[t + 1]; i++)
                scale = fmax(scale, fabs(want[i]));
            /* One check per element would make Check log each. */
            for (size_t i = bounds[t]; i < bounds[t + 1]; i++)
                if (!(fabs(got[i] - want[i]) <= rtol * scale))
                    ck_abort_msg("%s: %s%zu[%zu] engine %.17g reference %.17g (scale %g)", what,
                                 t ? "b" : "W", l + 1, i - bounds[t], got[i], want[i], scale);
        }
    }
}

static void assert_f64_tensors_close(const struct mlp *m, const double *got, const double *want,
                                     const char *what)
{
    assert_f64_tensors_close_within(m, got, want, RTOL_F64, what);
}

/* Each tensor of the float32 gradient got is within F32_ERROR_RATIO of the
 * float32 reference's distance from the float64 truth, in the batch's order
 * (want) or its reverse (reversed), whichever is further. */
static void assert_f32_tensors_close(const struct mlp *m, const float *got, const float *want,
                                     const float *reversed, const double *truth,
                                     const char *what)
{
    for (size_t l = 0; l < m->n_layers; l++) {
        const struct mlp_layer layer = mlp_layer(m, l);
        const size_t bounds[3] = {layer.weights, layer.bias, layer.bias + layer.n_out};
        for (int t = 0; t < 2; t++) {
            double scale = 0, reference_error = 0, engine_error = 0;
            size_t worst = bounds[t];
            for (size_t i = bounds[t]; i < bounds[t + 1]; i++) {
                scale = fmax(scale, fabs(truth[i]));
                reference_error = fmax(reference_error, fabs(want[i] - truth[i]));
                reference_error = fmax(reference_error, fabs(reversed[i] - truth[i]));
                if (fabs(got[i] - truth[i]) > engine_error) {
                    engine_error = fabs(got[i] - truth[i]);
                    worst = i;
                }
            }
            ck_assert_msg(engine_error <= F32_ERROR_RATIO * reference_error + F32_FLOOR * scale,
                          "%s: %s%zu[%zu] engine %.9g reference %.9g float64 %.17g: error %g, "
                          "the reference's %g (scale %g)",
                          what, t ? "b" : "W", l + 1, worst - bounds[t], got[worst], want[worst],
                          truth[worst], engine_error, reference_error, scale);
        }
    }
}

/* The float64 gradient of a float32 model's parameters. */
struct float64_truth {
    struct mlp model;
    struct reference *reference;
};

static void truth_create(struct float64_truth *t, const struct mlp *m, const struct dataset *ds)
{
    struct error err;
    ck_assert_msg(mlp_create(&t->model, m->n_layers, m->widths, m->activation, m->loss,
                             PRECISION_F64, &err) == 0,
                  "%s", err.msg);
    ck_assert_msg(reference_create(&t->reference, &t->model, ds, &err) == 0, "%s", err.msg);
}

static const double *truth_gradient(struct float64_truth *t, const struct mlp *m,
                                    const size_t *batch, size_t count)
{
    double *params = t->model.params;
    for (size_t i = 0; i < mlp_param_count(m); i++)
        params[i] = ((const float *)m->params)[i];
    reference_batch_gradient(t->reference, &t->model, batch, count);
    return reference_gradient(t->reference);
}

static void truth_destroy(struct float64_truth *t)
{
    reference_destroy(t->reference);
    mlp_free(&t->model);
}

/* Plain SGD, the tutorial's update. */
static void sgd_step(struct engine *e, struct mlp *m, double lr)
{
    const struct optimizer sgd = {.kind = OPTIMIZER_SGD};
    struct optimizer_state state = {0};
    const struct optimizer_step step = {.lr = lr};
    engine_update(e, m, &sgd, &step, &state);
}

static size_t *shuffled_order(size_t n, int64_t seed)
{
    struct py_random rng;
    size_t *order = malloc(n * sizeof *order);
    ck_assert_ptr_nonnull(order);
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    py_random_seed(&rng, seed);
    py_random_shuffle(&rng, order, n);
    return order;
}

/* `steps` steps of batches of b images (the last of an epoch holds the
 * rest; b = N: batch NULL) from a shuffled order: at each, the engine's and
 * the reference's loss and gradient on the same parameters must agree; then
 * the engine's SGD update moves the parameters on. */
static void compare_steps(const struct dataset *ds, struct mlp *m, size_t b, unsigned steps,
                          double lr, const char *what)
{
    struct engine *e;
    struct reference *r, *r_reversed = NULL;
    struct float64_truth truth;
    struct error err;
    char where[256];
    const size_t N = ds->count;
    const bool f32 = m->precision == PRECISION_F32;
    size_t *order = shuffled_order(N, 5 + (int64_t)b), *reversed = malloc(N * sizeof *reversed);
    ck_assert_ptr_nonnull(reversed);
    ck_assert_msg(engine_create(&e, m, ds, NULL, 0, &err) == 0, "%s", err.msg);
    ck_assert_msg(reference_create(&r, m, ds, &err) == 0, "%s", err.msg);
    if (f32) {
        truth_create(&truth, m, ds);
        ck_assert_msg(reference_create(&r_reversed, m, ds, &err) == 0, "%s", err.msg);
    }
    for (unsigned step = 0, first = 0; step < steps; step++) {
        const size_t count = N - first < b ? N - first : b;
        const size_t *batch = b >= N ? NULL : order + first;
        const double got = engine_batch_gradient(e, m, batch, count);
        const double want = reference_batch_gradient(r, m, batch, count);
        snprintf(where, sizeof where, "%s, batch %zu of %zu, step %u", what, count, N, step);
        ck_assert_msg(fabs(got - want) <= rtol_of(m->precision) * fabs(want),
                      "%s: loss %.17g vs reference %.17g", where, got, want);
        if (f32) {
            for (size_t i = 0; i < count; i++)
                reversed[i] = batch ? batch[count - 1 - i] : count - 1 - i;
            reference_batch_gradient(r_reversed, m, reversed, count);
            assert_f32_tensors_close(m, engine_gradient(e), reference_gradient(r),
                                     reference_gradient(r_reversed),
                                     truth_gradient(&truth, m, batch, count), where);
        }
        else
            assert_f64_tensors_close(m, engine_gradient(e), reference_gradient(r), where);
        sgd_step(e, m, lr);
        first = first + count < N ? first + (unsigned)count : 0;
    }
    if (f32)
        truth_destroy(&truth);
    reference_destroy(r_reversed);
    reference_destroy(r);
    engine_destroy(e);
    free(reversed);
    free(order);
}

/* The matrix: depth 1 (no hidden layer: activation and width play no
 * part), then depths 2-4 with every hidden width, activation and loss. */
static const size_t matrix_widths[] = {1, 5, 33, 128};
enum { MATRIX_DEEP = 3 * 4 * 3 * 2, MATRIX_SIZE = 2 + MATRIX_DEEP };

static void matrix_config(int i, size_t *n_layers, size_t *widths, enum activation *activation,
                          enum loss *loss)
{
    *loss = (enum loss)(i % 2);
    *activation = ACTIVATION_RELU;
    *n_layers = 1;
    if (i >= 2) {
        const int deep = i - 2;
        *activation = (enum activation)(deep / 2 % 3);
        *n_layers = 2 + (size_t)(deep / 24);
        for (size_t l = 1; l < *n_layers; l++)
            widths[l] = matrix_widths[deep / 6 % 4];
    }
    widths[0] = WIDTH;
    widths[*n_layers] = TESTDATA_CLASSES;
}

/* Batch sizes 1, 7, 64 (one unit; 64 does not divide N) and N (two
 * units). */
START_TEST(engine_matches_reference_over_the_matrix)
{
    static const size_t batches[] = {1, 7, 64, 150};
    size_t n_layers, widths[MLP_MAX_LAYERS + 1];
    enum activation activation;
    enum loss loss;
    struct dataset ds;
    char what[256], shape[128];
    matrix_config(_i, &n_layers, widths, &activation, &loss);
    make_random_dataset(&ds, 150, 70 + _i);
    ck_assert_uint_eq(engine_unit_count(ds.count), 2);
    for (int precision = PRECISION_F32; precision <= PRECISION_F64; precision++) {
        for (size_t b = 0; b < sizeof batches / sizeof *batches; b++) {
            struct mlp m;
            make_network(&m, n_layers, widths, activation, loss, (enum precision)precision,
                         100 + _i);
            mlp_format_widths(&m, shape, sizeof shape);
            snprintf(what, sizeof what, "%s %s %s %s", shape, activation_name(activation),
                     loss_name(loss), precision_name(m.precision));
            compare_steps(&ds, &m, batches[b], 3, 0.1, what);
            mlp_free(&m);
        }
    }
    dataset_free(&ds);
}
END_TEST

/* Many units, a batch that leaves one image over, the real digits, and
 * images of an odd number of pixels (the last pixel has no partner in its
 * pair). */
START_TEST(engine_matches_reference_on_mnist_and_odd_images)
{
    struct dataset mnist, odd;
    struct mlp m;
    load_mnist_slice(&mnist, MNIST_TRAIN, 1001);
    make_random_images(&odd, 300, 3, 7, 17);
    for (int precision = PRECISION_F32; precision <= PRECISION_F64; precision++) {
        const size_t tutorial[] = {WIDTH, 32, TESTDATA_CLASSES};
        const size_t deep[] = {21, 33, 17, TESTDATA_CLASSES};
        make_network(&m, 2, tutorial, ACTIVATION_RELU, LOSS_MSE, (enum precision)precision, 3);
        compare_steps(&mnist, &m, 1001, 5, 0.8, "MNIST 784-32-10 full batch");
        compare_steps(&mnist, &m, 100, 12, 0.8, "MNIST 784-32-10 batch 100");
        mlp_free(&m);
        make_network(&m, 3, deep, ACTIVATION_TANH, LOSS_XENT, (enum precision)precision, 4);
        compare_steps(&odd, &m, 300, 3, 0.5, "21-pixel images");
        compare_steps(&odd, &m, 7, 3, 0.5, "21-pixel images");
        mlp_free(&m);
    }
    dataset_free(&mnist);
    dataset_free(&odd);
}
END_TEST

/* The gradient of the engine's loss (batch `batch`, count images) at m
 * against central differences, for every parameter outside the first
 * layer's weights and every 7th of those (which include rows of pixels that
 * are zero in every image: their gradient must be exactly 0). */
static void check_central_differences(const struct dataset *ds, struct mlp *m,
                                      const size_t *batch, size_t count)
{
    struct engine *e;
    struct error err;
    const double h = 1e-6;
    const size_t P = mlp_param_count(m), first_bias = mlp_layer(m, 0).bias;
    double *grad = malloc(P * sizeof *grad), *params = m->params;
    ck_assert_ptr_nonnull(grad);
    ck_assert(m->precision == PRECISION_F64);
    ck_assert_msg(engine_create(&e, m, ds, NULL, 0, &err) == 0, "%s", err.msg);
    engine_batch_gradient(e, m, batch, count);
    memcpy(grad, engine_gradient(e), P * sizeof *grad);
    size_t checked = 0;
    for (size_t p = 0; p < P; p += p < first_bias ? 7 : 1) {
        const double saved = params[p];
        params[p] = saved + h;
        const double up = engine_batch_gradient(e, m, batch, count);
        params[p] = saved - h;
        const double down = engine_batch_gradient(e, m, batch, count);
        params[p] = saved;
        const double numeric = (up - down) / (2 * h);
        /* Truncation error is O(h^2) relative (1e-12 here, kinks of ReLU
         * aside); rounding contributes eps * loss / h, about 1e-10
         * absolute.  A gradient off by a factor, a sign or a missing term
         * misses both. */
        if (!(fabs(numeric - grad[p]) <= 1e-9 + 1e-6 * fabs(grad[p])))
            ck_abort_msg("parameter %zu: analytic %.12g numeric %.12g", p, grad[p], numeric);
        checked++;
    }
    ck_assert_uint_gt(checked, 100);
    engine_destroy(e);
    free(grad);
}

START_TEST(engine_gradient_matches_central_differences)
{
    static const struct {
        size_t n_layers, widths[4];
        enum activation activation;
        enum loss loss;
    } nets[] = {
        {2, {WIDTH, 5, TESTDATA_CLASSES}, ACTIVATION_RELU, LOSS_XENT},
        {2, {WIDTH, 5, TESTDATA_CLASSES}, ACTIVATION_TANH, LOSS_MSE},
        {2, {WIDTH, 5, TESTDATA_CLASSES}, ACTIVATION_SIGMOID, LOSS_MSE},
        {3, {WIDTH, 6, 5, TESTDATA_CLASSES}, ACTIVATION_TANH, LOSS_XENT},
        {3, {WIDTH, 4, 7, TESTDATA_CLASSES}, ACTIVATION_SIGMOID, LOSS_XENT},
    };
    struct dataset ds;
    make_random_dataset(&ds, 40, 99);
    size_t *order = shuffled_order(ds.count, 8);
    for (size_t i = 0; i < sizeof nets / sizeof *nets; i++) {
        struct mlp m;
        make_network(&m, nets[i].n_layers, nets[i].widths, nets[i].activation, nets[i].loss,
                     PRECISION_F64, 5 + (int64_t)i);
        check_central_differences(&ds, &m, NULL, ds.count);
        check_central_differences(&ds, &m, order, 7);
        mlp_free(&m);
    }
    free(order);
    dataset_free(&ds);
}
END_TEST

static const int thread_counts[] = {1, 2, 3, 7, 16, 24, 64, 128, 256};

/* Steps of Adam with weight decay on batches of b from one shuffle (and
 * one from the rest), with `threads` threads, as the trainer takes them
 * (engine_train_step); the losses in losses[steps]. */
static void train_batches(struct mlp *trained, const struct mlp *initial,
                          const struct dataset *ds, size_t b, int threads, unsigned steps,
                          double *losses)
{
    const struct optimizer adam = {.kind = OPTIMIZER_ADAM, .weight_decay = 1e-3, .beta1 = 0.9,
                                   .beta2 = 0.999, .eps = 1e-8};
    struct optimizer_state state;
    struct engine *e;
    struct error err;
    size_t *order = shuffled_order(ds->count, 12);
    copy_model(trained, initial);
    ck_assert_msg(engine_create(&e, trained, ds, NULL, threads, &err) == 0, "%s", err.msg);
    ck_assert_msg(optimizer_state_create(&state, &adam, mlp_param_count(trained),
                                         trained->precision, &err) == 0,
                  "%s", err.msg);
    for (unsigned step = 0, first = 0; step < steps; step++) {
        const size_t count = ds->count - first < b ? ds->count - first : b;
        const struct optimizer_step s = optimizer_begin_step(&adam, &state, 1e-3);
        losses[step] = engine_train_step(e, trained, b >= ds->count ? NULL : order + first,
                                         count, &adam, &s, &state);
        first = first + count < ds->count ? first + (unsigned)count : 0;
    }
    optimizer_state_free(&state);
    engine_destroy(e);
    free(order);
}

enum { DETERMINISM_STEPS = 8 };

static void assert_deterministic(const struct dataset *ds, const struct mlp *initial, size_t b)
{
    struct mlp first, other;
    double losses[DETERMINISM_STEPS], first_losses[DETERMINISM_STEPS];
    train_batches(&first, initial, ds, b, thread_counts[0], DETERMINISM_STEPS, first_losses);
    for (size_t t = 1; t < sizeof thread_counts / sizeof *thread_counts; t++) {
        train_batches(&other, initial, ds, b, thread_counts[t], DETERMINISM_STEPS, losses);
        ck_assert_msg(memcmp(first.params, other.params,
                             mlp_param_count(&first) * precision_size(first.precision)) == 0,
                      "%s, batch %zu, %d threads: parameters differ from 1 thread",
                      precision_name(first.precision), b, thread_counts[t]);
        ck_assert_msg(memcmp(first_losses, losses, sizeof losses) == 0,
                      "%s, batch %zu, %d threads: losses differ from 1 thread",
                      precision_name(first.precision), b, thread_counts[t]);
        mlp_free(&other);
    }
    mlp_free(&first);
}

/* Mini-batches (of 64: one unit, whose tiles the threads share; of 129:
 * two units, of 64 and 65 rows; of 300: 16 units, the last batch of 101 in
 * one) and the whole set (16 units): thread counts that cut the units into
 * ranges of one, of several and of uneven lengths, or share a few ranges'
 * tiles. */
START_TEST(engine_is_bitwise_deterministic_across_thread_counts)
{
    const size_t widths[] = {WIDTH, 33, 17, TESTDATA_CLASSES};
    struct dataset ds;
    make_random_dataset(&ds, 1001, 3);
    for (int precision = PRECISION_F32; precision <= PRECISION_F64; precision++) {
        struct mlp initial;
        make_network(&initial, 3, widths, ACTIVATION_TANH, LOSS_XENT, (enum precision)precision,
                     42);
        assert_deterministic(&ds, &initial, 64);
        assert_deterministic(&ds, &initial, 129);
        assert_deterministic(&ds, &initial, 300);
        assert_deterministic(&ds, &initial, ds.count);
        mlp_free(&initial);
    }
    dataset_free(&ds);
}
END_TEST

/* The structure an engine keeps for the whole dataset (batch NULL) is
 * still right after mini-batches, and a batch listing every image in order
 * is the whole dataset, bitwise. */
START_TEST(whole_dataset_structure_survives_mini_batches)
{
    const size_t widths[] = {WIDTH, 20, TESTDATA_CLASSES};
    struct dataset ds;
    struct mlp m;
    struct engine *fresh, *reused;
    struct error err;
    make_random_dataset(&ds, 700, 6);
    make_network(&m, 2, widths, ACTIVATION_RELU, LOSS_MSE, PRECISION_F32, 9);
    size_t *order = shuffled_order(ds.count, 1), *identity = malloc(ds.count * sizeof *identity);
    ck_assert_ptr_nonnull(identity);
    for (size_t i = 0; i < ds.count; i++)
        identity[i] = i;
    const size_t bytes = mlp_param_count(&m) * sizeof(float);
    ck_assert_msg(engine_create(&fresh, &m, &ds, NULL, 0, &err) == 0, "%s", err.msg);
    ck_assert_msg(engine_create(&reused, &m, &ds, NULL, 0, &err) == 0, "%s", err.msg);
    const double want = engine_batch_gradient(fresh, &m, NULL, ds.count);
    engine_batch_gradient(reused, &m, NULL, ds.count);
    engine_batch_gradient(reused, &m, order, 300);
    engine_batch_gradient(reused, &m, order + 300, 5);
    ck_assert(engine_batch_gradient(reused, &m, NULL, ds.count) == want);
    ck_assert(memcmp(engine_gradient(reused), engine_gradient(fresh), bytes) == 0);
    ck_assert(engine_batch_gradient(reused, &m, identity, ds.count) == want);
    ck_assert(memcmp(engine_gradient(reused), engine_gradient(fresh), bytes) == 0);
    /* Other threads cut the whole set into other blocks: built again. */
    engine_batch_gradient(reused, &m, NULL, ds.count);
    engine_use_threads(reused, 16);
    ck_assert(engine_batch_gradient(reused, &m, NULL, ds.count) == want);
    ck_assert(memcmp(engine_gradient(reused), engine_gradient(fresh), bytes) == 0);
    engine_destroy(fresh);
    engine_destroy(reused);
    free(order);
    free(identity);
    mlp_free(&m);
    dataset_free(&ds);
}
END_TEST

enum { JOB_STEPS = 12 };

/* One engine's training, run by its own thread in the concurrent test: job
 * threads must not ck_assert, so each records what went wrong instead. */
struct training_job {
    const struct dataset *ds;
    struct mlp model;             /* trained in place */
    size_t batch;
    int threads;                  /* the engine's */
    pthread_barrier_t *created;   /* NULL, or every job's engine exists before any trains */
    double losses[JOB_STEPS];
    int status;
    struct error err;
};

static void *run_training_job(void *context)
{
    struct training_job *job = context;
    struct engine *e;
    const size_t N = job->ds->count;
    size_t order[JOB_STEPS * 64];
    for (size_t i = 0; i < JOB_STEPS * job->batch; i++)
        order[i] = (i * 7919) % N;
    job->status = engine_create(&e, &job->model, job->ds, NULL, job->threads, &job->err);
    if (job->created)
        pthread_barrier_wait(job->created);
    for (unsigned step = 0; job->status == 0 && step < JOB_STEPS; step++) {
        job->losses[step] = engine_batch_gradient(e, &job->model, order + step * job->batch,
                                                  job->batch);
        sgd_step(e, &job->model, 0.1);
    }
    engine_destroy(e);
    return NULL;
}

/* Two jobs, different in precision, shape, data, batch and thread count,
 * so that state one engine shared with the other would show in either's
 * bits. */
static void prepare_jobs(struct training_job jobs[2], const struct dataset *mnist,
                         const struct dataset *random_ds, const struct mlp initial[2])
{
    memset(jobs, 0, 2 * sizeof *jobs);
    jobs[0].ds = mnist;
    jobs[0].threads = 3;
    jobs[0].batch = 64;
    jobs[1].ds = random_ds;
    jobs[1].threads = 2;
    jobs[1].batch = 50;
    for (int j = 0; j < 2; j++)
        copy_model(&jobs[j].model, &initial[j]);
}

START_TEST(concurrent_engines_train_as_they_do_alone)
{
    const size_t deep[] = {WIDTH, 33, 12, TESTDATA_CLASSES};
    struct dataset mnist, random_ds;
    struct mlp initial[2];
    struct training_job alone[2], together[2];
    pthread_t threads[2];
    pthread_barrier_t created;

    load_mnist_slice(&mnist, MNIST_TRAIN, 2000);
    make_random_dataset(&random_ds, 1001, 5);
    make_model(&initial[0], WIDTH, 32, PRECISION_F32, 11);
    make_network(&initial[1], 3, deep, ACTIVATION_SIGMOID, LOSS_XENT, PRECISION_F64, 12);

    prepare_jobs(alone, &mnist, &random_ds, initial);
    for (int j = 0; j < 2; j++) {
        run_training_job(&alone[j]);
        ck_assert_msg(alone[j].status == 0, "%s", alone[j].err.msg);
    }

    prepare_jobs(together, &mnist, &random_ds, initial);
    ck_assert_int_eq(pthread_barrier_init(&created, NULL, 2), 0);
    for (int j = 0; j < 2; j++) {
        together[j].created = &created;
        ck_assert_int_eq(pthread_create(&threads[j], NULL, run_training_job, &together[j]), 0);
    }
    for (int j = 0; j < 2; j++)
        ck_assert_int_eq(pthread_join(threads[j], NULL), 0);
    pthread_barrier_destroy(&created);

    for (int j = 0; j < 2; j++) {
        const struct mlp *m = &together[j].model;
        ck_assert_msg(together[j].status == 0, "%s", together[j].err.msg);
        ck_assert_msg(memcmp(m->params, alone[j].model.params,
                             mlp_param_count(m) * precision_size(m->precision)) == 0 &&
                          memcmp(together[j].losses, alone[j].losses,
                                 sizeof together[j].losses) == 0,
                      "%s engine (%d threads) trained beside another differs from alone",
                      precision_name(m->precision), together[j].threads);
        mlp_free(&together[j].model);
        mlp_free(&alone[j].model);
        mlp_free(&initial[j]);
    }
    dataset_free(&mnist);
    dataset_free(&random_ds);
}
END_TEST

/* An engine's thread count is its own: the process's default stays. */
START_TEST(engine_thread_count_leaves_the_process_default)
{
    struct dataset ds;
    struct mlp m;
    struct engine *e;
    struct error err;
    const int before = engine_max_threads();
    make_random_dataset(&ds, 300, 4);
    make_model(&m, WIDTH, 8, PRECISION_F32, 4);
    ck_assert_msg(engine_create(&e, &m, &ds, NULL, before + 3, &err) == 0, "%s", err.msg);
    engine_batch_gradient(e, &m, NULL, ds.count);
    sgd_step(e, &m, 0.5);
    engine_use_threads(e, before + 1);
    engine_batch_gradient(e, &m, NULL, ds.count);
    sgd_step(e, &m, 0.5);
    ck_assert_int_eq(engine_max_threads(), before);
    engine_destroy(e);
    mlp_free(&m);
    dataset_free(&ds);
}
END_TEST

START_TEST(unknown_instruction_set_is_an_error)
{
    struct dataset ds;
    struct mlp m;
    struct engine *e;
    struct error err;
    make_random_dataset(&ds, 10, 1);
    make_model(&m, WIDTH, 4, PRECISION_F32, 1);
    ck_assert_int_eq(engine_create(&e, &m, &ds, "sse9", 0, &err), -1);
    ck_assert_msg(strstr(err.msg, "unknown instruction set 'sse9'"), "message: %s", err.msg);
    mlp_free(&m);
    dataset_free(&ds);
}
END_TEST

/* Layer by layer from the input, W row by row, each from its own bound
 * 1/sqrt(n_in); biases 0 (SPEC part 2). */
START_TEST(uniform_init_draws_layer_by_layer)
{
    const size_t widths[] = {WIDTH, 32, 7, TESTDATA_CLASSES};
    struct mlp m;
    struct py_random rng;
    make_network(&m, 3, widths, ACTIVATION_RELU, LOSS_MSE, PRECISION_F64, 1337);
    py_random_seed(&rng, 1337);
    const double *p = m.params;
    for (size_t l = 0; l < m.n_layers; l++) {
        const struct mlp_layer layer = mlp_layer(&m, l);
        const double bound = 1 / sqrt((double)layer.n_in);
        for (size_t i = layer.weights; i < layer.bias; i++)
            if (p[i] != py_random_uniform(&rng, -bound, bound))
                ck_abort_msg("layer %zu: weight %zu is not the draw", l + 1, i - layer.weights);
        for (size_t i = layer.bias; i < layer.bias + layer.n_out; i++)
            if (p[i] != 0)
                ck_abort_msg("layer %zu: bias %zu is not 0", l + 1, i - layer.bias);
    }
    mlp_free(&m);
}
END_TEST

START_TEST(unit_count_depends_only_on_sample_count)
{
    ck_assert_uint_eq(engine_unit_count(1), 1);
    ck_assert_uint_eq(engine_unit_count(128), 1);
    ck_assert_uint_eq(engine_unit_count(129), 2);
    ck_assert_uint_eq(engine_unit_count(255), 2);
    ck_assert_uint_eq(engine_unit_count(256), 16);  /* 16 threads at a batch of 256 */
    ck_assert_uint_eq(engine_unit_count(2048), 16);
    ck_assert_uint_eq(engine_unit_count(2049), 17);
    ck_assert_uint_eq(engine_unit_count(6000), 47);
    ck_assert_uint_eq(engine_unit_count(60000), 469);  /* 256 threads at all of MNIST */
}
END_TEST

/* The pieces a range's walk leaves, simulated here unit by unit: push the
 * unit as a leaf, then while the top two are siblings (same level, the
 * lower's index even, the upper's the next) make them their parent. */
static size_t walk_pieces(size_t first, size_t end)
{
    size_t level[130], index[130], n = 0;
    for (size_t u = first; u < end; u++) {
        level[n] = 0;
        index[n++] = u;
        while (n >= 2 && level[n - 2] == level[n - 1] && index[n - 2] % 2 == 0 &&
               index[n - 1] == index[n - 2] + 1) {
            level[n - 2]++;
            index[n - 2] /= 2;
            n--;
        }
    }
    return n;
}

/* The partials a step keeps are the pieces the threads' ranges leave, for
 * batch sizes and thread counts that cut the units every way: aligned and
 * not, ranges of one unit, more threads than units. */
START_TEST(partial_count_is_the_ranges_pieces)
{
    static const size_t sizes[] = {1, 64, 100, 256, 1001, 6000, 60000, 1000000};
    static const int threads[] = {1, 2, 3, 5, 16, 24, 64, 256, 1000};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
            const size_t units = engine_unit_count(sizes[i]);
            const size_t ranges = units < (size_t)threads[t] ? units : (size_t)threads[t];
            size_t want = 0;
            for (size_t r = 0; r < ranges; r++)
                want += walk_pieces(r * units / ranges, (r + 1) * units / ranges);
            ck_assert_msg(engine_partial_count(sizes[i], threads[t]) == want,
                          "%zu samples, %d threads: %zu partials, want %zu", sizes[i],
                          threads[t], engine_partial_count(sizes[i], threads[t]), want);
        }
    /* The memory of the partials grows with the tree's depth: one thread
     * over all of MNIST's 469 units (111010101 in binary) keeps 6 subtrees,
     * and two threads 5 + 8. */
    ck_assert_uint_eq(engine_partial_count(60000, 1), 6);
    ck_assert_uint_eq(engine_partial_count(60000, 2), 13);
}
END_TEST

/* Every optimiser, with and without momentum, Nesterov and weight decay,
 * under every schedule: the trainer on the engine (its parallel update over
 * blocks of the arena, moments included) against the trainer on the serial
 * reference (optimizer_apply over the whole arena at once), in float64,
 * through shuffled batches of 140 of 300 images (2 units, and a last
 * batch of 20 in one) for three epochs.  The two
 * differ only in the order of the gradients' sums, which a step of Adam can
 * amplify where a gradient is tiny beside its terms; 1e-10 of each tensor's
 * largest magnitude stays far above that (below 1e-13 measured) and far below any
 * wrong term, step size or moment (1e-4 or more). */
static const struct optimizer update_optimizers[] = {
    {.kind = OPTIMIZER_SGD},
    {.kind = OPTIMIZER_SGD, .momentum = 0.9},
    {.kind = OPTIMIZER_SGD, .momentum = 0.9, .nesterov = true},
    {.kind = OPTIMIZER_SGD, .weight_decay = 1e-3},
    {.kind = OPTIMIZER_SGD, .momentum = 0.5, .nesterov = true, .weight_decay = 1e-2},
    {.kind = OPTIMIZER_ADAM, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8},
    {.kind = OPTIMIZER_ADAM, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-6, .weight_decay = 1e-3},
    {.kind = OPTIMIZER_ADAMW, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01},
    {.kind = OPTIMIZER_ADAMW, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8},
};
enum { UPDATE_OPTIMIZERS = sizeof update_optimizers / sizeof *update_optimizers };
#define UPDATE_RTOL 1e-10

static void start_trainer(struct trainer *t, enum engine_kind kind, const struct mlp *m,
                          const struct dataset *ds, const struct training *settings)
{
    struct training_state state = {0};
    struct error err;
    py_random_seed(&state.rng, 11);
    ck_assert_msg(optimizer_state_create(&state.optimizer, &settings->optimizer,
                                         mlp_param_count(m), m->precision, &err) == 0,
                  "%s", err.msg);
    ck_assert_msg(trainer_create(t, kind, m, ds, settings, &state, 2, NULL, &err) == 0, "%s", err.msg);
}

START_TEST(engine_trains_like_the_reference_with_every_optimiser_and_schedule)
{
    const size_t widths[] = {WIDTH, 9, 6, TESTDATA_CLASSES};
    const struct optimizer *o = &update_optimizers[_i % UPDATE_OPTIMIZERS];
    const enum schedule_kind schedule = (enum schedule_kind)(_i / UPDATE_OPTIMIZERS);
    const double lr = o->kind == OPTIMIZER_SGD ? 0.05 : 0.01;
    const struct training settings = {
        .batch = 140,
        .optimizer = *o,
        .schedule = {.kind = schedule, .lr = lr, .step_epochs = 1, .step_gamma = 0.5},
        .epochs = 3,
    };
    struct dataset ds;
    struct mlp on_engine, on_reference;
    struct trainer engine, reference;
    char what[128];
    snprintf(what, sizeof what, "%s (momentum %g%s, weight decay %g), %s schedule",
             optimizer_name(o->kind), o->momentum, o->nesterov ? " Nesterov" : "",
             o->weight_decay, schedule_name(schedule));
    make_random_dataset(&ds, 300, 41);
    ck_assert_uint_eq(engine_unit_count(settings.batch), 2);
    make_network(&on_engine, 3, widths, ACTIVATION_TANH, LOSS_XENT, PRECISION_F64, 12);
    copy_model(&on_reference, &on_engine);
    start_trainer(&engine, ENGINE_OMP, &on_engine, &ds, &settings);
    start_trainer(&reference, ENGINE_REFERENCE, &on_reference, &ds, &settings);
    for (unsigned epoch = 0; epoch < settings.epochs; epoch++) {
        const double got = trainer_epoch(&engine, &on_engine);
        const double want = trainer_epoch(&reference, &on_reference);
        ck_assert_msg(fabs(got - want) <= UPDATE_RTOL * fabs(want),
                      "%s: epoch %u loss %.17g vs reference %.17g", what, epoch, got, want);
    }
    ck_assert_uint_eq(engine.state.optimizer.step, reference.state.optimizer.step);
    assert_f64_tensors_close_within(&on_engine, on_engine.params, on_reference.params,
                                    UPDATE_RTOL, what);
    trainer_destroy(&engine);
    trainer_destroy(&reference);
    mlp_free(&on_engine);
    mlp_free(&on_reference);
    dataset_free(&ds);
}
END_TEST

/* The profile charges every kernel of every layer the network has (the
 * first layer has no input gradient) and nothing else, counts the profiled
 * steps and images only, and a change of thread count ends it. */
START_TEST(profile_charges_each_kernel_of_each_layer)
{
    const size_t widths[] = {WIDTH, 16, 8, TESTDATA_CLASSES};
    struct dataset ds;
    struct mlp m;
    struct engine *e;
    struct error err;
    struct engine_profile p;
    size_t *order = shuffled_order(300, 7);
    make_random_dataset(&ds, 300, 3);
    make_network(&m, 3, widths, ACTIVATION_RELU, LOSS_XENT, PRECISION_F32, 5);
    ck_assert_msg(engine_create(&e, &m, &ds, NULL, 2, &err) == 0, "%s", err.msg);
    engine_batch_gradient(e, &m, order, 100);
    engine_profile_read(e, &p);
    ck_assert_uint_eq(p.steps, 0);
    ck_assert(p.other_seconds == 0 && p.update_seconds == 0);
    ck_assert_int_eq(engine_profile_start(e), 0);
    const struct optimizer sgd = {.kind = OPTIMIZER_SGD};
    struct optimizer_state state = {0};
    const struct optimizer_step step = {.lr = 0.1};
    for (size_t first = 0; first < 300; first += 100)
        engine_train_step(e, &m, order + first, 100, &sgd, &step, &state);
    engine_profile_read(e, &p);
    ck_assert_uint_eq(p.steps, 3);
    ck_assert_uint_eq(p.images, 300);
    ck_assert(p.other_seconds > 0);
    ck_assert(p.update_seconds > 0);
    for (size_t l = 0; l < MLP_MAX_LAYERS; l++)
        for (size_t k = 0; k < ENGINE_KERNELS; k++) {
            const bool runs = l < m.n_layers && (l > 0 || k != ENGINE_INPUT_GRADIENT);
            ck_assert_msg(runs ? p.seconds[l][k] > 0 : p.seconds[l][k] == 0,
                          "layer %zu kernel %zu: %g s", l, k, p.seconds[l][k]);
        }
    engine_use_threads(e, 1);
    engine_batch_gradient(e, &m, order, 100);
    engine_profile_read(e, &p);
    ck_assert_uint_eq(p.steps, 0);
    engine_destroy(e);
    mlp_free(&m);
    dataset_free(&ds);
    free(order);
}
END_TEST

/* A training step in one parallel region (engine_train_step, which sums
 * the units' tree inside the update) is the gradient, then the
 * update, to the bit: same losses, weights, gradients and moments, with
 * one unit and with 16, for SGD with momentum and for Adam. */
START_TEST(train_step_is_gradient_then_update)
{
    const size_t widths[] = {WIDTH, 24, 9, TESTDATA_CLASSES};
    const struct optimizer optimizers[] = {
        {.kind = OPTIMIZER_SGD, .momentum = 0.9, .nesterov = true},
        {.kind = OPTIMIZER_ADAM, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 1e-3},
    };
    const size_t batches[] = {100, 390};
    struct dataset ds;
    size_t *order = shuffled_order(400, 11);
    struct error err;
    make_random_dataset(&ds, 400, 9);
    for (size_t o = 0; o < 2; o++)
        for (size_t b = 0; b < 2; b++)
            for (int precision = 0; precision < 2; precision++) {
                const enum precision p = precision ? PRECISION_F64 : PRECISION_F32;
                struct mlp fused, split;
                struct engine *ef, *es;
                struct optimizer_state sf, ss;
                make_network(&fused, 3, widths, ACTIVATION_TANH, LOSS_XENT, p, 3);
                make_network(&split, 3, widths, ACTIVATION_TANH, LOSS_XENT, p, 3);
                ck_assert_int_eq(optimizer_state_create(&sf, &optimizers[o],
                                                        mlp_param_count(&fused), p, &err), 0);
                ck_assert_int_eq(optimizer_state_create(&ss, &optimizers[o],
                                                        mlp_param_count(&split), p, &err), 0);
                ck_assert_msg(engine_create(&ef, &fused, &ds, NULL, 3, &err) == 0, "%s", err.msg);
                ck_assert_msg(engine_create(&es, &split, &ds, NULL, 2, &err) == 0, "%s", err.msg);
                for (unsigned step = 0; step < 4; step++) {
                    const size_t *batch = order + (step % 2) * 10;
                    const struct optimizer_step kf = optimizer_begin_step(&optimizers[o], &sf, 0.01);
                    const struct optimizer_step ks = optimizer_begin_step(&optimizers[o], &ss, 0.01);
                    const double lf =
                        engine_train_step(ef, &fused, batch, batches[b], &optimizers[o], &kf, &sf);
                    const double ls = engine_batch_gradient(es, &split, batch, batches[b]);
                    engine_update(es, &split, &optimizers[o], &ks, &ss);
                    const size_t bytes = mlp_param_count(&fused) * precision_size(p);
                    ck_assert_msg(lf == ls, "optimizer %zu batch %zu step %u: loss %.17g, %.17g",
                                  o, batches[b], step, lf, ls);
                    ck_assert_msg(memcmp(fused.params, split.params, bytes) == 0,
                                  "optimizer %zu batch %zu step %u: weights differ", o, batches[b],
                                  step);
                    ck_assert(memcmp(engine_gradient(ef), engine_gradient(es), bytes) == 0);
                    ck_assert(memcmp(sf.velocity, ss.velocity, bytes) == 0);
                    ck_assert(!sf.first_moment ||
                              memcmp(sf.first_moment, ss.first_moment, bytes) == 0);
                }
                engine_destroy(ef);
                engine_destroy(es);
                optimizer_state_free(&sf);
                optimizer_state_free(&ss);
                mlp_free(&fused);
                mlp_free(&split);
            }
    dataset_free(&ds);
    free(order);
}
END_TEST

/* A batch that repeats an image has more pixel entries than the whole
 * dataset, so the engine's lists must grow: the densest image 290 times
 * among 10 others, on one thread and on seven, against the reference. */
START_TEST(batch_that_repeats_images_matches_the_reference)
{
    const size_t widths[] = {WIDTH, 16, TESTDATA_CLASSES};
    enum { IMAGES = 300 };
    struct dataset ds;
    struct mlp m;
    struct engine *one, *seven;
    struct reference *r;
    struct error err;
    size_t batch[IMAGES], densest = 0, most = 0;
    make_random_dataset(&ds, IMAGES, 17);
    for (size_t n = 0; n < IMAGES; n++) {
        size_t nonzero = 0;
        for (size_t p = 0; p < WIDTH; p++)
            nonzero += ds.pixels[n * WIDTH + p] != 0;
        if (nonzero > most) {
            most = nonzero;
            densest = n;
        }
    }
    for (size_t i = 0; i < IMAGES; i++)
        batch[i] = i % 29 == 0 ? i : densest;
    make_network(&m, 2, widths, ACTIVATION_RELU, LOSS_XENT, PRECISION_F64, 4);
    ck_assert_msg(engine_create(&one, &m, &ds, NULL, 1, &err) == 0, "%s", err.msg);
    ck_assert_msg(engine_create(&seven, &m, &ds, NULL, 7, &err) == 0, "%s", err.msg);
    ck_assert_msg(reference_create(&r, &m, &ds, &err) == 0, "%s", err.msg);
    const double loss = engine_batch_gradient(one, &m, batch, IMAGES);
    ck_assert(engine_batch_gradient(seven, &m, batch, IMAGES) == loss);
    ck_assert(memcmp(engine_gradient(one), engine_gradient(seven),
                     mlp_param_count(&m) * sizeof(double)) == 0);
    const double want = reference_batch_gradient(r, &m, batch, IMAGES);
    ck_assert_msg(fabs(loss - want) <= RTOL_F64 * fabs(want), "loss %.17g, reference %.17g",
                  loss, want);
    assert_f64_tensors_close(&m, engine_gradient(one), reference_gradient(r), "repeated images");
    reference_destroy(r);
    engine_destroy(one);
    engine_destroy(seven);
    mlp_free(&m);
    dataset_free(&ds);
}
END_TEST

/* An image's list holds exactly its nonzero pixel pairs, in order, with
 * both pixels; lists appended image by image (as a rank of mpirun receives
 * a mini-batch's rows) stand in for the images: an engine made on blank
 * images of the same labels, given the batch's lists, computes the bits
 * that an engine on the images does.  Lists it was not made for are an
 * error. */
START_TEST(pixel_lists_stand_in_for_images)
{
    const size_t widths[] = {WIDTH, 20, TESTDATA_CLASSES};
    enum { IMAGES = 300, ROWS = 260 };
    struct dataset ds, blank;
    struct pixel_lists all, rows;
    struct mlp m;
    struct engine *on_images, *on_lists;
    struct error err;
    size_t *order = shuffled_order(IMAGES, 5), entries = 0;
    make_random_dataset(&ds, IMAGES, 23);
    ck_assert_msg(pixel_lists_build(&all, &ds, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(all.count, IMAGES);
    ck_assert_uint_eq(all.pairs, WIDTH / 2);
    for (size_t n = 0; n < IMAGES; n++) {
        size_t length, at = 0;
        const uint32_t *list = pixel_lists_image(&all, n, &length);
        for (size_t p = 0; p < WIDTH / 2; p++) {
            const uint8_t low = ds.pixels[n * WIDTH + 2 * p], high = ds.pixels[n * WIDTH + 2 * p + 1];
            if (!low && !high)
                continue;
            ck_assert_msg(at < length, "image %zu: pair %zu missing", n, p);
            ck_assert_uint_eq(entry_key(list[at]), p);
            ck_assert_uint_eq(entry_low(list[at]), low);
            ck_assert_uint_eq(entry_high(list[at]), high);
            at++;
        }
        ck_assert_uint_eq(at, length);
        entries += length;
    }
    ck_assert_uint_eq(entries, all.image_entries[IMAGES]);

    ck_assert_msg(pixel_lists_create(&rows, WIDTH, ROWS, ROWS * all.pairs, &err) == 0, "%s",
                  err.msg);
    blank = (struct dataset){.count = ROWS, .rows = ds.rows, .cols = ds.cols};
    blank.pixels = calloc(ROWS, WIDTH);
    blank.labels = malloc(ROWS);
    ck_assert(blank.pixels && blank.labels);
    for (size_t row = 0; row < ROWS; row++) {
        size_t length;
        const uint32_t *list = pixel_lists_image(&all, order[row], &length);
        ck_assert_int_eq(pixel_lists_append(&rows, list, length), 0);
        blank.labels[row] = ds.labels[order[row]];
    }
    make_network(&m, 2, widths, ACTIVATION_RELU, LOSS_XENT, PRECISION_F32, 6);
    ck_assert_msg(engine_create(&on_images, &m, &ds, NULL, 3, &err) == 0, "%s", err.msg);
    ck_assert_msg(engine_create(&on_lists, &m, &blank, NULL, 2, &err) == 0, "%s", err.msg);
    ck_assert_msg(engine_load_pixel_lists(on_lists, &rows, &err) == 0, "%s", err.msg);
    const double want = engine_batch_gradient(on_images, &m, order, ROWS);
    const double got = engine_batch_gradient(on_lists, &m, NULL, ROWS);
    ck_assert_msg(got == want, "loss %.17g on the lists, %.17g on the images", got, want);
    ck_assert(memcmp(engine_gradient(on_lists), engine_gradient(on_images),
                     mlp_param_count(&m) * sizeof(float)) == 0);

    ck_assert_int_eq(engine_load_pixel_lists(on_lists, &all, &err), -1);
    ck_assert_msg(strstr(err.msg, "300 images of 784 pixels for an engine made for 260"),
                  "%s", err.msg);
    ck_assert_int_eq(pixel_lists_append(&rows, all.entries, 1), -1);

    engine_destroy(on_images);
    engine_destroy(on_lists);
    mlp_free(&m);
    pixel_lists_free(&all);
    pixel_lists_free(&rows);
    dataset_free(&blank);
    dataset_free(&ds);
    free(order);
}
END_TEST

/* A share of a batch's units (as a rank of mpirun works out) leaves the
 * same pieces, bit for bit, whether the engine keeps them or places them
 * where the caller says (engine_place_pieces, as the ranks gather them);
 * placed memory with room for one piece too few fails the step. */
START_TEST(placed_pieces_are_the_engine_own)
{
    const size_t widths[] = {WIDTH, 12, TESTDATA_CLASSES};
    enum { IMAGES = 600, FIRST_UNIT = 3, END_UNIT = 11, THREADS = 3 };
    struct dataset ds;
    struct mlp m;
    struct engine *own, *placed;
    struct error err;
    size_t *order = shuffled_order(IMAGES, 8);
    make_random_dataset(&ds, IMAGES, 31);
    make_network(&m, 2, widths, ACTIVATION_RELU, LOSS_XENT, PRECISION_F32, 2);
    ck_assert_uint_eq(engine_unit_count(IMAGES), 16);
    const size_t row = engine_unit_row(IMAGES, FIRST_UNIT);
    const size_t rows = engine_unit_row(IMAGES, END_UNIT) - row;
    ck_assert_msg(engine_create(&own, &m, &ds, NULL, THREADS, &err) == 0, "%s", err.msg);
    ck_assert_msg(engine_create(&placed, &m, &ds, NULL, THREADS, &err) == 0, "%s", err.msg);
    const size_t count = engine_piece_count(FIRST_UNIT, END_UNIT, engine_threads(placed));
    const size_t bytes = engine_partial_bytes(placed);
    ck_assert_uint_eq(bytes % 64, 0);
    void *memory = aligned_alloc(64, count * bytes);
    ck_assert(memory);
    engine_place_pieces(placed, memory, count);
    ck_assert_int_eq(engine_share_gradient(own, &m, order + row, rows, IMAGES, FIRST_UNIT,
                                           END_UNIT), 0);
    ck_assert_int_eq(engine_share_gradient(placed, &m, order + row, rows, IMAGES, FIRST_UNIT,
                                           END_UNIT), 0);
    const struct engine_piece *a, *b;
    ck_assert_uint_eq(engine_pieces(own, &a), count);
    ck_assert_uint_eq(engine_pieces(placed, &b), count);
    for (size_t i = 0; i < count; i++) {
        ck_assert_uint_eq(a[i].level, b[i].level);
        ck_assert_uint_eq(a[i].index, b[i].index);
        ck_assert(b[i].partial == (char *)memory + i * bytes);
        ck_assert_msg(memcmp(a[i].partial, b[i].partial, mlp_param_count(&m) * sizeof(float)) ==
                          0, "piece %zu differs", i);
    }
    double losses_own[END_UNIT - FIRST_UNIT], losses_placed[END_UNIT - FIRST_UNIT];
    engine_unit_losses(own, losses_own);
    engine_unit_losses(placed, losses_placed);
    ck_assert(memcmp(losses_own, losses_placed, sizeof losses_own) == 0);

    engine_place_pieces(placed, memory, count - 1);
    ck_assert_int_eq(engine_share_gradient(placed, &m, order + row, rows, IMAGES, FIRST_UNIT,
                                           END_UNIT), -1);
    free(memory);
    engine_destroy(own);
    engine_destroy(placed);
    mlp_free(&m);
    dataset_free(&ds);
    free(order);
}
END_TEST

static Suite *engine_suite(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("engine");
    tcase_set_timeout(tc, 900);
    tcase_add_loop_test(tc, engine_matches_reference_over_the_matrix, 0, MATRIX_SIZE);
    tcase_add_test(tc, engine_matches_reference_on_mnist_and_odd_images);
    tcase_add_loop_test(tc, engine_trains_like_the_reference_with_every_optimiser_and_schedule, 0,
                        3 * UPDATE_OPTIMIZERS);
    tcase_add_test(tc, engine_gradient_matches_central_differences);
    tcase_add_test(tc, engine_is_bitwise_deterministic_across_thread_counts);
    tcase_add_test(tc, whole_dataset_structure_survives_mini_batches);
    tcase_add_test(tc, concurrent_engines_train_as_they_do_alone);
    tcase_add_test(tc, engine_thread_count_leaves_the_process_default);
    tcase_add_test(tc, unknown_instruction_set_is_an_error);
    tcase_add_test(tc, uniform_init_draws_layer_by_layer);
    tcase_add_test(tc, unit_count_depends_only_on_sample_count);
    tcase_add_test(tc, partial_count_is_the_ranges_pieces);
    tcase_add_test(tc, profile_charges_each_kernel_of_each_layer);
    tcase_add_test(tc, train_step_is_gradient_then_update);
    tcase_add_test(tc, batch_that_repeats_images_matches_the_reference);
    tcase_add_test(tc, pixel_lists_stand_in_for_images);
    tcase_add_test(tc, placed_pieces_are_the_engine_own);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(engine_suite());
    srunner_run_all(runner, CK_NORMAL);
    const int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
