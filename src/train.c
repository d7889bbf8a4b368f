#include <config.h>

#include "train.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

const char *engine_kind_name(enum engine_kind kind)
{
    return kind == ENGINE_REFERENCE ? "reference (serial)" : "omp";
}

/* Whether an epoch is one batch of the whole training set, in its order. */
static bool whole_batch(const struct training *settings, size_t n)
{
    return settings->batch == 0 || settings->batch >= n;
}

int trainer_create(struct trainer *t, enum engine_kind kind, const struct mlp *m,
                   const struct dataset *train, const struct training *settings,
                   struct training_state *state, int threads, const struct cluster *cluster,
                   struct error *err)
{
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->train = train;
    t->total = train->count;
    t->settings = *settings;
    /* Taken over even when creation fails, so the caller never frees it. */
    t->state = *state;
    state->optimizer.velocity = NULL;
    state->optimizer.first_moment = NULL;

    const size_t moments = optimizer_moment_count(&settings->optimizer);
    if ((moments >= 1 && !t->state.optimizer.velocity) ||
        (moments >= 2 && !t->state.optimizer.first_moment)) {
        trainer_destroy(t);
        return error_set(err, "the %s optimiser's state has no moments",
                         optimizer_name(settings->optimizer.kind));
    }
    int status;
    if (cluster && cluster->ranks > 1) {
        if (kind != ENGINE_OMP) {
            trainer_destroy(t);
            return error_set(err, "the %s engine runs in one process, not across %d ranks",
                             engine_kind_name(kind), cluster->ranks);
        }
        status = shard_create(&t->shard, cluster, m, train, settings->batch, threads, err);
        if (status == 0)
            t->total = t->shard.total;
    } else {
        status = kind == ENGINE_REFERENCE ? reference_create(&t->reference, m, train, err)
                                          : engine_create(&t->omp, m, train, NULL, threads, err);
    }
    if (status == 0 && !whole_batch(settings, t->total)) {
        t->order = malloc(t->total * sizeof *t->order);
        if (!t->order)
            status = error_set(err, "out of memory for the shuffle of %zu images", t->total);
    }
    if (status < 0) {
        trainer_destroy(t);
        return -1;
    }
    return 0;
}

void trainer_destroy(struct trainer *t)
{
    engine_destroy(t->omp);
    reference_destroy(t->reference);
    shard_destroy(&t->shard);
    optimizer_state_free(&t->state.optimizer);
    free(t->order);
    memset(t, 0, sizeof *t);
}

uint64_t training_steps_per_epoch(const struct training *settings, size_t n)
{
    if (whole_batch(settings, n))
        return 1;
    return (n + settings->batch - 1) / settings->batch;
}

/* One step on the images batch[0 .. count) (NULL: the whole set): the
 * step's rate and scalars, the batch gradient and the update.  Returns the
 * batch's loss, taken before the update. */
static double trainer_step(struct trainer *t, struct mlp *m, const size_t *batch, size_t count,
                           uint64_t total_steps)
{
    const struct optimizer *o = &t->settings.optimizer;
    struct optimizer_state *s = &t->state.optimizer;
    const double lr =
        schedule_rate(&t->settings.schedule, s->step + 1, t->state.epoch, total_steps);
    const struct optimizer_step step = optimizer_begin_step(o, s, lr);
    if (t->kind == ENGINE_REFERENCE) {
        const double loss = reference_batch_gradient(t->reference, m, batch, count);
        optimizer_apply(o, &step, s, m->precision, NULL, m->params,
                        reference_gradient(t->reference), 0, mlp_param_count(m));
        return loss;
    }
    if (t->shard.cluster)
        return shard_step(&t->shard, m, batch, count, o, &step, s);
    return engine_train_step(t->omp, m, batch, count, o, &step, s);
}

double trainer_epoch(struct trainer *t, struct mlp *m)
{
    const size_t N = t->total, B = t->settings.batch;
    const uint64_t steps = training_steps_per_epoch(&t->settings, N);
    const uint64_t total_steps = (uint64_t)t->settings.epochs * steps;
    double loss;
    if (whole_batch(&t->settings, N)) {
        loss = trainer_step(t, m, NULL, N, total_steps);
    } else {
        for (size_t i = 0; i < N; i++)
            t->order[i] = i;
        py_random_shuffle(&t->state.rng, t->order, N);
        double weighted = 0;
        for (size_t first = 0; first < N; first += B) {
            const size_t count = N - first < B ? N - first : B;
            weighted += trainer_step(t, m, t->order + first, count, total_steps) * (double)count;
        }
        loss = weighted / (double)N;
    }
    t->state.epoch++;
    return loss;
}

int train(struct trainer *t, struct mlp *m, unsigned end_epoch, epoch_callback on_epoch,
          void *context, double *seconds, struct error *err)
{
    const double start = clock_seconds(), lr = t->settings.schedule.lr;
    const unsigned first_epoch = t->state.epoch;
    *seconds = 0;
    while (t->state.epoch < end_epoch) {
        const unsigned epoch = t->state.epoch;
        const double loss = trainer_epoch(t, m);
        *seconds = clock_seconds() - start;
        if (!isfinite(loss))
            return error_set(err,
                             "training diverged: the loss became %s at epoch %u; "
                             "try a smaller learning rate than --lr %g",
                             isnan(loss) ? "NaN" : "infinite", epoch, lr);
        const int status = on_epoch ? on_epoch(context, t, epoch, loss, *seconds, err) : 0;
        if (status != 0)
            return status;
    }
    /* Each loss comes before its batch's update, so the loss cannot tell
     * whether the last update overflowed: the parameters can. */
    if (end_epoch > first_epoch && !mlp_is_finite(m))
        return error_set(err,
                         "training diverged: the parameters became non-finite in the update of "
                         "epoch %u; try a smaller learning rate than --lr %g",
                         end_epoch - 1, lr);
    return 0;
}
