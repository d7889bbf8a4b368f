/* The engine's per-sample kernels: every hot loop of mnist-omp.  Written once;
 * kernels.c includes this file for each precision (REAL = float or double)
 * and each instruction set it compiles for (KERNEL_TARGET), naming the copies
 * through FN(x).  No loop here reorders a sum: every lane of a `simd` loop is
 * a separate output element, so all copies compute bitwise the same numbers.
 * The threads are managed in kernels.c. */

/* Hidden units are processed in tiles of 128 bytes of accumulators: few
 * enough to stay in registers, wide enough for full vectors on any SIMD. */
#undef TILE
#define TILE (128 / sizeof(REAL))
#undef PROBE_LANES
#define PROBE_LANES (12 * 64 / sizeof(REAL))

/* Hidden units [j0, j0 + width) of one image: L1 = x . W1 without the bias.
 * The tile of accumulators stays in registers while the image's nonzero
 * pixels stream past; each sum runs over the inputs in ascending order, as
 * the serial reference's does.  Called with width == TILE it unrolls fully. */
static KERNEL_TARGET inline void FN(hidden_tile)(REAL *restrict hidden, const REAL *restrict w1,
                                                 size_t H, const REAL *restrict pixel_value,
                                                 const uint16_t *restrict column,
                                                 const uint8_t *restrict value, size_t nonzeros,
                                                 size_t j0, size_t width)
{
    REAL acc[TILE] = {0};
    for (size_t t = 0; t < nonzeros; t++) {
        const REAL x = pixel_value[value[t]];
        const REAL *restrict w1_row = w1 + (size_t)column[t] * H + j0;
#pragma omp simd
        for (size_t j = 0; j < width; j++)
            acc[j] += x * w1_row[j];
    }
    for (size_t j = 0; j < width; j++)
        hidden[j0 + j] = acc[j];
}

/* The rows of dW1 of the image's nonzero pixels gain x * dL1[j0, j0 + width):
 * X^T . dL1, one sample at a time, skipping the zero pixels. */
static KERNEL_TARGET inline void FN(weight_grad_tile)(REAL *restrict dw1, size_t H,
                                                      const REAL *restrict pixel_value,
                                                      const uint16_t *restrict column,
                                                      const uint8_t *restrict value,
                                                      size_t nonzeros,
                                                      const REAL *restrict hidden_grad,
                                                      size_t j0, size_t width)
{
    REAL g[TILE];
    for (size_t j = 0; j < width; j++)
        g[j] = hidden_grad[j0 + j];
    for (size_t t = 0; t < nonzeros; t++) {
        const REAL x = pixel_value[value[t]];
        REAL *restrict dw1_row = dw1 + (size_t)column[t] * H + j0;
#pragma omp simd
        for (size_t j = 0; j < width; j++)
            dw1_row[j] += x * g[j];
    }
}

/* One image through the network: hidden = ReLU(x . W1 + b1), logits =
 * hidden . W2 + b2, each bias added after its sum, as in the reference. */
static KERNEL_TARGET void FN(forward_sample)(const struct mlp *m, const REAL *restrict params,
                                             const REAL *restrict pixel_value,
                                             const struct pixel_rows *rows, size_t n,
                                             REAL *restrict hidden, REAL *restrict logits)
{
    const struct mlp_layout l = mlp_layout(m->n_in, m->n_hidden, m->n_out);
    const size_t H = m->n_hidden, O = m->n_out;
    const REAL *restrict w1 = params + l.w1, *restrict b1 = params + l.b1;
    const REAL *restrict w2 = params + l.w2, *restrict b2 = params + l.b2;
    const uint16_t *column = rows->column + rows->start[n];
    const uint8_t *value = rows->value + rows->start[n];
    const size_t nonzeros = rows->start[n + 1] - rows->start[n];

    size_t j0 = 0;
    for (; j0 + TILE <= H; j0 += TILE)
        FN(hidden_tile)(hidden, w1, H, pixel_value, column, value, nonzeros, j0, TILE);
    if (j0 < H)
        FN(hidden_tile)(hidden, w1, H, pixel_value, column, value, nonzeros, j0, H - j0);
#pragma omp simd
    for (size_t j = 0; j < H; j++) {
        const REAL l1 = hidden[j] + b1[j];
        hidden[j] = l1 > 0 ? l1 : 0;
    }

    for (size_t o = 0; o < O; o++)
        logits[o] = 0;
    for (size_t j = 0; j < H; j++) {
        const REAL a1 = hidden[j];
        const REAL *restrict w2_row = w2 + j * O;
#pragma omp simd
        for (size_t o = 0; o < O; o++)
            logits[o] += a1 * w2_row[o];
    }
#pragma omp simd
    for (size_t o = 0; o < O; o++)
        logits[o] += b2[o];
}

/* Forward and backward pass of every sample of one slice, accumulating the
 * slice's gradient privately (partial, layout of params).  Returns the
 * slice's sum of squared errors. */
static KERNEL_TARGET double FN(slice_gradient)(const struct engine *e, const struct mlp *m,
                                               size_t slice)
{
    const size_t H = m->n_hidden, O = m->n_out, N = e->rows.count;
    const struct mlp_layout *l = &e->layout;
    const REAL *restrict params = m->params;
    const REAL *restrict pixel_value = e->pixel_value;
    const REAL *restrict w2_t = e->w2_transposed;  /* O x H */
    const REAL loss_scale = (REAL)2 / (REAL)(N * O);
    REAL *restrict grad = (REAL *)e->partials + slice * e->partial_stride;
    REAL *restrict dw1 = grad + l->w1, *restrict db1 = grad + l->b1;
    REAL *restrict dw2 = grad + l->w2, *restrict db2 = grad + l->b2;
    REAL *restrict hidden = (REAL *)e->scratch + slice * e->scratch_stride;
    REAL *restrict hidden_grad = hidden + H, *restrict logits = hidden + 2 * H;
    REAL *restrict logits_grad = logits + O;
    const size_t end = (slice + 1) * N / e->n_slices;
    double squared_error = 0;

    memset(grad, 0, l->count * sizeof *grad);
    for (size_t n = slice * N / e->n_slices; n < end; n++) {
        FN(forward_sample)(m, params, pixel_value, &e->rows, n, hidden, logits);

        /* dL2 = 2/(N*O) (L2 - Y), Y one-hot. */
        for (size_t o = 0; o < O; o++) {
            const REAL diff = logits[o] - (o == e->rows.labels[n] ? (REAL)1 : (REAL)0);
            squared_error += (double)diff * (double)diff;
            logits_grad[o] = loss_scale * diff;
        }
#pragma omp simd
        for (size_t o = 0; o < O; o++)
            db2[o] += logits_grad[o];

        /* dA1 = dL2 . W2^T, summed over the outputs in ascending order. */
        for (size_t j = 0; j < H; j++)
            hidden_grad[j] = 0;
        for (size_t o = 0; o < O; o++) {
            const REAL d = logits_grad[o];
            const REAL *restrict w2_column = w2_t + o * H;
#pragma omp simd
            for (size_t j = 0; j < H; j++)
                hidden_grad[j] += d * w2_column[j];
        }
        /* dL1 = dA1 where A1 > 0, else 0. */
#pragma omp simd
        for (size_t j = 0; j < H; j++) {
            hidden_grad[j] = hidden[j] > 0 ? hidden_grad[j] : 0;
            db1[j] += hidden_grad[j];
        }
        /* dW2 += A1^T . dL2 */
        for (size_t j = 0; j < H; j++) {
            const REAL a1 = hidden[j];
            REAL *restrict dw2_row = dw2 + j * O;
#pragma omp simd
            for (size_t o = 0; o < O; o++)
                dw2_row[o] += a1 * logits_grad[o];
        }

        const uint16_t *column = e->rows.column + e->rows.start[n];
        const uint8_t *value = e->rows.value + e->rows.start[n];
        const size_t nonzeros = e->rows.start[n + 1] - e->rows.start[n];
        size_t j0 = 0;
        for (; j0 + TILE <= H; j0 += TILE)
            FN(weight_grad_tile)(dw1, H, pixel_value, column, value, nonzeros, hidden_grad,
                                 j0, TILE);
        if (j0 < H)
            FN(weight_grad_tile)(dw1, H, pixel_value, column, value, nonzeros, hidden_grad,
                                 j0, H - j0);
    }
    return squared_error;
}

/* grad[first, first + width) = the slices' partials summed in slice order. */
static KERNEL_TARGET void FN(sum_partials)(const struct engine *e, size_t first, size_t width)
{
    REAL *restrict sum = (REAL *)e->grad + first;
    const REAL *partials = e->partials;
    memcpy(sum, partials + first, width * sizeof *sum);
    for (size_t s = 1; s < e->n_slices; s++) {
        const REAL *restrict partial = partials + s * e->partial_stride + first;
#pragma omp simd
        for (size_t p = 0; p < width; p++)
            sum[p] += partial[p];
    }
}

/* params[first, first + width) -= lr * grad: the gradient-descent update. */
static KERNEL_TARGET void FN(descend)(const struct engine *e, struct mlp *m, double lr,
                                      size_t first, size_t width)
{
    REAL *restrict params = (REAL *)m->params + first;
    const REAL *restrict grad = (const REAL *)e->grad + first;
    const REAL rate = (REAL)lr;
#pragma omp simd
    for (size_t p = 0; p < width; p++)
        params[p] -= rate * grad[p];
}

/* W2 (H x O) as O x H, so that dL2 . W2^T runs along contiguous rows. */
static void FN(transpose_w2)(const struct engine *e, const struct mlp *m)
{
    const REAL *restrict w2 = (const REAL *)m->params + e->layout.w2;
    REAL *restrict w2_t = e->w2_transposed;
    for (size_t j = 0; j < m->n_hidden; j++)
        for (size_t o = 0; o < m->n_out; o++)
            w2_t[o * m->n_hidden + j] = w2[j * m->n_out + o];
}

static KERNEL_TARGET void FN(predict)(const struct mlp *m, const struct pixel_rows *rows,
                                      size_t first, size_t count, const void *pixel_value,
                                      void *hidden, void *logits, double *out)
{
    REAL *restrict logits_real = logits;
    for (size_t n = first; n < first + count; n++) {
        FN(forward_sample)(m, m->params, pixel_value, rows, n, hidden, logits_real);
        for (size_t o = 0; o < m->n_out; o++)
            out[(n - first) * m->n_out + o] = logits_real[o];
    }
}

/* The benchmark's measure of this machine's peak: PROBE_LANES independent
 * chains of fused multiply-adds (enough to cover the latency of every FMA
 * unit), nothing else.  Returns a value that depends on all of them so that
 * none is optimised away. */
static KERNEL_TARGET PROBE_OPTIMIZE double FN(fma_probe)(size_t rounds)
{
    REAL acc[PROBE_LANES];
    const REAL a = (REAL)0.999999, b = (REAL)1e-6;
    for (size_t i = 0; i < PROBE_LANES; i++)
        acc[i] = (REAL)i;
    for (size_t r = 0; r < rounds; r++) {
#pragma omp simd
        for (size_t i = 0; i < PROBE_LANES; i++)
            acc[i] = REAL_FMA(acc[i], a, b);
    }
    double sum = 0;
    for (size_t i = 0; i < PROBE_LANES; i++)
        sum += acc[i];
    return sum;
}

static const struct kernel_set FN(kernels) = {
    KERNEL_ISA_NAME, FN(transpose_w2), FN(slice_gradient), FN(sum_partials), FN(descend),
    FN(predict), FN(fma_probe),
};
