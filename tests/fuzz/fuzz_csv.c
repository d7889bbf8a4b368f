/* Fuzz target: the CSV loader (the tutorial's mnist_train.csv format). */
#include "fuzz.h"

#include <string.h>

#include "dataset.h"

static int load_kept(struct dataset *ds, struct dataset_keep *keep, void *context)
{
    struct error err;
    return dataset_load_csv(ds, context, keep, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *input = fuzz_path("input.csv");
    struct dataset ds;
    struct error err = {{0}};

    fuzz_write(input, data, size);
    memset(&ds, 0xa5, sizeof ds);
    if (dataset_load_csv(&ds, input, NULL, &err) == 0) {
        fuzz_check_kept(&ds, load_kept, (void *)input);
        FUZZ_ASSERT(ds.count >= 1 && ds.rows == 28 && ds.cols == 28);
        FUZZ_ASSERT(ds.pixels && ds.labels);
        uint8_t sum = 0;
        for (size_t i = 0; i < ds.count; i++)
            FUZZ_ASSERT(ds.labels[i] <= 9);
        for (size_t i = 0; i < ds.count * 28 * 28; i++)
            sum = (uint8_t)(sum + ds.pixels[i]);
        fuzz_use(sum);
        dataset_free(&ds);
    } else {
        FUZZ_ASSERT(ds.count == 0 && !ds.pixels && !ds.labels);
        FUZZ_ASSERT(strstr(err.msg, input) != NULL);
        fuzz_check_kept(NULL, load_kept, (void *)input);
    }
    return 0;
}
