/* Fuzz target: the safetensors loader.  Each input is loaded once as it is
 * and once with --activation tanh --loss xent given, which lets a file
 * without our metadata and with hidden layers load, and one whose metadata
 * says otherwise fail.  A file that loads must save, as safetensors, to a
 * file that loads back to the same network and saves to the same bytes
 * again (which holds the metadata too); it must also save as our model file (so its metadata is
 * valid) and as .npz. */
#include "fuzz.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "npz.h"
#include "safetensors.h"

static int load(const char *path, const struct weights_hints *hints, struct mlp *m,
                struct model_metadata *meta)
{
    struct error err = {{0}};

    memset(m, 0xa5, sizeof *m);
    if (safetensors_load(path, hints, m, meta, &err) != 0) {
        FUZZ_ASSERT(m->params == NULL);
        FUZZ_ASSERT(strstr(err.msg, path) != NULL);
        return 0;
    }
    const size_t count = mlp_param_count(m);
    FUZZ_ASSERT(m->params != NULL);
    FUZZ_ASSERT(m->n_layers >= 1 && m->n_layers <= MLP_MAX_LAYERS);
    for (size_t i = 0; i <= m->n_layers; i++)
        FUZZ_ASSERT(m->widths[i] >= 1 && m->widths[i] <= MLP_MAX_WIDTH);
    uint8_t sum = 0;
    for (size_t i = 0; i < count; i++) {
        const double value = mlp_param(m, i);
        FUZZ_ASSERT(isfinite(value));
        sum ^= (uint8_t)(value > 0);
    }
    fuzz_use(sum);
    return 1;
}

static uint8_t *save(const struct mlp *m, const struct model_metadata *meta, const char *path,
                     size_t *size)
{
    struct error err = {{0}};
    FUZZ_ASSERT(safetensors_save(path, m, meta, &err) == 0);
    return fuzz_read(path, size);
}

static void check(const char *path, const struct weights_hints *hints)
{
    struct mlp m, again;
    struct model_metadata meta, meta_again;
    struct error err = {{0}};

    if (!load(path, hints, &m, &meta))
        return;
    const char *saved = fuzz_path("saved.safetensors"), *resaved = fuzz_path("again.safetensors");
    size_t size, resaved_size;
    uint8_t *bytes = save(&m, &meta, saved, &size);
    FUZZ_ASSERT(load(saved, hints, &again, &meta_again));
    FUZZ_ASSERT(mlp_same_shape(&again, &m));
    FUZZ_ASSERT(memcmp(again.params, m.params,
                       mlp_param_count(&m) * precision_size(m.precision)) == 0);
    uint8_t *again_bytes = save(&again, &meta_again, resaved, &resaved_size);
    FUZZ_ASSERT(resaved_size == size && memcmp(again_bytes, bytes, size) == 0);
    FUZZ_ASSERT(model_save(fuzz_path("saved.model"), MODEL_FILE_MODEL, &m, &meta, NULL, &err) ==
                0);
    FUZZ_ASSERT(npz_save(fuzz_path("saved.npz"), &m, &err) == 0);
    free(again_bytes);
    free(bytes);
    mlp_free(&again);
    mlp_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct weights_hints none = {.activation = ACTIVATION_RELU, .loss = LOSS_MSE};
    static const struct weights_hints given = {true, true, ACTIVATION_TANH, LOSS_XENT};
    const char *input = fuzz_path("input.safetensors");

    fuzz_write(input, data, size);
    check(input, &none);
    check(input, &given);
    return 0;
}
