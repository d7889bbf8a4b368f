/* The images' nonzero pixels as the engine reads them: for each image, in
 * ascending order, the pairs of neighbouring pixels (2p, 2p + 1) that are
 * not both zero, with both pixels (the second is 0 past an odd last pixel).
 * Skipping the all-zero pairs leaves every sum bitwise unchanged (while the
 * weights are finite): an accumulator that starts at +0 never becomes -0,
 * and adding +-0 to it is exact.  Pairs halve the loads of weight rows per
 * nonzero pixel (neighbouring pixels of a digit are mostly both ink).  An
 * entry is one word, read with one load: the pair, then the two pixels
 * (entry_pack).  An image's list is also what a rank sends another for a
 * row of a mini-batch (src/shard.c): 88 words for the average MNIST digit
 * against its 784 pixels. */
#ifndef MNIST_OMP_PIXEL_LISTS_H
#define MNIST_OMP_PIXEL_LISTS_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "error.h"

struct pixel_lists {
    size_t width, pairs;      /* pixels per image, pairs per image */
    size_t count;             /* images */
    size_t *image_entries;    /* count + 1: first entry of each image */
    uint32_t *entries;        /* key: the pair */
    size_t images_capacity, entries_capacity;
};

/* An entry: a key (a pair of pixels, or, in the engine's lists of a
 * batch, a row of a block) in the high half, the two pixels in the low. */
static inline uint32_t entry_pack(size_t key, uint32_t pixels)
{
    return (uint32_t)key << 16 | pixels;
}

static inline size_t entry_key(uint32_t entry)
{
    return entry >> 16;
}

static inline uint32_t entry_pixels(uint32_t entry)
{
    return entry & 0xffff;
}

static inline size_t entry_low(uint32_t entry)
{
    return entry & 0xff;
}

static inline size_t entry_high(uint32_t entry)
{
    return entry >> 8 & 0xff;
}

/* The lists of every image of ds.  Returns 0, or -1 with err set (images
 * too wide for a 16-bit pair, or out of memory). */
int pixel_lists_build(struct pixel_lists *px, const struct dataset *ds, struct error *err);

/* Empty lists of images of `width` pixels with room for `images` images of
 * `entries` entries in all, to be filled with pixel_lists_append.  Returns
 * 0, or -1 with err set. */
int pixel_lists_create(struct pixel_lists *px, size_t width, size_t images, size_t entries,
                       struct error *err);

/* Empties the lists, keeping their room. */
void pixel_lists_clear(struct pixel_lists *px);

/* Appends an image of `length` entries (an image's list from lists of the
 * same width).  Returns 0, or -1 when it does not fit the room made. */
int pixel_lists_append(struct pixel_lists *px, const uint32_t *entries, size_t length);

/* Makes dst a copy of src, growing dst's room as needed.  Returns 0, or -1
 * when memory runs out (dst then empty). */
int pixel_lists_copy(struct pixel_lists *dst, const struct pixel_lists *src);

/* Image i's entries, and how many. */
static inline const uint32_t *pixel_lists_image(const struct pixel_lists *px, size_t i,
                                                size_t *length)
{
    *length = px->image_entries[i + 1] - px->image_entries[i];
    return px->entries + px->image_entries[i];
}

void pixel_lists_free(struct pixel_lists *px);

#endif
