/* The model format of doc/model-format.md.  Every multi-byte field goes
 * through store_le/load_le, byte by byte, so the bytes are the same on any
 * host; the reader trusts nothing in the header until it has checked it
 * against the real length of the file, and allocates only then.  One set of
 * checks serves saving and loading, so that every file model_save writes
 * loads, and model_load refuses whatever model_save would not write. */
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

/* The activation, loss, optimiser and schedule fields hold the enum's value
 * plus one, so that zero (what a zeroed header holds) is no valid code. */
_Static_assert(ACTIVATION_RELU == 0 && ACTIVATION_TANH == 1 && ACTIVATION_SIGMOID == 2,
               "activation codes are the enum's values plus one");
_Static_assert(LOSS_MSE == 0 && LOSS_XENT == 1, "loss codes are the enum's values plus one");
_Static_assert(OPTIMIZER_SGD == 0 && OPTIMIZER_ADAM == 1 && OPTIMIZER_ADAMW == 2,
               "optimizer codes are the enum's values plus one");
_Static_assert(SCHEDULE_CONSTANT == 0 && SCHEDULE_COSINE == 1 && SCHEDULE_STEP == 2,
               "schedule codes are the enum's values plus one");

static const char MAGIC[8] = {'M', 'N', 'I', 'S', 'T', 'O', 'M', 'P'};

/* Version 1 holds an n_in-H-n_out network and the lr; version 2 adds the
 * data fingerprint of checkpoints; version 3, the only one written, holds
 * any layer list, the training settings and, in checkpoints, the training
 * state. */
enum { VERSION_PLAIN = 1, VERSION_FINGERPRINT = 2, VERSION_LAYERS = 3 };

/* Codes in the kind field.  Zero is left invalid so that a zeroed header
 * is refused. */
enum { KIND_CODE_MODEL = 1, KIND_CODE_CHECKPOINT = 2 };

/* The precision field holds the bytes per parameter. */
enum { PRECISION_CODE_F32 = 4, PRECISION_CODE_F64 = 8 };

enum {
    PREFIX_BYTES = 12,  /* magic and version, where every version has them */
    /* Versions 1 and 2. */
    LEGACY_OFFSET_KIND = 12,
    LEGACY_OFFSET_N_IN = 16,
    LEGACY_OFFSET_N_HIDDEN = 20,
    LEGACY_OFFSET_N_OUT = 24,
    LEGACY_OFFSET_PRECISION = 28,
    LEGACY_OFFSET_EPOCHS_DONE = 32,
    LEGACY_OFFSET_SEED = 40,
    LEGACY_OFFSET_LR = 48,
    LEGACY_OFFSET_TRAIN_SIZE = 56,
    LEGACY_OFFSET_TEST_SIZE = 64,
    LEGACY_HEADER_BYTES = 72,
    FINGERPRINT_BYTES = 8,  /* version 2: train_crc, test_crc after the header */
    /* Version 3: the fixed fields, then one u32 per width, then in
     * checkpoints the training state. */
    HEADER_BYTES = 148,
    WIDTH_BYTES = 4,
    STATE_BYTES = 44 + 4 * MT19937_N,
    CRC_BYTES = 4,
};

/* Arrays are encoded and decoded through a buffer of this size, so that
 * zlib and stdio see large blocks whatever the size of the network. */
enum { CHUNK_BYTES = 1 << 16 };

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

static uint64_t f64_bits(double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

static double f64_from_bits(uint64_t bits)
{
    double value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* Two's complement, spelt out because converting an out-of-range unsigned
 * value to a signed type is implementation-defined. */
static int64_t i64_from_bits(uint64_t bits)
{
    return bits <= INT64_MAX ? (int64_t)bits : -(int64_t)(UINT64_MAX - bits) - 1;
}

/* Writes fields one after the other into a buffer. */
struct encoder {
    uint8_t *at;
};

static void put(struct encoder *e, uint64_t value, int bytes)
{
    store_le(e->at, value, bytes);
    e->at += bytes;
}

static void put_f64(struct encoder *e, double value)
{
    put(e, f64_bits(value), 8);
}

/* Reads fields one after the other from a buffer. */
struct decoder {
    const uint8_t *at;
};

static uint64_t take(struct decoder *d, int bytes)
{
    const uint64_t value = load_le(d->at, bytes);
    d->at += bytes;
    return value;
}

static double take_f64(struct decoder *d)
{
    return f64_from_bits(take(d, 8));
}

/* Element i of an arena of the given precision, as a double. */
static double element(const void *arena, enum precision precision, size_t i)
{
    return precision == PRECISION_F64 ? ((const double *)arena)[i] : ((const float *)arena)[i];
}

static void encode_element(uint8_t *out, const void *arena, enum precision precision, size_t i)
{
    if (precision == PRECISION_F64) {
        store_le(out, f64_bits(((const double *)arena)[i]), 8);
    } else {
        uint32_t bits;
        memcpy(&bits, (const float *)arena + i, sizeof bits);
        store_le(out, bits, 4);
    }
}

static void decode_element(const uint8_t *in, void *arena, enum precision precision, size_t i)
{
    if (precision == PRECISION_F64) {
        ((double *)arena)[i] = f64_from_bits(load_le(in, 8));
    } else {
        const uint32_t bits = (uint32_t)load_le(in, 4);
        memcpy((float *)arena + i, &bits, sizeof bits);
    }
}

/* ------------------------------------------------------------ what a file holds */

/* The moment arenas of an optimiser state, in file order: Adam's first
 * moment m, then its second moment v; SGD's velocity. */
struct moment {
    const char *name;
    void *arena;
    bool nonnegative;  /* a second moment is a running mean of squares */
};

static size_t moments_of(const struct optimizer *o, const struct optimizer_state *s,
                         struct moment out[2])
{
    const size_t count = optimizer_moment_count(o);
    if (count == 2) {
        out[0] = (struct moment){"first moment", s->first_moment, false};
        out[1] = (struct moment){"second moment", s->velocity, true};
    } else if (count == 1) {
        out[0] = (struct moment){"velocity", s->velocity, false};
    }
    return count;
}

/* Names element i of the parameter arena as tensor[index] ("W2[7]"). */
static void element_name(const struct mlp *m, size_t i, char *text, size_t size)
{
    size_t l = m->n_layers - 1;
    while (l > 0 && mlp_layer(m, l).weights > i)
        l--;
    const struct mlp_layer layer = mlp_layer(m, l);
    if (i < layer.bias)
        snprintf(text, size, "W%zu[%zu]", l + 1, i - layer.weights);
    else
        snprintf(text, size, "b%zu[%zu]", l + 1, i - layer.bias);
}

/* Room for "784-...-10" with MLP_MAX_LAYERS + 1 widths of up to 7 digits. */
enum { WIDTHS_TEXT = 8 * (MLP_MAX_LAYERS + 1) + 1 };

/* ------------------------------------------------------------ checks shared by save and load */

/* `subject` starts every message: the file name when loading, "cannot save
 * NAME" when saving. */

struct code_field {
    const char *name;
    uint32_t count;       /* valid codes: 1 .. count */
    const char *meaning;
};

static const struct code_field ACTIVATION_CODES = {"activation", 3, "1 relu, 2 tanh, 3 sigmoid"};
static const struct code_field LOSS_CODES = {"loss", 2, "1 mse, 2 xent"};
static const struct code_field OPTIMIZER_CODES = {"optimizer", 3, "1 sgd, 2 adam, 3 adamw"};
static const struct code_field SCHEDULE_CODES = {"schedule", 3, "1 constant, 2 cosine, 3 step"};

/* The code of an enum's value, which a caller's bug may have put out of
 * range (an unsigned wrap then makes it an invalid code too). */
static uint32_t code_of(int value)
{
    return (uint32_t)value + 1u;
}

static int check_code(const char *subject, const struct code_field *f, uint32_t code,
                      struct error *err)
{
    if (code < 1 || code > f->count)
        return error_set(err, "%s: unknown %s code %" PRIu32 " (%s)", subject, f->name, code,
                         f->meaning);
    return 0;
}

static int check_flag(const char *subject, const char *name, uint64_t value, struct error *err)
{
    if (value > 1)
        return error_set(err, "%s: the %s flag is %" PRIu64 ", not 0 or 1", subject, name, value);
    return 0;
}

/* The layer list and the codes of a network (the parameters aside). */
static int check_shape(const char *subject, const struct mlp *m, struct error *err)
{
    char widths[WIDTHS_TEXT];

    if (m->n_layers < 1 || m->n_layers > MLP_MAX_LAYERS)
        return error_set(err, "%s: %zu layers of weights, but a network has 1 to %d", subject,
                         m->n_layers, MLP_MAX_LAYERS);
    for (size_t l = 0; l <= m->n_layers; l++)
        if (m->widths[l] < 1 || m->widths[l] > MLP_MAX_WIDTH) {
            mlp_format_widths(m, widths, sizeof widths);
            return error_set(err, "%s: layer widths %s are invalid: each must be between 1 and %u",
                             subject, widths, MLP_MAX_WIDTH);
        }
    if (m->precision != PRECISION_F32 && m->precision != PRECISION_F64)
        return error_set(err, "%s: unknown precision %d", subject, (int)m->precision);
    if (check_code(subject, &ACTIVATION_CODES, code_of((int)m->activation), err) != 0 ||
        check_code(subject, &LOSS_CODES, code_of((int)m->loss), err) != 0)
        return -1;
    return 0;
}

static int check_epochs(const char *subject, const char *name, uint64_t epochs,
                        struct error *err)
{
    if (epochs > MODEL_FILE_MAX_EPOCHS)
        return error_set(err, "%s: %s is %" PRIu64 ", more than the limit of %u", subject, name,
                         epochs, MODEL_FILE_MAX_EPOCHS);
    return 0;
}

static int check_nonnegative(const char *subject, const char *name, double value,
                             struct error *err)
{
    if (!(isfinite(value) && value >= 0))
        return error_set(err, "%s: %s %g is invalid: it must be finite and >= 0", subject, name,
                         value);
    return 0;
}

static int check_positive(const char *subject, const char *name, double value,
                          struct error *err)
{
    if (!(isfinite(value) && value > 0))
        return error_set(err, "%s: %s %g is invalid: it must be finite and > 0", subject, name,
                         value);
    return 0;
}

/* The momentum and Adam's betas. */
static int check_fraction(const char *subject, const char *name, double value,
                          struct error *err)
{
    if (!(value >= 0 && value < 1))
        return error_set(err, "%s: %s %g is invalid: it must lie in [0, 1)", subject, name, value);
    return 0;
}

/* The history and the training settings, in the ranges the options allow
 * (doc/mnist-omp.1): lr and weight decay finite and >= 0, the momentum and
 * the betas in [0, 1), eps finite and > 0, Nesterov only for SGD with
 * momentum, the step schedule with E >= 1 and G > 0.  step_gamma is 0 where
 * no step schedule set it. */
static int check_settings(const char *subject, const struct model_metadata *meta,
                          struct error *err)
{
    const struct training *t = &meta->training;
    const struct optimizer *o = &t->optimizer;
    const struct schedule *s = &t->schedule;

    if (check_epochs(subject, "epochs_done", meta->epochs_done, err) != 0 ||
        check_epochs(subject, "the planned number of epochs", t->epochs, err) != 0 ||
        check_epochs(subject, "step_epochs", s->step_epochs, err) != 0 ||
        check_code(subject, &OPTIMIZER_CODES, code_of((int)o->kind), err) != 0 ||
        check_code(subject, &SCHEDULE_CODES, code_of((int)s->kind), err) != 0 ||
        check_nonnegative(subject, "learning rate", s->lr, err) != 0 ||
        check_fraction(subject, "momentum", o->momentum, err) != 0 ||
        check_nonnegative(subject, "weight decay", o->weight_decay, err) != 0 ||
        check_fraction(subject, "beta1", o->beta1, err) != 0 ||
        check_fraction(subject, "beta2", o->beta2, err) != 0 ||
        check_positive(subject, "eps", o->eps, err) != 0 ||
        check_nonnegative(subject, "step_gamma", s->step_gamma, err) != 0)
        return -1;
    if (o->nesterov && !(o->kind == OPTIMIZER_SGD && o->momentum > 0))
        return error_set(err, "%s: Nesterov momentum needs sgd with a momentum > 0, not %s with "
                         "momentum %g", subject, optimizer_name(o->kind), o->momentum);
    if (s->kind == SCHEDULE_STEP && (s->step_epochs < 1 || !(s->step_gamma > 0)))
        return error_set(err, "%s: the step schedule needs step_epochs >= 1 and step_gamma > 0 "
                         "(they are %u and %g)", subject, s->step_epochs, s->step_gamma);
    return 0;
}

int model_metadata_check(const char *subject, const struct model_metadata *meta,
                         struct error *err)
{
    return check_settings(subject, meta, err);
}

/* The training state of a checkpoint, its moments aside. */
static int check_state(const char *subject, const struct model_metadata *meta,
                       const struct training_state *s, struct error *err)
{
    const struct optimizer_state *o = &s->optimizer;

    if (s->epoch > meta->epochs_done)
        return error_set(err, "%s: the training state is at epoch %u, after the %" PRIu64
                         " epochs done", subject, s->epoch, meta->epochs_done);
    if (s->epoch == 0 && o->step != 0)
        return error_set(err, "%s: the optimiser is at step %" PRIu64 " before any epoch",
                         subject, o->step);
    if (!(o->p1 >= 0 && o->p1 <= 1) || !(o->p2 >= 0 && o->p2 <= 1))
        return error_set(err, "%s: the optimiser's p1 = %g and p2 = %g (powers of the betas) "
                         "must lie in [0, 1]", subject, o->p1, o->p2);
    if (o->step == 0 && (o->p1 != 1 || o->p2 != 1))
        return error_set(err, "%s: before the first step the optimiser's p1 and p2 are 1, not "
                         "%g and %g", subject, o->p1, o->p2);
    if (s->rng.index < 0 || s->rng.index > MT19937_N)
        return error_set(err, "%s: the random stream's index is %d, outside 0..%d", subject,
                         s->rng.index, MT19937_N);
    for (size_t i = 0; i < MT19937_N; i++)
        if (s->rng.state[i] != 0)
            return 0;
    return error_set(err, "%s: the random stream's state is all zeros, which no seeded "
                     "MT19937 reaches", subject);
}

/* One arena: present, and every element finite (and >= 0 where it must be). */
static int check_arena(const char *subject, const struct mlp *m, const char *name,
                       const void *arena, bool nonnegative, struct error *err)
{
    char where[64];

    if (!arena)
        return error_set(err, "%s: there is no %s array", subject, name);
    const size_t count = mlp_param_count(m);
    for (size_t i = 0; i < count; i++) {
        const double value = element(arena, m->precision, i);
        if (isfinite(value) && !(nonnegative && value < 0))
            continue;
        element_name(m, i, where, sizeof where);
        return error_set(err, "%s: %s %s is %s (%g)", subject, name, where,
                         isfinite(value) ? "negative" : "not finite", value);
    }
    return 0;
}

/* The parameters, and the moments of state (NULL for a model). */
static int check_arrays(const char *subject, const struct mlp *m, const struct optimizer *o,
                        const struct optimizer_state *state, struct error *err)
{
    struct moment moments[2] = {{0}};

    if (check_arena(subject, m, "parameter", m->params, false, err) != 0)
        return -1;
    const size_t count = state ? moments_of(o, state, moments) : 0;
    for (size_t k = 0; k < count; k++)
        if (check_arena(subject, m, moments[k].name, moments[k].arena, moments[k].nonnegative,
                        err) != 0)
            return -1;
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

static void write_arena(struct writer *w, const void *arena, enum precision precision,
                        size_t count)
{
    const size_t width = precision_size(precision), per_chunk = CHUNK_BYTES / width;
    uint8_t chunk[CHUNK_BYTES];
    for (size_t first = 0; first < count; first += per_chunk) {
        const size_t n = count - first < per_chunk ? count - first : per_chunk;
        for (size_t i = 0; i < n; i++)
            encode_element(chunk + i * width, arena, precision, first + i);
        write_bytes(w, chunk, n * width);
    }
}

/* The fixed fields and the widths; returns the bytes encoded. */
static size_t encode_header(uint8_t *out, bool checkpoint, const struct mlp *m,
                            const struct model_metadata *meta)
{
    const struct training *t = &meta->training;
    struct encoder e = {out};

    memcpy(e.at, MAGIC, sizeof MAGIC);
    e.at += sizeof MAGIC;
    put(&e, VERSION_LAYERS, 4);
    put(&e, checkpoint ? KIND_CODE_CHECKPOINT : KIND_CODE_MODEL, 4);
    put(&e, m->precision == PRECISION_F64 ? PRECISION_CODE_F64 : PRECISION_CODE_F32, 4);
    put(&e, code_of((int)m->activation), 4);
    put(&e, code_of((int)m->loss), 4);
    put(&e, code_of((int)t->optimizer.kind), 4);
    put(&e, code_of((int)t->schedule.kind), 4);
    put(&e, t->optimizer.nesterov, 4);
    put(&e, meta->epochs_done, 8);
    put(&e, (uint64_t)meta->seed, 8);
    put(&e, meta->train_size, 8);
    put(&e, meta->test_size, 8);
    put(&e, t->batch, 8);
    put(&e, t->epochs, 4);
    put(&e, t->schedule.step_epochs, 4);
    put_f64(&e, t->schedule.lr);
    put_f64(&e, t->optimizer.momentum);
    put_f64(&e, t->optimizer.weight_decay);
    put_f64(&e, t->optimizer.beta1);
    put_f64(&e, t->optimizer.beta2);
    put_f64(&e, t->optimizer.eps);
    put_f64(&e, t->schedule.step_gamma);
    put(&e, m->n_layers, 4);
    for (size_t l = 0; l <= m->n_layers; l++)
        put(&e, m->widths[l], WIDTH_BYTES);
    return (size_t)(e.at - out);
}

static void encode_state(uint8_t out[STATE_BYTES], const struct model_metadata *meta,
                         const struct training_state *s)
{
    struct encoder e = {out};

    put(&e, meta->has_fingerprint, 4);
    put(&e, meta->has_fingerprint ? meta->train_crc : 0, 4);
    put(&e, meta->has_fingerprint ? meta->test_crc : 0, 4);
    put(&e, s->epoch, 4);
    put(&e, s->optimizer.step, 8);
    put_f64(&e, s->optimizer.p1);
    put_f64(&e, s->optimizer.p2);
    put(&e, (uint32_t)s->rng.index, 4);
    for (size_t i = 0; i < MT19937_N; i++)
        put(&e, s->rng.state[i], 4);
}

static void write_contents(struct writer *w, bool checkpoint, const struct mlp *m,
                           const struct model_metadata *meta, const struct training_state *s)
{
    uint8_t header[HEADER_BYTES + WIDTH_BYTES * (MLP_MAX_LAYERS + 1)], state[STATE_BYTES];
    uint8_t crc[CRC_BYTES];
    struct moment moments[2] = {{0}};
    const size_t count = mlp_param_count(m);

    write_bytes(w, header, encode_header(header, checkpoint, m, meta));
    if (checkpoint) {
        encode_state(state, meta, s);
        write_bytes(w, state, sizeof state);
    }
    write_arena(w, m->params, m->precision, count);
    const size_t n_moments = checkpoint ? moments_of(&meta->training.optimizer, &s->optimizer,
                                                     moments)
                                        : 0;
    for (size_t k = 0; k < n_moments; k++)
        write_arena(w, moments[k].arena, m->precision, count);
    store_le(crc, w->crc, CRC_BYTES);
    write_bytes(w, crc, sizeof crc);
}

int model_save(const char *path, enum model_kind kind, const struct mlp *m,
               const struct model_metadata *meta, const struct training_state *state,
               struct error *err)
{
    char subject[PATH_MAX + 16];
    struct atomic_file f;

    snprintf(subject, sizeof subject, "cannot save %s", path);
    if (kind != MODEL_FILE_MODEL && kind != MODEL_FILE_CHECKPOINT)
        return error_set(err, "%s: unknown model file kind %d", subject, (int)kind);
    const bool checkpoint = kind == MODEL_FILE_CHECKPOINT;
    if (checkpoint && !state)
        return error_set(err, "%s: a checkpoint needs the training state", subject);
    if (check_shape(subject, m, err) != 0 || check_settings(subject, meta, err) != 0 ||
        (checkpoint && check_state(subject, meta, state, err) != 0) ||
        check_arrays(subject, m, &meta->training.optimizer,
                     checkpoint ? &state->optimizer : NULL, err) != 0 ||
        atomic_file_open(&f, path, err) != 0)
        return -1;
    struct writer w = {f.stream, crc32(0L, Z_NULL, 0), 0};
    write_contents(&w, checkpoint, m, meta, state);
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
    off_t size;
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

/* What a file holds, as it is read. */
struct contents {
    uint32_t version;
    bool checkpoint;
    struct mlp m;                 /* the shape first, the parameters once they are read */
    struct model_metadata meta;
    struct training_state state;  /* checkpoints */
};

/* Refuses a file shorter than `needed` bytes before reading a part of it. */
static int check_room(const struct reader *r, uint64_t needed, const char *part,
                      struct error *err)
{
    if ((uint64_t)r->size < needed)
        return error_set(err, "%s: truncated: %lld bytes, shorter than %s (%" PRIu64 " bytes)",
                         r->path, (long long)r->size, part, needed);
    return 0;
}

/* Checks the magic and the version: what follows the version differs from
 * one version to the next, so nothing after it is interpreted before the
 * version is known. */
static int read_prefix(struct reader *r, uint8_t prefix[PREFIX_BYTES], uint32_t *version,
                       struct error *err)
{
    const size_t available = r->size < PREFIX_BYTES ? (size_t)r->size : PREFIX_BYTES;

    if (r->size == 0)
        return error_set(err, "%s: empty file, not an mnist-omp model file", r->path);
    if (read_bytes(r, prefix, available, err) != 0)
        return -1;
    if (memcmp(prefix, MAGIC, available < sizeof MAGIC ? available : sizeof MAGIC) != 0)
        return error_set(err, "%s: not an mnist-omp model file (it does not start with \"%.8s\")",
                         r->path, MAGIC);
    if (available < PREFIX_BYTES)
        return check_room(r, PREFIX_BYTES, "the magic and the version", err);
    *version = (uint32_t)load_le(prefix + sizeof MAGIC, 4);
    if (*version < VERSION_PLAIN || *version > VERSION_LAYERS)
        return error_set(err, "%s: unsupported version %" PRIu32
                         " of the model format (this program reads versions %d to %d)",
                         r->path, *version, VERSION_PLAIN, VERSION_LAYERS);
    return 0;
}

static int decode_kind(const char *path, uint32_t code, bool *checkpoint, struct error *err)
{
    if (code != KIND_CODE_MODEL && code != KIND_CODE_CHECKPOINT)
        return error_set(err, "%s: unknown file kind %" PRIu32 " (%d is a model, %d a checkpoint)",
                         path, code, KIND_CODE_MODEL, KIND_CODE_CHECKPOINT);
    *checkpoint = code == KIND_CODE_CHECKPOINT;
    return 0;
}

static int decode_precision(const char *path, uint32_t code, enum precision *precision,
                            struct error *err)
{
    if (code != PRECISION_CODE_F32 && code != PRECISION_CODE_F64)
        return error_set(err, "%s: unknown precision code %" PRIu32 " (%d is float32, %d float64)",
                         path, code, PRECISION_CODE_F32, PRECISION_CODE_F64);
    *precision = code == PRECISION_CODE_F64 ? PRECISION_F64 : PRECISION_F32;
    return 0;
}

/* The settings a version-1 or -2 file implies (modelfile.h): the reference
 * experiment's full-batch SGD with the file's lr. */
static struct training legacy_training(double lr, uint64_t epochs_done)
{
    struct training t = {0};
    t.optimizer = (struct optimizer){OPTIMIZER_SGD, 0, false, 0, 0.9, 0.999, 1e-8};
    t.schedule = (struct schedule){SCHEDULE_CONSTANT, lr, 0, 0};
    t.epochs = epochs_done <= MODEL_FILE_MAX_EPOCHS ? (unsigned)epochs_done : 0;
    return t;
}

/* The 72-byte header of versions 1 and 2: a 784-H-10-like network of two
 * layers, ReLU and MSE. */
static int read_legacy_header(struct reader *r, const uint8_t prefix[PREFIX_BYTES],
                              struct contents *c, struct error *err)
{
    uint8_t bytes[LEGACY_HEADER_BYTES];

    if (check_room(r, LEGACY_HEADER_BYTES, "the header", err) != 0)
        return -1;
    memcpy(bytes, prefix, PREFIX_BYTES);
    if (read_bytes(r, bytes + PREFIX_BYTES, sizeof bytes - PREFIX_BYTES, err) != 0 ||
        decode_kind(r->path, (uint32_t)load_le(bytes + LEGACY_OFFSET_KIND, 4), &c->checkpoint,
                    err) != 0)
        return -1;
    c->m.n_layers = 2;
    c->m.widths[0] = (size_t)load_le(bytes + LEGACY_OFFSET_N_IN, 4);
    c->m.widths[1] = (size_t)load_le(bytes + LEGACY_OFFSET_N_HIDDEN, 4);
    c->m.widths[2] = (size_t)load_le(bytes + LEGACY_OFFSET_N_OUT, 4);
    c->m.activation = ACTIVATION_RELU;
    c->m.loss = LOSS_MSE;
    if (check_shape(r->path, &c->m, err) != 0 ||
        decode_precision(r->path, (uint32_t)load_le(bytes + LEGACY_OFFSET_PRECISION, 4),
                         &c->m.precision, err) != 0)
        return -1;
    c->meta.epochs_done = load_le(bytes + LEGACY_OFFSET_EPOCHS_DONE, 8);
    c->meta.seed = i64_from_bits(load_le(bytes + LEGACY_OFFSET_SEED, 8));
    c->meta.train_size = load_le(bytes + LEGACY_OFFSET_TRAIN_SIZE, 8);
    c->meta.test_size = load_le(bytes + LEGACY_OFFSET_TEST_SIZE, 8);
    c->meta.training = legacy_training(f64_from_bits(load_le(bytes + LEGACY_OFFSET_LR, 8)),
                                       c->meta.epochs_done);
    if (c->version == VERSION_FINGERPRINT && !c->checkpoint)
        return error_set(err, "%s: a version %d file must be a checkpoint (kind %d), not kind %d",
                         r->path, VERSION_FINGERPRINT, KIND_CODE_CHECKPOINT, KIND_CODE_MODEL);
    return 0;
}

/* A code field decoded into its enum's value. */
static int take_code(struct decoder *d, const char *path, const struct code_field *f,
                     int *value, struct error *err)
{
    const uint32_t code = (uint32_t)take(d, 4);
    if (check_code(path, f, code, err) != 0)
        return -1;
    *value = (int)code - 1;
    return 0;
}

/* Version 3's fixed fields and widths.  The codes are checked here, since
 * the layout depends on them; the values are checked once the checksum has
 * shown that they are what was written. */
static int read_layers_header(struct reader *r, const uint8_t prefix[PREFIX_BYTES],
                              struct contents *c, struct error *err)
{
    uint8_t bytes[HEADER_BYTES + WIDTH_BYTES * (MLP_MAX_LAYERS + 1)];
    struct decoder d = {bytes + PREFIX_BYTES};
    struct training *t = &c->meta.training;
    int activation, loss, optimizer, schedule;

    if (check_room(r, HEADER_BYTES, "the header", err) != 0)
        return -1;
    memcpy(bytes, prefix, PREFIX_BYTES);
    if (read_bytes(r, bytes + PREFIX_BYTES, HEADER_BYTES - PREFIX_BYTES, err) != 0 ||
        decode_kind(r->path, (uint32_t)take(&d, 4), &c->checkpoint, err) != 0 ||
        decode_precision(r->path, (uint32_t)take(&d, 4), &c->m.precision, err) != 0 ||
        take_code(&d, r->path, &ACTIVATION_CODES, &activation, err) != 0 ||
        take_code(&d, r->path, &LOSS_CODES, &loss, err) != 0 ||
        take_code(&d, r->path, &OPTIMIZER_CODES, &optimizer, err) != 0 ||
        take_code(&d, r->path, &SCHEDULE_CODES, &schedule, err) != 0)
        return -1;
    c->m.activation = (enum activation)activation;
    c->m.loss = (enum loss)loss;
    t->optimizer.kind = (enum optimizer_kind)optimizer;
    t->schedule.kind = (enum schedule_kind)schedule;
    const uint64_t nesterov = take(&d, 4);
    if (check_flag(r->path, "nesterov", nesterov, err) != 0)
        return -1;
    t->optimizer.nesterov = nesterov;
    c->meta.epochs_done = take(&d, 8);
    c->meta.seed = i64_from_bits(take(&d, 8));
    c->meta.train_size = take(&d, 8);
    c->meta.test_size = take(&d, 8);
    const uint64_t batch = take(&d, 8);
    if (batch > SIZE_MAX)
        return error_set(err, "%s: batch %" PRIu64 " is too large for this machine", r->path,
                         batch);
    t->batch = (size_t)batch;
    t->epochs = (unsigned)take(&d, 4);
    t->schedule.step_epochs = (unsigned)take(&d, 4);
    t->schedule.lr = take_f64(&d);
    t->optimizer.momentum = take_f64(&d);
    t->optimizer.weight_decay = take_f64(&d);
    t->optimizer.beta1 = take_f64(&d);
    t->optimizer.beta2 = take_f64(&d);
    t->optimizer.eps = take_f64(&d);
    t->schedule.step_gamma = take_f64(&d);
    const uint32_t n_layers = (uint32_t)take(&d, 4);
    c->m.n_layers = n_layers;
    if (n_layers < 1 || n_layers > MLP_MAX_LAYERS)
        return check_shape(r->path, &c->m, err);
    const size_t width_bytes = WIDTH_BYTES * ((size_t)n_layers + 1);
    if (check_room(r, HEADER_BYTES + width_bytes, "the header with its widths", err) != 0 ||
        read_bytes(r, bytes + HEADER_BYTES, width_bytes, err) != 0)
        return -1;
    for (size_t l = 0; l <= n_layers; l++)
        c->m.widths[l] = (size_t)take(&d, WIDTH_BYTES);
    return check_shape(r->path, &c->m, err);
}

/* The bytes a file of c's shape must have, and what it is, for messages.
 * With widths <= 2^20 and <= 64 layers, the parameter count is < 2^47, and
 * three arenas of doubles cannot overflow 64 bits. */
static uint64_t expected_length(const struct contents *c, char *what, size_t size)
{
    const uint64_t count = mlp_param_count(&c->m), width = precision_size(c->m.precision);
    char widths[WIDTHS_TEXT];
    uint64_t length, arenas = 1;

    mlp_format_widths(&c->m, widths, sizeof widths);
    if (c->version == VERSION_LAYERS) {
        length = HEADER_BYTES + WIDTH_BYTES * ((uint64_t)c->m.n_layers + 1);
        if (c->checkpoint) {
            length += STATE_BYTES;
            arenas += optimizer_moment_count(&c->meta.training.optimizer);
        }
    } else {
        length = LEGACY_HEADER_BYTES + (c->version == VERSION_FINGERPRINT ? FINGERPRINT_BYTES : 0);
    }
    if (arenas > 1)
        snprintf(what, size, "a %s %s checkpoint with %" PRIu64 " moment array%s", widths,
                 precision_name(c->m.precision), arenas - 1, arenas > 2 ? "s" : "");
    else
        snprintf(what, size, "a %s %s %s file", widths, precision_name(c->m.precision),
                 c->checkpoint ? "checkpoint" : "model");
    return length + count * width * arenas + CRC_BYTES;
}

/* Only with the length known to match bytes that really exist is memory
 * allocated, so a header claiming a huge network in a small file is refused
 * for what it is. */
static int check_length(const struct reader *r, const struct contents *c, struct error *err)
{
    char what[WIDTHS_TEXT + 96];
    const uint64_t expected = expected_length(c, what, sizeof what);
    const uint64_t actual = (uint64_t)r->size;

    if (actual < expected)
        return error_set(err, "%s: truncated: %" PRIu64 " bytes, but %s has %" PRIu64, r->path,
                         actual, what, expected);
    if (actual > expected)
        return error_set(err, "%s: %" PRIu64 " trailing bytes after the end of the model (%s "
                         "has %" PRIu64 ")", r->path, actual - expected, what, expected);
    return 0;
}

static int read_fingerprint(struct reader *r, struct contents *c, struct error *err)
{
    uint8_t bytes[FINGERPRINT_BYTES];
    if (read_bytes(r, bytes, sizeof bytes, err) != 0)
        return -1;
    c->meta.has_fingerprint = true;
    c->meta.train_crc = (uint32_t)load_le(bytes, 4);
    c->meta.test_crc = (uint32_t)load_le(bytes + 4, 4);
    return 0;
}

/* Version 3's training state; its values are checked after the checksum. */
static int read_state(struct reader *r, struct contents *c, struct error *err)
{
    uint8_t bytes[STATE_BYTES];
    struct decoder d = {bytes};
    struct training_state *s = &c->state;

    if (read_bytes(r, bytes, sizeof bytes, err) != 0)
        return -1;
    const uint64_t fingerprint = take(&d, 4);
    if (check_flag(r->path, "fingerprint", fingerprint, err) != 0)
        return -1;
    c->meta.has_fingerprint = fingerprint;
    c->meta.train_crc = (uint32_t)take(&d, 4);
    c->meta.test_crc = (uint32_t)take(&d, 4);
    if (!fingerprint && (c->meta.train_crc || c->meta.test_crc))
        return error_set(err, "%s: fingerprint CRC-32s %08" PRIx32 " and %08" PRIx32
                         " with the fingerprint flag 0", r->path, c->meta.train_crc,
                         c->meta.test_crc);
    const uint64_t epoch = take(&d, 4);
    if (check_epochs(r->path, "the training state's epoch", epoch, err) != 0)
        return -1;
    s->epoch = (unsigned)epoch;
    s->optimizer.step = take(&d, 8);
    s->optimizer.p1 = take_f64(&d);
    s->optimizer.p2 = take_f64(&d);
    const uint32_t index = (uint32_t)take(&d, 4);
    if (index > MT19937_N)
        return error_set(err, "%s: the random stream's index is %" PRIu32 ", outside 0..%d",
                         r->path, index, MT19937_N);
    s->rng.index = (int)index;
    for (size_t i = 0; i < MT19937_N; i++)
        s->rng.state[i] = (uint32_t)take(&d, 4);
    c->meta.has_rng_state = true;
    return 0;
}

static int read_arena(struct reader *r, void *arena, enum precision precision, size_t count,
                      struct error *err)
{
    const size_t width = precision_size(precision), per_chunk = CHUNK_BYTES / width;
    uint8_t chunk[CHUNK_BYTES];
    for (size_t first = 0; first < count; first += per_chunk) {
        const size_t n = count - first < per_chunk ? count - first : per_chunk;
        if (read_bytes(r, chunk, n * width, err) != 0)
            return -1;
        for (size_t i = 0; i < n; i++)
            decode_element(chunk + i * width, arena, precision, first + i);
    }
    return 0;
}

/* Allocates s's moments as optimizer_state_create does, keeping the step,
 * p1 and p2 already read (which it starts afresh). */
static int create_moments(struct optimizer_state *s, const struct optimizer *o, size_t count,
                          enum precision precision, struct error *err)
{
    const struct optimizer_state read = *s;
    if (optimizer_state_create(s, o, count, precision, err) != 0)
        return -1;
    s->step = read.step;
    s->p1 = read.p1;
    s->p2 = read.p2;
    return 0;
}

/* Allocates the network (and a checkpoint's moments), fills them and
 * verifies the CRC. */
static int read_arrays(struct reader *r, struct contents *c, struct error *err)
{
    const struct optimizer *o = &c->meta.training.optimizer;
    const size_t n_moments = c->version == VERSION_LAYERS && c->checkpoint
                                 ? optimizer_moment_count(o)
                                 : 0;
    struct error cause;
    struct moment moments[2] = {{0}};
    size_t count;
    uint8_t stored[CRC_BYTES];

    const struct mlp shape = c->m;  /* mlp_create clears c->m first */

    if (mlp_check_shape(shape.n_layers, shape.widths, shape.precision, 1 + n_moments, &count,
                        &cause) != 0 ||
        mlp_create(&c->m, shape.n_layers, shape.widths, shape.activation, shape.loss,
                   shape.precision, &cause) != 0 ||
        (c->checkpoint && create_moments(&c->state.optimizer, o, count, c->m.precision,
                                         &cause) != 0))
        return error_set(err, "%s: %s", r->path, cause.msg);
    if (read_arena(r, c->m.params, c->m.precision, count, err) != 0)
        return -1;
    if (n_moments)
        moments_of(o, &c->state.optimizer, moments);
    for (size_t k = 0; k < n_moments; k++)
        if (read_arena(r, moments[k].arena, c->m.precision, count, err) != 0)
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

/* A version-1 or -2 checkpoint's state, as modelfile.h describes it: full
 * batch SGD takes one step per epoch and keeps no moments; the stream is
 * left for the caller to re-derive. */
static void fill_legacy_state(struct contents *c)
{
    c->state.epoch = (unsigned)c->meta.epochs_done;
    c->state.optimizer.step = c->meta.epochs_done;
    c->state.optimizer.p1 = 1;
    c->state.optimizer.p2 = 1;
}

/* The checks of values, after the checksum: they catch files that were
 * written wrongly rather than damaged afterwards. */
static int check_values(const char *path, const struct contents *c, struct error *err)
{
    if (check_settings(path, &c->meta, err) != 0)
        return -1;
    if (c->checkpoint && c->version == VERSION_LAYERS &&
        check_state(path, &c->meta, &c->state, err) != 0)
        return -1;
    return check_arrays(path, &c->m, &c->meta.training.optimizer,
                        c->checkpoint ? &c->state.optimizer : NULL, err);
}

static int read_file(struct reader *r, enum model_kind expected, struct contents *c,
                     struct error *err)
{
    uint8_t prefix[PREFIX_BYTES];

    if (read_prefix(r, prefix, &c->version, err) != 0 ||
        (c->version == VERSION_LAYERS ? read_layers_header(r, prefix, c, err)
                                      : read_legacy_header(r, prefix, c, err)) != 0 ||
        check_length(r, c, err) != 0)
        return -1;
    if (expected == MODEL_FILE_CHECKPOINT && !c->checkpoint)
        return error_set(err, "%s: is a model file, not a checkpoint: training can only resume "
                         "from a checkpoint", r->path);
    if ((c->version == VERSION_FINGERPRINT && read_fingerprint(r, c, err) != 0) ||
        (c->version == VERSION_LAYERS && c->checkpoint && read_state(r, c, err) != 0) ||
        read_arrays(r, c, err) != 0 || check_values(r->path, c, err) != 0)
        return -1;
    if (c->checkpoint && c->version != VERSION_LAYERS)
        fill_legacy_state(c);
    return 0;
}

int model_load(const char *path, enum model_kind expected, struct mlp *m,
               struct model_metadata *meta, struct training_state *state, struct error *err)
{
    struct contents c;
    off_t size;

    memset(m, 0, sizeof *m);
    if (state)
        memset(state, 0, sizeof *state);
    memset(&c, 0, sizeof c);
    FILE *file = open_regular_file(path, &size, err);
    if (!file)
        return -1;
    struct reader r = {file, path, size, crc32(0L, Z_NULL, 0)};
    const int status = read_file(&r, expected, &c, err);
    fclose(file);
    if (status != 0 || !state)
        optimizer_state_free(&c.state.optimizer);
    if (status != 0) {
        mlp_free(&c.m);
        return -1;
    }
    *m = c.m;
    if (meta)
        *meta = c.meta;
    if (state)
        *state = c.state;
    return 0;
}
