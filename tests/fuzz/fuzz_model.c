/* Fuzz target: the model and checkpoint loader.  Each input is loaded as a
 * model and as a checkpoint, once as it is and once with its last four bytes
 * replaced by the right CRC-32, so that mutations get past the checksum and
 * reach the checks behind it.  A version-3 file that loads must save back
 * to the very same bytes; a version-1 or -2 file saves as version 3, which
 * must load back to the same network and then save to the same bytes
 * again. */
#include "fuzz.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "modelfile.h"
#include "optimizer.h"

enum { CRC_BYTES = 4, VERSION_AT = 8 };

struct loaded {
    struct mlp m;
    struct model_metadata meta;
    struct training_state state;
};

static void loaded_free(struct loaded *l)
{
    mlp_free(&l->m);
    optimizer_state_free(&l->state.optimizer);
}

/* Touches every byte the loader returned, for memcheck. */
static void use_bytes(const void *bytes, size_t size)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < size; i++)
        sum ^= ((const uint8_t *)bytes)[i];
    fuzz_use(sum);
}

/* Loads path as `kind`; returns whether it loaded, checking the contract. */
static int load(const char *path, enum model_kind kind, struct loaded *l)
{
    struct error err = {{0}};

    memset(l, 0xa5, sizeof *l);
    if (model_load(path, kind, &l->m, &l->meta, &l->state, &err) != 0) {
        FUZZ_ASSERT(l->m.params == NULL);
        FUZZ_ASSERT(l->state.optimizer.velocity == NULL);
        FUZZ_ASSERT(l->state.optimizer.first_moment == NULL);
        FUZZ_ASSERT(strstr(err.msg, path) != NULL);
        return 0;
    }
    const struct mlp *m = &l->m;
    const size_t count = mlp_param_count(m), size = precision_size(m->precision);
    FUZZ_ASSERT(m->params != NULL);
    FUZZ_ASSERT(m->n_layers >= 1 && m->n_layers <= MLP_MAX_LAYERS);
    for (size_t i = 0; i <= m->n_layers; i++)
        FUZZ_ASSERT(m->widths[i] >= 1 && m->widths[i] <= MLP_MAX_WIDTH);
    FUZZ_ASSERT(isfinite(l->meta.training.schedule.lr) && l->meta.training.schedule.lr >= 0);
    for (size_t i = 0; i < count; i++)
        FUZZ_ASSERT(isfinite(mlp_param(m, i)));
    const size_t moments = optimizer_moment_count(&l->meta.training.optimizer);
    const bool held = l->meta.has_rng_state;
    FUZZ_ASSERT((l->state.optimizer.velocity != NULL) == (held && moments >= 1));
    FUZZ_ASSERT((l->state.optimizer.first_moment != NULL) == (held && moments >= 2));
    if (l->state.optimizer.velocity)
        use_bytes(l->state.optimizer.velocity, count * size);
    if (l->state.optimizer.first_moment)
        use_bytes(l->state.optimizer.first_moment, count * size);
    use_bytes(m->params, count * size);
    use_bytes(&l->state.rng, sizeof l->state.rng);
    return 1;
}

/* Saves what was loaded and returns the bytes written.  An old checkpoint's
 * stream is re-derived first, as modelfile.h asks of its callers. */
static uint8_t *save(struct loaded *l, bool checkpoint, size_t *size)
{
    const char *saved = fuzz_path("saved.model");
    struct error err = {{0}};
    if (checkpoint && !l->meta.has_rng_state)
        py_random_seed(&l->state.rng, l->meta.seed);
    FUZZ_ASSERT(model_save(saved, checkpoint ? MODEL_FILE_CHECKPOINT : MODEL_FILE_MODEL, &l->m,
                           &l->meta, checkpoint ? &l->state : NULL, &err) == 0);
    return fuzz_read(saved, size);
}

/* Loads both ways; a file that loads is saved again and must come back as
 * it went in. */
static void check(const char *path, const uint8_t *data, size_t size)
{
    struct loaded l;
    const int as_model = load(path, MODEL_FILE_MODEL, &l);
    if (as_model)
        loaded_free(&l);
    const int as_checkpoint = load(path, MODEL_FILE_CHECKPOINT, &l);
    FUZZ_ASSERT(as_model || !as_checkpoint);  /* a checkpoint is also a model */
    if (!as_model)
        return;
    if (!as_checkpoint)
        FUZZ_ASSERT(load(path, MODEL_FILE_MODEL, &l));

    size_t saved_size;
    uint8_t *bytes = save(&l, as_checkpoint, &saved_size);
    const bool version_3 = data[VERSION_AT] == 3;
    if (version_3) {
        FUZZ_ASSERT(saved_size == size && memcmp(bytes, data, size) == 0);
    } else {
        /* The version-3 copy holds the same network and saves to itself. */
        struct loaded again;
        const char *copy = fuzz_path("copy.model");
        fuzz_write(copy, bytes, saved_size);
        FUZZ_ASSERT(load(copy, as_checkpoint ? MODEL_FILE_CHECKPOINT : MODEL_FILE_MODEL,
                         &again));
        FUZZ_ASSERT(mlp_same_shape(&again.m, &l.m));
        FUZZ_ASSERT(memcmp(again.m.params, l.m.params,
                           mlp_param_count(&l.m) * precision_size(l.m.precision)) == 0);
        size_t resaved_size;
        uint8_t *resaved = save(&again, as_checkpoint, &resaved_size);
        FUZZ_ASSERT(resaved_size == saved_size && memcmp(resaved, bytes, saved_size) == 0);
        free(resaved);
        loaded_free(&again);
    }
    free(bytes);
    loaded_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *input = fuzz_path("input.model");

    fuzz_write(input, data, size);
    check(input, data, size);

    if (size >= CRC_BYTES) {
        uint8_t *sealed = malloc(size);
        FUZZ_ASSERT(sealed != NULL);
        memcpy(sealed, data, size);
        uLong crc = crc32(crc32(0L, Z_NULL, 0), sealed, (uInt)(size - CRC_BYTES));
        for (int i = 0; i < CRC_BYTES; i++)
            sealed[size - CRC_BYTES + i] = (uint8_t)(crc >> 8 * i);
        fuzz_write(input, sealed, size);
        check(input, sealed, size);
        free(sealed);
    }
    return 0;
}
