/* Grayscale pictures: reading PGM and PNG, writing PNG (PGM when libpng is
 * missing), laying digits out in a captioned grid, a tiny bitmap font to
 * write on pictures and text art for the terminal. */
#ifndef MNIST_OMP_IMAGE_H
#define MNIST_OMP_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"

/* Neither side may exceed this, so that a hostile header cannot make us
 * allocate gigabytes and width * height never overflows. */
#define IMAGE_MAX_SIDE 16384

struct gray_image {
    size_t width, height;
    uint8_t *pixels;  /* width * height bytes, row-major, 0 = black, 255 = white */
};

/* Makes img a width x height picture filled with `background`.  Refuses
 * empty pictures and sides over IMAGE_MAX_SIDE. */
int image_create(struct gray_image *img, size_t width, size_t height, uint8_t background,
                 struct error *err);

/* Frees what img holds and zeroes it, so that freeing twice is harmless. */
void gray_image_free(struct gray_image *img);

/* Reads a picture, recognising the format by its first bytes, not its name:
 * PGM, plain (P2) or binary (P5), any maxval 1-65535, scaled to 0-255; PNG of
 * any color type and depth, converted to 8-bit gray; a transparent or
 * translucent pixel (alpha channel or tRNS) is composited onto the gray level
 * `background` (0 black to 255 white).  A gzip-compressed file is read as
 * well.  On failure returns -1, leaves *img
 * empty and explains in err, naming the file.  Without libpng a PNG file is
 * refused with "PNG support was not compiled in". */
int image_read(const char *path, uint8_t background, struct gray_image *img,
               struct error *err);

/* Writes img as an 8-bit gray PNG to image_output_path(path): path itself
 * when built with libpng, otherwise a binary PGM (P5) whose name has a final
 * ".png" replaced by ".pgm".  The file appears atomically and an existing
 * one is replaced. */
int image_write_png(const char *path, const struct gray_image *img, struct error *err);

/* Where image_write_png(path, ...) writes.  The name never changes length, so
 * a buffer of strlen(path) + 1 bytes is enough; a smaller one is an error. */
int image_output_path(const char *path, char *buf, size_t size, struct error *err);

/* ---- Grids of digits.  Tile i lies in row i / columns, column i % columns
 * (columns shrinks to count when count is smaller).  Each cell is the tile
 * scaled IMAGE_GRID_SCALE times, with an IMAGE_GRID_CAPTION-pixel caption
 * band below it when captions are given; cells are separated from each other
 * and from the edges by IMAGE_GRID_GAP white pixels. */
enum { IMAGE_GRID_SCALE = 2, IMAGE_GRID_GAP = 4, IMAGE_GRID_CAPTION = 12 };

/* Lays count tiles of tile_w x tile_h pixels out in a grid.  Tiles are MNIST
 * style (white ink on black) and are inverted, so the picture shows dark ink
 * on white.  captions is NULL (no captions) or holds count strings (NULL
 * ones are left blank), such as "7" or "7→1" (UTF-8), written with the
 * built-in font, smaller when they would not fit, cut when still too long. */
int image_grid(struct gray_image *out, const uint8_t *const *tiles, size_t tile_w,
               size_t tile_h, size_t count, size_t columns, const char *const *captions,
               struct error *err);

/* ---- Text in a 3x5 bitmap font: digits, letters (lowercase is drawn as
 * uppercase), space and - . , : / % ? ( ) + = > and → (U+2192); anything else
 * is drawn as '?'.  Glyphs advance IMAGE_FONT_ADVANCE pixels (times the
 * scale), one pixel being the space between them. */
enum { IMAGE_FONT_WIDTH = 3, IMAGE_FONT_HEIGHT = 5, IMAGE_FONT_ADVANCE = 4 };

/* Width in pixels of text drawn at `scale` (0 for ""). */
size_t image_text_width(const char *text, size_t scale);

/* Draws text with its top-left corner at (x, y) in the value `ink`, leaving
 * out the glyphs that would reach past x + max_width; what falls off the
 * picture is cut. */
void image_draw_text(struct gray_image *img, size_t x, size_t y, size_t max_width,
                     const char *text, size_t scale, uint8_t ink);

/* Sets the pixels of a rectangle to value, clipped to the picture. */
void image_fill(struct gray_image *img, size_t x, size_t y, size_t width, size_t height,
                uint8_t value);

/* Prints an MNIST-style image (white ink on black) as text art: one line a
 * row, two characters a pixel (terminal cells are about twice as tall as
 * they are wide), darker to brighter through " .:-=+*#%@". */
void image_print_ascii(FILE *out, const uint8_t *pixels, size_t width, size_t height);

#endif
