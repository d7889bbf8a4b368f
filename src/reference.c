#include "reference.h"

#include <stdlib.h>

struct reference {
    const struct dataset *data;
    enum precision precision;
    void *x, *a1, *l2, *dl2, *dl1, *grad;  /* whole matrices, in the model's precision */
};

#define REAL float
#define FN(name) name##_f32
#include "reference_impl.h"
#undef REAL
#undef FN

#define REAL double
#define FN(name) name##_f64
#include "reference_impl.h"
#undef REAL
#undef FN

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
    r->precision = m->precision;
    r->x = calloc(N * m->n_in, size);
    r->a1 = calloc(N * m->n_hidden, size);
    r->l2 = calloc(N * m->n_out, size);
    r->dl2 = calloc(N * m->n_out, size);
    r->dl1 = calloc(N * m->n_hidden, size);
    r->grad = calloc(mlp_param_count(m), size);
    if (!r->x || !r->a1 || !r->l2 || !r->dl2 || !r->dl1 || !r->grad) {
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
    free(r->a1);
    free(r->l2);
    free(r->dl2);
    free(r->dl1);
    free(r->grad);
    free(r);
}

/* The step returns the loss before it and leaves the gradient in r->grad. */
double reference_epoch(struct reference *r, struct mlp *m, double lr)
{
    double loss;
    if (r->precision == PRECISION_F64) {
        loss = reference_step_f64(r, m);
        reference_update_f64(r, m, lr);
    } else {
        loss = reference_step_f32(r, m);
        reference_update_f32(r, m, lr);
    }
    return loss;
}

int reference_logits(const struct mlp *m, const struct dataset *ds, double *logits,
                     struct error *err)
{
    if (mlp_check_inputs(m, dataset_image_size(ds), err) < 0)
        return -1;
    const size_t size = precision_size(m->precision), N = ds->count ? ds->count : 1;
    void *x = calloc(N * m->n_in, size);
    void *a1 = calloc(N * m->n_hidden, size);
    void *l2 = calloc(N * m->n_out, size);
    int status = 0;
    if (!x || !a1 || !l2)
        status = error_set(err, "out of memory for the reference's forward pass (%zu images)",
                           ds->count);
    else if (m->precision == PRECISION_F64)
        reference_logits_f64(m, ds, x, a1, l2, logits);
    else
        reference_logits_f32(m, ds, x, a1, l2, logits);
    free(x);
    free(a1);
    free(l2);
    return status;
}
