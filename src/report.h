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
    const struct training *training;
    const char *data_dir;
    size_t train_count, train_total, test_count, test_total;
    int64_t seed;
    enum engine_kind engine;
    int threads;                 /* a rank's */
    int ranks;                   /* MPI ranks training together (1: one process) */
    unsigned first_epoch, end_epoch;  /* the epochs this run trains */
    const char *start_file;           /* the --load or --resume file, or NULL */
};

/* Floating-point operations of one epoch over n images counted as dense
 * matrix products (multiply and add are two): per layer the forward product
 * and the weights' gradient, and the inputs' gradient for every layer but
 * the first, i.e. 2 N (2 n_in H + 3 H n_out) for the tutorial's network,
 * whatever the batch size. */
double epoch_flops(size_t n, const struct mlp *m);

void report_header(FILE *out, const struct run_description *run);
/* "Epoch: E  Loss: L", then the test accuracy (in percent) unless it is
 * negative. */
void report_epoch(FILE *out, unsigned epoch, double loss, double accuracy);

/* Where a run stands, for its progress line. */
struct progress {
    unsigned epoch, end_epoch;  /* epochs done, and at the end */
    double loss;
    double accuracy;            /* the latest test accuracy in percent; < 0: none yet */
    double elapsed, per_epoch, eta;  /* seconds */
};

/* The updating progress line of a run on a terminal `columns` wide, into
 * line (size bytes): at most columns - 1 characters, since a line that
 * fills the last column wraps on some terminals and the next redraw would
 * leave it behind.  Details go as the width shrinks; the shortest form is
 * cut as a last resort. */
void report_progress_line(char *line, size_t size, size_t columns, const struct progress *p);

void report_training_time(FILE *out, const struct run_description *run, double seconds);

/* Accuracy, the softmax of the first training and test image, and the first
 * misclassified test images. */
void report_evaluation(FILE *out, const struct evaluation *test_eval,
                       const struct dataset *test, const struct evaluation *train_first,
                       const struct dataset *train);

#endif
