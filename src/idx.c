/* MNIST's IDX files: a big-endian header (a magic number, then one 32-bit size
 * per dimension) followed by the records as raw bytes, the whole file possibly
 * gzip-compressed. */
#include "dataset.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_MAX_DIMS 3

/* gzread takes an unsigned and returns an int, so big reads go in pieces. */
#define READ_PIECE ((size_t)1 << 30)

/* What tells MNIST's two kinds of IDX file apart. */
struct idx_kind {
    uint32_t magic;      /* 0x08 (unsigned bytes), then the number of dimensions */
    unsigned dims;       /* the record count, then (for images) rows and cols */
    size_t record_size;  /* bytes a record takes once the shape is checked */
    const char *record;  /* what a record is called in messages */
};

static const struct idx_kind images_kind = {0x00000803, 3, MNIST_SIDE * MNIST_SIDE, "image"};
static const struct idx_kind labels_kind = {0x00000801, 1, 1, "label"};

struct idx_file {
    uint32_t dim[IDX_MAX_DIMS];  /* dim[0] is the record count */
    uint8_t *bytes;              /* dim[0] * record_size bytes */
    uint32_t crc;                /* CRC-32 of the header and the bytes, as read */
    unsigned long long length;   /* of the header and the bytes */
};

static void add_crc(struct idx_file *file, const uint8_t *data, size_t size)
{
    file->length += size;
    for (size_t done = 0; done < size;) {  /* crc32 takes an unsigned length */
        const size_t piece = size - done < READ_PIECE ? size - done : READ_PIECE;
        file->crc = (uint32_t)crc32(file->crc, data + done, (uInt)piece);
        done += piece;
    }
}

static uint32_t big_endian_32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Returns how many bytes arrived; fewer than want means the data ended or
 * zlib failed, which dataset_check_read tells apart. */
static size_t read_up_to(gzFile in, uint8_t *buf, size_t want)
{
    size_t done = 0;

    while (done < want) {
        size_t piece = want - done < READ_PIECE ? want - done : READ_PIECE;
        int got = gzread(in, buf + done, (unsigned)piece);
        if (got <= 0)
            break;
        done += (size_t)got;
    }
    return done;
}

static int read_header(gzFile in, const char *path, const struct idx_kind *kind,
                       struct idx_file *file, struct error *err)
{
    uint8_t header[4 + 4 * IDX_MAX_DIMS];
    size_t header_size = 4 + 4 * (size_t)kind->dims;
    size_t got = read_up_to(in, header, header_size);

    if (got < header_size && dataset_check_read(in, path, err) != 0)
        return -1;
    if (got == 0)
        return error_set(err, "%s: empty file", path);
    /* The magic comes first so that swapped or foreign files are named as
     * such even when they are also short. */
    if (got >= 4 && big_endian_32(header) != kind->magic)
        return error_set(err, "%s: wrong magic number 0x%08" PRIx32
                         " (an IDX %s file starts with 0x%08" PRIx32 ")",
                         path, big_endian_32(header), kind->record, kind->magic);
    if (got < header_size)
        return error_set(err, "%s: truncated header: expected %zu bytes, found %zu",
                         path, header_size, got);

    for (unsigned i = 0; i < kind->dims; i++)
        file->dim[i] = big_endian_32(header + 4 + 4 * i);
    add_crc(file, header, header_size);
    return 0;
}

/* Checked before any size is computed from the header, which also keeps
 * those computations from overflowing. */
static int check_shape(const char *path, const struct idx_kind *kind,
                       const uint32_t dim[], struct error *err)
{
    if (dim[0] == 0)
        return error_set(err, "%s: holds no %ss", path, kind->record);
    if (kind->dims == 3 && (dim[1] != MNIST_SIDE || dim[2] != MNIST_SIDE))
        return error_set(err, "%s: images are %" PRIu32 "x%" PRIu32 ", expected %dx%d",
                         path, dim[1], dim[2], MNIST_SIDE, MNIST_SIDE);
    if (dim[0] > SIZE_MAX / kind->record_size)  /* only where size_t is 32 bits */
        return error_set(err, "%s: %" PRIu32 " %ss do not fit in memory",
                         path, dim[0], kind->record);
    return 0;
}

/* One byte past the declared records tells trailing data from a clean end
 * without reading (let alone storing) the rest, and makes zlib verify the
 * gzip trailer's checksum. */
static int check_end(gzFile in, const char *path, const struct idx_kind *kind,
                     uint32_t count, struct error *err)
{
    uint8_t extra;

    if (gzread(in, &extra, 1) > 0)
        return error_set(err, "%s: trailing data after the %" PRIu32 " %ss the header declares",
                         path, count, kind->record);
    return dataset_check_read(in, path, err);
}

/* A file that ended after `have` bytes of its records: the read's own
 * error if it had one, else a truncation. */
static int truncated(gzFile in, const char *path, const struct idx_kind *kind,
                     const struct idx_file *file, size_t have, struct error *err)
{
    if (dataset_check_read(in, path, err) != 0)
        return -1;
    return error_set(err, "%s: truncated: expected %" PRIu32 " %ss (%zu bytes), "
                     "found %zu bytes (%zu whole %ss)", path, file->dim[0], kind->record,
                     file->dim[0] * kind->record_size, have, have / kind->record_size,
                     kind->record);
}

/* The buffer grows only as data actually arrives, so a header claiming
 * billions of records cannot by itself cause a large allocation. */
static int read_records(gzFile in, const char *path, const struct idx_kind *kind,
                        struct idx_file *file, struct error *err)
{
    size_t expected = file->dim[0] * kind->record_size;
    size_t capacity = 0, have = 0;

    while (have < expected) {
        if (dataset_grow(&file->bytes, &capacity, have + 1, expected) != 0)
            return error_set(err, "%s: out of memory after reading %zu bytes", path, have);
        size_t want = capacity - have;
        size_t got = read_up_to(in, file->bytes + have, want);
        have += got;
        if (got < want)
            break;
    }

    if (have < expected)
        return truncated(in, path, kind, file, have, err);
    add_crc(file, file->bytes, expected);
    return check_end(in, path, kind, file->dim[0], err);
}

/* The label of record `record` (from 0) must be a digit. */
static int check_label(const char *path, size_t record, uint8_t label, struct error *err)
{
    if (label >= MNIST_CLASSES)
        return error_set(err, "%s: label of record %zu is %u, outside 0-9", path, record + 1,
                         label);
    return 0;
}

/* read_records for a share of the file (see struct dataset_keep): the
 * records go through a buffer of a few hundred, checked (labels too) and
 * counted in the CRC as they pass, and only the kept ones stay, in
 * file->bytes at their slots. */
static int read_kept_records(gzFile in, const char *path, const struct idx_kind *kind,
                             struct idx_file *file, const struct dataset_keep *keep,
                             struct error *err)
{
    enum { BUFFER_RECORDS = 256 };
    const size_t size = kind->record_size, records = file->dim[0];
    if (keep->slot && records != keep->records)
        return error_set(err, "%s: holds %zu %ss, not the %zu it held when counted", path,
                         records, kind->record, keep->records);
    uint8_t *buffer = malloc(BUFFER_RECORDS * size);
    file->bytes = malloc(keep->slot && keep->kept ? keep->kept * size : 1);
    if (!buffer || !file->bytes) {
        free(buffer);
        return error_set(err, "%s: out of memory for %zu %ss", path, keep->kept, kind->record);
    }
    int status = 0;
    for (size_t done = 0; status == 0 && done < records;) {
        const size_t want = (records - done < BUFFER_RECORDS ? records - done : BUFFER_RECORDS);
        const size_t got = read_up_to(in, buffer, want * size);
        add_crc(file, buffer, got);
        for (size_t k = 0; status == 0 && k < got / size; k++) {
            if (kind == &labels_kind)
                status = check_label(path, done + k, buffer[k], err);
            if (keep->slot && keep->slot[done + k] != DATASET_DROPPED)
                memcpy(file->bytes + keep->slot[done + k] * size, buffer + k * size, size);
        }
        if (status == 0 && got < want * size)
            status = truncated(in, path, kind, file, done * size + got, err);
        done += want;
    }
    free(buffer);
    return status == 0 ? check_end(in, path, kind, file->dim[0], err) : -1;
}

/* On failure file->bytes may hold a partial read: the caller frees it. */
static int load_idx_file(const char *path, const struct idx_kind *kind,
                         struct idx_file *file, const struct dataset_keep *keep,
                         struct error *err)
{
    gzFile in = dataset_open_input(path, err);
    if (!in)
        return -1;

    int status = read_header(in, path, kind, file, err);
    if (status == 0)
        status = check_shape(path, kind, file->dim, err);
    if (status == 0)
        status = keep ? read_kept_records(in, path, kind, file, keep, err)
                      : read_records(in, path, kind, file, err);
    if (status == 0 && !gzdirect(in))
        status = dataset_check_gzip_end(path, file->crc, file->length, err);
    gzclose(in);  /* its verdict on the stream is already in status */
    return status;
}

static int check_labels(const char *path, const struct idx_file *labels, struct error *err)
{
    for (size_t i = 0; i < labels->dim[0]; i++)
        if (check_label(path, i, labels->bytes[i], err) != 0)
            return -1;
    return 0;
}

int dataset_load_idx(struct dataset *ds, const char *images_path, const char *labels_path,
                     struct dataset_keep *keep, struct error *err)
{
    struct idx_file images = {{0}, NULL, 0, 0}, labels = {{0}, NULL, 0, 0};

    memset(ds, 0, sizeof *ds);
    int status = load_idx_file(images_path, &images_kind, &images, keep, err);
    if (status == 0)
        status = load_idx_file(labels_path, &labels_kind, &labels, keep, err);
    if (status == 0 && labels.dim[0] != images.dim[0])
        status = error_set(err, "%s: holds %" PRIu32 " labels but %s holds %" PRIu32 " images",
                           labels_path, labels.dim[0], images_path, images.dim[0]);
    if (status == 0 && !keep)
        status = check_labels(labels_path, &labels, err);
    if (status != 0) {
        free(images.bytes);
        free(labels.bytes);
        return -1;
    }

    if (keep && !keep->slot)
        keep->records = images.dim[0];
    ds->count = keep ? (keep->slot ? keep->kept : 0) : images.dim[0];
    ds->rows = images.dim[1];
    ds->cols = images.dim[2];
    ds->pixels = images.bytes;
    ds->labels = labels.bytes;
    return 0;
}
