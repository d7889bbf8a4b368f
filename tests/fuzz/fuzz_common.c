/* Scratch files for the fuzz targets; see fuzz.h. */
#define _POSIX_C_SOURCE 200809L

#include "fuzz.h"

#include "dataset.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

enum { MAX_FILES = 8 };

static char directory[PATH_MAX];
static char paths[MAX_FILES][PATH_MAX];
static int file_count;

_Noreturn void fuzz_failed(const char *file, int line, const char *condition)
{
    fprintf(stderr, "%s:%d: contract broken: %s\n", file, line, condition);
    abort();
}

static volatile unsigned long uses;

void fuzz_use(uint8_t value)
{
    if (value == 0x5a)
        uses++;
}

static void remove_scratch(void)
{
    for (int i = 0; i < file_count; i++)
        unlink(paths[i]);
    if (directory[0])
        rmdir(directory);
}

/* /dev/shm keeps the scratch files in memory; elsewhere $TMPDIR or /tmp. */
static void make_directory(void)
{
    const char *tmpdir = getenv("TMPDIR");
    const char *bases[] = {"/dev/shm", tmpdir && *tmpdir ? tmpdir : "/tmp", "/tmp"};

    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        snprintf(directory, sizeof directory, "%s/mnist-omp-fuzz.XXXXXX", bases[i]);
        if (access(bases[i], W_OK) == 0 && mkdtemp(directory)) {
            atexit(remove_scratch);
            return;
        }
    }
    fprintf(stderr, "fuzz: cannot create a scratch directory: %s\n", strerror(errno));
    abort();
}

const char *fuzz_path(const char *name)
{
    char wanted[PATH_MAX];

    if (!directory[0])
        make_directory();
    const int length = snprintf(wanted, sizeof wanted, "%s/%s", directory, name);
    if (length < 0 || (size_t)length >= sizeof wanted) {
        fprintf(stderr, "fuzz: scratch path too long\n");
        abort();
    }
    for (int i = 0; i < file_count; i++)
        if (strcmp(paths[i], wanted) == 0)
            return paths[i];
    if (file_count == MAX_FILES) {
        fprintf(stderr, "fuzz: too many scratch files\n");
        abort();
    }
    memcpy(paths[file_count], wanted, sizeof wanted);
    return paths[file_count++];
}

void fuzz_write(const char *path, const void *data, size_t size)
{
    FILE *file = fopen(path, "wb");

    if (!file || (size > 0 && fwrite(data, 1, size, file) != size) || fclose(file) != 0) {
        fprintf(stderr, "fuzz: cannot write %s: %s\n", path, strerror(errno));
        abort();
    }
}

void fuzz_write_gzip(const char *path, const void *data, size_t size)
{
    gzFile file = gzopen(path, "wb1");

    if (!file || (size > 0 && gzwrite(file, data, (unsigned)size) != (int)size) ||
        gzclose(file) != Z_OK) {
        fprintf(stderr, "fuzz: cannot write %s\n", path);
        abort();
    }
}

uint8_t *fuzz_read(const char *path, size_t *size)
{
    FILE *file = fopen(path, "rb");
    struct stat st;
    uint8_t *bytes = NULL;

    if (file && fstat(fileno(file), &st) == 0 && (bytes = malloc((size_t)st.st_size + 1)) &&
        fread(bytes, 1, (size_t)st.st_size, file) == (size_t)st.st_size) {
        fclose(file);
        *size = (size_t)st.st_size;
        return bytes;
    }
    fprintf(stderr, "fuzz: cannot read %s\n", path);
    abort();
}

void fuzz_check_kept(const struct dataset *whole,
                     int (*load)(struct dataset *ds, struct dataset_keep *keep, void *context),
                     void *context)
{
    struct dataset ds;
    struct dataset_keep counting = {.slot = NULL};
    memset(&ds, 0xa5, sizeof ds);
    const int counted = load(&ds, &counting, context);
    FUZZ_ASSERT((counted == 0) == (whole != NULL));
    if (counted != 0) {
        FUZZ_ASSERT(ds.count == 0 && !ds.pixels && !ds.labels);
        return;
    }
    FUZZ_ASSERT(counting.records == whole->count && ds.count == 0);
    dataset_free(&ds);
    const size_t kept = whole->count / 2;
    size_t *slot = malloc((whole->count ? whole->count : 1) * sizeof *slot);
    FUZZ_ASSERT(slot != NULL);
    for (size_t i = 0; i < whole->count; i++)
        slot[i] = i % 2 ? kept - 1 - i / 2 : DATASET_DROPPED;
    struct dataset_keep keep = {.slot = slot, .kept = kept, .records = whole->count};
    FUZZ_ASSERT(load(&ds, &keep, context) == 0 && ds.count == kept);
    const size_t image = dataset_image_size(whole);
    for (size_t i = 1; i < whole->count; i += 2) {
        FUZZ_ASSERT(ds.labels[slot[i]] == whole->labels[i]);
        FUZZ_ASSERT(memcmp(ds.pixels + slot[i] * image, whole->pixels + i * image, image) == 0);
    }
    dataset_free(&ds);
    free(slot);
}
