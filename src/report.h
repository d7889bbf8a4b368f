/* What mnist-omp prints: the run's header, the loss every few epochs, the
 * training time and the evaluation, in the spirit of the tutorial's output. */
#ifndef MNIST_OMP_REPORT_H
#define MNIST_OMP_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "dataset.h"
#include "evaluate.h"
#include "model.h"
#include "train.h"

struct run_description {
    const struct mlp *model;
    const char *data_dir;
    size_t train_count, train_total, test_count, test_total;
    int64_t seed;
    enum engine_kind engine;
    int threads;
    unsigned first_epoch, end_epoch;  /* the epochs this run trains */
    double lr;
    const char *start_file;           /* the --load or --resume file, or NULL */
};

/* Floating-point operations of one epoch counted as dense matrix products
 * (multiply and add are two): forward X.W1 and A1.W2, backward A1^T.dL2,
 * dL2.W2^T and X^T.dL1, i.e. 2 N (2 n_in H + 3 H n_out). */
double epoch_flops(size_t n, size_t n_in, size_t n_hidden, size_t n_out);

void report_header(FILE *out, const struct run_description *run);
void report_epoch(FILE *out, unsigned epoch, double loss);
/* The updating progress line of a run on a terminal `columns` wide, into
 * line (size bytes): at most columns - 1 characters, since a line that
 * fills the last column wraps on some terminals and the next redraw would
 * leave it behind.  Details go as the width shrinks; the shortest form is
 * cut as a last resort. */
void report_progress_line(char *line, size_t size, size_t columns, unsigned epoch,
                          unsigned end_epoch, double loss, double elapsed, double eta);

void report_training_time(FILE *out, const struct run_description *run, double seconds);

/* Accuracy, the softmax of the first training and test image, and the first
 * misclassified test images. */
void report_evaluation(FILE *out, const struct evaluation *test_eval,
                       const struct dataset *test, const struct evaluation *train_first,
                       const struct dataset *train);

#endif
