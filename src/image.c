/* Grayscale pictures.  Input goes through zlib (dataset_open_input), which
 * refuses directories and devices up front and reads plain and gzip data
 * alike; PNG goes through libpng, whose errors come back by longjmp, so each
 * libpng session lives in a function of its own that does nothing but talk
 * to libpng and leaves all cleanup to its caller. */
#include <config.h>

#define _POSIX_C_SOURCE 200809L  /* strcasecmp */

#include "image.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#ifdef HAVE_LIBPNG
#include <png.h>
#include <setjmp.h>
#endif

#include "atomic_file.h"
#include "dataset.h"

/* ------------------------------------------------------------ pictures */

static int check_size(const char *name, size_t width, size_t height, struct error *err)
{
    if (width == 0 || height == 0)
        return error_set(err, "%s: the image is %zux%zu pixels: zero width or height", name,
                         width, height);
    if (width > IMAGE_MAX_SIDE || height > IMAGE_MAX_SIDE)
        return error_set(err, "%s: the image is %zux%zu pixels, larger than the limit of %dx%d",
                         name, width, height, IMAGE_MAX_SIDE, IMAGE_MAX_SIDE);
    return 0;
}

/* Leaves the pixels undefined, for readers that fill every one. */
static int image_allocate(struct gray_image *img, size_t width, size_t height, const char *name,
                          struct error *err)
{
    if (check_size(name, width, height, err) != 0)
        return -1;
    img->pixels = malloc(width * height);
    if (!img->pixels)
        return error_set(err, "%s: out of memory for a %zux%zu image", name, width, height);
    img->width = width;
    img->height = height;
    return 0;
}

/* name says in messages what the picture was to be */
static int create_named(struct gray_image *img, size_t width, size_t height, uint8_t background,
                        const char *name, struct error *err)
{
    *img = (struct gray_image){0};
    if (image_allocate(img, width, height, name, err) != 0)
        return -1;
    memset(img->pixels, background, width * height);
    return 0;
}

int image_create(struct gray_image *img, size_t width, size_t height, uint8_t background,
                 struct error *err)
{
    return create_named(img, width, height, background, "new picture", err);
}

void gray_image_free(struct gray_image *img)
{
    free(img->pixels);
    *img = (struct gray_image){0};
}

void image_fill(struct gray_image *img, size_t x, size_t y, size_t width, size_t height,
                uint8_t value)
{
    if (x >= img->width || y >= img->height)
        return;
    if (width > img->width - x)
        width = img->width - x;
    if (height > img->height - y)
        height = img->height - y;
    for (size_t row = y; row < y + height; row++)
        memset(img->pixels + row * img->width + x, value, width);
}

/* ------------------------------------------------------------ PGM */

enum number_status { NUMBER_OK, NUMBER_MISSING, NUMBER_MALFORMED, NUMBER_TOO_LARGE };

struct pgm_reader {
    gzFile in;
    const char *path;
    struct error *err;
    unsigned long maxval;
    size_t bytes_per_sample;  /* in P5: 1 up to maxval 255, else 2 (big-endian) */
};

/* Returns the character that ends the comment: a line end, or -1. */
static int skip_comment(gzFile in)
{
    int c;
    while ((c = gzgetc(in)) != -1 && c != '\n' && c != '\r')
        continue;
    return c;
}

/* Returns the first character that is neither white space nor in a comment. */
static int skip_blanks(gzFile in)
{
    for (;;) {
        int c = gzgetc(in);
        if (c == '#')
            c = skip_comment(in);
        if (c == -1 || !isspace(c))
            return c;
    }
}

/* Reads a decimal number and the one character ending it.  That character
 * may start a comment, which is then skipped up to its line end; so in P5
 * the single white space before the raster is always consumed, as Netpbm
 * does it. */
static enum number_status read_number(gzFile in, unsigned long limit, unsigned long *value)
{
    int c = skip_blanks(in);

    if (c == -1)
        return NUMBER_MISSING;
    if (!isdigit(c))
        return NUMBER_MALFORMED;
    for (*value = 0; isdigit(c); c = gzgetc(in)) {
        unsigned long digit = (unsigned long)(c - '0');
        if (digit > limit || *value > (limit - digit) / 10)
            return NUMBER_TOO_LARGE;
        *value = *value * 10 + digit;
    }
    if (c == '#')
        skip_comment(in);
    else if (c != -1 && !isspace(c))
        return NUMBER_MALFORMED;
    return NUMBER_OK;
}

/* A short read is either zlib failing or the data ending early. */
static int pgm_truncated(const struct pgm_reader *r, const char *what, size_t done, size_t total)
{
    if (dataset_check_read(r->in, r->path, r->err) != 0)
        return -1;
    return error_set(r->err, "%s: truncated PGM: the %s ends after %zu of %zu", r->path, what,
                     done, total);
}

static int read_header_field(const struct pgm_reader *r, const char *field, unsigned long limit,
                             unsigned long *value)
{
    switch (read_number(r->in, limit, value)) {
    case NUMBER_OK:
        return 0;
    case NUMBER_MISSING:
        if (dataset_check_read(r->in, r->path, r->err) != 0)
            return -1;
        return error_set(r->err, "%s: truncated PGM: the header ends before the %s", r->path,
                         field);
    case NUMBER_MALFORMED:
        return error_set(r->err, "%s: bad PGM header: the %s is not a number", r->path, field);
    default:
        return error_set(r->err, "%s: bad PGM header: the %s is larger than %lu", r->path, field,
                         limit);
    }
}

static int read_pgm_header(struct pgm_reader *r, struct gray_image *img)
{
    unsigned long width, height;

    gzgetc(r->in);  /* the magic "P2" or "P5", already recognised */
    gzgetc(r->in);
    if (read_header_field(r, "width", IMAGE_MAX_SIDE, &width) != 0 ||
        read_header_field(r, "height", IMAGE_MAX_SIDE, &height) != 0 ||
        read_header_field(r, "maxval", 65535, &r->maxval) != 0)
        return -1;
    if (r->maxval == 0)
        return error_set(r->err, "%s: bad PGM header: the maxval is 0, it must be 1 to 65535",
                         r->path);
    r->bytes_per_sample = r->maxval > 255 ? 2 : 1;
    return image_allocate(img, width, height, r->path, r->err);
}

static int sample_too_large(const struct pgm_reader *r, const struct gray_image *img,
                            size_t index)
{
    return error_set(r->err, "%s: bad PGM data: the pixel at (%zu, %zu) is greater than the "
                     "maxval %lu", r->path, index % img->width, index / img->width, r->maxval);
}

static uint8_t scale_sample(unsigned long value, unsigned long maxval)
{
    return (uint8_t)((value * 255 + maxval / 2) / maxval);
}

static int read_plain_raster(const struct pgm_reader *r, struct gray_image *img)
{
    const size_t total = img->width * img->height;

    for (size_t i = 0; i < total; i++) {
        unsigned long value;
        switch (read_number(r->in, r->maxval, &value)) {
        case NUMBER_OK:
            img->pixels[i] = scale_sample(value, r->maxval);
            break;
        case NUMBER_MISSING:
            return pgm_truncated(r, "data", i, total);
        case NUMBER_MALFORMED:
            return error_set(r->err, "%s: bad PGM data: the pixel at (%zu, %zu) is not a number",
                             r->path, i % img->width, i / img->width);
        default:
            return sample_too_large(r, img, i);
        }
    }
    return 0;
}

static int read_binary_raster(const struct pgm_reader *r, struct gray_image *img)
{
    const size_t row_bytes = img->width * r->bytes_per_sample;
    const size_t total_bytes = row_bytes * img->height;
    uint8_t *row = malloc(row_bytes);
    int rc = row ? 0 : error_set(r->err, "%s: out of memory", r->path);

    for (size_t y = 0; rc == 0 && y < img->height; y++) {
        int got = gzread(r->in, row, (unsigned)row_bytes);
        if (got < 0 || (size_t)got != row_bytes) {
            rc = pgm_truncated(r, "data", y * row_bytes + (got > 0 ? (size_t)got : 0),
                               total_bytes);
            break;
        }
        for (size_t x = 0; rc == 0 && x < img->width; x++) {
            const uint8_t *sample = row + x * r->bytes_per_sample;
            unsigned long value = r->bytes_per_sample == 2 ? (unsigned long)sample[0] << 8 | sample[1]
                                                           : sample[0];
            if (value > r->maxval)
                rc = sample_too_large(r, img, y * img->width + x);
            else
                img->pixels[y * img->width + x] = scale_sample(value, r->maxval);
        }
    }
    free(row);
    return rc;
}

static int read_pgm(gzFile in, const char *path, int binary, struct gray_image *img,
                    struct error *err)
{
    struct pgm_reader r = {.in = in, .path = path, .err = err};

    if (read_pgm_header(&r, img) != 0)
        return -1;
    return binary ? read_binary_raster(&r, img) : read_plain_raster(&r, img);
}

/* ------------------------------------------------------------ PNG */

static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

#ifdef HAVE_LIBPNG

/* What libpng's callbacks need, and what its sessions allocate, so that the
 * caller can free it whichever way the session ends. */
struct png_session {
    gzFile in;            /* when reading */
    const char *path;
    const char *failure;  /* what a libpng error means, as messages say it */
    struct error *err;
    uint8_t background;   /* what transparent pixels are composited onto */
    png_bytep *rows;
    png_bytep samples;    /* gray and alpha, when the picture has transparency */
};

static void png_failed(png_structp png, png_const_charp message)
{
    const struct png_session *s = png_get_error_ptr(png);
    error_set(s->err, "%s: %s: %s", s->path, s->failure, message);
    longjmp(png_jmpbuf(png), 1);
}

/* Library code never prints, and nothing libpng warns about stops it from
 * producing the picture. */
static void png_warned(png_structp png, png_const_charp message)
{
    (void)png, (void)message;
}

static void read_png_bytes(png_structp png, png_bytep data, png_size_t length)
{
    const struct png_session *s = png_get_io_ptr(png);
    int got = gzread(s->in, data, (unsigned)length);

    if (got < 0 || (size_t)got != length) {
        if (dataset_check_read(s->in, s->path, s->err) != 0)
            longjmp(png_jmpbuf(png), 1);
        png_error(png, "the file is truncated");
    }
}

/* Whatever the color type and depth, libpng hands over 8-bit gray, with an
 * 8-bit alpha channel after each sample when the picture has transparency
 * (an alpha channel or a tRNS chunk). */
static void request_gray8(png_structp png, png_infop info)
{
    png_set_expand(png);  /* palette to RGB, 1-4 bit gray to 8 bits, tRNS to alpha */
    png_set_strip_16(png);
    if (png_get_color_type(png, info) & PNG_COLOR_MASK_COLOR)
        png_set_rgb_to_gray_fixed(png, 1, -1, -1);  /* 1: convert silently; -1: default weights */
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
}

/* Composites gray+alpha pairs onto the background, in place: the gray
 * samples end up in the first half of the row.  Rounded, so that an opaque
 * pixel keeps its exact value. */
static void composite_row(png_bytep row, size_t width, uint8_t background)
{
    for (size_t x = 0; x < width; x++) {
        const unsigned gray = row[2 * x], alpha = row[2 * x + 1];
        row[x] = (png_byte)((gray * alpha + background * (255u - alpha) + 127) / 255);
    }
}

/* The rows to decode into: the picture's own, or twice as wide ones when
 * each sample comes with its alpha and is composited afterwards. */
static int allocate_rows(struct png_session *s, struct gray_image *img, size_t channels)
{
    s->rows = calloc(img->height, sizeof *s->rows);
    if (!s->rows)
        return error_set(s->err, "%s: out of memory", s->path);
    if (channels == 1) {
        for (size_t y = 0; y < img->height; y++)
            s->rows[y] = img->pixels + y * img->width;
        return 0;
    }
    s->samples = malloc(img->height * img->width * channels);
    if (!s->samples)
        return error_set(s->err, "%s: out of memory", s->path);
    for (size_t y = 0; y < img->height; y++)
        s->rows[y] = s->samples + y * img->width * channels;
    return 0;
}

static int decode_png(png_structp png, png_infop info, struct png_session *s,
                      struct gray_image *img)
{
    size_t channels;

    if (setjmp(png_jmpbuf(png)))
        return -1;
    png_set_read_fn(png, s, read_png_bytes);
    png_read_info(png, info);
    if (image_allocate(img, png_get_image_width(png, info), png_get_image_height(png, info),
                       s->path, s->err) != 0)
        return -1;
    request_gray8(png, info);
    channels = png_get_channels(png, info);
    if ((channels != 1 && channels != 2) ||
        png_get_rowbytes(png, info) != img->width * channels)  /* never expected; guards the buffer */
        return error_set(s->err, "%s: this PNG does not convert to 8-bit gray", s->path);
    if (allocate_rows(s, img, channels) != 0)
        return -1;
    png_read_image(png, s->rows);
    png_read_end(png, NULL);  /* checks the rest of the file's chunks, CRCs included */
    if (channels == 2)
        for (size_t y = 0; y < img->height; y++) {
            composite_row(s->rows[y], img->width, s->background);
            memcpy(img->pixels + y * img->width, s->rows[y], img->width);
        }
    return 0;
}

static int read_png(gzFile in, const char *path, uint8_t background, struct gray_image *img,
                    struct error *err)
{
    struct png_session s = {.in = in, .path = path, .failure = "bad PNG", .err = err,
                            .background = background};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s, png_failed, png_warned);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int rc = info ? decode_png(png, info, &s, img) : error_set(err, "%s: out of memory", path);

    png_destroy_read_struct(&png, &info, NULL);
    free(s.rows);
    free(s.samples);
    return rc;
}

static int encode_png(png_structp png, png_infop info, FILE *out, const struct gray_image *img)
{
    if (setjmp(png_jmpbuf(png)))
        return -1;
    png_init_io(png, out);
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8,
                 PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (size_t y = 0; y < img->height; y++)
        png_write_row(png, img->pixels + y * img->width);
    png_write_end(png, NULL);
    return 0;
}

static int encode_image(FILE *out, const char *path, const struct gray_image *img,
                        struct error *err)
{
    struct png_session s = {.path = path, .failure = "cannot write PNG", .err = err};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &s, png_failed, png_warned);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int rc = info ? encode_png(png, info, out, img) : error_set(err, "%s: out of memory", path);

    png_destroy_write_struct(&png, &info);
    return rc;
}

#else /* !HAVE_LIBPNG */

static int read_png(gzFile in, const char *path, uint8_t background, struct gray_image *img,
                    struct error *err)
{
    (void)in, (void)background, (void)img;
    return error_set(err, "%s: a PNG image, but PNG support was not compiled in", path);
}

static int encode_image(FILE *out, const char *path, const struct gray_image *img,
                        struct error *err)
{
    const size_t size = img->width * img->height;

    if (fprintf(out, "P5\n%zu %zu\n255\n", img->width, img->height) < 0 ||
        fwrite(img->pixels, 1, size, out) != size)
        return error_set(err, "%s: cannot write: %s", path, strerror(errno));
    return 0;
}

#endif /* HAVE_LIBPNG */

/* ------------------------------------------------------------ reading */

enum image_format { FORMAT_PLAIN_PGM, FORMAT_BINARY_PGM, FORMAT_PNG };

/* Looks at the first bytes, then goes back to the start, so that each
 * decoder sees the whole file.  Returns an image_format, or -1. */
static int detect_format(gzFile in, const char *path, struct error *err)
{
    uint8_t magic[sizeof png_signature];
    int got = gzread(in, magic, sizeof magic);

    if (got <= 0) {
        if (dataset_check_read(in, path, err) != 0)
            return -1;
        return error_set(err, "%s: the file is empty", path);
    }
    if (gzrewind(in) != 0)
        return error_set(err, "%s: cannot go back to the start of the file", path);
    if ((size_t)got == sizeof magic && memcmp(magic, png_signature, sizeof magic) == 0)
        return FORMAT_PNG;
    if (got >= 2 && magic[0] == 'P' && (magic[1] == '2' || magic[1] == '5'))
        return magic[1] == '2' ? FORMAT_PLAIN_PGM : FORMAT_BINARY_PGM;
    if (got >= 2 && magic[0] == 'P' && magic[1] >= '1' && magic[1] <= '7')
        return error_set(err, "%s: unsupported Netpbm format P%c: only grayscale PGM (P2 or P5) "
                         "is read", path, magic[1]);
    return error_set(err, "%s: not an image: neither PGM nor PNG", path);
}

int image_read(const char *path, uint8_t background, struct gray_image *img,
               struct error *err)
{
    gzFile in;
    int format, rc;

    *img = (struct gray_image){0};
    in = dataset_open_input(path, err);
    if (!in)
        return -1;
    format = detect_format(in, path, err);
    if (format < 0)
        rc = -1;
    else if (format == FORMAT_PNG)
        rc = read_png(in, path, background, img, err);
    else
        rc = read_pgm(in, path, format == FORMAT_BINARY_PGM, img, err);
    if (rc == 0 && !gzdirect(in))
        rc = dataset_check_gzip_members(path, err);
    gzclose(in);  /* reading: every error has been seen already */
    if (rc != 0)
        gray_image_free(img);
    return rc;
}

/* ------------------------------------------------------------ writing */

int image_output_path(const char *path, char *buf, size_t size, struct error *err)
{
    const size_t length = strlen(path);

    if (size <= length)
        return error_set(err, "%s: no room for the output file's name", path);
    memcpy(buf, path, length + 1);
#ifndef HAVE_LIBPNG
    if (length >= 4 && strcasecmp(buf + length - 4, ".png") == 0)
        memcpy(buf + length - 4, ".pgm", 4);
#endif
    return 0;
}

static int write_image_file(const char *path, const struct gray_image *img, struct error *err)
{
    struct atomic_file f;

    if (atomic_file_open(&f, path, err) != 0)
        return -1;
    if (encode_image(f.stream, path, img, err) != 0) {
        atomic_file_discard(&f);
        return -1;
    }
    return atomic_file_commit(&f, err);
}

int image_write_png(const char *path, const struct gray_image *img, struct error *err)
{
    const size_t size = strlen(path) + 1;
    char *target;
    int rc;

    if (check_size(path, img->width, img->height, err) != 0)
        return -1;
    target = malloc(size);
    if (!target)
        return error_set(err, "%s: out of memory", path);
    rc = image_output_path(path, target, size, err);
    if (rc == 0)
        rc = write_image_file(target, img, err);
    free(target);
    return rc;
}

/* ------------------------------------------------------------ font */

/* Each glyph is 5 rows of 3 pixels, top row first, one octal digit a row
 * (4 = left pixel, 2 = middle, 1 = right): 075557 draws a 0. */
struct glyph {
    uint16_t code;  /* Unicode code point */
    uint16_t rows;
};

#define UNKNOWN_GLYPH 071202  /* '?' */

static const struct glyph font[] = {
    {'0', 075557}, {'1', 026227}, {'2', 071747}, {'3', 071717}, {'4', 055711},
    {'5', 074717}, {'6', 074757}, {'7', 071111}, {'8', 075757}, {'9', 075717},
    {'A', 025755}, {'B', 065656}, {'C', 034443}, {'D', 065556}, {'E', 074647},
    {'F', 074644}, {'G', 034553}, {'H', 055755}, {'I', 072227}, {'J', 011152},
    {'K', 055655}, {'L', 044447}, {'M', 057755}, {'N', 065555}, {'O', 025552},
    {'P', 065644}, {'Q', 025563}, {'R', 065655}, {'S', 034216}, {'T', 072222},
    {'U', 055557}, {'V', 055552}, {'W', 055775}, {'X', 055255}, {'Y', 055222},
    {'Z', 071247}, {' ', 000000}, {'-', 000700}, {'.', 000002}, {',', 000024},
    {':', 002020}, {'/', 011244}, {'%', 051245}, {'?', UNKNOWN_GLYPH},
    {'(', 012221}, {')', 042224}, {'+', 002720}, {'=', 007070}, {'>', 042124},
    {0x2192, 021712},  /* → */
};

static uint16_t glyph_rows(uint32_t code)
{
    if (code < 0x80)
        code = (uint32_t)toupper((int)code);
    for (size_t i = 0; i < sizeof font / sizeof font[0]; i++)
        if (font[i].code == code)
            return font[i].rows;
    return UNKNOWN_GLYPH;
}

/* Decodes the UTF-8 character at *text and moves past it.  Malformed bytes
 * decode to U+FFFD, which the font draws as '?'. */
static uint32_t next_code_point(const char **text)
{
    const unsigned char *p = (const unsigned char *)*text;
    uint32_t code = *p++;

    if (code >= 0x80) {
        int extra = code >= 0xF0 ? 3 : code >= 0xE0 ? 2 : code >= 0xC0 ? 1 : 0;
        code &= 0x3Fu >> extra;
        for (; extra > 0 && (*p & 0xC0) == 0x80; extra--)
            code = code << 6 | (*p++ & 0x3Fu);
        if (extra > 0 || code < 0x80)  /* cut short, stray or overlong */
            code = 0xFFFD;
    }
    *text = (const char *)p;
    return code;
}

size_t image_text_width(const char *text, size_t scale)
{
    size_t glyphs = 0;

    while (*text) {
        next_code_point(&text);
        glyphs++;
    }
    return glyphs ? (glyphs * IMAGE_FONT_ADVANCE - 1) * scale : 0;
}

static void draw_glyph(struct gray_image *img, size_t x, size_t y, uint16_t rows, size_t scale,
                       uint8_t ink)
{
    for (size_t row = 0; row < IMAGE_FONT_HEIGHT; row++)
        for (size_t col = 0; col < IMAGE_FONT_WIDTH; col++) {
            unsigned bit = (IMAGE_FONT_HEIGHT - 1 - row) * IMAGE_FONT_WIDTH +
                           (IMAGE_FONT_WIDTH - 1 - col);
            if (rows >> bit & 1)
                image_fill(img, x + col * scale, y + row * scale, scale, scale, ink);
        }
}

void image_draw_text(struct gray_image *img, size_t x, size_t y, size_t max_width,
                     const char *text, size_t scale, uint8_t ink)
{
    for (size_t offset = 0; *text; offset += IMAGE_FONT_ADVANCE * scale) {
        uint16_t rows = glyph_rows(next_code_point(&text));
        if (offset + IMAGE_FONT_WIDTH * scale > max_width)
            break;
        draw_glyph(img, x + offset, y, rows, scale, ink);
    }
}

/* ------------------------------------------------------------ grids */

struct grid_layout {
    size_t columns, rows;
    size_t cell_width, cell_height;  /* the tile and its caption band */
};

static void draw_tile(struct gray_image *img, size_t left, size_t top, const uint8_t *tile,
                      size_t tile_w, size_t tile_h)
{
    for (size_t y = 0; y < tile_h; y++)
        for (size_t x = 0; x < tile_w; x++)
            image_fill(img, left + x * IMAGE_GRID_SCALE, top + y * IMAGE_GRID_SCALE,
                       IMAGE_GRID_SCALE, IMAGE_GRID_SCALE, (uint8_t)(255 - tile[y * tile_w + x]));
}

/* Centred in the band; half size when full size would not fit. */
static void draw_caption(struct gray_image *img, size_t left, size_t top, size_t width,
                         const char *caption)
{
    const size_t scale = image_text_width(caption, 2) <= width ? 2 : 1;
    const size_t text_width = image_text_width(caption, scale);
    const size_t x = left + (text_width < width ? (width - text_width) / 2 : 0);
    const size_t y = top + (IMAGE_GRID_CAPTION - IMAGE_FONT_HEIGHT * scale) / 2;

    image_draw_text(img, x, y, width - (x - left), caption, scale, 0);
}

static int plan_grid(struct grid_layout *g, size_t tile_w, size_t tile_h, size_t count,
                     size_t columns, int captioned, struct error *err)
{
    if (count == 0 || columns == 0)
        return error_set(err, "image grid: nothing to lay out (%zu tiles in %zu columns)", count,
                         columns);
    if (check_size("image grid tile", tile_w, tile_h, err) != 0)
        return -1;
    g->columns = columns < count ? columns : count;
    g->rows = (count + g->columns - 1) / g->columns;
    if (g->columns > IMAGE_MAX_SIDE || g->rows > IMAGE_MAX_SIDE)  /* keeps the sizes below from overflowing */
        return error_set(err, "image grid: %zu tiles in %zu columns do not fit in a picture",
                         count, g->columns);
    g->cell_width = tile_w * IMAGE_GRID_SCALE;
    g->cell_height = tile_h * IMAGE_GRID_SCALE + (captioned ? IMAGE_GRID_CAPTION : 0);
    return 0;
}

int image_grid(struct gray_image *out, const uint8_t *const *tiles, size_t tile_w,
               size_t tile_h, size_t count, size_t columns, const char *const *captions,
               struct error *err)
{
    struct grid_layout g = {0, 0, 0, 0};

    *out = (struct gray_image){0};
    if (plan_grid(&g, tile_w, tile_h, count, columns, captions != NULL, err) != 0 ||
        create_named(out, IMAGE_GRID_GAP + g.columns * (g.cell_width + IMAGE_GRID_GAP),
                     IMAGE_GRID_GAP + g.rows * (g.cell_height + IMAGE_GRID_GAP), 255,
                     "image grid", err) != 0)
        return -1;
    for (size_t i = 0; i < count; i++) {
        const size_t left = IMAGE_GRID_GAP + i % g.columns * (g.cell_width + IMAGE_GRID_GAP);
        const size_t top = IMAGE_GRID_GAP + i / g.columns * (g.cell_height + IMAGE_GRID_GAP);
        draw_tile(out, left, top, tiles[i], tile_w, tile_h);
        if (captions && captions[i])
            draw_caption(out, left, top + tile_h * IMAGE_GRID_SCALE, g.cell_width, captions[i]);
    }
    return 0;
}

/* ------------------------------------------------------------ text art */

void image_print_ascii(FILE *out, const uint8_t *pixels, size_t width, size_t height)
{
    static const char ramp[] = " .:-=+*#%@";
    const size_t levels = sizeof ramp - 1;

    for (size_t y = 0; y < height; y++) {
        for (size_t x = 0; x < width; x++) {
            const char c = ramp[pixels[y * width + x] * levels / 256];
            putc(c, out);
            putc(c, out);
        }
        putc('\n', out);
    }
}
