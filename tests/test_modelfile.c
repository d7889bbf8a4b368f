/* The model file format: saving and loading are bitwise exact and match the
 * layout documented in doc/model-format.md, for networks of any depth and
 * checkpoints with every optimiser's state; files of versions 1 and 2 (the
 * committed fixtures that the last build writing them made) still load;
 * every kind of damaged or foreign file is refused with a message that
 * names it and says what is wrong; a failed save leaves the previous file
 * intact and no temporary file behind.
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
#include "optimizer.h"
#include "rng.h"
#include "testdir.h"
#include "train.h"

/* The documented layout of version 3. */
enum {
    AT_VERSION = 8,
    AT_KIND = 12,
    AT_PRECISION = 16,
    AT_ACTIVATION = 20,
    AT_LOSS = 24,
    AT_OPTIMIZER = 28,
    AT_SCHEDULE = 32,
    AT_NESTEROV = 36,
    AT_EPOCHS_DONE = 40,
    AT_SEED = 48,
    AT_TRAIN_SIZE = 56,
    AT_TEST_SIZE = 64,
    AT_BATCH = 72,
    AT_EPOCHS = 80,
    AT_STEP_EPOCHS = 84,
    AT_LR = 88,
    AT_MOMENTUM = 96,
    AT_WEIGHT_DECAY = 104,
    AT_BETA1 = 112,
    AT_BETA2 = 120,
    AT_EPS = 128,
    AT_STEP_GAMMA = 136,
    AT_N_LAYERS = 144,
    AT_WIDTHS = 148,
    /* The checkpoint's training state, from the end of the widths. */
    STATE_FINGERPRINT = 0,
    STATE_TRAIN_CRC = 4,
    STATE_TEST_CRC = 8,
    STATE_EPOCH = 12,
    STATE_STEP = 16,
    STATE_P1 = 24,
    STATE_P2 = 32,
    STATE_MT_INDEX = 40,
    STATE_MT_WORDS = 44,
    STATE = 44 + 4 * 624,
    CRC = 4,
};

/* The documented layout of versions 1 and 2. */
enum {
    V1_KIND = 12,
    V1_N_IN = 16,  /* n_hidden at 20, n_out at 24 */
    V1_PRECISION = 28,
    V1_EPOCHS_DONE = 32,
    V1_LR = 48,
    V1_HEADER = 72,
    V2_FINGERPRINT = 8,
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

/* A committed fixture of tests/data/model-files (see its README). */
static const char *fixture_path(const char *name)
{
    static char path[PATH_MAX];
    const char *top = getenv("top_srcdir");
    if (!top || !*top)
        top = getenv("srcdir");
    snprintf(path, sizeof path, "%s/tests/data/model-files/%s", top && *top ? top : ".", name);
    return path;
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

/* Element i of an arena as its bits, in the documented width. */
static uint64_t element_bits(const void *arena, enum precision precision, size_t i)
{
    return precision == PRECISION_F64 ? f64_bits(((const double *)arena)[i])
                                      : f32_bits(((const float *)arena)[i]);
}

/* Puts a correct CRC-32 at the end again, so that only the check a test aims
 * at can catch its change. */
static void reseal(struct bytes *b)
{
    ck_assert_uint_ge(b->size, CRC);
    put_le(b->data + b->size - CRC, crc32(0L, b->data, (uInt)(b->size - CRC)), CRC);
}

/* ------------------------------------------------------------ networks, settings, states */

struct net {
    size_t n_layers;
    size_t widths[6];
};

/* Depths 1 to 4, every width different, a layer of one unit, MNIST's sizes. */
static const struct net nets[] = {
    {1, {7, 3}}, {2, {5, 4, 3}}, {3, {6, 5, 1, 4}}, {4, {784, 33, 5, 2, 10}},
};
enum { NETS = sizeof nets / sizeof nets[0] };

static const struct net small_net = {3, {5, 4, 3, 2}};  /* the damaged files' */
static const struct net reference_net = {2, {784, 32, 10}};

/* Values whose bits a sloppy codec would lose: negative zero, subnormals,
 * the largest finite values, a value with no short decimal form. */
static void set_awkward_values(void *arena, enum precision precision, size_t first, size_t count,
                               bool nonnegative)
{
    static const float awkward_f32[] = {-0.0f, 0x1p-149f, FLT_MAX, -1.0f / 3, 0x1p-140f, -FLT_MAX};
    static const double awkward_f64[] = {-0.0, 0x1p-1074, DBL_MAX, -1.0 / 3, 0x1p-1040, -DBL_MAX};
    enum { AWKWARD = sizeof awkward_f32 / sizeof awkward_f32[0] };

    for (size_t i = first; i < first + count; i++) {
        if (precision == PRECISION_F64)
            ((double *)arena)[i] = nonnegative ? fabs(awkward_f64[i % AWKWARD])
                                               : awkward_f64[i % AWKWARD];
        else
            ((float *)arena)[i] = nonnegative ? fabsf(awkward_f32[i % AWKWARD])
                                              : awkward_f32[i % AWKWARD];
    }
}

/* The network drawn as SPEC part 2 says, its biases (zero from the draw)
 * set to awkward values. */
static void make_model(struct mlp *m, const struct net *n, enum activation activation,
                       enum loss loss, enum precision precision, int64_t seed)
{
    struct py_random rng;
    struct error err;

    ck_assert_msg(mlp_create(m, n->n_layers, n->widths, activation, loss, precision, &err) == 0,
                  "%s", err.msg);
    py_random_seed(&rng, seed);
    mlp_init_uniform(m, &rng);
    for (size_t l = 0; l < m->n_layers; l++) {
        const struct mlp_layer layer = mlp_layer(m, l);
        set_awkward_values(m->params, precision, layer.bias, layer.n_out, false);
    }
}

static void make_plain_model(struct mlp *m, const struct net *n, enum precision precision,
                             int64_t seed)
{
    make_model(m, n, ACTIVATION_RELU, LOSS_MSE, precision, seed);
}

/* The optimiser configurations a checkpoint may hold. */
static const struct optimizer optimizers[] = {
    {OPTIMIZER_SGD, 0, false, 0, 0.9, 0.999, 1e-8},
    {OPTIMIZER_SGD, 0.9, false, 5e-4, 0.9, 0.999, 1e-8},
    {OPTIMIZER_SGD, 0.5, true, 0, 0.9, 0.999, 1e-8},
    {OPTIMIZER_ADAM, 0, false, 0, 0.9, 0.999, 1e-8},
    {OPTIMIZER_ADAM, 0, false, 1e-4, 0.5, 0.25, 1e-6},
    {OPTIMIZER_ADAMW, 0, false, 0.01, 0.9, 0.999, 1e-8},
};
enum { OPTIMIZERS = sizeof optimizers / sizeof optimizers[0] };

static struct model_metadata make_meta(const struct optimizer *o, enum schedule_kind schedule)
{
    struct model_metadata meta = {0};
    meta.epochs_done = 17;
    meta.seed = -42;
    meta.train_size = 60000;
    meta.test_size = 10000;
    meta.training.batch = 64;
    meta.training.optimizer = *o;
    meta.training.schedule = (struct schedule){schedule, 0.1, schedule == SCHEDULE_STEP ? 3 : 0,
                                               schedule == SCHEDULE_STEP ? 0.5 : 0};
    meta.training.epochs = 20;
    meta.has_fingerprint = true;
    meta.train_crc = 0x89abcdefu;
    meta.test_crc = 0xfedcba98u;
    return meta;
}

/* What loading gives back for meta saved as `kind`: a model keeps no
 * fingerprint, nor CRCs without one; a version-3 checkpoint always holds
 * its stream. */
static struct model_metadata expected_meta(const struct model_metadata *saved, bool checkpoint)
{
    struct model_metadata want = *saved;
    if (!checkpoint)
        want.has_fingerprint = false;
    if (!want.has_fingerprint)
        want.train_crc = want.test_crc = 0;
    want.has_rng_state = checkpoint;
    return want;
}

/* A state in the middle of a run: 9 of the run's epochs of 938 steps, p1
 * and p2 by repeated multiplication, the stream advanced, every moment
 * filled with values of its own. */
static void make_state(struct training_state *s, const struct optimizer *o, const struct mlp *m,
                       int64_t seed)
{
    struct error err;
    const size_t count = mlp_param_count(m);

    memset(s, 0, sizeof *s);
    ck_assert_msg(optimizer_state_create(&s->optimizer, o, count, m->precision, &err) == 0, "%s",
                  err.msg);
    s->epoch = 9;
    s->optimizer.step = 9 * 938;
    for (uint64_t t = 0; t < s->optimizer.step && o->kind != OPTIMIZER_SGD; t++) {
        s->optimizer.p1 *= o->beta1;
        s->optimizer.p2 *= o->beta2;
    }
    py_random_seed(&s->rng, seed);
    for (int k = 0; k < 1000 + (int)seed; k++)
        py_random_next32(&s->rng);
    struct py_random draw;
    py_random_seed(&draw, seed + 1);
    void *moments[2] = {s->optimizer.first_moment, s->optimizer.velocity};
    for (int k = 0; k < 2; k++) {
        if (!moments[k])
            continue;
        const bool second = k == 1 && o->kind != OPTIMIZER_SGD;
        for (size_t i = 0; i < count; i++) {
            const double value = py_random_uniform(&draw, second ? 0 : -1, 1);
            if (m->precision == PRECISION_F64)
                ((double *)moments[k])[i] = value;
            else
                ((float *)moments[k])[i] = (float)value;
        }
        set_awkward_values(moments[k], m->precision, 0, count < 6 ? count : 6, second);
    }
}

static void save(const char *path, enum model_kind kind, const struct mlp *m,
                 const struct model_metadata *meta, const struct training_state *state)
{
    struct error err;
    ck_assert_msg(model_save(path, kind, m, meta, state, &err) == 0, "%s", err.msg);
}

static void assert_same_model(const struct mlp *got, const struct mlp *want)
{
    ck_assert_uint_eq(got->n_layers, want->n_layers);
    for (size_t l = 0; l <= want->n_layers; l++)
        ck_assert_uint_eq(got->widths[l], want->widths[l]);
    ck_assert_int_eq(got->activation, want->activation);
    ck_assert_int_eq(got->loss, want->loss);
    ck_assert_int_eq(got->precision, want->precision);
    ck_assert_msg(memcmp(got->params, want->params,
                         mlp_param_count(want) * precision_size(want->precision)) == 0,
                  "the parameters differ");
}

static void assert_same_meta(const struct model_metadata *got, const struct model_metadata *want)
{
    const struct training *g = &got->training, *w = &want->training;
    ck_assert_uint_eq(got->epochs_done, want->epochs_done);
    ck_assert_int_eq(got->seed, want->seed);
    ck_assert_uint_eq(got->train_size, want->train_size);
    ck_assert_uint_eq(got->test_size, want->test_size);
    ck_assert_uint_eq(g->batch, w->batch);
    ck_assert_uint_eq(g->epochs, w->epochs);
    ck_assert_int_eq(g->optimizer.kind, w->optimizer.kind);
    ck_assert_uint_eq(f64_bits(g->optimizer.momentum), f64_bits(w->optimizer.momentum));
    ck_assert_int_eq(g->optimizer.nesterov, w->optimizer.nesterov);
    ck_assert_uint_eq(f64_bits(g->optimizer.weight_decay), f64_bits(w->optimizer.weight_decay));
    ck_assert_uint_eq(f64_bits(g->optimizer.beta1), f64_bits(w->optimizer.beta1));
    ck_assert_uint_eq(f64_bits(g->optimizer.beta2), f64_bits(w->optimizer.beta2));
    ck_assert_uint_eq(f64_bits(g->optimizer.eps), f64_bits(w->optimizer.eps));
    ck_assert_int_eq(g->schedule.kind, w->schedule.kind);
    ck_assert_uint_eq(f64_bits(g->schedule.lr), f64_bits(w->schedule.lr));
    ck_assert_uint_eq(g->schedule.step_epochs, w->schedule.step_epochs);
    ck_assert_uint_eq(f64_bits(g->schedule.step_gamma), f64_bits(w->schedule.step_gamma));
    ck_assert_int_eq(got->has_fingerprint, want->has_fingerprint);
    ck_assert_uint_eq(got->train_crc, want->train_crc);
    ck_assert_uint_eq(got->test_crc, want->test_crc);
    ck_assert_int_eq(got->has_rng_state, want->has_rng_state);
}

/* Bit for bit: epoch, step, p1, p2, the stream, and each moment the
 * optimiser has (and none it has not). */
static void assert_same_state(const struct training_state *got,
                              const struct training_state *want, const struct optimizer *o,
                              const struct mlp *m)
{
    const size_t bytes = mlp_param_count(m) * precision_size(m->precision);
    const size_t moments = optimizer_moment_count(o);

    ck_assert_uint_eq(got->epoch, want->epoch);
    ck_assert_uint_eq(got->optimizer.step, want->optimizer.step);
    ck_assert_uint_eq(f64_bits(got->optimizer.p1), f64_bits(want->optimizer.p1));
    ck_assert_uint_eq(f64_bits(got->optimizer.p2), f64_bits(want->optimizer.p2));
    ck_assert_int_eq(got->rng.index, want->rng.index);
    ck_assert_msg(memcmp(got->rng.state, want->rng.state, sizeof want->rng.state) == 0,
                  "the random stream's state differs");
    ck_assert_int_eq(got->optimizer.velocity != NULL, moments >= 1);
    ck_assert_int_eq(got->optimizer.first_moment != NULL, moments >= 2);
    if (moments >= 1)
        ck_assert_msg(memcmp(got->optimizer.velocity, want->optimizer.velocity, bytes) == 0,
                      "the velocity (second moment) differs");
    if (moments >= 2)
        ck_assert_msg(memcmp(got->optimizer.first_moment, want->optimizer.first_moment, bytes) ==
                          0,
                      "the first moment differs");
}

/* Where the parameters start in a version-3 file of n's layer list. */
static size_t params_offset(const struct net *n, bool checkpoint)
{
    return AT_WIDTHS + 4 * (n->n_layers + 1) + (checkpoint ? STATE : 0);
}

/* ------------------------------------------------------------ the damaged files' base */

/* A saved small network as bytes: a model, or an Adam checkpoint. */
static struct bytes small_file_bytes(bool checkpoint, enum precision precision)
{
    const char *path = testdir_path("small.bin");
    const struct optimizer *adam = &optimizers[3];
    const struct model_metadata meta = make_meta(adam, SCHEDULE_COSINE);
    struct mlp m;
    struct training_state state;

    make_model(&m, &small_net, ACTIVATION_TANH, LOSS_XENT, precision, 5);
    make_state(&state, adam, &m, 5);
    save(path, checkpoint ? MODEL_FILE_CHECKPOINT : MODEL_FILE_MODEL, &m, &meta,
         checkpoint ? &state : NULL);
    optimizer_state_free(&state.optimizer);
    mlp_free(&m);
    struct bytes b = read_bytes(path);
    ck_assert_int_eq(unlink(path), 0);
    return b;
}

static const size_t SMALL_STATE_AT = AT_WIDTHS + 4 * 4;

/* ------------------------------------------------------------ refusals */

static void assert_load_refused(const char *path, enum model_kind expected, const char *phrase)
{
    struct mlp m;
    struct model_metadata meta;
    struct training_state state;
    struct error err = {""};

    memset(&m, 0x5a, sizeof m);
    memset(&state, 0x5a, sizeof state);
    ck_assert_int_eq(model_load(path, expected, &m, &meta, &state, &err), -1);
    ck_assert_msg(strstr(err.msg, path) != NULL, "message does not name %s: %s", path, err.msg);
    ck_assert_msg(strstr(err.msg, phrase) != NULL, "expected \"%s\" in: %s", phrase, err.msg);
    ck_assert_ptr_null(m.params);
    ck_assert_uint_eq(m.n_layers, 0);
    ck_assert_ptr_null(state.optimizer.velocity);
    ck_assert_ptr_null(state.optimizer.first_moment);
}

static void assert_bytes_refused(const void *data, size_t size, const char *phrase)
{
    const char *path = testdir_write("damaged.model", data, size);
    assert_load_refused(path, MODEL_FILE_MODEL, phrase);
}

/* The small file (a checkpoint or a model) with a field of `bytes` bytes
 * at offset replaced, resealed, refused with `phrase`. */
static void assert_field_refused(bool checkpoint, size_t offset, uint64_t value, int bytes,
                                 const char *phrase)
{
    struct bytes b = small_file_bytes(checkpoint, PRECISION_F32);
    put_le(b.data + offset, value, bytes);
    reseal(&b);
    assert_bytes_refused(b.data, b.size, phrase);
    free(b.data);
}

static void assert_f64_field_refused(size_t offset, double value, const char *phrase)
{
    assert_field_refused(true, offset, f64_bits(value), 8, phrase);
}

/* ------------------------------------------------------------ round trips */

/* Depths 1 to 4, both precisions, both kinds, every activation and loss. */
START_TEST(deep_networks_round_trip)
{
    const struct net *n = &nets[_i % NETS];
    const enum precision precision = _i / NETS % 2 ? PRECISION_F64 : PRECISION_F32;
    const bool checkpoint = _i / NETS / 2 % 2;
    const enum activation activation = (enum activation)(_i % 3);
    const enum loss loss = (enum loss)(_i / 3 % 2);
    const struct optimizer *o = &optimizers[_i % OPTIMIZERS];
    const struct model_metadata meta = make_meta(o, (enum schedule_kind)(_i % 3));
    const struct model_metadata want = expected_meta(&meta, checkpoint);
    const char *path = testdir_path("model.bin");
    struct mlp saved, loaded;
    struct model_metadata loaded_meta;
    struct training_state state, loaded_state;
    struct error err;

    make_model(&saved, n, activation, loss, precision, 1000 + _i);
    make_state(&state, o, &saved, 7 + _i);
    save(path, checkpoint ? MODEL_FILE_CHECKPOINT : MODEL_FILE_MODEL, &saved, &meta, &state);
    ck_assert_msg(model_load(path, MODEL_FILE_MODEL, &loaded, &loaded_meta, &loaded_state,
                             &err) == 0,
                  "%s", err.msg);
    assert_same_model(&loaded, &saved);
    assert_same_meta(&loaded_meta, &want);
    if (checkpoint) {
        assert_same_state(&loaded_state, &state, o, &saved);
    } else {
        ck_assert_ptr_null(loaded_state.optimizer.velocity);
        ck_assert_ptr_null(loaded_state.optimizer.first_moment);
    }

    const size_t arrays = 1 + (checkpoint ? optimizer_moment_count(o) : 0);
    struct bytes b = read_bytes(path);
    ck_assert_uint_eq(get_le(b.data + AT_VERSION, 4), 3);
    ck_assert_uint_eq(b.size, params_offset(n, checkpoint) +
                                  arrays * mlp_param_count(&saved) * precision_size(precision) +
                                  CRC);
    free(b.data);
    assert_only_entry("model.bin");
    optimizer_state_free(&state.optimizer);
    optimizer_state_free(&loaded_state.optimizer);
    mlp_free(&saved);
    mlp_free(&loaded);
}
END_TEST

/* Every optimiser's state, in both precisions, comes back bit for bit:
 * moments, p1, p2, step, epoch and the stream. */
START_TEST(checkpoint_state_restores_bitwise)
{
    const struct optimizer *o = &optimizers[_i % OPTIMIZERS];
    const enum precision precision = _i / OPTIMIZERS ? PRECISION_F64 : PRECISION_F32;
    const struct model_metadata meta = make_meta(o, SCHEDULE_STEP);
    const char *path = testdir_path("run.ckpt");
    struct mlp m, loaded;
    struct model_metadata loaded_meta;
    struct training_state state, loaded_state;
    struct error err;

    make_model(&m, &nets[3], ACTIVATION_SIGMOID, LOSS_XENT, precision, 3);
    make_state(&state, o, &m, 40 + _i);
    save(path, MODEL_FILE_CHECKPOINT, &m, &meta, &state);
    ck_assert_msg(model_load(path, MODEL_FILE_CHECKPOINT, &loaded, &loaded_meta, &loaded_state,
                             &err) == 0,
                  "%s", err.msg);
    assert_same_model(&loaded, &m);
    const struct model_metadata want = expected_meta(&meta, true);
    assert_same_meta(&loaded_meta, &want);
    assert_same_state(&loaded_state, &state, o, &m);
    optimizer_state_free(&state.optimizer);
    optimizer_state_free(&loaded_state.optimizer);
    mlp_free(&m);
    mlp_free(&loaded);
}
END_TEST

/* The arrays follow the header in the documented order, as little-endian
 * IEEE-754: the parameters, then (Adam) m, then v. */
START_TEST(arrays_are_little_endian_in_order)
{
    const enum precision precision = _i ? PRECISION_F64 : PRECISION_F32;
    const int width = (int)precision_size(precision);
    const struct optimizer *adam = &optimizers[3];
    const struct model_metadata meta = make_meta(adam, SCHEDULE_CONSTANT);
    const char *path = testdir_path("model.bin");
    struct mlp m;
    struct training_state state;

    make_plain_model(&m, &nets[2], precision, 9);
    make_state(&state, adam, &m, 9);
    save(path, MODEL_FILE_CHECKPOINT, &m, &meta, &state);
    struct bytes b = read_bytes(path);
    const size_t count = mlp_param_count(&m), start = params_offset(&nets[2], true);
    const void *arenas[3] = {m.params, state.optimizer.first_moment, state.optimizer.velocity};
    for (size_t a = 0; a < 3; a++)
        for (size_t i = 0; i < count; i++)
            ck_assert_msg(get_le(b.data + start + (a * count + i) * (size_t)width, width) ==
                              element_bits(arenas[a], precision, i),
                          "array %zu element %zu is not stored little-endian at its place", a, i);
    ck_assert_uint_eq(b.size, start + 3 * count * (size_t)width + CRC);
    free(b.data);
    optimizer_state_free(&state.optimizer);
    mlp_free(&m);
}
END_TEST

/* The header fields sit where the documentation says. */
START_TEST(fields_are_at_their_documented_offsets)
{
    const struct optimizer o = {OPTIMIZER_SGD, 0.75, true, 0.125, 0.5, 0.25, 0.0625};
    struct model_metadata meta = make_meta(&o, SCHEDULE_STEP);
    const char *path = testdir_path("model.bin");
    struct mlp m;
    struct training_state state;

    meta.training.batch = 0x0102030405ull;
    meta.seed = -2;
    make_model(&m, &nets[2], ACTIVATION_SIGMOID, LOSS_XENT, PRECISION_F64, 9);
    make_state(&state, &o, &m, 9);
    save(path, MODEL_FILE_CHECKPOINT, &m, &meta, &state);
    struct bytes b = read_bytes(path);
    const uint8_t *s = b.data + AT_WIDTHS + 4 * 4;
    ck_assert_mem_eq(b.data, "MNISTOMP", 8);
    ck_assert_uint_eq(get_le(b.data + AT_KIND, 4), 2);
    ck_assert_uint_eq(get_le(b.data + AT_PRECISION, 4), 8);
    ck_assert_uint_eq(get_le(b.data + AT_ACTIVATION, 4), 3);
    ck_assert_uint_eq(get_le(b.data + AT_LOSS, 4), 2);
    ck_assert_uint_eq(get_le(b.data + AT_OPTIMIZER, 4), 1);
    ck_assert_uint_eq(get_le(b.data + AT_SCHEDULE, 4), 3);
    ck_assert_uint_eq(get_le(b.data + AT_NESTEROV, 4), 1);
    ck_assert_uint_eq(get_le(b.data + AT_EPOCHS_DONE, 8), 17);
    ck_assert_uint_eq(get_le(b.data + AT_SEED, 8), UINT64_MAX - 1);
    ck_assert_uint_eq(get_le(b.data + AT_TRAIN_SIZE, 8), 60000);
    ck_assert_uint_eq(get_le(b.data + AT_TEST_SIZE, 8), 10000);
    ck_assert_uint_eq(get_le(b.data + AT_BATCH, 8), 0x0102030405ull);
    ck_assert_uint_eq(get_le(b.data + AT_EPOCHS, 4), 20);
    ck_assert_uint_eq(get_le(b.data + AT_STEP_EPOCHS, 4), 3);
    ck_assert_uint_eq(get_le(b.data + AT_LR, 8), f64_bits(0.1));
    ck_assert_uint_eq(get_le(b.data + AT_MOMENTUM, 8), f64_bits(0.75));
    ck_assert_uint_eq(get_le(b.data + AT_WEIGHT_DECAY, 8), f64_bits(0.125));
    ck_assert_uint_eq(get_le(b.data + AT_BETA1, 8), f64_bits(0.5));
    ck_assert_uint_eq(get_le(b.data + AT_BETA2, 8), f64_bits(0.25));
    ck_assert_uint_eq(get_le(b.data + AT_EPS, 8), f64_bits(0.0625));
    ck_assert_uint_eq(get_le(b.data + AT_STEP_GAMMA, 8), f64_bits(0.5));
    ck_assert_uint_eq(get_le(b.data + AT_N_LAYERS, 4), 3);
    for (size_t l = 0; l <= 3; l++)
        ck_assert_uint_eq(get_le(b.data + AT_WIDTHS + 4 * l, 4), nets[2].widths[l]);
    ck_assert_uint_eq(get_le(s + STATE_FINGERPRINT, 4), 1);
    ck_assert_uint_eq(get_le(s + STATE_TRAIN_CRC, 4), 0x89abcdefu);
    ck_assert_uint_eq(get_le(s + STATE_TEST_CRC, 4), 0xfedcba98u);
    ck_assert_uint_eq(get_le(s + STATE_EPOCH, 4), 9);
    ck_assert_uint_eq(get_le(s + STATE_STEP, 8), 9 * 938);
    ck_assert_uint_eq(get_le(s + STATE_P1, 8), f64_bits(1.0));
    ck_assert_uint_eq(get_le(s + STATE_P2, 8), f64_bits(1.0));
    ck_assert_uint_eq(get_le(s + STATE_MT_INDEX, 4), (uint64_t)state.rng.index);
    for (size_t i = 0; i < 624; i++)
        ck_assert_uint_eq(get_le(s + STATE_MT_WORDS + 4 * i, 4), state.rng.state[i]);
    ck_assert_uint_eq(get_le(b.data + b.size - CRC, CRC), crc32(0L, b.data, (uInt)(b.size - CRC)));
    free(b.data);
    optimizer_state_free(&state.optimizer);
    mlp_free(&m);
}
END_TEST

START_TEST(metadata_extremes_round_trip)
{
    struct model_metadata meta = make_meta(&optimizers[_i % OPTIMIZERS], SCHEDULE_CONSTANT);
    const char *path = testdir_path("model.bin");
    struct mlp m, loaded;
    struct model_metadata got;
    struct training_state state, loaded_state;
    struct error err;

    if (_i == 0) {
        meta.epochs_done = 0;
        meta.seed = 0;
        meta.train_size = meta.test_size = 0;
        meta.training.batch = 0;
        meta.training.epochs = 0;
        meta.training.schedule.lr = 0;
        meta.train_crc = meta.test_crc = 0;
    } else if (_i == 1) {
        meta.epochs_done = MODEL_FILE_MAX_EPOCHS;
        meta.seed = INT64_MIN;
        meta.train_size = meta.test_size = UINT64_MAX;
        meta.training.batch = SIZE_MAX;
        meta.training.epochs = MODEL_FILE_MAX_EPOCHS;
        meta.training.schedule = (struct schedule){SCHEDULE_STEP, DBL_MAX, MODEL_FILE_MAX_EPOCHS,
                                                   DBL_MAX};
        meta.train_crc = meta.test_crc = UINT32_MAX;
    } else {
        meta.seed = INT64_MAX;
        meta.training.schedule.lr = 4.9406564584124654e-324;
        meta.training.optimizer.beta1 = 0;
        meta.training.optimizer.beta2 = nextafter(1, 0);
        meta.has_fingerprint = false;  /* its CRCs are not saved */
    }
    make_plain_model(&m, &nets[0], PRECISION_F64, 3);
    make_state(&state, &meta.training.optimizer, &m, 3);
    if (meta.epochs_done == 0) {  /* nothing done yet */
        state.epoch = 0;
        state.optimizer.step = 0;
        state.optimizer.p1 = state.optimizer.p2 = 1;
    }
    save(path, MODEL_FILE_CHECKPOINT, &m, &meta, &state);
    ck_assert_msg(model_load(path, MODEL_FILE_CHECKPOINT, &loaded, &got, &loaded_state, &err) ==
                      0,
                  "%s", err.msg);
    const struct model_metadata want = expected_meta(&meta, true);
    assert_same_meta(&got, &want);
    assert_same_state(&loaded_state, &state, &meta.training.optimizer, &m);
    optimizer_state_free(&state.optimizer);
    optimizer_state_free(&loaded_state.optimizer);
    mlp_free(&m);
    mlp_free(&loaded);
}
END_TEST

START_TEST(load_without_metadata_or_state)
{
    const char *path = testdir_path("run.ckpt");
    const struct model_metadata meta = make_meta(&optimizers[3], SCHEDULE_CONSTANT);
    struct mlp m, loaded;
    struct training_state state;
    struct error err;

    make_plain_model(&m, &nets[1], PRECISION_F32, 3);
    make_state(&state, &optimizers[3], &m, 3);
    save(path, MODEL_FILE_CHECKPOINT, &m, &meta, &state);
    ck_assert_msg(model_load(path, MODEL_FILE_CHECKPOINT, &loaded, NULL, NULL, &err) == 0, "%s",
                  err.msg);
    assert_same_model(&loaded, &m);
    optimizer_state_free(&state.optimizer);
    mlp_free(&m);
    mlp_free(&loaded);
}
END_TEST

/* The worked example of doc/model-format.md: the reference experiment's
 * model, header and widths byte for byte. */
START_TEST(header_matches_documented_example)
{
    static const uint8_t documented[] = {
        0x4d, 0x4e, 0x49, 0x53, 0x54, 0x4f, 0x4d, 0x50, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x39, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x70, 0x17, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xe8, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x2c, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9a, 0x99, 0x99, 0x99, 0x99, 0x99, 0xe9, 0x3f,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xcd, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xec, 0x3f, 0x2b, 0x87, 0x16, 0xd9, 0xce, 0xf7, 0xef, 0x3f,
        0x3a, 0x8c, 0x30, 0xe2, 0x8e, 0x79, 0x45, 0x3e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x02, 0x00, 0x00, 0x00, 0x10, 0x03, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00,
    };
    const struct optimizer sgd = optimizers[0];
    struct model_metadata meta = make_meta(&sgd, SCHEDULE_CONSTANT);
    const char *path = testdir_path("model.bin");
    struct mlp m;

    meta.epochs_done = 300;
    meta.seed = 1337;
    meta.train_size = 6000;
    meta.test_size = 1000;
    meta.training.batch = 0;
    meta.training.epochs = 300;
    meta.training.schedule.lr = 0.8;
    make_plain_model(&m, &reference_net, PRECISION_F32, 1337);
    save(path, MODEL_FILE_MODEL, &m, &meta, NULL);
    struct bytes b = read_bytes(path);
    ck_assert_uint_eq(sizeof documented, AT_WIDTHS + 3 * 4);
    ck_assert_uint_eq(b.size, 101964);
    for (size_t i = 0; i < sizeof documented; i++)
        ck_assert_msg(b.data[i] == documented[i], "header byte %zu is 0x%02x, documented 0x%02x",
                      i, b.data[i], documented[i]);
    ck_assert_uint_eq(get_le(b.data + b.size - CRC, CRC), crc32(0L, b.data, (uInt)(b.size - CRC)));
    free(b.data);
    mlp_free(&m);
}
END_TEST

START_TEST(checkpoint_loads_where_a_model_is_expected)
{
    const char *path = testdir_path("run.ckpt");
    const struct model_metadata meta = make_meta(&optimizers[1], SCHEDULE_CONSTANT);
    struct mlp m, loaded;
    struct model_metadata got;
    struct training_state state;
    struct error err;

    make_plain_model(&m, &nets[3], PRECISION_F64, 4);
    make_state(&state, &optimizers[1], &m, 4);
    save(path, MODEL_FILE_CHECKPOINT, &m, &meta, &state);
    ck_assert_msg(model_load(path, MODEL_FILE_MODEL, &loaded, &got, NULL, &err) == 0, "%s",
                  err.msg);
    assert_same_model(&loaded, &m);
    const struct model_metadata want = expected_meta(&meta, true);
    assert_same_meta(&got, &want);
    optimizer_state_free(&state.optimizer);
    mlp_free(&m);
    mlp_free(&loaded);
}
END_TEST

START_TEST(model_is_refused_where_a_checkpoint_is_expected)
{
    const char *path = testdir_path("final.model");
    const struct model_metadata meta = make_meta(&optimizers[0], SCHEDULE_CONSTANT);
    struct mlp m;

    make_plain_model(&m, &nets[3], PRECISION_F32, 4);
    save(path, MODEL_FILE_MODEL, &m, &meta, NULL);
    assert_load_refused(path, MODEL_FILE_CHECKPOINT, "is a model file, not a checkpoint");
    mlp_free(&m);
}
END_TEST

START_TEST(save_replaces_an_existing_file)
{
    const char *path = testdir_path("model.bin");
    const struct model_metadata meta = make_meta(&optimizers[0], SCHEDULE_CONSTANT);
    struct mlp first, second, loaded;
    struct error err;

    make_plain_model(&first, &nets[0], PRECISION_F32, 1);
    make_plain_model(&second, &nets[3], PRECISION_F64, 2);
    save(path, MODEL_FILE_MODEL, &first, &meta, NULL);
    save(path, MODEL_FILE_MODEL, &second, &meta, NULL);
    ck_assert_msg(model_load(path, MODEL_FILE_MODEL, &loaded, NULL, NULL, &err) == 0, "%s",
                  err.msg);
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
    const struct model_metadata meta = make_meta(&optimizers[0], SCHEDULE_CONSTANT);
    struct mlp m;
    struct stat st;

    make_plain_model(&m, &nets[0], PRECISION_F32, 1);
    umask(masks[_i]);
    save(path, MODEL_FILE_MODEL, &m, &meta, NULL);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0666 & ~masks[_i]);
    mlp_free(&m);
}
END_TEST

/* ------------------------------------------------------------ versions 1 and 2 */

/* The parameters of a version-1 or -2 fixture, decoded here from the
 * documented layout, are what the loader gives. */
static void assert_fixture_params(const struct mlp *m, const struct bytes *b, size_t start)
{
    const int width = (int)precision_size(m->precision);
    const size_t count = mlp_param_count(m);
    ck_assert_uint_eq(b->size, start + count * (size_t)width + CRC);
    for (size_t i = 0; i < count; i++)
        ck_assert_msg(element_bits(m->params, m->precision, i) ==
                          get_le(b->data + start + i * (size_t)width, width),
                      "parameter %zu differs from the file's", i);
}

/* What a version-1 or -2 file's settings read as (modelfile.h). */
static void assert_legacy_training(const struct training *t, double lr, unsigned epochs)
{
    ck_assert_uint_eq(t->batch, 0);
    ck_assert_uint_eq(t->epochs, epochs);
    ck_assert_int_eq(t->optimizer.kind, OPTIMIZER_SGD);
    ck_assert(t->optimizer.momentum == 0 && !t->optimizer.nesterov &&
              t->optimizer.weight_decay == 0);
    ck_assert(t->optimizer.beta1 == 0.9 && t->optimizer.beta2 == 0.999 &&
              t->optimizer.eps == 1e-8);
    ck_assert_int_eq(t->schedule.kind, SCHEDULE_CONSTANT);
    ck_assert_uint_eq(f64_bits(t->schedule.lr), f64_bits(lr));
    ck_assert_uint_eq(t->schedule.step_epochs, 0);
    ck_assert(t->schedule.step_gamma == 0);
}

/* The committed version-1 model (tests/data/model-files/README). */
START_TEST(version_1_model_loads)
{
    const char *path = fixture_path("v1-784-2-10-f32.model");
    struct mlp m;
    struct model_metadata meta;
    struct training_state state;
    struct error err;

    ck_assert_msg(model_load(path, MODEL_FILE_MODEL, &m, &meta, &state, &err) == 0, "%s",
                  err.msg);
    ck_assert_uint_eq(m.n_layers, 2);
    ck_assert(m.widths[0] == 784 && m.widths[1] == 2 && m.widths[2] == 10);
    ck_assert(m.activation == ACTIVATION_RELU && m.loss == LOSS_MSE &&
              m.precision == PRECISION_F32);
    ck_assert_uint_eq(meta.epochs_done, 1);
    ck_assert_int_eq(meta.seed, 7);
    ck_assert(meta.train_size == 100 && meta.test_size == 10);
    assert_legacy_training(&meta.training, 0.5, 1);
    ck_assert(!meta.has_fingerprint && !meta.has_rng_state);
    ck_assert_ptr_null(state.optimizer.velocity);
    struct bytes b = read_bytes(path);
    assert_fixture_params(&m, &b, V1_HEADER);
    free(b.data);
    mlp_free(&m);
    /* A model is no checkpoint in any version. */
    assert_load_refused(path, MODEL_FILE_CHECKPOINT, "is a model file, not a checkpoint");
}
END_TEST

/* The committed version-2 checkpoint, and the state model_load fills in. */
START_TEST(version_2_checkpoint_loads)
{
    const char *path = fixture_path("v2-784-3-10-f64.ckpt");
    struct mlp m;
    struct model_metadata meta;
    struct training_state state;
    struct error err;

    ck_assert_msg(model_load(path, MODEL_FILE_CHECKPOINT, &m, &meta, &state, &err) == 0, "%s",
                  err.msg);
    ck_assert(m.n_layers == 2 && m.widths[0] == 784 && m.widths[1] == 3 && m.widths[2] == 10);
    ck_assert(m.activation == ACTIVATION_RELU && m.loss == LOSS_MSE &&
              m.precision == PRECISION_F64);
    ck_assert_uint_eq(meta.epochs_done, 1);
    ck_assert_int_eq(meta.seed, 11);
    assert_legacy_training(&meta.training, 0.25, 1);
    struct bytes b = read_bytes(path);
    ck_assert(meta.has_fingerprint);
    ck_assert_uint_eq(meta.train_crc, get_le(b.data + V1_HEADER, 4));
    ck_assert_uint_eq(meta.test_crc, get_le(b.data + V1_HEADER + 4, 4));
    ck_assert(!meta.has_rng_state);
    ck_assert_uint_eq(state.epoch, 1);
    ck_assert_uint_eq(state.optimizer.step, 1);
    ck_assert(state.optimizer.p1 == 1 && state.optimizer.p2 == 1);
    ck_assert_ptr_null(state.optimizer.velocity);
    ck_assert_ptr_null(state.optimizer.first_moment);
    assert_fixture_params(&m, &b, V1_HEADER + V2_FINGERPRINT);
    free(b.data);
    mlp_free(&m);
}
END_TEST

/* A version-1 checkpoint (from before fingerprints) still loads, without one. */
START_TEST(version_1_checkpoint_loads)
{
    struct bytes b = read_bytes(fixture_path("v1-784-2-10-f32.model"));
    struct mlp m;
    struct model_metadata meta;
    struct training_state state;
    struct error err;

    put_le(b.data + V1_KIND, 2, 4);
    reseal(&b);
    const char *path = testdir_write("old.ckpt", b.data, b.size);
    ck_assert_msg(model_load(path, MODEL_FILE_CHECKPOINT, &m, &meta, &state, &err) == 0, "%s",
                  err.msg);
    ck_assert(!meta.has_fingerprint && !meta.has_rng_state);
    ck_assert_uint_eq(state.epoch, 1);
    ck_assert_uint_eq(state.optimizer.step, 1);
    assert_fixture_params(&m, &b, V1_HEADER);
    mlp_free(&m);
    free(b.data);
}
END_TEST

/* Version 2 is for checkpoints only. */
START_TEST(version_2_model_refused)
{
    struct bytes b = read_bytes(fixture_path("v2-784-3-10-f64.ckpt"));
    put_le(b.data + V1_KIND, 1, 4);
    reseal(&b);
    assert_bytes_refused(b.data, b.size, "a version 2 file must be a checkpoint (kind 2), not kind 1");
    free(b.data);
}
END_TEST

/* An old checkpoint saves as version 3 once the caller has re-derived its
 * stream, and loads back with the same network and settings; saved with
 * the zeroed stream model_load left, it is refused. */
START_TEST(old_checkpoint_saves_as_version_3)
{
    const char *path = testdir_path("new.ckpt");
    struct mlp m, again;
    struct model_metadata meta, got;
    struct training_state state, got_state;
    struct error err = {""};

    ck_assert_msg(model_load(fixture_path("v2-784-3-10-f64.ckpt"), MODEL_FILE_CHECKPOINT, &m,
                             &meta, &state, &err) == 0,
                  "%s", err.msg);
    ck_assert_int_eq(model_save(path, MODEL_FILE_CHECKPOINT, &m, &meta, &state, &err), -1);
    ck_assert_msg(strstr(err.msg, "random stream's state is all zeros"), "%s", err.msg);
    ck_assert_int_ne(access(path, F_OK), 0);
    py_random_seed(&state.rng, meta.seed);
    save(path, MODEL_FILE_CHECKPOINT, &m, &meta, &state);
    ck_assert_msg(model_load(path, MODEL_FILE_CHECKPOINT, &again, &got, &got_state, &err) == 0,
                  "%s", err.msg);
    struct bytes b = read_bytes(path);
    ck_assert_uint_eq(get_le(b.data + AT_VERSION, 4), 3);
    free(b.data);
    assert_same_model(&again, &m);
    meta.has_rng_state = true;
    assert_same_meta(&got, &meta);
    assert_same_state(&got_state, &state, &meta.training.optimizer, &m);
    mlp_free(&m);
    mlp_free(&again);
}
END_TEST

/* The checks of versions 1 and 2, on the fixture: sizes, precision, kind,
 * learning rate, epochs. */
START_TEST(version_1_fields_refused)
{
    static const struct {
        size_t offset;
        uint64_t value;
        int bytes;
        const char *phrase;
    } cases[] = {
        {V1_N_IN, 0, 4, "layer widths 0-2-10 are invalid: each must be between 1 and 1048576"},
        {V1_N_IN + 4, (1u << 20) + 1, 4, "each must be between 1 and 1048576"},
        {V1_N_IN + 8, 0, 4, "each must be between 1 and 1048576"},
        {V1_N_IN + 4, 3, 4, "truncated"},
        {V1_PRECISION, 2, 4, "unknown precision code 2"},
        {V1_PRECISION, 8, 4, "truncated"},
        {V1_KIND, 3, 4, "unknown file kind 3"},
        {V1_LR, 0xbff0000000000000ull, 8, "learning rate -1 is invalid"},
        {V1_LR, 0x7ff8000000000000ull, 8, "learning rate nan is invalid"},
        {V1_EPOCHS_DONE, MODEL_FILE_MAX_EPOCHS + 1ull, 8,
         "epochs_done is 100000001, more than the limit of 100000000"},
        {V1_HEADER, 0x7fc00000u, 4, "parameter W1[0] is not finite"},
    };
    struct bytes b = read_bytes(fixture_path("v1-784-2-10-f32.model"));
    put_le(b.data + cases[_i].offset, cases[_i].value, cases[_i].bytes);
    reseal(&b);
    assert_bytes_refused(b.data, b.size, cases[_i].phrase);
    free(b.data);
}
END_TEST

/* ------------------------------------------------------------ header refusals */

START_TEST(wrong_magic_refused)
{
    struct bytes b = small_file_bytes(false, PRECISION_F32);
    b.data[_i] ^= 0x20;
    reseal(&b);
    assert_bytes_refused(b.data, b.size, "not an mnist-omp model file");
    free(b.data);
}
END_TEST

START_TEST(unsupported_version_refused)
{
    static const uint32_t versions[] = {0, 4, 0xffffffffu};
    char phrase[64];
    snprintf(phrase, sizeof phrase, "unsupported version %u", (unsigned)versions[_i]);
    assert_field_refused(false, AT_VERSION, versions[_i], 4, phrase);
}
END_TEST

/* Each code field, just outside its range at both ends and far out. */
START_TEST(unknown_code_refused)
{
    static const struct {
        size_t offset;
        uint32_t value;
        const char *phrase;
    } cases[] = {
        {AT_KIND, 0, "unknown file kind 0"},
        {AT_KIND, 3, "unknown file kind 3"},
        {AT_PRECISION, 0, "unknown precision code 0"},
        {AT_PRECISION, 2, "unknown precision code 2"},
        {AT_PRECISION, 16, "unknown precision code 16"},
        {AT_ACTIVATION, 0, "unknown activation code 0 (1 relu, 2 tanh, 3 sigmoid)"},
        {AT_ACTIVATION, 4, "unknown activation code 4"},
        {AT_LOSS, 0, "unknown loss code 0 (1 mse, 2 xent)"},
        {AT_LOSS, 3, "unknown loss code 3"},
        {AT_OPTIMIZER, 0, "unknown optimizer code 0 (1 sgd, 2 adam, 3 adamw)"},
        {AT_OPTIMIZER, 4, "unknown optimizer code 4"},
        {AT_SCHEDULE, 0, "unknown schedule code 0 (1 constant, 2 cosine, 3 step)"},
        {AT_SCHEDULE, 4, "unknown schedule code 4"},
        {AT_SCHEDULE, 0xffffffffu, "unknown schedule code 4294967295"},
        {AT_NESTEROV, 2, "the nesterov flag is 2, not 0 or 1"},
    };
    assert_field_refused(_i % 2, cases[_i / 2].offset, cases[_i / 2].value, 4,
                         cases[_i / 2].phrase);
}
END_TEST

START_TEST(layer_count_out_of_range_refused)
{
    static const uint32_t counts[] = {0, 65, 0xffffffffu};
    char phrase[96];
    snprintf(phrase, sizeof phrase, "%u layers of weights, but a network has 1 to 64",
             (unsigned)counts[_i]);
    assert_field_refused(true, AT_N_LAYERS, counts[_i], 4, phrase);
}
END_TEST

/* A zero or too wide width at each place of the list. */
START_TEST(width_out_of_range_refused)
{
    const size_t place = (size_t)_i % 4;
    const uint32_t value = _i / 4 ? (1u << 20) + 1 : 0;
    assert_field_refused(_i % 2, AT_WIDTHS + 4 * place, value, 4,
                         "are invalid: each must be between 1 and 1048576");
}
END_TEST

/* A width one larger than the real one asks for more bytes than there are;
 * one layer fewer leaves bytes over. */
START_TEST(shape_disagreeing_with_data_refused)
{
    struct bytes b = small_file_bytes(_i % 2, PRECISION_F32);
    if (_i < 8) {
        const size_t offset = AT_WIDTHS + 4 * (size_t)(_i / 2);
        put_le(b.data + offset, get_le(b.data + offset, 4) + 1, 4);
    } else {
        put_le(b.data + AT_N_LAYERS, 2, 4);
    }
    reseal(&b);
    assert_bytes_refused(b.data, b.size, _i < 8 ? "truncated" : "trailing bytes");
    free(b.data);
}
END_TEST

/* The momentum decides whether SGD keeps a velocity, so it is part of the
 * layout: made nonzero, the file is a moment array short. */
START_TEST(moments_disagreeing_with_data_refused)
{
    const char *path = testdir_path("sgd.ckpt");
    const struct model_metadata meta = make_meta(&optimizers[0], SCHEDULE_CONSTANT);
    struct mlp m;
    struct training_state state;

    make_plain_model(&m, &small_net, PRECISION_F32, 3);
    make_state(&state, &optimizers[0], &m, 3);
    save(path, MODEL_FILE_CHECKPOINT, &m, &meta, &state);
    struct bytes b = read_bytes(path);
    put_le(b.data + AT_MOMENTUM, f64_bits(0.9), 8);
    reseal(&b);
    assert_bytes_refused(b.data, b.size, "float32 checkpoint with 1 moment array has");
    free(b.data);
    optimizer_state_free(&state.optimizer);
    mlp_free(&m);
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

/* 64 layers of 2^20 units with Adam's moments describe a file of petabytes.
 * A loader that allocated before comparing with the real length would fail
 * here for lack of memory (the address-space limit stops an overcommitting
 * system from granting it lazily) instead of saying the file is truncated. */
START_TEST(largest_shape_with_small_file_refused_without_allocating)
{
    struct bytes small = small_file_bytes(true, PRECISION_F64);
    struct bytes b = {malloc(4096), 4096};
#ifndef UNDER_ASAN
    const struct rlimit limit = {(rlim_t)1 << 30, (rlim_t)1 << 30};
    struct rlimit current;
    ck_assert_int_eq(getrlimit(RLIMIT_AS, &current), 0);
    if (current.rlim_cur == RLIM_INFINITY || current.rlim_cur > limit.rlim_cur)
        ck_assert_int_eq(setrlimit(RLIMIT_AS, &limit), 0);
#endif
    ck_assert_ptr_nonnull(b.data);
    memset(b.data, 0, b.size);
    memcpy(b.data, small.data, AT_WIDTHS);
    put_le(b.data + AT_N_LAYERS, 64, 4);
    for (size_t l = 0; l <= 64; l++)
        put_le(b.data + AT_WIDTHS + 4 * l, 1u << 20, 4);
    reseal(&b);
    assert_bytes_refused(b.data, b.size,
                         "-1048576 float64 checkpoint with 2 moment arrays has 1688851470879624");
    free(b.data);
    free(small.data);
}
END_TEST

/* A valid precision code that disagrees with the data: float32 data read as
 * float64 needs twice the bytes, and the other way round leaves half over. */
START_TEST(precision_disagreeing_with_data_refused)
{
    struct bytes b = small_file_bytes(_i / 2, _i % 2 ? PRECISION_F64 : PRECISION_F32);
    put_le(b.data + AT_PRECISION, _i % 2 ? 4 : 8, 4);
    reseal(&b);
    assert_bytes_refused(b.data, b.size, _i % 2 ? "trailing bytes" : "truncated");
    free(b.data);
}
END_TEST

/* ------------------------------------------------------------ the training state's fields */

START_TEST(state_fields_refused)
{
    static const struct {
        size_t offset;
        uint64_t value;
        int bytes;
        const char *phrase;
    } cases[] = {
        {STATE_FINGERPRINT, 2, 4, "the fingerprint flag is 2, not 0 or 1"},
        {STATE_FINGERPRINT, 0, 4, "with the fingerprint flag 0"},
        {STATE_EPOCH, MODEL_FILE_MAX_EPOCHS + 1ull, 4, "epoch is 100000001, more than the limit"},
        {STATE_EPOCH, 18, 4, "the training state is at epoch 18, after the 17 epochs done"},
        {STATE_EPOCH, 0, 4, "the optimiser is at step 8442 before any epoch"},
        {STATE_STEP, 0, 8, "before the first step the optimiser's p1 and p2 are 1"},
        {STATE_P1, 0x3ff0000000000001ull, 8, "must lie in [0, 1]"},
        {STATE_P1, 0xbff0000000000000ull, 8, "p1 = -1 and p2"},
        {STATE_P2, 0x7ff8000000000000ull, 8, "and p2 = nan (powers of the betas)"},
        {STATE_MT_INDEX, 625, 4, "the random stream's index is 625, outside 0..624"},
        {STATE_MT_INDEX, 0xffffffffu, 4, "the random stream's index is 4294967295"},
    };
    assert_field_refused(true, SMALL_STATE_AT + cases[_i].offset, cases[_i].value,
                         cases[_i].bytes, cases[_i].phrase);
}
END_TEST

/* A zeroed stream is no MT19937 state a seeded generator reaches. */
START_TEST(zeroed_stream_refused)
{
    struct bytes b = small_file_bytes(true, PRECISION_F32);
    memset(b.data + SMALL_STATE_AT + STATE_MT_WORDS, 0, 4 * 624);
    reseal(&b);
    assert_bytes_refused(b.data, b.size, "the random stream's state is all zeros");
    free(b.data);
}
END_TEST

/* ------------------------------------------------------------ the settings' values */

START_TEST(settings_out_of_range_refused)
{
    static const struct {
        size_t offset;
        double value;
        const char *phrase;
    } cases[] = {
        {AT_LR, NAN, "learning rate nan is invalid: it must be finite and >= 0"},
        {AT_LR, -0.5, "learning rate -0.5 is invalid"},
        {AT_LR, INFINITY, "learning rate inf is invalid"},
        {AT_LR, -4.9406564584124654e-324, "learning rate -4.94066e-324 is invalid"},
        {AT_MOMENTUM, -0.1, "momentum -0.1 is invalid: it must lie in [0, 1)"},
        {AT_MOMENTUM, 1, "momentum 1 is invalid"},
        {AT_WEIGHT_DECAY, -1, "weight decay -1 is invalid"},
        {AT_WEIGHT_DECAY, INFINITY, "weight decay inf is invalid"},
        {AT_BETA1, 1, "beta1 1 is invalid: it must lie in [0, 1)"},
        {AT_BETA1, -0.1, "beta1 -0.1 is invalid"},
        {AT_BETA1, NAN, "beta1 nan is invalid"},
        {AT_BETA2, 1.5, "beta2 1.5 is invalid"},
        {AT_EPS, -1e-8, "eps -1e-08 is invalid: it must be finite and > 0"},
        {AT_EPS, 0, "eps 0 is invalid"},
        {AT_EPS, NAN, "eps nan is invalid"},
        {AT_STEP_GAMMA, -0.5, "step_gamma -0.5 is invalid"},
        {AT_STEP_GAMMA, -INFINITY, "step_gamma -inf is invalid"},
    };
    assert_f64_field_refused(cases[_i].offset, cases[_i].value, cases[_i].phrase);
}
END_TEST

START_TEST(counts_out_of_range_refused)
{
    static const struct {
        size_t offset;
        uint64_t value;
        int bytes;
        const char *phrase;
    } cases[] = {
        {AT_EPOCHS_DONE, MODEL_FILE_MAX_EPOCHS + 1ull, 8,
         "epochs_done is 100000001, more than the limit of 100000000"},
        {AT_EPOCHS_DONE, 1ull << 40, 8, "epochs_done is 1099511627776, more than the limit"},
        {AT_EPOCHS_DONE, UINT64_MAX, 8, "epochs_done is 18446744073709551615"},
        {AT_EPOCHS, MODEL_FILE_MAX_EPOCHS + 1ull, 4, "the planned number of epochs is 100000001"},
        {AT_STEP_EPOCHS, 0xffffffffu, 4, "step_epochs is 4294967295, more than the limit"},
    };
    assert_field_refused(true, cases[_i].offset, cases[_i].value, cases[_i].bytes,
                         cases[_i].phrase);
}
END_TEST

/* Nesterov without momentum or with Adam; the step schedule without its
 * period or its factor. */
START_TEST(inconsistent_settings_refused)
{
    struct bytes b = small_file_bytes(false, PRECISION_F32);
    const char *phrase;
    put_le(b.data + AT_NESTEROV, 1, 4);
    if (_i == 0) {  /* sgd, momentum 0 */
        put_le(b.data + AT_OPTIMIZER, 1, 4);
        phrase = "Nesterov momentum needs sgd with a momentum > 0, not sgd with momentum 0";
    } else if (_i == 1) {  /* adam, even with a momentum */
        put_le(b.data + AT_MOMENTUM, f64_bits(0.9), 8);
        phrase = "Nesterov momentum needs sgd with a momentum > 0, not adam";
    } else if (_i == 2) {
        put_le(b.data + AT_NESTEROV, 0, 4);
        put_le(b.data + AT_SCHEDULE, 3, 4);
        put_le(b.data + AT_STEP_EPOCHS, 0, 4);
        phrase = "the step schedule needs step_epochs >= 1 and step_gamma > 0 (they are 0 and 0)";
    } else {
        put_le(b.data + AT_NESTEROV, 0, 4);
        put_le(b.data + AT_SCHEDULE, 3, 4);
        put_le(b.data + AT_STEP_EPOCHS, 2, 4);
        phrase = "(they are 2 and 0)";
    }
    reseal(&b);
    assert_bytes_refused(b.data, b.size, phrase);
    free(b.data);
}
END_TEST

/* ------------------------------------------------------------ body refusals */

/* Bytes in the settings, the state, the first parameter, the
 * moments and the last byte before the CRC. */
START_TEST(flipped_byte_fails_checksum)
{
    struct bytes b = small_file_bytes(true, PRECISION_F32);
    const size_t end = b.size - CRC;
    const size_t offsets[] = {AT_SEED, AT_LR + 3, AT_EPS, AT_STEP_GAMMA + 1,
                              SMALL_STATE_AT + STATE_TRAIN_CRC, SMALL_STATE_AT + STATE_P1 + 7,
                              SMALL_STATE_AT + STATE_MT_WORDS + 1000,
                              SMALL_STATE_AT + STATE, (SMALL_STATE_AT + STATE + end) / 2, end - 1};
    b.data[offsets[_i]] ^= 0x01;
    assert_bytes_refused(b.data, b.size, "checksum mismatch: file is corrupted");
    free(b.data);
}
END_TEST

START_TEST(flipped_crc_byte_fails_checksum)
{
    struct bytes b = small_file_bytes(false, PRECISION_F64);
    b.data[b.size - CRC + (size_t)_i] ^= 0x80;
    assert_bytes_refused(b.data, b.size, "checksum mismatch: file is corrupted");
    free(b.data);
}
END_TEST

/* A writer bug, not damage: the CRC is right, so only the value checks can
 * refuse it.  Cases: precision x {NaN, +inf, -inf} x {first parameter, last
 * parameter, first moment's first, second moment's last}; and a negative
 * second moment. */
START_TEST(non_finite_array_element_refused)
{
    static const double values[] = {NAN, INFINITY, -INFINITY, -1};
    static const char *const phrases[] = {
        "parameter W1[0] is not finite", "parameter b3[1] is not finite",
        "first moment W1[0] is not finite", "second moment b3[1] is not finite"};
    const enum precision precision = _i % 2 ? PRECISION_F64 : PRECISION_F32;
    const int value = _i / 2 % 4, place = _i / 8;
    struct bytes b = small_file_bytes(true, precision);
    const size_t width = precision_size(precision), count = 5 * 4 + 4 + 4 * 3 + 3 + 3 * 2 + 2;
    const size_t start = SMALL_STATE_AT + STATE;
    const size_t offsets[] = {start, start + (count - 1) * width, start + count * width,
                              start + (3 * count - 1) * width};
    put_le(b.data + offsets[place],
           precision == PRECISION_F64 ? f64_bits(values[value]) : f32_bits((float)values[value]),
           (int)width);
    reseal(&b);
    const char *phrase = phrases[place];
    if (values[value] == -1)  /* a finite value: only a second moment must not be negative */
        phrase = place == 3 ? "second moment b3[1] is negative (-1)" : NULL;
    if (phrase) {
        assert_bytes_refused(b.data, b.size, phrase);
    } else {
        struct mlp m;
        struct training_state state;
        struct error err;
        const char *path = testdir_write("fine.ckpt", b.data, b.size);
        ck_assert_msg(model_load(path, MODEL_FILE_CHECKPOINT, &m, NULL, &state, &err) == 0, "%s",
                      err.msg);
        optimizer_state_free(&state.optimizer);
        mlp_free(&m);
    }
    free(b.data);
}
END_TEST

START_TEST(truncated_file_refused)
{
    struct bytes b = small_file_bytes(true, PRECISION_F32);
    const size_t lengths[] = {1, 7, 8, 11, 12, AT_WIDTHS - 1, AT_WIDTHS, AT_WIDTHS + 1,
                              SMALL_STATE_AT, SMALL_STATE_AT + STATE, (SMALL_STATE_AT + b.size) / 2,
                              b.size - CRC, b.size - 1};
    b.size = lengths[_i];
    assert_bytes_refused(b.data, b.size, "truncated");
    free(b.data);
}
END_TEST

START_TEST(trailing_bytes_refused)
{
    static const size_t extra[] = {1, CRC, 4096};
    struct bytes b = small_file_bytes(_i % 2, PRECISION_F64);
    b.data = realloc(b.data, b.size + extra[_i / 2]);
    ck_assert_ptr_nonnull(b.data);
    memset(b.data + b.size, 0, extra[_i / 2]);
    b.size += extra[_i / 2];
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
                                const struct model_metadata *meta,
                                const struct training_state *state, const char *phrase)
{
    const char *path = testdir_path("refused.model");
    struct error err = {""};

    ck_assert_int_eq(model_save(path, kind, m, meta, state, &err), -1);
    ck_assert_msg(strstr(err.msg, path) != NULL, "message does not name %s: %s", path, err.msg);
    ck_assert_msg(strstr(err.msg, phrase) != NULL, "expected \"%s\" in: %s", phrase, err.msg);
    ck_assert_msg(access(path, F_OK) != 0, "%s was written", path);
}

/* What model_load would refuse, model_save does not write: one case for
 * each kind of check. */
START_TEST(save_refuses_what_load_would)
{
    const struct optimizer *adam = &optimizers[3];
    struct model_metadata meta = make_meta(adam, SCHEDULE_CONSTANT);
    struct mlp m;
    struct training_state state;
    const char *phrase = NULL;
    enum model_kind kind = MODEL_FILE_CHECKPOINT;
    const struct training_state *given = &state;

    make_model(&m, &small_net, ACTIVATION_RELU, LOSS_MSE, _i % 2 ? PRECISION_F64 : PRECISION_F32,
               1);
    make_state(&state, adam, &m, 1);
    const struct mlp_layer last = mlp_layer(&m, 2);
    void *const moment = state.optimizer.velocity;
    void *const first_moment = state.optimizer.first_moment;
    switch (_i / 2) {
    case 0:
        if (m.precision == PRECISION_F64)
            ((double *)m.params)[last.weights + 1] = NAN;
        else
            ((float *)m.params)[last.weights + 1] = INFINITY;
        phrase = "parameter W3[1] is not finite";
        break;
    case 1:
        if (m.precision == PRECISION_F64)
            ((double *)moment)[3] = -1;
        else
            ((float *)moment)[3] = -1;
        phrase = "second moment W1[3] is negative";
        break;
    case 2:
        meta.training.schedule.lr = NAN;
        phrase = "learning rate nan is invalid";
        break;
    case 3:
        meta.epochs_done = MODEL_FILE_MAX_EPOCHS + 1ull;
        phrase = "epochs_done is 100000001";
        break;
    case 4:
        meta.training.optimizer.nesterov = true;
        phrase = "Nesterov momentum needs sgd";
        break;
    case 5:
        meta.training.optimizer.beta2 = 1;
        phrase = "beta2 1 is invalid";
        break;
    case 6:
        m.widths[2] = MLP_MAX_WIDTH + 1;
        phrase = "layer widths 5-4-1048577-2 are invalid";
        break;
    case 7:
        m.activation = (enum activation)3;
        phrase = "unknown activation code 4";
        break;
    case 8:
        kind = (enum model_kind)7;
        phrase = "unknown model file kind 7";
        break;
    case 9:
        given = NULL;
        phrase = "a checkpoint needs the training state";
        break;
    case 10:
        state.optimizer.first_moment = NULL;
        phrase = "there is no first moment array";
        break;
    case 11:
        memset(state.rng.state, 0, sizeof state.rng.state);
        phrase = "the random stream's state is all zeros";
        break;
    case 12:
        state.rng.index = 625;
        phrase = "the random stream's index is 625";
        break;
    case 13:
        state.epoch = 18;
        phrase = "at epoch 18, after the 17 epochs done";
        break;
    default:
        m.n_layers = 0;
        phrase = "0 layers of weights";
        break;
    }
    assert_save_refused(kind, &m, &meta, given, phrase);
    state.optimizer.first_moment = first_moment;
    optimizer_state_free(&state.optimizer);
    m.n_layers = 3;
    mlp_free(&m);
}
END_TEST

/* A model file holds no state: none is needed, and a bad one is not looked at. */
START_TEST(model_ignores_the_state)
{
    const char *path = testdir_path("model.bin");
    const struct model_metadata meta = make_meta(&optimizers[3], SCHEDULE_CONSTANT);
    struct mlp m;
    struct training_state state;

    make_plain_model(&m, &small_net, PRECISION_F32, 1);
    make_state(&state, &optimizers[3], &m, 1);
    state.rng.index = -1;
    save(path, MODEL_FILE_MODEL, &m, &meta, &state);
    optimizer_state_free(&state.optimizer);
    mlp_free(&m);
}
END_TEST

START_TEST(save_refuses_path_too_long)
{
    char path[PATH_MAX];
    const struct model_metadata meta = make_meta(&optimizers[0], SCHEDULE_CONSTANT);
    struct mlp m;
    struct error err = {""};

    const int length = snprintf(path, sizeof path, "%s/", testdir_dir());
    memset(path + length, 'm', sizeof path - (size_t)length - 4);
    path[sizeof path - 4] = '\0';
    make_plain_model(&m, &nets[0], PRECISION_F32, 1);
    ck_assert_int_eq(model_save(path, MODEL_FILE_MODEL, &m, &meta, NULL, &err), -1);
    ck_assert_msg(strstr(err.msg, "too long") != NULL, "%s", err.msg);
    mlp_free(&m);
}
END_TEST

/* ------------------------------------------------------------ failed saves keep the old file */

static const struct model_metadata *plain_meta(void)
{
    static struct model_metadata meta;
    meta = make_meta(&optimizers[0], SCHEDULE_CONSTANT);
    return &meta;
}

/* Saves a small model to `name` and returns its bytes. */
static struct bytes save_old_model(const char *name, struct mlp *old)
{
    make_plain_model(old, &nets[1], PRECISION_F64, 11);
    save(testdir_path(name), MODEL_FILE_MODEL, old, plain_meta(), NULL);
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
    ck_assert_msg(model_load(path, MODEL_FILE_MODEL, &loaded, NULL, NULL, &err) == 0, "%s",
                  err.msg);
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
    make_plain_model(&new_model, &nets[3], PRECISION_F32, 12);
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &files), 0);
    const struct rlimit exhausted = {lowest_free_descriptor(), files.rlim_max};
    ck_assert_int_eq(as_root ? setrlimit(RLIMIT_NOFILE, &exhausted) : chmod(test_dir, 0555), 0);
    const int status = model_save(path, MODEL_FILE_MODEL, &new_model, plain_meta(), NULL, &err);
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

    make_plain_model(&m, &nets[0], PRECISION_F32, 1);
    assert_save_failed(model_save(path, MODEL_FILE_MODEL, &m, plain_meta(), NULL, &err), &err,
                       path, ENOENT);
    ck_assert_int_ne(access(testdir_path("missing"), F_OK), 0);
    mlp_free(&m);
}
END_TEST

/* The disk fills up midway: RLIMIT_FSIZE makes every write past the limit
 * fail with EFBIG (SIGXFSZ ignored), also for root.  The limits put the
 * failure in the header, the state, the parameters, the moments and the
 * CRC of an Adam checkpoint. */
START_TEST(failed_write_keeps_old_file)
{
    const char *path = testdir_path("model.bin");
    const struct model_metadata meta = make_meta(&optimizers[3], SCHEDULE_CONSTANT);
    struct mlp old, new_model;
    struct training_state state;
    struct error err = {""};

    const struct bytes old_bytes = save_old_model("model.bin", &old);
    make_plain_model(&new_model, &nets[3], PRECISION_F32, 12);
    make_state(&state, &optimizers[3], &new_model, 12);
    const rlim_t params_at = params_offset(&nets[3], true);
    const rlim_t arena = mlp_param_count(&new_model) * sizeof(float);
    const rlim_t new_size = params_at + 3 * arena + CRC;
    const rlim_t limits[] = {0, 1, AT_WIDTHS - 1, AT_WIDTHS, params_at - 100, params_at,
                             65536, params_at + arena + 1, new_size - CRC, new_size - 1};
    struct rlimit sizes;

    ck_assert(signal(SIGXFSZ, SIG_IGN) != SIG_ERR);
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &sizes), 0);
    const struct rlimit small = {limits[_i], sizes.rlim_max};
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    const int status = model_save(path, MODEL_FILE_CHECKPOINT, &new_model, &meta, &state, &err);
    /* Check reports results through a file: let it write again. */
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &sizes), 0);

    assert_save_failed(status, &err, path, EFBIG);
    assert_old_model_kept("model.bin", &old_bytes, &old);
    free(old_bytes.data);
    optimizer_state_free(&state.optimizer);
    mlp_free(&old);
    mlp_free(&new_model);
}
END_TEST

/* ------------------------------------------------------------ suite */

int main(void)
{
    Suite *suite = suite_create("modelfile");
    TCase *round_trips = testdir_tcase(suite, "round trips and layout");
    TCase *legacy = testdir_tcase(suite, "versions 1 and 2");
    TCase *header = testdir_tcase(suite, "header refusals");
    TCase *values = testdir_tcase(suite, "state and value refusals");
    TCase *body = testdir_tcase(suite, "body and length refusals");
    TCase *paths = testdir_tcase(suite, "paths that are not model files");
    TCase *saving = testdir_tcase(suite, "save refusals and failures");

    tcase_add_loop_test(round_trips, deep_networks_round_trip, 0, NETS * 2 * 2 * 3);
    tcase_add_loop_test(round_trips, checkpoint_state_restores_bitwise, 0, OPTIMIZERS * 2);
    tcase_add_loop_test(round_trips, arrays_are_little_endian_in_order, 0, 2);
    tcase_add_test(round_trips, fields_are_at_their_documented_offsets);
    tcase_add_loop_test(round_trips, metadata_extremes_round_trip, 0, 3);
    tcase_add_test(round_trips, load_without_metadata_or_state);
    tcase_add_test(round_trips, header_matches_documented_example);
    tcase_add_test(round_trips, checkpoint_loads_where_a_model_is_expected);
    tcase_add_test(round_trips, model_is_refused_where_a_checkpoint_is_expected);
    tcase_add_test(round_trips, save_replaces_an_existing_file);
    tcase_add_loop_test(round_trips, saved_file_mode_follows_umask, 0, 3);

    tcase_add_test(legacy, version_1_model_loads);
    tcase_add_test(legacy, version_2_checkpoint_loads);
    tcase_add_test(legacy, version_1_checkpoint_loads);
    tcase_add_test(legacy, version_2_model_refused);
    tcase_add_test(legacy, old_checkpoint_saves_as_version_3);
    tcase_add_loop_test(legacy, version_1_fields_refused, 0, 11);

    tcase_add_loop_test(header, wrong_magic_refused, 0, 8);
    tcase_add_loop_test(header, unsupported_version_refused, 0, 3);
    tcase_add_loop_test(header, unknown_code_refused, 0, 30);
    tcase_add_loop_test(header, layer_count_out_of_range_refused, 0, 3);
    tcase_add_loop_test(header, width_out_of_range_refused, 0, 8);
    tcase_add_loop_test(header, shape_disagreeing_with_data_refused, 0, 10);
    tcase_add_test(header, moments_disagreeing_with_data_refused);
    tcase_add_test(header, largest_shape_with_small_file_refused_without_allocating);
    tcase_add_loop_test(header, precision_disagreeing_with_data_refused, 0, 4);

    tcase_add_loop_test(values, state_fields_refused, 0, 11);
    tcase_add_test(values, zeroed_stream_refused);
    tcase_add_loop_test(values, settings_out_of_range_refused, 0, 17);
    tcase_add_loop_test(values, counts_out_of_range_refused, 0, 5);
    tcase_add_loop_test(values, inconsistent_settings_refused, 0, 4);
    tcase_add_loop_test(values, non_finite_array_element_refused, 0, 32);

    tcase_add_loop_test(body, flipped_byte_fails_checksum, 0, 10);
    tcase_add_loop_test(body, flipped_crc_byte_fails_checksum, 0, CRC);
    tcase_add_loop_test(body, truncated_file_refused, 0, 13);
    tcase_add_loop_test(body, trailing_bytes_refused, 0, 6);
    tcase_add_test(body, empty_file_refused);
    tcase_add_loop_test(body, other_format_refused, 0, 6);

    tcase_add_test(paths, directory_refused);
    tcase_add_test(paths, fifo_refused);
    tcase_add_test(paths, nonexistent_path_refused);

    tcase_add_loop_test(saving, save_refuses_what_load_would, 0, 30);
    tcase_add_test(saving, model_ignores_the_state);
    tcase_add_test(saving, save_refuses_path_too_long);
    tcase_add_test(saving, failed_temp_creation_keeps_old_file);
    tcase_add_test(saving, save_into_missing_directory_fails);
    tcase_add_loop_test(saving, failed_write_keeps_old_file, 0, 10);

    return testdir_run("test_modelfile", suite, CK_ENV);
}
