/* The tutorial's CSV format: an optional UTF-8 byte order mark, an optional
 * header line, then one image a line, its label and its 784 pixels as
 * comma-separated decimal numbers, and at most one empty line at the end.  Parsed a
 * character at a time, so no line is ever too long; read through zlib, so a
 * gzip-compressed file works as well. */
#include "dataset.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define CSV_PIXELS (MNIST_SIDE * MNIST_SIDE)
#define CSV_FIELDS (1 + CSV_PIXELS)  /* the label, then the pixels */

enum { END_OF_DATA = -1 };  /* what gzgetc returns at the end (or on an error) */

struct csv_reader {
    gzFile in;
    const char *path;
    struct error *err;
    int c;                       /* the current character; CRLF reads as '\n' */
    unsigned long line, column;  /* where c is, counting from 1 */
    int read_failed;             /* zlib failed; err already says why */
};

/* CRLF reads as a single '\n', so files written on Windows parse the same. */
static int read_char(gzFile in)
{
    int c = gzgetc(in);

    if (c == '\r') {
        int after = gzgetc(in);
        if (after == '\n')
            return '\n';
        if (after != END_OF_DATA)
            gzungetc(after, in);
    }
    return c;
}

static void fetch(struct csv_reader *r)
{
    r->c = read_char(r->in);
    if (r->c == END_OF_DATA && dataset_check_read(r->in, r->path, r->err) != 0)
        r->read_failed = 1;
}

static void advance(struct csv_reader *r)
{
    if (r->c == '\n') {
        r->line++;
        r->column = 1;
    } else {
        r->column++;
    }
    fetch(r);
}

/* Every parse error goes through here: when zlib failed, the data ended
 * early because of it, and zlib's message (already in err) is the one that
 * explains the problem. */
ERROR_PRINTF(3)
static int fail_at(struct csv_reader *r, unsigned long column, const char *fmt, ...)
{
    char what[512];
    va_list ap;

    if (r->read_failed)
        return -1;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return error_set(r->err, "%s:%lu:%lu: %s", r->path, r->line, column, what);
}

static int at_line_end(const struct csv_reader *r)
{
    return r->c == '\n' || r->c == END_OF_DATA;
}

static int at_field_end(const struct csv_reader *r)
{
    return r->c == ',' || at_line_end(r);
}

/* Reads one field as a decimal number no greater than max (at most 255). */
static int read_number(struct csv_reader *r, const char *name, unsigned max, uint8_t *value)
{
    unsigned long start = r->column;
    int negative = r->c == '-';
    unsigned number = 0, digits = 0;

    if (at_field_end(r))
        return fail_at(r, start, "empty %s field", name);
    if (negative)
        advance(r);
    for (; isdigit(r->c); advance(r), digits++)
        if (number <= max)  /* past max the value no longer matters; stop before it overflows */
            number = number * 10 + (unsigned)(r->c - '0');

    if (digits == 0 || !at_field_end(r))
        return fail_at(r, start, "%s is not a number", name);
    if (negative)
        return fail_at(r, start, "%s is negative", name);
    if (number > max)
        return fail_at(r, start, "%s value out of range 0-%u", name, max);
    *value = (uint8_t)number;
    return 0;
}

static int read_field(struct csv_reader *r, size_t field, uint8_t record[])
{
    if (!record) {  /* a header field names a column: any text will do */
        while (!at_field_end(r))
            advance(r);
        return 0;
    }
    if (field == 0)
        return read_number(r, "label", MNIST_CLASSES - 1, &record[0]);
    return read_number(r, "pixel", 255, &record[field]);
}

/* Reads one line of CSV_FIELDS fields into record, or checks the header's
 * shape when record is NULL. */
static int read_line(struct csv_reader *r, uint8_t record[])
{
    if (r->c == '\n')
        return fail_at(r, r->column, "blank line");
    for (size_t field = 0; field < CSV_FIELDS; field++) {
        if (field > 0) {
            if (r->c != ',')
                return fail_at(r, r->column, "too few fields (%zu of %d)", field, CSV_FIELDS);
            advance(r);
        }
        if (read_field(r, field, record) != 0)
            return -1;
    }
    if (!at_line_end(r))
        return fail_at(r, r->column, "too many fields (more than %d)", CSV_FIELDS);
    if (r->c == '\n')
        advance(r);
    return 0;
}

static int append_record(struct dataset *ds, const uint8_t record[CSV_FIELDS],
                         size_t *label_capacity, size_t *pixel_capacity)
{
    size_t count = ds->count;

    if (dataset_grow(&ds->labels, label_capacity, count + 1, SIZE_MAX) != 0 ||
        dataset_grow(&ds->pixels, pixel_capacity, (count + 1) * CSV_PIXELS, SIZE_MAX) != 0)
        return -1;
    ds->labels[count] = record[0];
    memcpy(ds->pixels + count * CSV_PIXELS, record + 1, CSV_PIXELS);
    ds->count = count + 1;
    return 0;
}

/* The header is optional: a first line that starts with something other than
 * a number is taken for one. */
static int starts_number(int c)
{
    return isdigit(c) || c == '-';
}

/* Editors often end a file with one empty line; a blank line anywhere else
 * is an error.  Called at a '\n' that starts a line. */
static int skip_final_blank_line(struct csv_reader *r)
{
    const unsigned long line = r->line;

    advance(r);
    if (r->c == END_OF_DATA)
        return r->read_failed ? -1 : 0;
    r->line = line;  /* the error is about the blank line, not the one after it */
    r->column = 1;
    return fail_at(r, 1, "blank line");
}

/* A UTF-8 byte order mark, which some programs write before the text, is
 * not part of the first line: skipped before the header is looked for. */
static const unsigned char utf8_bom[3] = {0xEF, 0xBB, 0xBF};

static int skip_bom(struct csv_reader *r)
{
    unsigned char start[sizeof utf8_bom];
    int got = gzread(r->in, start, sizeof start);

    if (got == (int)sizeof start && memcmp(start, utf8_bom, sizeof start) == 0)
        return 0;
    if (got < 0 || gzrewind(r->in) != 0) {
        if (dataset_check_read(r->in, r->path, r->err) != 0)
            return -1;
        return error_set(r->err, "%s: cannot go back to the start of the file", r->path);
    }
    return 0;
}

/* Puts the record-th image of the file where keep says (see struct
 * dataset_keep), in a set made for keep->kept images. */
static int keep_record(struct csv_reader *r, struct dataset *ds, const uint8_t fields[CSV_FIELDS],
                       size_t record, const struct dataset_keep *keep)
{
    if (!keep->slot)
        return 0;
    if (record >= keep->records)
        return error_set(r->err, "%s: holds more than the %zu images it held when counted",
                         r->path, keep->records);
    const size_t slot = keep->slot[record];
    if (slot == DATASET_DROPPED)
        return 0;
    ds->labels[slot] = fields[0];
    memcpy(ds->pixels + slot * CSV_PIXELS, fields + 1, CSV_PIXELS);
    return 0;
}

static int read_csv(struct csv_reader *r, struct dataset *ds, struct dataset_keep *keep)
{
    uint8_t record[CSV_FIELDS];
    size_t label_capacity = 0, pixel_capacity = 0, records = 0;

    if (r->c == END_OF_DATA)
        return r->read_failed ? -1 : error_set(r->err, "%s: empty file", r->path);
    if (!starts_number(r->c) && read_line(r, NULL) != 0)
        return -1;

    while (r->c != END_OF_DATA) {
        if (r->c == '\n' && records > 0) {
            if (skip_final_blank_line(r) != 0)
                return -1;
            break;
        }
        if (read_line(r, record) != 0)
            return -1;
        if (keep) {
            if (keep_record(r, ds, record, records, keep) != 0)
                return -1;
        } else if (append_record(ds, record, &label_capacity, &pixel_capacity) != 0) {
            return error_set(r->err, "%s: out of memory after %zu images", r->path, ds->count);
        }
        records++;
    }
    /* A truncated gzip stream can end cleanly at a line break. */
    if (r->read_failed)
        return -1;
    if (records == 0)
        return error_set(r->err, "%s: holds no images, only a header", r->path);
    if (keep && keep->slot && records != keep->records)
        return error_set(r->err, "%s: holds %zu images, not the %zu it held when counted",
                         r->path, records, keep->records);
    if (keep && !keep->slot)
        keep->records = records;

    ds->rows = ds->cols = MNIST_SIDE;
    return 0;
}

int dataset_load_csv(struct dataset *ds, const char *path, struct dataset_keep *keep,
                     struct error *err)
{
    struct csv_reader r = {.path = path, .err = err, .line = 1, .column = 1};

    memset(ds, 0, sizeof *ds);
    if (keep && keep->slot) {
        ds->count = keep->kept;
        ds->pixels = malloc(keep->kept ? keep->kept * CSV_PIXELS : 1);
        ds->labels = malloc(keep->kept ? keep->kept : 1);
        if (!ds->pixels || !ds->labels) {
            dataset_free(ds);
            return error_set(err, "%s: out of memory for %zu images", path, keep->kept);
        }
    }
    r.in = dataset_open_input(path, err);
    if (!r.in) {
        dataset_free(ds);
        return -1;
    }

    int status = skip_bom(&r);
    if (status == 0) {
        fetch(&r);
        status = read_csv(&r, ds, keep);
    }
    if (status == 0 && !gzdirect(r.in))
        status = dataset_check_gzip_members(path, err);
    gzclose(r.in);
    if (status != 0)
        dataset_free(ds);
    return status;
}
