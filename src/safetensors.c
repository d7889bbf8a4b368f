/* safetensors, read and written through jansson.  The reader checks the
 * header against the real length of the file before it allocates anything
 * the header sizes, and every byte range against the others, so that a
 * damaged or foreign file is refused for what it is, never half-loaded. */
#define _POSIX_C_SOURCE 200809L

#include "safetensors.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomic_file.h"
#include "dataset.h"
#include "optimizer.h"

enum {
    LENGTH_BYTES = 8,
    /* The data start on a multiple of 8 bytes (the header is padded with
     * spaces), as the safetensors library writes them, so that a reader may
     * map them as arrays. */
    DATA_ALIGN = 8,
};

/* The safetensors library refuses headers over 100 MB; so does this
 * reader, whose own header of 128 tensors takes a few kilobytes. */
#define HEADER_MAX 100000000u

/* Room for "784-...-10" with MLP_MAX_LAYERS + 1 widths of up to 7 digits. */
enum { WIDTHS_TEXT = 8 * (MLP_MAX_LAYERS + 1) + 1 };

/* The __metadata__ value that marks a file as ours, whose other entries
 * then must all be there. */
static const char FORMAT[] = "mnist-omp";

/* ------------------------------------------------------------ metadata */

enum field_type { FIELD_U64, FIELD_I64, FIELD_SIZE, FIELD_UNSIGNED, FIELD_REAL, FIELD_BOOL,
                  FIELD_OPTIMIZER, FIELD_SCHEDULE };

/* The history and the training settings of struct model_metadata, each as
 * a string (the format allows no other values there). */
struct field {
    const char *key;
    enum field_type type;
    size_t offset;
};

#define FIELD(key, type, member) {key, type, offsetof(struct model_metadata, member)}
static const struct field FIELDS[] = {
    FIELD("epochs_done", FIELD_U64, epochs_done),
    FIELD("seed", FIELD_I64, seed),
    FIELD("train_size", FIELD_U64, train_size),
    FIELD("test_size", FIELD_U64, test_size),
    FIELD("batch", FIELD_SIZE, training.batch),
    FIELD("epochs", FIELD_UNSIGNED, training.epochs),
    FIELD("optimizer", FIELD_OPTIMIZER, training.optimizer.kind),
    FIELD("momentum", FIELD_REAL, training.optimizer.momentum),
    FIELD("nesterov", FIELD_BOOL, training.optimizer.nesterov),
    FIELD("weight_decay", FIELD_REAL, training.optimizer.weight_decay),
    FIELD("beta1", FIELD_REAL, training.optimizer.beta1),
    FIELD("beta2", FIELD_REAL, training.optimizer.beta2),
    FIELD("eps", FIELD_REAL, training.optimizer.eps),
    FIELD("schedule", FIELD_SCHEDULE, training.schedule.kind),
    FIELD("lr", FIELD_REAL, training.schedule.lr),
    FIELD("step_epochs", FIELD_UNSIGNED, training.schedule.step_epochs),
    FIELD("step_gamma", FIELD_REAL, training.schedule.step_gamma),
};
#undef FIELD
enum { FIELD_COUNT = sizeof FIELDS / sizeof FIELDS[0] };

/* The shortest decimal text that reads back as v: "0.9", not
 * "0.90000000000000002". */
static void format_real(char *text, size_t size, double v)
{
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(text, size, "%.*g", digits, v);
        if (strtod(text, NULL) == v)
            return;
    }
}

static void format_field(const struct field *f, const struct model_metadata *meta, char *text,
                         size_t size)
{
    const char *at = (const char *)meta + f->offset;
    switch (f->type) {
    case FIELD_U64: snprintf(text, size, "%" PRIu64, *(const uint64_t *)at); break;
    case FIELD_I64: snprintf(text, size, "%" PRId64, *(const int64_t *)at); break;
    case FIELD_SIZE: snprintf(text, size, "%zu", *(const size_t *)at); break;
    case FIELD_UNSIGNED: snprintf(text, size, "%u", *(const unsigned *)at); break;
    case FIELD_REAL: format_real(text, size, *(const double *)at); break;
    case FIELD_BOOL: snprintf(text, size, "%s", *(const bool *)at ? "true" : "false"); break;
    case FIELD_OPTIMIZER:
        snprintf(text, size, "%s", optimizer_name(*(const enum optimizer_kind *)at));
        break;
    case FIELD_SCHEDULE:
        snprintf(text, size, "%s", schedule_name(*(const enum schedule_kind *)at));
        break;
    }
}

/* A whole decimal number in [0, max], or with negative, in [-max, max]. */
static int parse_integer(const char *text, bool negative, uint64_t max, uint64_t *magnitude,
                         bool *is_negative)
{
    const char *digits = text + (negative && text[0] == '-');
    *is_negative = digits != text;
    if (digits[0] < '0' || digits[0] > '9')
        return -1;
    char *end;
    errno = 0;
    const unsigned long long value = strtoull(digits, &end, 10);
    if (errno || *end != '\0' || value > max)
        return -1;
    *magnitude = value;
    return 0;
}

static int parse_field(const struct field *f, const char *text, struct model_metadata *meta)
{
    char *at = (char *)meta + f->offset, *end;
    uint64_t v;
    bool negative;
    switch (f->type) {
    case FIELD_U64:
        return parse_integer(text, false, UINT64_MAX, (uint64_t *)at, &negative);
    case FIELD_I64:
        if (parse_integer(text, true, INT64_MAX, &v, &negative) != 0)
            return -1;
        *(int64_t *)at = negative ? -(int64_t)v : (int64_t)v;
        return 0;
    case FIELD_SIZE:
        if (parse_integer(text, false, SIZE_MAX, &v, &negative) != 0)
            return -1;
        *(size_t *)at = (size_t)v;
        return 0;
    case FIELD_UNSIGNED:
        if (parse_integer(text, false, UINT_MAX, &v, &negative) != 0)
            return -1;
        *(unsigned *)at = (unsigned)v;
        return 0;
    case FIELD_REAL:
        errno = 0;
        *(double *)at = strtod(text, &end);
        return text[0] == '\0' || *end != '\0' || errno ? -1 : 0;
    case FIELD_BOOL:
        if (strcmp(text, "true") != 0 && strcmp(text, "false") != 0)
            return -1;
        *(bool *)at = strcmp(text, "true") == 0;
        return 0;
    case FIELD_OPTIMIZER:
        return optimizer_parse(text, (enum optimizer_kind *)at);
    case FIELD_SCHEDULE:
        return schedule_parse(text, (enum schedule_kind *)at);
    }
    return -1;
}

static json_t *metadata_json(const struct mlp *m, const struct model_metadata *meta)
{
    char widths[WIDTHS_TEXT], text[64];
    json_t *object = json_object();

    mlp_format_widths(m, widths, sizeof widths);
    json_object_set_new(object, "format", json_string(FORMAT));
    json_object_set_new(object, "network", json_string(widths));
    json_object_set_new(object, "activation", json_string(activation_name(m->activation)));
    json_object_set_new(object, "loss", json_string(loss_name(m->loss)));
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        format_field(&FIELDS[i], meta, text, sizeof text);
        json_object_set_new(object, FIELDS[i].key, json_string(text));
    }
    return object;
}

static const char *metadata_string(const char *path, const json_t *metadata, const char *key,
                                   struct error *err)
{
    const char *text = json_string_value(json_object_get(metadata, key));
    if (!text)
        error_set(err, "%s: the %s metadata has no string \"%s\"", path, FORMAT, key);
    return text;
}

/* The settings of a file without our metadata: nothing trained them here, so
 * they record no epochs and the options' defaults for an SGD run. */
static struct model_metadata foreign_metadata(void)
{
    struct model_metadata meta = {0};
    meta.training.optimizer = (struct optimizer){OPTIMIZER_SGD, 0, false, 0, 0.9, 0.999, 1e-8};
    meta.training.schedule = (struct schedule){SCHEDULE_CONSTANT, 0, 0, 0};
    return meta;
}

/* One of the activation and the loss: ours from the metadata, which must
 * agree with an option given; else the option's. */
static int adopt_name(const char *path, const json_t *ours, const char *key, bool given,
                      const char *given_name, int (*parse)(const char *, int *), int *value,
                      struct error *err)
{
    if (!ours)
        return 0;
    const char *text = metadata_string(path, ours, key, err);
    if (!text)
        return -1;
    int stored;
    if (parse(text, &stored) != 0)
        return error_set(err, "%s: unknown %s \"%s\" in the metadata", path, key, text);
    if (given && stored != *value)
        return error_set(err, "%s: the file's %s is %s, not %s as --%s says", path, key, text,
                         given_name, key);
    *value = stored;
    return 0;
}

static int parse_activation(const char *text, int *value)
{
    enum activation a;
    if (activation_parse(text, &a) != 0)
        return -1;
    *value = (int)a;
    return 0;
}

static int parse_loss(const char *text, int *value)
{
    enum loss l;
    if (loss_parse(text, &l) != 0)
        return -1;
    *value = (int)l;
    return 0;
}

/* The activation, the loss and meta from the metadata (a JSON object of
 * strings, or absent) and the hints. */
static int read_metadata(const char *path, const json_t *metadata,
                         const struct weights_hints *hints, struct mlp *m,
                         struct model_metadata *meta, struct error *err)
{
    const char *key;
    const json_t *value;
    const json_t *ours = NULL;

    if (metadata && !json_is_object(metadata))
        return error_set(err, "%s: __metadata__ is not a JSON object", path);
    json_object_foreach((json_t *)metadata, key, value)
        if (!json_is_string(value))
            return error_set(err, "%s: __metadata__ \"%s\" is not a string", path, key);
    const char *format = json_string_value(json_object_get(metadata, "format"));
    if (format && strcmp(format, FORMAT) == 0)
        ours = metadata;

    int activation = (int)hints->activation, loss = (int)hints->loss;
    if (adopt_name(path, ours, "activation", hints->has_activation,
                   activation_name(hints->activation), parse_activation, &activation, err) != 0 ||
        adopt_name(path, ours, "loss", hints->has_loss, loss_name(hints->loss), parse_loss,
                   &loss, err) != 0)
        return -1;
    if (!ours && !hints->has_activation && m->n_layers > 1)
        return error_set(err, "%s: the file does not say the hidden layers' activation: give "
                         "--activation relu, tanh or sigmoid", path);
    m->activation = (enum activation)activation;
    m->loss = (enum loss)loss;

    *meta = foreign_metadata();
    if (!ours)
        return 0;
    char widths[WIDTHS_TEXT];
    mlp_format_widths(m, widths, sizeof widths);
    const char *network = metadata_string(path, ours, "network", err);
    if (!network)
        return -1;
    if (strcmp(network, widths) != 0)
        return error_set(err, "%s: the metadata says network %s, but the tensors make %s", path,
                         network, widths);
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        const char *text = metadata_string(path, ours, FIELDS[i].key, err);
        if (!text)
            return -1;
        if (parse_field(&FIELDS[i], text, meta) != 0)
            return error_set(err, "%s: metadata \"%s\" is \"%s\", not a valid value", path,
                             FIELDS[i].key, text);
    }
    return model_metadata_check(path, meta, err);
}

/* ------------------------------------------------------------ saving */

static void put_le(uint8_t *out, uint64_t value, int bytes)
{
    for (int i = 0; i < bytes; i++)
        out[i] = (uint8_t)(value >> 8 * i);
}

static const char *dtype_name(enum precision precision)
{
    return precision == PRECISION_F64 ? "F64" : "F32";
}

/* The header, padded; NULL when out of memory. */
static char *encode_header(const struct mlp *m, const struct model_metadata *meta,
                           size_t *length)
{
    const size_t width = precision_size(m->precision);
    json_t *root = json_object();
    size_t offset = 0;

    json_object_set_new(root, "__metadata__", metadata_json(m, meta));
    for (size_t k = 0; k < weights_tensor_count(m); k++) {
        const struct weights_tensor t = weights_tensor(m, k);
        json_t *shape = json_array();
        for (size_t d = 0; d < t.dims; d++)
            json_array_append_new(shape, json_integer((json_int_t)t.shape[d]));
        const size_t end = offset + t.count * width;
        json_object_set_new(root, t.name,
                            json_pack("{s:s, s:o, s:[I,I]}", "dtype", dtype_name(m->precision),
                                      "shape", shape, "data_offsets", (json_int_t)offset,
                                      (json_int_t)end));
        offset = end;
    }
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text)
        return NULL;
    const size_t used = strlen(text);
    *length = (LENGTH_BYTES + used + DATA_ALIGN - 1) / DATA_ALIGN * DATA_ALIGN - LENGTH_BYTES;
    char *padded = realloc(text, *length);
    if (!padded) {
        free(text);
        return NULL;
    }
    memset(padded + used, ' ', *length - used);
    return padded;
}

static int write_file(FILE *file, const struct mlp *m, const struct model_metadata *meta,
                      const char *path, struct error *err)
{
    size_t length;
    uint8_t prefix[LENGTH_BYTES];
    char *header = encode_header(m, meta, &length);
    if (!header)
        return error_set(err, "cannot save %s: out of memory", path);
    put_le(prefix, length, LENGTH_BYTES);
    fwrite(prefix, 1, sizeof prefix, file);
    fwrite(header, 1, length, file);
    free(header);
    for (size_t k = 0; k < weights_tensor_count(m); k++) {
        const size_t size = weights_tensor(m, k).count * precision_size(m->precision);
        uint8_t *bytes = malloc(size);
        if (!bytes)
            return error_set(err, "cannot save %s: out of memory", path);
        weights_tensor_encode(m, k, bytes);
        fwrite(bytes, 1, size, file);
        free(bytes);
    }
    return 0;
}

int safetensors_save(const char *path, const struct mlp *m, const struct model_metadata *meta,
                     struct error *err)
{
    struct atomic_file f;
    if (atomic_file_open(&f, path, err) != 0)
        return -1;
    if (write_file(f.stream, m, meta, path, err) != 0) {
        atomic_file_discard(&f);
        return -1;
    }
    return atomic_file_commit(&f, err);
}

/* ------------------------------------------------------------ loading */

/* A tensor's header entry, as read. */
struct entry {
    bool seen;
    enum precision precision;
    size_t dims;
    size_t shape[2];
    uint64_t begin, end;
};

/* "2.weight" or "2.bias" (no leading zeros, an even index) as tensor k of
 * weights.h; -1 for any other name. */
static long tensor_index(const char *name)
{
    char *end;
    if (name[0] < '0' || name[0] > '9' || (name[0] == '0' && name[1] != '.'))
        return -1;
    errno = 0;
    const unsigned long index = strtoul(name, &end, 10);
    if (errno || index % 2 != 0 || index / 2 >= MLP_MAX_LAYERS)
        return -1;
    if (strcmp(end, ".weight") == 0)
        return (long)index;
    if (strcmp(end, ".bias") == 0)
        return (long)index + 1;
    return -1;
}

static int read_entry(const char *path, const char *name, const json_t *value,
                      struct entry *e, struct error *err)
{
    const char *dtype = json_string_value(json_object_get(value, "dtype"));
    const json_t *shape = json_object_get(value, "shape");
    const json_t *offsets = json_object_get(value, "data_offsets");

    if (!json_is_object(value) || !dtype || !json_is_array(shape) || !json_is_array(offsets))
        return error_set(err, "%s: tensor %s needs a string dtype, a shape array and a "
                         "data_offsets array", path, name);
    if (strcmp(dtype, "F32") == 0)
        e->precision = PRECISION_F32;
    else if (strcmp(dtype, "F64") == 0)
        e->precision = PRECISION_F64;
    else
        return error_set(err, "%s: tensor %s has dtype %s; this program reads F32 and F64", path,
                         name, dtype);
    e->dims = json_array_size(shape);
    const size_t wanted = strstr(name, ".weight") ? 2 : 1;
    if (e->dims != wanted)
        return error_set(err, "%s: tensor %s has %zu dimensions, not %zu (%s)", path, name,
                         e->dims, wanted, wanted == 2 ? "out, in" : "out");
    for (size_t d = 0; d < e->dims; d++) {
        const json_t *dim = json_array_get(shape, d);
        const json_int_t n = json_integer_value(dim);
        if (!json_is_integer(dim) || n < 1 || n > (json_int_t)MLP_MAX_WIDTH)
            return error_set(err, "%s: tensor %s's shape has a dimension that is not a width "
                             "from 1 to %u", path, name, MLP_MAX_WIDTH);
        e->shape[d] = (size_t)n;
    }
    const json_t *begin = json_array_get(offsets, 0), *end = json_array_get(offsets, 1);
    if (json_array_size(offsets) != 2 || !json_is_integer(begin) || !json_is_integer(end) ||
        json_integer_value(begin) < 0 || json_integer_value(end) < json_integer_value(begin))
        return error_set(err, "%s: tensor %s's data_offsets are not [begin, end] with "
                         "0 <= begin <= end", path, name);
    e->begin = (uint64_t)json_integer_value(begin);
    e->end = (uint64_t)json_integer_value(end);
    e->seen = true;
    return 0;
}

/* The tensors' names, dtypes and shapes, which give the network's widths
 * and precision. */
static int read_shapes(const char *path, const json_t *root, struct entry *entries,
                       struct mlp *m, struct error *err)
{
    const char *name;
    const json_t *value;
    long last = -1;

    json_object_foreach((json_t *)root, name, value) {
        if (strcmp(name, "__metadata__") == 0)
            continue;
        const long k = tensor_index(name);
        if (k < 0)
            return error_set(err, "%s: unexpected tensor \"%s\" (a network here is 0.weight, "
                             "0.bias, 2.weight, 2.bias ...)", path, name);
        if (read_entry(path, name, value, &entries[k], err) != 0)
            return -1;
        if (k > last)
            last = k;
    }
    if (last < 0)
        return error_set(err, "%s: the file holds no tensors", path);
    m->n_layers = (size_t)last / 2 + 1;
    for (size_t k = 0; k < 2 * m->n_layers; k++) {
        const struct weights_tensor t = weights_tensor(m, k);
        if (!entries[k].seen)
            return error_set(err, "%s: there is no tensor %s", path, t.name);
    }
    m->precision = entries[0].precision;
    m->widths[0] = entries[0].shape[1];
    for (size_t l = 0; l < m->n_layers; l++) {
        const struct entry *w = &entries[2 * l], *b = &entries[2 * l + 1];
        if (w->precision != m->precision || b->precision != m->precision)
            return error_set(err, "%s: tensors of both F32 and F64: a network has one dtype",
                             path);
        if (w->shape[1] != m->widths[l])
            return error_set(err, "%s: the shapes do not chain: %zu.weight takes %zu inputs, "
                             "but the layer before gives %zu", path, 2 * l, w->shape[1],
                             m->widths[l]);
        if (b->shape[0] != w->shape[0])
            return error_set(err, "%s: the shapes do not chain: %zu.bias has %zu elements for "
                             "the %zu outputs of %zu.weight", path, 2 * l, b->shape[0],
                             w->shape[0], 2 * l);
        m->widths[l + 1] = w->shape[0];
    }
    return 0;
}

static int compare_begin(const void *a, const void *b)
{
    const struct entry *x = *(const struct entry *const *)a, *y = *(const struct entry *const *)b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

/* Each tensor's range holds its elements, and the ranges tile the data: no
 * gap, no overlap, nothing after them. */
static int check_offsets(const char *path, const struct mlp *m, struct entry *entries,
                         uint64_t data_bytes, struct error *err)
{
    const size_t count = weights_tensor_count(m);
    const struct entry *order[2 * MLP_MAX_LAYERS];
    uint64_t covered = 0;

    for (size_t k = 0; k < count; k++) {
        const struct weights_tensor t = weights_tensor(m, k);
        const uint64_t bytes = (uint64_t)t.count * precision_size(m->precision);
        if (entries[k].end > data_bytes)
            return error_set(err, "%s: tensor %s's data_offsets [%" PRIu64 ", %" PRIu64 "] "
                             "reach past the %" PRIu64 " bytes of data", path, t.name,
                             entries[k].begin, entries[k].end, data_bytes);
        if (entries[k].end - entries[k].begin != bytes)
            return error_set(err, "%s: tensor %s holds %" PRIu64 " bytes, but its data_offsets "
                             "span %" PRIu64, path, t.name, bytes,
                             entries[k].end - entries[k].begin);
        order[k] = &entries[k];
    }
    qsort(order, count, sizeof order[0], compare_begin);
    for (size_t i = 0; i < count; i++) {
        const char *name = weights_tensor(m, (size_t)(order[i] - entries)).name;
        if (order[i]->begin < covered)
            return error_set(err, "%s: tensor %s's data overlap another tensor's", path, name);
        if (order[i]->begin > covered)
            return error_set(err, "%s: bytes %" PRIu64 " to %" PRIu64 " of the data belong to "
                             "no tensor", path, covered, order[i]->begin);
        covered = order[i]->end;
    }
    if (covered != data_bytes)
        return error_set(err, "%s: bytes %" PRIu64 " to %" PRIu64 " of the data belong to no "
                         "tensor", path, covered, data_bytes);
    return 0;
}

/* The first element of bytes (count of them) that is NaN or infinite. */
static int check_finite(const char *path, const char *name, const uint8_t *bytes, size_t count,
                        enum precision precision, struct error *err)
{
    const size_t width = precision_size(precision);
    for (size_t j = 0; j < count; j++) {
        uint64_t bits = 0;
        for (size_t b = 0; b < width; b++)
            bits |= (uint64_t)bytes[j * width + b] << 8 * b;
        double value;
        if (precision == PRECISION_F64) {
            memcpy(&value, &bits, sizeof value);
        } else {
            const uint32_t bits32 = (uint32_t)bits;
            float f;
            memcpy(&f, &bits32, sizeof f);
            value = f;
        }
        if (!isfinite(value))
            return error_set(err, "%s: tensor %s's element %zu is %g: every parameter must be "
                             "finite", path, name, j, value);
    }
    return 0;
}

static int read_tensors(FILE *file, const char *path, uint64_t data_start, struct mlp *m,
                        const struct entry *entries, struct error *err)
{
    for (size_t k = 0; k < weights_tensor_count(m); k++) {
        const struct weights_tensor t = weights_tensor(m, k);
        const size_t size = (size_t)(entries[k].end - entries[k].begin);
        uint8_t *bytes = malloc(size ? size : 1);
        if (!bytes)
            return error_set(err, "%s: out of memory", path);
        if (fseeko(file, (off_t)(data_start + entries[k].begin), SEEK_SET) != 0 ||
            fread(bytes, 1, size, file) != size) {
            free(bytes);
            return error_set(err, "cannot read %s: %s", path,
                             ferror(file) ? strerror(errno) : "it ended while being read");
        }
        const int status = check_finite(path, t.name, bytes, t.count, m->precision, err);
        if (status == 0)
            weights_tensor_decode(m, k, bytes);
        free(bytes);
        if (status != 0)
            return -1;
    }
    return 0;
}

/* The length, the header and the shapes, then (allocating m only once they
 * hold together and fit the file) the data. */
static int read_file(FILE *file, const char *path, uint64_t size,
                     const struct weights_hints *hints, struct mlp *m,
                     struct model_metadata *meta, struct error *err)
{
    uint8_t prefix[LENGTH_BYTES];
    struct entry entries[2 * MLP_MAX_LAYERS] = {{0}};
    json_error_t parse_error;
    struct mlp shape = {0};
    size_t count;
    struct error cause;

    if (size < LENGTH_BYTES)
        return error_set(err, "%s: %" PRIu64 " bytes, too short for a safetensors file (its "
                         "header's length takes 8)", path, size);
    if (fread(prefix, 1, sizeof prefix, file) != sizeof prefix)
        return error_set(err, "cannot read %s: %s", path, strerror(errno));
    uint64_t length = 0;
    for (int i = 0; i < LENGTH_BYTES; i++)
        length |= (uint64_t)prefix[i] << 8 * i;
    if (length > size - LENGTH_BYTES)
        return error_set(err, "%s: the header is %" PRIu64 " bytes long, longer than the %" PRIu64
                         " bytes of the file after its length", path, length,
                         size - LENGTH_BYTES);
    if (length > HEADER_MAX)
        return error_set(err, "%s: the header is %" PRIu64 " bytes long, more than the %u "
                         "safetensors allows", path, length, HEADER_MAX);
    char *header = malloc(length ? length : 1);
    if (!header)
        return error_set(err, "%s: out of memory", path);
    if (fread(header, 1, length, file) != length) {
        free(header);
        return error_set(err, "cannot read %s: %s", path, strerror(errno));
    }
    json_t *root = json_loadb(header, length, JSON_REJECT_DUPLICATES, &parse_error);
    free(header);
    if (!root)
        return error_set(err, "%s: the header is not JSON: %s (line %d, column %d)", path,
                         parse_error.text, parse_error.line, parse_error.column);
    int status = -1;
    if (!json_is_object(root))
        error_set(err, "%s: the header is not a JSON object", path);
    else if (read_shapes(path, root, entries, &shape, err) == 0 &&
             check_offsets(path, &shape, entries, size - LENGTH_BYTES - length, err) == 0 &&
             read_metadata(path, json_object_get(root, "__metadata__"), hints, &shape, meta,
                           err) == 0)
        status = 0;
    json_decref(root);
    if (status != 0)
        return -1;
    if (mlp_check_shape(shape.n_layers, shape.widths, shape.precision, 1, &count, &cause) != 0 ||
        mlp_create(m, shape.n_layers, shape.widths, shape.activation, shape.loss,
                   shape.precision, &cause) != 0)
        return error_set(err, "%s: %s", path, cause.msg);
    return read_tensors(file, path, LENGTH_BYTES + length, m, entries, err);
}

int safetensors_load(const char *path, const struct weights_hints *hints, struct mlp *m,
                     struct model_metadata *meta, struct error *err)
{
    struct model_metadata read_meta;
    off_t size;

    memset(m, 0, sizeof *m);
    const int fd = dataset_open_regular(path, &size, err);
    if (fd < 0)
        return -1;
    FILE *file = fdopen(fd, "rb");
    if (!file) {
        close(fd);
        return error_set(err, "cannot read %s: %s", path, strerror(errno));
    }
    const int status = read_file(file, path, (uint64_t)size, hints, m, &read_meta, err);
    fclose(file);
    if (status != 0) {
        mlp_free(m);
        memset(m, 0, sizeof *m);
        return -1;
    }
    if (meta)
        *meta = read_meta;
    return 0;
}
