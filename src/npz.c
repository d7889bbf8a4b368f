/* An .npz as numpy.savez writes it: each tensor a "NAME.npy" member stored
 * uncompressed (method 0), a central directory, and its end record.  The
 * format is small and fixed (PKWARE's APPNOTE, sections 4.3.7, 4.3.12 and
 * 4.3.16; NumPy's format.py for .npy version 1.0), so it is written here
 * rather than through a zip library; the CRC-32 is zlib's. */
#include "npz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "atomic_file.h"
#include "weights.h"

enum {
    LOCAL_HEADER_BYTES = 30,
    CENTRAL_HEADER_BYTES = 46,
    END_RECORD_BYTES = 22,
    ZIP_VERSION = 20,  /* 2.0: what a stored member needs */
    /* 1980-01-01 00:00, the earliest DOS date: the same tensors always
     * make the same bytes. */
    DOS_DATE = (0 << 9) | (1 << 5) | 1,
    DOS_TIME = 0,
    /* .npy 1.0: magic, version, a 16-bit header length; NumPy pads the
     * header so that the data start on a multiple of 64 bytes. */
    NPY_PREAMBLE_BYTES = 10,
    NPY_ALIGN = 64,
    NPY_HEADER_MAX = 128,
};

/* Without the zip64 extension every size and offset is 32 bits: a network
 * of more bytes than that is refused, which no width limit rules out. */
#define ZIP_MAX 0xffffffffu

static void put_le(uint8_t **at, uint64_t value, int bytes)
{
    for (int i = 0; i < bytes; i++)
        *(*at)++ = (uint8_t)(value >> 8 * i);
}

/* The .npy file of tensor k, header and data, in a malloc'ed buffer. */
static uint8_t *encode_npy(const struct mlp *m, size_t k, size_t *size)
{
    const struct weights_tensor t = weights_tensor(m, k);
    char dict[NPY_HEADER_MAX];
    char shape[48];
    if (t.dims == 2)
        snprintf(shape, sizeof shape, "(%zu, %zu)", t.shape[0], t.shape[1]);
    else
        snprintf(shape, sizeof shape, "(%zu,)", t.shape[0]);
    const int n = snprintf(dict, sizeof dict, "{'descr': '<f%zu', 'fortran_order': False, "
                           "'shape': %s, }", precision_size(m->precision), shape);
    const size_t header = ((NPY_PREAMBLE_BYTES + (size_t)n + 1 + NPY_ALIGN - 1) / NPY_ALIGN) *
                          NPY_ALIGN - NPY_PREAMBLE_BYTES;
    const size_t data = t.count * precision_size(m->precision);
    uint8_t *bytes = malloc(NPY_PREAMBLE_BYTES + header + data);
    if (!bytes)
        return NULL;
    uint8_t *at = bytes;
    memcpy(at, "\x93NUMPY\x01\x00", 8);
    at += 8;
    put_le(&at, header, 2);
    memcpy(at, dict, (size_t)n);
    memset(at + n, ' ', header - (size_t)n - 1);
    at[header - 1] = '\n';
    weights_tensor_encode(m, k, at + header);
    *size = NPY_PREAMBLE_BYTES + header + data;
    return bytes;
}

/* The fields a local header and a central directory entry share. */
static void put_member_fields(uint8_t **at, uint32_t crc, size_t size, size_t name_length)
{
    put_le(at, ZIP_VERSION, 2);  /* version needed to extract */
    put_le(at, 0, 2);            /* flags */
    put_le(at, 0, 2);            /* method: stored */
    put_le(at, DOS_TIME, 2);
    put_le(at, DOS_DATE, 2);
    put_le(at, crc, 4);
    put_le(at, size, 4);  /* compressed */
    put_le(at, size, 4);  /* uncompressed */
    put_le(at, name_length, 2);
    put_le(at, 0, 2);  /* extra field length */
}

struct member {
    char name[WEIGHTS_NAME_SIZE + 4];
    uint32_t crc;
    size_t size, offset;
};

static int write_archive(FILE *file, const struct mlp *m, const char *path, struct error *err)
{
    const size_t count = weights_tensor_count(m);
    struct member members[2 * MLP_MAX_LAYERS];
    uint8_t record[CENTRAL_HEADER_BYTES], *at;
    uint64_t offset = 0;

    for (size_t k = 0; k < count; k++) {
        struct member *e = &members[k];
        size_t size;
        uint8_t *npy = encode_npy(m, k, &size);
        if (!npy)
            return error_set(err, "cannot save %s: out of memory", path);
        snprintf(e->name, sizeof e->name, "%s.npy", weights_tensor(m, k).name);
        const size_t name_length = strlen(e->name);
        if (size > ZIP_MAX || offset + LOCAL_HEADER_BYTES + name_length + size > ZIP_MAX) {
            free(npy);
            return error_set(err, "cannot save %s: the network is over 4 GiB, more than a zip "
                             "archive without zip64 holds", path);
        }
        e->crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), npy, (uInt)size);
        e->size = size;
        e->offset = (size_t)offset;
        at = record;
        put_le(&at, 0x04034b50, 4);
        put_member_fields(&at, e->crc, size, name_length);
        fwrite(record, 1, LOCAL_HEADER_BYTES, file);
        fputs(e->name, file);
        fwrite(npy, 1, size, file);
        free(npy);
        offset += LOCAL_HEADER_BYTES + name_length + size;
    }
    const uint64_t directory = offset;
    for (size_t k = 0; k < count; k++) {
        const struct member *e = &members[k];
        at = record;
        put_le(&at, 0x02014b50, 4);
        put_le(&at, ZIP_VERSION, 2);  /* version made by: MS-DOS, 2.0 */
        put_member_fields(&at, e->crc, e->size, strlen(e->name));
        put_le(&at, 0, 2);  /* comment length */
        put_le(&at, 0, 2);  /* disk */
        put_le(&at, 0, 2);  /* internal attributes */
        put_le(&at, 0, 4);  /* external attributes */
        put_le(&at, e->offset, 4);
        fwrite(record, 1, CENTRAL_HEADER_BYTES, file);
        fputs(e->name, file);
        offset += CENTRAL_HEADER_BYTES + strlen(e->name);
    }
    if (offset > ZIP_MAX)
        return error_set(err, "cannot save %s: the network is over 4 GiB, more than a zip "
                         "archive without zip64 holds", path);
    at = record;
    put_le(&at, 0x06054b50, 4);
    put_le(&at, 0, 2);  /* this disk */
    put_le(&at, 0, 2);  /* the directory's disk */
    put_le(&at, count, 2);
    put_le(&at, count, 2);
    put_le(&at, offset - directory, 4);
    put_le(&at, directory, 4);
    put_le(&at, 0, 2);  /* comment length */
    fwrite(record, 1, END_RECORD_BYTES, file);
    return 0;
}

int npz_save(const char *path, const struct mlp *m, struct error *err)
{
    struct atomic_file f;
    if (atomic_file_open(&f, path, err) != 0)
        return -1;
    if (write_archive(f.stream, m, path, err) != 0) {
        atomic_file_discard(&f);
        return -1;
    }
    return atomic_file_commit(&f, err);
}
