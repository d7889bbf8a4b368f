/* What every loader needs: opening input, telling zlib's errors apart, growing
 * buffers as data arrives; and the operations on a loaded dataset. */
#define _POSIX_C_SOURCE 200809L

#include "dataset.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Small enough not to matter for tiny files, large enough that doubling
 * reaches MNIST's 47 MB in a dozen steps. */
#define INITIAL_CAPACITY ((size_t)64 * 1024)

/* zlib would happily open a directory and fail only on the first read, and
 * opening a FIFO could block forever: the file is opened without blocking
 * (which changes nothing for a regular file) and what was opened is checked,
 * so that nothing can swap the file between the check and the open. */
int dataset_open_regular(const char *path, off_t *size, struct error *err)
{
    const int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;

    if (fd < 0)
        return error_set(err, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0)
        error_set(err, "%s: %s", path, strerror(errno));
    else if (S_ISDIR(st.st_mode))
        error_set(err, "%s: is a directory", path);
    else if (!S_ISREG(st.st_mode))
        error_set(err, "%s: is not a regular file", path);
    else {
        if (size)
            *size = st.st_size;
        return fd;
    }
    close(fd);
    return -1;
}

gzFile dataset_open_input(const char *path, struct error *err)
{
    const int fd = dataset_open_regular(path, NULL, err);
    if (fd < 0)
        return NULL;

    errno = 0;
    gzFile in = gzdopen(fd, "rb");
    if (!in) {  /* zlib leaves errno 0 when only its own allocation failed */
        error_set(err, "%s: %s", path, errno ? strerror(errno) : "out of memory");
        close(fd);
    }
    return in;
}

/* gzerror prefixes its message with the name zlib knows the file by,
 * "<fd:N>" for a gzdopen'ed descriptor; the callers name the file
 * themselves, so keep only zlib's reason. */
static const char *zlib_reason(const char *message)
{
    const char *colon = strstr(message, ": ");
    if (strncmp(message, "<fd:", 4) == 0 && colon)
        return colon + 2;
    return message;
}

int dataset_check_read(gzFile in, const char *path, struct error *err)
{
    int code;
    const char *reason = zlib_reason(gzerror(in, &code));

    switch (code) {
    case Z_OK:
        return 0;
    case Z_BUF_ERROR:  /* what zlib reports when the compressed input stops early */
        return error_set(err, "%s: gzip data is truncated (%s)", path, reason);
    case Z_DATA_ERROR:
        return error_set(err, "%s: gzip data is corrupt (%s)", path, reason);
    case Z_ERRNO:
        return error_set(err, "%s: read error (%s)", path, reason);
    default:
        return error_set(err, "%s: %s", path, reason);
    }
}

/* The slow path of dataset_check_gzip_end: inflates the whole file again,
 * member after member, discarding the output.  Further complete gzip members
 * are accepted, as gzip(1) and zlib decompress them; anything else after a
 * member is refused, with the offset where the member ended. */
static int check_gzip_members(int fd, const char *path, struct error *err)
{
    enum { CHUNK = 64 * 1024 };
    unsigned char in[CHUNK], out[CHUNK];
    z_stream z = {0};
    unsigned long long member_end = 0, consumed = 0;  /* offsets in the file */
    int ret = Z_OK, rc = 0;
    bool after_member = false, output_full = false;  /* inflate may hold more output */

    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return error_set(err, "%s: out of memory", path);
    for (;;) {
        if (z.avail_in == 0) {
            const ssize_t got = read(fd, in, sizeof in);
            if (got < 0) {
                rc = error_set(err, "%s: read error (%s)", path, strerror(errno));
                break;
            }
            if (got == 0 && (after_member || !output_full))
                break;
            z.next_in = in;
            z.avail_in = (uInt)got;
        }
        if (after_member) {
            inflateReset(&z);
            after_member = false;
        }
        const uInt before = z.avail_in;
        z.next_out = out;
        z.avail_out = sizeof out;
        ret = inflate(&z, Z_NO_FLUSH);
        consumed += before - z.avail_in;
        output_full = z.avail_out == 0;
        if (ret == Z_STREAM_END) {
            member_end = consumed;
            after_member = true;
        } else if (ret != Z_OK && ret != Z_BUF_ERROR) {
            break;
        }
    }
    if (rc == 0 && !after_member)
        rc = error_set(err, "%s: trailing data after the gzip member that ends at byte %llu: "
                       "not a complete gzip member (%s)", path, member_end,
                       z.msg ? z.msg : "it ends early");
    inflateEnd(&z);
    return rc;
}

static uint32_t little_endian_32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int dataset_check_gzip_members(const char *path, struct error *err)
{
    const int fd = dataset_open_regular(path, NULL, err);
    if (fd < 0)
        return -1;
    const int rc = check_gzip_members(fd, path, err);
    close(fd);
    return rc;
}

int dataset_check_gzip_end(const char *path, uint32_t crc, unsigned long long length,
                           struct error *err)
{
    unsigned char trailer[8];
    off_t size;
    const int fd = dataset_open_regular(path, &size, err);
    int rc = 0;

    if (fd < 0)
        return -1;
    /* A single member ends with the CRC-32 and the length (mod 2^32) of all
     * the data: then nothing follows it, and nothing more need be read. */
    if (size < (off_t)sizeof trailer ||
        pread(fd, trailer, sizeof trailer, size - (off_t)sizeof trailer) != sizeof trailer ||
        little_endian_32(trailer) != crc || little_endian_32(trailer + 4) != (uint32_t)length)
        rc = check_gzip_members(fd, path, err);
    close(fd);
    return rc;
}

/* zlib's crc32 takes an unsigned length: big buffers go in pieces. */
static uLong crc32_of(uLong crc, const uint8_t *data, size_t size)
{
    const size_t piece = (size_t)1 << 30;
    for (size_t done = 0; done < size; done += piece)
        crc = crc32(crc, data + done, (uInt)(size - done < piece ? size - done : piece));
    return crc;
}

uint32_t dataset_crc32(const struct dataset *ds)
{
    const uLong pixels = crc32_of(crc32(0L, Z_NULL, 0), ds->pixels,
                                  ds->count * dataset_image_size(ds));
    return (uint32_t)crc32_of(pixels, ds->labels, ds->count);
}

struct dataset_crc32_part dataset_crc32_part(const struct dataset *ds)
{
    const uLong empty = crc32(0L, Z_NULL, 0);
    return (struct dataset_crc32_part){
        .images = ds->count,
        .pixels = (uint32_t)crc32_of(empty, ds->pixels, ds->count * dataset_image_size(ds)),
        .labels = (uint32_t)crc32_of(empty, ds->labels, ds->count),
    };
}

uint32_t dataset_crc32_join(const struct dataset_crc32_part *parts, size_t n, size_t image_size)
{
    uLong pixels = crc32(0L, Z_NULL, 0), labels = pixels;
    uint64_t images = 0;
    for (size_t p = 0; p < n; p++) {
        pixels = crc32_combine(pixels, parts[p].pixels, (z_off_t)(parts[p].images * image_size));
        labels = crc32_combine(labels, parts[p].labels, (z_off_t)parts[p].images);
        images += parts[p].images;
    }
    return (uint32_t)crc32_combine(pixels, labels, (z_off_t)images);
}

int dataset_grow(uint8_t **buf, size_t *capacity, size_t needed, size_t limit)
{
    assert(needed <= limit);
    if (needed <= *capacity)
        return 0;

    size_t grown = *capacity < INITIAL_CAPACITY ? INITIAL_CAPACITY : *capacity;
    while (grown < needed)
        grown = grown > SIZE_MAX / 2 ? SIZE_MAX : grown * 2;
    if (grown > limit)
        grown = limit;

    uint8_t *bigger = realloc(*buf, grown);
    if (!bigger)
        return -1;
    *buf = bigger;
    *capacity = grown;
    return 0;
}

int dataset_select(struct dataset *dst, const struct dataset *src,
                   const size_t *order, size_t count, struct error *err)
{
    size_t image_size = dataset_image_size(src);

    memset(dst, 0, sizeof *dst);
    if (image_size != 0 && count > SIZE_MAX / image_size)
        return error_set(err, "cannot select %zu images: out of memory", count);

    /* malloc(0) may return NULL; that is no failure when nothing is selected. */
    uint8_t *pixels = malloc(count * image_size);
    uint8_t *labels = malloc(count);
    if (count > 0 && (!pixels || !labels)) {
        free(pixels);
        free(labels);
        return error_set(err, "cannot select %zu images: out of memory", count);
    }

    for (size_t i = 0; i < count; i++) {
        assert(order[i] < src->count);
        memcpy(pixels + i * image_size, src->pixels + order[i] * image_size, image_size);
        labels[i] = src->labels[order[i]];
    }

    dst->count = count;
    dst->rows = src->rows;
    dst->cols = src->cols;
    dst->pixels = pixels;
    dst->labels = labels;
    return 0;
}

size_t *dataset_shuffled_order(size_t count, struct py_random *rng, struct error *err)
{
    size_t *order = malloc((count ? count : 1) * sizeof *order);
    if (!order) {
        error_set(err, "out of memory for a permutation of %zu images", count);
        return NULL;
    }
    for (size_t i = 0; i < count; i++)
        order[i] = i;
    py_random_shuffle(rng, order, count);
    return order;
}

int dataset_draw_subset(struct dataset *subset, const struct dataset *all, size_t size,
                        struct py_random *rng, struct error *err)
{
    size_t *order = dataset_shuffled_order(all->count, rng, err);
    if (!order)
        return -1;
    const int status = dataset_select(subset, all, order, size, err);
    free(order);
    return status;
}

void dataset_free(struct dataset *ds)
{
    free(ds->pixels);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}
