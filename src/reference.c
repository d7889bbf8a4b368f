#include <config.h>

#include "reference.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* Whole matrices in the model's precision, for batches of up to `capacity`
 * images. */
struct reference {
    const struct dataset *data;
    size_t n_layers;
    void *x;                     /* capacity x inputs */
    void *a[MLP_MAX_LAYERS];     /* capacity x outputs of layer l (the last: logits) */
    void *delta, *delta_in;      /* capacity x the widest layer: dZ of a layer, of the one below */
    void *grad;                  /* layout of the parameters */
};

#define REAL float
#define FN(name) name##_f32
#define EXP expf
#define LOG logf
#define TANH tanhf
#include "reference_impl.h"
#undef REAL
#undef FN
#undef EXP
#undef LOG
#undef TANH

#define REAL double
#define FN(name) name##_f64
#define EXP exp
#define LOG log
#define TANH tanh
#include "reference_impl.h"
#undef REAL
#undef FN
#undef EXP
#undef LOG
#undef TANH

int reference_create(struct reference **out, const struct mlp *m, const struct dataset *ds,
                     struct error *err)
{
    *out = NULL;
    if (ds->count == 0)
        return error_set(err, "cannot train on an empty training set");
    if (mlp_check_inputs(m, dataset_image_size(ds), err) < 0)
        return -1;
    struct reference *r = calloc(1, sizeof *r);
    if (!r)
        return error_set(err, "out of memory");
    const size_t size = precision_size(m->precision), N = ds->count;
    r->data = ds;
    r->n_layers = m->n_layers;
    r->x = calloc(N * mlp_inputs(m), size);
    bool allocated = r->x != NULL;
    for (size_t l = 0; l < m->n_layers; l++) {
        r->a[l] = calloc(N * m->widths[l + 1], size);
        allocated = allocated && r->a[l];
    }
    r->delta = calloc(N * mlp_max_width(m), size);
    r->delta_in = calloc(N * mlp_max_width(m), size);
    r->grad = calloc(mlp_param_count(m), size);
    if (!allocated || !r->delta || !r->delta_in || !r->grad) {
        reference_destroy(r);
        return error_set(err, "out of memory for the reference's matrices (%zu samples)", N);
    }
    *out = r;
    return 0;
}

void reference_destroy(struct reference *r)
{
    if (!r)
        return;
    free(r->x);
    for (size_t l = 0; l < r->n_layers; l++)
        free(r->a[l]);
    free(r->delta);
    free(r->delta_in);
    free(r->grad);
    free(r);
}

double reference_batch_gradient(struct reference *r, const struct mlp *m, const size_t *batch,
                                size_t count)
{
    if (m->precision == PRECISION_F64)
        return reference_batch_gradient_f64(r, m, batch, count);
    return reference_batch_gradient_f32(r, m, batch, count);
}

const void *reference_gradient(const struct reference *r)
{
    return r->grad;
}

int reference_logits(const struct mlp *m, const struct dataset *ds, double *logits,
                     struct error *err)
{
    if (mlp_check_inputs(m, dataset_image_size(ds), err) < 0)
        return -1;
    if (ds->count == 0)
        return 0;
    struct reference *r;
    if (reference_create(&r, m, ds, err) < 0)
        return error_set(err, "out of memory for the reference's forward pass (%zu images)",
                         ds->count);
    if (m->precision == PRECISION_F64)
        reference_logits_f64(r, m, logits);
    else
        reference_logits_f32(r, m, logits);
    reference_destroy(r);
    return 0;
}
