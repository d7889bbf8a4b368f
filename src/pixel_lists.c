#include <config.h>

#include "pixel_lists.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Whether the image has a nonzero pixel in pair p, and its two pixels. */
static bool pair_pixels(const uint8_t *image, size_t width, size_t p, uint8_t *low,
                        uint8_t *high)
{
    *low = image[2 * p];
    *high = 2 * p + 1 < width ? image[2 * p + 1] : 0;
    return *low || *high;
}

/* Room for `images` images and `entries` entries, the lists' contents kept. */
static int reserve(struct pixel_lists *px, size_t images, size_t entries)
{
    if (images > px->images_capacity || !px->image_entries) {
        size_t *grown = realloc(px->image_entries, (images + 1) * sizeof *grown);
        if (!grown)
            return -1;
        px->image_entries = grown;
        px->images_capacity = images;
    }
    /* One entry more than asked, so that no size is 0. */
    if (entries > px->entries_capacity || !px->entries) {
        uint32_t *grown = realloc(px->entries, (entries + 1) * sizeof *grown);
        if (!grown)
            return -1;
        px->entries = grown;
        px->entries_capacity = entries;
    }
    return 0;
}

int pixel_lists_create(struct pixel_lists *px, size_t width, size_t images, size_t entries,
                       struct error *err)
{
    memset(px, 0, sizeof *px);
    px->width = width;
    px->pairs = (width + 1) / 2;
    if (px->pairs > UINT16_MAX + (size_t)1)
        return error_set(err, "images of %zu pixels are too wide for the engine (at most %zu)",
                         width, 2 * (UINT16_MAX + (size_t)1));
    if (reserve(px, images, entries) < 0) {
        pixel_lists_free(px);
        return error_set(err, "out of memory for the pixels of %zu images", images);
    }
    px->image_entries[0] = 0;
    return 0;
}

int pixel_lists_build(struct pixel_lists *px, const struct dataset *ds, struct error *err)
{
    const size_t width = dataset_image_size(ds), pairs = (width + 1) / 2;
    uint8_t low, high;
    size_t entries = 0;
    /* Counted first, so that a training set's lists take their size once. */
    for (size_t n = 0; n < ds->count && pairs <= UINT16_MAX + (size_t)1; n++)
        for (size_t p = 0; p < pairs; p++)
            entries += pair_pixels(ds->pixels + n * width, width, p, &low, &high);
    if (pixel_lists_create(px, width, ds->count, entries, err) < 0)
        return -1;
    entries = 0;
    for (size_t n = 0; n < ds->count; n++) {
        px->image_entries[n] = entries;
        for (size_t p = 0; p < pairs; p++)
            if (pair_pixels(ds->pixels + n * width, width, p, &low, &high))
                px->entries[entries++] = entry_pack(p, (uint32_t)high << 8 | low);
    }
    px->count = ds->count;
    px->image_entries[ds->count] = entries;
    return 0;
}

void pixel_lists_clear(struct pixel_lists *px)
{
    px->count = 0;
    px->image_entries[0] = 0;
}

int pixel_lists_append(struct pixel_lists *px, const uint32_t *entries, size_t length)
{
    const size_t at = px->image_entries[px->count];
    if (px->count + 1 > px->images_capacity || length > px->entries_capacity - at)
        return -1;
    memcpy(px->entries + at, entries, length * sizeof *entries);
    px->image_entries[++px->count] = at + length;
    return 0;
}

int pixel_lists_copy(struct pixel_lists *dst, const struct pixel_lists *src)
{
    const size_t entries = src->image_entries[src->count];
    if (reserve(dst, src->count, entries) < 0) {
        pixel_lists_free(dst);
        return -1;
    }
    dst->width = src->width;
    dst->pairs = src->pairs;
    dst->count = src->count;
    memcpy(dst->image_entries, src->image_entries, (src->count + 1) * sizeof *src->image_entries);
    memcpy(dst->entries, src->entries, entries * sizeof *src->entries);
    return 0;
}

void pixel_lists_free(struct pixel_lists *px)
{
    free(px->image_entries);
    free(px->entries);
    memset(px, 0, sizeof *px);
}
