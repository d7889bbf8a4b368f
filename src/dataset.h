/* A labelled image set as the loaders produce it: pixels stay uint8 (the
 * engine decides how to widen them), labels are digits 0-9. */
#ifndef MNIST_OMP_DATASET_H
#define MNIST_OMP_DATASET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "rng.h"

struct dataset {
    size_t count;       /* number of images */
    size_t rows, cols;  /* every image is rows x cols pixels */
    uint8_t *pixels;    /* count * rows * cols bytes, image after image, row-major */
    uint8_t *labels;    /* count bytes, each 0-9 */
};

/* What the loaders accept: MNIST's 28x28 images and its ten digits. */
enum { MNIST_SIDE = 28, MNIST_CLASSES = 10 };

/* Size of one image in pixels. */
static inline size_t dataset_image_size(const struct dataset *ds)
{
    return ds->rows * ds->cols;
}

/* Which of a file's images a loader keeps, so that a rank of mpirun holds
 * only its share of a training set: image i of the file becomes image
 * slot[i] of the set (each of [0, kept) once) or is dropped
 * (DATASET_DROPPED), and the file must hold `records` images.  With slot
 * NULL the loader keeps none and sets `records` to how many the file holds.
 * Either way every image is read and checked as a whole load checks it. */
#define DATASET_DROPPED SIZE_MAX
struct dataset_keep {
    const size_t *slot;
    size_t kept, records;
};

/* Loads an IDX image file (magic 2051) and its IDX label file (magic 2049),
 * raw or gzip-compressed (detected from the content).  Requires 28x28 images
 * and equal counts.  keep: the images kept (NULL: all).  On failure returns
 * -1, leaves *ds empty and explains in err (naming the file). */
int dataset_load_idx(struct dataset *ds, const char *images_path, const char *labels_path,
                     struct dataset_keep *keep, struct error *err);

/* Loads the tutorial's CSV format: an optional header line
 * `label,1x1,...,28x28`, then one image a line: label, then 784 pixels 0-255.
 * keep: the images kept (NULL: all).  On failure returns -1 and explains in
 * err (file, line, column). */
int dataset_load_csv(struct dataset *ds, const char *path, struct dataset_keep *keep,
                     struct error *err);

/* Makes dst hold the images src[order[0]], src[order[1]], ... (count of them).
 * Returns -1 only when memory runs out. */
int dataset_select(struct dataset *dst, const struct dataset *src,
                   const size_t *order, size_t count, struct error *err);

/* The permutation of 0 .. count - 1 that Python's
 * random.shuffle(list(range(count))) makes with rng, malloc'ed; NULL, with
 * err set, when memory runs out. */
size_t *dataset_shuffled_order(size_t count, struct py_random *rng, struct error *err);

/* Makes subset hold the first `size` images of a seeded shuffle of all of
 * `all`, ordered as dataset_shuffled_order(all->count, rng) orders them. */
int dataset_draw_subset(struct dataset *subset, const struct dataset *all, size_t size,
                        struct py_random *rng, struct error *err);

/* Frees what ds holds and zeroes it, so that freeing twice is harmless. */
void dataset_free(struct dataset *ds);

/* ---- Shared by the loaders (idx.c, csv.c); other modules have no use for it.
 * struct gzFile_s is zlib's gzFile, named here so that this header does not
 * drag zlib.h into every module. */
/* CRC-32 (zlib's) of the images' pixels, then their labels: the
 * fingerprint of a drawn subset that checkpoints record. */
uint32_t dataset_crc32(const struct dataset *ds);

/* A part of a set, for dataset_crc32 of the whole set, which no process
 * needs to hold: dataset_crc32_join of its n consecutive parts (images of
 * image_size pixels). */
struct dataset_crc32_part {
    uint64_t images;
    uint32_t pixels, labels;  /* CRC-32 of the part's pixels, of its labels */
};
struct dataset_crc32_part dataset_crc32_part(const struct dataset *ds);
uint32_t dataset_crc32_join(const struct dataset_crc32_part *parts, size_t n, size_t image_size);

struct gzFile_s;

/* Opens path for reading (O_RDONLY) if it is a regular file; a directory or
 * a FIFO named by mistake is refused at once.  Returns the descriptor and,
 * when size is not NULL, the file's length; or -1 after explaining in err
 * ("FILE: is a directory", "FILE: <strerror>"). */
int dataset_open_regular(const char *path, off_t *size, struct error *err);

/* Opens a regular file for reading through zlib, which reads gzip data and
 * plain data alike (decided by content).  Returns NULL and explains in err
 * ("FILE: is a directory", "FILE: <strerror>") on failure. */
struct gzFile_s *dataset_open_input(const char *path, struct error *err);

/* Call after a read came up short: returns -1 and explains in err when zlib
 * met an I/O error or corrupt or truncated gzip data, 0 when the data simply
 * ended. */
int dataset_check_read(struct gzFile_s *in, const char *path, struct error *err);

/* zlib reads a gzip file up to its last complete member and ignores what
 * follows.  Call after a gzip file was read to its end, with the CRC-32
 * (zlib's crc32) and the length of all the data it gave: returns -1 and
 * explains in err when anything but further complete gzip members follows
 * ("FILE: trailing data after the gzip member that ends at byte N"). */
int dataset_check_gzip_end(const char *path, uint32_t crc, unsigned long long length,
                           struct error *err);

/* The same check for readers that do not keep a CRC of what they read: it
 * always inflates the file once more. */
int dataset_check_gzip_members(const char *path, struct error *err);

/* Makes *buf hold at least `needed` bytes (needed <= limit), doubling its
 * capacity but never past limit, so that a buffer growing as data arrives
 * costs linear time and never exceeds what the caller allows.  Returns -1
 * when memory runs out (*buf is then unchanged). */
int dataset_grow(uint8_t **buf, size_t *capacity, size_t needed, size_t limit);

#endif
