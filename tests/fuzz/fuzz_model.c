/* Fuzz target: the model and checkpoint loader.  Each input is loaded as a
 * model and as a checkpoint, once as it is and once with its last four bytes
 * replaced by the right CRC-32, so that mutations get past the checksum and
 * reach the checks behind it.  A file that loads must save back to the very
 * same bytes. */
#include "fuzz.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "modelfile.h"

enum { CRC_BYTES = 4 };

/* Loads path as `kind`; returns whether it loaded, checking the contract. */
static int load(const char *path, enum model_kind kind, struct mlp *m,
                struct model_metadata *meta)
{
    struct error err = {{0}};

    memset(m, 0xa5, sizeof *m);
    if (model_load(path, kind, m, meta, &err) != 0) {
        FUZZ_ASSERT(m->params == NULL);
        FUZZ_ASSERT(strstr(err.msg, path) != NULL);
        return 0;
    }
    FUZZ_ASSERT(m->params != NULL);
    FUZZ_ASSERT(m->n_in >= 1 && m->n_in <= MODEL_FILE_MAX_SIZE);
    FUZZ_ASSERT(m->n_hidden >= 1 && m->n_hidden <= MODEL_FILE_MAX_SIZE);
    FUZZ_ASSERT(m->n_out >= 1 && m->n_out <= MODEL_FILE_MAX_SIZE);
    FUZZ_ASSERT(isfinite(meta->lr) && meta->lr >= 0);
    for (size_t i = 0; i < mlp_param_count(m); i++)
        FUZZ_ASSERT(isfinite(mlp_param(m, i)));
    return 1;
}

/* Loads both ways; a file that loads is saved again and must come out
 * byte for byte as it went in. */
static void check(const char *path, const uint8_t *data, size_t size)
{
    struct mlp m;
    struct model_metadata meta;
    const int as_model = load(path, MODEL_FILE_MODEL, &m, &meta);
    if (as_model)
        mlp_free(&m);
    const int as_checkpoint = load(path, MODEL_FILE_CHECKPOINT, &m, &meta);
    FUZZ_ASSERT(as_model || !as_checkpoint);  /* a checkpoint is also a model */
    if (!as_model)
        return;
    if (!as_checkpoint)
        FUZZ_ASSERT(load(path, MODEL_FILE_MODEL, &m, &meta));

    const char *saved = fuzz_path("saved.model");
    struct error err = {{0}};
    FUZZ_ASSERT(model_save(saved, as_checkpoint ? MODEL_FILE_CHECKPOINT : MODEL_FILE_MODEL, &m,
                           &meta, &err) == 0);
    mlp_free(&m);
    size_t saved_size;
    uint8_t *bytes = fuzz_read(saved, &saved_size);
    FUZZ_ASSERT(saved_size == size && memcmp(bytes, data, size) == 0);
    free(bytes);
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
