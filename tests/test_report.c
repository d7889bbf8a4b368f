/* The progress line fits the terminal: never as wide as the window (which
 * would wrap and leave stale lines), shedding details before cutting. */
#include <config.h>

#include "report.h"

#include <check.h>
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

static Suite *report_suite(void)
{
    Suite *s = suite_create("report");
    TCase *progress_case = tcase_create("progress line");

    tcase_add_test(progress_case, progress_line_full_when_it_fits);
    tcase_add_test(progress_case, progress_line_shows_the_accuracy);
    tcase_add_test(progress_case, progress_line_sheds_details_on_narrow_terminals);
    tcase_add_test(progress_case, progress_line_never_reaches_the_last_column);
    suite_add_tcase(s, progress_case);
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
