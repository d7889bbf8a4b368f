/* The training loop: epochs of full-batch gradient descent on one of the two
 * engines, with divergence detection and a per-epoch callback for reporting. */
#ifndef MNIST_OMP_TRAIN_H
#define MNIST_OMP_TRAIN_H

#include "dataset.h"
#include "error.h"
#include "kernels.h"
#include "model.h"
#include "reference.h"

enum engine_kind { ENGINE_OMP, ENGINE_REFERENCE };

const char *engine_kind_name(enum engine_kind kind);

/* Either engine behind one interface. */
struct trainer {
    enum engine_kind kind;
    struct engine *omp;
    struct reference *reference;
};

/* threads: the OpenMP engine's thread count (0: engine_max_threads()); the
 * serial reference runs on the calling thread. */
int trainer_create(struct trainer *t, enum engine_kind kind, const struct mlp *m,
                   const struct dataset *train, int threads, struct error *err);
void trainer_destroy(struct trainer *t);

/* One gradient-descent step; returns the loss before the update. */
double trainer_epoch(struct trainer *t, struct mlp *m, double lr);

/* Called after every epoch with the loss before that epoch's update and the
 * seconds spent training so far.  Returns 0 to go on, 1 to stop training
 * early (the parameters are those after `epoch`), -1 on an error. */
typedef int (*epoch_callback)(void *context, unsigned epoch, double loss, double seconds,
                              struct error *err);

/* Runs the epochs first_epoch .. end_epoch - 1 (the numbers are only what
 * the callback sees).  Returns 0 when all ran, 1 when the callback stopped
 * early, -1 when the loss stopped being finite or the callback failed.
 * *seconds receives the time spent in the epochs. */
int train(struct trainer *t, struct mlp *m, unsigned first_epoch, unsigned end_epoch, double lr,
          epoch_callback on_epoch, void *context, double *seconds, struct error *err);

#endif
