/* What a person looks at after a run: the pictures of --plots DIR and the
 * text-art digits of --show N. */
#ifndef MNIST_OMP_VISUALS_H
#define MNIST_OMP_VISUALS_H

#include <stddef.h>
#include <stdio.h>

#include "dataset.h"
#include "error.h"
#include "evaluate.h"

/* The curves of the epochs a run trained (epoch i of the run at index i). */
struct visuals_curves {
    const double *losses;
    const double *accuracies;  /* test accuracy in percent; NaN where not evaluated */
    size_t epochs;
    const char *loss_name;     /* for the title: "MSE", "cross-entropy" */
};

/* Writes into dir (created if missing): samples.png (the first training
 * digits with their labels), errors.png (the first misclassified test digits,
 * captioned predicted→true), loss.svg and accuracy.svg (the loss of every
 * epoch trained and the test accuracy of those evaluated; none when no epoch
 * was trained), confusion.txt and confusion.png.  PNG files become PGM in a
 * build without libpng.  Names every file written on `out`. */
int visuals_write(const char *dir, const struct dataset *train, const struct dataset *test,
                  const struct evaluation *test_eval, const struct visuals_curves *curves,
                  FILE *out, struct error *err);

/* Whether visuals_write(dir, ...) could write its files now: dir is a
 * directory or can be made, and each file is acceptable to
 * output_file_check. */
int visuals_check(const char *dir, struct error *err);

/* Prints the first `count` training digits as text art with their labels. */
void visuals_show(FILE *out, const struct dataset *train, size_t count);

#endif
