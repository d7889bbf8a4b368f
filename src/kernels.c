/* The engine: the buffers, the cutting of each step into items, the threads
 * and the choice of kernels.  Every `#pragma omp` of mnist-omp is in this
 * file; the loops the items run are in kernels_impl.h. */
#include <config.h>

#include "kernels.h"

#include "clock.h"
#include "pixel_lists.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Units cut a batch for the weight gradients: their number depends on the
 * batch size alone (engine_unit_count), at most UNIT_SAMPLES samples each
 * (469 units at N = 60000, work for 256 threads and more), and at least
 * PARALLEL_UNITS of them for a batch of PARALLEL_UNITS * MIN_UNIT_SAMPLES
 * or more (a batch of 256 keeps 16 threads busy).  A smaller batch stays
 * in one or two units, since every unit's partial costs a store and an
 * addition of its own (8 units of 16 images of a batch of 128 made recipe
 * "fast" train 1.7 times as long); its threads share out the units' tiles
 * instead.  The units' partial gradients are summed in one binary tree
 * (see the tree below).  The reduction and the update work on blocks of
 * BLOCK parameters; the forward pass's items are blocks of at least
 * FORWARD_ROWS images (enough that a pair's weight rows serve several)
 * through every layer, the first layer's weight gradient's SPARSE_PAIRS
 * pairs of weight rows; transposes go TRANSPOSE_ROWS rows at a time.  Each
 * thread takes items CHUNKS_PER_THREAD times in a step's phase (dynamic
 * scheduling: threads that finish early take more). */
enum {
    UNIT_SAMPLES = 128,
    MIN_UNIT_SAMPLES = 16,
    PARALLEL_UNITS = 16,
    BLOCK = 1024,
    FORWARD_ROWS = 32,
    MAX_BLOCK_ROWS = 256,  /* a block's rows of first-layer sums stay in L2 */
    BLOCKS_PER_THREAD = 4,
    SPARSE_PAIRS = 4,
    TRANSPOSE_ROWS = 64,
    CHUNKS_PER_THREAD = 8,
    /* a backward phase: a weight and a bias gradient, an input gradient */
    MAX_JOBS = MLP_MAX_LAYERS + 1,
    /* the tree's levels: a unit count fits a size_t */
    TREE_LEVELS = 8 * sizeof(size_t) + 1,
};

/* Whether rows `bytes` apart fall in few of L1's 64 sets (a multiple of
 * 512 bytes: in 8 of them at most, in 2 at 2048 bytes, a 512-wide float
 * layer's rows), so that a block of them, or a column, cannot stay in L1:
 * the engine pads its own such rows (output_stride) and copies the
 * weights' into a panel (product_block). */
static inline bool crowded_rows(size_t bytes)
{
    return bytes % 512 == 0;
}

/* The tree over a batch's U units: node (level k, index i) is the sum of
 * the units [i 2^k, (i + 1) 2^k) that exist, a leaf (k = 0) a unit's own
 * partial gradient, and a node whose right half is empty its left half.
 * Each thread walks its contiguous range of units in order with a stack:
 * it pushes each unit's partial and adds the top onto the one below while
 * the two are siblings (left + right, the same additions whoever makes
 * them), so that it keeps only the complete subtrees of its range, at most
 * two per level.  The update runs the same walk over every range's
 * subtrees in order, then adds what is left on the stack from the right
 * (the incomplete right edge of the tree).  Every node is thus the same
 * sum of the same terms in the same order, whatever cuts the units into
 * ranges: threads, and processes. */
struct tree_node {
    size_t level, index;
};

static inline bool tree_siblings(struct tree_node left, struct tree_node right)
{
    return left.level == right.level && left.index % 2 == 0 && right.index == left.index + 1;
}

static inline struct tree_node tree_parent(struct tree_node left)
{
    return (struct tree_node){left.level + 1, left.index / 2};
}

/* The images' pixel lists (pixel_lists.h) turned around for a batch: for
 * each block of the batch's rows (block_rows(); blocks cut units, never
 * straddle two) and each pair, the block's rows that have that pair, in
 * ascending order.  Each block's forward item builds its lists from the
 * images', in time proportional to its entries, then runs down them, so
 * that a pair's two rows of W are read once for the block; the weight
 * gradient runs down the same lists, block after block.  Kept for the
 * whole dataset in order (batch NULL). */
struct batch_pairs {
    size_t capacity;             /* entries allocated */
    size_t blocks;               /* of the current batch */
    size_t *block_first;         /* blocks + 1: first entry of each block */
    size_t *block_row;           /* blocks + 1: first batch row of each block */
    size_t unit_capacity, block_capacity;  /* of the arrays below */
    size_t *unit_block;          /* units + 1: first block of each of the step's units */
    uint32_t *pair_offsets;      /* per block, pairs + 1 (offsets_stride apart): first
                                    entry of each pair, counted from the block's first */
    size_t offsets_stride;       /* a block's offsets start on a cache line of their own */
    uint32_t *entries;           /* key: the row within its block */
    size_t whole;                /* built for batch NULL of this many images; 0: not */
    size_t whole_units;          /* and cut into this many units */
};

/* c (rows x columns, rows crs apart) = a . b over `depth` terms, a(i, k) at
 * a[i * ars + k * aks], b's rows brs apart; then finished. */
enum finish { FINISH_NONE, FINISH_BIAS, FINISH_ACTIVATE, FINISH_DERIVATIVE };
struct product {
    void *c;
    size_t crs;
    const void *a;
    size_t ars, aks;
    const void *b;
    size_t brs;
    size_t rows, columns, depth;
    enum finish finish;
    const void *bias;         /* FINISH_BIAS, FINISH_ACTIVATE */
    const void *activations;  /* FINISH_DERIVATIVE: the layer's outputs, c's shape */
    enum activation activation;
};

/* A piece of a step, cut into items that threads share out.  The forward
 * pass takes its layers' products from the engine (forward) and its items
 * are blocks of rows (block_rows()) through every layer; a weight or bias
 * gradient's product is the batch's, whose c is `offset` elements into a
 * partial gradient, and its items are the product's tiles for every range
 * of units (the sparse gradient uses product's b, brs and columns: a is the
 * pixels); a transpose has c = W^T (rows crs apart), a = W, rows x columns =
 * n_in x n_out; the sum of the partials and the update are blocks of BLOCK
 * parameters. */
enum job_kind {
    JOB_PRODUCT,
    JOB_FORWARD,
    JOB_GRADIENT,
    JOB_SPARSE_GRADIENT,
    JOB_TRANSPOSE,
    JOB_SUM_PARTIALS,
    JOB_UPDATE,
};
struct job {
    enum job_kind kind;
    struct product product;
    size_t offset;        /* JOB_GRADIENT, JOB_SPARSE_GRADIENT: where c is in a partial */
    bool with_loss;       /* JOB_FORWARD: whether it works out the loss */
    bool sum_pieces;      /* JOB_UPDATE: whether it first adds up the ranges' pieces */
    size_t profile_slot;  /* where a profile charges its time (profile_slot()) */
};

/* A phase of a step: first each range's gradient jobs (ranged): all of a
 * range's tiles run by one thread, the range's own, or, with fewer ranges
 * than threads, each range's tiles shared out (ranged_items: a job's tiles
 * for each range, job after job); then jobs whose items the threads share
 * out in any order (no two write the same element); then a wait for all
 * of them. */
struct phase {
    size_t n_ranged, ranged_items;
    struct job ranged[2];
    size_t ranged_tiles[2];
    size_t n_jobs, items, chunk;  /* chunk: items a thread takes at a time */
    struct job jobs[MAX_JOBS];
    size_t first[MAX_JOBS + 1];   /* each job's first item */
};

/* What the update applies, for the items of JOB_UPDATE. */
struct update {
    const struct optimizer *optimizer;
    const struct optimizer_step *step;
    const struct optimizer_state *state;
    void *params;
};

struct engine;

/* One instruction set's copy of the kernels of kernels_impl.h. */
struct kernel_set {
    const char *isa;
    size_t tile_elements;  /* the most elements of a dense gradient's tile
                              (run_range_tile) */
    size_t (*item_count)(const struct engine *e, const struct job *job);
    void (*run_item)(const struct engine *e, const struct job *job, size_t item, double *mark);
    void (*run_range_tile)(const struct engine *e, const struct job *job, size_t range,
                           size_t tile);
    void (*fill_pixel_values)(void *values);
    double (*fma_probe)(size_t rounds);
    size_t probe_lanes;  /* the probe's chains, each one lane of a vector */
};

struct engine {
    const struct kernel_set *kernels;
    const struct dataset *ds;
    struct mlp shape;         /* the network's shape; no parameters */
    int threads;              /* of every parallel region the engine runs */
    struct pixel_lists pixels;
    struct batch_pairs batch_pairs;
    size_t capacity;          /* images the activations hold */
    size_t n_params, partial_stride;
    void *grad;               /* the first range's first partial: in the end, the batch's
                                 gradient */
    void *partials;           /* the other partials, partial_stride apart */
    void *placed;             /* where the caller has the pieces' partials go instead
                                 (engine_place_pieces), or NULL; room for placed_count */
    size_t placed_count;
    size_t partial_capacity;  /* of partials */
    void *activations[MLP_MAX_LAYERS + 1];  /* [l], l >= 1: capacity rows of widths[l],
                                               output_stride(l - 1) apart; the last
                                               holds logits, then dL */
    void *deltas[2];          /* gradients of hidden pre-activations, in turn (rows
                                 as their layer's outputs) */
    void *transposed[MLP_MAX_LAYERS];       /* W^T of each layer but the first, rows as
                                               the layer's inputs' */
    void *zero_row;           /* stands in for W1's row past an odd last pixel */
    struct product forward[MLP_MAX_LAYERS];  /* each layer's forward product */
    double *row_loss;         /* each batch row's loss */
    double *unit_loss;        /* each unit's, when all of the batch is this process's */
    const size_t *batch;      /* the current batch (NULL: ds in order) */
    size_t count;             /* its images */
    /* The step's units (plan_units): this process works out the units
     * [unit_first, unit_end) of the batch's `units`, whose rows are its
     * `count` rows, from the batch's row row_first on, of `total` (the
     * losses are means over all of them); its threads cut them into
     * `ranges` ranges, range r's partials from range_partial[r] on, and
     * their walks leave the pieces. */
    size_t total, units, unit_first, unit_end, row_first;
    size_t ranges, ranges_capacity;
    size_t *range_partial;    /* ranges + 1 */
    void *scratch;            /* per thread, `levels` tiles: the stack of a tile's walk */
    size_t levels, tile_elements, scratch_capacity;  /* scratch_capacity: bytes */
    size_t planned_total, planned_threads, planned_first, planned_end;  /* what the ranges
                                                                          were planned for */
    struct engine_piece *pieces;
    size_t n_pieces, pieces_capacity;
    size_t block_rows;        /* most rows of a block of the batch (block_rows()) */
    struct phase *phases;     /* a step's: the forward pass, a backward pass per layer, the
                                 update */
    struct update update;
    bool fill_pairs;          /* whether the forward pass builds batch_pairs */
    union {
        float f32[256];
        double f64[256];
    } pixel_values;           /* p / 255, this engine's own (engines run side by side) */
    const void *pixel_value;
    union {
        float f32;
        double f64;
    } one;                    /* the a of a bias gradient: 1^T . dZ */
    double *profile;          /* per thread, PROFILE_STRIDE seconds; NULL: not profiling */
    uint64_t profile_steps, profile_images;
};

/* Image of batch row n. */
static inline size_t batch_image(const struct engine *e, size_t n)
{
    return e->batch ? e->batch[n] : n;
}

/* Partial i of the step: 0 is grad. */
static inline void *partial(const struct engine *e, size_t i)
{
    const size_t bytes = engine_partial_bytes(e);
    if (e->placed)
        return (char *)e->placed + i * bytes;
    return i == 0 ? e->grad : (char *)e->partials + (i - 1) * bytes;
}

/* The first row (of this process's rows) of the batch's unit u. */
static inline size_t unit_row(const struct engine *e, size_t u)
{
    return engine_unit_row(e->total, u) - e->row_first;
}

static inline int thread_number(void);

/* Level k of the calling thread's stack of scratch tiles. */
static inline void *walk_scratch(const struct engine *e, size_t k)
{
    return (char *)e->scratch + ((size_t)thread_number() * e->levels + k) * e->tile_elements *
                                    precision_size(e->shape.precision);
}

/* The units [*first, *end) of range r. */
static inline void range_units(const struct engine *e, size_t r, size_t *first, size_t *end)
{
    const size_t n = e->unit_end - e->unit_first;
    *first = e->unit_first + r * n / e->ranges;
    *end = e->unit_first + (r + 1) * n / e->ranges;
}

/* The profile's slots: a kernel of a layer, or the rest of a step; each
 * thread's slots start on a cache line of their own. */
enum {
    PROFILE_OTHER = MLP_MAX_LAYERS * ENGINE_KERNELS,
    PROFILE_UPDATE,
    PROFILE_STRIDE = (PROFILE_UPDATE + 1 + 7) / 8 * 8,
};

static inline size_t profile_slot(size_t layer, enum engine_kernel kernel)
{
    return layer * ENGINE_KERNELS + kernel;
}

static inline int thread_number(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* When profiling, charges the calling thread's time since *mark to the
 * slot and moves the mark to now. */
static inline void profile_charge(const struct engine *e, size_t slot, double *mark)
{
    if (!e->profile)
        return;
    const double now = clock_seconds();
    e->profile[(size_t)thread_number() * PROFILE_STRIDE + slot] += now - *mark;
    *mark = now;
}

static inline double profile_mark(const struct engine *e)
{
    return e->profile ? clock_seconds() : 0;
}

/* The most rows of a block of the step's rows (blocks cut units, never
 * straddle two): a unit's, so that the weight gradient runs down one long
 * list per pair and unit, but few enough that each of the threads gets
 * BLOCKS_PER_THREAD blocks of the forward pass, and from FORWARD_ROWS (a
 * pair's weight rows serve several rows) to MAX_BLOCK_ROWS.  No sum
 * depends on it. */
static size_t block_rows(const struct engine *e)
{
    const size_t n = e->count;
    size_t rows = (e->total + e->units - 1) / e->units;  /* the longest unit's: no one-row
                                                              tails */
    const size_t spread = n / (BLOCKS_PER_THREAD * (size_t)e->threads);
    if (rows > spread)
        rows = spread;
    return rows < FORWARD_ROWS ? FORWARD_ROWS : rows > MAX_BLOCK_ROWS ? MAX_BLOCK_ROWS : rows;
}

/* Builds a block's lists of batch_pairs, whose entry range is already
 * planned (batch_pairs_plan): a count of each pair's rows, their running
 * sum, then each entry in its place. */
static void batch_pairs_fill(const struct engine *e, size_t block)
{
    const struct pixel_lists *px = &e->pixels;
    const struct batch_pairs *bp = &e->batch_pairs;
    const size_t pairs = px->pairs, first = bp->block_row[block], end = bp->block_row[block + 1];
    const size_t base = bp->block_first[block];
    const size_t *restrict image_entries = px->image_entries;
    const uint32_t *restrict in = px->entries;
    uint32_t *restrict out = bp->entries + base;
    uint32_t *restrict starts = bp->pair_offsets + block * bp->offsets_stride;

    memset(starts, 0, (pairs + 1) * sizeof *starts);
    for (size_t n = first; n < end; n++) {
        const size_t image = batch_image(e, n);
        /* The batch's images lie anywhere in memory: ask early for the next
         * one's pairs, a line (16 entries) at a time. */
        if (n + 1 < end) {
            const size_t next = batch_image(e, n + 1);
            for (size_t i = image_entries[next]; i < image_entries[next + 1]; i += 16)
                __builtin_prefetch(in + i);
        }
        for (size_t i = image_entries[image]; i < image_entries[image + 1]; i++)
            starts[entry_key(in[i]) + 1]++;
    }
    for (size_t p = 0; p < pairs; p++)
        starts[p + 1] += starts[p];
    /* Each pair's start moves on as its entries go in, to the next's. */
    for (size_t n = first; n < end; n++) {
        const size_t image = batch_image(e, n);
        for (size_t i = image_entries[image]; i < image_entries[image + 1]; i++)
            out[starts[entry_key(in[i])]++] = entry_pack(n - first, entry_pixels(in[i]));
    }
    memmove(starts + 1, starts, pairs * sizeof *starts);
    starts[0] = 0;
}

static void update_params(const struct engine *e, size_t first, size_t count);

/* GCC keeps the probe's accumulators in registers only when it unrolls the
 * lane loop completely, which it does at -O3. */
#ifdef __GNUC__
#define ALWAYS_INLINE __attribute__((always_inline))
#else
#define ALWAYS_INLINE
#endif
#if defined(__GNUC__) && !defined(__clang__)
#define PROBE_OPTIMIZE __attribute__((optimize("O3")))
#define UNROLL_ROWS _Pragma("GCC unroll 16")
#elif defined(__clang__)
#define PROBE_OPTIMIZE
#define UNROLL_ROWS _Pragma("unroll")
#else
#define PROBE_OPTIMIZE
#define UNROLL_ROWS
#endif

#define PASTE_(a, b, c) a##b##c
#define PASTE(a, b, c) PASTE_(a, b, c)
#define STRING_(x) #x
#define STRING(x) STRING_(x)

/* Each instruction set's dense tile fills most of its vector registers
 * with accumulators: 4 x 2 SSE vectors, 6 x 2 AVX2 ones, 8 x 2 AVX-512
 * ones.  The shape changes only which outputs share a call, never a bit.
 * The first layer's forward tile is 512 bytes of a row on AVX2 as on
 * AVX-512: on AVX2 the pair's weight rows no longer fit in registers, but
 * each pass down the block's lists serves twice the columns (784-256-10,
 * batch 256: 0.161 -> 0.145 s an epoch at 256 bytes and 512; 1024 was
 * no faster). */
#define KERNEL_TARGET
#define KERNEL_ISA portable
#define KERNEL_ROWS 4
#define KERNEL_COLUMN_BYTES 32
#define KERNEL_FORWARD_BYTES 128
#define KERNEL_SPARSE_BYTES 128
#include "kernels_isa.h"

#ifdef HAVE_X86_KERNELS
#define KERNEL_TARGET __attribute__((target("avx2,fma")))
#define KERNEL_ISA avx2
#define KERNEL_ROWS 6
#define KERNEL_COLUMN_BYTES 64
#define KERNEL_FORWARD_BYTES 512
#define KERNEL_SPARSE_BYTES 128
#include "kernels_isa.h"

#define KERNEL_TARGET __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")))
#define KERNEL_ISA avx512
#define KERNEL_ROWS 8
#define KERNEL_COLUMN_BYTES 128
#define KERNEL_FORWARD_BYTES 512
#define KERNEL_SPARSE_BYTES 512
#include "kernels_isa.h"
#endif

/* The instruction sets this build has kernels for, best first. */
static const struct isa {
    const char *name;
    const struct kernel_set *f32, *f64;
} isas[] = {
#ifdef HAVE_X86_KERNELS
    {"avx512", &kernels_f32_avx512, &kernels_f64_avx512},
    {"avx2", &kernels_f32_avx2, &kernels_f64_avx2},
#endif
    {"portable", &kernels_f32_portable, &kernels_f64_portable},
};
enum { ISA_COUNT = sizeof isas / sizeof *isas };

static bool isa_supported(const struct isa *isa)
{
#ifdef HAVE_X86_KERNELS
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (strcmp(isa->name, "avx512") == 0)
        return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
    if (strcmp(isa->name, "avx2") == 0)
        return avx2;
#endif
    return strcmp(isa->name, "portable") == 0;
}

size_t kernel_isa_count(void)
{
    return ISA_COUNT;
}

const char *kernel_isa_name(size_t i)
{
    return i < ISA_COUNT ? isas[i].name : NULL;
}

bool kernel_isa_supported(size_t i)
{
    return i < ISA_COUNT && isa_supported(&isas[i]);
}

/* The best instruction set this CPU runs (portable, at worst). */
static const struct isa *best_isa(void)
{
    for (size_t i = 0; i < ISA_COUNT; i++)
        if (isa_supported(&isas[i]))
            return &isas[i];
    return &isas[ISA_COUNT - 1];
}

/* The named instruction set; with no name, the one in $MNIST_OMP_ISA, or the
 * best this CPU runs. */
static const struct isa *find_isa(const char *name, struct error *err)
{
    if (!name)
        name = getenv("MNIST_OMP_ISA");
    if (!name || !*name)
        return best_isa();
    for (size_t i = 0; i < ISA_COUNT; i++) {
        if (strcmp(isas[i].name, name) != 0)
            continue;
        if (isa_supported(&isas[i]))
            return &isas[i];
        error_set(err, "this CPU cannot run the %s kernels", name);
        return NULL;
    }
    error_set(err, "unknown instruction set '%s' (MNIST_OMP_ISA): this build has %s", name,
              ISA_COUNT == 3 ? "avx512, avx2 and portable" : "portable");
    return NULL;
}

static const struct kernel_set *kernels_for(const struct isa *isa, enum precision precision)
{
    return precision == PRECISION_F64 ? isa->f64 : isa->f32;
}

size_t engine_unit_row(size_t n, size_t u)
{
    return u * n / engine_unit_count(n);
}

size_t engine_unit_count(size_t n)
{
    const size_t units = (n + UNIT_SAMPLES - 1) / UNIT_SAMPLES;
    if (n >= PARALLEL_UNITS * MIN_UNIT_SAMPLES && units < PARALLEL_UNITS)
        return PARALLEL_UNITS;
    return units ? units : 1;
}

/* Walks the units [first, end) as a range's walk does (see the tree),
 * leaving its pieces' nodes in stack (2 * TREE_LEVELS of them); returns
 * how many, and in *depth the deepest the stack grew (the partials the
 * walk needs). */
static size_t tree_walk(size_t first, size_t end, struct tree_node *stack, size_t *depth)
{
    size_t n = 0;
    *depth = 0;
    for (size_t u = first; u < end; u++) {
        stack[n++] = (struct tree_node){0, u};
        if (n > *depth)
            *depth = n;
        while (n >= 2 && tree_siblings(stack[n - 2], stack[n - 1])) {
            stack[n - 2] = tree_parent(stack[n - 2]);
            n--;
        }
    }
    return n;
}

static size_t bit_count(size_t x)
{
    size_t n = 0;
    for (; x; x &= x - 1)
        n++;
    return n;
}

/* How many pieces the walk over the units [first, end) leaves (as
 * tree_walk's count, without walking): for the highest bit j where first
 * and end differ, one for each 1 of m - first and of end - m, m being end
 * with its bits below j cleared. */
static size_t tree_pieces(size_t first, size_t end)
{
    if (end <= first)
        return 0;
    size_t j = 8 * sizeof(size_t) - 1;
    while (!((first ^ end) >> j & 1))
        j--;
    const size_t m = end >> j << j;
    return bit_count(m - first) + bit_count(end - m);
}

size_t engine_piece_count(size_t first, size_t end, int threads)
{
    const size_t units = end - first;
    const size_t ranges = units < (size_t)threads ? units : (size_t)threads;
    size_t total = 0;
    for (size_t r = 0; r < ranges; r++)
        total += tree_pieces(first + r * units / ranges, first + (r + 1) * units / ranges);
    return total;
}

size_t engine_partial_count(size_t n, int threads)
{
    return engine_piece_count(0, engine_unit_count(n), threads);
}

/* Rounds a count of elements up so that consecutive blocks start on separate
 * cache lines (no false sharing between partials). */
static size_t padded_count(size_t count, size_t element_size)
{
    const size_t per_line = ENGINE_ALIGNMENT / element_size;
    return (count + per_line - 1) / per_line * per_line;
}

/* The elements between rows of layer l's outputs (activations[l + 1])
 * and of their gradient: the width, and a cache line more for a hidden
 * layer whose rows would be crowded (784-512-512-10, batch 128, 1 thread:
 * the first layer's forward 0.353 -> 0.253 s an epoch, the second's
 * weight gradient 0.630 -> 0.488 s).  The logits keep their width: the
 * loss and the predictions read them as rows of it. */
static size_t output_stride(const struct engine *e, size_t l)
{
    const size_t width = e->shape.widths[l + 1], real = precision_size(e->shape.precision);
    return l + 1 < e->shape.n_layers && crowded_rows(width * real)
               ? width + ENGINE_ALIGNMENT / real
               : width;
}

/* count x size bytes on a cache line, not cleared (the engine writes every
 * element before reading it, so untouched pages cost no memory); NULL when
 * the product overflows or memory is short. */
static void *aligned_array(size_t count, size_t size, size_t element_size)
{
    if (size && count > SIZE_MAX / size / element_size / 2)
        return NULL;
    const size_t elements = count * size;
    const size_t bytes = padded_count(elements ? elements : 1, element_size) * element_size;
    return aligned_alloc(ENGINE_ALIGNMENT, bytes);
}

/* Room for `entries` entries of batch pairs. */
static int batch_pairs_reserve(struct batch_pairs *bp, size_t entries)
{
    if (entries <= bp->capacity && bp->entries)
        return 0;
    uint32_t *grown = realloc(bp->entries, (entries + 1) * sizeof *grown);
    if (!grown)
        return -1;
    bp->entries = grown;
    bp->capacity = entries;
    return 0;
}

/* Room for the blocks of `rows` rows in `units` units (each unit's last
 * block may be short). */
static int batch_pairs_blocks(struct batch_pairs *bp, size_t rows, size_t units)
{
    const size_t blocks = (rows + FORWARD_ROWS - 1) / FORWARD_ROWS + units;
    if (units <= bp->unit_capacity && blocks <= bp->block_capacity)
        return 0;
    free(bp->unit_block);
    free(bp->block_first);
    free(bp->block_row);
    free(bp->pair_offsets);
    bp->unit_block = calloc(units + 1, sizeof(size_t));
    bp->block_first = calloc(blocks + 1, sizeof(size_t));
    bp->block_row = calloc(blocks + 1, sizeof(size_t));
    bp->pair_offsets = aligned_array(blocks, bp->offsets_stride, sizeof(uint32_t));
    const bool ok = bp->unit_block && bp->block_first && bp->block_row && bp->pair_offsets;
    bp->unit_capacity = ok ? units : 0;
    bp->block_capacity = ok ? blocks : 0;
    return ok ? 0 : -1;
}

/* Where each block's entries of the current batch go, unless the whole
 * dataset's lists are already built; sets fill_pairs.  -1: out of memory
 * (a batch that repeats images may have more entries than the dataset). */
static int batch_pairs_plan(struct engine *e)
{
    struct batch_pairs *bp = &e->batch_pairs;
    const size_t *starts = e->pixels.image_entries;
    const size_t rows = block_rows(e);
    e->fill_pairs = e->batch || bp->whole != e->count || bp->whole_units != e->units ||
                    rows != e->block_rows;
    e->block_rows = rows;
    if (!e->fill_pairs)
        return 0;
    bp->whole = 0;
    if (batch_pairs_blocks(bp, e->count, e->unit_end - e->unit_first) < 0)
        return -1;
    size_t block = 0, entries = 0;
    for (size_t u = e->unit_first; u < e->unit_end; u++) {
        bp->unit_block[u - e->unit_first] = block;
        const size_t unit_end = unit_row(e, u + 1);
        for (size_t n = unit_row(e, u); n < unit_end; block++) {
            bp->block_row[block] = n;
            bp->block_first[block] = entries;
            for (const size_t end = unit_end - n < rows ? unit_end : n + rows; n < end; n++)
                entries += starts[batch_image(e, n) + 1] - starts[batch_image(e, n)];
        }
    }
    bp->unit_block[e->unit_end - e->unit_first] = bp->blocks = block;
    bp->block_row[block] = e->count;
    bp->block_first[block] = entries;
    if (batch_pairs_reserve(bp, entries) < 0)
        return -1;
    if (!e->batch) {
        bp->whole = e->count;
        bp->whole_units = e->units;
    }
    return 0;
}

void engine_destroy(struct engine *e)
{
    if (!e)
        return;
    pixel_lists_free(&e->pixels);
    free(e->batch_pairs.block_first);
    free(e->batch_pairs.block_row);
    free(e->batch_pairs.unit_block);
    free(e->batch_pairs.pair_offsets);
    free(e->batch_pairs.entries);
    free(e->grad);
    free(e->partials);
    for (size_t l = 0; l <= MLP_MAX_LAYERS; l++)
        free(e->activations[l]);
    for (size_t l = 0; l < MLP_MAX_LAYERS; l++)
        free(e->transposed[l]);
    free(e->deltas[0]);
    free(e->deltas[1]);
    free(e->zero_row);
    free(e->row_loss);
    free(e->unit_loss);
    free(e->profile);
    free(e->phases);
    free(e->range_partial);
    free(e->scratch);
    free(e->pieces);
    free(e);
}

/* An engine for batches of up to `capacity` images of ds; `training` adds
 * what the backward pass needs. */
static int engine_new(struct engine **out, const struct mlp *m, const struct dataset *ds,
                      const struct isa *isa, int threads, size_t capacity, bool training,
                      struct error *err)
{
    const size_t L = m->n_layers, real = precision_size(m->precision);
    *out = NULL;
    struct engine *e = calloc(1, sizeof *e);
    if (!e)
        return error_set(err, "out of memory");
    e->kernels = kernels_for(isa, m->precision);
    e->ds = ds;
    e->shape = *m;
    e->shape.params = NULL;
    e->capacity = capacity;
    e->n_params = mlp_param_count(m);
    engine_use_threads(e, threads);
    e->kernels->fill_pixel_values(&e->pixel_values);
    e->pixel_value = &e->pixel_values;
    if (m->precision == PRECISION_F64)
        e->one.f64 = 1;
    else
        e->one.f32 = 1;
    if (pixel_lists_build(&e->pixels, ds, err) < 0) {
        free(e);
        return -1;
    }

    bool ok = (e->zero_row = calloc(m->widths[1], real)) != NULL;
    size_t widest_hidden = 0;  /* the longest rows of a hidden layer's outputs */
    for (size_t l = 1; l <= L; l++) {
        const size_t stride = output_stride(e, l - 1);
        ok = ok && (e->activations[l] = aligned_array(capacity, stride, real)) != NULL;
        if (l < L && stride > widest_hidden)
            widest_hidden = stride;
    }
    if (training) {
        e->partial_stride = padded_count(e->n_params, real);
        ok = ok && (e->grad = aligned_array(e->partial_stride, 1, real)) != NULL;
        for (size_t d = 0; d < 2 && L > 1; d++)
            ok = ok && (e->deltas[d] = aligned_array(capacity, widest_hidden, real)) != NULL;
        for (size_t l = 1; l < L; l++)
            ok = ok && (e->transposed[l] = aligned_array(m->widths[l + 1],
                                                         output_stride(e, l - 1), real)) != NULL;
        ok = ok && (e->row_loss = calloc(capacity, sizeof *e->row_loss)) != NULL;
        ok = ok && (e->unit_loss = calloc(engine_unit_count(capacity), sizeof *e->unit_loss)) !=
                         NULL;
        ok = ok && (e->phases = malloc((L + 2) * sizeof *e->phases)) != NULL;
    }
    e->batch_pairs.offsets_stride = padded_count(e->pixels.pairs + 1, sizeof(uint32_t));
    ok = ok && batch_pairs_blocks(&e->batch_pairs, capacity, engine_unit_count(capacity)) == 0;
    ok = ok && batch_pairs_reserve(&e->batch_pairs,
                                   e->pixels.image_entries[training ? ds->count : 0]) == 0;
    if (!ok) {
        const size_t params = e->n_params;
        engine_destroy(e);
        return error_set(err, "out of memory for the engine's buffers (%zu images of a "
                              "network of %zu parameters)",
                         capacity, params);
    }
    *out = e;
    return 0;
}

int engine_create(struct engine **out, const struct mlp *m, const struct dataset *ds,
                  const char *isa_name, int threads, struct error *err)
{
    *out = NULL;
    if (ds->count == 0)
        return error_set(err, "cannot train on an empty training set");
    if (mlp_check_inputs(m, dataset_image_size(ds), err) < 0)
        return -1;
    const struct isa *isa = find_isa(isa_name, err);
    if (!isa)
        return -1;
    return engine_new(out, m, ds, isa, threads, ds->count, true, err);
}

int engine_load_pixel_lists(struct engine *e, const struct pixel_lists *images,
                            struct error *err)
{
    e->batch_pairs.whole = 0;
    if (images->count > e->capacity || images->width != e->pixels.width)
        return error_set(err, "%zu images of %zu pixels for an engine made for %zu of %zu",
                         images->count, images->width, e->capacity, e->pixels.width);
    if (pixel_lists_copy(&e->pixels, images) < 0)
        return error_set(err, "out of memory for the pixels of %zu images", images->count);
    return 0;
}

void engine_use_threads(struct engine *e, int threads)
{
    e->threads = threads > 0 ? threads : engine_max_threads();
    /* The profile has room for the threads it started with. */
    free(e->profile);
    e->profile = NULL;
}

int engine_profile_start(struct engine *e)
{
    free(e->profile);
    e->profile = aligned_array((size_t)e->threads, PROFILE_STRIDE, sizeof *e->profile);
    if (!e->profile)
        return -1;
    memset(e->profile, 0, (size_t)e->threads * PROFILE_STRIDE * sizeof *e->profile);
    e->profile_steps = 0;
    e->profile_images = 0;
    return 0;
}

void engine_profile_read(const struct engine *e, struct engine_profile *out)
{
    memset(out, 0, sizeof *out);
    if (!e->profile)
        return;
    for (int t = 0; t < e->threads; t++) {
        const double *slots = e->profile + (size_t)t * PROFILE_STRIDE;
        for (size_t l = 0; l < MLP_MAX_LAYERS; l++)
            for (size_t k = 0; k < ENGINE_KERNELS; k++)
                out->seconds[l][k] += slots[profile_slot(l, (enum engine_kernel)k)];
        out->other_seconds += slots[PROFILE_OTHER];
        out->update_seconds += slots[PROFILE_UPDATE];
    }
    out->steps = e->profile_steps;
    out->images = e->profile_images;
}

const char *engine_isa(const struct engine *e)
{
    return e->kernels->isa;
}

const char *engine_best_isa(void)
{
    struct error ignored;
    const struct isa *isa = find_isa(NULL, &ignored);
    return isa ? isa->name : "none";
}

/* Counts a phase's items and sets the chunks threads take them in: a few
 * per thread, so that the cheap items of a small layer cost little
 * scheduling while threads that finish early take more. */
static void phase_seal(const struct engine *e, struct phase *p)
{
    p->first[0] = 0;
    for (size_t j = 0; j < p->n_jobs; j++)
        p->first[j + 1] = p->first[j] + e->kernels->item_count(e, &p->jobs[j]);
    p->items = p->first[p->n_jobs];
    p->ranged_items = 0;
    for (size_t k = 0; k < p->n_ranged; k++) {
        p->ranged_tiles[k] = e->kernels->item_count(e, &p->ranged[k]);
        p->ranged_items += p->ranged_tiles[k] * e->ranges;
    }
    p->chunk = p->items / ((size_t)e->threads * CHUNKS_PER_THREAD) + 1;
}

static inline int team_size(void)
{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* Runs the phases in order in one parallel region (the threads wait for
 * each other between phases, and start once a step).  In each, thread t
 * first walks ranges t, t + team, ... (range t alone, unless the team is
 * smaller than planned), or, with fewer ranges than threads, all threads
 * share out the ranges' tiles; then they share out the rest.  Each thread
 * finds an item's job from the job of its previous item. */
static void run_phases(const struct engine *e, const struct phase *phases, size_t n_phases)
{
#pragma omp parallel num_threads(e->threads) if (e->threads > 1)
    for (size_t ph = 0; ph < n_phases; ph++) {
        const struct phase *p = &phases[ph];
        const size_t team = (size_t)team_size();
        size_t j = 0;
        double mark = profile_mark(e);
        if (e->ranges >= team) {
            for (size_t r = (size_t)thread_number(); r < e->ranges; r += team)
                for (size_t k = 0; k < p->n_ranged; k++) {
                    for (size_t tile = 0; tile < p->ranged_tiles[k]; tile++)
                        e->kernels->run_range_tile(e, &p->ranged[k], r, tile);
                    profile_charge(e, p->ranged[k].profile_slot, &mark);
                }
        } else {
#pragma omp for schedule(dynamic) nowait
            for (size_t t = 0; t < p->ranged_items; t++) {
                const size_t k = t < p->ranged_tiles[0] * e->ranges ? 0 : 1;
                const size_t i = k ? t - p->ranged_tiles[0] * e->ranges : t;
                e->kernels->run_range_tile(e, &p->ranged[k], i / p->ranged_tiles[k],
                                           i % p->ranged_tiles[k]);
                profile_charge(e, p->ranged[k].profile_slot, &mark);
            }
        }
#pragma omp for schedule(dynamic, p->chunk)
        for (size_t t = 0; t < p->items; t++) {
            if (t < p->first[j])
                j = 0;
            while (t >= p->first[j + 1])
                j++;
            e->kernels->run_item(e, &p->jobs[j], t - p->first[j], &mark);
            profile_charge(e, p->jobs[j].profile_slot, &mark);
        }
    }
}

static const void *layer_weights(const struct mlp *m, size_t l)
{
    return (const char *)m->params + mlp_layer(m, l).weights * precision_size(m->precision);
}

static const void *layer_bias(const struct mlp *m, size_t l)
{
    return (const char *)m->params + mlp_layer(m, l).bias * precision_size(m->precision);
}

/* Adds to p the current batch through the network, a block of rows at a
 * time through every layer (a row's outputs depend on that row alone, so a
 * step waits for the threads once for the whole forward pass): each
 * layer's outputs in activations[l + 1], the last the logits, which
 * with_loss turns into the loss's gradient, each row's loss in row_loss.
 * The phase's other jobs must not depend on it. */
static void plan_forward(struct engine *e, const struct mlp *m, struct phase *p, bool with_loss)
{
    const size_t L = m->n_layers;
    for (size_t l = 0; l < L; l++) {
        const struct mlp_layer layer = mlp_layer(m, l);
        e->forward[l] = (struct product){
            .c = e->activations[l + 1],
            .crs = output_stride(e, l),
            .a = l ? e->activations[l] : NULL,
            .ars = l ? output_stride(e, l - 1) : layer.n_in,
            .aks = 1,
            .b = layer_weights(m, l),
            .brs = layer.n_out,
            .rows = e->count,
            .columns = layer.n_out,
            .depth = layer.n_in,
            .finish = l + 1 < L ? FINISH_ACTIVATE : FINISH_BIAS,
            .bias = layer_bias(m, l),
            .activation = m->activation,
        };
    }
    /* The layers charge their own time; what is left of an item, the loss. */
    p->jobs[p->n_jobs++] =
        (struct job){.kind = JOB_FORWARD, .with_loss = with_loss, .profile_slot = PROFILE_OTHER};
}

/* The gradient of the loss with respect to layer l's outputs (its
 * pre-activations): the last layer's replaces the logits, the hidden
 * layers' take turns in two buffers. */
static void *output_gradient(const struct engine *e, size_t l)
{
    return l + 1 == e->shape.n_layers ? e->activations[l + 1] : e->deltas[l % 2];
}

/* The phase of layer l's weight and bias gradients, each range's (the
 * complete subtrees of its units' partials) and, but for the first layer,
 * the gradient of its inputs' pre-activations. */
static void plan_backward_layer(const struct engine *e, const struct mlp *m, size_t l,
                                struct phase *p)
{
    const struct mlp_layer layer = mlp_layer(m, l);
    const char *dz = output_gradient(e, l);
    const size_t slot = profile_slot(l, ENGINE_WEIGHT_GRADIENT);

    /* A unit's rows start where its first row is: unit_tile moves a and b. */
    const struct product weights = {
        .crs = layer.n_out,
        .a = l ? e->activations[l] : NULL,
        .ars = 1,
        .aks = l ? output_stride(e, l - 1) : layer.n_in,
        .b = dz,
        .brs = output_stride(e, l),
        .rows = layer.n_in,
        .columns = layer.n_out,
        .finish = FINISH_NONE,
    };
    const struct product bias = {
        .crs = layer.n_out,
        .a = &e->one,
        .b = dz,
        .brs = output_stride(e, l),
        .rows = 1,
        .columns = layer.n_out,
        .finish = FINISH_NONE,
    };
    p->n_ranged = 2;
    p->ranged[0] = (struct job){.kind = l ? JOB_GRADIENT : JOB_SPARSE_GRADIENT,
                                .product = weights,
                                .offset = layer.weights,
                                .profile_slot = slot};
    p->ranged[1] =
        (struct job){.kind = JOB_GRADIENT, .product = bias, .offset = layer.bias, .profile_slot = slot};
    p->n_jobs = 0;
    if (l) {
        const struct product inputs = {
            .c = output_gradient(e, l - 1),
            .crs = output_stride(e, l - 1),
            .a = dz,
            .ars = output_stride(e, l),
            .aks = 1,
            .b = e->transposed[l],
            .brs = output_stride(e, l - 1),
            .rows = e->count,
            .columns = layer.n_in,
            .depth = layer.n_out,
            .finish = FINISH_DERIVATIVE,
            .activations = e->activations[l],
            .activation = m->activation,
        };
        p->jobs[p->n_jobs++] = (struct job){.kind = JOB_PRODUCT,
                                            .product = inputs,
                                            .profile_slot = profile_slot(l, ENGINE_INPUT_GRADIENT)};
    }
}

/* Room for n pieces (their contents go). */
static int reserve_pieces(struct engine *e, size_t n)
{
    if (n <= e->pieces_capacity)
        return 0;
    free(e->pieces);
    e->pieces = malloc(n * sizeof *e->pieces);
    e->pieces_capacity = e->pieces ? n : 0;
    return e->pieces ? 0 : -1;
}

/* Cuts this process's units into ranges, one a thread (at most), and lays
 * out each range's scratch (as deep as its walk's stack grows) and its
 * partials (one for each piece its walk leaves), unless the step is cut
 * as the last was.  -1: out of memory. */
static int plan_units(struct engine *e)
{
    const size_t units = e->unit_end - e->unit_first;
    const size_t ranges = units < (size_t)e->threads ? units : (size_t)e->threads;
    if (e->planned_total == e->total && e->planned_threads == (size_t)e->threads &&
        e->planned_first == e->unit_first && e->planned_end == e->unit_end && e->range_partial)
        return 0;
    e->planned_total = 0;
    if (ranges + 1 > e->ranges_capacity) {
        free(e->range_partial);
        e->range_partial = malloc((ranges + 1) * sizeof *e->range_partial);
        if (!e->range_partial) {
            e->ranges_capacity = 0;
            return -1;
        }
        e->ranges_capacity = ranges + 1;
    }
    e->ranges = ranges;
    struct tree_node stack[2 * TREE_LEVELS];
    size_t partials = 0, depth;
    e->levels = 0;
    for (size_t r = 0; r < ranges; r++) {
        size_t first, end;
        range_units(e, r, &first, &end);
        e->range_partial[r] = partials;
        partials += tree_walk(first, end, stack, &depth);
        if (depth > e->levels)
            e->levels = depth;
    }
    e->range_partial[ranges] = partials;
    /* New scratch and partials are untouched: each thread's scratch and
     * each range's partials are first touched by the thread that uses them
     * (when every range has a thread of its own). */
    /* A dense tile, or the first layer's two rows of a pair. */
    e->tile_elements = e->kernels->tile_elements > 2 * e->shape.widths[1]
                           ? e->kernels->tile_elements
                           : 2 * e->shape.widths[1];
    const size_t scratch =
        (size_t)e->threads * e->levels * e->tile_elements * precision_size(e->shape.precision);
    if (scratch > e->scratch_capacity) {
        free(e->scratch);
        e->scratch = aligned_array(scratch, 1, 1);
        e->scratch_capacity = e->scratch ? scratch : 0;
        if (!e->scratch)
            return -1;
    }
    if (e->placed && partials > e->placed_count)
        return -1;
    if (!e->placed && partials > e->partial_capacity + 1) {
        free(e->partials);
        e->partials = aligned_array(partials - 1, e->partial_stride,
                                    precision_size(e->shape.precision));
        e->partial_capacity = e->partials ? partials - 1 : 0;
        if (!e->partials)
            return -1;
    }
    /* A range leaves a piece for each of its partials. */
    if (reserve_pieces(e, partials) < 0)
        return -1;
    e->n_pieces = 0;
    for (size_t r = 0; r < ranges; r++) {
        size_t first, end;
        range_units(e, r, &first, &end);
        const size_t left = tree_walk(first, end, stack, &depth);
        for (size_t i = 0; i < left; i++)
            e->pieces[e->n_pieces++] =
                (struct engine_piece){stack[i].level, stack[i].index,
                                      partial(e, e->range_partial[r] + i)};
    }
    e->planned_total = e->total;
    e->planned_threads = (size_t)e->threads;
    e->planned_first = e->unit_first;
    e->planned_end = e->unit_end;
    return 0;
}

/* The step's batch: this process's rows are the images batch[0 .. count)
 * (NULL: ds in order), the units [unit_first, unit_end) of a batch of
 * `total`. */
static void set_share(struct engine *e, const size_t *batch, size_t count, size_t total,
                      size_t unit_first, size_t unit_end)
{
    e->batch = batch;
    e->count = count;
    e->total = total;
    e->units = engine_unit_count(total);
    e->unit_first = unit_first;
    e->unit_end = unit_end;
    e->row_first = engine_unit_row(total, unit_first);
}

/* All of a batch of count this process's. */
static void set_batch(struct engine *e, const size_t *batch, size_t count)
{
    set_share(e, batch, count, count, 0, engine_unit_count(count));
}

/* Plans the phases of a step on the batch set_batch set: the forward pass
 * beside the transposes of W, the backward pass layer by layer, then the
 * update of the update phase (a phase of its own that first adds up the
 * ranges' pieces, block by block) or, without one, the sum of the pieces.
 * Returns the number of phases, 0 when memory runs out. */
static size_t plan_step(struct engine *e, const struct mlp *m, bool update)
{
    const size_t L = m->n_layers;
    struct phase *phases = e->phases;

    if (e->count > e->capacity)
        return 0;
    if (e->profile) {
        e->profile_steps++;
        e->profile_images += e->count;
    }
    if (plan_units(e) < 0 || batch_pairs_plan(e) < 0)
        return 0;
    /* The forward pass's heavy items first, so that the transposes' light
     * ones even out the end of the phase. */
    phases[0].n_ranged = phases[0].n_jobs = 0;
    plan_forward(e, m, &phases[0], true);
    for (size_t l = 1; l < L; l++) {
        const struct mlp_layer layer = mlp_layer(m, l);
        phases[0].jobs[phases[0].n_jobs++] = (struct job){
            .kind = JOB_TRANSPOSE,
            .product = {.c = e->transposed[l], .crs = output_stride(e, l - 1),
                        .a = layer_weights(m, l), .rows = layer.n_in, .columns = layer.n_out},
            .profile_slot = PROFILE_OTHER,
        };
    }
    for (size_t l = L; l-- > 0;)
        plan_backward_layer(e, m, l, &phases[L - l]);
    size_t n = L + 1;
    if (update || e->n_pieces > 1) {
        phases[n].n_ranged = 0;
        phases[n].n_jobs = 1;
        phases[n++].jobs[0] =
            (struct job){.kind = update ? JOB_UPDATE : JOB_SUM_PARTIALS,
                         .sum_pieces = true,
                         .profile_slot = update ? PROFILE_UPDATE : PROFILE_OTHER};
    }
    for (size_t ph = 0; ph < n; ph++)
        phase_seal(e, &phases[ph]);
    return n;
}

void engine_unit_losses(const struct engine *e, double *out)
{
    for (size_t u = e->unit_first; u < e->unit_end; u++) {
        double unit_loss = 0;
        for (size_t n = unit_row(e, u); n < unit_row(e, u + 1); n++)
            unit_loss += e->row_loss[n];
        out[u - e->unit_first] = unit_loss;
    }
}

double engine_batch_loss(const struct mlp *m, const double *unit_losses, size_t total)
{
    double sum = 0;
    for (size_t u = 0; u < engine_unit_count(total); u++)
        sum += unit_losses[u];
    if (m->loss == LOSS_MSE)
        return sum / ((double)total * (double)mlp_outputs(m));
    return (1.0 / (double)total) * sum;
}

/* The batch's loss, all of whose units are this process's. */
static double batch_loss(const struct engine *e, const struct mlp *m)
{
    engine_unit_losses(e, e->unit_loss);
    return engine_batch_loss(m, e->unit_loss, e->total);
}

double engine_batch_gradient(struct engine *e, const struct mlp *m, const size_t *batch,
                             size_t count)
{
    set_batch(e, batch, count);
    const size_t phases = plan_step(e, m, false);
    if (!phases)
        return NAN;
    run_phases(e, e->phases, phases);
    return batch_loss(e, m);
}

const void *engine_gradient(const struct engine *e)
{
    return e->n_pieces ? e->pieces[0].partial : e->grad;
}

static void set_update(struct engine *e, struct mlp *m, const struct optimizer *o,
                       const struct optimizer_step *step, const struct optimizer_state *s)
{
    e->update = (struct update){.optimizer = o, .step = step, .state = s, .params = m->params};
}

/* The update phase alone, first adding up the pieces (sum_pieces) unless
 * the gradient was already summed. */
static void run_update(struct engine *e, struct mlp *m, const struct optimizer *o,
                       const struct optimizer_step *step, const struct optimizer_state *s,
                       bool sum_pieces)
{
    struct phase *update = &e->phases[0];
    set_update(e, m, o, step, s);
    update->n_ranged = 0;
    update->n_jobs = 1;
    update->jobs[0] = (struct job){
        .kind = JOB_UPDATE, .sum_pieces = sum_pieces, .profile_slot = PROFILE_UPDATE};
    phase_seal(e, update);
    run_phases(e, update, 1);
}

void engine_update(struct engine *e, struct mlp *m, const struct optimizer *o,
                   const struct optimizer_step *step, const struct optimizer_state *s)
{
    run_update(e, m, o, step, s, false);
}

double engine_train_step(struct engine *e, struct mlp *m, const size_t *batch, size_t count,
                         const struct optimizer *o, const struct optimizer_step *step,
                         const struct optimizer_state *s)
{
    set_batch(e, batch, count);
    const size_t phases = plan_step(e, m, true);
    if (!phases)
        return NAN;
    set_update(e, m, o, step, s);
    run_phases(e, e->phases, phases);
    return batch_loss(e, m);
}

int engine_share_gradient(struct engine *e, const struct mlp *m, const size_t *batch,
                          size_t count, size_t total, size_t unit_first, size_t unit_end)
{
    set_share(e, batch, count, total, unit_first, unit_end);
    if (engine_unit_row(total, unit_end) - e->row_first != count)
        return -1;
    const size_t phases = plan_step(e, m, false);
    if (!phases)
        return -1;
    /* The pieces are added up once every process's are at hand. */
    run_phases(e, e->phases, m->n_layers + 1);
    return 0;
}

size_t engine_partial_bytes(const struct engine *e)
{
    return e->partial_stride * precision_size(e->shape.precision);
}

void engine_place_pieces(struct engine *e, void *memory, size_t count)
{
    if (memory != e->placed || count != e->placed_count)
        e->planned_total = 0;  /* the pieces' addresses are the plan's */
    e->placed = memory;
    e->placed_count = memory ? count : 0;
}

int engine_threads(const struct engine *e)
{
    return e->threads;
}

size_t engine_pieces(const struct engine *e, const struct engine_piece **pieces)
{
    *pieces = e->pieces;
    return e->n_pieces;
}

int engine_update_from_pieces(struct engine *e, struct mlp *m, const struct engine_piece *pieces,
                              size_t n_pieces, const struct optimizer *o,
                              const struct optimizer_step *step, const struct optimizer_state *s)
{
    e->planned_total = 0;  /* the next step lays out its own pieces again */
    if (reserve_pieces(e, n_pieces) < 0)
        return -1;
    memcpy(e->pieces, pieces, n_pieces * sizeof *pieces);
    e->n_pieces = n_pieces;
    run_update(e, m, o, step, s, true);
    return 0;
}

/* Updates the parameters [first, first + count) (JOB_UPDATE). */
static void update_params(const struct engine *e, size_t first, size_t count)
{
    const struct update *u = &e->update;
    optimizer_apply(u->optimizer, u->step, u->state, e->shape.precision, engine_isa(e), u->params,
                    engine_gradient(e), first, count);
}

int mlp_predict(const struct mlp *m, const struct dataset *ds, double *logits,
                struct error *err)
{
    if (mlp_check_inputs(m, dataset_image_size(ds), err) < 0)
        return -1;
    if (ds->count == 0)
        return 0;
    const struct isa *isa = find_isa(NULL, err);
    if (!isa)
        return -1;
    struct engine *e;
    const size_t capacity = ds->count < BLOCK_IMAGES ? ds->count : BLOCK_IMAGES;
    if (engine_new(&e, m, ds, isa, 1, capacity, false, err) < 0)
        return -1;
    const size_t O = mlp_outputs(m);
    size_t rows[BLOCK_IMAGES];
    for (size_t first = 0; first < ds->count; first += capacity) {
        const size_t count = ds->count - first < capacity ? ds->count - first : capacity;
        for (size_t i = 0; i < count; i++)
            rows[i] = first + i;
        set_batch(e, rows, count);
        if (batch_pairs_plan(e) < 0) {
            const size_t images = e->count;
            engine_destroy(e);
            return error_set(err, "out of memory for the pixel lists of %zu images", images);
        }
        struct phase forward = {0};
        plan_forward(e, m, &forward, false);
        phase_seal(e, &forward);
        run_phases(e, &forward, 1);
        for (size_t k = 0; k < e->count * O; k++)
            logits[first * O + k] = m->precision == PRECISION_F64
                                        ? ((const double *)e->activations[m->n_layers])[k]
                                        : ((const float *)e->activations[m->n_layers])[k];
    }
    engine_destroy(e);
    return 0;
}

double fma_peak_flops(enum precision precision, int threads, double seconds)
{
    /* The machine's peak, whichever kernels $MNIST_OMP_ISA asks for. */
    const struct kernel_set *kernels = kernels_for(best_isa(), precision);
    double (*probe)(size_t) = kernels->fma_probe;
    size_t rounds = 1 << 16;
    double elapsed;

    /* Double the work until one measurement takes long enough to time. */
    for (;;) {
        const double start = clock_seconds();
        double sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        sink += probe(rounds);
        elapsed = clock_seconds() - start;
        if (elapsed >= seconds || !isfinite(sink))
            break;
        rounds *= 2;
    }
    return 2.0 * (double)kernels->probe_lanes * (double)rounds * (double)threads / elapsed;
}

int engine_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int engine_thread_limit(void)
{
#ifdef _OPENMP
    return omp_get_thread_limit();
#else
    return 1;
#endif
}

/* sched_getcpu is a GNU extension that <sched.h> declares only under
 * _GNU_SOURCE; declared here rather than opening every GNU extension to
 * the whole file. */
#ifdef __linux__
int sched_getcpu(void);
#endif

static int current_cpu(void)
{
#ifdef __linux__
    return sched_getcpu();
#else
    return -1;
#endif
}

int engine_thread_places(int threads, struct thread_place *out)
{
    int team = 1;
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num();
        out[t] = (struct thread_place){t, omp_get_place_num(), current_cpu()};
        if (t == 0)
            team = omp_get_num_threads();
    }
#else
    (void)threads;
    out[0] = (struct thread_place){0, -1, current_cpu()};
#endif
    return team;
}

const char *engine_proc_bind(void)
{
#ifdef _OPENMP
    switch (omp_get_proc_bind()) {
    case omp_proc_bind_true:
        return "true";
    case omp_proc_bind_master:
        return "master";
    case omp_proc_bind_close:
        return "close";
    case omp_proc_bind_spread:
        return "spread";
    default:
        return "false";
    }
#else
    return "false";
#endif
}

int engine_place_count(void)
{
#ifdef _OPENMP
    return omp_get_num_places();
#else
    return 0;
#endif
}
