/* The training loop of SPEC part 2: epochs of steps on batches drawn from
 * the run's random stream, the learning-rate schedule and the optimiser,
 * on either engine, with divergence detection and a per-epoch callback for
 * reporting, evaluation and checkpoints. */
#ifndef MNIST_OMP_TRAIN_H
#define MNIST_OMP_TRAIN_H

#include <stdint.h>

#include "cluster.h"
#include "dataset.h"
#include "error.h"
#include "kernels.h"
#include "model.h"
#include "optimizer.h"
#include "reference.h"
#include "rng.h"
#include "shard.h"

enum engine_kind { ENGINE_OMP, ENGINE_REFERENCE };

const char *engine_kind_name(enum engine_kind kind);

/* How a run trains: what the options of SPEC part 2 set. */
struct training {
    size_t batch;        /* images per step; 0 or >= N: the whole training set */
    struct optimizer optimizer;
    struct schedule schedule;
    unsigned epochs;     /* of the whole run (resumed or not): the schedule's T */
};

/* Everything a run carries from one epoch to the next besides the weights:
 * what a checkpoint must hold for a resumed run to end bitwise equal. */
struct training_state {
    unsigned epoch;      /* epochs done */
    struct py_random rng;  /* the stream that drew the subsets and the weights, continued */
    struct optimizer_state optimizer;
};

/* Either engine behind one interface, the OpenMP one in one process or
 * across the ranks of a cluster. */
struct trainer {
    enum engine_kind kind;
    struct engine *omp;
    struct reference *reference;
    struct shard shard;   /* across ranks, this rank's part (else shard.cluster is NULL) */
    const struct dataset *train;  /* across ranks: this rank's share */
    size_t total;         /* the training set's images, across ranks too */
    struct training settings;
    struct training_state state;
    size_t *order;       /* the epoch's shuffle, N indices */
};

/* threads: the OpenMP engine's thread count (0: engine_max_threads()); the
 * serial reference runs on the calling thread.  cluster: NULL, or the ranks
 * that train together (more than one: the OpenMP engine only, train the
 * rank's share of the set as shard_range cuts it; every rank creates its
 * trainer, and then trains, at once).  state: where the run stands
 * (epoch 0, the stream after the weights were drawn, and a fresh optimiser
 * state for a new run; a checkpoint's for a resumed one); the trainer takes
 * it over, moments included, and frees it with itself. */
int trainer_create(struct trainer *t, enum engine_kind kind, const struct mlp *m,
                   const struct dataset *train, const struct training *settings,
                   struct training_state *state, int threads, const struct cluster *cluster,
                   struct error *err);
void trainer_destroy(struct trainer *t);

/* Steps in one epoch: ceil(N / B), 1 for the whole training set. */
uint64_t training_steps_per_epoch(const struct training *settings, size_t n);

/* One epoch (the next, t->state.epoch): its shuffle, if any, and its steps.
 * Returns the epoch's loss as SPEC part 2 defines it, each batch's taken
 * before its update; t->state.epoch then counts it. */
double trainer_epoch(struct trainer *t, struct mlp *m);

/* Called after every epoch with the epoch (from 0), its loss and the
 * seconds spent training so far; t->state is then the state after that
 * epoch.  Returns 0 to go on, 1 to stop training early, -1 on an error. */
typedef int (*epoch_callback)(void *context, const struct trainer *t, unsigned epoch,
                              double loss, double seconds, struct error *err);

/* Runs epochs until t->state.epoch reaches end_epoch.  Returns 0 when all
 * ran, 1 when the callback stopped early, -1 when the loss or the
 * parameters stopped being finite or the callback failed.  *seconds
 * receives the time spent in the epochs. */
int train(struct trainer *t, struct mlp *m, unsigned end_epoch, epoch_callback on_epoch,
          void *context, double *seconds, struct error *err);

#endif
