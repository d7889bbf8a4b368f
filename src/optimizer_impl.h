/* The optimisers' elementwise update, written once for both precisions
 * (included by optimizer.c with REAL, FN and SQRT defined).
 *
 * Every per-step scalar is worked out in double and rounded to REAL once,
 * before the loop; every operation on an element is in REAL, evaluated as
 * SPEC part 2 writes it, left to right.  A term whose setting is zero is
 * left out rather than computed (no WD*w with WD = 0, no velocity with
 * MU = 0), so that plain SGD is the tutorial's w - lr*g to the bit. */

/* The step's scalars in the parameters' precision. */
struct FN(optimizer_scalars) {
    REAL lr, momentum, weight_decay;
    REAL beta1, one_minus_beta1, beta2, one_minus_beta2, eps;
    REAL step_size;  /* adam: lr / c1 */
    REAL sqrt_c2;    /* adam: sqrt(c2) */
    REAL shrink;     /* adamw: 1 - lr*WD */
};

static struct FN(optimizer_scalars) FN(optimizer_scalars)(const struct optimizer *o,
                                                          const struct optimizer_step *step)
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

/* SGD, with momentum (v != NULL) and Nesterov, weight decay added to g.
 * The scalars come by value and the flags as locals, so that no store
 * through w can change them and the compiler may keep them in registers. */
static void FN(sgd_apply)(const struct optimizer *o, const struct FN(optimizer_scalars) k,
                          REAL *restrict w, const REAL *restrict grad, REAL *restrict v,
                          size_t count)
{
    const bool decay = o->weight_decay != 0, nesterov = o->nesterov;
    for (size_t i = 0; i < count; i++) {
        REAL g = grad[i];
        if (decay)
            g = g + k.weight_decay * w[i];
        if (!v) {
            w[i] = w[i] - k.lr * g;
            continue;
        }
        v[i] = k.momentum * v[i] + g;
        if (nesterov)
            w[i] = w[i] - k.lr * (g + k.momentum * v[i]);
        else
            w[i] = w[i] - k.lr * v[i];
    }
}

/* Adam (weight decay added to g) and AdamW (decoupled: w shrunk first). */
static void FN(adam_apply)(const struct optimizer *o, const struct FN(optimizer_scalars) k,
                           REAL *restrict w, const REAL *restrict grad, REAL *restrict m,
                           REAL *restrict v, size_t count)
{
    const bool decay = o->weight_decay != 0, decoupled = o->kind == OPTIMIZER_ADAMW;
    for (size_t i = 0; i < count; i++) {
        REAL g = grad[i];
        if (decay && decoupled)
            w[i] = w[i] * k.shrink;
        else if (decay)
            g = g + k.weight_decay * w[i];
        m[i] = k.beta1 * m[i] + k.one_minus_beta1 * g;
        v[i] = k.beta2 * v[i] + (k.one_minus_beta2 * g) * g;
        w[i] = w[i] - (k.step_size * m[i]) / (SQRT(v[i]) / k.sqrt_c2 + k.eps);
    }
}

static void FN(optimizer_apply)(const struct optimizer *o, const struct optimizer_step *step,
                                const struct optimizer_state *s, REAL *params,
                                const REAL *grad, size_t first, size_t count)
{
    const struct FN(optimizer_scalars) k = FN(optimizer_scalars)(o, step);
    REAL *v = s->velocity ? (REAL *)s->velocity + first : NULL;
    if (o->kind == OPTIMIZER_SGD)
        FN(sgd_apply)(o, k, params + first, grad + first, o->momentum != 0 ? v : NULL, count);
    else
        FN(adam_apply)(o, k, params + first, grad + first, (REAL *)s->first_moment + first, v,
                       count);
}
