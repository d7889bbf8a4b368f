/* The optimisers and schedules of SPEC part 2 (see optimizer.h).
 *
 * Where SPEC part 2 is silent this follows torch.optim:
 * - The moments live in the parameters' precision (torch keeps its state in
 *   the parameter's dtype); t, p1 = B1^t and p2 = B2^t in double.
 * - A zero momentum means no velocity at all (torch's SGD keeps no buffer),
 *   and a zero weight decay adds no WD*w term (torch tests weight_decay != 0),
 *   so plain SGD stays the tutorial's w - lr*g bit for bit.  Nesterov with
 *   MU = 0 is then plain SGD (the options refuse it anyway).
 * - AdamW with WD = 0 shrinks nothing, since w*(1 - lr*0) = w exactly.
 * - The velocity's first step is MU*0 + g = g, which is torch's clone of g.
 * - In float32 each per-step scalar (lr, MU, WD, the betas, 1-B1, 1-B2,
 *   eps, lr/c1, sqrt(c2), 1-lr*WD) is computed in double and rounded to
 *   float once, as torch passes Python floats to float32 kernels; then every
 *   operation on an element is in float. */
#include <config.h>

#include "optimizer.h"
#include "names.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The double nearest pi (Python's math.pi), since C11 has no M_PI. */
static const double PI = 3.141592653589793;

/* optimizer_impl.h's loops are inlined into the call of each
 * configuration, so that its flags are constants there. */
#ifdef __GNUC__
#define OPTIMIZER_INLINE __attribute__((always_inline)) inline
#else
#define OPTIMIZER_INLINE inline
#endif

#define PASTE_(a, b, c) a##b##c
#define PASTE(a, b, c) PASTE_(a, b, c)

/* The update for each instruction set the engine's kernels are built for
 * (kernels.c), with the same target attributes. */
#define OPTIMIZER_TARGET
#define OPTIMIZER_ISA portable
#include "optimizer_isa.h"

#ifdef HAVE_X86_KERNELS
#define OPTIMIZER_TARGET __attribute__((target("avx2,fma")))
#define OPTIMIZER_ISA avx2
#include "optimizer_isa.h"

#define OPTIMIZER_TARGET __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")))
#define OPTIMIZER_ISA avx512
#include "optimizer_isa.h"
#endif

typedef void optimizer_update(const struct optimizer *o, const struct optimizer_step *step,
                              const struct optimizer_state *s, void *params, const void *grad,
                              size_t first, size_t count);

/* Portable last: it serves NULL and any name without an entry of its own. */
static const struct optimizer_isa {
    const char *name;
    optimizer_update *f32, *f64;
} optimizer_isas[] = {
#ifdef HAVE_X86_KERNELS
    {"avx512", optimizer_apply_f32_avx512, optimizer_apply_f64_avx512},
    {"avx2", optimizer_apply_f32_avx2, optimizer_apply_f64_avx2},
#endif
    {"portable", optimizer_apply_f32_portable, optimizer_apply_f64_portable},
};
enum { OPTIMIZER_ISA_COUNT = sizeof optimizer_isas / sizeof *optimizer_isas };

static const char *const optimizer_names[] = {"sgd", "adam", "adamw"};
static const char *const schedule_names[] = {"constant", "cosine", "step"};

const char *optimizer_name(enum optimizer_kind kind)
{
    return optimizer_names[kind];
}

int optimizer_parse(const char *name, enum optimizer_kind *kind)
{
    const int i = name_index(name, optimizer_names, 3);
    if (i < 0)
        return -1;
    *kind = (enum optimizer_kind)i;
    return 0;
}

const char *schedule_name(enum schedule_kind kind)
{
    return schedule_names[kind];
}

int schedule_parse(const char *name, enum schedule_kind *kind)
{
    const int i = name_index(name, schedule_names, 3);
    if (i < 0)
        return -1;
    *kind = (enum schedule_kind)i;
    return 0;
}

size_t optimizer_moment_count(const struct optimizer *o)
{
    if (o->kind != OPTIMIZER_SGD)
        return 2;
    return o->momentum != 0 ? 1 : 0;
}

int optimizer_state_create(struct optimizer_state *s, const struct optimizer *o, size_t count,
                           enum precision precision, struct error *err)
{
    const size_t moments = optimizer_moment_count(o), size = precision_size(precision);
    memset(s, 0, sizeof *s);
    s->p1 = 1;
    s->p2 = 1;
    if (moments >= 1)
        s->velocity = calloc(count ? count : 1, size);
    if (moments >= 2)
        s->first_moment = calloc(count ? count : 1, size);
    if ((moments >= 1 && !s->velocity) || (moments >= 2 && !s->first_moment)) {
        optimizer_state_free(s);
        return error_set(err, "out of memory for the %s optimiser's %zu moment arrays of %zu "
                         "parameters", optimizer_name(o->kind), moments, count);
    }
    return 0;
}

void optimizer_state_free(struct optimizer_state *s)
{
    free(s->velocity);
    free(s->first_moment);
    s->velocity = NULL;
    s->first_moment = NULL;
}

double schedule_rate(const struct schedule *s, uint64_t t, unsigned epoch,
                     uint64_t total_steps)
{
    switch (s->kind) {
    case SCHEDULE_COSINE:
        return s->lr * 0.5 * (1 + cos(PI * (double)(t - 1) / (double)total_steps));
    case SCHEDULE_STEP: {
        const unsigned factors = s->step_epochs ? epoch / s->step_epochs : 0;
        double product = 1;
        for (unsigned k = 0; k < factors; k++)
            product *= s->step_gamma;
        return s->lr * product;
    }
    case SCHEDULE_CONSTANT:
        break;
    }
    return s->lr;
}

struct optimizer_step optimizer_begin_step(const struct optimizer *o, struct optimizer_state *s,
                                           double lr)
{
    s->step++;
    if (o->kind != OPTIMIZER_SGD) {
        s->p1 *= o->beta1;
        s->p2 *= o->beta2;
    }
    return (struct optimizer_step){.lr = lr, .c1 = 1 - s->p1, .c2 = 1 - s->p2};
}

/* The update for the instruction set named isa. */
static const struct optimizer_isa *optimizer_isa(const char *isa)
{
    for (size_t i = 0; isa && i < OPTIMIZER_ISA_COUNT; i++)
        if (strcmp(optimizer_isas[i].name, isa) == 0)
            return &optimizer_isas[i];
    return &optimizer_isas[OPTIMIZER_ISA_COUNT - 1];
}

void optimizer_apply(const struct optimizer *o, const struct optimizer_step *step,
                     const struct optimizer_state *s, enum precision precision, const char *isa,
                     void *params, const void *grad, size_t first, size_t count)
{
    const struct optimizer_isa *update = optimizer_isa(isa);
    (precision == PRECISION_F64 ? update->f64 : update->f32)(o, step, s, params, grad, first,
                                                             count);
}
