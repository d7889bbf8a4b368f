/* Temporary directories for the Check test programs: see testdir.h. */
#define _XOPEN_SOURCE 700  /* mkdtemp, nftw */

#include "testdir.h"

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char run_dir[PATH_MAX];   /* empty until testdir_init succeeds */
static pid_t run_owner;          /* the process that made run_dir */
static char test_dir[PATH_MAX];  /* empty until testdir_fresh runs */
static char paths[TESTDIR_PATHS][PATH_MAX];
static int paths_used;

int testdir_init(const char *name)
{
    const char *base = getenv("TMPDIR");
    int length;

    if (!base || !*base)
        base = "/tmp";
    length = snprintf(run_dir, sizeof run_dir, "%s/%s.XXXXXX", base, name);
    if (length < 0 || (size_t)length >= sizeof run_dir) {
        fprintf(stderr, "%s: cannot make a temporary directory: the path under %s is too long\n",
                name, base);
        run_dir[0] = '\0';
        return -1;
    }
    if (!mkdtemp(run_dir)) {
        fprintf(stderr, "%s: cannot make a temporary directory in %s: %s\n", name, base,
                strerror(errno));
        run_dir[0] = '\0';
        return -1;
    }
    run_owner = getpid();
    return 0;
}

int testdir_run(const char *name, Suite *suite, enum print_output mode)
{
    SRunner *runner = srunner_create(suite);

    if (testdir_init(name) != 0) {
        srunner_free(runner);
        return 99;  /* a hard error for the test harness, not a test failure */
    }
    srunner_run_all(runner, mode);
    const int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    testdir_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* Before the removal: a test may have left a directory without write (or
 * search) permission, which would keep what it holds. */
static int open_up(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)ftw;
    if (type == FTW_D || type == FTW_DNR)
        chmod(path, 0700);
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)type, (void)ftw;
    remove(path);
    return 0;  /* go on: remove all that can be */
}

void testdir_cleanup(void)
{
    if (!run_dir[0] || getpid() != run_owner)
        return;
    nftw(run_dir, open_up, 16, FTW_PHYS);
    nftw(run_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    run_dir[0] = '\0';
}

void testdir_fresh(void)
{
    ck_assert_msg(run_dir[0], "testdir_init has not made the run's directory");
    int length = snprintf(test_dir, sizeof test_dir, "%s/test.XXXXXX", run_dir);

    ck_assert(length > 0 && (size_t)length < sizeof test_dir);
    ck_assert_msg(mkdtemp(test_dir) != NULL, "mkdtemp %s: %s", test_dir, strerror(errno));
    paths_used = 0;
}

TCase *testdir_tcase(Suite *suite, const char *name)
{
    TCase *tcase = tcase_create(name);

    tcase_add_checked_fixture(tcase, testdir_fresh, NULL);
    suite_add_tcase(suite, tcase);
    return tcase;
}

const char *testdir_dir(void)
{
    ck_assert_msg(test_dir[0], "testdir_fresh has not run: add it as the test case's fixture");
    return test_dir;
}

const char *testdir_path(const char *name)
{
    const char *dir = testdir_dir();

    ck_assert_int_lt(paths_used, TESTDIR_PATHS);
    char *path = paths[paths_used++];
    int length = snprintf(path, PATH_MAX, "%s/%s", dir, name);
    ck_assert(length > 0 && length < PATH_MAX);
    return path;
}

const char *testdir_mkdir(const char *name)
{
    const char *path = testdir_path(name);

    ck_assert_msg(mkdir(path, 0777) == 0, "mkdir %s: %s", path, strerror(errno));
    return path;
}

const char *testdir_write(const char *name, const void *data, size_t size)
{
    const char *path = testdir_path(name);
    FILE *f = fopen(path, "wb");

    ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
    if (size > 0)  /* fwrite's buffer must not be NULL, even for 0 bytes */
        ck_assert_uint_eq(fwrite(data, 1, size, f), size);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

const char *testdir_write_text(const char *name, const char *text)
{
    return testdir_write(name, text, strlen(text));
}

char *testdir_read(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t used = 0;

    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    for (;;) {
        data = realloc(data, used + 4096 + 1);
        ck_assert(data != NULL);
        size_t got = fread(data + used, 1, 4096, f);
        used += got;
        if (got < 4096)
            break;
    }
    ck_assert(!ferror(f));
    fclose(f);
    data[used] = '\0';
    if (size)
        *size = used;
    return data;
}

const char *testdir_data(void)
{
    static char dir[PATH_MAX];
    const char *env_dir = getenv("MNIST_OMP_DATA");
    const char *srcdir = getenv("srcdir");

    if (env_dir && *env_dir)
        return env_dir;
    snprintf(dir, sizeof dir, "%s/data", srcdir ? srcdir : ".");
    return dir;
}
