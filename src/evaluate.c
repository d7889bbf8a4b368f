#include "evaluate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

static uint8_t argmax(const double *values, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (values[i] > values[best])
            best = i;
    return (uint8_t)best;
}

int evaluate(struct evaluation *ev, const struct mlp *m, const struct dataset *ds,
             struct error *err)
{
    memset(ev, 0, sizeof *ev);
    ev->count = ds->count;
    ev->n_out = m->n_out;
    ev->logits = malloc((ds->count ? ds->count : 1) * m->n_out * sizeof *ev->logits);
    ev->predicted = malloc(ds->count ? ds->count : 1);
    if (!ev->logits || !ev->predicted) {
        evaluation_free(ev);
        return error_set(err, "out of memory for the evaluation of %zu images", ds->count);
    }
    if (mlp_predict(m, ds, ev->logits, err) < 0) {
        evaluation_free(ev);
        return -1;
    }
    for (size_t n = 0; n < ds->count; n++) {
        ev->predicted[n] = argmax(ev->logits + n * m->n_out, m->n_out);
        ev->correct += ev->predicted[n] == ds->labels[n];
    }
    return 0;
}

void evaluation_free(struct evaluation *ev)
{
    free(ev->logits);
    free(ev->predicted);
    memset(ev, 0, sizeof *ev);
}

double evaluation_accuracy(const struct evaluation *ev)
{
    return ev->count ? (double)ev->correct / (double)ev->count : 0.0;
}

void softmax(const double *logits, size_t n, double *probabilities)
{
    double max = logits[0], sum = 0;
    for (size_t i = 1; i < n; i++)
        if (logits[i] > max)
            max = logits[i];
    for (size_t i = 0; i < n; i++) {
        probabilities[i] = exp(logits[i] - max);
        sum += probabilities[i];
    }
    for (size_t i = 0; i < n; i++)
        probabilities[i] /= sum;
}
