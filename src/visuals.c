#include <config.h>

#include "visuals.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "atomic_file.h"
#include "image.h"
#include "plot.h"

enum { SAMPLES_SHOWN = 40, ERRORS_SHOWN = 20, GRID_COLUMNS = 10, CAPTION_SIZE = 16 };

/* The files of a --plots directory, shared by the check and the writing. */
enum { SAMPLES, ERRORS, LOSS, ACCURACY, CONFUSION_TEXT, CONFUSION_PICTURE, PLOT_FILES };
static const char *const plot_file_names[PLOT_FILES] = {
    [SAMPLES] = "samples.png", [ERRORS] = "errors.png", [LOSS] = "loss.svg",
    [ACCURACY] = "accuracy.svg",
    [CONFUSION_TEXT] = "confusion.txt", [CONFUSION_PICTURE] = "confusion.png",
};

static int make_directory(const char *dir, struct error *err)
{
    struct stat st;
    if (mkdir(dir, 0777) == 0 || (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode)))
        return 0;
    if (errno == EEXIST)
        return error_set(err, "%s: exists and is not a directory", dir);
    return error_set(err, "%s: cannot create the directory: %s", dir, strerror(errno));
}

/* dir/the name of plot file `which`. */
static int output_path(char *path, size_t size, const char *dir, int which, struct error *err)
{
    if ((size_t)snprintf(path, size, "%s/%s", dir, plot_file_names[which]) >= size)
        return error_set(err, "%s: the directory name is too long", dir);
    return 0;
}

int visuals_check(const char *dir, struct error *err)
{
    struct stat st;
    char path[4096], written[4096];

    if (stat(dir, &st) != 0)  /* to be made: its parent must take it */
        return errno == ENOENT ? output_file_check(dir, err)
                               : error_set(err, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return error_set(err, "%s: exists and is not a directory", dir);
    for (int which = 0; which < PLOT_FILES; which++)
        if (output_path(path, sizeof path, dir, which, err) < 0 ||
            image_output_path(path, written, sizeof written, err) < 0 ||
            output_file_check(written, err) < 0)
            return -1;
    return 0;
}

static void announce(FILE *out, const char *path)
{
    char written[4096];
    struct error ignored;
    if (image_output_path(path, written, sizeof written, &ignored) == 0)
        fprintf(out, "Wrote %s\n", written);
}

/* A captioned grid of the images `indices` of ds, written to path. */
static int write_digit_grid(const char *path, const struct dataset *ds, const size_t *indices,
                            char (*captions)[CAPTION_SIZE], size_t count, struct error *err)
{
    const uint8_t *tiles[SAMPLES_SHOWN];
    const char *caption_text[SAMPLES_SHOWN];
    struct gray_image grid = {0};
    for (size_t i = 0; i < count; i++) {
        tiles[i] = ds->pixels + indices[i] * dataset_image_size(ds);
        caption_text[i] = captions[i];
    }
    int status = image_grid(&grid, tiles, ds->cols, ds->rows, count,
                            count < GRID_COLUMNS ? count : GRID_COLUMNS, caption_text, err);
    if (status == 0)
        status = image_write_png(path, &grid, err);
    gray_image_free(&grid);
    return status;
}

static int write_samples(const char *path, const struct dataset *train, struct error *err)
{
    size_t indices[SAMPLES_SHOWN];
    char captions[SAMPLES_SHOWN][CAPTION_SIZE];
    const size_t count = train->count < SAMPLES_SHOWN ? train->count : SAMPLES_SHOWN;
    for (size_t i = 0; i < count; i++) {
        indices[i] = i;
        snprintf(captions[i], CAPTION_SIZE, "%u", train->labels[i]);
    }
    return write_digit_grid(path, train, indices, captions, count, err);
}

static int write_errors(const char *path, const struct dataset *test,
                        const struct evaluation *ev, struct error *err)
{
    size_t indices[ERRORS_SHOWN], count = 0;
    char captions[ERRORS_SHOWN][CAPTION_SIZE];
    for (size_t n = 0; n < ev->count && count < ERRORS_SHOWN; n++) {
        if (ev->predicted[n] == test->labels[n])
            continue;
        snprintf(captions[count], CAPTION_SIZE, "%u\xe2\x86\x92%u", ev->predicted[n],
                 test->labels[n]);
        indices[count++] = n;
    }
    if (count == 0) {
        /* Nothing misclassified: an empty white picture says so. */
        struct gray_image blank = {0};
        int status = image_create(&blank, 64, 16, 255, err);
        if (status == 0)
            status = image_write_png(path, &blank, err);
        gray_image_free(&blank);
        return status;
    }
    return write_digit_grid(path, test, indices, captions, count, err);
}

int visuals_write(const char *dir, const struct dataset *train, const struct dataset *test,
                  const struct evaluation *test_eval, const struct visuals_curves *curves,
                  FILE *out, struct error *err)
{
    size_t confusion[PLOT_CLASSES][PLOT_CLASSES] = {{0}};
    char path[4096], title[128];

    for (size_t n = 0; n < test_eval->count; n++)
        if (test->labels[n] < PLOT_CLASSES && test_eval->predicted[n] < PLOT_CLASSES)
            confusion[test->labels[n]][test_eval->predicted[n]]++;
    if (make_directory(dir, err) < 0 ||
        output_path(path, sizeof path, dir, SAMPLES, err) < 0 ||
        write_samples(path, train, err) < 0)
        return -1;
    announce(out, path);
    if (output_path(path, sizeof path, dir, ERRORS, err) < 0 ||
        write_errors(path, test, test_eval, err) < 0)
        return -1;
    announce(out, path);
    if (curves->epochs > 0) {
        snprintf(title, sizeof title, "mnist-omp: training loss (%s)", curves->loss_name);
        if (output_path(path, sizeof path, dir, LOSS, err) < 0 ||
            plot_loss_svg(path, curves->losses, curves->epochs, title, err) < 0)
            return -1;
        fprintf(out, "Wrote %s\n", path);
        if (output_path(path, sizeof path, dir, ACCURACY, err) < 0 ||
            plot_accuracy_svg(path, curves->accuracies, curves->epochs,
                              "mnist-omp: test accuracy", err) < 0)
            return -1;
        fprintf(out, "Wrote %s\n", path);
    }
    if (output_path(path, sizeof path, dir, CONFUSION_TEXT, err) < 0 ||
        plot_confusion_text(path, (const size_t(*)[PLOT_CLASSES])confusion, err) < 0)
        return -1;
    fprintf(out, "Wrote %s\n", path);
    if (output_path(path, sizeof path, dir, CONFUSION_PICTURE, err) < 0 ||
        plot_confusion_png(path, (const size_t(*)[PLOT_CLASSES])confusion, err) < 0)
        return -1;
    announce(out, path);
    return 0;
}

void visuals_show(FILE *out, const struct dataset *train, size_t count)
{
    for (size_t n = 0; n < count && n < train->count; n++) {
        fprintf(out, "Training image %zu: label %u\n", n, train->labels[n]);
        image_print_ascii(out, train->pixels + n * dataset_image_size(train), train->cols,
                          train->rows);
    }
}
