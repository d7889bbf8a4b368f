/* The reference step, written once for both precisions (see reference.c). */

/* The forward pass of the N images `pixels` into the whole matrices X
 * (N x I), A1 (N x H) and L2 (N x O, the logits). */
static void FN(reference_forward)(const struct mlp *m, const uint8_t *pixels, size_t N,
                                  REAL *X, REAL *A1, REAL *L2)
{
    const size_t I = m->n_in, H = m->n_hidden, O = m->n_out;
    const struct mlp_layout l = mlp_layout(I, H, O);
    const REAL *W1 = (const REAL *)m->params + l.w1, *b1 = (const REAL *)m->params + l.b1;
    const REAL *W2 = (const REAL *)m->params + l.w2, *b2 = (const REAL *)m->params + l.b2;

    /* X = pixels / 255 */
    for (size_t n = 0; n < N; n++)
        for (size_t i = 0; i < I; i++)
            X[n * I + i] = (REAL)pixels[n * I + i] / (REAL)255;

    /* L1 = X W1 + b1, A1 = max(L1, 0) */
    for (size_t n = 0; n < N; n++)
        for (size_t j = 0; j < H; j++) {
            REAL sum = 0;
            for (size_t i = 0; i < I; i++)
                sum += X[n * I + i] * W1[i * H + j];
            const REAL l1 = sum + b1[j];
            A1[n * H + j] = l1 > 0 ? l1 : 0;
        }

    /* L2 = A1 W2 + b2 */
    for (size_t n = 0; n < N; n++)
        for (size_t o = 0; o < O; o++) {
            REAL sum = 0;
            for (size_t j = 0; j < H; j++)
                sum += A1[n * H + j] * W2[j * O + o];
            L2[n * O + o] = sum + b2[o];
        }
}

/* The logits of the images of ds, as doubles, through matrices x, a1 and l2
 * of the sizes reference_forward fills. */
static void FN(reference_logits)(const struct mlp *m, const struct dataset *ds, void *x,
                                 void *a1, void *l2, double *logits)
{
    const REAL *L2 = l2;
    FN(reference_forward)(m, ds->pixels, ds->count, x, a1, l2);
    for (size_t k = 0; k < ds->count * m->n_out; k++)
        logits[k] = (double)L2[k];
}

static double FN(reference_step)(struct reference *r, const struct mlp *m)
{
    const size_t N = r->data->count, I = m->n_in, H = m->n_hidden, O = m->n_out;
    const struct mlp_layout l = mlp_layout(I, H, O);
    const REAL *W2 = (const REAL *)m->params + l.w2;
    REAL *X = r->x, *A1 = r->a1, *L2 = r->l2, *dL2 = r->dl2, *dL1 = r->dl1;
    REAL *grad = r->grad;
    REAL *dW1 = grad + l.w1, *db1 = grad + l.b1, *dW2 = grad + l.w2, *db2 = grad + l.b2;

    FN(reference_forward)(m, r->data->pixels, N, X, A1, L2);

    /* loss = sum((L2 - Y)^2) / (N O), dL2 = 2 / (N O) (L2 - Y) */
    const REAL scale = (REAL)2 / (REAL)(N * O);
    double squared_error = 0;
    for (size_t n = 0; n < N; n++)
        for (size_t o = 0; o < O; o++) {
            const REAL y = o == r->data->labels[n] ? (REAL)1 : (REAL)0;
            const REAL diff = L2[n * O + o] - y;
            squared_error += (double)diff * (double)diff;
            dL2[n * O + o] = scale * diff;
        }

    /* dW2 = A1^T dL2, db2 = column sums of dL2 */
    for (size_t j = 0; j < H; j++)
        for (size_t o = 0; o < O; o++) {
            REAL sum = 0;
            for (size_t n = 0; n < N; n++)
                sum += A1[n * H + j] * dL2[n * O + o];
            dW2[j * O + o] = sum;
        }
    for (size_t o = 0; o < O; o++) {
        REAL sum = 0;
        for (size_t n = 0; n < N; n++)
            sum += dL2[n * O + o];
        db2[o] = sum;
    }

    /* dA1 = dL2 W2^T, dL1 = dA1 where A1 > 0, else 0 */
    for (size_t n = 0; n < N; n++)
        for (size_t j = 0; j < H; j++) {
            REAL sum = 0;
            for (size_t o = 0; o < O; o++)
                sum += dL2[n * O + o] * W2[j * O + o];
            dL1[n * H + j] = A1[n * H + j] > 0 ? sum : 0;
        }

    /* dW1 = X^T dL1, db1 = column sums of dL1 */
    for (size_t i = 0; i < I; i++)
        for (size_t j = 0; j < H; j++) {
            REAL sum = 0;
            for (size_t n = 0; n < N; n++)
                sum += X[n * I + i] * dL1[n * H + j];
            dW1[i * H + j] = sum;
        }
    for (size_t j = 0; j < H; j++) {
        REAL sum = 0;
        for (size_t n = 0; n < N; n++)
            sum += dL1[n * H + j];
        db1[j] = sum;
    }

    return squared_error / ((double)N * (double)O);
}

static void FN(reference_update)(const struct reference *r, struct mlp *m, double lr)
{
    REAL *params = m->params;
    const REAL *grad = r->grad;
    for (size_t p = 0; p < mlp_param_count(m); p++)
        params[p] -= (REAL)lr * grad[p];
}
