/* A labelled image set as the loaders produce it: pixels stay uint8 (the
 * engine decides how to widen them), labels are digits 0-9. */
#ifndef MNIST_OMP_DATASET_H
#define MNIST_OMP_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct dataset {
    size_t count;       /* number of images */
    size_t rows, cols;  /* every image is rows x cols pixels */
    uint8_t *pixels;    /* count * rows * cols bytes, image after image, row-major */
    uint8_t *labels;    /* count bytes, each 0-9 */
};

/* Size of one image in pixels. */
static inline size_t dataset_image_size(const struct dataset *ds)
{
    return ds->rows * ds->cols;
}

/* Loads an IDX image file (magic 2051) and its IDX label file (magic 2049),
 * raw or gzip-compressed (detected from the content).  Requires 28x28 images
 * and equal counts.  On failure returns -1, leaves *ds empty and explains in err
 * (naming the file). */
int dataset_load_idx(struct dataset *ds, const char *images_path,
                     const char *labels_path, struct error *err);

/* Loads the tutorial's CSV format: an optional header line
 * `label,1x1,...,28x28`, then one image a line: label, then 784 pixels 0-255.
 * On failure returns -1 and explains in err (file, line, column). */
int dataset_load_csv(struct dataset *ds, const char *path, struct error *err);

/* Makes dst hold the images src[order[0]], src[order[1]], ... (count of them).
 * Returns -1 only when memory runs out. */
int dataset_select(struct dataset *dst, const struct dataset *src,
                   const size_t *order, size_t count, struct error *err);

void dataset_free(struct dataset *ds);

#endif
