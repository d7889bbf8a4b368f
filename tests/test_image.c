/* Pictures and charts: PGM and PNG read back to the pixels they hold, bad
 * files are refused with messages that say what is wrong, written files
 * appear atomically, grids and heatmaps put things where they belong, and
 * the SVG chart and the confusion table hold what they should.  Each test
 * works in a fresh temporary directory. */
#include <config.h>

#define _XOPEN_SOURCE 700  /* truncate, open_memstream */

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#ifdef HAVE_LIBPNG
#include <png.h>
#include <setjmp.h>
#endif

#include "image.h"
#include "plot.h"
#include "testdir.h"

/* ------------------------------------------------------------ reading files */

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* So that a leftover temporary file shows. */
static int entries_in_tmp_dir(void)
{
    DIR *dir = opendir(testdir_dir());
    int count = 0;

    ck_assert(dir != NULL);
    for (struct dirent *e; (e = readdir(dir)) != NULL;)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            count++;
    closedir(dir);
    return count;
}

/* ------------------------------------------------------------ assertions */

static void assert_pixels(const struct gray_image *img, size_t width, size_t height,
                          const uint8_t *expected)
{
    ck_assert_uint_eq(img->width, width);
    ck_assert_uint_eq(img->height, height);
    ck_assert(img->pixels != NULL);
    for (size_t i = 0; i < width * height; i++)
        ck_assert_msg(img->pixels[i] == expected[i], "pixel %zu: %u, expected %u", i,
                      img->pixels[i], expected[i]);
}

static void assert_reads_on(const char *path, uint8_t background, size_t width, size_t height,
                            const uint8_t *expected)
{
    struct gray_image img;
    struct error err = {""};

    ck_assert_msg(image_read(path, background, &img, &err) == 0, "%s", err.msg);
    assert_pixels(&img, width, height, expected);
    gray_image_free(&img);
}

static void assert_reads(const char *path, size_t width, size_t height, const uint8_t *expected)
{
    assert_reads_on(path, 0, width, height, expected);
}

static void assert_refused(const char *path, const char *expected)
{
    struct gray_image img = {7, 7, NULL};
    struct error err = {""};

    ck_assert_int_eq(image_read(path, 0, &img, &err), -1);
    ck_assert_msg(img.pixels == NULL && img.width == 0 && img.height == 0,
                  "a refused image is left empty");
    ck_assert_msg(strstr(err.msg, path) != NULL, "the message names the file: %s", err.msg);
    ck_assert_msg(strstr(err.msg, expected) != NULL, "'%s' does not say '%s'", err.msg,
                  expected);
}

static struct gray_image pattern_image(size_t width, size_t height)
{
    struct gray_image img;
    struct error err;

    ck_assert_msg(image_create(&img, width, height, 0, &err) == 0, "%s", err.msg);
    for (size_t i = 0; i < width * height; i++)
        img.pixels[i] = (uint8_t)(i * 7 + i / width * 13);
    return img;
}

/* ------------------------------------------------------------ PGM */

START_TEST(pgm_plain_with_comments)
{
    const uint8_t expected[] = {0, 128, 255, 1, 2, 3};
    assert_reads(testdir_write_text("a.pgm", "P2\n# made by hand\n3 # width\n# height next\n2\n"
                                            "255\n0 128 255\n# second row\n1 2 3\n"),
                 3, 2, expected);
}
END_TEST

/* 7 and 8 of 15 scale exactly (255 = 15 * 17); 1 of 2 is 127.5, rounded up. */
START_TEST(pgm_plain_small_maxval_scaled)
{
    const uint8_t exact[] = {0, 255, 119, 136}, rounded[] = {0, 128, 255};
    assert_reads(testdir_write_text("a.pgm", "P2 2 2 15 0 15 7 8"), 2, 2, exact);
    assert_reads(testdir_write_text("b.pgm", "P2 3 1 2 0 1 2"), 3, 1, rounded);
}
END_TEST

START_TEST(pgm_binary_8bit_with_comment)
{
    const char data[] = "P5\n# made by a test\n4 1\n255\n\x00\x01\xfe\xff";
    const uint8_t expected[] = {0, 1, 254, 255};
    assert_reads(testdir_write("a.pgm", data, sizeof data - 1), 4, 1, expected);
}
END_TEST

/* A comment right after the maxval ends with the line end that Netpbm takes
 * for the single white space before the raster. */
START_TEST(pgm_binary_comment_after_maxval)
{
    const char data[] = "P5 2 1 255# note\n\x07\x0a";
    const uint8_t expected[] = {7, 10};
    assert_reads(testdir_write("a.pgm", data, sizeof data - 1), 2, 1, expected);
}
END_TEST

/* 0x8080 = 128 * 257 and 0x0101 = 257 scale exactly, since 65535 = 255 * 257. */
START_TEST(pgm_binary_16bit_scaled)
{
    const char data[] = "P5\n2 2\n# sixteen bits\n65535\n\x00\x00\xff\xff\x80\x80\x01\x01";
    const uint8_t expected[] = {0, 255, 128, 1};
    assert_reads(testdir_write("a.pgm", data, sizeof data - 1), 2, 2, expected);
}
END_TEST

START_TEST(pgm_gzip_compressed)
{
    const char *path = testdir_path("a.pgm.gz");
    gzFile out = gzopen(path, "wb");
    const uint8_t expected[] = {9, 8, 7};

    ck_assert(out != NULL);
    ck_assert(gzputs(out, "P2 3 1 255 9 8 7\n") > 0);
    ck_assert_int_eq(gzclose(out), Z_OK);
    assert_reads(path, 3, 1, expected);
}
END_TEST

/* zlib stops at the end of the gzip data and ignores what follows. */
START_TEST(refuse_gzip_trailing_garbage)
{
    const char *path = testdir_path("a.pgm.gz");
    gzFile out = gzopen(path, "wb");
    FILE *f;

    ck_assert(out != NULL);
    ck_assert(gzputs(out, "P2 3 1 255 9 8 7\n") > 0);
    ck_assert_int_eq(gzclose(out), Z_OK);
    ck_assert((f = fopen(path, "ab")) != NULL);
    ck_assert(fputs("garbage", f) >= 0 && fclose(f) == 0);
    assert_refused(path, "trailing data after the gzip member");
}
END_TEST

/* ------------------------------------------------------------ refusals */

START_TEST(refuse_empty_file)
{
    assert_refused(testdir_write_text("a.pgm", ""), "the file is empty");
}
END_TEST

START_TEST(refuse_truncated_binary_data)
{
    const char data[] = "P5 4 4 255\n0123456789";
    assert_refused(testdir_write("a.pgm", data, sizeof data - 1),
                   "truncated PGM: the data ends after 10 of 16");
}
END_TEST

START_TEST(refuse_truncated_plain_data)
{
    assert_refused(testdir_write_text("a.pgm", "P2 2 2 255 1 2 3\n"), "the data ends after 3 of 4");
}
END_TEST

START_TEST(refuse_truncated_header)
{
    assert_refused(testdir_write_text("a.pgm", "P5 4 4"), "the header ends before the maxval");
}
END_TEST

START_TEST(refuse_plain_value_over_maxval)
{
    assert_refused(testdir_write_text("a.pgm", "P2 2 1 100 5 101"),
                   "the pixel at (1, 0) is greater than the maxval 100");
}
END_TEST

/* A single digit above a maxval below 10 (two-tone PGMs have maxval 1). */
START_TEST(refuse_plain_digit_over_small_maxval)
{
    assert_refused(testdir_write_text("a.pgm", "P2 3 1 1 1 0 2"),
                   "the pixel at (2, 0) is greater than the maxval 1");
    assert_refused(testdir_write_text("b.pgm", "P2 2 1 5 5 7"),
                   "the pixel at (1, 0) is greater than the maxval 5");
}
END_TEST

START_TEST(refuse_binary_value_over_maxval)
{
    const char data[] = "P5 2 1 100\n\x05\xc8";
    assert_refused(testdir_write("a.pgm", data, sizeof data - 1),
                   "the pixel at (1, 0) is greater than the maxval 100");
}
END_TEST

START_TEST(refuse_plain_value_not_a_number)
{
    assert_refused(testdir_write_text("a.pgm", "P2 2 1 255 5 x"),
                   "the pixel at (1, 0) is not a number");
}
END_TEST

START_TEST(refuse_header_not_a_number)
{
    assert_refused(testdir_write_text("a.pgm", "P5 4x4 255\n"),
                   "bad PGM header: the width is not a number");
}
END_TEST

START_TEST(refuse_bad_maxval)
{
    assert_refused(testdir_write_text("a.pgm", "P5 1 1 0\n\x00"), "the maxval is 0");
    assert_refused(testdir_write_text("b.pgm", "P5 1 1 65536\n\x00"),
                   "the maxval is larger than 65535");
}
END_TEST

START_TEST(refuse_bad_magic)
{
    assert_refused(testdir_write_text("a.gif", "GIF89a\x01\x00\x01\x00"), "not an image");
    assert_refused(testdir_write_text("b.pgm", "P"), "not an image");
}
END_TEST

START_TEST(refuse_other_netpbm)
{
    assert_refused(testdir_write_text("a.ppm", "P6 1 1 255\nabc"), "unsupported Netpbm format P6");
}
END_TEST

START_TEST(refuse_zero_dimensions)
{
    assert_refused(testdir_write_text("a.pgm", "P5 0 4 255\n"), "0x4 pixels: zero width or height");
    assert_refused(testdir_write_text("b.pgm", "P2 4 0 255\n"), "4x0 pixels: zero width or height");
}
END_TEST

/* Refused from the header alone: no 400-megabyte allocation is tried. */
START_TEST(refuse_huge_dimensions)
{
    assert_refused(testdir_write_text("a.pgm", "P5 20000 20000 255\n"),
                   "the width is larger than 16384");
    assert_refused(testdir_write_text("b.pgm", "P5 28 99999999999999999999999 255\n"),
                   "the height is larger than 16384");
}
END_TEST

START_TEST(refuse_directory)
{
    const char *path = testdir_path("dir.png");
    ck_assert(mkdir(path, 0777) == 0);
    assert_refused(path, "is a directory");
}
END_TEST

START_TEST(refuse_nonexistent_file)
{
    assert_refused(testdir_path("missing.png"), strerror(ENOENT));
}
END_TEST

/* ------------------------------------------------------------ PNG */

#ifdef HAVE_LIBPNG

static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* The offsets of IHDR's fields in a PNG file: after the signature, the
 * chunk's length and type. */
enum { IHDR_DATA = 16, IHDR_CRC = IHDR_DATA + 13 };

static void set_be32(char *p, uint32_t value)
{
    p[0] = (char)(value >> 24), p[1] = (char)(value >> 16), p[2] = (char)(value >> 8),
    p[3] = (char)value;
}

/* Writes a small picture with image_write_png and returns the file's bytes. */
static char *written_png(const char *name, size_t *size)
{
    struct gray_image img = pattern_image(19, 11);
    struct error err;
    const char *path = testdir_path(name);

    ck_assert_msg(image_write_png(path, &img, &err) == 0, "%s", err.msg);
    gray_image_free(&img);
    return testdir_read(path, size);
}

START_TEST(png_round_trip)
{
    struct gray_image img = pattern_image(37, 23);
    struct error err;
    const char *path = testdir_path("a.png");
    char *bytes;

    ck_assert_msg(image_write_png(path, &img, &err) == 0, "%s", err.msg);
    bytes = testdir_read(path, NULL);
    ck_assert_msg(memcmp(bytes, png_signature, sizeof png_signature) == 0, "a PNG file");
    assert_reads(path, img.width, img.height, img.pixels);
    ck_assert_int_eq(entries_in_tmp_dir(), 1);
    free(bytes);
    gray_image_free(&img);
}
END_TEST

static void write_test_png(const char *path, png_uint_32 width, png_uint_32 height,
                           int bit_depth, int color_type, const png_color *palette,
                           int palette_size, png_bytep *rows)
{
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;

    ck_assert(f != NULL && info != NULL);
    if (setjmp(png_jmpbuf(png)))
        ck_abort_msg("libpng failed to write %s", path);
    png_init_io(png, f);
    png_set_IHDR(png, info, width, height, bit_depth, color_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (palette)
        png_set_PLTE(png, info, palette, palette_size);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    ck_assert(fclose(f) == 0);
}

/* Gray in RGB converts exactly; 16-bit samples keep their high byte. */
START_TEST(png_rgba16_reads_as_gray)
{
    const char *path = testdir_path("rgba.png");
    png_byte row[2 * 8] = {0x12, 0x34, 0x12, 0x34, 0x12, 0x34, 0xff, 0xff,
                           0xfe, 0x00, 0xfe, 0x00, 0xfe, 0x00, 0xff, 0xff};
    png_bytep rows[] = {row};
    const uint8_t expected[] = {0x12, 0xfe};

    write_test_png(path, 2, 1, 16, PNG_COLOR_TYPE_RGB_ALPHA, NULL, 0, rows);
    assert_reads(path, 2, 1, expected);
}
END_TEST

/* A black stroke on a transparent background, as drawing programs export
 * it: composited onto white it is the opaque black-on-white picture, onto
 * black it is all black; a half-transparent black pixel is mid gray on
 * white.  Both gray+alpha and RGBA. */
START_TEST(png_transparency_composited_onto_background)
{
    const char *gray_path = testdir_path("gray-alpha.png"), *rgba_path = testdir_path("rgba.png");
    const char *opaque_path = testdir_path("opaque.png");
    /* gray, alpha: black ink opaque, the rest transparent (its gray is noise) */
    png_byte gray_alpha[] = {0, 255, 0, 255, 0, 255, 77, 0, 0, 128, 0, 255};
    png_byte rgba[] = {0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255,
                       9, 99, 199, 0, 0, 0, 0, 128, 0, 0, 0, 255};
    png_byte opaque[] = {0, 0, 0, 255, 127, 0};
    png_bytep gray_rows[] = {gray_alpha, gray_alpha + 6}, rgba_rows[] = {rgba, rgba + 12};
    png_bytep opaque_rows[] = {opaque, opaque + 3};
    const uint8_t on_white[] = {0, 0, 0, 255, 127, 0}, on_black[] = {0, 0, 0, 0, 0, 0};

    write_test_png(opaque_path, 3, 2, 8, PNG_COLOR_TYPE_GRAY, NULL, 0, opaque_rows);
    write_test_png(gray_path, 3, 2, 8, PNG_COLOR_TYPE_GRAY_ALPHA, NULL, 0, gray_rows);
    write_test_png(rgba_path, 3, 2, 8, PNG_COLOR_TYPE_RGB_ALPHA, NULL, 0, rgba_rows);
    assert_reads_on(opaque_path, 255, 3, 2, on_white);
    assert_reads_on(opaque_path, 0, 3, 2, on_white);
    assert_reads_on(gray_path, 255, 3, 2, on_white);
    assert_reads_on(rgba_path, 255, 3, 2, on_white);
    assert_reads_on(gray_path, 0, 3, 2, on_black);
    assert_reads_on(rgba_path, 0, 3, 2, on_black);
}
END_TEST

START_TEST(png_palette_and_1bit_gray_read_as_gray)
{
    const char *palette_path = testdir_path("palette.png"), *gray_path = testdir_path("gray1.png");
    const png_color palette[] = {{10, 10, 10}, {200, 200, 200}};
    png_byte row[] = {0x50};  /* 0101 0000: pixels 0, 1, 0, 1 */
    png_bytep rows[] = {row};
    const uint8_t from_palette[] = {10, 200, 10, 200}, from_gray[] = {0, 255, 0, 255};

    write_test_png(palette_path, 4, 1, 1, PNG_COLOR_TYPE_PALETTE, palette, 2, rows);
    assert_reads(palette_path, 4, 1, from_palette);
    write_test_png(gray_path, 4, 1, 1, PNG_COLOR_TYPE_GRAY, NULL, 0, rows);
    assert_reads(gray_path, 4, 1, from_gray);
}
END_TEST

START_TEST(refuse_truncated_png)
{
    size_t size;
    char *bytes = written_png("whole.png", &size);

    assert_refused(testdir_write("half.png", bytes, size / 2), "bad PNG: the file is truncated");
    assert_refused(testdir_write("header.png", bytes, IHDR_DATA + 4), "the file is truncated");
    assert_refused(testdir_write("no-end.png", bytes, size - 6), "the file is truncated");
    free(bytes);
}
END_TEST

START_TEST(refuse_png_bad_crc)
{
    size_t size;
    char *bytes = written_png("good.png", &size);

    bytes[IHDR_CRC] ^= 0x55;
    assert_refused(testdir_write("bad-header.png", bytes, size), "IHDR: CRC error");
    bytes[IHDR_CRC] ^= 0x55;
    bytes[size - 1] ^= 0x55;  /* in IEND, after the pixels */
    assert_refused(testdir_write("bad-end.png", bytes, size), "IEND: CRC error");
    free(bytes);
}
END_TEST

/* A well-formed header (with its CRC recomputed) declaring a huge picture. */
START_TEST(refuse_huge_png)
{
    size_t size;
    char *bytes = written_png("small.png", &size);

    set_be32(bytes + IHDR_DATA, 20000);
    set_be32(bytes + IHDR_DATA + 4, 20000);
    set_be32(bytes + IHDR_CRC, (uint32_t)crc32(0, (const Bytef *)bytes + IHDR_DATA - 4, 4 + 13));
    assert_refused(testdir_write("huge.png", bytes, size),
                   "20000x20000 pixels, larger than the limit of 16384x16384");
    free(bytes);
}
END_TEST

START_TEST(output_path_is_path_with_libpng)
{
    char buf[32];
    struct error err;

    ck_assert_int_eq(image_output_path("dir/a.png", buf, sizeof buf, &err), 0);
    ck_assert_str_eq(buf, "dir/a.png");
}
END_TEST

#else /* !HAVE_LIBPNG */

START_TEST(png_fallback_writes_pgm)
{
    struct gray_image img = pattern_image(37, 23);
    struct error err;
    const char *asked = testdir_path("a.png"), *written = testdir_path("a.pgm");
    char *bytes;

    ck_assert_msg(image_write_png(asked, &img, &err) == 0, "%s", err.msg);
    ck_assert_msg(!file_exists(asked), "nothing is written under the .png name");
    bytes = testdir_read(written, NULL);
    ck_assert_msg(strncmp(bytes, "P5\n37 23\n255\n", 13) == 0, "a binary PGM");
    assert_reads(written, img.width, img.height, img.pixels);
    ck_assert_int_eq(entries_in_tmp_dir(), 1);
    free(bytes);
    gray_image_free(&img);
}
END_TEST

START_TEST(refuse_png_without_libpng)
{
    const char data[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    assert_refused(testdir_write("a.png", data, sizeof data - 1),
                   "PNG support was not compiled in");
}
END_TEST

START_TEST(output_path_is_pgm_without_libpng)
{
    char buf[32];
    struct error err;

    ck_assert_int_eq(image_output_path("dir/a.png", buf, sizeof buf, &err), 0);
    ck_assert_str_eq(buf, "dir/a.pgm");
    ck_assert_int_eq(image_output_path("B.PNG", buf, sizeof buf, &err), 0);
    ck_assert_str_eq(buf, "B.pgm");
    ck_assert_int_eq(image_output_path("picture", buf, sizeof buf, &err), 0);
    ck_assert_str_eq(buf, "picture");
}
END_TEST

#endif /* HAVE_LIBPNG */

START_TEST(output_path_needs_room)
{
    char buf[9];
    struct error err;

    ck_assert_int_eq(image_output_path("dir/a.png", buf, sizeof buf, &err), -1);
    ck_assert_int_eq(image_output_path("dir/a.pn", buf, sizeof buf, &err), 0);
}
END_TEST

/* ------------------------------------------------------------ writing */

START_TEST(write_replaces_atomically)
{
    struct gray_image first = pattern_image(5, 5), second = pattern_image(9, 3);
    struct error err;
    const char *path = testdir_path("a.png");
    char written[PATH_MAX];

    ck_assert_int_eq(image_output_path(path, written, sizeof written, &err), 0);
    ck_assert_msg(image_write_png(path, &first, &err) == 0, "%s", err.msg);
    ck_assert_msg(image_write_png(path, &second, &err) == 0, "%s", err.msg);
    assert_reads(written, second.width, second.height, second.pixels);
    ck_assert_int_eq(entries_in_tmp_dir(), 1);
    gray_image_free(&first);
    gray_image_free(&second);
}
END_TEST

START_TEST(write_failures_explained)
{
    struct gray_image img = pattern_image(5, 5), empty = {0, 0, NULL};
    struct error err;
    const char *in_missing_dir = testdir_path("missing/a.png");
    const char *dir = testdir_path("dir.png");
    char written[PATH_MAX];

    ck_assert_int_eq(image_write_png(in_missing_dir, &img, &err), -1);
    ck_assert_msg(strstr(err.msg, "missing/a.p") && strstr(err.msg, "cannot write"), "%s",
                  err.msg);
    /* a directory in the way is refused, never replaced, and no temporary file stays */
    ck_assert_int_eq(image_output_path(dir, written, sizeof written, &err), 0);
    ck_assert(mkdir(written, 0777) == 0);
    ck_assert_int_eq(image_write_png(dir, &img, &err), -1);
    ck_assert_msg(strstr(err.msg, "is a directory; refusing to replace it"), "%s", err.msg);
    ck_assert_int_eq(entries_in_tmp_dir(), 1);
    ck_assert_int_eq(image_write_png(testdir_path("empty.png"), &empty, &err), -1);
    ck_assert_msg(strstr(err.msg, "zero width or height"), "%s", err.msg);
    gray_image_free(&img);
}
END_TEST

/* ------------------------------------------------------------ font, grid, text art */

/* Draws text at scale 1 on a fresh white picture just big enough. */
static struct gray_image drawn_text(const char *text)
{
    struct gray_image img;
    struct error err;
    size_t width = image_text_width(text, 1);

    ck_assert_msg(image_create(&img, width, IMAGE_FONT_HEIGHT, 255, &err) == 0, "%s", err.msg);
    image_draw_text(&img, 0, 0, width, text, 1, 0);
    return img;
}

START_TEST(font_draws_glyphs)
{
    const uint8_t zero[] = {0, 0, 0,  0, 255, 0,  0, 255, 0,  0, 255, 0,  0, 0, 0};
    struct gray_image digit = drawn_text("0"), lower = drawn_text("ab"), upper = drawn_text("AB");

    assert_pixels(&digit, 3, 5, zero);
    assert_pixels(&lower, upper.width, upper.height, upper.pixels);
    ck_assert_uint_eq(image_text_width("7\u21921", 1), 3 * IMAGE_FONT_ADVANCE - 1);
    ck_assert_uint_eq(image_text_width("7\u21921", 2), 2 * (3 * IMAGE_FONT_ADVANCE - 1));
    ck_assert_uint_eq(image_text_width("", 2), 0);
    gray_image_free(&digit);
    gray_image_free(&lower);
    gray_image_free(&upper);
}
END_TEST

/* Unknown characters and broken UTF-8 show as '?', one glyph each. */
START_TEST(font_unknown_characters)
{
    struct gray_image question = drawn_text("?"), accented = drawn_text("\u00e9"),
                      stray = drawn_text("\x80"), cut = drawn_text("\xe2\x86");

    assert_pixels(&accented, 3, 5, question.pixels);
    assert_pixels(&stray, 3, 5, question.pixels);
    assert_pixels(&cut, 3, 5, question.pixels);
    gray_image_free(&question);
    gray_image_free(&accented);
    gray_image_free(&stray);
    gray_image_free(&cut);
}
END_TEST

enum { SIDE = 28, SCALED = SIDE * IMAGE_GRID_SCALE };

/* Tile i is black but for one white pixel at (i + 1, 2 * i + 3). */
static void make_tiles(uint8_t tiles[][SIDE * SIDE], const uint8_t *pointers[], size_t count)
{
    for (size_t i = 0; i < count; i++) {
        memset(tiles[i], 0, SIDE * SIDE);
        tiles[i][(2 * i + 3) * SIDE + i + 1] = 255;
        pointers[i] = tiles[i];
    }
}

static int count_pixels(const struct gray_image *img, size_t x, size_t y, size_t width,
                        size_t height, uint8_t value)
{
    int count = 0;
    for (size_t row = y; row < y + height; row++)
        for (size_t col = x; col < x + width; col++)
            count += img->pixels[row * img->width + col] == value;
    return count;
}

START_TEST(grid_places_tiles)
{
    uint8_t tiles[5][SIDE * SIDE];
    const uint8_t *pointers[5];
    const char *captions[5] = {"0", "7\u21921", NULL, "12345678901234567890", "x"};
    const size_t cell_h = SCALED + IMAGE_GRID_CAPTION;
    struct gray_image grid;
    struct error err;

    make_tiles(tiles, pointers, 5);
    ck_assert_msg(image_grid(&grid, pointers, SIDE, SIDE, 5, 2, captions, &err) == 0, "%s",
                  err.msg);
    ck_assert_uint_eq(grid.width, IMAGE_GRID_GAP + 2 * (SCALED + IMAGE_GRID_GAP));
    ck_assert_uint_eq(grid.height, IMAGE_GRID_GAP + 3 * (cell_h + IMAGE_GRID_GAP));
    for (size_t i = 0; i < 5; i++) {
        const size_t left = IMAGE_GRID_GAP + i % 2 * (SCALED + IMAGE_GRID_GAP);
        const size_t top = IMAGE_GRID_GAP + i / 2 * (cell_h + IMAGE_GRID_GAP);
        const size_t x = left + (i + 1) * IMAGE_GRID_SCALE, y = top + (2 * i + 3) * IMAGE_GRID_SCALE;
        /* inverted: the one white pixel is the only black square in the tile */
        ck_assert_int_eq(count_pixels(&grid, x, y, IMAGE_GRID_SCALE, IMAGE_GRID_SCALE, 0),
                         IMAGE_GRID_SCALE * IMAGE_GRID_SCALE);
        ck_assert_int_eq(count_pixels(&grid, left, top, SCALED, SCALED, 0),
                         IMAGE_GRID_SCALE * IMAGE_GRID_SCALE);
        int ink = count_pixels(&grid, left, top + SCALED, SCALED, IMAGE_GRID_CAPTION, 0);
        ck_assert_msg(captions[i] ? ink > 0 : ink == 0, "caption %zu: %d ink pixels", i, ink);
        /* the caption stays in its cell: the gap to the right is blank */
        ck_assert_int_eq(count_pixels(&grid, left + SCALED, top, IMAGE_GRID_GAP, cell_h, 255),
                         IMAGE_GRID_GAP * (int)cell_h);
    }
    /* the sixth cell is empty */
    ck_assert_int_eq(count_pixels(&grid, IMAGE_GRID_GAP + SCALED + IMAGE_GRID_GAP,
                                  IMAGE_GRID_GAP + 2 * (cell_h + IMAGE_GRID_GAP), SCALED, cell_h,
                                  255), SCALED * (int)cell_h);
    gray_image_free(&grid);
}
END_TEST

START_TEST(grid_without_captions)
{
    uint8_t tiles[3][SIDE * SIDE];
    const uint8_t *pointers[3];
    struct gray_image grid;
    struct error err;

    make_tiles(tiles, pointers, 3);
    ck_assert_msg(image_grid(&grid, pointers, SIDE, SIDE, 3, 10, NULL, &err) == 0, "%s", err.msg);
    /* ten columns asked, three used */
    ck_assert_uint_eq(grid.width, IMAGE_GRID_GAP + 3 * (SCALED + IMAGE_GRID_GAP));
    ck_assert_uint_eq(grid.height, IMAGE_GRID_GAP + SCALED + IMAGE_GRID_GAP);
    gray_image_free(&grid);
}
END_TEST

START_TEST(grid_refusals)
{
    uint8_t tiles[1][SIDE * SIDE];
    const uint8_t *pointers[1];
    struct gray_image grid;
    struct error err;

    make_tiles(tiles, pointers, 1);
    ck_assert_int_eq(image_grid(&grid, pointers, SIDE, SIDE, 1, 0, NULL, &err), -1);
    ck_assert_msg(strstr(err.msg, "nothing to lay out"), "%s", err.msg);
    ck_assert_int_eq(image_grid(&grid, pointers, SIDE, SIDE, 0, 4, NULL, &err), -1);
    ck_assert_int_eq(image_grid(&grid, pointers, 0, SIDE, 1, 1, NULL, &err), -1);
    /* 8193 columns of 56-pixel cells would be far wider than allowed */
    ck_assert_int_eq(image_grid(&grid, pointers, SIDE, SIDE, 8193, 8193, NULL, &err), -1);
    ck_assert_msg(strstr(err.msg, "larger than the limit"), "%s", err.msg);
    ck_assert(grid.pixels == NULL);
}
END_TEST

START_TEST(ascii_art)
{
    const uint8_t pixels[] = {0, 255, 128, 26};
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);

    ck_assert(out != NULL);
    image_print_ascii(out, pixels, 2, 2);
    ck_assert(fclose(out) == 0);
    ck_assert_str_eq(text, "  @@\n++..\n");
    free(text);
}
END_TEST

/* ------------------------------------------------------------ SVG */

/* Enough of XML to catch a chart cut short, a tag left open or text left
 * unescaped: tags nest and close, there is one root, every '&' starts an
 * entity.  Returns NULL or what is wrong. */
static const char *xml_problem(const char *text)
{
    const char *open[32];
    size_t open_length[32], depth = 0, roots = 0;

    for (const char *amp = strchr(text, '&'); amp; amp = strchr(amp + 1, '&'))
        if (strncmp(amp, "&amp;", 5) && strncmp(amp, "&lt;", 4) && strncmp(amp, "&gt;", 4) &&
            strncmp(amp, "&quot;", 6))
            return "a bare '&'";
    for (const char *p = strchr(text, '<'); p; p = strchr(p, '<')) {
        const char *end = strchr(p, '>');
        if (!end)
            return "a tag is not closed";
        if (p[1] == '/') {
            size_t length = strcspn(p + 2, " >");
            if (depth == 0 || length != open_length[depth - 1] ||
                strncmp(p + 2, open[depth - 1], length) != 0)
                return "an end tag does not match";
            depth--;
        } else if (p[1] != '?' && end[-1] != '/') {
            if (depth == 32)
                return "too deep";
            open[depth] = p + 1;
            open_length[depth++] = strcspn(p + 1, " \n>");
            roots += depth == 1;
        } else if (p[1] != '?') {
            roots += depth == 0;
        }
        p = end + 1;
    }
    return depth ? "elements are left open" : roots != 1 ? "not one root element" : NULL;
}

struct point {
    double x, y;
};

/* The polyline's points, up to max of them; returns how many there are. */
static size_t polyline_points(const char *svg, struct point *points, size_t max)
{
    const char *polyline = strstr(svg, "<polyline");
    size_t count = 0;

    ck_assert(polyline != NULL);
    const char *p = strstr(polyline, "points=\"");
    ck_assert(p != NULL);
    p += strlen("points=\"");
    while (*p != '"') {
        char *end;
        struct point point;
        point.x = strtod(p, &end);
        ck_assert_msg(end != p && *end == ',', "a point is x,y");
        point.y = strtod(end + 1, &end);
        ck_assert(*end == ' ' || *end == '"');
        if (count < max)
            points[count] = point;
        count++;
        p = *end == ' ' ? end + 1 : end;
    }
    return count;
}

static char *plotted_svg(const char *name, const double *loss, size_t count, const char *title)
{
    struct error err;
    const char *path = testdir_path(name);
    char *svg;

    ck_assert_msg(plot_loss_svg(path, loss, count, title, &err) == 0, "%s", err.msg);
    svg = testdir_read(path, NULL);
    ck_assert_msg(strncmp(svg, "<?xml", 5) == 0, "an XML declaration first");
    ck_assert(strstr(svg, "<svg ") != NULL && strstr(svg, "viewBox=") != NULL);
    ck_assert_msg(strlen(svg) > 7 && strcmp(svg + strlen(svg) - 7, "</svg>\n") == 0,
                  "the file ends with </svg>");
    const char *problem = xml_problem(svg);
    ck_assert_msg(problem == NULL, "%s", problem);
    ck_assert_msg(!strstr(svg, "nan") && !strstr(svg, "inf"), "coordinates are finite");
    ck_assert(strstr(svg, ">epoch</text>") && strstr(svg, ">loss</text>"));
    return svg;
}

static void assert_has(const char *text, const char *part)
{
    ck_assert_msg(strstr(text, part) != NULL, "no '%s'", part);
}

START_TEST(svg_chart)
{
    const double loss[] = {2.0, 1.0, 0.5, 0.25};
    /* epochs 0-3 one apart; loss 0-2 in steps of 0.5 */
    const char *const tick_labels[] = {">0</text>", ">1</text>", ">3</text>",
                                       ">0.0</text>", ">0.5</text>", ">2.0</text>"};
    struct point points[4];
    char *svg = plotted_svg("loss.svg", loss, 4, "loss & <accuracy>");

    assert_has(svg, "loss &amp; &lt;accuracy&gt;");
    ck_assert_uint_eq(polyline_points(svg, points, 4), 4);
    for (size_t i = 1; i < 4; i++) {
        ck_assert_msg(points[i].x > points[i - 1].x, "epochs go right");
        ck_assert_msg(points[i].y > points[i - 1].y, "a falling loss goes down the page");
    }
    for (size_t i = 0; i < sizeof tick_labels / sizeof tick_labels[0]; i++)
        assert_has(svg, tick_labels[i]);
    free(svg);
}
END_TEST

START_TEST(svg_single_epoch)
{
    const double loss[] = {2.302585};
    char *svg = plotted_svg("one.svg", loss, 1, "one");

    ck_assert_uint_eq(polyline_points(svg, NULL, 0), 1);
    assert_has(svg, "<circle");  /* a lone point still shows */
    assert_has(svg, ">1</text>");
    free(svg);
}
END_TEST

START_TEST(svg_constant_loss)
{
    const double loss[] = {0.7, 0.7, 0.7}, zeros[] = {0, 0};
    char *svg = plotted_svg("flat.svg", loss, 3, "flat");
    char *zero_svg = plotted_svg("zero.svg", zeros, 2, "zero");

    ck_assert_uint_eq(polyline_points(svg, NULL, 0), 3);
    assert_has(svg, ">0.70</text>");
    assert_has(zero_svg, ">0.0</text>");
    ck_assert_msg(!strstr(zero_svg, ">-0.0<"), "no negative zero");
    free(svg);
    free(zero_svg);
}
END_TEST

START_TEST(svg_refusals)
{
    const double loss[] = {1.0, NAN}, extremes[] = {-DBL_MAX, DBL_MAX};
    struct error err;
    const char *path = testdir_path("bad.svg");

    ck_assert_int_eq(plot_loss_svg(path, loss, 0, "none", &err), -1);
    ck_assert_msg(strstr(err.msg, "no loss values"), "%s", err.msg);
    ck_assert_int_eq(plot_loss_svg(path, loss, 2, "nan", &err), -1);
    ck_assert_msg(strstr(err.msg, "epoch 1"), "%s", err.msg);
    ck_assert_int_eq(plot_loss_svg(path, extremes, 2, "wide", &err), -1);
    ck_assert_msg(strstr(err.msg, "too wide a range"), "%s", err.msg);
    ck_assert(!file_exists(path));
    ck_assert_int_eq(plot_loss_svg(testdir_path("missing/a.svg"), loss, 1, "x", &err), -1);
    ck_assert_msg(strstr(err.msg, "cannot write"), "%s", err.msg);
}
END_TEST

/* The accuracy chart passes by the epochs not evaluated (NaN), placing the
 * others where the loss chart of as many epochs places them. */
START_TEST(svg_accuracy_with_gaps)
{
    const double accuracy[] = {NAN, 80.0, NAN, 90.0, 95.0}, loss[] = {5, 4, 3, 2, 1};
    struct point points[3], loss_points[5];
    struct error err;
    const char *path = testdir_path("accuracy.svg");

    ck_assert_msg(plot_accuracy_svg(path, accuracy, 5, "accuracy", &err) == 0, "%s", err.msg);
    char *svg = testdir_read(path, NULL);
    char *loss_svg = plotted_svg("loss5.svg", loss, 5, "loss");
    ck_assert_msg(xml_problem(svg) == NULL, "%s", xml_problem(svg));
    ck_assert_msg(!strstr(svg, "nan") && !strstr(svg, "inf"), "coordinates are finite");
    assert_has(svg, ">test accuracy (%)</text>");
    ck_assert_uint_eq(polyline_points(svg, points, 3), 3);
    ck_assert_uint_eq(polyline_points(loss_svg, loss_points, 5), 5);
    ck_assert(points[0].x == loss_points[1].x && points[1].x == loss_points[3].x &&
              points[2].x == loss_points[4].x);
    ck_assert_msg(points[2].y < points[1].y && points[1].y < points[0].y,
                  "a rising accuracy goes up the page");
    free(svg);
    free(loss_svg);

    const double none[] = {NAN, NAN};
    ck_assert_int_eq(plot_accuracy_svg(testdir_path("none.svg"), none, 2, "none", &err), -1);
    ck_assert_msg(strstr(err.msg, "no test accuracy (%) values"), "%s", err.msg);
}
END_TEST

/* ------------------------------------------------------------ confusion */

/* 13 images, 10 right: rows 0-2 hold them, the other classes none. */
static void small_matrix(size_t m[PLOT_CLASSES][PLOT_CLASSES])
{
    memset(m, 0, sizeof(size_t[PLOT_CLASSES][PLOT_CLASSES]));
    m[0][0] = 5, m[0][1] = 1, m[1][1] = 3, m[2][0] = 2, m[2][2] = 2;
}

/* Reads one table row: PLOT_CLASSES counts, the total, the accuracy. */
static void parse_table_row(char *line, size_t numbers[PLOT_CLASSES + 1], char **accuracy)
{
    char *token = strtok(line, " ");
    for (int i = 0; i <= PLOT_CLASSES; i++) {
        char *end;
        token = strtok(NULL, " ");
        ck_assert(token != NULL);
        numbers[i] = strtoul(token, &end, 10);
        ck_assert_msg(*end == '\0', "'%s' is a count", token);
    }
    *accuracy = strtok(NULL, " ");
    ck_assert(*accuracy != NULL && strtok(NULL, " ") == NULL);
}

START_TEST(confusion_table)
{
    size_t m[PLOT_CLASSES][PLOT_CLASSES], numbers[PLOT_CLASSES + 1];
    const char *expected_accuracy[PLOT_CLASSES] = {"83.33%", "100.00%", "50.00%", "-", "-",
                                                   "-", "-", "-", "-", "-"};
    const size_t column_totals[PLOT_CLASSES] = {7, 4, 2};
    struct error err;
    const char *path = testdir_path("confusion.txt");
    char *text, *line, *save, *accuracy;
    size_t width = 0;
    int rows = 0;

    small_matrix(m);
    ck_assert_msg(plot_confusion_text(path, (const size_t(*)[PLOT_CLASSES])m, &err) == 0, "%s",
                  err.msg);
    text = testdir_read(path, NULL);
    line = strtok_r(text, "\n", &save);  /* the explanation */
    ck_assert(line != NULL);
    while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
        if (width == 0)
            width = strlen(line);
        ck_assert_msg(strlen(line) == width, "the columns line up: '%s'", line);
        if (strncmp(line, "true", 4) == 0)
            continue;
        if (strncmp(line, "total", 5) == 0) {
            parse_table_row(line, numbers, &accuracy);
            for (int p = 0; p < PLOT_CLASSES; p++)
                ck_assert_uint_eq(numbers[p], column_totals[p]);
            ck_assert_uint_eq(numbers[PLOT_CLASSES], 13);
            ck_assert_str_eq(accuracy, "76.92%");
            continue;
        }
        int truth = line[0] - '0';
        ck_assert_int_eq(truth, rows);
        parse_table_row(line, numbers, &accuracy);
        size_t total = 0;
        for (int p = 0; p < PLOT_CLASSES; p++) {
            ck_assert_uint_eq(numbers[p], m[truth][p]);
            total += m[truth][p];
        }
        ck_assert_uint_eq(numbers[PLOT_CLASSES], total);
        ck_assert_str_eq(accuracy, expected_accuracy[truth]);
        rows++;
    }
    ck_assert_int_eq(rows, PLOT_CLASSES);
    free(text);
}
END_TEST

static uint8_t cell_corner(const struct gray_image *img, size_t truth, size_t predicted)
{
    const size_t x = PLOT_CONFUSION_LEFT + predicted * PLOT_CONFUSION_CELL + 2;
    const size_t y = PLOT_CONFUSION_TOP + truth * PLOT_CONFUSION_CELL + 2;
    return img->pixels[y * img->width + x];
}

static int cell_count(const struct gray_image *img, size_t truth, size_t predicted,
                      uint8_t value)
{
    return count_pixels(img, PLOT_CONFUSION_LEFT + predicted * PLOT_CONFUSION_CELL + 1,
                        PLOT_CONFUSION_TOP + truth * PLOT_CONFUSION_CELL + 1,
                        PLOT_CONFUSION_CELL - 1, PLOT_CONFUSION_CELL - 1, value);
}

START_TEST(confusion_heatmap)
{
    size_t m[PLOT_CLASSES][PLOT_CLASSES] = {{0}};
    struct gray_image img;
    struct error err;

    for (size_t t = 0; t < PLOT_CLASSES - 1; t++)
        m[t][t] = 100;
    m[3][3] = 50, m[3][5] = 50, m[4][4] = 123456789;
    ck_assert_msg(plot_confusion_image(&img, (const size_t(*)[PLOT_CLASSES])m, &err) == 0, "%s",
                  err.msg);
    ck_assert_uint_eq(img.width, PLOT_CONFUSION_WIDTH);
    ck_assert_uint_eq(img.height, PLOT_CONFUSION_HEIGHT);
    ck_assert_uint_eq(cell_corner(&img, 0, 0), 0);
    ck_assert_uint_eq(cell_corner(&img, 0, 1), 255);
    ck_assert_uint_eq(cell_corner(&img, 3, 5), 127);  /* half the row */
    ck_assert_uint_eq(cell_corner(&img, 9, 9), 255);  /* an empty row */
    ck_assert_msg(cell_count(&img, 0, 0, 255) > 0, "a count in white on black");
    ck_assert_msg(cell_count(&img, 0, 1, 0) > 0, "a count in black on white");
    ck_assert_msg(cell_count(&img, 4, 4, 255) == 0, "a count too wide is left out");
    /* the digit labels: ink left of row 0 and above column 0 */
    ck_assert(count_pixels(&img, 0, PLOT_CONFUSION_TOP, PLOT_CONFUSION_LEFT, PLOT_CONFUSION_CELL,
                           0) > 0);
    ck_assert(count_pixels(&img, PLOT_CONFUSION_LEFT, PLOT_CONFUSION_TOP - PLOT_CONFUSION_MARGIN -
                           10, PLOT_CONFUSION_CELL, 10, 0) > 0);
    gray_image_free(&img);
}
END_TEST

/* The file decodes (as PNG, or as PGM without libpng) to the same picture. */
START_TEST(confusion_png_file)
{
    size_t m[PLOT_CLASSES][PLOT_CLASSES];
    struct gray_image img;
    struct error err;
    const char *path = testdir_path("confusion.png");
    char written[PATH_MAX];

    small_matrix(m);
    ck_assert_msg(plot_confusion_png(path, (const size_t(*)[PLOT_CLASSES])m, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(plot_confusion_image(&img, (const size_t(*)[PLOT_CLASSES])m, &err) == 0, "%s",
                  err.msg);
    ck_assert_int_eq(image_output_path(path, written, sizeof written, &err), 0);
    assert_reads(written, PLOT_CONFUSION_WIDTH, PLOT_CONFUSION_HEIGHT, img.pixels);
    ck_assert_int_eq(entries_in_tmp_dir(), 1);
    gray_image_free(&img);
}
END_TEST

/* ------------------------------------------------------------ suite */

int main(void)
{
    Suite *suite = suite_create("image");
    TCase *pgm = testdir_tcase(suite, "PGM");
    TCase *refusals = testdir_tcase(suite, "refusals");
    TCase *png = testdir_tcase(suite, "PNG and writing");
    TCase *drawing = tcase_create("font, grid, text art");  /* writes no files */
    suite_add_tcase(suite, drawing);
    TCase *charts = testdir_tcase(suite, "charts");

    tcase_add_test(pgm, pgm_plain_with_comments);
    tcase_add_test(pgm, pgm_plain_small_maxval_scaled);
    tcase_add_test(pgm, pgm_binary_8bit_with_comment);
    tcase_add_test(pgm, pgm_binary_comment_after_maxval);
    tcase_add_test(pgm, pgm_binary_16bit_scaled);
    tcase_add_test(pgm, pgm_gzip_compressed);

    tcase_add_test(refusals, refuse_empty_file);
    tcase_add_test(refusals, refuse_gzip_trailing_garbage);
    tcase_add_test(refusals, refuse_truncated_binary_data);
    tcase_add_test(refusals, refuse_truncated_plain_data);
    tcase_add_test(refusals, refuse_truncated_header);
    tcase_add_test(refusals, refuse_plain_value_over_maxval);
    tcase_add_test(refusals, refuse_plain_digit_over_small_maxval);
    tcase_add_test(refusals, refuse_binary_value_over_maxval);
    tcase_add_test(refusals, refuse_plain_value_not_a_number);
    tcase_add_test(refusals, refuse_header_not_a_number);
    tcase_add_test(refusals, refuse_bad_maxval);
    tcase_add_test(refusals, refuse_bad_magic);
    tcase_add_test(refusals, refuse_other_netpbm);
    tcase_add_test(refusals, refuse_zero_dimensions);
    tcase_add_test(refusals, refuse_huge_dimensions);
    tcase_add_test(refusals, refuse_directory);
    tcase_add_test(refusals, refuse_nonexistent_file);

#ifdef HAVE_LIBPNG
    tcase_add_test(png, png_round_trip);
    tcase_add_test(png, png_rgba16_reads_as_gray);
    tcase_add_test(png, png_transparency_composited_onto_background);
    tcase_add_test(png, png_palette_and_1bit_gray_read_as_gray);
    tcase_add_test(refusals, refuse_truncated_png);
    tcase_add_test(refusals, refuse_png_bad_crc);
    tcase_add_test(refusals, refuse_huge_png);
    tcase_add_test(png, output_path_is_path_with_libpng);
#else
    tcase_add_test(png, png_fallback_writes_pgm);
    tcase_add_test(refusals, refuse_png_without_libpng);
    tcase_add_test(png, output_path_is_pgm_without_libpng);
#endif
    tcase_add_test(png, output_path_needs_room);
    tcase_add_test(png, write_replaces_atomically);
    tcase_add_test(png, write_failures_explained);

    tcase_add_test(drawing, font_draws_glyphs);
    tcase_add_test(drawing, font_unknown_characters);
    tcase_add_test(drawing, grid_places_tiles);
    tcase_add_test(drawing, grid_without_captions);
    tcase_add_test(drawing, grid_refusals);
    tcase_add_test(drawing, ascii_art);

    tcase_add_test(charts, svg_chart);
    tcase_add_test(charts, svg_single_epoch);
    tcase_add_test(charts, svg_constant_loss);
    tcase_add_test(charts, svg_refusals);
    tcase_add_test(charts, svg_accuracy_with_gaps);
    tcase_add_test(charts, confusion_table);
    tcase_add_test(charts, confusion_heatmap);
    tcase_add_test(charts, confusion_png_file);

    return testdir_run("test_image", suite, CK_ENV);
}
