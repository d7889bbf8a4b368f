/* Pictures of a run: the training loss and the test accuracy per epoch as
 * SVG charts, and the confusion matrix as a text table and as a heatmap.
 * Every file is written atomically (see struct atomic_file). */
#ifndef MNIST_OMP_PLOT_H
#define MNIST_OMP_PLOT_H

#include <stddef.h>
#include <stdio.h>

#include "error.h"
#include "image.h"

#define PLOT_CLASSES 10

/* A standalone SVG chart of loss[i] at epoch i (i from 0), with labelled
 * axes ("epoch", "loss") and round-numbered ticks, under `title`.  Refuses
 * count 0 and values that are not finite. */
int plot_loss_svg(const char *path, const double *loss, size_t count, const char *title,
                  struct error *err);

/* The same chart of the test accuracy (in percent) after epoch i, with
 * NaN for the epochs that were not evaluated, which the curve passes by;
 * placed like the loss chart of the same epochs, so that the two read side
 * by side.  Refuses a chart without a single value. */
int plot_accuracy_svg(const char *path, const double *accuracy, size_t count,
                      const char *title, struct error *err);

/* The confusion matrix (matrix[true][predicted]) as an aligned table: the
 * counts, each row's total and accuracy (the share predicted right), each
 * column's total and the overall accuracy. */
void plot_confusion_print(FILE *out, const size_t matrix[PLOT_CLASSES][PLOT_CLASSES]);

/* plot_confusion_print into a file. */
int plot_confusion_text(const char *path, const size_t matrix[PLOT_CLASSES][PLOT_CLASSES],
                        struct error *err);

/* The confusion matrix as a heatmap: a line of explanation on top, the
 * predicted digits above the columns, the true digits left of the rows, and
 * each cell shaded by its count's share of the row (white 0%, black 100%),
 * its count written in it when the count fits. */
enum {
    PLOT_CONFUSION_MARGIN = 6,
    PLOT_CONFUSION_LABEL_SCALE = 2,
    PLOT_CONFUSION_CELL = 28,  /* cells include their top and left grid lines */
    /* cell (t, p) has its top-left corner at (LEFT + p * CELL, TOP + t * CELL) */
    PLOT_CONFUSION_LEFT = PLOT_CONFUSION_MARGIN + IMAGE_FONT_WIDTH * PLOT_CONFUSION_LABEL_SCALE +
                          PLOT_CONFUSION_MARGIN,
    PLOT_CONFUSION_TOP = PLOT_CONFUSION_MARGIN + IMAGE_FONT_HEIGHT + PLOT_CONFUSION_MARGIN +
                         IMAGE_FONT_HEIGHT * PLOT_CONFUSION_LABEL_SCALE + PLOT_CONFUSION_MARGIN,
    /* one more column and row of pixels for the closing grid lines */
    PLOT_CONFUSION_WIDTH = PLOT_CONFUSION_LEFT + PLOT_CLASSES * PLOT_CONFUSION_CELL + 1 +
                           PLOT_CONFUSION_MARGIN,
    PLOT_CONFUSION_HEIGHT = PLOT_CONFUSION_TOP + PLOT_CLASSES * PLOT_CONFUSION_CELL + 1 +
                            PLOT_CONFUSION_MARGIN,
};

int plot_confusion_image(struct gray_image *out,
                         const size_t matrix[PLOT_CLASSES][PLOT_CLASSES], struct error *err);

/* plot_confusion_image written by image_write_png (so as PGM, under the name
 * image_output_path gives, when built without libpng). */
int plot_confusion_png(const char *path, const size_t matrix[PLOT_CLASSES][PLOT_CLASSES],
                       struct error *err);

#endif
