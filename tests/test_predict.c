/* `mnist-omp predict` reads PGM and PNG digits and classifies them exactly as
 * the evaluator classifies the same images.  Each test writes its images into
 * a fresh temporary directory. */
#include <config.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset.h"
#include "evaluate.h"
#include "image.h"
#include "kernels.h"
#include "testdir.h"
#include "mnist.h"
#include "model.h"
#include "predict.h"
#include "rng.h"
#include "testdir.h"
#include "train.h"

enum { IMAGES = 12, SIDE = 28 };

/* A small trained model and the first test images, in file order. */
static void trained_model(struct mlp *m, struct dataset *test)
{
    const char *dir = testdir_data();
    struct dataset all_train, training, all_test;
    struct trainer t;
    struct py_random rng;
    struct error err;
    size_t order[500];
    double seconds;

    ck_assert_msg(mnist_load(&all_train, dir, MNIST_TRAIN, &err) == 0, "%s", err.msg);
    ck_assert_msg(mnist_load(&all_test, dir, MNIST_TEST, &err) == 0, "%s", err.msg);
    for (size_t i = 0; i < 500; i++)
        order[i] = i;
    ck_assert_int_eq(dataset_select(&training, &all_train, order, 500, &err), 0);
    ck_assert_int_eq(dataset_select(test, &all_test, order, IMAGES, &err), 0);
    py_random_seed(&rng, 5);
    ck_assert_int_eq(mlp_create(m, SIDE * SIDE, 32, 10, PRECISION_F32, &err), 0);
    mlp_init_xavier(m, &rng);
    ck_assert_int_eq(trainer_create(&t, ENGINE_OMP, m, &training, 0, &err), 0);
    ck_assert_int_eq(train(&t, m, 0, 30, 0.8, NULL, NULL, &seconds, &err), 0);
    trainer_destroy(&t);
    dataset_free(&training);
    dataset_free(&all_train);
    dataset_free(&all_test);
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

START_TEST(pgm_and_png_predictions_equal_the_evaluators)
{
    struct mlp m;
    struct dataset test;
    struct evaluation ev;
    struct error err;
    const char *path;
    double expected[10], got[10];
    int digit;

    trained_model(&m, &test);
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
     * model is real (30 epochs on 500 images). */
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
    ck_assert_int_eq(mlp_create(&m, SIDE * SIDE, 4, 10, PRECISION_F32, &err), 0);
    const char *path = testdir_write_text("small.pgm", "P2\n2 2\n255\n0 1\n2 3\n");
    ck_assert_int_eq(predict_image(&m, path, false, &digit, p, &err), -1);
    ck_assert_msg(strstr(err.msg, "2x2 pixels") && strstr(err.msg, path), "%s", err.msg);
    mlp_free(&m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("predict");
    TCase *tc = testdir_tcase(s, "predict");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, pgm_and_png_predictions_equal_the_evaluators);
    tcase_add_test(tc, wrong_size_image_is_refused);
    return testdir_run("test_predict", s, CK_NORMAL);
}
