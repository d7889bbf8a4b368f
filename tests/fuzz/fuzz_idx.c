/* Fuzz target: the IDX loader, raw and gzip.  Each input is loaded three
 * ways: as the image file beside a valid label file, as the label file beside
 * a valid image file, and gzip-compressed as the image file (so that every
 * input also reaches the IDX parser through zlib's inflate; gzip data in the
 * input itself, from the seeds, exercises corrupt and truncated streams). */
#include "fuzz.h"

#include <string.h>

#include "dataset.h"

enum { SIDE = 28, IMAGE_BYTES = SIDE * SIDE, MAX_COMPANION = 64 };

static uint32_t big_endian_32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_big_endian_32(uint8_t *p, uint32_t value)
{
    p[0] = (uint8_t)(value >> 24);
    p[1] = (uint8_t)(value >> 16);
    p[2] = (uint8_t)(value >> 8);
    p[3] = (uint8_t)value;
}

/* The record count an IDX header with this magic declares, kept small: the
 * valid file written beside it holds that many records, so that the count
 * check passes whenever the input is otherwise sound. */
static uint32_t declared_count(const uint8_t *data, size_t size, uint32_t magic)
{
    if (size >= 8 && big_endian_32(data) == magic) {
        const uint32_t count = big_endian_32(data + 4);
        if (count >= 1 && count <= MAX_COMPANION)
            return count;
    }
    return 1;
}

/* A valid label file (magic 2049) of count labels. */
static void write_labels(const char *path, uint32_t count)
{
    uint8_t bytes[8 + MAX_COMPANION];
    put_big_endian_32(bytes, 0x00000801);
    put_big_endian_32(bytes + 4, count);
    for (uint32_t i = 0; i < count; i++)
        bytes[8 + i] = (uint8_t)(i % 10);
    fuzz_write(path, bytes, 8 + count);
}

/* A valid image file (magic 2051) of count 28x28 images. */
static void write_images(const char *path, uint32_t count)
{
    static uint8_t bytes[16 + MAX_COMPANION * IMAGE_BYTES];
    put_big_endian_32(bytes, 0x00000803);
    put_big_endian_32(bytes + 4, count);
    put_big_endian_32(bytes + 8, SIDE);
    put_big_endian_32(bytes + 12, SIDE);
    for (size_t i = 0; i < (size_t)count * IMAGE_BYTES; i++)
        bytes[16 + i] = (uint8_t)(i * 7);
    fuzz_write(path, bytes, 16 + (size_t)count * IMAGE_BYTES);
}

struct files {
    const char *images, *labels;
};

static int load_kept(struct dataset *ds, struct dataset_keep *keep, void *context)
{
    const struct files *f = context;
    struct error err;
    return dataset_load_idx(ds, f->images, f->labels, keep, &err);
}

/* Loads and checks the contract of dataset_load_idx either way it ends,
 * and that a rank's passes agree with the whole load. */
static void load(const char *images, const char *labels, const char *input)
{
    struct dataset ds;
    struct error err = {{0}};
    struct files files = {images, labels};

    memset(&ds, 0xa5, sizeof ds);  /* the loader must not rely on a zeroed struct */
    if (dataset_load_idx(&ds, images, labels, NULL, &err) == 0) {
        fuzz_check_kept(&ds, load_kept, &files);
        FUZZ_ASSERT(ds.count >= 1 && ds.rows == SIDE && ds.cols == SIDE);
        FUZZ_ASSERT(ds.pixels && ds.labels);
        for (size_t i = 0; i < ds.count; i++)
            FUZZ_ASSERT(ds.labels[i] <= 9);
        /* Every pixel is readable (ASan checks the extent). */
        uint8_t sum = 0;
        for (size_t i = 0; i < ds.count * IMAGE_BYTES; i++)
            sum = (uint8_t)(sum + ds.pixels[i]);
        fuzz_use(sum);
        dataset_free(&ds);
    } else {
        FUZZ_ASSERT(ds.count == 0 && !ds.pixels && !ds.labels);
        FUZZ_ASSERT(err.msg[0] != '\0');
        FUZZ_ASSERT(strstr(err.msg, input) != NULL);  /* names the faulty file */
        fuzz_check_kept(NULL, load_kept, &files);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *input = fuzz_path("input-idx3-ubyte");
    const char *gzipped = fuzz_path("input-idx3-ubyte.gz");
    const char *images = fuzz_path("valid-images-idx3-ubyte");
    const char *labels = fuzz_path("valid-labels-idx1-ubyte");

    fuzz_write(input, data, size);
    write_labels(labels, declared_count(data, size, 0x00000803));
    load(input, labels, input);

    write_images(images, declared_count(data, size, 0x00000801));
    load(images, input, input);

    fuzz_write_gzip(gzipped, data, size);
    write_labels(labels, declared_count(data, size, 0x00000803));
    load(gzipped, labels, gzipped);
    return 0;
}
