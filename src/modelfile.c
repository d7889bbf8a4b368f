/* The model format of doc/model-format.md.  Every multi-byte field goes
 * through store_le/load_le, so the bytes are the same on any host; the
 * reader trusts nothing in the header until it has checked it against the
 * real length of the file. */
#define _POSIX_C_SOURCE 200809L

#include "modelfile.h"

#include "atomic_file.h"
#include "dataset.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* Parameters are copied as raw IEEE-754 bits, which needs these types. */
_Static_assert(FLT_RADIX == 2 && FLT_MANT_DIG == 24 && sizeof(float) == 4 &&
                   DBL_MANT_DIG == 53 && sizeof(double) == 8,
               "the model format needs IEEE-754 binary32 float and binary64 double");

static const char MAGIC[8] = {'M', 'N', 'I', 'S', 'T', 'O', 'M', 'P'};

/* Version 1 is the original layout, still written for models so that their
 * bytes stay what they were; version 2 adds the data fingerprint after the
 * header and is written for checkpoints that have one (so that a version-1
 * checkpoint saves back to the same bytes). */
enum { FORMAT_VERSION_PLAIN = 1, FORMAT_VERSION_FINGERPRINT = 2 };

/* Codes in the kind field.  Zero is left invalid so that a zeroed header
 * is refused. */
enum { KIND_CODE_MODEL = 1, KIND_CODE_CHECKPOINT = 2 };

/* The precision field holds the bytes per parameter. */
enum { PRECISION_CODE_F32 = 4, PRECISION_CODE_F64 = 8 };

enum {
    OFFSET_MAGIC = 0,
    OFFSET_VERSION = 8,
    OFFSET_KIND = 12,
    OFFSET_N_IN = 16,
    OFFSET_N_HIDDEN = 20,
    OFFSET_N_OUT = 24,
    OFFSET_PRECISION = 28,
    OFFSET_EPOCHS_DONE = 32,
    OFFSET_SEED = 40,
    OFFSET_LR = 48,
    OFFSET_TRAIN_SIZE = 56,
    OFFSET_TEST_SIZE = 64,
    HEADER_BYTES = 72,
    FINGERPRINT_BYTES = 8,  /* version 2: train_crc, test_crc (u32 each) */
    CRC_BYTES = 4,
};

/* Parameters are encoded and decoded through a buffer of this size, so that
 * zlib and stdio see large blocks whatever the size of the network. */
enum { CHUNK_BYTES = 1 << 16 };

/* The header fields as coded in the file. */
struct header {
    uint32_t version, kind, n_in, n_hidden, n_out, precision;
    struct model_metadata meta;
};

/* The bytes before the parameters. */
static uint64_t prefix_bytes(uint32_t version)
{
    return HEADER_BYTES + (version == FORMAT_VERSION_FINGERPRINT ? FINGERPRINT_BYTES : 0);
}

/* ------------------------------------------------------------ field codecs */

static void store_le(uint8_t *out, uint64_t value, int bytes)
{
    for (int i = 0; i < bytes; i++)
        out[i] = (uint8_t)(value >> 8 * i);
}

static uint64_t load_le(const uint8_t *in, int bytes)
{
    uint64_t value = 0;
    for (int i = 0; i < bytes; i++)
        value |= (uint64_t)in[i] << 8 * i;
    return value;
}

static void store_f32(uint8_t *out, float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    store_le(out, bits, sizeof bits);
}

static float load_f32(const uint8_t *in)
{
    const uint32_t bits = (uint32_t)load_le(in, sizeof bits);
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static void store_f64(uint8_t *out, double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    store_le(out, bits, sizeof bits);
}

static double load_f64(const uint8_t *in)
{
    const uint64_t bits = load_le(in, sizeof bits);
    double value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* Two's complement, spelt out because converting an out-of-range unsigned
 * value to a signed type is implementation-defined. */
static int64_t load_i64(const uint8_t *in)
{
    const uint64_t bits = load_le(in, 8);
    return bits <= INT64_MAX ? (int64_t)bits : -(int64_t)(UINT64_MAX - bits) - 1;
}

static void encode_param(uint8_t *out, const struct mlp *m, size_t i)
{
    if (m->precision == PRECISION_F64)
        store_f64(out, ((const double *)m->params)[i]);
    else
        store_f32(out, ((const float *)m->params)[i]);
}

static void decode_param(const uint8_t *in, struct mlp *m, size_t i)
{
    if (m->precision == PRECISION_F64)
        ((double *)m->params)[i] = load_f64(in);
    else
        ((float *)m->params)[i] = load_f32(in);
}

static void encode_header(uint8_t out[HEADER_BYTES], const struct header *h)
{
    memcpy(out + OFFSET_MAGIC, MAGIC, sizeof MAGIC);
    store_le(out + OFFSET_VERSION, h->version, 4);
    store_le(out + OFFSET_KIND, h->kind, 4);
    store_le(out + OFFSET_N_IN, h->n_in, 4);
    store_le(out + OFFSET_N_HIDDEN, h->n_hidden, 4);
    store_le(out + OFFSET_N_OUT, h->n_out, 4);
    store_le(out + OFFSET_PRECISION, h->precision, 4);
    store_le(out + OFFSET_EPOCHS_DONE, h->meta.epochs_done, 8);
    store_le(out + OFFSET_SEED, (uint64_t)h->meta.seed, 8);
    store_f64(out + OFFSET_LR, h->meta.lr);
    store_le(out + OFFSET_TRAIN_SIZE, h->meta.train_size, 8);
    store_le(out + OFFSET_TEST_SIZE, h->meta.test_size, 8);
}

/* The magic is checked separately, before anything else. */
static void decode_header(const uint8_t in[HEADER_BYTES], struct header *h)
{
    h->version = (uint32_t)load_le(in + OFFSET_VERSION, 4);
    h->kind = (uint32_t)load_le(in + OFFSET_KIND, 4);
    h->n_in = (uint32_t)load_le(in + OFFSET_N_IN, 4);
    h->n_hidden = (uint32_t)load_le(in + OFFSET_N_HIDDEN, 4);
    h->n_out = (uint32_t)load_le(in + OFFSET_N_OUT, 4);
    h->precision = (uint32_t)load_le(in + OFFSET_PRECISION, 4);
    h->meta.epochs_done = load_le(in + OFFSET_EPOCHS_DONE, 8);
    h->meta.seed = load_i64(in + OFFSET_SEED);
    h->meta.lr = load_f64(in + OFFSET_LR);
    h->meta.train_size = load_le(in + OFFSET_TRAIN_SIZE, 8);
    h->meta.test_size = load_le(in + OFFSET_TEST_SIZE, 8);
}

/* ------------------------------------------------------------ checks shared by save and load */

/* `subject` starts every message: the file name when loading, "cannot save
 * NAME" when saving. */
static int check_sizes(const char *subject, uint64_t n_in, uint64_t n_hidden, uint64_t n_out,
                       struct error *err)
{
    const uint64_t sizes[3] = {n_in, n_hidden, n_out};
    for (int i = 0; i < 3; i++)
        if (sizes[i] == 0 || sizes[i] > MODEL_FILE_MAX_SIZE)
            return error_set(err,
                             "%s: layer sizes %" PRIu64 "-%" PRIu64 "-%" PRIu64
                             " are invalid: each must be between 1 and %" PRIu32,
                             subject, n_in, n_hidden, n_out, MODEL_FILE_MAX_SIZE);
    return 0;
}

static int check_learning_rate(const char *subject, double lr, struct error *err)
{
    if (!(isfinite(lr) && lr >= 0))
        return error_set(err, "%s: learning rate %g is invalid: it must be finite and >= 0",
                         subject, lr);
    return 0;
}

static int check_epochs(const char *subject, uint64_t epochs_done, struct error *err)
{
    if (epochs_done > MODEL_FILE_MAX_EPOCHS)
        return error_set(err, "%s: epochs_done is %" PRIu64 ", more than the limit of %u",
                         subject, epochs_done, MODEL_FILE_MAX_EPOCHS);
    return 0;
}

/* Names parameter i as tensor[index], for messages. */
static const char *tensor_name(const struct mlp *m, size_t i, size_t *index)
{
    const struct mlp_layout l = mlp_layout(m->n_in, m->n_hidden, m->n_out);
    const size_t starts[4] = {l.w1, l.b1, l.w2, l.b2};
    static const char *const names[4] = {"W1", "b1", "W2", "b2"};
    int t = 3;
    while (i < starts[t])
        t--;
    *index = i - starts[t];
    return names[t];
}

static int check_params_finite(const char *subject, const struct mlp *m, struct error *err)
{
    const size_t count = mlp_param_count(m);
    for (size_t i = 0; i < count; i++) {
        const double value = mlp_param(m, i);
        if (!isfinite(value)) {
            size_t index;
            const char *tensor = tensor_name(m, i, &index);
            return error_set(err, "%s: parameter %s[%zu] is not finite (%g)", subject, tensor,
                             index, value);
        }
    }
    return 0;
}

/* ------------------------------------------------------------ saving */

/* Writes through stdio, folding every byte into the CRC.  The first failure
 * is kept and later writes are skipped, so one check at the end reports it. */
struct writer {
    FILE *file;
    uLong crc;
    int failure;  /* errno of the first failed write, 0 while all is well */
};

static void write_bytes(struct writer *w, const void *bytes, size_t count)
{
    if (w->failure)
        return;
    errno = 0;
    if (fwrite(bytes, 1, count, w->file) != count)
        w->failure = errno ? errno : EIO;
    w->crc = crc32(w->crc, bytes, (uInt)count);
}

static void write_params(struct writer *w, const struct mlp *m)
{
    const size_t width = precision_size(m->precision), count = mlp_param_count(m);
    const size_t per_chunk = CHUNK_BYTES / width;
    uint8_t chunk[CHUNK_BYTES];
    for (size_t first = 0; first < count; first += per_chunk) {
        const size_t n = count - first < per_chunk ? count - first : per_chunk;
        for (size_t i = 0; i < n; i++)
            encode_param(chunk + i * width, m, first + i);
        write_bytes(w, chunk, n * width);
    }
}

static void write_contents(struct writer *w, const struct header *h, const struct mlp *m)
{
    uint8_t header[HEADER_BYTES], fingerprint[FINGERPRINT_BYTES], crc[CRC_BYTES];
    encode_header(header, h);
    write_bytes(w, header, sizeof header);
    if (h->version == FORMAT_VERSION_FINGERPRINT) {
        store_le(fingerprint, h->meta.train_crc, 4);
        store_le(fingerprint + 4, h->meta.test_crc, 4);
        write_bytes(w, fingerprint, sizeof fingerprint);
    }
    write_params(w, m);
    store_le(crc, w->crc, CRC_BYTES);
    write_bytes(w, crc, sizeof crc);
}

static int make_header(struct header *h, enum model_kind kind, const struct mlp *m,
                       const struct model_metadata *meta, const char *subject,
                       struct error *err)
{
    if (kind != MODEL_FILE_MODEL && kind != MODEL_FILE_CHECKPOINT)
        return error_set(err, "%s: unknown model file kind %d", subject, (int)kind);
    if (check_sizes(subject, m->n_in, m->n_hidden, m->n_out, err) != 0 ||
        check_learning_rate(subject, meta->lr, err) != 0 ||
        check_epochs(subject, meta->epochs_done, err) != 0)
        return -1;
    const bool fingerprint = kind == MODEL_FILE_CHECKPOINT && meta->has_fingerprint;
    h->version = fingerprint ? FORMAT_VERSION_FINGERPRINT : FORMAT_VERSION_PLAIN;
    h->kind = kind == MODEL_FILE_CHECKPOINT ? KIND_CODE_CHECKPOINT : KIND_CODE_MODEL;
    h->n_in = (uint32_t)m->n_in;
    h->n_hidden = (uint32_t)m->n_hidden;
    h->n_out = (uint32_t)m->n_out;
    h->precision = m->precision == PRECISION_F64 ? PRECISION_CODE_F64 : PRECISION_CODE_F32;
    h->meta = *meta;
    h->meta.has_fingerprint = fingerprint;
    return 0;
}

int model_save(const char *path, enum model_kind kind, const struct mlp *m,
               const struct model_metadata *meta, struct error *err)
{
    char subject[PATH_MAX + 16];
    struct header h = {0};
    struct atomic_file f;

    snprintf(subject, sizeof subject, "cannot save %s", path);
    if (make_header(&h, kind, m, meta, subject, err) != 0 ||
        check_params_finite(subject, m, err) != 0 || atomic_file_open(&f, path, err) != 0)
        return -1;
    struct writer w = {f.stream, crc32(0L, Z_NULL, 0), 0};
    write_contents(&w, &h, m);
    if (w.failure) {
        atomic_file_discard(&f);
        return error_set(err, "%s: %s", subject, strerror(w.failure));
    }
    return atomic_file_commit(&f, err);
}

/* ------------------------------------------------------------ loading */

/* Reads through stdio, folding every byte into the CRC. */
struct reader {
    FILE *file;
    const char *path;
    uLong crc;
};

static int read_bytes(struct reader *r, void *bytes, size_t count, struct error *err)
{
    if (fread(bytes, 1, count, r->file) != count) {
        if (ferror(r->file))
            return error_set(err, "cannot read %s: %s", r->path, strerror(errno));
        return error_set(err, "%s: truncated: it ended while being read", r->path);
    }
    r->crc = crc32(r->crc, bytes, (uInt)count);
    return 0;
}

static FILE *open_regular_file(const char *path, off_t *size, struct error *err)
{
    const int fd = dataset_open_regular(path, size, err);
    if (fd < 0)
        return NULL;
    FILE *file = fdopen(fd, "rb");
    if (!file) {
        error_set(err, "cannot read %s: %s", path, strerror(errno));
        close(fd);
    }
    return file;
}

/* Reads and decodes the header after checking the magic and the version:
 * what follows the version may change from one version to the next, so
 * nothing after it is interpreted before the version is known. */
static int read_header(struct reader *r, off_t size, struct header *h, struct error *err)
{
    uint8_t bytes[HEADER_BYTES];
    const size_t available = size < HEADER_BYTES ? (size_t)size : HEADER_BYTES;

    if (size == 0)
        return error_set(err, "%s: empty file, not an mnist-omp model file", r->path);
    if (read_bytes(r, bytes, available, err) != 0)
        return -1;
    if (memcmp(bytes, MAGIC, available < sizeof MAGIC ? available : sizeof MAGIC) != 0)
        return error_set(err, "%s: not an mnist-omp model file (it does not start with \"%.8s\")",
                         r->path, MAGIC);
    if (available >= OFFSET_VERSION + 4) {
        const uint32_t version = (uint32_t)load_le(bytes + OFFSET_VERSION, 4);
        if (version != FORMAT_VERSION_PLAIN && version != FORMAT_VERSION_FINGERPRINT)
            return error_set(err, "%s: unsupported version %" PRIu32
                             " of the model format (this program reads versions %d and %d)",
                             r->path, version, FORMAT_VERSION_PLAIN, FORMAT_VERSION_FINGERPRINT);
    }
    if (available < HEADER_BYTES)
        return error_set(err, "%s: truncated: %lld bytes, shorter than the %d-byte header",
                         r->path, (long long)size, HEADER_BYTES);
    decode_header(bytes, h);
    return 0;
}

static const char *precision_code_name(uint32_t code)
{
    return precision_name(code == PRECISION_CODE_F64 ? PRECISION_F64 : PRECISION_F32);
}

/* The sizes are at most 2^20, so the count (< 2^42) and the length (< 2^46)
 * cannot overflow 64 bits. */
static int check_length(const char *path, const struct header *h, off_t size, struct error *err)
{
    const uint64_t count = (uint64_t)h->n_in * h->n_hidden + h->n_hidden +
                           (uint64_t)h->n_hidden * h->n_out + h->n_out;
    const uint64_t params_bytes = count * h->precision;
    const uint64_t expected = prefix_bytes(h->version) + params_bytes + CRC_BYTES;
    const uint64_t actual = (uint64_t)size;

    if (actual < expected)
        return error_set(err, "%s: truncated: %" PRIu64 " bytes, but a %" PRIu32 "-%" PRIu32
                         "-%" PRIu32 " %s model file has %" PRIu64,
                         path, actual, h->n_in, h->n_hidden, h->n_out,
                         precision_code_name(h->precision), expected);
    if (actual > expected)
        return error_set(err, "%s: %" PRIu64 " trailing bytes after the end of the model (a %"
                         PRIu32 "-%" PRIu32 "-%" PRIu32 " %s model file has %" PRIu64 ")",
                         path, actual - expected, h->n_in, h->n_hidden, h->n_out,
                         precision_code_name(h->precision), expected);
    if ((size_t)params_bytes != params_bytes)
        return error_set(err, "%s: the model is too large to load on this machine", path);
    return 0;
}

static int check_header(const char *path, const struct header *h, enum model_kind expected,
                        off_t size, struct error *err)
{
    if (h->kind != KIND_CODE_MODEL && h->kind != KIND_CODE_CHECKPOINT)
        return error_set(err, "%s: unknown file kind %" PRIu32 " (%d is a model, %d a checkpoint)",
                         path, h->kind, KIND_CODE_MODEL, KIND_CODE_CHECKPOINT);
    if (check_sizes(path, h->n_in, h->n_hidden, h->n_out, err) != 0)
        return -1;
    if (h->precision != PRECISION_CODE_F32 && h->precision != PRECISION_CODE_F64)
        return error_set(err, "%s: unknown precision code %" PRIu32 " (%d is float32, %d float64)",
                         path, h->precision, PRECISION_CODE_F32, PRECISION_CODE_F64);
    if (check_length(path, h, size, err) != 0)
        return -1;
    if (expected == MODEL_FILE_CHECKPOINT && h->kind != KIND_CODE_CHECKPOINT)
        return error_set(err, "%s: is a model file, not a checkpoint: training can only resume "
                         "from a checkpoint", path);
    if (h->version == FORMAT_VERSION_FINGERPRINT && h->kind != KIND_CODE_CHECKPOINT)
        return error_set(err, "%s: a version %d file must be a checkpoint (kind %d), not kind %"
                         PRIu32, path, FORMAT_VERSION_FINGERPRINT, KIND_CODE_CHECKPOINT, h->kind);
    return 0;
}

static int read_params(struct reader *r, struct mlp *m, struct error *err)
{
    const size_t width = precision_size(m->precision), count = mlp_param_count(m);
    const size_t per_chunk = CHUNK_BYTES / width;
    uint8_t chunk[CHUNK_BYTES];
    for (size_t first = 0; first < count; first += per_chunk) {
        const size_t n = count - first < per_chunk ? count - first : per_chunk;
        if (read_bytes(r, chunk, n * width, err) != 0)
            return -1;
        for (size_t i = 0; i < n; i++)
            decode_param(chunk + i * width, m, first + i);
    }
    return 0;
}

/* Creates m from the checked header and fills it, verifying the CRC; reads
 * a version-2 file's fingerprint into h. */
static int read_body(struct reader *r, struct header *h, struct mlp *m, struct error *err)
{
    const enum precision precision =
        h->precision == PRECISION_CODE_F64 ? PRECISION_F64 : PRECISION_F32;
    struct error create_err;
    uint8_t stored[CRC_BYTES], fingerprint[FINGERPRINT_BYTES];

    if (h->version == FORMAT_VERSION_FINGERPRINT) {
        if (read_bytes(r, fingerprint, sizeof fingerprint, err) != 0)
            return -1;
        h->meta.has_fingerprint = true;
        h->meta.train_crc = (uint32_t)load_le(fingerprint, 4);
        h->meta.test_crc = (uint32_t)load_le(fingerprint + 4, 4);
    }
    if (mlp_create(m, h->n_in, h->n_hidden, h->n_out, precision, &create_err) != 0)
        return error_set(err, "%s: %s", r->path, create_err.msg);
    if (read_params(r, m, err) != 0)
        return -1;
    const uLong computed = r->crc;
    if (read_bytes(r, stored, sizeof stored, err) != 0)
        return -1;
    if (load_le(stored, CRC_BYTES) != computed)
        return error_set(err, "%s: checksum mismatch: file is corrupted (stored CRC-32 %08" PRIx64
                         ", computed %08lx)",
                         r->path, load_le(stored, CRC_BYTES), computed);
    return 0;
}

int model_load(const char *path, enum model_kind expected, struct mlp *m,
               struct model_metadata *meta, struct error *err)
{
    struct header h = {0};
    off_t size;

    memset(m, 0, sizeof *m);
    FILE *file = open_regular_file(path, &size, err);
    if (!file)
        return -1;
    struct reader r = {file, path, crc32(0L, Z_NULL, 0)};
    int status = read_header(&r, size, &h, err);
    if (status == 0)
        status = check_header(path, &h, expected, size, err);
    if (status == 0)
        status = read_body(&r, &h, m, err);
    if (status == 0)
        status = check_params_finite(path, m, err);
    if (status == 0)
        status = check_learning_rate(path, h.meta.lr, err);
    if (status == 0)
        status = check_epochs(path, h.meta.epochs_done, err);
    fclose(file);
    if (status != 0) {
        mlp_free(m);
        return -1;
    }
    if (meta)
        *meta = h.meta;
    return 0;
}
