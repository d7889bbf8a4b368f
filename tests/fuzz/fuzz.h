/* Shared by the fuzz targets (fuzz_*.c): each defines LLVMFuzzerTestOneInput,
 * which libFuzzer drives in a `--enable-fuzzing` build (`make fuzz`) and
 * tests/fuzz/replay.c drives in every build, on the seed corpora and the
 * regression files, as part of `make check`.
 *
 * The loaders read files, so each target writes its input to a file first.
 * Every process gets one private directory (under /dev/shm when it can, so
 * that the writes stay in memory) and reuses the same few names in it. */
#ifndef MNIST_OMP_FUZZ_H
#define MNIST_OMP_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The path of the scratch file called name in this process's directory
 * (created on first use, removed at exit). */
const char *fuzz_path(const char *name);

/* Writes size bytes to path (truncating it); aborts on any failure, since a
 * target that cannot write its input tests nothing. */
void fuzz_write(const char *path, const void *data, size_t size);

/* Writes the gzip compression of data to path. */
void fuzz_write_gzip(const char *path, const void *data, size_t size);

/* Reads the whole of path into a malloc'ed buffer; aborts on failure. */
uint8_t *fuzz_read(const char *path, size_t *size);

/* Branches on a value computed from every byte a loader returned, so that
 * valgrind's memcheck reports any of them left uninitialised. */
void fuzz_use(uint8_t value);

struct dataset;
struct dataset_keep;

/* A rank's two passes (struct dataset_keep) over the input that a whole
 * load read, `load` running the loader with a keep: the counting pass
 * succeeds exactly when the whole load did (whole NULL: it failed) and
 * counts its images; keeping every other image, the last kept first, gives
 * those images of the whole load. */
void fuzz_check_kept(const struct dataset *whole,
                     int (*load)(struct dataset *ds, struct dataset_keep *keep, void *context),
                     void *context);

/* A broken promise of a loader's contract: prints what and aborts, which
 * libFuzzer reports as a crash like any sanitizer finding. */
#define FUZZ_ASSERT(condition)                                                              \
    ((condition) ? (void)0 : fuzz_failed(__FILE__, __LINE__, #condition))
_Noreturn void fuzz_failed(const char *file, int line, const char *condition);

#endif
