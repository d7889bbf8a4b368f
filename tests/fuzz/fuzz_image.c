/* Fuzz target: the picture reader (PGM P2 and P5, PNG through libpng when
 * built with it, any of them gzip-compressed), as `mnist-omp predict` uses it. */
#include "fuzz.h"

#include <string.h>

#include "image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *input = fuzz_path("input.image");
    struct gray_image img;
    struct error err = {{0}};

    fuzz_write(input, data, size);
    memset(&img, 0xa5, sizeof img);
    if (image_read(input, 0, &img, &err) == 0) {
        FUZZ_ASSERT(img.pixels != NULL);
        FUZZ_ASSERT(img.width >= 1 && img.width <= IMAGE_MAX_SIDE);
        FUZZ_ASSERT(img.height >= 1 && img.height <= IMAGE_MAX_SIDE);
        uint8_t sum = 0;
        for (size_t i = 0; i < img.width * img.height; i++)
            sum = (uint8_t)(sum + img.pixels[i]);
        fuzz_use(sum);
        gray_image_free(&img);
    } else {
        FUZZ_ASSERT(img.pixels == NULL && img.width == 0 && img.height == 0);
        FUZZ_ASSERT(strstr(err.msg, input) != NULL);
    }
    return 0;
}
