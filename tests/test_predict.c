/* Prediction: the engine's forward kernel (which mlp_predict, the evaluator
 * and `mnist-omp predict` share) against the serial reference's forward
 * pass for networks of every depth, and `mnist-omp predict` reading PGM and
 * PNG digits and classifying them exactly as the evaluator classifies the
 * same images, with the tutorial's network and with a deep one trained by
 * mini-batch Adam.  Each test writes its images into a fresh temporary
 * directory. */
#include <config.h>

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset.h"
#include "evaluate.h"
#include "image.h"
#include "kernels.h"
#include "mnist.h"
#include "model.h"
#include "predict.h"
#include "reference.h"
#include "rng.h"
#include "testdata.h"
#include "testdir.h"
#include "train.h"

enum { IMAGES = 12, SIDE = 28 };

/* The networks trained here: the tutorial's, 30 epochs of full-batch SGD;
 * a deep one, 10 epochs of Adam on batches of 50. */
enum trained_kind { TUTORIAL, DEEP, TRAINED_KINDS };

static const char *const trained_names[] = {"784-32-10 relu mse sgd",
                                            "784-16-8-10 tanh xent adam"};

/* A network of that kind and precision trained on the first 500 training
 * images, and the first `test_count` test images, in file order. */
static void trained_model(struct mlp *m, enum trained_kind kind, enum precision precision,
                          struct dataset *test, size_t test_count)
{
    static const size_t tutorial[] = {SIDE * SIDE, 32, TESTDATA_CLASSES};
    static const size_t deep[] = {SIDE * SIDE, 16, 8, TESTDATA_CLASSES};
    struct training settings = {0};
    struct training_state state = {0};
    struct dataset training;
    struct trainer t;
    struct error err;
    double seconds;

    load_mnist_slice(&training, MNIST_TRAIN, 500);
    load_mnist_slice(test, MNIST_TEST, test_count);
    settings.optimizer = (struct optimizer){OPTIMIZER_SGD, 0, false, 0, 0.9, 0.999, 1e-8};
    settings.schedule = (struct schedule){SCHEDULE_CONSTANT, 0.8, 0, 0};
    settings.epochs = 30;
    py_random_seed(&state.rng, 5);
    if (kind == DEEP) {
        settings.batch = 50;
        settings.optimizer.kind = OPTIMIZER_ADAM;
        settings.schedule.lr = 0.01;
        settings.epochs = 10;
        ck_assert_msg(mlp_create(m, 3, deep, ACTIVATION_TANH, LOSS_XENT, precision, &err) == 0,
                      "%s", err.msg);
    } else {
        ck_assert_msg(mlp_create(m, 2, tutorial, ACTIVATION_RELU, LOSS_MSE, precision, &err) == 0,
                      "%s", err.msg);
    }
    mlp_init_uniform(m, &state.rng);
    ck_assert_msg(optimizer_state_create(&state.optimizer, &settings.optimizer,
                                         mlp_param_count(m), precision, &err) == 0,
                  "%s", err.msg);
    ck_assert_msg(trainer_create(&t, ENGINE_OMP, m, &training, &settings, &state, 2, NULL, &err) == 0,
                  "%s", err.msg);
    ck_assert_msg(train(&t, m, settings.epochs, NULL, NULL, &seconds, &err) == 0, "%s", err.msg);
    trainer_destroy(&t);
    dataset_free(&training);
}

/* The path of STEMn.EXT in the test's directory. */
static const char *numbered_path(const char *stem, size_t n, const char *ext)
{
    char name[64];
    const int length = snprintf(name, sizeof name, "%s%zu.%s", stem, n, ext);
    ck_assert(length > 0 && (size_t)length < sizeof name);
    return testdir_path(name);
}

static void write_pgm(const char *path, const uint8_t *pixels, bool inverted)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "P5\n# test digit\n%d %d\n255\n", SIDE, SIDE);
    for (size_t i = 0; i < SIDE * SIDE; i++)
        fputc(inverted ? 255 - pixels[i] : pixels[i], f);
    ck_assert_int_eq(fclose(f), 0);
}

/* The reference's logits of every image of ds, malloc'd. */
static double *reference_logits_of(const struct mlp *m, const struct dataset *ds)
{
    struct error err;
    double *logits = malloc((ds->count ? ds->count : 1) * mlp_outputs(m) * sizeof *logits);
    ck_assert_ptr_nonnull(logits);
    ck_assert_msg(reference_logits(m, ds, logits, &err) == 0, "%s", err.msg);
    return logits;
}

/* The first largest of n values, as the evaluator picks its digit. */
static int first_argmax(const double *values, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (values[i] > values[best])
            best = i;
    return (int)best;
}

/* Tolerances, relative to the largest logit of the batch: the engine's
 * forward kernel and the reference may differ only in the order in which
 * each logit's terms are summed (today the kernel keeps the reference's
 * order, so they agree bitwise, but nothing here should depend on that),
 * worth a few ulps per sum of up to 784 terms; an error that scales with
 * the logits, not with each (possibly tiny) one.  float64: ~1e-16 per ulp
 * leaves 1e-12 three orders of magnitude of margin; float32: the same from an
 * epsilon of 6e-8 gives 1e-5.  A wrong, missing or misplaced term, bias or
 * ReLU shows at 1e-3 or more. */
#define RTOL_F64 1e-12
#define RTOL_F32 1e-5

/* Batches of one, just under, at and just over a block (BLOCK_IMAGES), and
 * over several blocks ending part-way into one. */
static const size_t forward_counts[] = {1, BLOCK_IMAGES - 1, BLOCK_IMAGES, BLOCK_IMAGES + 1,
                                        1001, 1337};
enum { FORWARD_COUNTS = sizeof forward_counts / sizeof *forward_counts };

/* The networks of the forward test: 32 hidden units are whole tiles in
 * both precisions, 33 leave a partial one; deeper ones with every
 * activation, a layer of one unit, and one weight layer alone. */
struct net {
    size_t n_layers;
    size_t widths[6];
    enum activation activation;
};

static const struct net forward_nets[] = {
    {2, {SIDE * SIDE, 32, TESTDATA_CLASSES}, ACTIVATION_RELU},
    {2, {SIDE * SIDE, 33, TESTDATA_CLASSES}, ACTIVATION_RELU},
    {1, {SIDE * SIDE, TESTDATA_CLASSES}, ACTIVATION_RELU},
    {3, {SIDE * SIDE, 33, 5, TESTDATA_CLASSES}, ACTIVATION_TANH},
    {4, {SIDE * SIDE, 16, 1, 9, TESTDATA_CLASSES}, ACTIVATION_SIGMOID},
};
enum { FORWARD_NETS = sizeof forward_nets / sizeof *forward_nets };

/* A network whose biases are nonzero too (the uniform draw's are 0), so
 * that a bias dropped or added in the wrong place shows. */
static void make_model_with_biases(struct mlp *m, const struct net *n, enum precision precision,
                                   int64_t seed)
{
    struct py_random rng;
    make_network(m, n->n_layers, n->widths, n->activation, LOSS_MSE, precision, seed);
    py_random_seed(&rng, seed + 1);
    for (size_t l = 0; l < m->n_layers; l++) {
        const struct mlp_layer layer = mlp_layer(m, l);
        for (size_t p = layer.bias; p < layer.bias + layer.n_out; p++) {
            const double bias = py_random_uniform(&rng, -0.3, 0.3);
            if (precision == PRECISION_F64)
                ((double *)m->params)[p] = bias;
            else
                ((float *)m->params)[p] = (float)bias;
        }
    }
}

START_TEST(forward_kernel_matches_reference_logits)
{
    const size_t count = forward_counts[_i % FORWARD_COUNTS];
    const enum precision precision = _i < FORWARD_COUNTS ? PRECISION_F32 : PRECISION_F64;
    const double rtol = precision == PRECISION_F64 ? RTOL_F64 : RTOL_F32;
    struct dataset ds;
    struct error err;

    make_random_dataset(&ds, count, 40 + (int64_t)count);
    for (size_t k = 0; k < FORWARD_NETS; k++) {
        struct mlp m;
        char shape[64];
        make_model_with_biases(&m, &forward_nets[k], precision, 60 + (int64_t)k);
        mlp_format_widths(&m, shape, sizeof shape);
        const size_t outputs = mlp_outputs(&m);
        double *want = reference_logits_of(&m, &ds);
        double *got = malloc(count * outputs * sizeof *got);
        ck_assert_ptr_nonnull(got);
        ck_assert_msg(mlp_predict(&m, &ds, got, &err) == 0, "%s", err.msg);
        double scale = 0;
        for (size_t i = 0; i < count * outputs; i++)
            scale = fmax(scale, fabs(want[i]));
        ck_assert(scale > 0);
        for (size_t i = 0; i < count * outputs; i++)
            ck_assert_msg(fabs(got[i] - want[i]) <= rtol * scale,
                          "%s, %zu images, %s %s: image %zu logit %zu: kernel %.17g reference "
                          "%.17g (scale %g)",
                          precision_name(precision), count, shape,
                          activation_name(m.activation), i / outputs, i % outputs, got[i],
                          want[i], scale);
        free(got);
        free(want);
        mlp_free(&m);
    }
    dataset_free(&ds);
}
END_TEST

enum { PREDICTED_DIGITS = 300 };

/* `predict` on real test digits, each written as a PGM file and read back,
 * picks the digit the reference's logits pick. */
START_TEST(predict_picks_the_references_digit)
{
    const enum precision precision = _i % 2 ? PRECISION_F64 : PRECISION_F32;
    const enum trained_kind kind = (enum trained_kind)(_i / 2);
    struct mlp m;
    struct dataset test;
    struct error err;
    double probabilities[TESTDATA_CLASSES];
    int digit;
    size_t correct = 0;

    trained_model(&m, kind, precision, &test, PREDICTED_DIGITS);
    double *want = reference_logits_of(&m, &test);
    const char *path = testdir_path("digit.pgm");
    for (size_t n = 0; n < test.count; n++) {
        write_pgm(path, test.pixels + n * SIDE * SIDE, false);
        ck_assert_msg(predict_image(&m, path, false, &digit, probabilities, &err) == 0, "%s",
                      err.msg);
        const int expected = first_argmax(want + n * TESTDATA_CLASSES, TESTDATA_CLASSES);
        ck_assert_msg(digit == expected,
                      "%s %s, test image %zu: predict says %d, the reference %d",
                      trained_names[kind], precision_name(precision), n, digit, expected);
        correct += digit == test.labels[n];
    }
    /* The digits classify as the data labels them often enough to show the
     * model is real (trained on 500 images). */
    ck_assert_msg(correct >= PREDICTED_DIGITS / 2, "%s %s: %zu of %d right",
                  trained_names[kind], precision_name(precision), correct, PREDICTED_DIGITS);
    free(want);
    mlp_free(&m);
    dataset_free(&test);
}
END_TEST

START_TEST(pgm_and_png_predictions_equal_the_evaluators)
{
    struct mlp m;
    struct dataset test;
    struct evaluation ev;
    struct error err;
    const char *path;
    double expected[10], got[10];
    int digit;

    trained_model(&m, (enum trained_kind)_i, PRECISION_F32, &test, IMAGES);
    ck_assert_int_eq(evaluate(&ev, &m, &test, &err), 0);
    for (size_t n = 0; n < IMAGES; n++) {
        const uint8_t *pixels = test.pixels + n * SIDE * SIDE;
        struct gray_image image = {SIDE, SIDE, (uint8_t *)pixels};
        softmax(ev.logits + n * 10, 10, expected);

        path = numbered_path("digit", n, "pgm");
        write_pgm(path, pixels, false);
        ck_assert_msg(predict_image(&m, path, false, &digit, got, &err) == 0, "%s", err.msg);
        ck_assert_int_eq(digit, ev.predicted[n]);
        ck_assert_msg(memcmp(got, expected, sizeof got) == 0, "PGM %zu: probabilities differ", n);

        path = numbered_path("inverted", n, "pgm");
        write_pgm(path, pixels, true);
        ck_assert_int_eq(predict_image(&m, path, true, &digit, got, &err), 0);
        ck_assert_msg(memcmp(got, expected, sizeof got) == 0, "--invert %zu differs", n);

#ifdef HAVE_LIBPNG
        path = numbered_path("digit", n, "png");
        ck_assert_msg(image_write_png(path, &image, &err) == 0, "%s", err.msg);
        ck_assert_msg(predict_image(&m, path, false, &digit, got, &err) == 0, "%s", err.msg);
        ck_assert_int_eq(digit, ev.predicted[n]);
        ck_assert_msg(memcmp(got, expected, sizeof got) == 0, "PNG %zu: probabilities differ", n);
#else
        (void)image;
#endif
    }
    /* The images classify as the data labels them often enough to show the
     * model is real (trained on 500 images). */
    ck_assert_uint_ge(ev.correct, IMAGES / 2);
    evaluation_free(&ev);
    mlp_free(&m);
    dataset_free(&test);
}
END_TEST

START_TEST(wrong_size_image_is_refused)
{
    struct mlp m;
    struct error err;
    double p[10];
    int digit;
    make_model(&m, SIDE * SIDE, 4, PRECISION_F32, 1);
    const char *path = testdir_write_text("small.pgm", "P2\n2 2\n255\n0 1\n2 3\n");
    ck_assert_int_eq(predict_image(&m, path, false, &digit, p, &err), -1);
    ck_assert_msg(strstr(err.msg, "2x2 pixels") && strstr(err.msg, path), "%s", err.msg);
    mlp_free(&m);
}
END_TEST

/* A network of another input size cannot read a digit. */
START_TEST(network_of_other_inputs_is_refused)
{
    static const size_t widths[] = {100, 7, 3, TESTDATA_CLASSES};
    struct mlp m;
    struct error err;
    double p[TESTDATA_CLASSES];
    int digit;
    uint8_t pixels[SIDE * SIDE] = {0};
    make_network(&m, 3, widths, ACTIVATION_TANH, LOSS_XENT, PRECISION_F64, 1);
    const char *path = testdir_path("digit.pgm");
    write_pgm(path, pixels, false);
    ck_assert_int_eq(predict_image(&m, path, false, &digit, p, &err), -1);
    ck_assert_msg(strstr(err.msg, "the model takes 100 inputs, not the 784 pixels"), "%s",
                  err.msg);
    mlp_free(&m);
}
END_TEST

/* The evaluator picks the first of equal maximum logits, for a network of
 * any depth and number of outputs, and counts a prediction right only when
 * it is the label.  The weights are zero, so every image's logits are the
 * last layer's biases: {1, 5, 5, -2} picks class 1. */
START_TEST(evaluator_picks_the_first_maximum)
{
    const size_t depth = (size_t)_i + 1;
    size_t widths[4] = {SIDE * SIDE, 6, 6, 6};
    struct mlp m;
    struct dataset ds;
    struct evaluation ev;
    struct error err;
    widths[depth] = 4;
    make_network(&m, depth, widths, ACTIVATION_SIGMOID, LOSS_XENT, PRECISION_F32, 1);
    memset(m.params, 0, mlp_param_count(&m) * sizeof(float));
    const struct mlp_layer last = mlp_layer(&m, depth - 1);
    const float biases[4] = {1, 5, 5, -2};
    memcpy((float *)m.params + last.bias, biases, sizeof biases);
    make_random_dataset(&ds, 7, 3);
    for (size_t n = 0; n < ds.count; n++)
        ds.labels[n] = (uint8_t)(n % 3);
    ck_assert_msg(evaluate(&ev, &m, &ds, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(ev.n_out, 4);
    for (size_t n = 0; n < ds.count; n++)
        ck_assert_int_eq(ev.predicted[n], 1);
    ck_assert_uint_eq(ev.correct, 2);  /* images 1 and 4 */
    evaluation_free(&ev);
    dataset_free(&ds);
    mlp_free(&m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("predict");
    TCase *tc = testdir_tcase(s, "predict");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, forward_kernel_matches_reference_logits, 0, 2 * FORWARD_COUNTS);
    tcase_add_loop_test(tc, predict_picks_the_references_digit, 0, 2 * TRAINED_KINDS);
    tcase_add_loop_test(tc, pgm_and_png_predictions_equal_the_evaluators, 0, TRAINED_KINDS);
    tcase_add_test(tc, wrong_size_image_is_refused);
    tcase_add_test(tc, network_of_other_inputs_is_refused);
    tcase_add_loop_test(tc, evaluator_picks_the_first_maximum, 0, 3);
    return testdir_run("test_predict", s, CK_NORMAL);
}
