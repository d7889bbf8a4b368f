/* The OpenMP engine against the serial reference, a finite-difference check
 * of its gradient, bitwise determinism across thread counts, and engines
 * training side by side in threads of their own.
 *
 * Every test that runs OpenMP code runs in a child that Check forks: the
 * parent never starts libgomp's thread pool, because a child forked after
 * that can hang. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "kernels.h"
#include "mnist.h"
#include "model.h"
#include "reference.h"
#include "rng.h"
#include "testdata.h"
#include "train.h"

enum { WIDTH = 784 };

/* Trains a copy of `initial` for `epochs` epochs with one engine (the OpenMP
 * one with `threads` threads, 0 for the default), recording the loss of each
 * epoch. */
static void train_copy(struct mlp *trained, const struct mlp *initial, const struct dataset *ds,
                       enum engine_kind kind, int threads, unsigned epochs, double lr,
                       double *losses)
{
    struct trainer t;
    struct error err;
    copy_model(trained, initial);
    ck_assert_msg(trainer_create(&t, kind, trained, ds, threads, &err) == 0, "%s", err.msg);
    for (unsigned e = 0; e < epochs; e++)
        losses[e] = trainer_epoch(&t, trained, lr);
    trainer_destroy(&t);
}

static double max_abs(const struct mlp *m, size_t first, size_t end)
{
    double max = 0;
    for (size_t i = first; i < end; i++)
        max = fmax(max, fabs(mlp_param(m, i)));
    return max;
}

/* Each tensor of `got` agrees with `want` within rtol of that tensor's largest
 * magnitude: the engine and the reference differ only in the order in which
 * per-sample terms are summed, an error that scales with the tensor, not with
 * each (possibly tiny) element. */
static void assert_params_close(const struct mlp *got, const struct mlp *want, double rtol,
                                const char *what)
{
    const struct mlp_layout l = mlp_layout(want->n_in, want->n_hidden, want->n_out);
    const size_t bounds[5] = {l.w1, l.b1, l.w2, l.b2, l.count};
    static const char *names[4] = {"W1", "b1", "W2", "b2"};
    for (int t = 0; t < 4; t++) {
        const double scale = max_abs(want, bounds[t], bounds[t + 1]);
        for (size_t i = bounds[t]; i < bounds[t + 1]; i++) {
            const double a = mlp_param(got, i), b = mlp_param(want, i);
            ck_assert_msg(fabs(a - b) <= rtol * scale,
                          "%s: %s[%zu] engine %.17g reference %.17g (scale %g, rtol %g)", what,
                          names[t], i - bounds[t], a, b, scale, rtol);
        }
    }
}

static void compare_with_reference(const struct dataset *ds, size_t hidden,
                                   enum precision precision, unsigned epochs, double lr,
                                   double rtol)
{
    struct mlp initial, engine_model, reference_model;
    double engine_loss[32], reference_loss[32];
    char what[128];
    ck_assert_uint_le(epochs, 32);
    make_model(&initial, dataset_image_size(ds), hidden, precision, 1000 + (int64_t)hidden);
    train_copy(&engine_model, &initial, ds, ENGINE_OMP, 0, epochs, lr, engine_loss);
    train_copy(&reference_model, &initial, ds, ENGINE_REFERENCE, 0, epochs, lr, reference_loss);
    snprintf(what, sizeof what, "N=%zu inputs=%zu H=%zu %s", ds->count,
             dataset_image_size(ds), hidden, precision_name(precision));
    for (unsigned e = 0; e < epochs; e++)
        ck_assert_msg(fabs(engine_loss[e] - reference_loss[e]) <= rtol * reference_loss[e],
                      "%s epoch %u: loss %.17g vs reference %.17g", what, e, engine_loss[e],
                      reference_loss[e]);
    assert_params_close(&engine_model, &reference_model, rtol, what);
    mlp_free(&initial);
    mlp_free(&engine_model);
    mlp_free(&reference_model);
}

/* Tolerances.  float64: the only difference is summation order, worth a few
 * ulps per sum (~1e-16 relative), compounded over a few epochs; 1e-12 leaves
 * three orders of magnitude of margin yet catches any wrong or missing term,
 * which shows at 1e-4 or more.  float32: the same reasoning from an epsilon
 * of 6e-8 gives 1e-5. */
#define RTOL_F64 1e-12
#define RTOL_F32 1e-5

static const size_t awkward_counts[] = {1, 7, 250, 1001};
static const size_t awkward_hidden[] = {1, 5, 32, 33};

START_TEST(engine_matches_reference_on_awkward_sizes)
{
    const size_t N = awkward_counts[_i / 4], H = awkward_hidden[_i % 4];
    struct dataset ds;
    make_random_dataset(&ds, N, 7 + (int64_t)N);
    compare_with_reference(&ds, H, PRECISION_F64, 6, 0.5, RTOL_F64);
    compare_with_reference(&ds, H, PRECISION_F32, 6, 0.5, RTOL_F32);
    dataset_free(&ds);
}
END_TEST

/* Images with an odd number of pixels leave the last column of W1 without
 * a partner in its pair. */
START_TEST(engine_matches_reference_on_odd_widths)
{
    static const size_t shapes[][2] = {{1, 1}, {5, 5}, {3, 7}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        struct dataset ds;
        make_random_images(&ds, 300, shapes[s][0], shapes[s][1], 17 + (int64_t)s);
        compare_with_reference(&ds, 33, PRECISION_F64, 6, 0.5, RTOL_F64);
        compare_with_reference(&ds, 33, PRECISION_F32, 6, 0.5, RTOL_F32);
        dataset_free(&ds);
    }
}
END_TEST

START_TEST(engine_matches_reference_on_mnist)
{
    struct dataset ds;
    load_mnist_slice(&ds, MNIST_TRAIN, 600);
    compare_with_reference(&ds, 32, PRECISION_F64, 20, 0.8, RTOL_F64);
    compare_with_reference(&ds, 32, PRECISION_F32, 20, 0.8, RTOL_F32);
    dataset_free(&ds);
}
END_TEST

/* Loss of m on ds, from the engine (used by the finite differences). */
static double engine_loss(const struct mlp *m, const struct dataset *ds)
{
    struct engine *e;
    struct error err;
    ck_assert_msg(engine_create(&e, m, ds, NULL, 0, &err) == 0, "%s", err.msg);
    const double loss = engine_loss_and_gradient(e, m);
    engine_destroy(e);
    return loss;
}

START_TEST(engine_gradient_matches_central_differences)
{
    struct dataset ds;
    struct mlp m;
    struct engine *e;
    struct error err;
    const double h = 1e-6;

    make_random_dataset(&ds, 40, 99);
    make_model(&m, WIDTH, 5, PRECISION_F64, 5);
    ck_assert_msg(engine_create(&e, &m, &ds, NULL, 0, &err) == 0, "%s", err.msg);
    engine_loss_and_gradient(e, &m);
    const double *grad = engine_gradient(e);
    double *params = m.params;
    size_t checked = 0;

    /* Every parameter outside W1, and every 7th of W1 (which includes rows of
     * pixels that are zero in every image: their gradient must be exactly 0). */
    const struct mlp_layout l = mlp_layout(m.n_in, m.n_hidden, m.n_out);
    for (size_t p = 0; p < l.count; p += p < l.b1 ? 7 : 1) {
        const double saved = params[p];
        params[p] = saved + h;
        const double up = engine_loss(&m, &ds);
        params[p] = saved - h;
        const double down = engine_loss(&m, &ds);
        params[p] = saved;
        const double numeric = (up - down) / (2 * h);
        /* Truncation error is O(h^2) relative (1e-12 here, kinks of ReLU
         * aside); rounding contributes eps * loss / h, about 1e-11 absolute.
         * A gradient off by a factor, a sign or a missing term misses both. */
        ck_assert_msg(fabs(numeric - grad[p]) <= 1e-9 + 1e-6 * fabs(grad[p]),
                      "parameter %zu: analytic %.12g numeric %.12g", p, grad[p], numeric);
        checked++;
    }
    ck_assert_uint_gt(checked, 600);
    engine_destroy(e);
    mlp_free(&m);
    dataset_free(&ds);
}
END_TEST

static const int thread_counts[] = {1, 2, 3, 4, 7, 16};

static void assert_deterministic(const struct dataset *ds, size_t hidden, enum precision precision)
{
    struct mlp initial, first, other;
    double losses[5], first_losses[5];
    make_model(&initial, WIDTH, hidden, precision, 42);
    train_copy(&first, &initial, ds, ENGINE_OMP, thread_counts[0], 5, 0.8, first_losses);
    for (size_t t = 1; t < sizeof thread_counts / sizeof *thread_counts; t++) {
        train_copy(&other, &initial, ds, ENGINE_OMP, thread_counts[t], 5, 0.8, losses);
        ck_assert_msg(memcmp(first.params, other.params,
                             mlp_param_count(&first) * precision_size(precision)) == 0,
                      "%s, %d threads: parameters differ from 1 thread",
                      precision_name(precision), thread_counts[t]);
        ck_assert_msg(memcmp(first_losses, losses, sizeof losses) == 0,
                      "%s, %d threads: losses differ from 1 thread", precision_name(precision),
                      thread_counts[t]);
        mlp_free(&other);
    }
    mlp_free(&initial);
    mlp_free(&first);
}

START_TEST(engine_is_bitwise_deterministic_across_thread_counts)
{
    struct dataset random_ds, mnist;
    make_random_dataset(&random_ds, 1001, 3);
    load_mnist_slice(&mnist, MNIST_TRAIN, 2000);
    assert_deterministic(&random_ds, 33, PRECISION_F32);
    assert_deterministic(&random_ds, 33, PRECISION_F64);
    assert_deterministic(&mnist, 32, PRECISION_F32);
    assert_deterministic(&mnist, 32, PRECISION_F64);
    dataset_free(&random_ds);
    dataset_free(&mnist);
}
END_TEST

enum { JOB_EPOCHS = 5 };

/* One engine's training, run by its own thread in the concurrent test: job
 * threads must not ck_assert, so each records what went wrong instead. */
struct training_job {
    const struct dataset *ds;
    struct mlp model;             /* trained in place */
    int threads;                  /* the engine's */
    pthread_barrier_t *created;   /* NULL, or every job's engine exists before any trains */
    double losses[JOB_EPOCHS];
    int status;
    struct error err;
};

static void *run_training_job(void *context)
{
    struct training_job *job = context;
    struct engine *e;
    job->status = engine_create(&e, &job->model, job->ds, NULL, job->threads, &job->err);
    if (job->created)
        pthread_barrier_wait(job->created);
    for (unsigned epoch = 0; job->status == 0 && epoch < JOB_EPOCHS; epoch++)
        job->losses[epoch] = engine_epoch(e, &job->model, 0.8);
    engine_destroy(e);
    return NULL;
}

/* Two jobs, different in precision, shape, data and thread count, so that
 * state one engine shared with the other would show in either's bits. */
static void prepare_jobs(struct training_job jobs[2], const struct dataset *mnist,
                         const struct dataset *random_ds, const struct mlp initial[2])
{
    memset(jobs, 0, 2 * sizeof *jobs);
    jobs[0].ds = mnist;
    jobs[0].threads = 3;
    jobs[1].ds = random_ds;
    jobs[1].threads = 2;
    for (int j = 0; j < 2; j++)
        copy_model(&jobs[j].model, &initial[j]);
}

START_TEST(concurrent_engines_train_as_they_do_alone)
{
    struct dataset mnist, random_ds;
    struct mlp initial[2];
    struct training_job alone[2], together[2];
    pthread_t threads[2];
    pthread_barrier_t created;

    load_mnist_slice(&mnist, MNIST_TRAIN, 2000);
    make_random_dataset(&random_ds, 1001, 5);
    make_model(&initial[0], WIDTH, 32, PRECISION_F32, 11);
    make_model(&initial[1], WIDTH, 33, PRECISION_F64, 12);

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
    engine_epoch(e, &m, 0.5);
    engine_use_threads(e, before + 1);
    engine_epoch(e, &m, 0.5);
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

START_TEST(divergence_stops_with_epoch_and_advice)
{
    struct dataset ds;
    struct mlp m;
    struct trainer t;
    struct error err;
    double seconds;
    make_random_dataset(&ds, 100, 11);
    make_model(&m, WIDTH, 8, PRECISION_F32, 1);
    ck_assert_int_eq(trainer_create(&t, ENGINE_OMP, &m, &ds, 0, &err), 0);
    ck_assert_int_eq(train(&t, &m, 0, 50, 1e6, NULL, NULL, &seconds, &err), -1);
    ck_assert_msg(strstr(err.msg, "diverged") && strstr(err.msg, "at epoch") &&
                  strstr(err.msg, "smaller learning rate"), "message: %s", err.msg);
    trainer_destroy(&t);
    mlp_free(&m);
    dataset_free(&ds);
}
END_TEST

/* W1 is drawn row by row, then W2, each from its own Xavier bound, biases 0. */
START_TEST(xavier_init_draws_in_tutorial_order)
{
    struct mlp m;
    struct py_random rng;
    make_model(&m, WIDTH, 32, PRECISION_F64, 1337);
    py_random_seed(&rng, 1337);
    const struct mlp_layout l = mlp_layout(m.n_in, m.n_hidden, m.n_out);
    const double *p = m.params;
    for (size_t i = l.w1; i < l.b1; i++)
        ck_assert(p[i] == py_random_uniform(&rng, -1 / sqrt(784.0), 1 / sqrt(784.0)));
    for (size_t i = l.b1; i < l.w2; i++)
        ck_assert(p[i] == 0);
    for (size_t i = l.w2; i < l.b2; i++)
        ck_assert(p[i] == py_random_uniform(&rng, -1 / sqrt(32.0), 1 / sqrt(32.0)));
    for (size_t i = l.b2; i < l.count; i++)
        ck_assert(p[i] == 0);
    mlp_free(&m);
}
END_TEST

START_TEST(slice_count_depends_only_on_sample_count)
{
    ck_assert_uint_eq(engine_slice_count(1), 1);
    ck_assert_uint_eq(engine_slice_count(128), 1);
    ck_assert_uint_eq(engine_slice_count(129), 2);
    ck_assert_uint_eq(engine_slice_count(6000), 32);
    ck_assert_uint_eq(engine_slice_count(60000), 32);
}
END_TEST

static Suite *engine_suite(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("engine");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, engine_matches_reference_on_awkward_sizes, 0, 16);
    tcase_add_test(tc, engine_matches_reference_on_odd_widths);
    tcase_add_test(tc, engine_matches_reference_on_mnist);
    tcase_add_test(tc, engine_gradient_matches_central_differences);
    tcase_add_test(tc, engine_is_bitwise_deterministic_across_thread_counts);
    tcase_add_test(tc, concurrent_engines_train_as_they_do_alone);
    tcase_add_test(tc, engine_thread_count_leaves_the_process_default);
    tcase_add_test(tc, unknown_instruction_set_is_an_error);
    tcase_add_test(tc, divergence_stops_with_epoch_and_advice);
    tcase_add_test(tc, xavier_init_draws_in_tutorial_order);
    tcase_add_test(tc, slice_count_depends_only_on_sample_count);
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
