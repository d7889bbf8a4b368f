/* Unit tests for the training loop (src/train.c) and the optimisers and
 * schedules (src/optimizer.c) against SPEC part 2: the batches and their
 * CPython shuffle, the epoch loss, the steps, every optimiser's update,
 * the schedules, and a resumed run ending bitwise equal to a straight one.
 *
 * Expected values were produced by python3 (CPython 3.11) and are embedded
 * with the command that made them; doubles as hex literals, compared bit for
 * bit.  Every trainer here runs the serial reference, so that Check's forked
 * children never start OpenMP's threads. */
#include <config.h>

#include "train.h"

#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "optimizer.h"
#include "reference.h"
#include "rng.h"
#include "testdata.h"

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

static void assert_same_double(double got, double want, const char *what, size_t i)
{
    ck_assert_msg(memcmp(&got, &want, sizeof got) == 0, "%s[%zu]: got %a (%.17g), want %a (%.17g)",
                  what, i, got, got, want, want);
}

/* ------------------------------------------------ runs on small data */

/* Images of 2x3 pixels, so that networks stay tiny. */
enum { PIXELS = 6 };

static const size_t DEEP_WIDTHS[] = {PIXELS, 5, 4, TESTDATA_CLASSES};

static struct training sgd_training(size_t batch, double lr, double momentum, unsigned epochs)
{
    return (struct training){
        .batch = batch,
        .optimizer = {.kind = OPTIMIZER_SGD, .momentum = momentum, .beta1 = 0.9,
                      .beta2 = 0.999, .eps = 1e-8},
        .schedule = {.kind = SCHEDULE_CONSTANT, .lr = lr},
        .epochs = epochs,
    };
}

/* A new run as the program starts one: the model's weights drawn from
 * random.seed(1), the same stream continued in the state, a fresh
 * optimiser state. */
static void start_run(struct mlp *m, struct training_state *state, const struct training *settings,
                      enum precision precision, enum activation activation, enum loss loss)
{
    struct error err;
    ck_assert_msg(mlp_create(m, COUNT(DEEP_WIDTHS) - 1, DEEP_WIDTHS, activation, loss, precision,
                             &err) == 0, "%s", err.msg);
    memset(state, 0, sizeof *state);
    py_random_seed(&state->rng, 1);
    mlp_init_uniform(m, &state->rng);
    ck_assert_msg(optimizer_state_create(&state->optimizer, &settings->optimizer,
                                         mlp_param_count(m), precision, &err) == 0, "%s", err.msg);
}

static void start_trainer(struct trainer *t, struct mlp *m, const struct dataset *ds,
                          const struct training *settings, struct training_state *state)
{
    struct error err;
    ck_assert_msg(trainer_create(t, ENGINE_REFERENCE, m, ds, settings, state, 1, NULL, &err) == 0, "%s",
                  err.msg);
}

static void copy_params(struct mlp *copy, const struct mlp *m)
{
    struct error err;
    ck_assert_msg(mlp_create(copy, m->n_layers, m->widths, m->activation, m->loss, m->precision,
                             &err) == 0, "%s", err.msg);
    memcpy(copy->params, m->params, mlp_param_count(m) * precision_size(m->precision));
}

static bool same_params(const struct mlp *a, const struct mlp *b)
{
    return memcmp(a->params, b->params, mlp_param_count(a) * precision_size(a->precision)) == 0;
}

/* ------------------------------------------------ batches */

/* python3 -c 'import random; random.seed(1); o = list(range(10)); random.shuffle(o); print(o);
 *   o = list(range(10)); random.shuffle(o); print(o)' */
static const size_t FIRST_SHUFFLE[10] = {6, 8, 9, 7, 5, 3, 0, 4, 1, 2};
static const size_t SECOND_SHUFFLE[10] = {4, 8, 2, 6, 5, 9, 0, 7, 1, 3};

/* Each epoch of batch 4 on 10 images is CPython's shuffle, continuing the
 * stream, then steps on order[0:4], order[4:8] and the rest order[8:10],
 * each a mean over its own images; the epoch's loss is the batches' losses
 * weighted by their sizes over N. */
START_TEST(test_epoch_is_shuffled_batches_with_weighted_loss)
{
    struct dataset ds;
    make_random_images(&ds, 10, 2, 3, 5);
    const struct training settings = sgd_training(4, 0.5, 0.9, 2);
    struct mlp m, manual;
    struct training_state state, manual_state;
    start_run(&m, &state, &settings, PRECISION_F64, ACTIVATION_TANH, LOSS_XENT);
    start_run(&manual, &manual_state, &settings, PRECISION_F64, ACTIVATION_TANH, LOSS_XENT);
    /* The stream as Python's right after random.seed(1), for the shuffles below. */
    py_random_seed(&state.rng, 1);
    struct trainer t;
    start_trainer(&t, &m, &ds, &settings, &state);
    struct reference *r;
    struct error err;
    ck_assert_msg(reference_create(&r, &manual, &ds, &err) == 0, "%s", err.msg);

    const size_t *orders[2] = {FIRST_SHUFFLE, SECOND_SHUFFLE};
    for (unsigned epoch = 0; epoch < 2; epoch++) {
        const double loss = trainer_epoch(&t, &m);
        for (size_t i = 0; i < 10; i++)
            ck_assert_msg(t.order[i] == orders[epoch][i], "epoch %u: order[%zu] = %zu, want %zu",
                          epoch, i, t.order[i], orders[epoch][i]);
        ck_assert_uint_eq(t.state.epoch, epoch + 1);
        ck_assert_uint_eq(t.state.optimizer.step, 3 * (epoch + 1));

        double weighted = 0;
        for (size_t first = 0; first < 10; first += 4) {
            const size_t count = first + 4 <= 10 ? 4 : 10 - first;
            const double batch_loss =
                reference_batch_gradient(r, &manual, orders[epoch] + first, count);
            const struct optimizer_step step =
                optimizer_begin_step(&settings.optimizer, &manual_state.optimizer, 0.5);
            optimizer_apply(&settings.optimizer, &step, &manual_state.optimizer, PRECISION_F64,
                            NULL, manual.params, reference_gradient(r), 0,
                            mlp_param_count(&manual));
            weighted += batch_loss * (double)count;
        }
        assert_same_double(loss, weighted / 10, "epoch loss", epoch);
        ck_assert_msg(same_params(&m, &manual), "epoch %u: weights differ from the manual steps",
                      epoch);
    }
    reference_destroy(r);
    optimizer_state_free(&manual_state.optimizer);
    trainer_destroy(&t);
    mlp_free(&m);
    mlp_free(&manual);
    dataset_free(&ds);
}
END_TEST

/* A batch of 0, N or more is the whole set in its order: one step, nothing
 * drawn, no shuffle kept, and the epoch's loss is that batch's own. */
static const size_t whole_batches[] = {0, 13, 14, 1000};

START_TEST(test_whole_batch_draws_nothing)
{
    struct dataset ds;
    make_random_images(&ds, 13, 2, 3, 7);
    const struct training settings = sgd_training(whole_batches[_i], 0.5, 0, 3);
    struct mlp m, manual;
    struct training_state state, manual_state;
    start_run(&m, &state, &settings, PRECISION_F32, ACTIVATION_RELU, LOSS_MSE);
    start_run(&manual, &manual_state, &settings, PRECISION_F32, ACTIVATION_RELU, LOSS_MSE);
    struct trainer t;
    start_trainer(&t, &m, &ds, &settings, &state);
    ck_assert_ptr_null(t.order);
    struct reference *r;
    struct error err;
    ck_assert_msg(reference_create(&r, &manual, &ds, &err) == 0, "%s", err.msg);

    for (unsigned epoch = 0; epoch < 3; epoch++) {
        const double loss = trainer_epoch(&t, &m);
        const double want = reference_batch_gradient(r, &manual, NULL, ds.count);
        const struct optimizer_step step =
            optimizer_begin_step(&settings.optimizer, &manual_state.optimizer, 0.5);
        optimizer_apply(&settings.optimizer, &step, &manual_state.optimizer, PRECISION_F32,
                        NULL, manual.params, reference_gradient(r), 0, mlp_param_count(&manual));
        assert_same_double(loss, want, "epoch loss", epoch);
        ck_assert_msg(same_params(&m, &manual), "epoch %u: weights differ", epoch);
        ck_assert_msg(memcmp(&t.state.rng, &manual_state.rng, sizeof t.state.rng) == 0,
                      "epoch %u drew from the stream", epoch);
    }
    ck_assert_uint_eq(t.state.optimizer.step, 3);
    reference_destroy(r);
    optimizer_state_free(&manual_state.optimizer);
    trainer_destroy(&t);
    mlp_free(&m);
    mlp_free(&manual);
    dataset_free(&ds);
}
END_TEST

/* The losses of the first epoch of a whole batch, where (loss * N) / N is
 * not the loss itself: the epoch must return the batch's loss unscaled. */
START_TEST(test_whole_batch_loss_is_not_rescaled)
{
    struct dataset ds;
    make_random_images(&ds, 10, 2, 3, 2);
    const struct training settings = sgd_training(0, 0.5, 0, 1);
    struct mlp m, manual;
    struct training_state state, manual_state;
    start_run(&m, &state, &settings, PRECISION_F64, ACTIVATION_TANH, LOSS_MSE);
    start_run(&manual, &manual_state, &settings, PRECISION_F64, ACTIVATION_TANH, LOSS_MSE);
    struct reference *r;
    struct error err;
    ck_assert_msg(reference_create(&r, &manual, &ds, &err) == 0, "%s", err.msg);
    const double want = reference_batch_gradient(r, &manual, NULL, ds.count);
    /* The case bites only if rescaling changes the bits. */
    ck_assert(want * 10 / 10 != want);
    struct trainer t;
    start_trainer(&t, &m, &ds, &settings, &state);
    assert_same_double(trainer_epoch(&t, &m), want, "loss", 0);
    reference_destroy(r);
    optimizer_state_free(&manual_state.optimizer);
    trainer_destroy(&t);
    mlp_free(&m);
    mlp_free(&manual);
    dataset_free(&ds);
}
END_TEST

START_TEST(test_steps_per_epoch)
{
    const struct {
        size_t batch, n;
        uint64_t steps;
    } cases[] = {{0, 10, 1}, {10, 10, 1}, {11, 10, 1}, {1, 10, 10}, {3, 10, 4},
                 {5, 10, 2}, {9, 10, 2}, {64, 60000, 938}, {1, 1, 1}};
    for (size_t i = 0; i < COUNT(cases); i++) {
        const struct training settings = sgd_training(cases[i].batch, 0.1, 0, 1);
        ck_assert_msg(training_steps_per_epoch(&settings, cases[i].n) == cases[i].steps,
                      "batch %zu of %zu: %llu steps, want %llu", cases[i].batch, cases[i].n,
                      (unsigned long long)training_steps_per_epoch(&settings, cases[i].n),
                      (unsigned long long)cases[i].steps);
    }
}
END_TEST

/* ------------------------------------------------ schedules */

/* python3 -c 'import math; X = 0.1; T = 12
 *   print([float.hex(X * 0.5 * (1 + math.cos(math.pi * (t - 1) / T))) for t in (1, 7, 8, 12)])'
 * (at t = 8, pi * ((t-1) / T) would give another rate) */
START_TEST(test_cosine_schedule)
{
    const struct schedule s = {.kind = SCHEDULE_COSINE, .lr = 0.1};
    const uint64_t t[] = {1, 7, 8, 12};
    const double want[] = {0x1.999999999999ap-4, 0x1.999999999999ap-5, 0x1.2f9674c2b96fbp-5,
                           0x1.be9df45867e00p-10};
    for (size_t i = 0; i < COUNT(t); i++)
        assert_same_double(schedule_rate(&s, t[i], 5, 12), want[i], "cosine at t", t[i]);
}
END_TEST

/* python3 -c 'X = 0.1; G = 0.3
 *   print([float.hex(X * p) for p in (1.0, G, G * G, G * G * G)])'
 * (X * (G*G*G) is not ((X*G)*G)*G: the factors are multiplied first) */
START_TEST(test_step_schedule)
{
    const struct schedule s = {.kind = SCHEDULE_STEP, .lr = 0.1, .step_epochs = 2,
                               .step_gamma = 0.3};
    const double want[] = {0x1.999999999999ap-4, 0x1.eb851eb851eb8p-6, 0x1.26e978d4fdf3bp-7,
                           0x1.61e4f765fd8aep-9};
    for (unsigned epoch = 0; epoch < 8; epoch++)
        assert_same_double(schedule_rate(&s, 1000, epoch, 2000), want[epoch / 2], "step epoch",
                           epoch);
}
END_TEST

START_TEST(test_constant_schedule)
{
    const struct schedule s = {.kind = SCHEDULE_CONSTANT, .lr = 0.8};
    assert_same_double(schedule_rate(&s, 1, 0, 300), 0.8, "constant", 1);
    assert_same_double(schedule_rate(&s, 300, 299, 300), 0.8, "constant", 300);
}
END_TEST

/* A run's steps take the schedule's rate at t = the run's step count + 1,
 * during the epoch they belong to, over T = epochs * steps per epoch: runs
 * under a cosine and a step schedule equal manual steps at those rates. */
static double scheduled_rate(int kind, uint64_t t, unsigned epoch)
{
    if (kind == SCHEDULE_COSINE)
        return 0.3 * 0.5 * (1 + cos(3.141592653589793 * (double)(t - 1) / 6));
    return epoch == 0 ? 0.3 : 0.3 * 0.5;
}

START_TEST(test_trainer_follows_the_schedule)
{
    struct dataset ds;
    make_random_images(&ds, 10, 2, 3, 3);
    struct training settings = sgd_training(4, 0.3, 0, 2);
    settings.schedule = (struct schedule){.kind = _i == 0 ? SCHEDULE_COSINE : SCHEDULE_STEP,
                                          .lr = 0.3, .step_epochs = 1, .step_gamma = 0.5};
    struct mlp m, manual;
    struct training_state state, manual_state;
    start_run(&m, &state, &settings, PRECISION_F64, ACTIVATION_RELU, LOSS_XENT);
    start_run(&manual, &manual_state, &settings, PRECISION_F64, ACTIVATION_RELU, LOSS_XENT);
    py_random_seed(&state.rng, 1);  /* the shuffles FIRST_SHUFFLE, SECOND_SHUFFLE */
    struct trainer t;
    start_trainer(&t, &m, &ds, &settings, &state);
    struct reference *r;
    struct error err;
    ck_assert_msg(reference_create(&r, &manual, &ds, &err) == 0, "%s", err.msg);
    const size_t *orders[2] = {FIRST_SHUFFLE, SECOND_SHUFFLE};
    for (unsigned epoch = 0; epoch < 2; epoch++) {
        trainer_epoch(&t, &m);
        for (size_t first = 0; first < 10; first += 4) {
            const double lr =
                scheduled_rate(settings.schedule.kind, manual_state.optimizer.step + 1, epoch);
            reference_batch_gradient(r, &manual, orders[epoch] + first, first < 8 ? 4 : 2);
            const struct optimizer_step step =
                optimizer_begin_step(&settings.optimizer, &manual_state.optimizer, lr);
            optimizer_apply(&settings.optimizer, &step, &manual_state.optimizer, PRECISION_F64,
                            NULL, manual.params, reference_gradient(r), 0,
                            mlp_param_count(&manual));
        }
        ck_assert_msg(same_params(&m, &manual), "%s epoch %u: weights differ",
                      schedule_name(settings.schedule.kind), epoch);
    }
    reference_destroy(r);
    optimizer_state_free(&manual_state.optimizer);
    trainer_destroy(&t);
    mlp_free(&m);
    mlp_free(&manual);
    dataset_free(&ds);
}
END_TEST

/* ------------------------------------------------ optimisers */

/* Six parameters take four steps at learning rates 0.36, 0.094, 0.27 and
 * 0.67 (rates at which lr/c1 and 1 - lr*WD rounded once to float32 differ
 * from the same scalars worked out in float32), the weights and gradients
 * drawn from random.seed(2) (draw_steps below).  The expected weights are
 * SPEC part 2's formulas in Python, in double, and in float32 (each
 * operation rounded to float32, every scalar computed in double and rounded
 * once), made by:
 *
 * python3 - <<'EOF'
 * import math, random, struct
 * def f32(x): return struct.unpack('f', struct.pack('f', x))[0]
 * random.seed(2)
 * W = [random.uniform(-1, 1) for _ in range(6)]
 * G = [[random.uniform(-1, 1) for _ in range(6)] for _ in range(4)]
 * LR = [0.36, 0.094, 0.27, 0.67]
 * def run(kind, mu, nesterov, wd, b1, b2, eps, r):
 *     w = [r(x) for x in W]; v = [0.0] * 6; m = [0.0] * 6; p1 = p2 = 1.0
 *     for lr, g in zip(LR, G):
 *         if kind != 'SGD':
 *             p1 *= b1; p2 *= b2
 *         c1, c2 = 1 - p1, 1 - p2
 *         for i in range(6):
 *             gi = r(g[i])
 *             if kind == 'SGD':
 *                 if wd: gi = r(gi + r(r(wd) * w[i]))
 *                 if mu == 0:
 *                     w[i] = r(w[i] - r(r(lr) * gi)); continue
 *                 v[i] = r(r(r(mu) * v[i]) + gi)
 *                 if nesterov: w[i] = r(w[i] - r(r(lr) * r(gi + r(r(mu) * v[i]))))
 *                 else: w[i] = r(w[i] - r(r(lr) * v[i]))
 *             else:
 *                 if wd and kind == 'ADAMW': w[i] = r(w[i] * r(1 - lr * wd))
 *                 elif wd: gi = r(gi + r(r(wd) * w[i]))
 *                 m[i] = r(r(r(b1) * m[i]) + r(r(1 - b1) * gi))
 *                 v[i] = r(r(r(b2) * v[i]) + r(r(r(1 - b2) * gi) * gi))
 *                 w[i] = r(w[i] - r(r(r(lr / c1) * m[i])
 *                                   / r(r(r(math.sqrt(v[i])) / r(math.sqrt(c2))) + r(eps))))
 *     return w
 * for case in [('SGD', 0, False, 0, .9, .999, 1e-8), ('SGD', .9, False, 0, .9, .999, 1e-8),
 *              ('SGD', .9, True, 0, .9, .999, 1e-8), ('SGD', .9, True, .01, .9, .999, 1e-8),
 *              ('SGD', 0, False, .01, .9, .999, 1e-8), ('ADAM', 0, False, 0, .9, .999, 1e-8),
 *              ('ADAM', 0, False, .01, .9, .999, 1e-8), ('ADAMW', 0, False, .01, .9, .999, 1e-8),
 *              ('ADAMW', 0, False, .3, .8, .99, 1e-3)]:
 *     print('    {{OPTIMIZER_%s, %g, %s, %g, %g, %g, %g},' % (case[0], case[1], str(case[2]).lower(), *case[3:]))
 *     for open_, r, close in (('     {{', lambda x: x, '},'), ('      {', f32, '}}},')):
 *         w = list(map(float.hex, run(*case, r)))
 *         print('%s%s,\n       %s%s' % (open_, ', '.join(w[:3]), ', '.join(w[3:]), close))
 * EOF
 */
static const struct {
    struct optimizer optimizer;
    double want[2][6];  /* float64, float32 */
} optimizer_cases[] = {
    {{OPTIMIZER_SGD, 0, false, 0, 0.9, 0.999, 1e-08},
     {{0x1.fca63330f05b9p-1, 0x1.4ed47bb5ab53ep-1, -0x1.93f9461bc8b90p-1,
       -0x1.a6f468b141f6ep-1, 0x1.cd1afacef1f55p-1, 0x1.7216a50eb1f44p+0},
      {0x1.fca6320000000p-1, 0x1.4ed47e0000000p-1, -0x1.93f9460000000p-1,
       -0x1.a6f4680000000p-1, 0x1.cd1af80000000p-1, 0x1.7216a60000000p+0}}},
    {{OPTIMIZER_SGD, 0.9, false, 0, 0.9, 0.999, 1e-08},
     {{0x1.ccdfe85755742p-1, 0x1.67927b33d3d27p+0, -0x1.7ebcf7b0c690cp-1,
       -0x1.33ee7b05232fap+0, 0x1.bb11a067245fep-4, 0x1.116beeb16d8b6p+1},
      {0x1.ccdfe80000000p-1, 0x1.67927c0000000p+0, -0x1.7ebcf40000000p-1,
       -0x1.33ee7c0000000p+0, 0x1.bb11940000000p-4, 0x1.116bf00000000p+1}}},
    {{OPTIMIZER_SGD, 0.9, true, 0, 0.9, 0.999, 1e-08},
     {{0x1.f727bbc282562p-1, 0x1.1cabcb7892dfcp+0, -0x1.53c17c78a1fa1p-1,
       -0x1.29532518730efp+0, 0x1.93827e415724ap-2, 0x1.78c195d2ef408p+1},
      {0x1.f727bc0000000p-1, 0x1.1cabcc0000000p+0, -0x1.53c17a0000000p-1,
       -0x1.2953260000000p+0, 0x1.93827c0000000p-2, 0x1.78c1960000000p+1}}},
    {{OPTIMIZER_SGD, 0.9, true, 0.01, 0.9, 0.999, 1e-08},
     {{0x1.e57ec74a17884p-1, 0x1.0e775463d81e2p+0, -0x1.3dade1c9ba8d0p-1,
       -0x1.1e0068756ecfap+0, 0x1.7e5c9aaa42295p-2, 0x1.737b284d22900p+1},
      {0x1.e57ecc0000000p-1, 0x1.0e77540000000p+0, -0x1.3dade00000000p-1,
       -0x1.1e00680000000p+0, 0x1.7e5c9a0000000p-2, 0x1.737b280000000p+1}}},
    {{OPTIMIZER_SGD, 0, false, 0.01, 0.9, 0.999, 1e-08},
     {{0x1.f6a6637090142p-1, 0x1.4736420a936b5p-1, -0x1.8deda237ec979p-1,
       -0x1.a1142241e79a0p-1, 0x1.c8fce178ba390p-1, 0x1.6f9d4b8d7b22ep+0},
      {0x1.f6a6660000000p-1, 0x1.4736420000000p-1, -0x1.8deda40000000p-1,
       -0x1.a114200000000p-1, 0x1.c8fce20000000p-1, 0x1.6f9d4c0000000p+0}}},
    {{OPTIMIZER_ADAM, 0, false, 0, 0.9, 0.999, 1e-08},
     {{0x1.5b446e6cf6a42p-1, 0x1.a38d36cf5ae82p+0, -0x1.2dfad906f946fp+0,
       -0x1.59bb772b3d073p+0, -0x1.bc8f1826d3af4p-6, 0x1.9c6dee22a1416p+0},
      {0x1.5b44740000000p-1, 0x1.a38d360000000p+0, -0x1.2dfad80000000p+0,
       -0x1.59bb740000000p+0, -0x1.bc8ee00000000p-6, 0x1.9c6dee0000000p+0}}},
    {{OPTIMIZER_ADAM, 0, false, 0.01, 0.9, 0.999, 1e-08},
     {{0x1.4cf1121ddb7e2p-1, 0x1.9ecd0486ee218p+0, -0x1.28e3023cabc4fp+0,
       -0x1.55db741f2b53dp+0, -0x1.075b7c4c21d38p-5, 0x1.9a902b6f6c692p+0},
      {0x1.4cf1140000000p-1, 0x1.9ecd020000000p+0, -0x1.28e3000000000p+0,
       -0x1.55db720000000p+0, -0x1.075b700000000p-5, 0x1.9a90280000000p+0}}},
    {{OPTIMIZER_ADAMW, 0, false, 0.01, 0.9, 0.999, 1e-08},
     {{0x1.56e72eec47692p-1, 0x1.9ec2044a96e8fp+0, -0x1.29c3216f03e45p+0,
       -0x1.559c70e6a83d7p+0, -0x1.f9faa53ec6134p-6, 0x1.995b1833ba6b6p+0},
      {0x1.56e7320000000p-1, 0x1.9ec2040000000p+0, -0x1.29c3200000000p+0,
       -0x1.559c700000000p+0, -0x1.f9fa680000000p-6, 0x1.995b180000000p+0}}},
    {{OPTIMIZER_ADAMW, 0, false, 0.3, 0.8, 0.99, 0.001},
     {{0x1.19a2c1080d9c6p-1, 0x1.10a094f89edd2p+0, -0x1.64af3dc9db061p-1,
       -0x1.c23b844b02553p-1, -0x1.7db69f90150e1p-5, 0x1.4d1267ba5a464p+0},
      {0x1.19a2c40000000p-1, 0x1.10a0980000000p+0, -0x1.64af400000000p-1,
       -0x1.c23b820000000p-1, -0x1.7db6a40000000p-5, 0x1.4d12680000000p+0}}},
};

static const double STEP_RATES[4] = {0.36, 0.094, 0.27, 0.67};

/* The starting weights and the four steps' gradients, as Python draws them. */
static void draw_steps(double weights[6], double gradients[4][6])
{
    struct py_random rng;
    py_random_seed(&rng, 2);
    for (size_t i = 0; i < 6; i++)
        weights[i] = py_random_uniform(&rng, -1, 1);
    for (size_t k = 0; k < 4; k++)
        for (size_t i = 0; i < 6; i++)
            gradients[k][i] = py_random_uniform(&rng, -1, 1);
}

/* The four steps, applied as the engine may: in two ranges at their
 * offsets, so that optimizer_apply's ranges are tested too. */
static void take_steps(const struct optimizer *o, enum precision precision, double out[6])
{
    struct optimizer_state s;
    struct error err;
    ck_assert_msg(optimizer_state_create(&s, o, 6, precision, &err) == 0, "%s", err.msg);
    double start[6], gradients[4][6], w64[6], g64[6];
    float w32[6], g32[6];
    draw_steps(start, gradients);
    for (size_t i = 0; i < 6; i++) {
        w32[i] = (float)start[i];
        w64[i] = start[i];
    }
    void *w = precision == PRECISION_F64 ? (void *)w64 : (void *)w32;
    const void *g = precision == PRECISION_F64 ? (const void *)g64 : (const void *)g32;
    for (size_t k = 0; k < 4; k++) {
        for (size_t i = 0; i < 6; i++) {
            g32[i] = (float)gradients[k][i];
            g64[i] = gradients[k][i];
        }
        const struct optimizer_step step = optimizer_begin_step(o, &s, STEP_RATES[k]);
        optimizer_apply(o, &step, &s, precision, NULL, w, g, 0, 2);
        optimizer_apply(o, &step, &s, precision, NULL, w, g, 2, 4);
    }
    for (size_t i = 0; i < 6; i++)
        out[i] = precision == PRECISION_F64 ? w64[i] : (double)w32[i];
    ck_assert_uint_eq(s.step, 4);
    optimizer_state_free(&s);
}

static void check_optimizer_case(int i, enum precision precision)
{
    double w[6];
    take_steps(&optimizer_cases[i].optimizer, precision, w);
    for (size_t k = 0; k < 6; k++)
        assert_same_double(w[k], optimizer_cases[i].want[precision == PRECISION_F32][k],
                           optimizer_name(optimizer_cases[i].optimizer.kind), k);
}

START_TEST(test_optimizer_matches_python_f64)
{
    check_optimizer_case(_i, PRECISION_F64);
}
END_TEST

START_TEST(test_optimizer_matches_python_f32)
{
    check_optimizer_case(_i, PRECISION_F32);
}
END_TEST

/* Plain SGD is the tutorial's w -= (REAL)lr * g, whatever the values. */
START_TEST(test_plain_sgd_is_the_tutorial_update)
{
    const struct optimizer o = {.kind = OPTIMIZER_SGD, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    struct optimizer_state s;
    struct error err;
    ck_assert_msg(optimizer_state_create(&s, &o, 64, PRECISION_F32, &err) == 0, "%s", err.msg);
    ck_assert_ptr_null(s.velocity);
    ck_assert_ptr_null(s.first_moment);
    struct py_random rng;
    py_random_seed(&rng, 3);
    float w[64], want[64], g[64];
    for (size_t i = 0; i < 64; i++) {
        /* weights as small as the steps, so that a step computed otherwise
         * (a double rate, a double product) shows in the rounded weight */
        w[i] = want[i] = (float)py_random_uniform(&rng, -1e-3, 1e-3);
        g[i] = (float)py_random_uniform(&rng, -1e-3, 1e-3);
        g[i] = i % 7 == 0 ? -0.0f : g[i];
    }
    const struct optimizer_step step = optimizer_begin_step(&o, &s, 0.8);
    optimizer_apply(&o, &step, &s, PRECISION_F32, NULL, w, g, 0, 64);
    for (size_t i = 0; i < 64; i++) {
        want[i] -= (float)0.8 * g[i];
        ck_assert_msg(memcmp(&w[i], &want[i], sizeof w[i]) == 0, "w[%zu] = %a, want %a", i,
                      (double)w[i], (double)want[i]);
    }
    optimizer_state_free(&s);
}
END_TEST

/* p1 = B1^t and p2 = B2^t by repeated multiplication in double, which
 * after 12 steps differs from pow:
 * python3 -c 'p1 = p2 = 1.0
 *   for t in range(12): p1 *= 0.9; p2 *= 0.999
 *   print(float.hex(p1), float.hex(p2), p1 != 0.9 ** 12, p2 != 0.999 ** 12)' */
START_TEST(test_adam_bias_corrections)
{
    const struct optimizer o = {.kind = OPTIMIZER_ADAM, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    struct optimizer_state s;
    struct error err;
    ck_assert_msg(optimizer_state_create(&s, &o, 1, PRECISION_F64, &err) == 0, "%s", err.msg);
    ck_assert(s.p1 == 1 && s.p2 == 1 && s.step == 0);
    struct optimizer_step step = {0};
    for (int t = 0; t < 12; t++)
        step = optimizer_begin_step(&o, &s, 1e-3);
    ck_assert_uint_eq(s.step, 12);
    assert_same_double(s.p1, 0x1.2135355a70fb9p-2, "p1", 12);
    assert_same_double(s.p2, 0x1.f9e3c20b09e74p-1, "p2", 12);
    assert_same_double(step.c1, 1 - 0x1.2135355a70fb9p-2, "c1", 12);
    assert_same_double(step.c2, 1 - 0x1.f9e3c20b09e74p-1, "c2", 12);
    assert_same_double(step.lr, 1e-3, "lr", 12);
    optimizer_state_free(&s);
}
END_TEST

START_TEST(test_names_and_moments)
{
    const char *names[] = {"sgd", "adam", "adamw"};
    for (int k = 0; k < 3; k++) {
        enum optimizer_kind kind;
        ck_assert_int_eq(optimizer_parse(names[k], &kind), 0);
        ck_assert_int_eq(kind, k);
        ck_assert_str_eq(optimizer_name(kind), names[k]);
    }
    const char *schedules[] = {"constant", "cosine", "step"};
    for (int k = 0; k < 3; k++) {
        enum schedule_kind kind;
        ck_assert_int_eq(schedule_parse(schedules[k], &kind), 0);
        ck_assert_int_eq(kind, k);
        ck_assert_str_eq(schedule_name(kind), schedules[k]);
    }
    enum optimizer_kind kind = OPTIMIZER_ADAM;
    enum schedule_kind schedule = SCHEDULE_STEP;
    ck_assert_int_eq(optimizer_parse("Adam", &kind), -1);
    ck_assert_int_eq(optimizer_parse("", &kind), -1);
    ck_assert_int_eq(schedule_parse("linear", &schedule), -1);
    ck_assert_int_eq(kind, OPTIMIZER_ADAM);
    ck_assert_int_eq(schedule, SCHEDULE_STEP);

    const struct optimizer sgd = {.kind = OPTIMIZER_SGD}, momentum = {.kind = OPTIMIZER_SGD,
                                                                      .momentum = 0.5};
    const struct optimizer adamw = {.kind = OPTIMIZER_ADAMW};
    ck_assert_uint_eq(optimizer_moment_count(&sgd), 0);
    ck_assert_uint_eq(optimizer_moment_count(&momentum), 1);
    ck_assert_uint_eq(optimizer_moment_count(&adamw), 2);
}
END_TEST

/* ------------------------------------------------ every instruction set */

/* Every configuration of each optimiser, each a loop of its own. */
static const struct optimizer apply_cases[] = {
    {.kind = OPTIMIZER_SGD},
    {.kind = OPTIMIZER_SGD, .weight_decay = 0.01},
    {.kind = OPTIMIZER_SGD, .momentum = 0.9},
    {.kind = OPTIMIZER_SGD, .momentum = 0.9, .nesterov = true},
    {.kind = OPTIMIZER_SGD, .momentum = 0.9, .weight_decay = 0.01},
    {.kind = OPTIMIZER_SGD, .momentum = 0.9, .nesterov = true, .weight_decay = 0.01},
    {.kind = OPTIMIZER_ADAM, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8},
    {.kind = OPTIMIZER_ADAM, .weight_decay = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8},
    {.kind = OPTIMIZER_ADAMW, .weight_decay = 0.3, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-3},
    {.kind = OPTIMIZER_ADAMW, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8},
};

/* Ranges around every vector width and the engine's block of 1024, at
 * offsets that leave them misaligned, inside an arena of APPLY_ARENA. */
static const size_t apply_counts[] = {1, 2, 3, 7, 15, 16, 17, 31, 33, 63, 65, 1023, 1024, 1025};
static const size_t apply_firsts[] = {0, 1, 3, 8, 13};
enum { APPLY_ARENA = 1040, APPLY_STEPS = 3 };

/* x rounded to the precision.  An operation in float32 rounds its exact
 * result once; for + - * / and sqrt, rounding the double result instead
 * gives the same float (double carries more than twice float's digits plus
 * two), so the formulas below, in double, round as float32 would. */
static double rounded(enum precision precision, double x)
{
    return precision == PRECISION_F32 ? (double)(float)x : x;
}

/* SPEC part 2's update of one element, each operation rounded, left to
 * right; the step's scalars computed in double and rounded once. */
static void formula_update(const struct optimizer *o, const struct optimizer_step *step,
                           enum precision p, double *w, double g, double *m, double *v)
{
    const bool decay = o->weight_decay != 0;
    const double lr = rounded(p, step->lr), wd = rounded(p, o->weight_decay);
    if (o->kind == OPTIMIZER_SGD) {
        const double mu = rounded(p, o->momentum);
        if (decay)
            g = rounded(p, g + rounded(p, wd * *w));
        if (o->momentum == 0) {
            *w = rounded(p, *w - rounded(p, lr * g));
            return;
        }
        *v = rounded(p, rounded(p, mu * *v) + g);
        const double direction = o->nesterov ? rounded(p, g + rounded(p, mu * *v)) : *v;
        *w = rounded(p, *w - rounded(p, lr * direction));
        return;
    }
    if (decay && o->kind == OPTIMIZER_ADAMW)
        *w = rounded(p, *w * rounded(p, 1 - step->lr * o->weight_decay));
    else if (decay)
        g = rounded(p, g + rounded(p, wd * *w));
    const double b1 = rounded(p, o->beta1), b2 = rounded(p, o->beta2);
    *m = rounded(p, rounded(p, b1 * *m) + rounded(p, rounded(p, 1 - o->beta1) * g));
    *v = rounded(p, rounded(p, b2 * *v) +
                        rounded(p, rounded(p, rounded(p, 1 - o->beta2) * g) * g));
    const double step_size = rounded(p, step->lr / step->c1);
    const double denominator =
        rounded(p, rounded(p, rounded(p, sqrt(*v)) / rounded(p, sqrt(step->c2))) +
                       rounded(p, o->eps));
    *w = rounded(p, *w - rounded(p, rounded(p, step_size * *m) / denominator));
}

static double element(enum precision p, const void *array, size_t i)
{
    return p == PRECISION_F64 ? ((const double *)array)[i] : (double)((const float *)array)[i];
}

static void set_element(enum precision p, void *array, size_t i, double x)
{
    if (p == PRECISION_F64)
        ((double *)array)[i] = x;
    else
        ((float *)array)[i] = (float)x;
}

/* Values in [-1, 1) with signed zeros among them, in the precision (second
 * moments, which are nonnegative, in [0, 1)).  The moments start so, as if
 * from earlier steps, rather than zero. */
static void draw_arena(struct py_random *rng, enum precision p, void *array, double *copy,
                       bool nonnegative)
{
    for (size_t i = 0; i < APPLY_ARENA; i++) {
        double x = py_random_uniform(rng, nonnegative ? 0 : -1, 1);
        x = i % 11 == 5 ? -0.0 : i % 13 == 6 ? 0.0 : x;
        copy[i] = rounded(p, nonnegative ? fabs(x) : x);
        set_element(p, array, i, copy[i]);
    }
}

static void assert_arena(const struct optimizer *o, enum precision p, const char *isa,
                         size_t first, size_t count, const char *what, const void *array,
                         const double *want)
{
    for (size_t i = 0; i < APPLY_ARENA; i++) {
        const double got = element(p, array, i);
        /* One assertion for the arena: Check's each costs a message. */
        if (memcmp(&got, &want[i], sizeof got) != 0)
            ck_abort_msg("%s (momentum %g, nesterov %d, weight decay %g) in %s with the %s "
                         "loops, elements [%zu, %zu): %s[%zu] = %a, want %a",
                         optimizer_name(o->kind), o->momentum, o->nesterov, o->weight_decay,
                         precision_name(p), isa, first, first + count, what, i, got, want[i]);
    }
}

/* APPLY_STEPS steps of o on params[first, first + count) of an arena with
 * the loops of isa, against the formulas. */
static void check_apply(const struct optimizer *o, enum precision p, const char *isa,
                        size_t first, size_t count, int64_t seed)
{
    double w_want[APPLY_ARENA], m_want[APPLY_ARENA], v_want[APPLY_ARENA], g_drawn[APPLY_ARENA];
    struct optimizer_state s;
    struct error err;
    ck_assert_msg(optimizer_state_create(&s, o, APPLY_ARENA, p, &err) == 0, "%s", err.msg);
    void *w = malloc(APPLY_ARENA * precision_size(p));
    void *g = malloc(APPLY_ARENA * precision_size(p));
    ck_assert(w && g);
    struct py_random rng;
    py_random_seed(&rng, seed);
    draw_arena(&rng, p, w, w_want, false);
    if (s.first_moment)
        draw_arena(&rng, p, s.first_moment, m_want, false);
    if (s.velocity)
        draw_arena(&rng, p, s.velocity, v_want, o->kind != OPTIMIZER_SGD);
    for (size_t t = 0; t < APPLY_STEPS; t++) {
        draw_arena(&rng, p, g, g_drawn, false);
        const struct optimizer_step step = optimizer_begin_step(o, &s, 0.05 * (double)(t + 1));
        optimizer_apply(o, &step, &s, p, isa, w, g, first, count);
        for (size_t i = first; i < first + count; i++)
            formula_update(o, &step, p, &w_want[i], g_drawn[i], &m_want[i], &v_want[i]);
    }
    assert_arena(o, p, isa, first, count, "w", w, w_want);
    if (s.first_moment)
        assert_arena(o, p, isa, first, count, "m", s.first_moment, m_want);
    if (s.velocity)
        assert_arena(o, p, isa, first, count, "v", s.velocity, v_want);
    optimizer_state_free(&s);
    free(w);
    free(g);
}

/* optimizer_apply with the loops of each instruction set this CPU runs,
 * for a few steps on ranges of an arena, against the formulas element by
 * element in both precisions: params and moments bitwise, and nothing
 * outside the range touched.  So every instruction set computes what the
 * portable loops do, and all of them what SPEC part 2 writes. */
START_TEST(test_optimizer_loops_of_every_instruction_set)
{
    for (size_t isa = 0; isa < kernel_isa_count(); isa++) {
        if (!kernel_isa_supported(isa))
            continue;
        for (int p = PRECISION_F32; p <= PRECISION_F64; p++)
            for (size_t c = 0; c < COUNT(apply_counts); c++)
                for (size_t f = 0; f < COUNT(apply_firsts); f++)
                    check_apply(&apply_cases[_i], (enum precision)p, kernel_isa_name(isa),
                                apply_firsts[f], apply_counts[c],
                                (int64_t)(c * COUNT(apply_firsts) + f));
    }
}
END_TEST

/* ------------------------------------------------ resuming */

/* Mini-batch runs that carry every kind of state: Adam's moments and bias
 * corrections under a cosine schedule, Nesterov's velocity under a step
 * schedule, AdamW in float32. */
static struct training resume_training(int i)
{
    struct training settings = sgd_training(4, 0.05, 0.9, 5);
    if (i == 0) {
        settings.optimizer.kind = OPTIMIZER_ADAM;
        settings.optimizer.weight_decay = 0.01;
        settings.schedule.kind = SCHEDULE_COSINE;
        settings.schedule.lr = 0.01;
    } else if (i == 1) {
        settings.optimizer.nesterov = true;
        settings.schedule.kind = SCHEDULE_STEP;
        settings.schedule.step_epochs = 2;
        settings.schedule.step_gamma = 0.5;
    } else {
        settings.optimizer.kind = OPTIMIZER_ADAMW;
        settings.optimizer.weight_decay = 0.01;
        settings.batch = 3;
    }
    return settings;
}

/* What a checkpoint keeps: the weights and a deep copy of the state. */
static void copy_state(struct training_state *copy, const struct trainer *t, const struct mlp *m)
{
    struct error err;
    const size_t bytes = mlp_param_count(m) * precision_size(m->precision);
    copy->epoch = t->state.epoch;
    copy->rng = t->state.rng;
    ck_assert_msg(optimizer_state_create(&copy->optimizer, &t->settings.optimizer,
                                         mlp_param_count(m), m->precision, &err) == 0, "%s",
                  err.msg);
    copy->optimizer.step = t->state.optimizer.step;
    copy->optimizer.p1 = t->state.optimizer.p1;
    copy->optimizer.p2 = t->state.optimizer.p2;
    if (copy->optimizer.velocity)
        memcpy(copy->optimizer.velocity, t->state.optimizer.velocity, bytes);
    if (copy->optimizer.first_moment)
        memcpy(copy->optimizer.first_moment, t->state.optimizer.first_moment, bytes);
}

START_TEST(test_resumed_run_equals_straight_run)
{
    const struct training settings = resume_training(_i);
    const enum precision precision = _i == 2 ? PRECISION_F32 : PRECISION_F64;
    struct dataset ds;
    make_random_images(&ds, 11, 2, 3, 9);
    struct error err;
    double seconds;

    struct mlp straight, first_part, resumed;
    struct training_state state;
    struct trainer t;
    start_run(&straight, &state, &settings, precision, ACTIVATION_TANH, LOSS_XENT);
    start_trainer(&t, &straight, &ds, &settings, &state);
    ck_assert_msg(train(&t, &straight, 5, NULL, NULL, &seconds, &err) == 0, "%s", err.msg);

    struct trainer interrupted, continued;
    start_run(&first_part, &state, &settings, precision, ACTIVATION_TANH, LOSS_XENT);
    start_trainer(&interrupted, &first_part, &ds, &settings, &state);
    ck_assert_msg(train(&interrupted, &first_part, 2, NULL, NULL, &seconds, &err) == 0, "%s",
                  err.msg);
    copy_params(&resumed, &first_part);
    copy_state(&state, &interrupted, &first_part);
    trainer_destroy(&interrupted);
    mlp_free(&first_part);
    start_trainer(&continued, &resumed, &ds, &settings, &state);
    ck_assert_msg(train(&continued, &resumed, 5, NULL, NULL, &seconds, &err) == 0, "%s", err.msg);

    const size_t bytes = mlp_param_count(&straight) * precision_size(precision);
    ck_assert_msg(same_params(&straight, &resumed), "the resumed run's weights differ");
    ck_assert_uint_eq(continued.state.epoch, 5);
    ck_assert_uint_eq(continued.state.optimizer.step, t.state.optimizer.step);
    ck_assert_uint_eq(t.state.optimizer.step, 5 * training_steps_per_epoch(&settings, ds.count));
    ck_assert(continued.state.optimizer.p1 == t.state.optimizer.p1);
    ck_assert(continued.state.optimizer.p2 == t.state.optimizer.p2);
    ck_assert(memcmp(&continued.state.rng, &t.state.rng, sizeof t.state.rng) == 0);
    ck_assert(memcmp(continued.state.optimizer.velocity, t.state.optimizer.velocity, bytes) == 0);
    if (t.state.optimizer.first_moment)
        ck_assert(memcmp(continued.state.optimizer.first_moment, t.state.optimizer.first_moment,
                         bytes) == 0);
    trainer_destroy(&t);
    trainer_destroy(&continued);
    mlp_free(&straight);
    mlp_free(&resumed);
    dataset_free(&ds);
}
END_TEST

/* ------------------------------------------------ train() */

struct epochs_seen {
    unsigned count, epochs[8];
    unsigned stop_after;  /* epoch after which the callback stops training */
};

static int record_epoch(void *context, const struct trainer *t, unsigned epoch, double loss,
                        double seconds, struct error *err)
{
    (void)err;
    struct epochs_seen *seen = context;
    ck_assert(isfinite(loss) && seconds >= 0);
    ck_assert_uint_eq(t->state.epoch, epoch + 1);
    ck_assert_uint_lt(seen->count, 8);
    seen->epochs[seen->count++] = epoch;
    return epoch == seen->stop_after ? 1 : 0;
}

START_TEST(test_train_runs_to_the_end_epoch_and_stops_on_request)
{
    struct dataset ds;
    make_random_images(&ds, 9, 2, 3, 4);
    const struct training settings = sgd_training(4, 0.1, 0, 6);
    struct mlp m;
    struct training_state state;
    struct trainer t;
    struct error err;
    double seconds;
    start_run(&m, &state, &settings, PRECISION_F64, ACTIVATION_RELU, LOSS_MSE);
    start_trainer(&t, &m, &ds, &settings, &state);
    struct epochs_seen seen = {.stop_after = 100};
    ck_assert_msg(train(&t, &m, 2, record_epoch, &seen, &seconds, &err) == 0, "%s", err.msg);
    ck_assert_msg(train(&t, &m, 4, record_epoch, &seen, &seconds, &err) == 0, "%s", err.msg);
    seen.stop_after = 4;
    ck_assert_int_eq(train(&t, &m, 6, record_epoch, &seen, &seconds, &err), 1);
    ck_assert_uint_eq(seen.count, 5);
    for (unsigned e = 0; e < 5; e++)
        ck_assert_uint_eq(seen.epochs[e], e);
    ck_assert_uint_eq(t.state.epoch, 5);
    ck_assert_uint_eq(t.state.optimizer.step, 15);
    trainer_destroy(&t);
    mlp_free(&m);
    dataset_free(&ds);
}
END_TEST

START_TEST(test_train_reports_a_diverging_loss)
{
    struct dataset ds;
    make_random_images(&ds, 9, 2, 3, 4);
    const struct training settings = sgd_training(4, 1e6, 0, 50);
    struct mlp m;
    struct training_state state;
    struct trainer t;
    struct error err;
    double seconds;
    start_run(&m, &state, &settings, PRECISION_F32, ACTIVATION_RELU, LOSS_MSE);
    start_trainer(&t, &m, &ds, &settings, &state);
    ck_assert_int_eq(train(&t, &m, 50, NULL, NULL, &seconds, &err), -1);
    ck_assert_msg(strstr(err.msg, "diverged") && strstr(err.msg, "loss became") &&
                      strstr(err.msg, "at epoch") && strstr(err.msg, "--lr 1e+06"),
                  "message: %s", err.msg);
    trainer_destroy(&t);
    mlp_free(&m);
    dataset_free(&ds);
}
END_TEST

/* In float32 a rate of 1e39 rounds to infinity: the first epoch's loss,
 * taken before its update, is finite, but the weights after it are not. */
START_TEST(test_train_reports_weights_that_overflow_in_the_last_update)
{
    struct dataset ds;
    make_random_images(&ds, 9, 2, 3, 4);
    const struct training settings = sgd_training(0, 1e39, 0, 1);
    struct mlp m;
    struct training_state state;
    struct trainer t;
    struct error err;
    double seconds;
    start_run(&m, &state, &settings, PRECISION_F32, ACTIVATION_RELU, LOSS_MSE);
    start_trainer(&t, &m, &ds, &settings, &state);
    ck_assert_int_eq(train(&t, &m, 1, NULL, NULL, &seconds, &err), -1);
    ck_assert_msg(strstr(err.msg, "diverged") && strstr(err.msg, "parameters became non-finite") &&
                      strstr(err.msg, "epoch 0"),
                  "message: %s", err.msg);
    trainer_destroy(&t);
    mlp_free(&m);
    dataset_free(&ds);
}
END_TEST

START_TEST(test_trainer_refuses_a_state_without_moments)
{
    struct dataset ds;
    make_random_images(&ds, 9, 2, 3, 4);
    const struct training settings = sgd_training(4, 0.1, 0.9, 1);
    struct mlp m;
    struct training_state state;
    struct trainer t;
    struct error err;
    start_run(&m, &state, &settings, PRECISION_F64, ACTIVATION_RELU, LOSS_MSE);
    optimizer_state_free(&state.optimizer);
    ck_assert_int_eq(trainer_create(&t, ENGINE_REFERENCE, &m, &ds, &settings, &state, 1, NULL, &err), -1);
    ck_assert_msg(strstr(err.msg, "sgd optimiser's state"), "message: %s", err.msg);
    mlp_free(&m);
    dataset_free(&ds);
}
END_TEST

/* ------------------------------------------------ runner */

static Suite *train_suite(void)
{
    Suite *s = suite_create("train");

    TCase *batches = tcase_create("batches");
    tcase_add_test(batches, test_epoch_is_shuffled_batches_with_weighted_loss);
    tcase_add_loop_test(batches, test_whole_batch_draws_nothing, 0, (int)COUNT(whole_batches));
    tcase_add_test(batches, test_whole_batch_loss_is_not_rescaled);
    tcase_add_test(batches, test_steps_per_epoch);
    suite_add_tcase(s, batches);

    TCase *schedules = tcase_create("schedules");
    tcase_add_test(schedules, test_cosine_schedule);
    tcase_add_test(schedules, test_step_schedule);
    tcase_add_test(schedules, test_constant_schedule);
    tcase_add_loop_test(schedules, test_trainer_follows_the_schedule, 0, 2);
    suite_add_tcase(s, schedules);

    TCase *optimizers = tcase_create("optimizers");
    tcase_add_loop_test(optimizers, test_optimizer_matches_python_f64, 0,
                        (int)COUNT(optimizer_cases));
    tcase_add_loop_test(optimizers, test_optimizer_matches_python_f32, 0,
                        (int)COUNT(optimizer_cases));
    tcase_add_test(optimizers, test_plain_sgd_is_the_tutorial_update);
    tcase_add_test(optimizers, test_adam_bias_corrections);
    tcase_add_test(optimizers, test_names_and_moments);
    tcase_add_loop_test(optimizers, test_optimizer_loops_of_every_instruction_set, 0,
                        (int)COUNT(apply_cases));
    suite_add_tcase(s, optimizers);

    TCase *runs = tcase_create("runs");
    tcase_add_loop_test(runs, test_resumed_run_equals_straight_run, 0, 3);
    tcase_add_test(runs, test_train_runs_to_the_end_epoch_and_stops_on_request);
    tcase_add_test(runs, test_train_reports_a_diverging_loss);
    tcase_add_test(runs, test_train_reports_weights_that_overflow_in_the_last_update);
    tcase_add_test(runs, test_trainer_refuses_a_state_without_moments);
    suite_add_tcase(s, runs);

    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(train_suite());
    srunner_run_all(runner, CK_NORMAL);
    const int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
