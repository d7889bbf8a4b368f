/* The model file format: saving and loading are bitwise exact and match the
 * layout documented in doc/model-format.md; every kind of damaged or foreign
 * file is refused with a message that names it and says what is wrong; a
 * failed save leaves the previous file intact and no temporary file behind.
 *
 * The test builds the damaged files itself from the documented layout (not
 * from the implementation's constants) and reseals them with a fresh CRC
 * where a test aims at a check other than the checksum.  Each test works in
 * its own temporary directory. */
#define _XOPEN_SOURCE 700  /* mkfifo */

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "model.h"
#include "modelfile.h"
#include "rng.h"
#include "testdir.h"

/* The documented layout. */
enum {
    AT_VERSION = 8,
    AT_KIND = 12,
    AT_N_IN = 16,  /* n_hidden at 20, n_out at 24 */
    AT_PRECISION = 28,
    AT_EPOCHS_DONE = 32,
    AT_SEED = 40,
    AT_LR = 48,
    HEADER = 72,
    FINGERPRINT = 8,  /* after the header in version 2 (checkpoints) */
    CRC = 4,
};

/* ------------------------------------------------------------ the test's directory */

/* The directory holds exactly one entry, `name`: no temporary file is left. */
static void assert_only_entry(const char *name)
{
    const char *test_dir = testdir_dir();
    DIR *dir = opendir(test_dir);
    struct dirent *entry;
    int found = 0;

    ck_assert_msg(dir != NULL, "opendir %s: %s", test_dir, strerror(errno));
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        ck_assert_msg(strcmp(entry->d_name, name) == 0, "unexpected file %s left in %s",
                      entry->d_name, test_dir);
        found = 1;
    }
    closedir(dir);
    ck_assert_msg(found, "%s is missing from %s", name, test_dir);
}

/* ------------------------------------------------------------ file bytes */

struct bytes {
    uint8_t *data;
    size_t size;
};

static struct bytes read_bytes(const char *path)
{
    struct bytes b;
    b.data = (uint8_t *)testdir_read(path, &b.size);
    return b;
}

static void assert_same_bytes(const struct bytes *got, const struct bytes *want, const char *what)
{
    ck_assert_msg(got->size == want->size && memcmp(got->data, want->data, want->size) == 0,
                  "%s: the file changed (%zu bytes, was %zu)", what, got->size, want->size);
}

static void put_le(uint8_t *at, uint64_t value, int bytes)
{
    for (int i = 0; i < bytes; i++)
        at[i] = (uint8_t)(value >> 8 * i);
}

static uint64_t get_le(const uint8_t *at, int bytes)
{
    uint64_t value = 0;
    for (int i = 0; i < bytes; i++)
        value |= (uint64_t)at[i] << 8 * i;
    return value;
}

static uint64_t f64_bits(double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

static uint32_t f32_bits(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

/* Puts a correct CRC-32 at the end again, so that only the check a test aims
 * at can catch its change. */
static void reseal(struct bytes *b)
{
    ck_assert_uint_ge(b->size, CRC);
    put_le(b->data + b->size - CRC, crc32(0L, b->data, (uInt)(b->size - CRC)), CRC);
}

/* ------------------------------------------------------------ models */

struct shape {
    size_t n_in, n_hidden, n_out;
};

static const struct shape awkward_shapes[] = {{784, 1, 10}, {784, 33, 10}, {3, 2, 1}, {784, 32, 10}};
enum { SHAPES = sizeof awkward_shapes / sizeof awkward_shapes[0] };

static const struct model_metadata reference_meta = {300, 1337, 0.8, 6000, 1000, false, 0, 0};

/* The biases, which Xavier leaves zero, get values whose bits a sloppy
 * codec would lose: negative zero, subnormals, the largest finite values, a
 * value with no short decimal form. */
static void set_awkward_values(struct mlp *m, size_t first, size_t count)
{
    static const float awkward_f32[] = {-0.0f, 0x1p-149f, FLT_MAX, -1.0f / 3, 0x1p-140f, -FLT_MAX};
    static const double awkward_f64[] = {-0.0, 0x1p-1074, DBL_MAX, -1.0 / 3, 0x1p-1040, -DBL_MAX};
    enum { AWKWARD = sizeof awkward_f32 / sizeof awkward_f32[0] };

    for (size_t i = first; i < first + count; i++) {
        if (m->precision == PRECISION_F64)
            ((double *)m->params)[i] = awkward_f64[i % AWKWARD];
        else
            ((float *)m->params)[i] = awkward_f32[i % AWKWARD];
    }
}

static void make_model(struct mlp *m, struct shape s, enum precision precision, int64_t seed)
{
    struct py_random rng;
    struct error err;

    ck_assert_msg(mlp_create(m, s.n_in, s.n_hidden, s.n_out, precision, &err) == 0, "%s",
                  err.msg);
    py_random_seed(&rng, seed);
    mlp_init_xavier(m, &rng);
    const struct mlp_layout l = mlp_layout(s.n_in, s.n_hidden, s.n_out);
    set_awkward_values(m, l.b1, s.n_hidden);
    set_awkward_values(m, l.b2, s.n_out);
}

static void save(const char *path, enum model_kind kind, const struct mlp *m,
                 const struct model_metadata *meta)
{
    struct error err;
    ck_assert_msg(model_save(path, kind, m, meta, &err) == 0, "%s", err.msg);
}

/* A saved 5-4-3 model (small, every size different) as bytes. */
static struct bytes small_model_bytes(enum precision precision)
{
    const char *path = testdir_path("small.model");
    struct mlp m;
    make_model(&m, (struct shape){5, 4, 3}, precision, 5);
    save(path, MODEL_FILE_MODEL, &m, &reference_meta);
    mlp_free(&m);
    struct bytes b = read_bytes(path);
    ck_assert_int_eq(unlink(path), 0);
    return b;
}

static void assert_same_model(const struct mlp *got, const struct mlp *want)
{
    ck_assert_uint_eq(got->n_in, want->n_in);
    ck_assert_uint_eq(got->n_hidden, want->n_hidden);
    ck_assert_uint_eq(got->n_out, want->n_out);
    ck_assert_int_eq(got->precision, want->precision);
    ck_assert_msg(memcmp(got->params, want->params,
                         mlp_param_count(want) * precision_size(want->precision)) == 0,
                  "the parameters differ");
}

static void assert_same_meta(const struct model_metadata *got, const struct model_metadata *want)
{
    ck_assert_uint_eq(got->epochs_done, want->epochs_done);
    ck_assert_int_eq(got->seed, want->seed);
    ck_assert_uint_eq(f64_bits(got->lr), f64_bits(want->lr));
    ck_assert_uint_eq(got->train_size, want->train_size);
    ck_assert_uint_eq(got->test_size, want->test_size);
    ck_assert_int_eq(got->has_fingerprint, want->has_fingerprint);
    ck_assert_uint_eq(got->train_crc, want->train_crc);
    ck_assert_uint_eq(got->test_crc, want->test_crc);
}

/* ------------------------------------------------------------ refusals */

static void assert_load_refused(const char *path, enum model_kind expected, const char *phrase)
{
    struct mlp m;
    struct model_metadata meta;
    struct error err = {""};

    memset(&m, 0x5a, sizeof m);
    ck_assert_int_eq(model_load(path, expected, &m, &meta, &err), -1);
    ck_assert_msg(strstr(err.msg, path) != NULL, "message does not name %s: %s", path, err.msg);
    ck_assert_msg(strstr(err.msg, phrase) != NULL, "expected \"%s\" in: %s", phrase, err.msg);
    ck_assert_ptr_null(m.params);
    ck_assert_uint_eq(m.n_in, 0);
}

static void assert_bytes_refused(const void *data, size_t size, const char *phrase)
{
    const char *path = testdir_write("damaged.model", data, size);
    assert_load_refused(path, MODEL_FILE_MODEL, phrase);
}

/* The small model with a u32 header field replaced, resealed. */
static void assert_field_refused(size_t offset, uint32_t value, const char *phrase)
{
    struct bytes b = small_model_bytes(PRECISION_F32);
    put_le(b.data + offset, value, 4);
    reseal(&b);
    assert_bytes_refused(b.data, b.size, phrase);
    free(b.data);
}

/* ------------------------------------------------------------ round trips */

START_TEST(round_trip_is_bitwise_exact)
{
    const struct shape s = awkward_shapes[_i % SHAPES];
    const enum precision precision = _i / SHAPES % 2 ? PRECISION_F64 : PRECISION_F32;
    const enum model_kind kind = _i / SHAPES / 2 ? MODEL_FILE_CHECKPOINT : MODEL_FILE_MODEL;
    const bool checkpoint = kind == MODEL_FILE_CHECKPOINT;
    /* A model drops the fingerprint (and its file keeps version 1's layout). */
    const struct model_metadata meta = {17 + (uint64_t)_i, -42 - _i, 0.1 * (_i + 1), 60000, 10000,
                                        true, 0x89abcdefu + (uint32_t)_i, 0xfedcba98u};
    const struct model_metadata expected = {meta.epochs_done, meta.seed, meta.lr, 60000, 10000,
                                            checkpoint, checkpoint ? meta.train_crc : 0,
                                            checkpoint ? meta.test_crc : 0};
    const char *path = testdir_path("model.bin");
    struct mlp saved, loaded;
    struct model_metadata loaded_meta;
    struct error err;

    make_model(&saved, s, precision, 1000 + _i);
    save(path, kind, &saved, &meta);
    ck_assert_msg(model_load(path, kind, &loaded, &loaded_meta, &err) == 0, "%s", err.msg);
    assert_same_model(&loaded, &saved);
    assert_same_meta(&loaded_meta, &expected);
    struct bytes b = read_bytes(path);
    ck_assert_uint_eq(get_le(b.data + AT_VERSION, 4), checkpoint ? 2 : 1);
    ck_assert_uint_eq(b.size, HEADER + (checkpoint ? FINGERPRINT : 0) +
                                  mlp_param_count(&saved) * precision_size(precision) + CRC);
    if (checkpoint) {
        ck_assert_uint_eq(get_le(b.data + HEADER, 4), meta.train_crc);
        ck_assert_uint_eq(get_le(b.data + HEADER + 4, 4), meta.test_crc);
    }
    free(b.data);
    assert_only_entry("model.bin");
    mlp_free(&saved);
    mlp_free(&loaded);
}
END_TEST

START_TEST(metadata_extremes_round_trip)
{
    static const struct model_metadata extremes[] = {
        {0, 0, 0.0, 0, 0, true, 0, 0},
        {MODEL_FILE_MAX_EPOCHS, INT64_MIN, DBL_MAX, UINT64_MAX, UINT64_MAX, true, UINT32_MAX,
         UINT32_MAX},
        {1, -1, 4.9406564584124654e-324, 1, 1, true, 1, 0x80000000u},
        {MODEL_FILE_MAX_EPOCHS / 3, INT64_MAX, 1.0 / 3, SIZE_MAX, 0, true, 0x01020304u, 7},
    };
    const char *path = testdir_path("model.bin");
    struct mlp m, loaded;
    struct model_metadata meta;
    struct error err;

    make_model(&m, (struct shape){3, 2, 1}, PRECISION_F64, 3);
    save(path, MODEL_FILE_CHECKPOINT, &m, &extremes[_i]);
    ck_assert_msg(model_load(path, MODEL_FILE_CHECKPOINT, &loaded, &meta, &err) == 0, "%s",
                  err.msg);
    assert_same_meta(&meta, &extremes[_i]);
    mlp_free(&m);
    mlp_free(&loaded);
}
END_TEST

START_TEST(load_without_metadata)
{
    const char *path = testdir_path("model.bin");
    struct mlp m, loaded;
    struct error err;

    make_model(&m, (struct shape){3, 2, 1}, PRECISION_F32, 3);
    save(path, MODEL_FILE_MODEL, &m, &reference_meta);
    ck_assert_msg(model_load(path, MODEL_FILE_MODEL, &loaded, NULL, &err) == 0, "%s", err.msg);
    assert_same_model(&loaded, &m);
    mlp_free(&m);
    mlp_free(&loaded);
}
END_TEST

/* The worked example of doc/model-format.md, byte for byte. */
START_TEST(header_matches_documented_example)
{
    static const uint8_t documented[HEADER] = {
        0x4d, 0x4e, 0x49, 0x53, 0x54, 0x4f, 0x4d, 0x50, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x10, 0x03, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00,
        0x2c, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x39, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x9a, 0x99, 0x99, 0x99, 0x99, 0x99, 0xe9, 0x3f, 0x70, 0x17, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xe8, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    };
    const char *path = testdir_path("model.bin");
    struct mlp m;

    make_model(&m, (struct shape){784, 32, 10}, PRECISION_F32, 1337);
    save(path, MODEL_FILE_MODEL, &m, &reference_meta);
    struct bytes b = read_bytes(path);
    ck_assert_uint_eq(b.size, 101876);
    for (size_t i = 0; i < HEADER; i++)
        ck_assert_msg(b.data[i] == documented[i], "header byte %zu is 0x%02x, documented 0x%02x",
                      i, b.data[i], documented[i]);
    ck_assert_uint_eq(get_le(b.data + b.size - CRC, CRC), crc32(0L, b.data, (uInt)(b.size - CRC)));
    free(b.data);
    mlp_free(&m);
}
END_TEST

/* Parameters follow the header in memory order as little-endian IEEE-754. */
START_TEST(parameters_are_little_endian_in_order)
{
    const enum precision precision = _i ? PRECISION_F64 : PRECISION_F32;
    const int width = (int)precision_size(precision);
    const char *path = testdir_path("model.bin");
    struct mlp m;

    make_model(&m, (struct shape){3, 2, 1}, precision, 9);
    save(path, MODEL_FILE_MODEL, &m, &reference_meta);
    struct bytes b = read_bytes(path);
    for (size_t i = 0; i < mlp_param_count(&m); i++) {
        const uint64_t want = precision == PRECISION_F64 ? f64_bits(((double *)m.params)[i])
                                                         : f32_bits(((float *)m.params)[i]);
        ck_assert_msg(get_le(b.data + HEADER + i * (size_t)width, width) == want,
                      "parameter %zu is not stored little-endian at its place", i);
    }
    free(b.data);
    mlp_free(&m);
}
END_TEST

/* A version-1 checkpoint (from before fingerprints) still loads, without one. */
START_TEST(version_1_checkpoint_loads)
{
    struct bytes b = small_model_bytes(PRECISION_F32);
    struct mlp loaded;
    struct model_metadata meta;
    struct error err;

    put_le(b.data + AT_KIND, 2, 4);
    reseal(&b);
    const char *path = testdir_write("old.ckpt", b.data, b.size);
    ck_assert_msg(model_load(path, MODEL_FILE_CHECKPOINT, &loaded, &meta, &err) == 0, "%s",
                  err.msg);
    assert_same_meta(&meta, &reference_meta);
    mlp_free(&loaded);
    free(b.data);
}
END_TEST

/* Version 2 is for checkpoints only. */
START_TEST(version_2_model_refused)
{
    struct mlp m;
    make_model(&m, (struct shape){3, 2, 1}, PRECISION_F32, 1);
    const char *path = testdir_path("v2.ckpt");
    struct model_metadata meta = reference_meta;
    meta.has_fingerprint = true;
    save(path, MODEL_FILE_CHECKPOINT, &m, &meta);
    struct bytes b = read_bytes(path);
    put_le(b.data + AT_KIND, 1, 4);
    reseal(&b);
    assert_bytes_refused(b.data, b.size, "a version 2 file must be a checkpoint (kind 2), not kind 1");
    free(b.data);
    mlp_free(&m);
}
END_TEST

START_TEST(checkpoint_loads_where_a_model_is_expected)
{
    const char *path = testdir_path("run.ckpt");
    struct mlp m, loaded;
    struct model_metadata meta;
    struct error err;

    make_model(&m, (struct shape){784, 33, 10}, PRECISION_F64, 4);
    save(path, MODEL_FILE_CHECKPOINT, &m, &reference_meta);
    ck_assert_msg(model_load(path, MODEL_FILE_MODEL, &loaded, &meta, &err) == 0, "%s", err.msg);
    assert_same_model(&loaded, &m);
    assert_same_meta(&meta, &reference_meta);  /* no fingerprint: saved as version 1 */
    mlp_free(&m);
    mlp_free(&loaded);
}
END_TEST

START_TEST(model_is_refused_where_a_checkpoint_is_expected)
{
    const char *path = testdir_path("final.model");
    struct mlp m;

    make_model(&m, (struct shape){784, 33, 10}, PRECISION_F32, 4);
    save(path, MODEL_FILE_MODEL, &m, &reference_meta);
    assert_load_refused(path, MODEL_FILE_CHECKPOINT, "is a model file, not a checkpoint");
    mlp_free(&m);
}
END_TEST

START_TEST(save_replaces_an_existing_file)
{
    const char *path = testdir_path("model.bin");
    struct mlp first, second, loaded;
    struct error err;

    make_model(&first, (struct shape){3, 2, 1}, PRECISION_F32, 1);
    make_model(&second, (struct shape){784, 1, 10}, PRECISION_F64, 2);
    save(path, MODEL_FILE_MODEL, &first, &reference_meta);
    save(path, MODEL_FILE_MODEL, &second, &reference_meta);
    ck_assert_msg(model_load(path, MODEL_FILE_MODEL, &loaded, NULL, &err) == 0, "%s", err.msg);
    assert_same_model(&loaded, &second);
    assert_only_entry("model.bin");
    mlp_free(&first);
    mlp_free(&second);
    mlp_free(&loaded);
}
END_TEST

/* A saved model gets the mode of any new file (0666 less the umask), not
 * the 0600 of a private temporary file. */
START_TEST(saved_file_mode_follows_umask)
{
    static const mode_t masks[] = {022, 027, 077};
    const char *path = testdir_path("model.bin");
    struct mlp m;
    struct stat st;

    make_model(&m, (struct shape){3, 2, 1}, PRECISION_F32, 1);
    umask(masks[_i]);
    save(path, MODEL_FILE_MODEL, &m, &reference_meta);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0666 & ~masks[_i]);
    mlp_free(&m);
}
END_TEST

/* ------------------------------------------------------------ header refusals */

START_TEST(wrong_magic_refused)
{
    struct bytes b = small_model_bytes(PRECISION_F32);
    b.data[_i] ^= 0x20;
    reseal(&b);
    assert_bytes_refused(b.data, b.size, "not an mnist-omp model file");
    free(b.data);
}
END_TEST

START_TEST(unsupported_version_refused)
{
    static const uint32_t versions[] = {0, 3, 0xffffffffu};
    char phrase[64];
    snprintf(phrase, sizeof phrase, "unsupported version %u", (unsigned)versions[_i]);
    assert_field_refused(AT_VERSION, versions[_i], phrase);
}
END_TEST

START_TEST(unknown_kind_refused)
{
    static const uint32_t kinds[] = {0, 3, 0x100};
    assert_field_refused(AT_KIND, kinds[_i], "unknown file kind");
}
END_TEST

START_TEST(zero_size_refused)
{
    assert_field_refused(AT_N_IN + 4 * (size_t)_i, 0, "each must be between 1 and 1048576");
}
END_TEST

START_TEST(size_over_limit_refused)
{
    assert_field_refused(AT_N_IN + 4 * (size_t)_i, (1u << 20) + 1,
                         "each must be between 1 and 1048576");
}
END_TEST

/* A size one larger than the real one asks for more bytes than there are. */
START_TEST(size_larger_than_data_refused)
{
    struct bytes b = small_model_bytes(PRECISION_F32);
    const size_t offset = AT_N_IN + 4 * (size_t)_i;
    put_le(b.data + offset, get_le(b.data + offset, 4) + 1, 4);
    reseal(&b);
    assert_bytes_refused(b.data, b.size, "truncated");
    free(b.data);
}
END_TEST

/* AddressSanitizer reserves terabytes of address space up front, so it
 * cannot run under an address-space limit. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* Sizes at the limit describe a file of terabytes.  A loader that allocated
 * before comparing with the real length would fail here for lack of memory
 * (the address-space limit stops an overcommitting system from granting it
 * lazily) instead of saying the file is truncated. */
START_TEST(largest_sizes_with_small_file_refused_without_allocating)
{
    struct bytes b = small_model_bytes(PRECISION_F64);
#ifndef UNDER_ASAN
    const struct rlimit limit = {(rlim_t)1 << 30, (rlim_t)1 << 30};
    struct rlimit current;
    ck_assert_int_eq(getrlimit(RLIMIT_AS, &current), 0);
    if (current.rlim_cur == RLIM_INFINITY || current.rlim_cur > limit.rlim_cur)
        ck_assert_int_eq(setrlimit(RLIMIT_AS, &limit), 0);
#endif
    for (int field = 0; field < 3; field++)
        put_le(b.data + AT_N_IN + 4 * field, 1u << 20, 4);
    reseal(&b);
    assert_bytes_refused(b.data, b.size, "but a 1048576-1048576-1048576 float64 model file has");
    free(b.data);
}
END_TEST

START_TEST(unknown_precision_refused)
{
    static const uint32_t codes[] = {0, 1, 2, 16, 32, 64, 0xffffffffu};
    assert_field_refused(AT_PRECISION, codes[_i], "unknown precision code");
}
END_TEST

/* A valid precision code that disagrees with the data: float32 data read as
 * float64 needs twice the bytes, and the other way round leaves half over. */
START_TEST(precision_disagreeing_with_data_refused)
{
    struct bytes b = small_model_bytes(_i ? PRECISION_F64 : PRECISION_F32);
    put_le(b.data + AT_PRECISION, _i ? 4 : 8, 4);
    reseal(&b);
    assert_bytes_refused(b.data, b.size, _i ? "trailing bytes" : "truncated");
    free(b.data);
}
END_TEST

/* ------------------------------------------------------------ body refusals */

/* Bytes in the metadata, the first, a middle and the last parameter. */
START_TEST(flipped_byte_fails_checksum)
{
    struct bytes b = small_model_bytes(PRECISION_F32);
    const size_t params_end = b.size - CRC;
    const size_t offsets[] = {AT_SEED, AT_LR + 3, HEADER, (HEADER + params_end) / 2, params_end - 1};
    b.data[offsets[_i]] ^= 0x01;
    assert_bytes_refused(b.data, b.size, "checksum mismatch: file is corrupted");
    free(b.data);
}
END_TEST

START_TEST(flipped_crc_byte_fails_checksum)
{
    struct bytes b = small_model_bytes(PRECISION_F64);
    b.data[b.size - CRC + (size_t)_i] ^= 0x80;
    assert_bytes_refused(b.data, b.size, "checksum mismatch: file is corrupted");
    free(b.data);
}
END_TEST

/* A writer bug, not damage: the CRC is right, so only the finiteness check
 * can refuse it.  Cases: precision x {NaN, +inf, -inf} x {first, last}. */
START_TEST(non_finite_parameter_refused)
{
    static const double values[] = {NAN, INFINITY, -INFINITY};
    const enum precision precision = _i % 2 ? PRECISION_F64 : PRECISION_F32;
    const double value = values[_i / 2 % 3];
    const int last = _i / 6;
    struct bytes b = small_model_bytes(precision);
    const int width = (int)precision_size(precision);
    uint8_t *at = b.data + (last ? b.size - CRC - (size_t)width : HEADER);

    put_le(at, precision == PRECISION_F64 ? f64_bits(value) : f32_bits((float)value), width);
    reseal(&b);
    assert_bytes_refused(b.data, b.size, last ? "parameter b2[2] is not finite" : "parameter W1[0] is not finite");
    free(b.data);
}
END_TEST

START_TEST(invalid_learning_rate_refused)
{
    static const double rates[] = {NAN, -0.5, INFINITY, -INFINITY, -4.9406564584124654e-324};
    struct bytes b = small_model_bytes(PRECISION_F32);
    put_le(b.data + AT_LR, f64_bits(rates[_i]), 8);
    reseal(&b);
    assert_bytes_refused(b.data, b.size, "learning rate");
    free(b.data);
}
END_TEST

/* 2^40 would load as 0 and 0xFFFFFFFF wrap around in a 32-bit count. */
START_TEST(epochs_done_out_of_range_refused)
{
    static const uint64_t epochs[] = {MODEL_FILE_MAX_EPOCHS + 1ull, UINT32_MAX, 1ull << 40,
                                      UINT64_MAX};
    struct bytes b = small_model_bytes(PRECISION_F32);
    char phrase[96];
    put_le(b.data + AT_EPOCHS_DONE, epochs[_i], 8);
    reseal(&b);
    snprintf(phrase, sizeof phrase, "epochs_done is %llu, more than the limit of %u",
             (unsigned long long)epochs[_i], MODEL_FILE_MAX_EPOCHS);
    assert_bytes_refused(b.data, b.size, phrase);
    free(b.data);
}
END_TEST

/* ------------------------------------------------------------ length refusals */

START_TEST(truncated_file_refused)
{
    struct bytes b = small_model_bytes(PRECISION_F32);
    const size_t lengths[] = {1, 7, 8, 11, 12, HEADER - 1, HEADER, HEADER + 1,
                              (HEADER + b.size) / 2, b.size - CRC, b.size - 1};
    b.size = lengths[_i];
    assert_bytes_refused(b.data, b.size, "truncated");
    free(b.data);
}
END_TEST

START_TEST(trailing_bytes_refused)
{
    static const size_t extra[] = {1, CRC, 4096};
    struct bytes b = small_model_bytes(PRECISION_F64);
    b.data = realloc(b.data, b.size + extra[_i]);
    ck_assert_ptr_nonnull(b.data);
    memset(b.data + b.size, 0, extra[_i]);
    b.size += extra[_i];
    assert_bytes_refused(b.data, b.size, "trailing bytes");
    free(b.data);
}
END_TEST

START_TEST(empty_file_refused)
{
    assert_bytes_refused("", 0, "empty file");
}
END_TEST

/* Files of other formats, long and short. */
START_TEST(other_format_refused)
{
    static const uint8_t gzip[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03};
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const uint8_t text[] = "label,1x1,1x2\n";
    uint8_t idx[16 + 784] = {0x00, 0x00, 0x08, 0x03, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28};
    static const uint8_t nearly[] = "MNISTOMQ and enough bytes after it to fill a whole header, "
                                    "and then some more";
    const struct {
        const void *data;
        size_t size;
    } files[] = {
        {gzip, sizeof gzip}, {png, sizeof png}, {text, sizeof text - 1},
        {idx, sizeof idx},   {nearly, sizeof nearly - 1}, {"X", 1},
    };
    assert_bytes_refused(files[_i].data, files[_i].size, "not an mnist-omp model file");
}
END_TEST

/* ------------------------------------------------------------ paths that are not model files */

START_TEST(directory_refused)
{
    const char *path = testdir_path("models");
    ck_assert_int_eq(mkdir(path, 0777), 0);
    assert_load_refused(path, MODEL_FILE_MODEL, "is a directory");
}
END_TEST

/* A FIFO must be refused at once, not block waiting for a writer. */
START_TEST(fifo_refused)
{
    const char *path = testdir_path("pipe");
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    assert_load_refused(path, MODEL_FILE_MODEL, "not a regular file");
}
END_TEST

START_TEST(nonexistent_path_refused)
{
    assert_load_refused(testdir_path("no-such.model"), MODEL_FILE_MODEL, strerror(ENOENT));
}
END_TEST

/* ------------------------------------------------------------ save refusals */

static void assert_save_refused(enum model_kind kind, const struct mlp *m,
                                const struct model_metadata *meta, const char *phrase)
{
    const char *path = testdir_path("refused.model");
    struct error err = {""};

    ck_assert_int_eq(model_save(path, kind, m, meta, &err), -1);
    ck_assert_msg(strstr(err.msg, path) != NULL, "message does not name %s: %s", path, err.msg);
    ck_assert_msg(strstr(err.msg, phrase) != NULL, "expected \"%s\" in: %s", phrase, err.msg);
    ck_assert_msg(access(path, F_OK) != 0, "%s was written", path);
}

START_TEST(save_refuses_non_finite_parameter)
{
    struct mlp m;
    make_model(&m, (struct shape){3, 2, 1}, _i ? PRECISION_F64 : PRECISION_F32, 1);
    const struct mlp_layout l = mlp_layout(3, 2, 1);
    if (m.precision == PRECISION_F64)
        ((double *)m.params)[l.w2 + 1] = NAN;
    else
        ((float *)m.params)[l.w2 + 1] = INFINITY;
    assert_save_refused(MODEL_FILE_MODEL, &m, &reference_meta, "parameter W2[1] is not finite");
    mlp_free(&m);
}
END_TEST

START_TEST(save_refuses_invalid_learning_rate)
{
    struct model_metadata meta = reference_meta;
    struct mlp m;
    meta.lr = _i ? -1.0 : NAN;
    make_model(&m, (struct shape){3, 2, 1}, PRECISION_F32, 1);
    assert_save_refused(MODEL_FILE_CHECKPOINT, &m, &meta, "learning rate");
    mlp_free(&m);
}
END_TEST

START_TEST(save_refuses_too_many_epochs)
{
    struct model_metadata meta = reference_meta;
    struct mlp m;
    meta.epochs_done = MODEL_FILE_MAX_EPOCHS + 1ull;
    make_model(&m, (struct shape){3, 2, 1}, PRECISION_F32, 1);
    assert_save_refused(MODEL_FILE_CHECKPOINT, &m, &meta, "epochs_done is 100000001");
    mlp_free(&m);
}
END_TEST

START_TEST(save_refuses_layer_over_limit)
{
    struct mlp m;
    struct error err;
    ck_assert_int_eq(mlp_create(&m, (1u << 20) + 1, 1, 1, PRECISION_F32, &err), 0);
    assert_save_refused(MODEL_FILE_MODEL, &m, &reference_meta, "each must be between 1 and 1048576");
    mlp_free(&m);
}
END_TEST

START_TEST(save_refuses_unknown_kind)
{
    struct mlp m;
    make_model(&m, (struct shape){3, 2, 1}, PRECISION_F32, 1);
    assert_save_refused((enum model_kind)7, &m, &reference_meta, "unknown model file kind");
    mlp_free(&m);
}
END_TEST

START_TEST(save_refuses_path_too_long)
{
    char path[PATH_MAX];
    struct mlp m;
    struct error err = {""};

    const int length = snprintf(path, sizeof path, "%s/", testdir_dir());
    memset(path + length, 'm', sizeof path - (size_t)length - 4);
    path[sizeof path - 4] = '\0';
    make_model(&m, (struct shape){3, 2, 1}, PRECISION_F32, 1);
    ck_assert_int_eq(model_save(path, MODEL_FILE_MODEL, &m, &reference_meta, &err), -1);
    ck_assert_msg(strstr(err.msg, "too long") != NULL, "%s", err.msg);
    mlp_free(&m);
}
END_TEST

/* ------------------------------------------------------------ failed saves keep the old file */

/* Saves a 3-2-1 model to `name` and returns its bytes. */
static struct bytes save_old_model(const char *name, struct mlp *old)
{
    make_model(old, (struct shape){3, 2, 1}, PRECISION_F64, 11);
    save(testdir_path(name), MODEL_FILE_MODEL, old, &reference_meta);
    return read_bytes(testdir_path(name));
}

/* After a failed save of another model over `name`: the old file is still
 * there byte for byte, it loads, and no temporary file is left. */
static void assert_old_model_kept(const char *name, const struct bytes *old_bytes,
                                  const struct mlp *old)
{
    const char *path = testdir_path(name);
    struct bytes now = read_bytes(path);
    struct mlp loaded;
    struct error err;

    assert_same_bytes(&now, old_bytes, path);
    ck_assert_msg(model_load(path, MODEL_FILE_MODEL, &loaded, NULL, &err) == 0, "%s", err.msg);
    assert_same_model(&loaded, old);
    assert_only_entry(name);
    mlp_free(&loaded);
    free(now.data);
}

static void assert_save_failed(int status, const struct error *err, const char *path,
                               int expected_errno)
{
    ck_assert_int_eq(status, -1);
    ck_assert_msg(strstr(err->msg, path) != NULL, "message does not name %s: %s", path, err->msg);
    ck_assert_msg(strstr(err->msg, strerror(expected_errno)) != NULL, "expected \"%s\" in: %s",
                  strerror(expected_errno), err->msg);
}

/* The lowest free descriptor: with the limit on open files set to it, the
 * next open fails with EMFILE. */
static rlim_t lowest_free_descriptor(void)
{
    const int fd = open("/dev/null", O_RDONLY);
    ck_assert_int_ge(fd, 0);
    close(fd);
    return (rlim_t)fd;
}

/* No temporary file can be created beside the target.  An ordinary user
 * gets a read-only directory; root writes into one anyway, so for root the
 * process is out of file descriptors instead. */
START_TEST(failed_temp_creation_keeps_old_file)
{
    const char *path = testdir_path("model.bin"), *test_dir = testdir_dir();
    struct mlp old, new_model;
    struct error err = {""};
    struct rlimit files;
    const int as_root = geteuid() == 0;

    const struct bytes old_bytes = save_old_model("model.bin", &old);
    make_model(&new_model, (struct shape){784, 33, 10}, PRECISION_F32, 12);
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &files), 0);
    const struct rlimit exhausted = {lowest_free_descriptor(), files.rlim_max};
    ck_assert_int_eq(as_root ? setrlimit(RLIMIT_NOFILE, &exhausted) : chmod(test_dir, 0555), 0);
    const int status = model_save(path, MODEL_FILE_MODEL, &new_model, &reference_meta, &err);
    ck_assert_int_eq(as_root ? setrlimit(RLIMIT_NOFILE, &files) : chmod(test_dir, 0700), 0);

    assert_save_failed(status, &err, path, as_root ? EMFILE : EACCES);
    assert_old_model_kept("model.bin", &old_bytes, &old);
    free(old_bytes.data);
    mlp_free(&old);
    mlp_free(&new_model);
}
END_TEST

START_TEST(save_into_missing_directory_fails)
{
    const char *path = testdir_path("missing/model.bin");
    struct mlp m;
    struct error err = {""};

    make_model(&m, (struct shape){3, 2, 1}, PRECISION_F32, 1);
    assert_save_failed(model_save(path, MODEL_FILE_MODEL, &m, &reference_meta, &err), &err, path,
                       ENOENT);
    ck_assert_int_ne(access(testdir_path("missing"), F_OK), 0);
    mlp_free(&m);
}
END_TEST

/* The disk fills up midway: RLIMIT_FSIZE makes every write past the limit
 * fail with EFBIG (SIGXFSZ ignored), also for root.  The limits put the
 * failure in the header, the parameters and the CRC. */
START_TEST(failed_write_keeps_old_file)
{
    const char *path = testdir_path("model.bin");
    struct mlp old, new_model;
    struct error err = {""};

    const struct bytes old_bytes = save_old_model("model.bin", &old);
    make_model(&new_model, (struct shape){784, 33, 10}, PRECISION_F32, 12);
    const rlim_t new_size = HEADER + mlp_param_count(&new_model) * sizeof(float) + CRC;
    const rlim_t limits[] = {0, 1, HEADER - 1, HEADER, 4096, 65536, new_size - CRC, new_size - 1};
    struct rlimit sizes;

    ck_assert(signal(SIGXFSZ, SIG_IGN) != SIG_ERR);
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &sizes), 0);
    const struct rlimit small = {limits[_i], sizes.rlim_max};
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    const int status = model_save(path, MODEL_FILE_MODEL, &new_model, &reference_meta, &err);
    /* Check reports results through a file: let it write again. */
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &sizes), 0);

    assert_save_failed(status, &err, path, EFBIG);
    assert_old_model_kept("model.bin", &old_bytes, &old);
    free(old_bytes.data);
    mlp_free(&old);
    mlp_free(&new_model);
}
END_TEST

/* ------------------------------------------------------------ suite */

int main(void)
{
    Suite *suite = suite_create("modelfile");
    TCase *round_trips = testdir_tcase(suite, "round trips and layout");
    TCase *header = testdir_tcase(suite, "header refusals");
    TCase *body = testdir_tcase(suite, "body and length refusals");
    TCase *paths = testdir_tcase(suite, "paths that are not model files");
    TCase *saving = testdir_tcase(suite, "save refusals and failures");

    tcase_add_loop_test(round_trips, round_trip_is_bitwise_exact, 0, SHAPES * 2 * 2);
    tcase_add_loop_test(round_trips, metadata_extremes_round_trip, 0, 4);
    tcase_add_test(round_trips, load_without_metadata);
    tcase_add_test(round_trips, header_matches_documented_example);
    tcase_add_loop_test(round_trips, parameters_are_little_endian_in_order, 0, 2);
    tcase_add_test(round_trips, checkpoint_loads_where_a_model_is_expected);
    tcase_add_test(round_trips, model_is_refused_where_a_checkpoint_is_expected);
    tcase_add_test(round_trips, save_replaces_an_existing_file);
    tcase_add_loop_test(round_trips, saved_file_mode_follows_umask, 0, 3);

    tcase_add_loop_test(header, wrong_magic_refused, 0, 8);
    tcase_add_loop_test(header, unsupported_version_refused, 0, 3);
    tcase_add_test(header, version_1_checkpoint_loads);
    tcase_add_test(header, version_2_model_refused);
    tcase_add_loop_test(header, unknown_kind_refused, 0, 3);
    tcase_add_loop_test(header, zero_size_refused, 0, 3);
    tcase_add_loop_test(header, size_over_limit_refused, 0, 3);
    tcase_add_loop_test(header, size_larger_than_data_refused, 0, 3);
    tcase_add_test(header, largest_sizes_with_small_file_refused_without_allocating);
    tcase_add_loop_test(header, unknown_precision_refused, 0, 7);
    tcase_add_loop_test(header, precision_disagreeing_with_data_refused, 0, 2);

    tcase_add_loop_test(body, flipped_byte_fails_checksum, 0, 5);
    tcase_add_loop_test(body, flipped_crc_byte_fails_checksum, 0, CRC);
    tcase_add_loop_test(body, non_finite_parameter_refused, 0, 12);
    tcase_add_loop_test(body, invalid_learning_rate_refused, 0, 5);
    tcase_add_loop_test(body, epochs_done_out_of_range_refused, 0, 4);
    tcase_add_loop_test(body, truncated_file_refused, 0, 11);
    tcase_add_loop_test(body, trailing_bytes_refused, 0, 3);
    tcase_add_test(body, empty_file_refused);
    tcase_add_loop_test(body, other_format_refused, 0, 6);

    tcase_add_test(paths, directory_refused);
    tcase_add_test(paths, fifo_refused);
    tcase_add_test(paths, nonexistent_path_refused);

    tcase_add_loop_test(saving, save_refuses_non_finite_parameter, 0, 2);
    tcase_add_loop_test(saving, save_refuses_invalid_learning_rate, 0, 2);
    tcase_add_test(saving, save_refuses_too_many_epochs);
    tcase_add_test(saving, save_refuses_layer_over_limit);
    tcase_add_test(saving, save_refuses_unknown_kind);
    tcase_add_test(saving, save_refuses_path_too_long);
    tcase_add_test(saving, failed_temp_creation_keeps_old_file);
    tcase_add_test(saving, save_into_missing_directory_fails);
    tcase_add_loop_test(saving, failed_write_keeps_old_file, 0, 8);

    return testdir_run("test_modelfile", suite, CK_ENV);
}
