/* The engine's kernels, written once for both precisions: kernels.c includes
 * this file with REAL = float and FN(x) = x##_f32, then with double / _f64. */

/* Hidden units are processed in tiles of 128 bytes of accumulators: few
 * enough to stay in registers, wide enough for full vectors on any SIMD. */
#undef TILE
#define TILE (128 / sizeof(REAL))

/* Per-slice working space, in REAL. */
struct FN(sample_scratch) {
    REAL *hidden;       /* L1, then A1 */
    REAL *hidden_grad;  /* dL1 */
    REAL *logits;       /* L2 */
    REAL *logits_grad;  /* dL2 */
};

static void FN(fill_pixel_values)(REAL table[256])
{
    for (int p = 0; p < 256; p++)
        table[p] = (REAL)p / (REAL)255;
}

/* Hidden units [j0, j0 + width) of one image: L1 = x . W1 without the bias.
 * The accumulators form one tile that stays in registers while the image's
 * nonzero pixels stream past; the sum runs over the inputs in ascending
 * order, exactly as the serial reference's does.  Called with width == TILE
 * the compiler unrolls it completely. */
static inline void FN(hidden_tile)(REAL *restrict hidden, const REAL *restrict w1, size_t H,
                                   const REAL *pixel_value, const uint16_t *restrict column,
                                   const uint8_t *restrict value, size_t nonzeros, size_t j0,
                                   size_t width)
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

/* dW1 rows of the image's nonzero pixels += x * dL1[j0, j0 + width): the
 * X^T . dL1 product, one sample at a time, skipping zero pixels. */
static inline void FN(weight_grad_tile)(REAL *restrict dw1, size_t H, const REAL *pixel_value,
                                        const uint16_t *restrict column,
                                        const uint8_t *restrict value, size_t nonzeros,
                                        const REAL *restrict hidden_grad, size_t j0,
                                        size_t width)
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
static void FN(forward_sample)(const struct mlp *m, const REAL *restrict params,
                               const struct mlp_layout *l, const REAL *pixel_value,
                               const uint16_t *restrict column, const uint8_t *restrict value,
                               size_t nonzeros, REAL *restrict hidden, REAL *restrict logits)
{
    const size_t H = m->n_hidden, O = m->n_out;
    const REAL *restrict w1 = params + l->w1, *restrict b1 = params + l->b1;
    const REAL *restrict w2 = params + l->w2, *restrict b2 = params + l->b2;

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
    /* Inactive units (A1 = 0, about half of them) add exact zeros: skip them. */
    for (size_t j = 0; j < H; j++) {
        const REAL a1 = hidden[j];
        if (a1 == 0)
            continue;
        const REAL *restrict w2_row = w2 + j * O;
#pragma omp simd
        for (size_t o = 0; o < O; o++)
            logits[o] += a1 * w2_row[o];
    }
    for (size_t o = 0; o < O; o++)
        logits[o] += b2[o];
}

/* Forward and backward pass of the samples [first, end) of one slice,
 * accumulating their gradient into grad (same layout as params, zeroed by the
 * caller).  Returns the slice's sum of squared errors. */
static double FN(slice_gradient)(const struct mlp *m, const REAL *restrict params,
                                 const struct mlp_layout *l, const REAL *pixel_value,
                                 const struct pixel_rows *rows, size_t first, size_t end,
                                 REAL loss_scale, struct FN(sample_scratch) s,
                                 REAL *restrict grad)
{
    const size_t H = m->n_hidden, O = m->n_out;
    const REAL *restrict w2 = params + l->w2;
    REAL *restrict dw1 = grad + l->w1, *restrict db1 = grad + l->b1;
    REAL *restrict dw2 = grad + l->w2, *restrict db2 = grad + l->b2;
    double squared_error = 0;

    for (size_t n = first; n < end; n++) {
        const uint16_t *column = rows->column + rows->start[n];
        const uint8_t *value = rows->value + rows->start[n];
        const size_t nonzeros = rows->start[n + 1] - rows->start[n];
        FN(forward_sample)(m, params, l, pixel_value, column, value, nonzeros,
                           s.hidden, s.logits);

        /* dL2 = 2/(N*O) (L2 - Y), Y one-hot. */
        for (size_t o = 0; o < O; o++) {
            const REAL diff = s.logits[o] - (o == rows->labels[n] ? (REAL)1 : (REAL)0);
            squared_error += (double)diff * (double)diff;
            s.logits_grad[o] = loss_scale * diff;
            db2[o] += s.logits_grad[o];
        }

        /* dW2 += A1^T dL2; dL1 = dL2 W2^T where A1 > 0. */
        for (size_t j = 0; j < H; j++) {
            const REAL a1 = s.hidden[j];
            const REAL *restrict w2_row = w2 + j * O;
            REAL *restrict dw2_row = dw2 + j * O;
            REAL back = 0;
            if (a1 == 0) {  /* inactive: no gradient flows, dW2 gains exact zeros */
                s.hidden_grad[j] = 0;
                continue;
            }
#pragma omp simd
            for (size_t o = 0; o < O; o++)
                dw2_row[o] += a1 * s.logits_grad[o];
            for (size_t o = 0; o < O; o++)
                back += s.logits_grad[o] * w2_row[o];
            s.hidden_grad[j] = back;
            db1[j] += back;
        }

        size_t j0 = 0;
        for (; j0 + TILE <= H; j0 += TILE)
            FN(weight_grad_tile)(dw1, H, pixel_value, column, value, nonzeros,
                                 s.hidden_grad, j0, TILE);
        if (j0 < H)
            FN(weight_grad_tile)(dw1, H, pixel_value, column, value, nonzeros,
                                 s.hidden_grad, j0, H - j0);
    }
    return squared_error;
}

static double FN(loss_and_gradient)(struct engine *e, const struct mlp *m)
{
    const struct mlp_layout *l = &e->layout;
    const REAL *params = m->params;
    const size_t N = e->rows.count, P = l->count, S = e->n_slices;
    const REAL loss_scale = (REAL)2 / (REAL)(N * m->n_out);
    REAL *partials = e->partials, *grad = e->grad;
    const REAL *pixel_value = e->pixel_value;

#pragma omp parallel for schedule(dynamic, 1)
    for (size_t s = 0; s < S; s++) {
        REAL *partial = partials + s * e->partial_stride;
        REAL *scratch = (REAL *)e->scratch + s * e->scratch_stride;
        struct FN(sample_scratch) work = {
            scratch, scratch + m->n_hidden, scratch + 2 * m->n_hidden,
            scratch + 2 * m->n_hidden + m->n_out,
        };
        memset(partial, 0, P * sizeof *partial);
        e->slice_error[s] = FN(slice_gradient)(m, params, l, pixel_value, &e->rows,
                                               s * N / S, (s + 1) * N / S, loss_scale,
                                               work, partial);
    }

    /* Slice partials are summed in slice order, whatever thread made them;
     * a block of the gradient stays in L1 while the slices stream past. */
    const size_t blocks = (P + REDUCE_BLOCK - 1) / REDUCE_BLOCK;
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < blocks; b++) {
        const size_t first = b * REDUCE_BLOCK;
        const size_t width = P - first < REDUCE_BLOCK ? P - first : REDUCE_BLOCK;
        REAL *restrict sum = grad + first;
        memcpy(sum, partials + first, width * sizeof *sum);
        for (size_t s = 1; s < S; s++) {
            const REAL *restrict partial = partials + s * e->partial_stride + first;
#pragma omp simd
            for (size_t p = 0; p < width; p++)
                sum[p] += partial[p];
        }
    }

    double squared_error = 0;
    for (size_t s = 0; s < S; s++)
        squared_error += e->slice_error[s];
    return squared_error / ((double)N * (double)m->n_out);
}

static void FN(apply_gradient)(const struct engine *e, struct mlp *m, double lr)
{
    REAL *restrict params = m->params;
    const REAL *restrict grad = e->grad;
    const REAL rate = (REAL)lr;
    const size_t P = e->layout.count;

#pragma omp parallel for simd schedule(static)
    for (size_t p = 0; p < P; p++)
        params[p] -= rate * grad[p];
}

static void FN(predict)(const struct mlp *m, const struct pixel_rows *rows, size_t first,
                        size_t count, REAL *hidden, REAL *logits, double *out)
{
    const struct mlp_layout l = mlp_layout(m->n_in, m->n_hidden, m->n_out);
    REAL pixel_value[256];
    FN(fill_pixel_values)(pixel_value);
    for (size_t n = first; n < first + count; n++) {
        const size_t begin = rows->start[n];
        FN(forward_sample)(m, m->params, &l, pixel_value, rows->column + begin,
                           rows->value + begin, rows->start[n + 1] - begin, hidden, logits);
        for (size_t o = 0; o < m->n_out; o++)
            out[(n - first) * m->n_out + o] = logits[o];
    }
}
