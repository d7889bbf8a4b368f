/* Temporary directories for the Check test programs.
 *
 * A test program's main runs its suite with testdir_run("test_name", ...),
 * or does what that does itself: testdir_init("test_name") before the
 * runner makes one directory for the whole run, $TMPDIR/test_name.XXXXXX
 * (/tmp when TMPDIR is unset or empty), and testdir_cleanup() after it
 * removes that directory and everything in it: also what failing tests
 * left, since a forked test's process ends before any teardown of its own
 * could clean up.  Every test case whose tests write files has
 * testdir_fresh as a checked fixture (testdir_tcase makes such a case), so
 * that each test works in a new, empty directory inside the run's.  It all
 * works the same under CK_FORK=no.
 *
 * The helpers below fail the running test (through ck_assert) when they
 * cannot do what they say. */
#ifndef MNIST_OMP_TESTDIR_H
#define MNIST_OMP_TESTDIR_H

#include <check.h>
#include <stddef.h>

/* How many paths one test may ask testdir_path (and the helpers built on it)
 * for; they stay valid until the next test's testdir_fresh. */
enum { TESTDIR_PATHS = 64 };

/* Makes the run's directory; `name` (the program's) starts its name.  Returns
 * 0, or -1 after saying why on stderr: main should then exit with 99, a hard
 * error for the test harness rather than a test failure. */
int testdir_init(const char *name);

/* Removes the run's directory with everything below it, even directories a
 * test left without write permission.  Does nothing in any process but the
 * one that called testdir_init, nor when that failed. */
void testdir_cleanup(void);

/* Runs the suite (and frees it) between testdir_init(name) and
 * testdir_cleanup(), printing as `mode` says (CK_ENV: as CK_VERBOSITY
 * says).  Returns main's exit status: EXIT_SUCCESS when every test passed,
 * EXIT_FAILURE when one did not, 99 when the run's directory could not be
 * made. */
int testdir_run(const char *name, Suite *suite, enum print_output mode);

/* The checked fixture: a new empty directory for the test about to run. */
void testdir_fresh(void);

/* A new test case named `name`, added to the suite, with testdir_fresh as
 * its first checked fixture. */
TCase *testdir_tcase(Suite *suite, const char *name);

/* The running test's directory. */
const char *testdir_dir(void);

/* The path of `name` (which may hold '/') inside the test's directory. */
const char *testdir_path(const char *name);

/* Makes the directory `name` inside the test's directory; returns its path. */
const char *testdir_mkdir(const char *name);

/* Writes the file `name` inside the test's directory with exactly these
 * bytes (replacing any file there); returns its path. */
const char *testdir_write(const char *name, const void *data, size_t size);

/* testdir_write of a string, without its '\0'. */
const char *testdir_write_text(const char *name, const char *text);

/* The whole file at `path` (anywhere), malloc'd, with a '\0' after it;
 * *size (when given) excludes the '\0'. */
char *testdir_read(const char *path, size_t *size);

/* The directory of the shipped MNIST: $MNIST_OMP_DATA (make check sets it),
 * else $srcdir/data. */
const char *testdir_data(void);

#endif
