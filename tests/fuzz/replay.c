/* Runs a fuzz target once on each file named, or on each file in each
 * directory named, without libFuzzer: so that every build, with or without
 * clang, replays the seed corpora and the regression files in `make check`
 * (and under valgrind in `make check-valgrind`).  A crash or a broken
 * contract aborts; otherwise prints how many inputs ran and exits 0.
 *
 * With no argument (as `make check` runs it) it replays the target's seeds,
 * $top_srcdir/tests/fuzz/NAME, and its regression files,
 * $top_srcdir/tests/regressions/NAME, NAME being FUZZ_TARGET_NAME. */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static unsigned long replayed;

static void replay_file(const char *path)
{
    size_t size;
    uint8_t *data = fuzz_read(path, &size);

    if (getenv("REPLAY_VERBOSE"))
        fprintf(stderr, "replay: %s (%zu bytes)\n", path, size);
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    replayed++;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* In name order, so that a run is reproducible. */
static void replay_directory(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *entry;
    char **names = NULL;
    size_t count = 0;

    if (!d) {
        perror(dir);
        exit(2);
    }
    while ((entry = readdir(d)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        names = realloc(names, (count + 1) * sizeof *names);
        if (!names || !(names[count] = malloc(strlen(dir) + strlen(entry->d_name) + 2)))
            abort();
        sprintf(names[count++], "%s/%s", dir, entry->d_name);
    }
    closedir(d);
    if (count > 1)
        qsort(names, count, sizeof *names, by_name);
    for (size_t i = 0; i < count; i++) {
        struct stat st;
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
            replay_file(names[i]);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
#ifdef FUZZ_TARGET_NAME
        const char *top = getenv("top_srcdir");
        char seeds[PATH_MAX], regressions[PATH_MAX];
        struct stat st;

        if (!top || !*top)
            top = ".";
        snprintf(seeds, sizeof seeds, "%s/tests/fuzz/%s", top, FUZZ_TARGET_NAME);
        snprintf(regressions, sizeof regressions, "%s/tests/regressions/%s", top,
                 FUZZ_TARGET_NAME);
        replay_directory(seeds);
        if (stat(regressions, &st) == 0)
            replay_directory(regressions);
        if (replayed == 0) {
            fprintf(stderr, "%s: no inputs in %s\n", argv[0], seeds);
            return 1;
        }
        printf("%s: %lu inputs replayed, no crash\n", argv[0], replayed);
        return 0;
#else
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
#endif
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 2;
        }
        if (S_ISDIR(st.st_mode))
            replay_directory(argv[i]);
        else
            replay_file(argv[i]);
    }
    printf("%s: %lu inputs replayed, no crash\n", argv[0], replayed);
    return 0;
}
