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
    const size_t outputs = mlp_outputs(m);

    memset(ev, 0, sizeof *ev);
    if (outputs > UINT8_MAX + 1)
        return error_set(err, "the network has %zu outputs, more than the %d classes a label "
                         "can name", outputs, UINT8_MAX + 1);
    if (mlp_check_inputs(m, dataset_image_size(ds), err) != 0)
        return -1;
    if (ds->count > SIZE_MAX / sizeof *ev->logits / outputs)
        return error_set(err, "out of memory for the evaluation of %zu images", ds->count);
    ev->count = ds->count;
    ev->n_out = outputs;
    ev->logits = malloc((ds->count ? ds->count : 1) * outputs * sizeof *ev->logits);
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
        ev->predicted[n] = argmax(ev->logits + n * outputs, outputs);
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
