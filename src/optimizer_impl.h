/* The optimisers' elementwise update, written once for both precisions and
 * every instruction set (included by optimizer_isa.h with REAL, FN, SQRT
 * and OPTIMIZER_TARGET defined).
 *
 * Every per-step scalar is worked out in double and rounded to REAL once,
 * before the loop; every operation on an element is in REAL, evaluated as
 * SPEC part 2 writes it, left to right.  A term whose setting is zero is
 * left out rather than computed (no WD*w with WD = 0, no velocity with
 * MU = 0), so that plain SGD is the tutorial's w - lr*g to the bit.
 *
 * Each configuration runs a loop of its own with no test inside, so that
 * the loop is vectorised: the loops below take their configuration as
 * constant flags and are inlined into one call for each.  The lanes are
 * separate elements and vector sqrt and division round correctly as the
 * scalar ones do, so every instruction set gives the same bits. */

/* The step's scalars in the parameters' precision. */
struct FN(optimizer_scalars) {
    REAL lr, momentum, weight_decay;
    REAL beta1, one_minus_beta1, beta2, one_minus_beta2, eps;
    REAL step_size;  /* adam: lr / c1 */
    REAL sqrt_c2;    /* adam: sqrt(c2) */
    REAL shrink;     /* adamw: 1 - lr*WD */
};

static OPTIMIZER_TARGET struct FN(optimizer_scalars)
    FN(optimizer_scalars)(const struct optimizer *o, const struct optimizer_step *step)
{
    return (struct FN(optimizer_scalars)){
        .lr = (REAL)step->lr,
        .momentum = (REAL)o->momentum,
        .weight_decay = (REAL)o->weight_decay,
        .beta1 = (REAL)o->beta1,
        .one_minus_beta1 = (REAL)(1 - o->beta1),
        .beta2 = (REAL)o->beta2,
        .one_minus_beta2 = (REAL)(1 - o->beta2),
        .eps = (REAL)o->eps,
        .step_size = (REAL)(step->lr / step->c1),
        .sqrt_c2 = (REAL)sqrt(step->c2),
        .shrink = (REAL)(1 - step->lr * o->weight_decay),
    };
}

/* SGD: weight decay added to g (decay), velocity (momentum), Nesterov's
 * look-ahead (nesterov, with momentum).  The scalars come by value so that
 * no store through w can change them and they stay in registers. */
static OPTIMIZER_TARGET OPTIMIZER_INLINE void FN(sgd_loop)(
    const struct FN(optimizer_scalars) k, REAL *restrict w, const REAL *restrict grad,
    REAL *restrict v, size_t count, const bool decay, const bool momentum, const bool nesterov)
{
#pragma omp simd
    for (size_t i = 0; i < count; i++) {
        REAL g = grad[i];
        if (decay)
            g = g + k.weight_decay * w[i];
        if (!momentum)
            w[i] = w[i] - k.lr * g;
        else {
            v[i] = k.momentum * v[i] + g;
            if (nesterov)
                w[i] = w[i] - k.lr * (g + k.momentum * v[i]);
            else
                w[i] = w[i] - k.lr * v[i];
        }
    }
}

/* Adam: weight decay added to g (decay) or, AdamW's, w shrunk first
 * (decoupled_decay). */
static OPTIMIZER_TARGET OPTIMIZER_INLINE void FN(adam_loop)(
    const struct FN(optimizer_scalars) k, REAL *restrict w, const REAL *restrict grad,
    REAL *restrict m, REAL *restrict v, size_t count, const bool decay,
    const bool decoupled_decay)
{
#pragma omp simd
    for (size_t i = 0; i < count; i++) {
        REAL g = grad[i];
        if (decoupled_decay)
            w[i] = w[i] * k.shrink;
        if (decay)
            g = g + k.weight_decay * w[i];
        m[i] = k.beta1 * m[i] + k.one_minus_beta1 * g;
        v[i] = k.beta2 * v[i] + (k.one_minus_beta2 * g) * g;
        w[i] = w[i] - (k.step_size * m[i]) / (SQRT(v[i]) / k.sqrt_c2 + k.eps);
    }
}

/* params[first, first + count), in REAL, with the loop of o's configuration. */
static OPTIMIZER_TARGET void FN(optimizer_apply)(const struct optimizer *o,
                                                 const struct optimizer_step *step,
                                                 const struct optimizer_state *s, void *params,
                                                 const void *grad, size_t first, size_t count)
{
    const struct FN(optimizer_scalars) k = FN(optimizer_scalars)(o, step);
    REAL *const w = (REAL *)params + first;
    const REAL *const g = (const REAL *)grad + first;
    REAL *const v = s->velocity ? (REAL *)s->velocity + first : NULL;
    const bool decay = o->weight_decay != 0;
    if (o->kind != OPTIMIZER_SGD) {
        REAL *const m = (REAL *)s->first_moment + first;
        if (!decay)
            FN(adam_loop)(k, w, g, m, v, count, false, false);
        else if (o->kind == OPTIMIZER_ADAMW)
            FN(adam_loop)(k, w, g, m, v, count, false, true);
        else
            FN(adam_loop)(k, w, g, m, v, count, true, false);
    } else if (o->momentum == 0) {
        if (decay)
            FN(sgd_loop)(k, w, g, v, count, true, false, false);
        else
            FN(sgd_loop)(k, w, g, v, count, false, false, false);
    } else if (o->nesterov) {
        if (decay)
            FN(sgd_loop)(k, w, g, v, count, true, true, true);
        else
            FN(sgd_loop)(k, w, g, v, count, false, true, true);
    } else {
        if (decay)
            FN(sgd_loop)(k, w, g, v, count, true, true, false);
        else
            FN(sgd_loop)(k, w, g, v, count, false, true, false);
    }
}
