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

/* x_low * w_low + x_high * w_high, added in that order to the hidden rows
 * (pre-activations, H apart) of the images of the run [begin, end) of one
 * pair of pixel columns, whose pixels are x_low and x_high: X . W1 for two
 * rows of W1, whose tiles stay in registers. */
static KERNEL_TARGET inline void FN(spread_pair)(REAL *restrict hidden, size_t H,
                                                 const REAL *restrict w1_low,
                                                 const REAL *restrict w1_high,
                                                 const REAL *restrict pixel_value,
                                                 const struct pixel_blocks *blocks,
                                                 uint32_t begin, uint32_t end, size_t width)
{
    REAL low[TILE], high[TILE];
    for (size_t j = 0; j < width; j++) {
        low[j] = w1_low[j];
        high[j] = w1_high[j];
    }
    for (uint32_t e = begin; e < end; e++) {
        const REAL x_low = pixel_value[blocks->entry_low[e]];
        const REAL x_high = pixel_value[blocks->entry_high[e]];
        REAL *restrict row = hidden + (size_t)blocks->entry_image[e] * H;
#pragma omp simd
        for (size_t j = 0; j < width; j++)
            row[j] = row[j] + x_low * low[j] + x_high * high[j];
    }
}

/* Two rows of dW1 (one pair of pixel columns) gain x_low * dL1 and
 * x_high * dL1 of every image of the run [begin, end), in ascending image
 * order, in tiles of accumulators that stay in registers: X^T . dL1 for two
 * rows. */
static KERNEL_TARGET inline void FN(gather_pair)(REAL *restrict dw1_low, REAL *restrict dw1_high,
                                                 const REAL *restrict hidden_grad, size_t H,
                                                 const REAL *restrict pixel_value,
                                                 const struct pixel_blocks *blocks,
                                                 uint32_t begin, uint32_t end, size_t width)
{
    REAL low[TILE], high[TILE];
    for (size_t j = 0; j < width; j++) {
        low[j] = dw1_low[j];
        high[j] = dw1_high[j];
    }
    for (uint32_t e = begin; e < end; e++) {
        const REAL x_low = pixel_value[blocks->entry_low[e]];
        const REAL x_high = pixel_value[blocks->entry_high[e]];
        const REAL *restrict g = hidden_grad + (size_t)blocks->entry_image[e] * H;
#pragma omp simd
        for (size_t j = 0; j < width; j++) {
            low[j] += x_low * g[j];
            high[j] += x_high * g[j];
        }
    }
    for (size_t j = 0; j < width; j++) {
        dw1_low[j] = low[j];
        dw1_high[j] = high[j];
    }
}

/* out[0, width) += sum over r < count of coef[r * coef_stride] *
 * rows[r * stride + 0, width), the terms added in ascending r to a tile of
 * accumulators that stays in registers: one row-vector times a matrix. */
static KERNEL_TARGET inline void FN(combine_rows)(REAL *restrict out, const REAL *restrict coef,
                                                  size_t coef_stride, size_t count,
                                                  const REAL *restrict rows, size_t stride,
                                                  size_t width)
{
    REAL acc[TILE];
    for (size_t j = 0; j < width; j++)
        acc[j] = out[j];
    for (size_t r = 0; r < count; r++) {
        const REAL c = coef[r * coef_stride];
        const REAL *restrict row = rows + r * stride;
#pragma omp simd
        for (size_t j = 0; j < width; j++)
            acc[j] += c * row[j];
    }
    for (size_t j = 0; j < width; j++)
        out[j] = acc[j];
}

/* The images of one block through the network: hidden = ReLU(x . W1 + b1),
 * logits = hidden . W2 + b2, each bias added after its sum, as in the
 * reference.  hidden and logits hold one row per image of the block;
 * w2_padded is W2 with rows padded to a multiple of TILE.  Every row of W1
 * is visited once per block, in ascending column order, so each image's sum
 * runs over its inputs in ascending order. */
static KERNEL_TARGET void FN(forward_block)(const struct mlp *m, const REAL *restrict params,
                                            const REAL *restrict w2_padded,
                                            const REAL *restrict pixel_value,
                                            const struct pixel_blocks *blocks, size_t block,
                                            REAL *restrict hidden, REAL *restrict logits)
{
    const struct mlp_layout l = mlp_layout(m->n_in, m->n_hidden, m->n_out);
    const size_t H = m->n_hidden, O = m->n_out, stride = FN(padded_outputs)(O);
    const size_t images = blocks->block_first[block + 1] - blocks->block_first[block];
    const REAL *restrict w1 = params + l.w1, *restrict b1 = params + l.b1;
    const REAL *restrict b2 = params + l.b2;

    /* Past an odd last column, a row of zeros stands in for W1's. */
    const REAL none[TILE] = {0};

    memset(hidden, 0, images * H * sizeof *hidden);
    for (size_t j0 = 0; j0 < H; j0 += TILE) {
        const size_t width = H - j0 < TILE ? H - j0 : TILE;
        for (uint32_t r = blocks->block_runs[block]; r < blocks->block_runs[block + 1]; r++) {
            const size_t column = 2 * (size_t)blocks->run_pair[r];
            const REAL *w1_low = w1 + column * H + j0;
            const REAL *w1_high = column + 1 < m->n_in ? w1_low + H : none;
            const uint32_t begin = blocks->run_entries[r], end = blocks->run_entries[r + 1];
            if (width == TILE)
                FN(spread_pair)(hidden + j0, H, w1_low, w1_high, pixel_value, blocks, begin, end,
                                TILE);
            else
                FN(spread_pair)(hidden + j0, H, w1_low, w1_high, pixel_value, blocks, begin, end,
                                width);
        }
    }
    for (size_t i = 0; i < images; i++) {
        REAL *restrict a1 = hidden + i * H;
#pragma omp simd
        for (size_t j = 0; j < H; j++) {
            const REAL l1 = a1[j] + b1[j];
            a1[j] = l1 > 0 ? l1 : 0;
        }
        /* L2 = A1 . W2 + b2, from W2 padded to whole tiles, the bias last. */
        for (size_t o0 = 0; o0 < O; o0 += TILE) {
            REAL l2[TILE] = {0};
            FN(combine_rows)(l2, a1, 1, H, w2_padded + o0, stride, TILE);
            for (size_t o = o0; o < O && o < o0 + TILE; o++)
                logits[i * O + o] = l2[o - o0] + b2[o];
        }
    }
}

/* dW1 += X^T . dL1 for the images of one block, whose dL1 rows are in
 * hidden_grad: each row of dW1 gains its images' terms in ascending image
 * order, as when the images were taken one by one. */
static KERNEL_TARGET void FN(weight_grad_block)(REAL *restrict dw1, size_t n_in, size_t H,
                                                const REAL *restrict hidden_grad,
                                                const REAL *restrict pixel_value,
                                                const struct pixel_blocks *blocks, size_t block)
{
    /* Past an odd last column, the terms (all zero) go to a row nobody reads. */
    REAL discarded[TILE] = {0};

    for (size_t j0 = 0; j0 < H; j0 += TILE) {
        const size_t width = H - j0 < TILE ? H - j0 : TILE;
        for (uint32_t r = blocks->block_runs[block]; r < blocks->block_runs[block + 1]; r++) {
            const size_t column = 2 * (size_t)blocks->run_pair[r];
            REAL *dw1_low = dw1 + column * H + j0;
            REAL *dw1_high = column + 1 < n_in ? dw1_low + H : discarded;
            const uint32_t begin = blocks->run_entries[r], end = blocks->run_entries[r + 1];
            if (width == TILE)
                FN(gather_pair)(dw1_low, dw1_high, hidden_grad + j0, H, pixel_value, blocks,
                                begin, end, TILE);
            else
                FN(gather_pair)(dw1_low, dw1_high, hidden_grad + j0, H, pixel_value, blocks,
                                begin, end, width);
        }
    }
}

/* Backward pass through the second layer of image n, whose forward pass
 * left hidden (A1) and logits (L2): turns logits into dL2, leaves dL1 in
 * hidden_grad, accumulates the gradients of b1 and b2 into grad and returns
 * the squared error.  dW2 waits for the whole block (output_grad_block). */
static KERNEL_TARGET double FN(backward)(const struct engine *e, const struct mlp *m, size_t n,
                                         const REAL *restrict hidden, REAL *restrict logits,
                                         REAL *restrict grad, REAL *restrict hidden_grad)
{
    const size_t H = m->n_hidden, O = m->n_out;
    const struct mlp_layout *l = &e->layout;
    const REAL *restrict w2_t = e->w2_transposed; /* O x H */
    const REAL loss_scale = (REAL)2 / (REAL)(e->blocks.count * O);
    REAL *restrict db1 = grad + l->b1, *restrict db2 = grad + l->b2;
    double squared_error = 0;

    /* dL2 = 2/(N*O) (L2 - Y), Y one-hot. */
    for (size_t o = 0; o < O; o++) {
        const REAL diff = logits[o] - (o == e->blocks.labels[n] ? (REAL)1 : (REAL)0);
        squared_error += (double)diff * (double)diff;
        logits[o] = loss_scale * diff;
    }
#pragma omp simd
    for (size_t o = 0; o < O; o++)
        db2[o] += logits[o];

    /* dA1 = dL2 . W2^T, summed over the outputs in ascending order, a tile
     * at a time; dL1 = dA1 where A1 > 0, else 0. */
    for (size_t j0 = 0; j0 < H; j0 += TILE) {
        const size_t width = H - j0 < TILE ? H - j0 : TILE;
        REAL da1[TILE] = {0};
        if (width == TILE)
            FN(combine_rows)(da1, logits, 1, O, w2_t + j0, H, TILE);
        else
            FN(combine_rows)(da1, logits, 1, O, w2_t + j0, H, width);
#pragma omp simd
        for (size_t j = 0; j < width; j++) {
            hidden_grad[j0 + j] = hidden[j0 + j] > 0 ? da1[j] : 0;
            db1[j0 + j] += hidden_grad[j0 + j];
        }
    }
    return squared_error;
}

/* dW2^T += dL2^T . A1 for the images of one block, whose A1 rows are in
 * hidden and dL2 rows in logits_grad: each weight gains its images' terms in
 * ascending image order, as when the images were taken one by one. */
static KERNEL_TARGET void FN(output_grad_block)(REAL *restrict dw2_transposed, size_t H,
                                                size_t O, const REAL *restrict hidden,
                                                const REAL *restrict logits_grad, size_t images)
{
    for (size_t o = 0; o < O; o++)
        for (size_t j0 = 0; j0 < H; j0 += TILE) {
            REAL *out = dw2_transposed + o * H + j0;
            if (H - j0 >= TILE)
                FN(combine_rows)(out, logits_grad + o, O, images, hidden + j0, H, TILE);
            else
                FN(combine_rows)(out, logits_grad + o, O, images, hidden + j0, H, H - j0);
        }
}

/* Forward and backward pass of every image of one slice, a block at a
 * time, accumulating the slice's gradient privately (its partial, in the
 * layout of params).  Returns the slice's sum of squared errors. */
static KERNEL_TARGET double FN(slice_gradient)(const struct engine *e, const struct mlp *m,
                                               size_t slice)
{
    const size_t H = m->n_hidden, O = m->n_out;
    const struct pixel_blocks *blocks = &e->blocks;
    REAL *restrict grad = (REAL *)e->partials + slice * e->partial_stride;
    REAL *restrict hidden = (REAL *)e->scratch + slice * e->scratch_stride; /* B x H */
    REAL *restrict hidden_grad = hidden + BLOCK_IMAGES * H;                  /* B x H */
    REAL *restrict logits = hidden_grad + BLOCK_IMAGES * H;                  /* B x O */
    REAL *restrict dw2_transposed = logits + BLOCK_IMAGES * O;               /* O x H */
    double squared_error = 0;

    memset(grad, 0, e->layout.count * sizeof *grad);
    memset(dw2_transposed, 0, O * H * sizeof *dw2_transposed);
    for (size_t b = blocks->slice_blocks[slice]; b < blocks->slice_blocks[slice + 1]; b++) {
        const size_t first = blocks->block_first[b], images = blocks->block_first[b + 1] - first;
        FN(forward_block)(m, m->params, e->w2_padded, e->pixel_value, blocks, b, hidden, logits);
        for (size_t i = 0; i < images; i++)
            squared_error += FN(backward)(e, m, first + i, hidden + i * H, logits + i * O, grad,
                                          hidden_grad + i * H);
        FN(output_grad_block)(dw2_transposed, H, O, hidden, logits, images);
        FN(weight_grad_block)(grad + e->layout.w1, m->n_in, H, hidden_grad, e->pixel_value, blocks, b);
    }
    for (size_t j = 0; j < H; j++)
        for (size_t o = 0; o < O; o++)
            grad[e->layout.w2 + j * O + o] = dw2_transposed[o * H + j];
    return squared_error;
}

/* Elements of per-slice scratch slice_gradient needs. */
static size_t FN(scratch_count)(size_t n_hidden, size_t n_out)
{
    return BLOCK_IMAGES * (2 * n_hidden + n_out) + n_out * n_hidden;
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

/* Elements of scratch predict needs. */
static size_t FN(predict_scratch_count)(size_t n_hidden, size_t n_out)
{
    return n_hidden * n_out + n_hidden * FN(padded_outputs)(n_out) +
           BLOCK_IMAGES * (n_hidden + n_out);
}

/* Logits of every image of blocks, a block at a time. */
static KERNEL_TARGET void FN(predict)(const struct mlp *m, const struct pixel_blocks *blocks,
                                      const void *pixel_value, void *scratch, double *out)
{
    const size_t H = m->n_hidden, O = m->n_out;
    REAL *w2_transposed = scratch, *w2_padded = w2_transposed + H * O;
    REAL *hidden = w2_padded + H * FN(padded_outputs)(O), *logits = hidden + BLOCK_IMAGES * H;
    FN(arrange_w2)(m, w2_transposed, w2_padded);
    for (size_t b = 0; b < blocks->n_blocks; b++) {
        const size_t first = blocks->block_first[b], images = blocks->block_first[b + 1] - first;
        FN(forward_block)(m, m->params, w2_padded, pixel_value, blocks, b, hidden, logits);
        for (size_t k = 0; k < images * O; k++)
            out[first * O + k] = logits[k];
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
    KERNEL_ISA_NAME,    FN(padded_outputs), FN(scratch_count), FN(predict_scratch_count),
    FN(arrange_w2),     FN(slice_gradient), FN(sum_partials),  FN(descend),
    FN(predict),        FN(fma_probe),
};
