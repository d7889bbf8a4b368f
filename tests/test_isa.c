/* The AVX2 and AVX-512 kernels against the portable ones, bitwise.  On a CPU
 * (or a build) with no instruction set besides portable there is nothing to
 * compare, and the program exits 77, which the test harness reports as
 * SKIP, so that the report says what was not tested.
 *
 * The tests run OpenMP code in a child that Check forks: the parent never
 * starts libgomp's thread pool, because a child forked after that can hang. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "kernels.h"
#include "model.h"
#include "optimizer.h"
#include "testdata.h"

/* Automake's exit status for a test that did not run. */
enum { EXIT_SKIP = 77 };

enum { STEPS = 6 };

/* Trains a copy of initial for a few steps of plain SGD with the kernels of
 * one instruction set: batches of b (b = N: the whole set) in a fixed
 * scattered order. */
static void train_with_isa(struct mlp *trained, const struct mlp *initial,
                           const struct dataset *ds, size_t b, const char *isa, double *losses)
{
    const struct optimizer sgd = {.kind = OPTIMIZER_SGD};
    struct optimizer_state state = {0};
    struct engine *e;
    struct error err;
    size_t *order = malloc(ds->count * sizeof *order);
    ck_assert_ptr_nonnull(order);
    for (size_t i = 0; i < ds->count; i++)
        order[i] = (i * 7919) % ds->count;
    copy_model(trained, initial);
    ck_assert_msg(engine_create(&e, trained, ds, isa, 0, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(engine_isa(e), isa);
    for (size_t step = 0, first = 0; step < STEPS; step++) {
        const size_t count = ds->count - first < b ? ds->count - first : b;
        losses[step] =
            engine_batch_gradient(e, trained, b >= ds->count ? NULL : order + first, count);
        const struct optimizer_step s = {.lr = 0.3};
        engine_update(e, trained, &sgd, &s, &state);
        first = first + count < ds->count ? first + count : 0;
    }
    engine_destroy(e);
    free(order);
}

/* The AVX2 and AVX-512 kernels compute bitwise what the portable ones do,
 * on MNIST-sized images and on images of an odd number of pixels, for
 * every activation and loss, hidden widths around the tiles' edges, deep
 * and shallow networks, mini-batches and the whole set.  The 300 inputs
 * of the 5-wide layer take two chunks of the depth on AVX2 and AVX-512,
 * one on portable, and its 5 columns are no tile width of either
 * precision (a narrow tile that goes on from its first chunk's sums). */
START_TEST(every_instruction_set_matches_portable_bitwise)
{
    static const size_t sides[] = {28, 5};
    static const size_t hidden[][3] = {{31, 0, 0}, {33, 17, 0}, {1, 40, 9}, {300, 5, 0}};
    size_t compared = 0;
    for (size_t shape = 0; shape < sizeof sides / sizeof *sides; shape++) {
        struct dataset ds;
        make_random_images(&ds, 400, sides[shape], sides[shape], 21);
        for (int precision = PRECISION_F32; precision <= PRECISION_F64; precision++) {
            for (size_t net = 0; net < sizeof hidden / sizeof *hidden; net++) {
                size_t widths[5] = {dataset_image_size(&ds)}, n_layers = 1;
                for (size_t l = 0; l < 3 && hidden[net][l]; l++)
                    widths[n_layers++] = hidden[net][l];
                widths[n_layers] = TESTDATA_CLASSES;
                const enum activation activation = (enum activation)(net % 3);
                const enum loss loss = (enum loss)((net + shape) % 2);
                const size_t b = net == 1 ? ds.count : 37;
                struct mlp initial, portable, other;
                double portable_losses[STEPS], losses[STEPS];
                make_network(&initial, n_layers, widths, activation, loss,
                             (enum precision)precision, 8);
                train_with_isa(&portable, &initial, &ds, b, "portable", portable_losses);
                for (size_t i = 0; i < kernel_isa_count(); i++) {
                    if (!kernel_isa_supported(i) || strcmp(kernel_isa_name(i), "portable") == 0)
                        continue;
                    train_with_isa(&other, &initial, &ds, b, kernel_isa_name(i), losses);
                    char name[128];
                    mlp_format_widths(&initial, name, sizeof name);
                    ck_assert_msg(memcmp(other.params, portable.params,
                                         mlp_param_count(&initial) *
                                             precision_size(initial.precision)) == 0 &&
                                      memcmp(losses, portable_losses, sizeof losses) == 0,
                                  "%s kernels differ from portable (%s %s %s, batch %zu, %s)",
                                  kernel_isa_name(i), name, activation_name(activation),
                                  loss_name(loss), b, precision_name(initial.precision));
                    mlp_free(&other);
                    compared++;
                }
                mlp_free(&initial);
                mlp_free(&portable);
            }
        }
        dataset_free(&ds);
    }
    /* main skips the program when no instruction set besides portable runs. */
    ck_assert_uint_gt(compared, 0);
}
END_TEST

/* The instruction sets besides portable that this build has and this CPU runs. */
static size_t other_supported_isas(void)
{
    size_t count = 0;
    for (size_t i = 0; i < kernel_isa_count(); i++)
        count += kernel_isa_supported(i) && strcmp(kernel_isa_name(i), "portable") != 0;
    return count;
}

int main(void)
{
    for (size_t i = 0; i < kernel_isa_count(); i++)
        if (!kernel_isa_supported(i))
            printf("test_isa: the %s kernels are not tested: this CPU cannot run them\n",
                   kernel_isa_name(i));
    if (other_supported_isas() == 0) {
        printf("test_isa: SKIP: this %s no instruction set besides the portable kernels\n",
               kernel_isa_count() > 1 ? "CPU runs" : "build has");
        return EXIT_SKIP;
    }
    Suite *s = suite_create("isa");
    TCase *tc = tcase_create("isa");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, every_instruction_set_matches_portable_bitwise);
    suite_add_tcase(s, tc);
    SRunner *runner = srunner_create(s);
    srunner_run_all(runner, CK_NORMAL);
    const int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
