/* The loaders: every kind of bad input is refused with a message that names
 * the file and what was wrong; IDX, gzip and CSV forms of the same images load
 * identically; the shipped MNIST loads as published; the data directory is
 * found in the documented order.  Each test writes its own small files into a
 * fresh temporary directory. */
#define _XOPEN_SOURCE 700  /* setenv, mkfifo */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "dataset.h"
#include "mnist.h"
#include "testdir.h"

enum { SIDE = 28, PIXELS = SIDE * SIDE, CSV_FIELDS = 1 + PIXELS, SAMPLES = 3 };

/* ------------------------------------------------------------ file contents */

struct bytes {
    uint8_t *data;
    size_t size;
};

static void append(struct bytes *b, const void *data, size_t size)
{
    b->data = realloc(b->data, b->size + size);
    ck_assert(b->data != NULL);
    memcpy(b->data + b->size, data, size);
    b->size += size;
}

static void append_be32(struct bytes *b, uint32_t value)
{
    uint8_t be[4] = {value >> 24, value >> 16 & 0xff, value >> 8 & 0xff, value & 0xff};
    append(b, be, sizeof be);
}

static void set_be32(struct bytes *b, size_t offset, uint32_t value)
{
    struct bytes be = {NULL, 0};
    append_be32(&be, value);
    memcpy(b->data + offset, be.data, 4);
    free(be.data);
}

ERROR_PRINTF(2)
static void appendf(struct bytes *b, const char *fmt, ...)
{
    char text[64];
    va_list ap;

    va_start(ap, fmt);
    int length = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    ck_assert(length >= 0 && (size_t)length < sizeof text);
    append(b, text, (size_t)length);
}

/* The synthetic images every form of the test data holds. */
static uint8_t sample_pixel(size_t image, size_t pixel)
{
    return (uint8_t)(image * 101 + pixel * 7);
}

static uint8_t sample_label(size_t image)
{
    return (uint8_t)((image * 4 + 3) % 10);
}

/* An IDX image file whose header declares `declared` 28x28 images and whose
 * body holds `present` of them. */
static struct bytes idx_images(uint32_t declared, size_t present)
{
    struct bytes b = {NULL, 0};
    uint8_t image[PIXELS];

    append_be32(&b, 0x803);
    append_be32(&b, declared);
    append_be32(&b, SIDE);
    append_be32(&b, SIDE);
    for (size_t i = 0; i < present; i++) {
        for (size_t p = 0; p < PIXELS; p++)
            image[p] = sample_pixel(i, p);
        append(&b, image, PIXELS);
    }
    return b;
}

static struct bytes idx_labels(uint32_t declared, size_t present)
{
    struct bytes b = {NULL, 0};

    append_be32(&b, 0x801);
    append_be32(&b, declared);
    for (size_t i = 0; i < present; i++) {
        uint8_t label = sample_label(i);
        append(&b, &label, 1);
    }
    return b;
}

static void append_csv_header(struct bytes *b)
{
    appendf(b, "label");
    for (int row = 1; row <= SIDE; row++)
        for (int col = 1; col <= SIDE; col++)
            appendf(b, ",%dx%d", row, col);
    appendf(b, "\n");
}

static struct bytes samples_csv(int header, const char *line_end, int final_line_end)
{
    struct bytes b = {NULL, 0};

    if (header)
        append_csv_header(&b);
    for (size_t i = 0; i < SAMPLES; i++) {
        appendf(&b, "%u", sample_label(i));
        for (size_t p = 0; p < PIXELS; p++)
            appendf(&b, ",%u", sample_pixel(i, p));
        if (i + 1 < SAMPLES || final_line_end)
            appendf(&b, "%s", line_end);
    }
    return b;
}

/* A CSV line of a black image labelled 7, `fields` fields long, with field
 * `odd` (0 is the label) written as `text`.  Every other field is one
 * character wide, so field k starts at column 2k+1. */
static void append_plain_line(struct bytes *b, size_t fields, size_t odd, const char *text)
{
    for (size_t field = 0; field < fields; field++)
        appendf(b, "%s%s", field > 0 ? "," : "", field == odd ? text : field == 0 ? "7" : "0");
    appendf(b, "\n");
}

/* Compresses (and frees) raw's first `length` bytes as a gzip stream, ending
 * it with `flush`. */
static struct bytes deflate_gzip(struct bytes raw, int level, size_t length, int flush)
{
    z_stream z;
    struct bytes out = {NULL, 0};

    memset(&z, 0, sizeof z);
    ck_assert_int_eq(deflateInit2(&z, level, Z_DEFLATED, 15 + 16 /* gzip wrapper */, 8,
                                  Z_DEFAULT_STRATEGY), Z_OK);
    out.size = deflateBound(&z, length);
    out.data = malloc(out.size);
    ck_assert(out.data != NULL);
    z.next_in = raw.data;
    z.avail_in = (uInt)length;
    z.next_out = out.data;
    z.avail_out = (uInt)out.size;
    ck_assert_int_eq(deflate(&z, flush), flush == Z_FINISH ? Z_STREAM_END : Z_OK);
    out.size = z.total_out;
    deflateEnd(&z);
    free(raw.data);
    return out;
}

static struct bytes gzipped(struct bytes raw, int level)
{
    return deflate_gzip(raw, level, raw.size, Z_FINISH);
}

/* A gzip file cut off right after raw's first `keep` bytes: sync-flushed, so
 * that exactly those bytes decompress before the data stops. */
static struct bytes gzip_cut_after(struct bytes raw, size_t keep)
{
    return deflate_gzip(raw, Z_BEST_COMPRESSION, keep, Z_SYNC_FLUSH);
}

/* Writes (and frees) b into the temporary directory; returns the path. */
static const char *write_file(const char *name, struct bytes b)
{
    const char *path = testdir_write(name, b.data, b.size);

    free(b.data);
    return path;
}

static const char *write_gz(const char *name, struct bytes b)
{
    return write_file(name, gzipped(b, Z_BEST_COMPRESSION));
}

static const char *good_images(void)
{
    return write_file("images", idx_images(SAMPLES, SAMPLES));
}

static const char *good_labels(void)
{
    return write_file("labels", idx_labels(SAMPLES, SAMPLES));
}

/* ------------------------------------------------------------ assertions */

/* Refused loads start from this, as an uninitialised variable might hold it,
 * to show that they leave the dataset empty all the same. */
static void fill_with_garbage(struct dataset *ds)
{
    memset(ds, 0xa5, sizeof *ds);
}

/* A refused load returns -1, leaves the dataset empty, and says where (a
 * file, or FILE:LINE:COLUMN) and what: the phrase is specific to the check
 * under test, so that removing the check fails the test. */
static void assert_refused(int status, const struct dataset *ds, const struct error *err,
                           const char *where, const char *phrase)
{
    size_t where_length = strlen(where);

    ck_assert_int_eq(status, -1);
    ck_assert_msg(ds->count == 0 && ds->pixels == NULL && ds->labels == NULL,
                  "a refused load must leave the dataset empty");
    ck_assert_msg(strncmp(err->msg, where, where_length) == 0 && err->msg[where_length] == ':',
                  "message \"%s\" does not start with \"%s:\"", err->msg, where);
    ck_assert_msg(strstr(err->msg, phrase) != NULL,
                  "message \"%s\" does not say \"%s\"", err->msg, phrase);
}

static void assert_idx_refused(const char *images, const char *labels, const char *where,
                               const char *phrase)
{
    struct dataset ds;
    struct error err = {""};

    fill_with_garbage(&ds);
    int status = dataset_load_idx(&ds, images, labels, NULL, &err);
    assert_refused(status, &ds, &err, where, phrase);
    /* A rank's counting pass (struct dataset_keep) refuses it alike. */
    struct dataset_keep counting = {.slot = NULL};
    fill_with_garbage(&ds);
    status = dataset_load_idx(&ds, images, labels, &counting, &err);
    assert_refused(status, &ds, &err, where, phrase);
}

/* line 0: the message names only the file. */
static void assert_csv_refused(const char *path, unsigned line, unsigned column,
                               const char *phrase)
{
    char where[PATH_MAX + 32];
    struct dataset ds;
    struct error err = {""};

    if (line == 0)
        snprintf(where, sizeof where, "%s", path);
    else
        snprintf(where, sizeof where, "%s:%u:%u", path, line, column);
    fill_with_garbage(&ds);
    int status = dataset_load_csv(&ds, path, NULL, &err);
    assert_refused(status, &ds, &err, where, phrase);
    struct dataset_keep counting = {.slot = NULL};
    fill_with_garbage(&ds);
    status = dataset_load_csv(&ds, path, &counting, &err);
    assert_refused(status, &ds, &err, where, phrase);
}

static void assert_holds_samples(const struct dataset *ds)
{
    uint8_t pixels[SAMPLES * PIXELS], labels[SAMPLES];

    for (size_t i = 0; i < SAMPLES; i++) {
        labels[i] = sample_label(i);
        for (size_t p = 0; p < PIXELS; p++)
            pixels[i * PIXELS + p] = sample_pixel(i, p);
    }
    ck_assert_uint_eq(ds->count, SAMPLES);
    ck_assert_uint_eq(ds->rows, SIDE);
    ck_assert_uint_eq(ds->cols, SIDE);
    ck_assert(memcmp(ds->pixels, pixels, sizeof pixels) == 0);
    ck_assert(memcmp(ds->labels, labels, sizeof labels) == 0);
}

static void assert_idx_loads_samples(const char *images, const char *labels)
{
    struct dataset ds;
    struct error err = {""};

    ck_assert_msg(dataset_load_idx(&ds, images, labels, NULL, &err) == 0, "%s", err.msg);
    assert_holds_samples(&ds);
    dataset_free(&ds);
}

static void assert_csv_loads_samples(const char *path)
{
    struct dataset ds;
    struct error err = {""};

    ck_assert_msg(dataset_load_csv(&ds, path, NULL, &err) == 0, "%s", err.msg);
    assert_holds_samples(&ds);
    dataset_free(&ds);
}

/* AddressSanitizer reserves terabytes of address space up front, so it
 * cannot run under limit_address_space.  GCC and Clang announce it differently. */
#if defined(__SANITIZE_ADDRESS__)
#define ADDRESS_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ADDRESS_SANITIZER 1
#endif
#endif

/* A loader that trusted a header's count would now need gigabytes; under
 * this limit that allocation fails (rather than succeeding lazily on an
 * overcommitting system), so the test fails. */
static void limit_address_space(void)
{
#ifndef ADDRESS_SANITIZER
    const rlim_t limit = (rlim_t)1 << 30;
    struct rlimit current;

    ck_assert_int_eq(getrlimit(RLIMIT_AS, &current), 0);
    if (current.rlim_cur == RLIM_INFINITY || current.rlim_cur > limit) {
        current.rlim_cur = limit;
        ck_assert_int_eq(setrlimit(RLIMIT_AS, &current), 0);
    }
#endif
}

/* ------------------------------------------------------------ IDX refusals */

START_TEST(idx_images_wrong_magic)
{
    const char *labels = good_labels();
    assert_idx_refused(labels, labels, labels, "wrong magic number 0x00000801");
}
END_TEST

START_TEST(idx_labels_wrong_magic)
{
    const char *images = good_images();
    assert_idx_refused(images, images, images, "wrong magic number 0x00000803");
}
END_TEST

START_TEST(idx_empty_file)
{
    const char *empty = write_file("empty", (struct bytes){NULL, 0});
    assert_idx_refused(empty, good_labels(), empty, "empty file");
}
END_TEST

START_TEST(idx_truncated_header)
{
    struct bytes b = idx_images(SAMPLES, 0);
    b.size = 10;
    const char *images = write_file("images", b);
    assert_idx_refused(images, good_labels(), images, "truncated header: expected 16 bytes, found 10");
}
END_TEST

START_TEST(idx_truncated_images)
{
    const char *images = write_file("images", idx_images(SAMPLES, SAMPLES - 1));
    assert_idx_refused(images, good_labels(), images,
                       "expected 3 images (2352 bytes), found 1568 bytes (2 whole images)");
}
END_TEST

START_TEST(idx_truncated_labels)
{
    const char *labels = write_file("labels", idx_labels(SAMPLES, SAMPLES - 1));
    assert_idx_refused(good_images(), labels, labels, "expected 3 labels (3 bytes), found 2 bytes");
}
END_TEST

START_TEST(idx_counts_disagree)
{
    const char *images = good_images();
    const char *labels = write_file("labels", idx_labels(SAMPLES - 1, SAMPLES - 1));
    assert_idx_refused(images, labels, labels, "holds 2 labels but");
}
END_TEST

START_TEST(idx_no_images)
{
    const char *images = write_file("images", idx_images(0, 0));
    assert_idx_refused(images, good_labels(), images, "holds no images");
}
END_TEST

START_TEST(idx_zero_dimensions)
{
    struct bytes b = idx_images(SAMPLES, SAMPLES);
    set_be32(&b, 8, 0);
    set_be32(&b, 12, 0);
    const char *images = write_file("images", b);
    assert_idx_refused(images, good_labels(), images, "images are 0x0, expected 28x28");
}
END_TEST

/* 65536 * 65536 overflows 32-bit arithmetic: the shape must be checked before
 * anything is multiplied. */
START_TEST(idx_huge_dimensions)
{
    struct bytes b = idx_images(SAMPLES, SAMPLES);
    set_be32(&b, 8, 1u << 16);
    set_be32(&b, 12, 1u << 16);
    const char *images = write_file("images", b);
    assert_idx_refused(images, good_labels(), images, "images are 65536x65536");
}
END_TEST

START_TEST(idx_huge_count_small_file)
{
    const char *images = write_file("images", idx_images(UINT32_C(1) << 31, SAMPLES));
    limit_address_space();
    assert_idx_refused(images, good_labels(), images, "expected 2147483648 images");
}
END_TEST

START_TEST(idx_label_out_of_range)
{
    struct bytes b = idx_labels(SAMPLES, SAMPLES);
    b.data[8 + 1] = 10;
    const char *labels = write_file("labels", b);
    assert_idx_refused(good_images(), labels, labels, "label of record 2 is 10, outside 0-9");
}
END_TEST

START_TEST(idx_trailing_data)
{
    const char *images = write_file("images", idx_images(SAMPLES, SAMPLES + 1));
    assert_idx_refused(images, good_labels(), images, "trailing data after the 3 images");
}
END_TEST

/* The first deflate byte holds the block type; 3 is reserved. */
START_TEST(idx_gzip_corrupt_block)
{
    struct bytes gz = gzipped(idx_images(SAMPLES, SAMPLES), Z_BEST_COMPRESSION);
    gz.data[10] |= 0x06;  /* after gzip's 10-byte header */
    const char *images = write_file("images.gz", gz);
    assert_idx_refused(images, good_labels(), images, "gzip data is corrupt");
}
END_TEST

/* Stored (level 0) data keeps its length when flipped, so only the gzip
 * trailer's CRC, checked after the last declared byte, can catch this. */
START_TEST(idx_gzip_corrupt_checksum)
{
    struct bytes gz = gzipped(idx_images(SAMPLES, SAMPLES), Z_NO_COMPRESSION);
    for (size_t i = gz.size / 2; i < gz.size / 2 + 4; i++)
        gz.data[i] ^= 0xff;
    const char *images = write_file("images.gz", gz);
    assert_idx_refused(images, good_labels(), images, "gzip data is corrupt");
}
END_TEST

START_TEST(idx_gzip_truncated)
{
    struct bytes gz = gzipped(idx_images(SAMPLES, SAMPLES), Z_BEST_COMPRESSION);
    gz.size /= 2;
    const char *images = write_file("images.gz", gz);
    assert_idx_refused(images, good_labels(), images, "gzip data is truncated");
}
END_TEST

/* Every declared byte arrives; only the gzip trailer is missing. */
START_TEST(idx_gzip_missing_trailer)
{
    struct bytes raw = idx_images(SAMPLES, SAMPLES);
    const char *images = write_file("images.gz", gzip_cut_after(raw, raw.size));
    assert_idx_refused(images, good_labels(), images, "gzip data is truncated");
}
END_TEST

/* zlib ends a gzip file at its last complete member and ignores the rest;
 * the loader refuses it, saying where the member ended. */
START_TEST(idx_gzip_trailing_garbage)
{
    static const char *const garbage[] = {"x", "not gzip data\n", "\x1f not gzip either"};

    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        struct bytes gz = gzipped(idx_images(SAMPLES, SAMPLES), Z_BEST_COMPRESSION);
        char phrase[96];
        snprintf(phrase, sizeof phrase, "trailing data after the gzip member that ends at byte %zu",
                 gz.size);
        append(&gz, garbage[i], strlen(garbage[i]));
        const char *images = write_file("images.gz", gz);
        assert_idx_refused(images, good_labels(), images, phrase);
    }
}
END_TEST

/* What `cat a.gz b.gz` makes, and gzip -d reads as one file. */
START_TEST(idx_gzip_members_load)
{
    struct bytes raw = idx_images(SAMPLES, SAMPLES), first = {NULL, 0}, second = {NULL, 0};
    append(&first, raw.data, raw.size / 2);
    append(&second, raw.data + raw.size / 2, raw.size - raw.size / 2);
    free(raw.data);
    struct bytes gz = gzipped(first, Z_BEST_COMPRESSION), tail = gzipped(second, Z_NO_COMPRESSION);
    append(&gz, tail.data, tail.size);
    free(tail.data);
    assert_idx_loads_samples(write_file("images.gz", gz), good_labels());
}
END_TEST

/* 2 GiB of zeros after the declared images, in 2 MB of concatenated gzip
 * members: the loader must stop one byte past the declared size instead of
 * inflating (or storing) the rest. */
START_TEST(idx_gzip_bomb)
{
    const size_t zeros_size = (size_t)1 << 20;
    struct bytes zeros = {calloc(zeros_size, 1), zeros_size};

    ck_assert(zeros.data != NULL);
    struct bytes member = gzipped(zeros, Z_BEST_COMPRESSION);
    struct bytes bomb = gzipped(idx_images(SAMPLES, SAMPLES), Z_BEST_COMPRESSION);
    for (int i = 0; i < 2048; i++)
        append(&bomb, member.data, member.size);
    free(member.data);
    const char *images = write_file("images.gz", bomb);
    limit_address_space();
    assert_idx_refused(images, good_labels(), images, "trailing data after the 3 images");
}
END_TEST

START_TEST(idx_directory)
{
    const char *dir = testdir_mkdir("images");
    assert_idx_refused(dir, good_labels(), dir, "is a directory");
}
END_TEST

START_TEST(idx_not_regular_file)
{
    const char *fifo = testdir_path("fifo");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    assert_idx_refused(fifo, good_labels(), fifo, "is not a regular file");
}
END_TEST

START_TEST(idx_nonexistent_file)
{
    const char *missing = testdir_path("missing");
    assert_idx_refused(good_images(), missing, missing, strerror(ENOENT));
}
END_TEST

START_TEST(idx_unreadable_file)
{
    const char *images = good_images();
    struct dataset ds;
    struct error err = {""};

    ck_assert_int_eq(chmod(images, 0), 0);
    fill_with_garbage(&ds);
    int status = dataset_load_idx(&ds, images, good_labels(), NULL, &err);
    if (geteuid() != 0)
        assert_refused(status, &ds, &err, images, strerror(EACCES));
    else  /* root reads any file: there is no refusal to see */
        dataset_free(&ds);
}
END_TEST

/* ------------------------------------------------------------ CSV refusals */

/* A file with a header (line 1), a good line 2, and line 3 as described for
 * append_plain_line. */
static const char *csv_with_line_3(size_t fields, size_t odd, const char *text)
{
    struct bytes b = {NULL, 0};

    append_csv_header(&b);
    append_plain_line(&b, CSV_FIELDS, 0, "7");
    append_plain_line(&b, fields, odd, text);
    return write_file("bad.csv", b);
}

START_TEST(csv_empty_file)
{
    const char *path = write_file("empty.csv", (struct bytes){NULL, 0});
    assert_csv_refused(path, 0, 0, "empty file");
}
END_TEST

START_TEST(csv_header_only)
{
    struct bytes b = {NULL, 0};
    append_csv_header(&b);
    const char *path = write_file("header.csv", b);
    assert_csv_refused(path, 0, 0, "holds no images");
}
END_TEST

START_TEST(csv_blank_line)
{
    struct bytes b = {NULL, 0};
    append_csv_header(&b);
    appendf(&b, "\n");
    append_plain_line(&b, CSV_FIELDS, 0, "7");
    const char *path = write_file("blank.csv", b);
    assert_csv_refused(path, 2, 1, "blank line");
}
END_TEST

/* One empty line at the end is what editors leave; two are not. */
START_TEST(csv_two_final_blank_lines)
{
    struct bytes b = samples_csv(1, "\n", 1);
    appendf(&b, "\n\n");
    const char *path = write_file("blank.csv", b);
    assert_csv_refused(path, 2 + SAMPLES, 1, "blank line");
}
END_TEST

START_TEST(csv_header_too_few_fields)
{
    struct bytes b = {NULL, 0};
    appendf(&b, "label,a,b\n");
    append_plain_line(&b, CSV_FIELDS, 0, "7");
    const char *path = write_file("header.csv", b);
    assert_csv_refused(path, 1, 10, "too few fields (3 of 785)");
}
END_TEST

/* 784 one-character fields end at column 1567; the line break is at 1568. */
START_TEST(csv_too_few_fields)
{
    assert_csv_refused(csv_with_line_3(CSV_FIELDS - 1, 0, "7"), 3, 1568, "too few fields (784 of 785)");
}
END_TEST

/* The comma that starts field 786 (at column 2*785+1) is at column 1570. */
START_TEST(csv_too_many_fields)
{
    assert_csv_refused(csv_with_line_3(CSV_FIELDS + 1, 0, "7"), 3, 1570, "too many fields");
}
END_TEST

START_TEST(csv_not_a_number)
{
    assert_csv_refused(csv_with_line_3(CSV_FIELDS, 5, "12a"), 3, 11, "pixel is not a number");
}
END_TEST

START_TEST(csv_empty_field)
{
    assert_csv_refused(csv_with_line_3(CSV_FIELDS, 5, ""), 3, 11, "empty pixel field");
}
END_TEST

START_TEST(csv_pixel_out_of_range)
{
    assert_csv_refused(csv_with_line_3(CSV_FIELDS, 5, "256"), 3, 11,
                       "pixel value out of range 0-255");
}
END_TEST

/* Far past 255, where a naive accumulator would wrap around. */
START_TEST(csv_pixel_huge)
{
    assert_csv_refused(csv_with_line_3(CSV_FIELDS, 5, "4294967296"), 3, 11,
                       "pixel value out of range 0-255");
}
END_TEST

START_TEST(csv_label_out_of_range)
{
    assert_csv_refused(csv_with_line_3(CSV_FIELDS, 0, "10"), 3, 1, "label value out of range 0-9");
}
END_TEST

START_TEST(csv_negative)
{
    assert_csv_refused(csv_with_line_3(CSV_FIELDS, 5, "-1"), 3, 11, "pixel is negative");
}
END_TEST

START_TEST(csv_gzip_truncated)
{
    struct bytes gz = gzipped(samples_csv(1, "\n", 1), Z_BEST_COMPRESSION);
    gz.size /= 2;
    const char *path = write_file("samples.csv.gz", gz);
    assert_csv_refused(path, 0, 0, "gzip data is truncated");
}
END_TEST

/* The offset just past line `line`'s line break (lines count from 1). */
static size_t end_of_line(const struct bytes *b, size_t line)
{
    size_t offset = 0;

    while (line > 0) {
        ck_assert(offset < b->size);
        if (b->data[offset++] == '\n')
            line--;
    }
    return offset;
}

/* Cut at a line break, the data looks complete but for zlib's complaint. */
START_TEST(csv_gzip_truncated_at_line_end)
{
    struct bytes raw = samples_csv(1, "\n", 1);
    const char *path = write_file("samples.csv.gz", gzip_cut_after(raw, end_of_line(&raw, 2)));
    assert_csv_refused(path, 0, 0, "gzip data is truncated");
}
END_TEST

START_TEST(csv_directory)
{
    const char *dir = testdir_mkdir("data.csv");
    assert_csv_refused(dir, 0, 0, "is a directory");
}
END_TEST

/* ------------------------------------------------------------ formats agree */

START_TEST(idx_raw_loads)
{
    assert_idx_loads_samples(good_images(), good_labels());
}
END_TEST

START_TEST(idx_gzip_loads)
{
    assert_idx_loads_samples(write_gz("images.gz", idx_images(SAMPLES, SAMPLES)),
                             write_gz("labels.gz", idx_labels(SAMPLES, SAMPLES)));
}
END_TEST

START_TEST(csv_with_header_loads)
{
    assert_csv_loads_samples(write_file("samples.csv", samples_csv(1, "\n", 1)));
}
END_TEST

START_TEST(csv_headerless_crlf_unterminated_loads)
{
    assert_csv_loads_samples(write_file("samples.csv", samples_csv(0, "\r\n", 0)));
}
END_TEST

START_TEST(csv_final_blank_line_loads)
{
    struct bytes b = samples_csv(0, "\r\n", 1);
    appendf(&b, "\r\n");
    assert_csv_loads_samples(write_file("samples.csv", b));
    b = samples_csv(1, "\n", 1);
    appendf(&b, "\n");
    assert_csv_loads_samples(write_gz("samples.csv.gz", b));
}
END_TEST

/* Frees csv and returns its bytes after a UTF-8 byte order mark. */
static struct bytes with_bom(struct bytes csv)
{
    struct bytes b = {NULL, 0};

    append(&b, "\xEF\xBB\xBF", 3);
    append(&b, csv.data, csv.size);
    free(csv.data);
    return b;
}

/* A byte order mark before a headerless first record leaves it a record,
 * and before a header leaves it a header. */
START_TEST(csv_utf8_bom_skipped)
{
    for (int header = 0; header <= 1; header++) {
        assert_csv_loads_samples(write_file("samples.csv", with_bom(samples_csv(header, "\n", 1))));
        assert_csv_loads_samples(write_gz("samples.csv.gz", with_bom(samples_csv(header, "\n", 1))));
    }
}
END_TEST

START_TEST(csv_gzip_loads)
{
    assert_csv_loads_samples(write_gz("samples.csv.gz", samples_csv(1, "\n", 1)));
}
END_TEST

START_TEST(csv_gzip_trailing_garbage)
{
    struct bytes gz = gzipped(samples_csv(1, "\n", 1), Z_BEST_COMPRESSION);
    append(&gz, "junk", 4);
    const char *path = write_file("samples.csv.gz", gz);
    assert_csv_refused(path, 0, 0, "trailing data after the gzip member");
}
END_TEST

/* ------------------------------------------------------------ select, free */

START_TEST(select_copies_in_order)
{
    const size_t order[] = {2, 0, 2};
    struct dataset all, picked;
    struct error err = {""};

    ck_assert_msg(dataset_load_idx(&all, good_images(), good_labels(), NULL, &err) == 0, "%s",
                  err.msg);
    ck_assert_int_eq(dataset_select(&picked, &all, order, 3, &err), 0);
    ck_assert_uint_eq(picked.count, 3);
    ck_assert_uint_eq(picked.rows, SIDE);
    ck_assert_uint_eq(picked.cols, SIDE);
    for (size_t i = 0; i < 3; i++) {
        ck_assert(memcmp(picked.pixels + i * PIXELS, all.pixels + order[i] * PIXELS, PIXELS) == 0);
        ck_assert_uint_eq(picked.labels[i], all.labels[order[i]]);
    }
    dataset_free(&picked);
    dataset_free(&all);
}
END_TEST

/* A rank's two passes: counting (none kept, the images counted), then
 * keeping some images in the order of their slots: the images that
 * dataset_select picks from a whole load, in IDX (raw and gzip) and CSV;
 * a file that no longer holds the images counted is refused. */
static void assert_kept_as_selected(const char *images, const char *labels, const char *csv)
{
    const size_t slot[SAMPLES] = {DATASET_DROPPED, 1, 0}, picked[] = {2, 1};
    struct dataset all, kept, selected;
    struct error err = {""};
    struct dataset_keep counting = {.slot = NULL};
    struct dataset_keep keep = {.slot = slot, .kept = 2, .records = SAMPLES};
    struct dataset_keep wrong = {.slot = slot, .kept = 2, .records = SAMPLES + 1};
    const int counted = csv ? dataset_load_csv(&all, csv, &counting, &err)
                            : dataset_load_idx(&all, images, labels, &counting, &err);
    ck_assert_msg(counted == 0, "%s", err.msg);
    ck_assert_uint_eq(counting.records, SAMPLES);
    ck_assert_uint_eq(all.count, 0);
    dataset_free(&all);
    ck_assert_msg((csv ? dataset_load_csv(&all, csv, NULL, &err)
                       : dataset_load_idx(&all, images, labels, NULL, &err)) == 0, "%s", err.msg);
    ck_assert_msg((csv ? dataset_load_csv(&kept, csv, &keep, &err)
                       : dataset_load_idx(&kept, images, labels, &keep, &err)) == 0, "%s", err.msg);
    ck_assert_int_eq(dataset_select(&selected, &all, picked, 2, &err), 0);
    ck_assert_uint_eq(kept.count, 2);
    ck_assert_uint_eq(kept.rows, SIDE);
    ck_assert_uint_eq(kept.cols, SIDE);
    ck_assert(memcmp(kept.pixels, selected.pixels, 2 * PIXELS) == 0);
    ck_assert(memcmp(kept.labels, selected.labels, 2) == 0);
    dataset_free(&kept);
    fill_with_garbage(&kept);
    ck_assert_int_eq(csv ? dataset_load_csv(&kept, csv, &wrong, &err)
                         : dataset_load_idx(&kept, images, labels, &wrong, &err), -1);
    ck_assert_msg(strstr(err.msg, "not the 4 it held when counted"), "%s", err.msg);
    ck_assert(kept.count == 0 && !kept.pixels && !kept.labels);
    dataset_free(&selected);
    dataset_free(&all);
}

START_TEST(kept_images_are_the_selected_ones)
{
    assert_kept_as_selected(good_images(), good_labels(), NULL);
    assert_kept_as_selected(write_gz("images.gz", idx_images(SAMPLES, SAMPLES)),
                            write_gz("labels.gz", idx_labels(SAMPLES, SAMPLES)), NULL);
    assert_kept_as_selected(NULL, NULL, write_file("samples.csv", samples_csv(1, "\n", 1)));
}
END_TEST

/* The fingerprint of a set joined from its parts' is the whole set's. */
START_TEST(fingerprint_joins_from_parts)
{
    struct dataset all, part[2];
    struct error err = {""};
    const size_t first[] = {0, 1}, rest[] = {1, 2};
    struct dataset_crc32_part parts[2];
    ck_assert_msg(dataset_load_idx(&all, good_images(), good_labels(), NULL, &err) == 0, "%s",
                  err.msg);
    ck_assert_int_eq(dataset_select(&part[0], &all, first, 1, &err), 0);
    ck_assert_int_eq(dataset_select(&part[1], &all, rest, 2, &err), 0);
    for (size_t p = 0; p < 2; p++)
        parts[p] = dataset_crc32_part(&part[p]);
    ck_assert_uint_eq(parts[0].images, 1);
    ck_assert_uint_eq(dataset_crc32_join(parts, 2, PIXELS), dataset_crc32(&all));
    parts[0].images = 2;  /* a part's size is part of it */
    ck_assert_uint_ne(dataset_crc32_join(parts, 2, PIXELS), dataset_crc32(&all));
    for (size_t p = 0; p < 2; p++)
        dataset_free(&part[p]);
    dataset_free(&all);
}
END_TEST

START_TEST(free_zeroes)
{
    struct dataset ds;
    struct error err = {""};

    ck_assert_msg(dataset_load_idx(&ds, good_images(), good_labels(), NULL, &err) == 0, "%s",
                  err.msg);
    dataset_free(&ds);
    ck_assert(ds.count == 0 && ds.rows == 0 && ds.cols == 0 && !ds.pixels && !ds.labels);
    dataset_free(&ds);  /* harmless on an empty dataset */
}
END_TEST

/* ------------------------------------------------------------ shipped MNIST */

static void load_shipped(struct dataset *ds, enum mnist_split split)
{
    struct error err = {""};

    ck_assert_msg(mnist_load(ds, testdir_data(), split, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(ds->rows, SIDE);
    ck_assert_uint_eq(ds->cols, SIDE);
}

START_TEST(shipped_training_set)
{
    /* Row 5 of the first training image (a 5), from column 12 on. */
    static const uint8_t row5[] = {3, 18, 18, 18, 126, 136, 175, 26, 166, 255, 247, 127};
    struct dataset ds;

    load_shipped(&ds, MNIST_TRAIN);
    ck_assert_uint_eq(ds.count, 60000);
    ck_assert_uint_eq(ds.labels[0], 5);
    ck_assert(memcmp(ds.pixels + 5 * SIDE + 12, row5, sizeof row5) == 0);
    dataset_free(&ds);
}
END_TEST

START_TEST(shipped_test_set)
{
    struct dataset ds;

    load_shipped(&ds, MNIST_TEST);
    ck_assert_uint_eq(ds.count, 10000);
    dataset_free(&ds);
}
END_TEST

/* ------------------------------------------------------------ finding data */

static char *saved_env;
static int saved_cwd = -1;

static void setup_environment(void)
{
    const char *env = getenv("MNIST_OMP_DATA");

    saved_env = env ? strdup(env) : NULL;
    saved_cwd = open(".", O_RDONLY);
    ck_assert_int_ge(saved_cwd, 0);
}

static void teardown_environment(void)
{
    ck_assert_int_eq(fchdir(saved_cwd), 0);
    close(saved_cwd);
    if (saved_env)
        setenv("MNIST_OMP_DATA", saved_env, 1);
    else
        unsetenv("MNIST_OMP_DATA");
    free(saved_env);
}

/* A one-image CSV for each split in the existing subdirectory `name`. */
static void write_fake_csv(const char *name)
{
    static const char *const files[] = {"mnist_train.csv", "mnist_test.csv"};
    char file[PATH_MAX];

    for (size_t i = 0; i < 2; i++) {
        struct bytes b = {NULL, 0};
        append_plain_line(&b, CSV_FIELDS, 0, "7");
        int length = snprintf(file, sizeof file, "%s/%s", name, files[i]);
        ck_assert(length > 0 && (size_t)length < sizeof file);
        write_file(file, b);
    }
}

/* A directory holding just enough to count as MNIST. */
static const char *make_fake_mnist(const char *name)
{
    const char *dir = testdir_mkdir(name);
    write_fake_csv(name);
    return dir;
}

static void assert_finds(const char *explicit_dir, const char *installed_dir, const char *expected)
{
    char found[PATH_MAX];
    struct error err = {""};

    ck_assert_msg(mnist_find_dir(explicit_dir, installed_dir, found, sizeof found, &err) == 0,
                  "%s", err.msg);
    ck_assert_str_eq(found, expected);
}

static void assert_find_fails(const char *explicit_dir, const char *installed_dir,
                              const char *phrase1, const char *phrase2)
{
    char found[PATH_MAX];
    struct error err = {""};

    ck_assert_int_eq(mnist_find_dir(explicit_dir, installed_dir, found, sizeof found, &err), -1);
    ck_assert_msg(strstr(err.msg, phrase1) && strstr(err.msg, phrase2),
                  "message \"%s\" does not say \"%s\" and \"%s\"", err.msg, phrase1, phrase2);
}

START_TEST(find_dir_explicit_wins)
{
    const char *named = make_fake_mnist("named");
    const char *other = make_fake_mnist("other");

    setenv("MNIST_OMP_DATA", other, 1);
    assert_finds(named, other, named);
}
END_TEST

START_TEST(find_dir_env_used)
{
    const char *env_dir = make_fake_mnist("env");
    const char *installed = make_fake_mnist("installed");

    setenv("MNIST_OMP_DATA", env_dir, 1);
    assert_finds(NULL, installed, env_dir);
}
END_TEST

START_TEST(find_dir_local_data_before_installed)
{
    const char *installed = make_fake_mnist("installed");

    make_fake_mnist("data");
    unsetenv("MNIST_OMP_DATA");
    ck_assert_int_eq(chdir(testdir_dir()), 0);
    assert_finds(NULL, installed, "./data");
}
END_TEST

START_TEST(find_dir_installed_last)
{
    const char *installed = make_fake_mnist("installed");

    unsetenv("MNIST_OMP_DATA");
    ck_assert_int_eq(chdir(testdir_dir()), 0);
    assert_finds(NULL, installed, installed);
}
END_TEST

START_TEST(find_dir_explicit_missing)
{
    const char *missing = testdir_path("missing");
    const char *other = make_fake_mnist("other");

    setenv("MNIST_OMP_DATA", other, 1);
    assert_find_fails(missing, other, missing, strerror(ENOENT));
}
END_TEST

START_TEST(find_dir_env_without_mnist)
{
    const char *empty = testdir_mkdir("empty");
    const char *installed = make_fake_mnist("installed");

    setenv("MNIST_OMP_DATA", empty, 1);
    assert_find_fails(NULL, installed, empty, "train-images-idx3-ubyte[.gz] is missing");
}
END_TEST

START_TEST(find_dir_not_found_lists_places)
{
    const char *installed = testdir_path("installed");

    unsetenv("MNIST_OMP_DATA");
    ck_assert_int_eq(chdir(testdir_dir()), 0);
    assert_find_fails(NULL, installed, "./data", installed);
}
END_TEST

/* ------------------------------------------------------------ mnist_load */

static size_t count_loaded(const char *dir)
{
    struct dataset ds;
    struct error err = {""};

    ck_assert_msg(mnist_load(&ds, dir, MNIST_TRAIN, &err) == 0, "%s", err.msg);
    size_t count = ds.count;
    dataset_free(&ds);
    return count;
}

static void assert_load_refused(const char *dir, enum mnist_split split, const char *where,
                                const char *phrase)
{
    struct dataset ds;
    struct error err = {""};

    fill_with_garbage(&ds);
    assert_refused(mnist_load(&ds, dir, split, &err), &ds, &err, where, phrase);
}

/* A raw and a gzip copy of one file are refused as ambiguous; the gzip IDX,
 * the raw IDX and the CSV hold different numbers of images, so the count
 * tells which one was read. */
START_TEST(load_refuses_raw_and_gzip_then_idx_then_csv)
{
    const char *dir = testdir_mkdir("d");
    const char *images_gz = write_gz("d/train-images-idx3-ubyte.gz", idx_images(SAMPLES, SAMPLES));
    const char *labels_gz = write_gz("d/train-labels-idx1-ubyte.gz", idx_labels(SAMPLES, SAMPLES));
    const char *images = write_file("d/train-images-idx3-ubyte", idx_images(2, 2));
    const char *labels = write_file("d/train-labels-idx1-ubyte", idx_labels(2, 2));
    char phrase[PATH_MAX + 64];

    write_fake_csv("d");
    snprintf(phrase, sizeof phrase, "%s exists as well: remove one", labels_gz);
    ck_assert_int_eq(unlink(images_gz), 0);
    assert_load_refused(dir, MNIST_TRAIN, labels, phrase);
    ck_assert_int_eq(unlink(labels), 0);
    ck_assert_int_eq(unlink(images), 0);
    write_gz("d/train-images-idx3-ubyte.gz", idx_images(SAMPLES, SAMPLES));
    ck_assert_uint_eq(count_loaded(dir), SAMPLES);
    ck_assert_int_eq(unlink(labels_gz), 0);
    write_file("d/train-labels-idx1-ubyte", idx_labels(SAMPLES, SAMPLES));
    ck_assert_uint_eq(count_loaded(dir), SAMPLES);  /* gzip images, raw labels */
    ck_assert_int_eq(unlink(images_gz), 0);  /* labels alone are no IDX set */
    ck_assert_uint_eq(count_loaded(dir), 1);
}
END_TEST

/* What is missing is named, and a symbolic link to nothing is called one. */
START_TEST(load_names_missing_and_dangling_files)
{
    const char *dir = testdir_mkdir("d");
    const char *labels = testdir_path("d/train-labels-idx1-ubyte");
    char phrase[PATH_MAX + 64];

    write_gz("d/train-images-idx3-ubyte.gz", idx_images(SAMPLES, SAMPLES));
    ck_assert_int_eq(symlink("nowhere", labels), 0);
    snprintf(phrase, sizeof phrase, "%s is a dangling symbolic link", labels);
    assert_load_refused(dir, MNIST_TRAIN, dir, phrase);
    snprintf(phrase, sizeof phrase, "%s/t10k-images-idx3-ubyte[.gz] is missing; %s/"
             "t10k-labels-idx1-ubyte[.gz] is missing", dir, dir);
    assert_load_refused(dir, MNIST_TEST, dir, phrase);
    assert_find_fails(dir, NULL, "dangling symbolic link", "t10k-images-idx3-ubyte[.gz] is missing");
}
END_TEST

START_TEST(load_csv_when_no_idx)
{
    const char *dir = make_fake_mnist("fake");
    struct dataset ds;
    struct error err = {""};

    ck_assert_msg(mnist_load(&ds, dir, MNIST_TEST, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(ds.count, 1);
    ck_assert_uint_eq(ds.labels[0], 7);
    dataset_free(&ds);
}
END_TEST

START_TEST(load_nothing_there)
{
    const char *dir = testdir_mkdir("empty");
    struct dataset ds;
    struct error err = {""};

    ck_assert(!mnist_dir_has(dir, MNIST_TEST));
    fill_with_garbage(&ds);
    assert_refused(mnist_load(&ds, dir, MNIST_TEST, &err), &ds, &err, dir, "no MNIST test set");
}
END_TEST

/* ------------------------------------------------------------ suite */

int main(void)
{
    Suite *suite = suite_create("loaders");
    TCase *idx = testdir_tcase(suite, "IDX refusals");
    TCase *csv = testdir_tcase(suite, "CSV refusals");
    TCase *formats = testdir_tcase(suite, "formats, select, free");
    TCase *shipped = tcase_create("shipped MNIST");  /* writes no files */
    suite_add_tcase(suite, shipped);
    TCase *finding = testdir_tcase(suite, "finding and loading MNIST");

    tcase_add_checked_fixture(finding, setup_environment, teardown_environment);
    tcase_set_timeout(shipped, 60);  /* 70000 images: give slow or instrumented builds room */

    tcase_add_test(idx, idx_images_wrong_magic);
    tcase_add_test(idx, idx_labels_wrong_magic);
    tcase_add_test(idx, idx_empty_file);
    tcase_add_test(idx, idx_truncated_header);
    tcase_add_test(idx, idx_truncated_images);
    tcase_add_test(idx, idx_truncated_labels);
    tcase_add_test(idx, idx_counts_disagree);
    tcase_add_test(idx, idx_no_images);
    tcase_add_test(idx, idx_zero_dimensions);
    tcase_add_test(idx, idx_huge_dimensions);
    tcase_add_test(idx, idx_huge_count_small_file);
    tcase_add_test(idx, idx_label_out_of_range);
    tcase_add_test(idx, idx_trailing_data);
    tcase_add_test(idx, idx_gzip_corrupt_block);
    tcase_add_test(idx, idx_gzip_corrupt_checksum);
    tcase_add_test(idx, idx_gzip_truncated);
    tcase_add_test(idx, idx_gzip_missing_trailer);
    tcase_add_test(idx, idx_gzip_bomb);
    tcase_add_test(idx, idx_gzip_trailing_garbage);
    tcase_add_test(formats, idx_gzip_members_load);
    tcase_add_test(idx, idx_directory);
    tcase_add_test(idx, idx_not_regular_file);
    tcase_add_test(idx, idx_nonexistent_file);
    tcase_add_test(idx, idx_unreadable_file);

    tcase_add_test(csv, csv_empty_file);
    tcase_add_test(csv, csv_header_only);
    tcase_add_test(csv, csv_blank_line);
    tcase_add_test(csv, csv_two_final_blank_lines);
    tcase_add_test(csv, csv_gzip_trailing_garbage);
    tcase_add_test(csv, csv_header_too_few_fields);
    tcase_add_test(csv, csv_too_few_fields);
    tcase_add_test(csv, csv_too_many_fields);
    tcase_add_test(csv, csv_not_a_number);
    tcase_add_test(csv, csv_empty_field);
    tcase_add_test(csv, csv_pixel_out_of_range);
    tcase_add_test(csv, csv_pixel_huge);
    tcase_add_test(csv, csv_label_out_of_range);
    tcase_add_test(csv, csv_negative);
    tcase_add_test(csv, csv_gzip_truncated);
    tcase_add_test(csv, csv_gzip_truncated_at_line_end);
    tcase_add_test(csv, csv_directory);

    tcase_add_test(formats, idx_raw_loads);
    tcase_add_test(formats, idx_gzip_loads);
    tcase_add_test(formats, csv_with_header_loads);
    tcase_add_test(formats, csv_headerless_crlf_unterminated_loads);
    tcase_add_test(formats, csv_gzip_loads);
    tcase_add_test(formats, csv_final_blank_line_loads);
    tcase_add_test(formats, csv_utf8_bom_skipped);
    tcase_add_test(formats, select_copies_in_order);
    tcase_add_test(formats, free_zeroes);
    tcase_add_test(formats, kept_images_are_the_selected_ones);
    tcase_add_test(formats, fingerprint_joins_from_parts);

    tcase_add_test(shipped, shipped_training_set);
    tcase_add_test(shipped, shipped_test_set);

    tcase_add_test(finding, find_dir_explicit_wins);
    tcase_add_test(finding, find_dir_env_used);
    tcase_add_test(finding, find_dir_local_data_before_installed);
    tcase_add_test(finding, find_dir_installed_last);
    tcase_add_test(finding, find_dir_explicit_missing);
    tcase_add_test(finding, find_dir_env_without_mnist);
    tcase_add_test(finding, find_dir_not_found_lists_places);
    tcase_add_test(finding, load_refuses_raw_and_gzip_then_idx_then_csv);
    tcase_add_test(finding, load_names_missing_and_dangling_files);
    tcase_add_test(finding, load_csv_when_no_idx);
    tcase_add_test(finding, load_nothing_there);

    return testdir_run("test_loaders", suite, CK_ENV);
}
