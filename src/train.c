#include "train.h"

#include <math.h>
#include <string.h>

#include "clock.h"

const char *engine_kind_name(enum engine_kind kind)
{
    return kind == ENGINE_REFERENCE ? "reference (serial)" : "omp";
}

int trainer_create(struct trainer *t, enum engine_kind kind, const struct mlp *m,
                   const struct dataset *train, int threads, struct error *err)
{
    memset(t, 0, sizeof *t);
    t->kind = kind;
    if (kind == ENGINE_REFERENCE)
        return reference_create(&t->reference, m, train, err);
    return engine_create(&t->omp, m, train, NULL, threads, err);
}

void trainer_destroy(struct trainer *t)
{
    engine_destroy(t->omp);
    reference_destroy(t->reference);
    memset(t, 0, sizeof *t);
}

double trainer_epoch(struct trainer *t, struct mlp *m, double lr)
{
    if (t->kind == ENGINE_REFERENCE)
        return reference_epoch(t->reference, m, lr);
    return engine_epoch(t->omp, m, lr);
}

int train(struct trainer *t, struct mlp *m, unsigned first_epoch, unsigned end_epoch, double lr,
          epoch_callback on_epoch, void *context, double *seconds, struct error *err)
{
    const double start = clock_seconds();
    *seconds = 0;
    for (unsigned epoch = first_epoch; epoch < end_epoch; epoch++) {
        const double loss = trainer_epoch(t, m, lr);
        *seconds = clock_seconds() - start;
        if (!isfinite(loss))
            return error_set(err,
                             "training diverged: the loss became %s at epoch %u; "
                             "try a smaller learning rate than --lr %g",
                             isnan(loss) ? "NaN" : "infinite", epoch, lr);
        const int status = on_epoch ? on_epoch(context, epoch, loss, *seconds, err) : 0;
        if (status != 0)
            return status;
    }
    /* Each loss comes before its epoch's update, so the loss cannot tell
     * whether the last update overflowed: the parameters can. */
    if (end_epoch > first_epoch && !mlp_is_finite(m))
        return error_set(err,
                         "training diverged: the parameters became non-finite in the update of "
                         "epoch %u; try a smaller learning rate than --lr %g",
                         end_epoch - 1, lr);
    return 0;
}
