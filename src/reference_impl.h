/* The reference step, written once for both precisions (included by
 * reference.c with REAL, FN, EXP, LOG and TANH defined).  Every sum runs in
 * plain ascending order and every bias is added after its sum. */

/* Hidden layers' activation of a pre-activation z. */
static REAL FN(activate)(enum activation activation, REAL z)
{
    switch (activation) {
    case ACTIVATION_TANH:
        return TANH(z);
    case ACTIVATION_SIGMOID:
        return (REAL)1 / ((REAL)1 + EXP(-z));
    case ACTIVATION_RELU:
        break;
    }
    return z > 0 ? z : 0;
}

/* The gradient at the pre-activation of a hidden neuron whose activation is
 * a, from the gradient `upstream` at its activation. */
static REAL FN(activation_backward)(enum activation activation, REAL a, REAL upstream)
{
    switch (activation) {
    case ACTIVATION_TANH:
        return upstream * ((REAL)1 - a * a);
    case ACTIVATION_SIGMOID:
        return upstream * (a * ((REAL)1 - a));
    case ACTIVATION_RELU:
        break;
    }
    return a > 0 ? upstream : 0;  /* relu: a > 0 exactly where z > 0 */
}

/* The image the batch's n-th row holds. */
static size_t FN(image_of)(const size_t *batch, size_t n)
{
    return batch ? batch[n] : n;
}

/* The forward pass of the images batch[0 .. N) of ds (batch NULL: the first
 * N in order) into r->x (N x inputs) and r->a[l] (N x outputs of layer l;
 * the last layer's are the logits). */
static void FN(reference_forward)(struct reference *r, const struct mlp *m,
                                  const struct dataset *ds, const size_t *batch, size_t N)
{
    const size_t I = mlp_inputs(m);
    REAL *X = r->x;

    /* X = pixels / 255 */
    for (size_t n = 0; n < N; n++) {
        const uint8_t *pixels = ds->pixels + FN(image_of)(batch, n) * I;
        for (size_t i = 0; i < I; i++)
            X[n * I + i] = (REAL)pixels[i] / (REAL)255;
    }

    /* Z = A_in W + b; A = activation(Z) for a hidden layer, Z for the last */
    for (size_t l = 0; l < m->n_layers; l++) {
        const struct mlp_layer layer = mlp_layer(m, l);
        const size_t In = layer.n_in, Out = layer.n_out;
        const REAL *W = (const REAL *)m->params + layer.weights;
        const REAL *b = (const REAL *)m->params + layer.bias;
        const REAL *A_in = l == 0 ? X : r->a[l - 1];
        REAL *A = r->a[l];
        const bool hidden = l + 1 < m->n_layers;
        for (size_t n = 0; n < N; n++)
            for (size_t j = 0; j < Out; j++) {
                REAL sum = 0;
                for (size_t i = 0; i < In; i++)
                    sum += A_in[n * In + i] * W[i * Out + j];
                const REAL z = sum + b[j];
                A[n * Out + j] = hidden ? FN(activate)(m->activation, z) : z;
            }
    }
}

/* The loss of the logits L (N x O) against the labels of the batch's
 * images, and its gradient dL. */
static double FN(reference_loss)(const struct mlp *m, const struct dataset *ds,
                                 const size_t *batch, size_t N, const REAL *L, REAL *dL)
{
    const size_t O = mlp_outputs(m);
    if (m->loss == LOSS_MSE) {
        /* loss = sum((L - Y)^2) / (N O), dL = 2 / (N O) (L - Y) */
        const REAL scale = (REAL)2 / (REAL)(N * O);
        double squared_error = 0;
        for (size_t n = 0; n < N; n++)
            for (size_t k = 0; k < O; k++) {
                const REAL y = k == ds->labels[FN(image_of)(batch, n)] ? (REAL)1 : (REAL)0;
                const REAL diff = L[n * O + k] - y;
                squared_error += (double)diff * (double)diff;
                dL[n * O + k] = scale * diff;
            }
        return squared_error / ((double)N * (double)O);
    }

    /* softmax cross-entropy: mx = max L, s = sum exp(L - mx),
     * loss = (1/N) sum (log s - (L[y] - mx)), dL = (exp(L - mx) / s - Y) / N;
     * each image's term in REAL, their sum in double as for mse */
    double total = 0;
    for (size_t n = 0; n < N; n++) {
        const size_t label = ds->labels[FN(image_of)(batch, n)];
        const REAL *row = L + n * O;
        REAL *d = dL + n * O;
        REAL mx = row[0];
        for (size_t k = 1; k < O; k++)
            if (row[k] > mx)
                mx = row[k];
        REAL s = 0;
        for (size_t k = 0; k < O; k++) {
            d[k] = EXP(row[k] - mx);
            s += d[k];
        }
        total += (double)(LOG(s) - (row[label] - mx));
        for (size_t k = 0; k < O; k++)
            d[k] = (d[k] / s - (k == label ? (REAL)1 : (REAL)0)) / (REAL)N;
    }
    return 1 / (double)N * total;
}

static double FN(reference_batch_gradient)(struct reference *r, const struct mlp *m,
                                           const size_t *batch, size_t N)
{
    const struct dataset *ds = r->data;
    REAL *grad = r->grad;
    REAL *delta = r->delta, *delta_in = r->delta_in;

    FN(reference_forward)(r, m, ds, batch, N);
    const double loss = FN(reference_loss)(m, ds, batch, N, r->a[m->n_layers - 1], delta);

    /* From the last layer down, with delta = dZ (N x Out) of layer l:
     * dW = A_in^T delta, db = column sums of delta, and for a layer below,
     * its dZ = (delta W^T) times the activation's derivative. */
    for (size_t l = m->n_layers; l-- > 0;) {
        const struct mlp_layer layer = mlp_layer(m, l);
        const size_t In = layer.n_in, Out = layer.n_out;
        const REAL *W = (const REAL *)m->params + layer.weights;
        const REAL *A_in = l == 0 ? (const REAL *)r->x : r->a[l - 1];
        REAL *dW = grad + layer.weights, *db = grad + layer.bias;

        for (size_t i = 0; i < In; i++)
            for (size_t j = 0; j < Out; j++) {
                REAL sum = 0;
                for (size_t n = 0; n < N; n++)
                    sum += A_in[n * In + i] * delta[n * Out + j];
                dW[i * Out + j] = sum;
            }
        for (size_t j = 0; j < Out; j++) {
            REAL sum = 0;
            for (size_t n = 0; n < N; n++)
                sum += delta[n * Out + j];
            db[j] = sum;
        }
        if (l == 0)
            break;

        for (size_t n = 0; n < N; n++)
            for (size_t i = 0; i < In; i++) {
                REAL sum = 0;
                for (size_t j = 0; j < Out; j++)
                    sum += delta[n * Out + j] * W[i * Out + j];
                delta_in[n * In + i] =
                    FN(activation_backward)(m->activation, A_in[n * In + i], sum);
            }
        REAL *swap = delta;
        delta = delta_in;
        delta_in = swap;
    }
    return loss;
}

/* The logits of the images of ds (r prepared for all of them), as doubles. */
static void FN(reference_logits)(struct reference *r, const struct mlp *m, double *logits)
{
    const struct dataset *ds = r->data;
    FN(reference_forward)(r, m, ds, NULL, ds->count);
    const REAL *L = r->a[m->n_layers - 1];
    for (size_t k = 0; k < ds->count * mlp_outputs(m); k++)
        logits[k] = (double)L[k];
}
