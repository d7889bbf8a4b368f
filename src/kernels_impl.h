/* The engine's kernels: every hot loop of mnist-omp.  Written once;
 * kernels.c includes this file for each precision (REAL = float or double)
 * and each instruction set it compiles for (KERNEL_TARGET, with the tile
 * shape KERNEL_ROWS x KERNEL_COLUMN_BYTES that suits its registers), naming
 * the copies through FN(x).  No loop here reorders a sum: every lane of a
 * `simd` loop or of a vector variable (the first layer's weight gradient's
 * sums) is a separate output element and every sum runs over its terms
 * in ascending order from zero, so all copies, whatever their tile shape,
 * compute bitwise the same numbers.  exp, log and tanh are the scalar libm
 * functions, called outside any `simd` loop.  kernels.c cuts the work into
 * items and hands them to threads. */

/* The dense micro-kernel's tile: ROWS rows of COLUMNS accumulators.  A
 * product's item is a tile of TILE_ROWS rows (several micro-tiles) by
 * COLUMNS, summed DEPTH_CHUNK terms at a time for all its micro-tiles in
 * turn, so that the chunk of b they share (16 KiB) stays in L1 while they
 * use it. */
#undef ROWS
#define ROWS ((size_t)KERNEL_ROWS)
#undef COLUMNS
#define COLUMNS (KERNEL_COLUMN_BYTES / sizeof(REAL))
#undef TILE_ROWS
#define TILE_ROWS (4 * ROWS)
#undef DEPTH_CHUNK
#define DEPTH_CHUNK ((size_t)16384 / KERNEL_COLUMN_BYTES)
/* The first layer's tiles: in the forward pass, KERNEL_FORWARD_BYTES of a
 * block's rows' sums (a pair's two weight rows, read once, go to each row
 * that has the pair; 32 floats on the portable build, the reference
 * network's whole row), cut into powers of two at the edge; in the weight
 * gradient, KERNEL_SPARSE_BYTES per row of a pair of weight rows (both
 * rows' tiles stay in registers), cut likewise. */
#undef FORWARD_COLUMNS
#define FORWARD_COLUMNS (KERNEL_FORWARD_BYTES / sizeof(REAL))
#undef SPARSE_COLUMNS
#define SPARSE_COLUMNS (KERNEL_SPARSE_BYTES / sizeof(REAL))
/* The probe's chains: 12 of the instruction set's vectors (a column of the
 * dense tile is two of them), which fit in its registers; more would live
 * in memory and time the loads and stores instead of the FMAs. */
#undef PROBE_LANES
#define PROBE_LANES (12 * (KERNEL_COLUMN_BYTES / 2) / sizeof(REAL))

/* CALL(W) for a width w of at most MAX, with W the constant among MAX,
 * MAX/2, MAX/4 and MAX/8 that w equals, so that each of those shapes is a
 * copy of its own whose tile stays in registers; any other with w itself. */
#undef CONSTANT_WIDTH
#define CONSTANT_WIDTH(w, MAX, CALL)                                                         \
    do {                                                                                     \
        if ((w) == (MAX))                                                                    \
            CALL(MAX);                                                                       \
        else if ((w) == (MAX) / 2)                                                           \
            CALL((MAX) / 2);                                                                 \
        else if ((w) == (MAX) / 4)                                                           \
            CALL((MAX) / 4);                                                                 \
        else if ((w) == (MAX) / 8)                                                           \
            CALL((MAX) / 8);                                                                 \
        else                                                                                 \
            CALL(w);                                                                         \
    } while (0)

static inline size_t FN(tiles)(size_t n, size_t tile)
{
    return (n + tile - 1) / tile;
}

/* c[i][j] = sum over k < depth, ascending, of a(i, k) * b[k][j] for a tile
 * of rows x columns (at most ROWS x COLUMNS), where a(i, k) is
 * a[i * ars + k * aks] (the strides make it A or A^T) and b's rows are
 * brs apart; with `more`, the sum goes on from c's (a sum of earlier
 * terms: a float stored and loaded again is the same float).  Always
 * called with a constant shape, so that the tile's accumulators live in
 * registers. */
static KERNEL_TARGET ALWAYS_INLINE inline void FN(micro_kernel)(
    REAL *restrict c, size_t crs, const REAL *restrict a, size_t ars, size_t aks,
    const REAL *restrict b, size_t brs, size_t depth, size_t rows, size_t columns, bool more)
{
    /* A new sum's first term is added to an explicit zero (the same bits
     * as clearing the tile first, which GCC would make a call of memset
     * that leaves the tile in memory). */
    REAL acc[KERNEL_ROWS][KERNEL_COLUMN_BYTES / sizeof(REAL)];
    if (!depth) {
        for (size_t i = 0; i < rows && !more; i++)
            for (size_t j = 0; j < columns; j++)
                c[i * crs + j] = 0;
        return;
    }
    UNROLL_ROWS
    for (size_t i = 0; i < rows; i++) {
        const REAL x = a[i * ars];
        if (more) {
#pragma omp simd
            for (size_t j = 0; j < columns; j++)
                acc[i][j] = c[i * crs + j] + x * b[j];
        } else {
#pragma omp simd
            for (size_t j = 0; j < columns; j++)
                acc[i][j] = (REAL)0 + x * b[j];
        }
    }
    for (size_t k = 1; k < depth; k++) {
        const REAL *restrict bk = b + k * brs;
        const REAL *restrict ak = a + k * aks;
        UNROLL_ROWS
        for (size_t i = 0; i < rows; i++) {
            const REAL x = ak[i * ars];
#pragma omp simd
            for (size_t j = 0; j < columns; j++)
                acc[i][j] += x * bk[j];
        }
    }
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < columns; j++)
            c[i * crs + j] = acc[i][j];
}

/* The micro-kernel for rows (ROWS, 4, 2 or 1) x columns (COLUMNS or a
 * smaller power of two), each shape its own constant copy. */
#undef MICRO
#define MICRO(R, C) FN(micro_kernel)(c, crs, a, ars, aks, b, brs, depth, R, C, more)
#undef MICRO_COLUMNS
#define MICRO_COLUMNS(R)                                                                     \
    do {                                                                                     \
        if (columns == COLUMNS)                                                              \
            MICRO(R, COLUMNS);                                                               \
        else if (columns == COLUMNS / 2)                                                     \
            MICRO(R, COLUMNS / 2);                                                           \
        else if (COLUMNS / 4 && columns == COLUMNS / 4)                                      \
            MICRO(R, COLUMNS / 4);                                                           \
        else if (COLUMNS / 8 && columns == COLUMNS / 8)                                      \
            MICRO(R, COLUMNS / 8);                                                           \
        else if (COLUMNS / 16 && columns == COLUMNS / 16)                                    \
            MICRO(R, COLUMNS / 16);                                                          \
        else                                                                                 \
            MICRO(R, 1);                                                                     \
    } while (0)
static KERNEL_TARGET void FN(shaped_kernel)(REAL *restrict c, size_t crs, const REAL *restrict a,
                                            size_t ars, size_t aks, const REAL *restrict b,
                                            size_t brs, size_t depth, size_t rows,
                                            size_t columns, bool more)
{
    if (rows == ROWS)
        MICRO_COLUMNS(ROWS);
    else if (rows == 4)
        MICRO_COLUMNS(4);
    else if (rows == 2)
        MICRO_COLUMNS(2);
    else
        MICRO_COLUMNS(1);
}

static inline size_t FN(floor_power_of_two)(size_t n)
{
    size_t p = 1;
    while (2 * p <= n)
        p *= 2;
    return p;
}

static inline REAL FN(activate)(enum activation f, REAL z)
{
    switch (f) {
    case ACTIVATION_TANH:
        return REAL_TANH(z);
    case ACTIVATION_SIGMOID:
        return (REAL)1 / ((REAL)1 + REAL_EXP(-z));
    case ACTIVATION_RELU:
    default:
        return z > 0 ? z : 0;
    }
}

/* What becomes of a product's tile once it is summed: biases added after
 * the sum (and the activation applied), or the gradient of the activations
 * turned into that of the pre-activations.  The loops that call libm stay
 * scalar (no simd: a vector libm may round differently). */
static KERNEL_TARGET void FN(finish_tile)(const struct product *p, REAL *restrict c, size_t i0,
                                          size_t j0, size_t rows, size_t columns)
{
    const REAL *restrict bias = p->bias ? (const REAL *)p->bias + j0 : NULL;
    const bool relu = p->activation == ACTIVATION_RELU;
    for (size_t i = 0; i < rows; i++) {
        REAL *restrict row = c + i * p->crs;
        const REAL *restrict a =
            p->activations ? (const REAL *)p->activations + (i0 + i) * p->crs + j0 : NULL;
        switch (p->finish) {
        case FINISH_NONE:
            break;
        case FINISH_BIAS:
#pragma omp simd
            for (size_t j = 0; j < columns; j++)
                row[j] = row[j] + bias[j];
            break;
        case FINISH_ACTIVATE:
            if (relu) {
#pragma omp simd
                for (size_t j = 0; j < columns; j++) {
                    const REAL z = row[j] + bias[j];
                    row[j] = z > 0 ? z : 0;
                }
            } else {
                for (size_t j = 0; j < columns; j++)
                    row[j] = FN(activate)(p->activation, row[j] + bias[j]);
            }
            break;
        case FINISH_DERIVATIVE:
            if (relu) {
#pragma omp simd
                for (size_t j = 0; j < columns; j++)
                    row[j] = a[j] > 0 ? row[j] : 0;
            } else if (p->activation == ACTIVATION_TANH) {
#pragma omp simd
                for (size_t j = 0; j < columns; j++)
                    row[j] = row[j] * ((REAL)1 - a[j] * a[j]);
            } else {
#pragma omp simd
                for (size_t j = 0; j < columns; j++)
                    row[j] = row[j] * (a[j] * ((REAL)1 - a[j]));
            }
            break;
        }
    }
}

/* The width of the constant tile shapes (COLUMNS, COLUMNS/2, ...) that
 * covers `columns`: the least of them at least as wide. */
static inline size_t FN(covering_width)(size_t columns)
{
    size_t width = COLUMNS;
    while (width / 2 >= columns)
        width /= 2;
    return width;
}

/* A block whose `columns` is none of the constant widths (the 10 logits:
 * 8 + 2 columns took two passes over a's rows, the second two lanes wide,
 * at 15-30% of the peak) is summed `width` wide from a panel whose extra
 * columns are zeros, each micro-tile into a tile of its own (so that the
 * sums stay in registers) that holds c's sums so far (`more`) and of
 * which only `columns` go back to c.  The extra lanes sum zeros and are
 * dropped; the others are the same sums in the same order. */
static inline void FN(narrow_load)(REAL *restrict tile, const REAL *restrict c, size_t crs,
                                   size_t rows, size_t columns, size_t width, bool more)
{
    for (size_t i = 0; i < rows && more; i++)
        for (size_t j = 0; j < width; j++)
            tile[i * COLUMNS + j] = j < columns ? c[i * crs + j] : 0;
}

static inline void FN(narrow_store)(REAL *restrict c, size_t crs, const REAL *restrict tile,
                                    size_t rows, size_t columns)
{
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < columns; j++)
            c[i * crs + j] = tile[i * COLUMNS + j];
}

/* The block of a product's outputs rows [i0, i0 + rows) x columns
 * [j0, j0 + columns) (at most COLUMNS), into c (rows crs apart: p->c's
 * place of the block, or a tile of its own, when unfinished), cut into
 * micro-tiles of constant shapes (powers of two at the edges, or, for a
 * width that is none of them, the narrowest that covers it: narrow_load),
 * summed a chunk of the depth at a time for all of them in turn, and
 * finished. */
static KERNEL_TARGET void FN(product_block)(const struct product *p, size_t i0, size_t rows,
                                            size_t j0, size_t columns, REAL *c, size_t crs)
{
    const REAL *a = (const REAL *)p->a + i0 * p->ars, *b = (const REAL *)p->b + j0;
    /* With crowded rows of b, the chunk of b that the micro-tiles share
     * would come from L2 for each of them.  The engine's own arrays have
     * none (output_stride), but W keeps the model's layout: where several
     * micro-tiles share its chunk and a is read along its rows (aks = 1:
     * the forward product), the chunk is copied first into a panel, its
     * rows COLUMNS apart; so is a narrow block's, with zeros up to its
     * width.  The same numbers, summed the same way. */
    const size_t width = FN(covering_width)(columns);
    const bool narrow = width != columns;  /* padded to width in the panel */
    const bool pack = narrow || (crowded_rows(p->brs * sizeof(REAL)) && p->aks == 1 && rows > ROWS);
    REAL panel[DEPTH_CHUNK * COLUMNS] __attribute__((aligned(64)));
    REAL tile[KERNEL_ROWS * COLUMNS] __attribute__((aligned(64)));
    size_t k0 = 0;
    do {
        const size_t depth = p->depth - k0 < DEPTH_CHUNK ? p->depth - k0 : DEPTH_CHUNK;
        const REAL *chunk = b + k0 * p->brs;
        size_t chunk_rs = p->brs;
        if (pack) {
            for (size_t k = 0; k < depth; k++)
#pragma omp simd
                for (size_t j = 0; j < width; j++)
                    panel[k * COLUMNS + j] = j < columns ? chunk[k * p->brs + j] : 0;
            chunk = panel;
            chunk_rs = COLUMNS;
        }
        for (size_t i = 0, r; i < rows; i += r) {
            r = rows - i >= ROWS ? ROWS : FN(floor_power_of_two)(rows - i);
            for (size_t j = 0, w; j < columns; j += w) {
                w = narrow                   ? width
                    : columns - j == COLUMNS ? COLUMNS
                                             : FN(floor_power_of_two)(columns - j);
                REAL *out = c + i * crs + j;
                size_t out_rs = crs;
                if (narrow) {
                    FN(narrow_load)(tile, out, crs, r, columns, width, k0 > 0);
                    out = tile;
                    out_rs = COLUMNS;
                }
                FN(shaped_kernel)(out, out_rs, a + i * p->ars + k0 * p->aks, p->ars, p->aks,
                                  chunk + j, chunk_rs, depth, r, w, k0 > 0);
                if (narrow)
                    FN(narrow_store)(c + i * crs + j, crs, tile, r, columns);
            }
        }
        k0 += depth;
    } while (k0 < p->depth);
    FN(finish_tile)(p, c, i0, j0, rows, columns);
}

/* One tile (numbered row-major over the product's grid of tiles) of a
 * product. */
static void FN(product_tile)(const struct product *p, size_t tile)
{
    const size_t across = FN(tiles)(p->columns, COLUMNS);
    const size_t i0 = tile / across * TILE_ROWS, j0 = tile % across * COLUMNS;
    FN(product_block)(p, i0, p->rows - i0 < TILE_ROWS ? p->rows - i0 : TILE_ROWS, j0,
                      p->columns - j0 < COLUMNS ? p->columns - j0 : COLUMNS,
                      (REAL *)p->c + i0 * p->crs + j0, p->crs);
}

static size_t FN(product_tile_count)(const struct product *p)
{
    return FN(tiles)(p->rows, TILE_ROWS) * FN(tiles)(p->columns, COLUMNS);
}

/* The loss of the images [first, end) of the batch, from their logits,
 * which become the gradient of the loss (SPEC part 2): returns the sum over
 * those images, in ascending order, of each image's loss (MSE: its sum of
 * squared errors, in double). */
static double FN(loss_rows)(const struct engine *e, const struct mlp *m, size_t first,
                            size_t end)
{
    const size_t O = mlp_outputs(m), b = e->total;
    REAL *restrict logits = e->activations[m->n_layers];
    const uint8_t *labels = e->ds->labels;
    double sum = 0;
    if (m->loss == LOSS_MSE) {
        const REAL scale = (REAL)2 / (REAL)(b * O);
        for (size_t n = first; n < end; n++) {
            REAL *restrict l = logits + n * O;
            const size_t label = labels[batch_image(e, n)];
            double squared_error = 0;
            for (size_t o = 0; o < O; o++) {
                const REAL diff = l[o] - (o == label ? (REAL)1 : (REAL)0);
                squared_error += (double)diff * (double)diff;
                l[o] = scale * diff;
            }
            sum += squared_error;
        }
        return sum;
    }
    for (size_t n = first; n < end; n++) {
        REAL *restrict l = logits + n * O;
        const size_t label = labels[batch_image(e, n)];
        REAL max = l[0], s = 0;
        for (size_t o = 1; o < O; o++)
            if (l[o] > max)
                max = l[o];
        const REAL target = l[label] - max;
        for (size_t o = 0; o < O; o++) {
            l[o] = REAL_EXP(l[o] - max);
            s += l[o];
        }
        sum += (double)(REAL_LOG(s) - target);
        for (size_t o = 0; o < O; o++)
            l[o] = (l[o] / s - (o == label ? (REAL)1 : (REAL)0)) / (REAL)b;
    }
    return sum;
}

/* Columns [0, columns) of the first layer's pre-activations for the rows
 * of a block: each row's sum over its nonzero pixel pairs, in ascending
 * pixel order, of x_low * W[2p] + x_high * W[2p + 1], from zero.  The sums
 * run pair by pair down the block's lists (batch_pairs), so that a pair's
 * two rows of W, read once, serve all of the block's rows that have it. */
static KERNEL_TARGET ALWAYS_INLINE inline void FN(sparse_rows)(
    REAL *restrict out, size_t crs, size_t rows, const REAL *restrict w, size_t wrs,
    const REAL *restrict zero, const REAL *restrict pixel_value, const struct batch_pairs *bp,
    size_t block, size_t pairs, size_t width, size_t columns)
{
    const uint32_t *starts = bp->pair_offsets + block * bp->offsets_stride;
    const size_t base = bp->block_first[block];
    for (size_t r = 0; r < rows; r++)
#pragma omp simd
        for (size_t j = 0; j < columns; j++)
            out[r * crs + j] = 0;
    for (size_t pair = 0; pair < pairs; pair++) {
        const REAL *restrict low = w + 2 * pair * wrs;
        const REAL *restrict high = 2 * pair + 1 < width ? low + wrs : zero;
        for (size_t e = base + starts[pair]; e < base + starts[pair + 1]; e++) {
            const uint32_t entry = bp->entries[e];
            const REAL x_low = pixel_value[entry_low(entry)];
            const REAL x_high = pixel_value[entry_high(entry)];
            REAL *restrict o = out + entry_key(entry) * crs;
#pragma omp simd
            for (size_t j = 0; j < columns; j++)
                o[j] = o[j] + x_low * low[j] + x_high * high[j];
        }
    }
}

/* The first layer's forward pass for a block of the batch's rows,
 * FORWARD_COLUMNS outputs from j0 on (cut into powers of two at the edge,
 * each a constant shape), finished as p says (bias, activation). */
static KERNEL_TARGET void FN(sparse_forward_block)(const struct engine *e, const struct product *p,
                                                   size_t block, size_t first, size_t end,
                                                   size_t j0)
{
    const size_t columns = p->columns - j0 < FORWARD_COLUMNS ? p->columns - j0 : FORWARD_COLUMNS;
    REAL *c = (REAL *)p->c + first * p->crs + j0;
    for (size_t j = 0, w; j < columns; j += w) {
        w = columns - j == FORWARD_COLUMNS ? FORWARD_COLUMNS : FN(floor_power_of_two)(columns - j);
#undef SPARSE_ROWS
#define SPARSE_ROWS(W)                                                                         \
    FN(sparse_rows)(c + j, p->crs, end - first, (const REAL *)p->b + j0 + j, p->brs, e->zero_row, \
                    e->pixel_value, &e->batch_pairs, block, e->pixels.pairs, e->pixels.width, W)
        CONSTANT_WIDTH(w, FORWARD_COLUMNS, SPARSE_ROWS);
    }
    FN(finish_tile)(p, c, first, j0, end - first, columns);
}

/* The forward pass of a block of the batch's rows through every layer
 * (each row's outputs depend on that row alone), its pixel pairs' lists
 * first where the step builds them, and with_loss, each row's loss and
 * the loss's gradient. */
static void FN(forward_rows)(const struct engine *e, size_t block, bool with_loss, double *mark)
{
    const struct mlp *m = &e->shape;
    const size_t first = e->batch_pairs.block_row[block], end = e->batch_pairs.block_row[block + 1];
    if (e->fill_pairs) {
        batch_pairs_fill(e, block);
        profile_charge(e, PROFILE_OTHER, mark);
    }
    for (size_t j0 = 0; j0 < e->forward[0].columns; j0 += FORWARD_COLUMNS)
        FN(sparse_forward_block)(e, &e->forward[0], block, first, end, j0);
    profile_charge(e, profile_slot(0, ENGINE_FORWARD), mark);
    for (size_t l = 1; l < m->n_layers; l++) {
        const struct product *p = &e->forward[l];
        for (size_t j0 = 0; j0 < p->columns; j0 += COLUMNS)
            FN(product_block)(p, first, end - first, j0,
                              p->columns - j0 < COLUMNS ? p->columns - j0 : COLUMNS,
                              (REAL *)p->c + first * p->crs + j0, p->crs);
        profile_charge(e, profile_slot(l, ENGINE_FORWARD), mark);
    }
    for (size_t n = first; with_loss && n < end; n++)
        e->row_loss[n] = FN(loss_rows)(e, m, n, n + 1);
}

/* A unit's rows that have a pair: their pixel values and rows of dZ, read
 * from the blocks' lists with the first chunk of columns and kept for the
 * others (at most UNIT_SAMPLES rows, each once). */
struct FN(unit_terms) {
    REAL x_low[UNIT_SAMPLES], x_high[UNIT_SAMPLES];
    const REAL *g[UNIT_SAMPLES];
    size_t count;
};

/* Columns [j, j + W) of a unit's sums for pair p (x_low * g and x_high *
 * g over the unit's rows that have it, in ascending order, from zero: the
 * others add exact zeros), plus the stack's levels [to, from) that it
 * meets as the right sibling of each (the nearest first), into level
 * `to`.  The first chunk (j = 0) reads the rows from the lists, keeping
 * their terms in *t when `keep` (more chunks follow); the others run down
 * *t.  The sums are named variables of a vector type V (GCC's vector
 * extension), at most 8 a row: GCC keeps arrays in memory once it has
 * vectorised their loops, and storing and reloading a chunk's sums around
 * each unit's few rows cost more than the rows.  V is the instruction
 * set's vector, or a single REAL where the chunk is narrower than one; the
 * sums are the same either way (each lane its own, in the same order). */
typedef REAL FN(vector) __attribute__((vector_size(KERNEL_COLUMN_BYTES / 2)));
#undef LANES
#define LANES ((KERNEL_COLUMN_BYTES / 2) / sizeof(REAL))
_Static_assert(KERNEL_SPARSE_BYTES / (KERNEL_COLUMN_BYTES / 2) <= 8 &&
                   (KERNEL_COLUMN_BYTES / 2) / sizeof(REAL) <= 16,
               "a chunk of the weight gradient holds at most 8 vectors or 8 REALs a row");
#undef FOR_EIGHT
#define FOR_EIGHT(X, V) X(V, 0) X(V, 1) X(V, 2) X(V, 3) X(V, 4) X(V, 5) X(V, 6) X(V, 7)
#undef UNIT_SUMS
#define UNIT_SUMS(V, i) V low##i = {0}, high##i = {0};
#undef UNIT_ROW
#define UNIT_ROW(V, i)                           \
    if (i < per_row) {                           \
        V g_i;                                   \
        memcpy(&g_i, g + i * lanes, sizeof g_i); \
        low##i = low##i + x_low * g_i;           \
        high##i = high##i + x_high * g_i;        \
    }
/* Kept row k's terms (the chunks after the first), two rows a turn of
 * the loop: 0.169-0.196 -> 0.162-0.170 s an epoch for recipe (c)'s weight
 * gradient, 1 thread. */
#undef KEPT_ROW
#define KEPT_ROW(V, k)                                         \
    {                                                          \
        const REAL x_low = t->x_low[k], x_high = t->x_high[k]; \
        const REAL *restrict g = t->g[k] + j;                  \
        FOR_EIGHT(UNIT_ROW, V)                                 \
    }
#undef UNIT_LEVEL
#define UNIT_LEVEL(V, i)                                                      \
    if (i < per_row) {                                                        \
        V level_i;                                                            \
        memcpy(&level_i, level + i * lanes, sizeof level_i);                  \
        low##i = level_i + low##i;                                            \
        if (has_high) {                                                       \
            memcpy(&level_i, level + row_stride + i * lanes, sizeof level_i); \
            high##i = level_i + high##i;                                      \
        }                                                                     \
    }
#undef UNIT_STORE
#define UNIT_STORE(V, i)                                               \
    if (i < per_row) {                                                 \
        memcpy(out + i * lanes, &low##i, sizeof(V));                   \
        if (has_high)                                                  \
            memcpy(out + row_stride + i * lanes, &high##i, sizeof(V)); \
    }
#undef DEFINE_UNIT_COLUMNS
#define DEFINE_UNIT_COLUMNS(NAME, V)                                                             \
    static KERNEL_TARGET ALWAYS_INLINE inline void NAME(                                       \
        const struct engine *e, size_t unit, size_t pair, const REAL *restrict dz, size_t dzrs, \
        struct FN(unit_terms) *restrict t, bool keep, REAL *levels, size_t level_elements,      \
        size_t j, const bool *zero, size_t from, size_t to, size_t row_stride, bool has_high,   \
        size_t W)                                                                              \
    {                                                                                          \
        const size_t lanes = sizeof(V) / sizeof(REAL), per_row = W / lanes;                    \
        FOR_EIGHT(UNIT_SUMS, V)                                                                \
        if (j == 0) {                                                                          \
            const struct batch_pairs *bp = &e->batch_pairs;                                    \
            const REAL *restrict pixel_value = e->pixel_value;                                 \
            size_t rows = 0;                                                                   \
            for (size_t b = bp->unit_block[unit]; b < bp->unit_block[unit + 1]; b++) {         \
                const uint32_t *starts = bp->pair_offsets + b * bp->offsets_stride;            \
                const size_t listed = bp->block_first[b];                                      \
                const REAL *block_dz = dz + bp->block_row[b] * dzrs;                           \
                for (size_t i = listed + starts[pair]; i < listed + starts[pair + 1]; i++) {    \
                    const uint32_t entry = bp->entries[i];                                     \
                    const REAL x_low = pixel_value[entry_low(entry)];                          \
                    const REAL x_high = pixel_value[entry_high(entry)];                        \
                    const REAL *restrict g = block_dz + entry_key(entry) * dzrs;               \
                    if (keep) {                                                                \
                        t->x_low[rows] = x_low;                                                \
                        t->x_high[rows] = x_high;                                              \
                        t->g[rows] = g;                                                        \
                    }                                                                          \
                    rows++;                                                                    \
                    FOR_EIGHT(UNIT_ROW, V)                                                     \
                }                                                                              \
            }                                                                                  \
            t->count = rows;                                                                   \
        } else {                                                                               \
            size_t k = 0;                                                                      \
            for (; k + 1 < t->count; k += 2) {                                                 \
                KEPT_ROW(V, k)                                                                 \
                KEPT_ROW(V, k + 1)                                                             \
            }                                                                                  \
            if (k < t->count)                                                                  \
                KEPT_ROW(V, k)                                                                 \
        }                                                                                      \
        for (size_t k = from; k-- > to;)                                                       \
            if (!zero[k]) {                                                                    \
                const REAL *restrict level = levels + k * level_elements + j;                  \
                FOR_EIGHT(UNIT_LEVEL, V)                                                       \
            }                                                                                  \
        REAL *restrict out = levels + to * level_elements + j;                                 \
        FOR_EIGHT(UNIT_STORE, V)                                                               \
    }
DEFINE_UNIT_COLUMNS(FN(unit_vectors), FN(vector))
DEFINE_UNIT_COLUMNS(FN(unit_singles), REAL)

/* The width of the weight gradient's chunk of columns where `rest`
 * remain: SPARSE_COLUMNS, then powers of two at the edge. */
static inline size_t FN(sparse_chunk)(size_t rest)
{
    return rest >= SPARSE_COLUMNS ? SPARSE_COLUMNS : FN(floor_power_of_two)(rest);
}

/* Rows 2p and 2p + 1 of the first layer's weight gradient for the units
 * of range r: each unit's sums, added up in the tree as the range's walk
 * goes (the tree in kernels.c), leaving the range's complete subtrees at
 * `at` in its partials.  The stack's entries are the thread's scratch (two
 * rows of `columns`, in L1 or L2); a unit's sum is added to the levels it
 * meets as it is made, a chunk of columns at a time in registers, and
 * stored once.  A unit without the pair is exactly zero (an accumulator
 * that starts at +0 is never -0, and x + +0 = x): it, and any sum of such,
 * is only marked so, and a sum with it is the other term, so that the
 * pairs at the images' edges cost nothing. */
static KERNEL_TARGET void FN(sparse_walk_pair)(const struct engine *e, size_t range, size_t at,
                                               size_t crs, const REAL *restrict dz, size_t dzrs,
                                               size_t pair, bool has_high, size_t columns)
{
    const struct batch_pairs *bp = &e->batch_pairs;
    REAL *levels = walk_scratch(e, 0);  /* the thread's stack, e->tile_elements a level */
    struct FN(unit_terms) terms;
    /* More than one chunk of columns reads the kept terms. */
    const bool keep = columns > FN(sparse_chunk)(columns);
    const size_t base = e->range_partial[range];
    struct tree_node stack[2 * TREE_LEVELS];
    bool zero[2 * TREE_LEVELS];
    size_t n = 0, first, end;
    range_units(e, range, &first, &end);
    for (size_t u = first; u < end; u++) {
        const size_t unit = u - e->unit_first;
        bool empty = true;
        for (size_t block = bp->unit_block[unit]; empty && block < bp->unit_block[unit + 1];
             block++) {
            const uint32_t *starts = bp->pair_offsets + block * bp->offsets_stride;
            empty = starts[pair] == starts[pair + 1];
        }
        /* The levels the unit's sum meets, from the top down. */
        struct tree_node node = {0, u};
        size_t to = n;
        bool all_zero = empty;
        while (to >= 1 && tree_siblings(stack[to - 1], node)) {
            to--;
            all_zero = all_zero && zero[to];
            node = tree_parent(stack[to]);
        }
        if (!all_zero) {
            for (size_t j = 0, w; j < columns; j += w) {
                w = FN(sparse_chunk)(columns - j);
#undef SPARSE_UNIT
#define SPARSE_UNIT(W)                                                                         \
    (W >= LANES ? FN(unit_vectors) : FN(unit_singles))(e, unit, pair, dz, dzrs, &terms, keep,    \
                                                        levels, e->tile_elements, j, zero, n, to, \
                                                        columns, has_high, W)
                CONSTANT_WIDTH(w, SPARSE_COLUMNS, SPARSE_UNIT);
            }
        }
        stack[to] = node;
        zero[to] = all_zero;
        n = to + 1;
    }
    /* The pieces the walk leaves, into the range's partials, which the
     * update reads whole. */
    for (size_t k = 0; k < n; k++) {
        REAL *restrict out = (REAL *)partial(e, base + k) + at;
        const REAL *restrict level = levels + k * e->tile_elements;
        for (size_t row = 0; row < (has_high ? 2u : 1u); row++)
            if (zero[k])
#pragma omp simd
                for (size_t j = 0; j < columns; j++)
                    out[row * crs + j] = 0;
            else
#pragma omp simd
                for (size_t j = 0; j < columns; j++)
                    out[row * crs + j] = level[row * columns + j];
    }
}

/* A tile of SPARSE_PAIRS pairs of rows of the first layer's weight
 * gradient (job->offset in a partial, from the gradient of the
 * pre-activations job->product.b) for range r's units, pair by pair. */
static KERNEL_TARGET void FN(sparse_range_tile)(const struct engine *e, const struct job *job,
                                                size_t range, size_t tile)
{
    const struct pixel_lists *px = &e->pixels;
    const struct product *p = &job->product;
    const size_t pair0 = tile * SPARSE_PAIRS;
    const size_t pair_end = pair0 + SPARSE_PAIRS < px->pairs ? pair0 + SPARSE_PAIRS : px->pairs;
    for (size_t pair = pair0; pair < pair_end; pair++)
        FN(sparse_walk_pair)(e, range, job->offset + 2 * pair * p->crs, p->crs,
                             (const REAL *)p->b, p->brs, pair, 2 * pair + 1 < px->width,
                             p->columns);
}

static size_t FN(sparse_gradient_tile_count)(size_t pairs)
{
    return FN(tiles)(pairs, SPARSE_PAIRS);
}

/* W^T (n_out rows, trs apart, as the layer's inputs' rows) for the rows
 * [first, end) of W (n_in x n_out), so that the input gradient dZ . W^T
 * runs along contiguous rows, which fall in all of L1's sets (no panel to
 * copy: 784-512-512-10, 1 thread, the input gradient 0.538 -> 0.430 s an
 * epoch).  Square blocks of a cache line's width keep both the lines read
 * and the lines written in L1 (a row at a time, every write lands on
 * another line). */
static void FN(transpose_rows)(void *out, size_t trs, const void *in, size_t n_out, size_t first,
                               size_t end)
{
    enum { SIDE = 64 / sizeof(REAL) };
    REAL *restrict t = out;
    const REAL *restrict w = in;
    for (size_t o0 = 0; o0 < n_out; o0 += SIDE) {
        const size_t o_end = o0 + SIDE < n_out ? o0 + SIDE : n_out;
        for (size_t k0 = first; k0 < end; k0 += SIDE) {
            const size_t k_end = k0 + SIDE < end ? k0 + SIDE : end;
            for (size_t o = o0; o < o_end; o++)
                for (size_t k = k0; k < k_end; k++)
                    t[o * trs + k] = w[k * n_out + o];
        }
    }
}

/* left += right over a tile of rows x columns, rows crs apart. */
static KERNEL_TARGET void FN(add_tile)(REAL *restrict left, const REAL *restrict right, size_t crs,
                                       size_t rows, size_t columns)
{
    for (size_t i = 0; i < rows; i++)
#pragma omp simd
        for (size_t j = 0; j < columns; j++)
            left[i * crs + j] += right[i * crs + j];
}

/* The parameters [first, first + count) of the batch's gradient, into the
 * first piece's partial: the ranges' pieces walked in order as a range's
 * units are (siblings added as they meet), then what is left added from
 * the right (see the tree in kernels.c). */
static KERNEL_TARGET void FN(sum_pieces)(const struct engine *e, size_t first, size_t count)
{
    REAL *at[2 * TREE_LEVELS];
    struct tree_node nodes[2 * TREE_LEVELS];
    size_t n = 0;
    for (size_t q = 0; q < e->n_pieces; q++) {
        at[n] = (REAL *)e->pieces[q].partial + first;
        nodes[n++] = (struct tree_node){e->pieces[q].level, e->pieces[q].index};
        while (n >= 2 && tree_siblings(nodes[n - 2], nodes[n - 1])) {
            FN(add_tile)(at[n - 2], at[n - 1], 0, 1, count);
            nodes[n - 2] = tree_parent(nodes[n - 2]);
            n--;
        }
    }
    for (; n >= 2; n--)
        FN(add_tile)(at[n - 2], at[n - 1], 0, 1, count);
}

/* Where tile `tile` of a dense gradient job lies in a partial: rows [*i0,
 * *i0 + *rows) by columns [*j0, *j0 + *columns) of the job's product (as
 * product_tile cuts it). */
static void FN(gradient_tile_region)(const struct job *job, size_t tile, size_t *i0, size_t *rows,
                                     size_t *j0, size_t *columns)
{
    const struct product *p = &job->product;
    const size_t across = FN(tiles)(p->columns, COLUMNS);
    *i0 = tile / across * TILE_ROWS;
    *j0 = tile % across * COLUMNS;
    *rows = p->rows - *i0 < TILE_ROWS ? p->rows - *i0 : TILE_ROWS;
    *columns = p->columns - *j0 < COLUMNS ? p->columns - *j0 : COLUMNS;
}

/* Rows [i0, i0 + rows) x columns [j0, j0 + columns) of a dense gradient
 * job for the batch's unit u alone, into the tile c (rows `columns`
 * apart). */
static void FN(unit_tile)(const struct engine *e, const struct job *job, size_t u, size_t i0,
                          size_t rows, size_t j0, size_t columns, REAL *c)
{
    struct product p = job->product;
    const size_t row = unit_row(e, u);
    p.a = (const REAL *)p.a + row * p.aks;
    p.b = (const REAL *)p.b + row * p.brs;
    p.depth = unit_row(e, u + 1) - row;
    FN(product_block)(&p, i0, rows, j0, columns, c, columns);
}

/* A tile of a gradient job for range r: each of the range's units' tile
 * in turn into the scratch tile on top of the walk's stack, added onto the
 * one below while the two are siblings (the tree in kernels.c), then what
 * the walk leaves into the range's partials; the first layer's, pair by
 * pair (sparse_walk_pair). */
static void FN(run_range_tile)(const struct engine *e, const struct job *job, size_t range,
                               size_t tile)
{
    if (job->kind == JOB_SPARSE_GRADIENT) {
        FN(sparse_range_tile)(e, job, range, tile);
        return;
    }
    const size_t base = e->range_partial[range], crs = job->product.crs;
    struct tree_node stack[2 * TREE_LEVELS];
    size_t first, end, i0, rows, j0, columns, n = 0;
    range_units(e, range, &first, &end);
    FN(gradient_tile_region)(job, tile, &i0, &rows, &j0, &columns);
    for (size_t u = first; u < end; u++) {
        FN(unit_tile)(e, job, u, i0, rows, j0, columns, walk_scratch(e, n));
        stack[n++] = (struct tree_node){0, u};
        while (n >= 2 && tree_siblings(stack[n - 2], stack[n - 1])) {
            FN(add_tile)(walk_scratch(e, n - 2), walk_scratch(e, n - 1), columns, rows, columns);
            stack[n - 2] = tree_parent(stack[n - 2]);
            n--;
        }
    }
    const size_t corner = job->offset + i0 * crs + j0;
    for (size_t k = 0; k < n; k++) {
        REAL *restrict out = (REAL *)partial(e, base + k) + corner;
        const REAL *restrict in = walk_scratch(e, k);
        for (size_t i = 0; i < rows; i++)
#pragma omp simd
            for (size_t j = 0; j < columns; j++)
                out[i * crs + j] = in[i * columns + j];
    }
}

/* Pixel p as an input, p / 255, in this precision. */
static void FN(fill_pixel_values)(void *values)
{
    REAL *v = values;
    for (int p = 0; p < 256; p++)
        v[p] = (REAL)p / (REAL)255;
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

/* The work of one item of a job (see kernels.c). */
static void FN(run_item)(const struct engine *e, const struct job *job, size_t item,
                         double *mark)
{
    switch (job->kind) {
    case JOB_PRODUCT:
        FN(product_tile)(&job->product, item);
        break;
    case JOB_FORWARD:
        FN(forward_rows)(e, item, job->with_loss, mark);
        break;
    case JOB_TRANSPOSE: {
        const size_t first = item * TRANSPOSE_ROWS, n_in = job->product.rows;
        FN(transpose_rows)(job->product.c, job->product.crs, job->product.a, job->product.columns,
                           first, first + TRANSPOSE_ROWS < n_in ? first + TRANSPOSE_ROWS : n_in);
        break;
    }
    case JOB_GRADIENT:
    case JOB_SPARSE_GRADIENT:
        break;  /* run_range_tile's */
    case JOB_SUM_PARTIALS:
    case JOB_UPDATE: {
        const size_t first = item * BLOCK, total = e->n_params;
        const size_t count = total - first < BLOCK ? total - first : BLOCK;
        if (job->sum_pieces)
            FN(sum_pieces)(e, first, count);
        if (job->kind == JOB_UPDATE)
            update_params(e, first, count);
        break;
    }
    }
}

static size_t FN(item_count)(const struct engine *e, const struct job *job)
{
    switch (job->kind) {
    case JOB_PRODUCT:
    case JOB_GRADIENT:
        return FN(product_tile_count)(&job->product);
    case JOB_FORWARD:
        return e->batch_pairs.blocks;
    case JOB_SPARSE_GRADIENT:
        return FN(sparse_gradient_tile_count)(e->pixels.pairs);
    case JOB_TRANSPOSE:
        return FN(tiles)(job->product.rows, TRANSPOSE_ROWS);
    case JOB_SUM_PARTIALS:
    case JOB_UPDATE:
        return FN(tiles)(e->n_params, BLOCK);
    }
    return 0;
}

static const struct kernel_set FN(kernels) = {
    KERNEL_ISA_NAME, TILE_ROWS * COLUMNS,
    FN(item_count), FN(run_item), FN(run_range_tile), FN(fill_pixel_values), FN(fma_probe),
    PROBE_LANES,
};
