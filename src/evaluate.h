/* The evaluator: the forward pass of any network over a test set on one
 * thread (mlp_predict), and what the report needs from it (accuracy,
 * predictions, logits). */
#ifndef MNIST_OMP_EVALUATE_H
#define MNIST_OMP_EVALUATE_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "error.h"
#include "model.h"

struct evaluation {
    size_t count;        /* images evaluated */
    size_t correct;      /* predicted label == true label */
    size_t n_out;        /* the network's outputs: classes */
    double *logits;      /* count x n_out */
    uint8_t *predicted;  /* argmax of each row of logits (first maximum on ties) */
};

/* Classifies every image of ds with m, whose inputs must be the images'
 * pixels and whose outputs (at most 256, what a label byte can name) the
 * classes; the predicted class is the first maximum of the logits. */
int evaluate(struct evaluation *ev, const struct mlp *m, const struct dataset *ds,
             struct error *err);
void evaluation_free(struct evaluation *ev);

double evaluation_accuracy(const struct evaluation *ev);

/* softmax(logits) into probabilities, computed stably (max subtracted). */
void softmax(const double *logits, size_t n, double *probabilities);

#endif
