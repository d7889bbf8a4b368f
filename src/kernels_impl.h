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

/* Row length of W2 padded to whole tiles. */
static inline size_t FN(padded_outputs)(size_t n_out)
{
    return (n_out + TILE - 1) / TILE * TILE;
}

/* acc[0, width) += x * w1_row[0, width): one nonzero pixel of one image. */
static KERNEL_TARGET inline void FN(add_pixel)(REAL *restrict acc, REAL x,
                                               const REAL *restrict w1_row, size_t width)
{
#pragma omp simd
    for (size_t j = 0; j < width; j++)
        acc[j] += x * w1_row[j];
}

/* out = acc + the pixels [begin, end) of one image, in a local tile of
 * accumulators that the compiler keeps in registers. */
static KERNEL_TARGET inline void FN(add_pixels)(REAL *restrict out, const REAL *restrict acc,
                                                const REAL *restrict w1, size_t H,
                                                const REAL *restrict pixel_value,
                                                const struct pixel_rows *rows, uint32_t begin,
                                                uint32_t end, size_t width)
{
    REAL tile[TILE];
    for (size_t j = 0; j < width; j++)
        tile[j] = acc[j];
    for (uint32_t u = begin; u < end; u++)
        FN(add_pixel)(tile, pixel_value[rows->value[u]], w1 + (size_t)rows->column[u] * H, width);
    for (size_t j = 0; j < width; j++)
        out[j] = tile[j];
}

/* Hidden units [j0, j0 + width) of `images` (1 or 2) consecutive images from
 * n: L1 = x . W1 without the bias, into hidden (one row of H per image).
 * Each image's tile of accumulators stays in registers while its nonzero
 * pixels stream past, and each sum runs over the inputs in ascending order,
 * as the serial reference's does.  Two images are interleaved because the
 * additions of one image form a chain: a second, independent chain hides
 * their latency.  Called with width == TILE it unrolls fully. */
static KERNEL_TARGET inline void FN(hidden_tile)(REAL *restrict hidden, size_t images,
                                                 const REAL *restrict w1, size_t H,
                                                 const REAL *restrict pixel_value,
                                                 const struct pixel_rows *rows, size_t n,
                                                 size_t j0, size_t width)
{
    REAL acc[2][TILE] = {{0}};
    const uint32_t *start = rows->start + n;
    const uint16_t *restrict column = rows->column;
    const uint8_t *restrict value = rows->value;
    size_t shared = 0;

    if (images == 2) {
        const size_t first = start[1] - start[0], second = start[2] - start[1];
        shared = first < second ? first : second;
        for (size_t t = 0; t < shared; t++) {
            const uint32_t a = start[0] + t, b = start[1] + t;
            FN(add_pixel)(acc[0], pixel_value[value[a]], w1 + (size_t)column[a] * H + j0, width);
            FN(add_pixel)(acc[1], pixel_value[value[b]], w1 + (size_t)column[b] * H + j0, width);
        }
    }
    for (size_t i = 0; i < images; i++)
        FN(add_pixels)(hidden + i * H + j0, acc[i], w1 + j0, H, pixel_value, rows,
                       start[i] + (uint32_t)shared, start[i + 1], width);
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

/* Logits of one image: l2 = a1 . W2 + b2 for the outputs [o0, o0 + TILE),
 * from W2 padded to rows of `stride` >= o0 + TILE (zeros beyond n_out), so
 * that the accumulators are one full tile that stays in registers.  Each sum
 * runs over the hidden units in ascending order and adds the bias last. */
static KERNEL_TARGET inline void FN(logits_tile)(REAL *restrict l2, const REAL *restrict a1,
                                                 size_t H, const REAL *restrict w2_padded,
                                                 size_t stride, const REAL *restrict b2,
                                                 size_t O, size_t o0)
{
    REAL acc[TILE] = {0};
    for (size_t j = 0; j < H; j++)
        FN(add_pixel)(acc, a1[j], w2_padded + j * stride + o0, TILE);
    for (size_t o = o0; o < O && o < o0 + TILE; o++)
        l2[o] = acc[o - o0] + b2[o];
}

/* `images` (1 or 2) consecutive images from n through the network:
 * hidden = ReLU(x . W1 + b1), logits = hidden . W2 + b2, each bias added after
 * its sum, as in the reference.  hidden and logits hold one row per image;
 * w2_padded is W2 with rows padded to a multiple of TILE. */
static KERNEL_TARGET void FN(forward)(const struct mlp *m, const REAL *restrict params,
                                      const REAL *restrict w2_padded,
                                      const REAL *restrict pixel_value,
                                      const struct pixel_rows *rows, size_t n, size_t images,
                                      REAL *restrict hidden, REAL *restrict logits)
{
    const struct mlp_layout l = mlp_layout(m->n_in, m->n_hidden, m->n_out);
    const size_t H = m->n_hidden, O = m->n_out, stride = FN(padded_outputs)(O);
    const REAL *restrict w1 = params + l.w1, *restrict b1 = params + l.b1;
    const REAL *restrict b2 = params + l.b2;

    size_t j0 = 0;
    for (; j0 + TILE <= H; j0 += TILE)
        FN(hidden_tile)(hidden, images, w1, H, pixel_value, rows, n, j0, TILE);
    if (j0 < H)
        FN(hidden_tile)(hidden, images, w1, H, pixel_value, rows, n, j0, H - j0);

    for (size_t i = 0; i < images; i++) {
        REAL *restrict a1 = hidden + i * H;
#pragma omp simd
        for (size_t j = 0; j < H; j++) {
            const REAL l1 = a1[j] + b1[j];
            a1[j] = l1 > 0 ? l1 : 0;
        }
        for (size_t o0 = 0; o0 < O; o0 += TILE)
            FN(logits_tile)(logits + i * O, a1, H, w2_padded, stride, b2, O, o0);
    }
}

/* Backward pass of image n, whose forward pass left hidden (A1) and logits
 * (L2): accumulates its gradient into grad and returns its squared error.
 * hidden_grad and logits_grad are scratch rows of H and O. */
static KERNEL_TARGET double FN(backward)(const struct engine *e, const struct mlp *m, size_t n,
                                         const REAL *restrict hidden,
                                         const REAL *restrict logits, REAL *restrict grad,
                                         REAL *restrict hidden_grad, REAL *restrict logits_grad)
{
    const size_t H = m->n_hidden, O = m->n_out;
    const struct mlp_layout *l = &e->layout;
    const REAL *restrict w2_t = e->w2_transposed; /* O x H */
    const REAL loss_scale = (REAL)2 / (REAL)(e->rows.count * O);
    REAL *restrict dw1 = grad + l->w1, *restrict db1 = grad + l->b1;
    REAL *restrict dw2 = grad + l->w2, *restrict db2 = grad + l->b2;
    double squared_error = 0;

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
    /* dW1 += X^T . dL1 */
    const uint16_t *column = e->rows.column + e->rows.start[n];
    const uint8_t *value = e->rows.value + e->rows.start[n];
    const size_t nonzeros = e->rows.start[n + 1] - e->rows.start[n];
    size_t j0 = 0;
    for (; j0 + TILE <= H; j0 += TILE)
        FN(weight_grad_tile)(dw1, H, e->pixel_value, column, value, nonzeros, hidden_grad, j0,
                             TILE);
    if (j0 < H)
        FN(weight_grad_tile)(dw1, H, e->pixel_value, column, value, nonzeros, hidden_grad, j0,
                             H - j0);
    return squared_error;
}

/* Forward and backward pass of every sample of one slice, two images at a
 * time forward, accumulating the slice's gradient privately (its partial,
 * in the layout of params).  Returns the slice's sum of squared errors. */
static KERNEL_TARGET double FN(slice_gradient)(const struct engine *e, const struct mlp *m,
                                               size_t slice)
{
    const size_t H = m->n_hidden, O = m->n_out, N = e->rows.count;
    REAL *restrict grad = (REAL *)e->partials + slice * e->partial_stride;
    REAL *restrict hidden = (REAL *)e->scratch + slice * e->scratch_stride; /* 2 x H */
    REAL *restrict logits = hidden + 2 * H;                                 /* 2 x O */
    REAL *restrict hidden_grad = logits + 2 * O, *restrict logits_grad = hidden_grad + H;
    const size_t end = (slice + 1) * N / e->n_slices;
    double squared_error = 0;

    memset(grad, 0, e->layout.count * sizeof *grad);
    for (size_t n = slice * N / e->n_slices; n < end; n += 2) {
        const size_t images = end - n < 2 ? end - n : 2;
        FN(forward)(m, m->params, e->w2_padded, e->pixel_value, &e->rows, n, images, hidden,
                    logits);
        for (size_t i = 0; i < images; i++)
            squared_error += FN(backward)(e, m, n + i, hidden + i * H, logits + i * O, grad,
                                          hidden_grad, logits_grad);
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

/* W2 (H x O) rearranged for the kernels: transposed (O x H), so that
 * dL2 . W2^T runs along contiguous rows, and padded (H x padded_outputs),
 * so that the logits are computed in whole tiles. */
static void FN(arrange_w2)(const struct mlp *m, void *transposed, void *padded)
{
    REAL *restrict w2_transposed = transposed, *restrict w2_padded = padded;
    const REAL *restrict w2 = (const REAL *)m->params + mlp_layout(m->n_in, m->n_hidden,
                                                                     m->n_out).w2;
    const size_t stride = FN(padded_outputs)(m->n_out);
    for (size_t j = 0; j < m->n_hidden; j++)
        for (size_t o = 0; o < stride; o++) {
            const REAL w = o < m->n_out ? w2[j * m->n_out + o] : 0;
            w2_padded[j * stride + o] = w;
            if (o < m->n_out)
                w2_transposed[o * m->n_hidden + j] = w;
        }
}

/* Logits of the images [first, first + count), two at a time; scratch
 * holds W2 arranged as arrange_w2 does and rows for two images. */
static KERNEL_TARGET void FN(predict)(const struct mlp *m, const struct pixel_rows *rows,
                                      size_t first, size_t count, const void *pixel_value,
                                      void *scratch, double *out)
{
    const size_t H = m->n_hidden, O = m->n_out;
    REAL *w2_transposed = scratch, *w2_padded = w2_transposed + H * O;
    REAL *hidden = w2_padded + H * FN(padded_outputs)(O), *logits = hidden + 2 * H;
    FN(arrange_w2)(m, w2_transposed, w2_padded);
    for (size_t n = first; n < first + count; n += 2) {
        const size_t images = first + count - n < 2 ? first + count - n : 2;
        FN(forward)(m, m->params, w2_padded, pixel_value, rows, n, images, hidden, logits);
        for (size_t k = 0; k < images * O; k++)
            out[(n - first) * O + k] = logits[k];
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
    KERNEL_ISA_NAME, FN(padded_outputs), FN(arrange_w2), FN(slice_gradient), FN(sum_partials),
    FN(descend), FN(predict), FN(fma_probe),
};
