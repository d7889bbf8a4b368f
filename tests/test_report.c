/* The progress line fits the terminal: never as wide as the window (which
 * would wrap and leave stale lines), shedding details before cutting; the
 * header says which network and training a run has; the work of an epoch. */
#include <config.h>

#include "report.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct progress at_1234 = {
    .epoch = 1234, .end_epoch = 3000, .loss = 0.0123456789, .accuracy = -1,
    .elapsed = 12.34, .per_epoch = 0.01, .eta = 17.5,
};

static const char *progress_of(const struct progress *p, size_t columns)
{
    static char line[256];
    report_progress_line(line, sizeof line, columns, p);
    return line;
}

static const char *progress(size_t columns)
{
    return progress_of(&at_1234, columns);
}

START_TEST(progress_line_full_when_it_fits)
{
    const char *full = "Epoch 1234/3000  loss 0.0123457  10.0 ms/epoch  elapsed 12.3 s  ETA 17.5 s";
    ck_assert_str_eq(progress(100), full);
    ck_assert_str_eq(progress(strlen(full) + 1), full);
}
END_TEST

/* The latest test accuracy, once there is one, comes after the loss. */
START_TEST(progress_line_shows_the_accuracy)
{
    struct progress p = at_1234;
    p.accuracy = 97.25;
    ck_assert_str_eq(progress_of(&p, 100), "Epoch 1234/3000  loss 0.0123457  test 97.25%  "
                                           "10.0 ms/epoch  elapsed 12.3 s  ETA 17.5 s");
    ck_assert_str_eq(progress_of(&p, 80), "Epoch 1234/3000  loss 0.0123457  test 97.25%  "
                                          "10.0 ms/epoch  ETA 17.5 s");
}
END_TEST

START_TEST(progress_line_sheds_details_on_narrow_terminals)
{
    ck_assert_str_eq(progress(73), "Epoch 1234/3000  loss 0.0123457  10.0 ms/epoch  ETA 17.5 s");
    ck_assert_str_eq(progress(59), "Epoch 1234/3000  loss 0.0123457  10.0 ms/epoch  ETA 17.5 s");
    ck_assert_str_eq(progress(58), "Epoch 1234/3000  loss 0.0123457  ETA 17.5 s");
    ck_assert_str_eq(progress(44), "Epoch 1234/3000  loss 0.0123457  ETA 17.5 s");
    ck_assert_str_eq(progress(43), "1234/3000 loss 0.01235");
    ck_assert_str_eq(progress(40), "1234/3000 loss 0.01235");
    ck_assert_str_eq(progress(12), "1234/3000");
    ck_assert_str_eq(progress(6), "1234/");
    ck_assert_str_eq(progress(1), "");
    ck_assert_str_eq(progress(0), "");
}
END_TEST

/* Whatever the width, the line leaves the last column free. */
START_TEST(progress_line_never_reaches_the_last_column)
{
    for (size_t columns = 1; columns <= 200; columns++)
        ck_assert_msg(strlen(progress(columns)) < columns, "%zu columns: \"%s\"", columns,
                      progress(columns));
}
END_TEST

/* The header's first two lines for a network and its training. */
static char *header(const size_t *widths, size_t n_layers, enum activation activation,
                    enum loss loss, const struct training *training)
{
    struct mlp m = {.n_layers = n_layers, .activation = activation, .loss = loss,
                    .precision = PRECISION_F32};
    memcpy(m.widths, widths, (n_layers + 1) * sizeof *widths);
    const struct run_description run = {
        .model = &m, .training = training, .data_dir = "data", .train_count = 6000,
        .train_total = 60000, .test_count = 1000, .test_total = 10000, .seed = 1337,
        .engine = ENGINE_OMP, .threads = 2, .first_epoch = 0, .end_epoch = 300,
    };
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    ck_assert_ptr_nonnull(out);
    report_header(out, &run);
    fclose(out);
    return text;
}

static const struct training tutorial = {
    .batch = 0, .optimizer = {.kind = OPTIMIZER_SGD, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8},
    .schedule = {.kind = SCHEDULE_CONSTANT, .lr = 0.8}, .epochs = 300,
};

/* The reference experiment's header is the tutorial's, whatever else grew. */
START_TEST(header_of_the_reference_experiment)
{
    const size_t widths[] = {784, 32, 10};
    char *text = header(widths, 2, ACTIVATION_RELU, LOSS_MSE, &tutorial);
    ck_assert_str_eq(text, "mnist-omp: 784-32-10 ReLU MLP, MSE loss, full-batch gradient descent\n"
                           "Data:      data (train 6000 of 60000, test 1000 of 10000, seed 1337)\n"
                           "Training:  300 epochs, lr 0.8, float32, engine omp, 2 threads\n");
    free(text);
}
END_TEST

/* Any other network and training says what it is. */
START_TEST(header_of_the_general_trainer)
{
    const size_t widths[] = {784, 512, 512, 10};
    struct training adamw = tutorial, nesterov = tutorial;
    adamw.batch = 128;
    adamw.optimizer.kind = OPTIMIZER_ADAMW;
    adamw.optimizer.weight_decay = 0.01;
    adamw.schedule = (struct schedule){.kind = SCHEDULE_COSINE, .lr = 0.001};
    char *text = header(widths, 3, ACTIVATION_TANH, LOSS_XENT, &adamw);
    ck_assert_msg(strstr(text, "mnist-omp: 784-512-512-10 tanh MLP, cross-entropy loss, batches "
                               "of 128, AdamW (beta1 0.9, beta2 0.999, eps 1e-08, weight decay "
                               "0.01)\n") == text, "%s", text);
    ck_assert_msg(strstr(text, "Training:  300 epochs, lr 0.001 cosine, float32,"), "%s", text);
    free(text);

    nesterov.batch = 6000;  /* as large as the training set: one batch */
    nesterov.optimizer.momentum = 0.9;
    nesterov.optimizer.nesterov = true;
    nesterov.schedule = (struct schedule){.kind = SCHEDULE_STEP, .lr = 0.1, .step_epochs = 1,
                                          .step_gamma = 0.5};
    text = header(widths, 3, ACTIVATION_SIGMOID, LOSS_MSE, &nesterov);
    ck_assert_msg(strstr(text, "784-512-512-10 sigmoid MLP, MSE loss, full batch, SGD "
                               "(momentum 0.9, Nesterov, weight decay 0)\n"), "%s", text);
    ck_assert_msg(strstr(text, "lr 0.1 times 0.5 every 1 epoch, float32"), "%s", text);
    free(text);
}
END_TEST

/* Dense work of an epoch: two products for the first layer (forward,
 * weights' gradient), three for the others (and the inputs' gradient). */
START_TEST(flops_of_an_epoch)
{
    struct mlp tutorial_net = {.n_layers = 2, .widths = {784, 32, 10}};
    struct mlp deep = {.n_layers = 3, .widths = {784, 512, 256, 10}};
    ck_assert_double_eq(epoch_flops(6000, &tutorial_net),
                        2.0 * 6000 * (2.0 * 784 * 32 + 3.0 * 32 * 10));
    ck_assert_double_eq(epoch_flops(100, &deep),
                        2.0 * 100 * (2.0 * 784 * 512 + 3.0 * 512 * 256 + 3.0 * 256 * 10));
}
END_TEST

static Suite *report_suite(void)
{
    Suite *s = suite_create("report");
    TCase *progress_case = tcase_create("progress line");

    tcase_add_test(progress_case, progress_line_full_when_it_fits);
    tcase_add_test(progress_case, progress_line_shows_the_accuracy);
    tcase_add_test(progress_case, progress_line_sheds_details_on_narrow_terminals);
    tcase_add_test(progress_case, progress_line_never_reaches_the_last_column);
    suite_add_tcase(s, progress_case);
    TCase *header_case = tcase_create("header");
    tcase_add_test(header_case, header_of_the_reference_experiment);
    tcase_add_test(header_case, header_of_the_general_trainer);
    tcase_add_test(header_case, flops_of_an_epoch);
    suite_add_tcase(s, header_case);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(report_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
