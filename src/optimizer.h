/* The optimisers and learning-rate schedules of SPEC part 2 as plain
 * functions over arrays: one step's scalars are worked out once
 * (optimizer_begin_step), then optimizer_apply updates any range of the
 * parameters elementwise, so that the engine can cut the arena among its
 * threads and the serial reference can pass it whole, with the same bits. */
#ifndef MNIST_OMP_OPTIMIZER_H
#define MNIST_OMP_OPTIMIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "model.h"

enum optimizer_kind { OPTIMIZER_SGD, OPTIMIZER_ADAM, OPTIMIZER_ADAMW };

struct optimizer {
    enum optimizer_kind kind;
    double momentum;      /* sgd: MU (0) */
    bool nesterov;        /* sgd: needs momentum > 0 */
    double weight_decay;  /* sgd, adam: added to g (0); adamw: decoupled (0.01) */
    double beta1, beta2, eps;  /* adam, adamw: 0.9, 0.999, 1e-8 */
};

enum schedule_kind { SCHEDULE_CONSTANT, SCHEDULE_COSINE, SCHEDULE_STEP };

struct schedule {
    enum schedule_kind kind;
    double lr;             /* --lr X */
    unsigned step_epochs;  /* step: E >= 1 */
    double step_gamma;     /* step: G */
};

/* The whole state an optimiser carries from step to step.  The moment
 * arenas have the layout of the parameters; NULL where the optimiser has
 * none (sgd without momentum has neither, sgd with momentum only velocity). */
struct optimizer_state {
    uint64_t step;        /* t of the last step taken; 0 before the first */
    double p1, p2;        /* adam: B1^t and B2^t by repeated multiplication */
    void *velocity;       /* sgd: v; adam: v (second moment) */
    void *first_moment;   /* adam: m */
};

/* What a step needs besides the arrays, fixed at its start. */
struct optimizer_step {
    double lr;            /* the step's learning rate */
    double c1, c2;        /* adam: 1 - B1^t, 1 - B2^t */
};

const char *optimizer_name(enum optimizer_kind kind);  /* "sgd", "adam", "adamw" */
int optimizer_parse(const char *name, enum optimizer_kind *kind);
const char *schedule_name(enum schedule_kind kind);    /* "constant", "cosine", "step" */
int schedule_parse(const char *name, enum schedule_kind *kind);

/* How many moment arenas the optimiser keeps (0, 1 or 2). */
size_t optimizer_moment_count(const struct optimizer *o);

/* Allocates (zeroed) the moments o needs for a network of `count`
 * parameters in that precision, step 0, p1 = p2 = 1. */
int optimizer_state_create(struct optimizer_state *s, const struct optimizer *o, size_t count,
                           enum precision precision, struct error *err);
void optimizer_state_free(struct optimizer_state *s);

/* The learning rate of step t (from 1) during epoch `epoch` (from 0) of a
 * run of total_steps steps, as SPEC part 2 defines each schedule. */
double schedule_rate(const struct schedule *s, uint64_t t, unsigned epoch,
                     uint64_t total_steps);

/* Advances s to the next step (t, p1, p2) and returns its scalars. */
struct optimizer_step optimizer_begin_step(const struct optimizer *o, struct optimizer_state *s,
                                           double lr);

/* Updates params[first, first + count) from grad (the batch gradient, left
 * unchanged) and the moments at the same offsets, in the model's precision,
 * with the vector loops of the instruction set isa: a name the engine's
 * kernels have and this CPU runs (engine_isa), or NULL for the portable
 * loops.  Every instruction set gives the same bits. */
void optimizer_apply(const struct optimizer *o, const struct optimizer_step *step,
                     const struct optimizer_state *s, enum precision precision, const char *isa,
                     void *params, const void *grad, size_t first, size_t count);

#endif
