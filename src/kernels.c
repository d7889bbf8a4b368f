/* The engine: the threads, the buffers, and the choice of kernels.  Every
 * `#pragma omp parallel` of mnist-omp is in this file; the per-sample loops
 * they run are in kernels_impl.h. */
#include <config.h>

#include "kernels.h"

#include "clock.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Slices are what threads share out: 32 keep up to 16 threads busy with
 * little imbalance while the slice-order reduction, which reads every
 * slice's partial gradient, stays cheap.  A slice holds at least
 * MIN_SLICE_SAMPLES samples so that small batches are not cut into slivers.
 * The reduction and the update work on blocks of BLOCK parameters. */
enum { MAX_SLICES = 32, MIN_SLICE_SAMPLES = 128, BLOCK = 1024, ALIGNMENT = 64 };

/* A dataset as the engine stores it: cut into blocks of at most BLOCK_IMAGES
 * consecutive images, and within a block only the images that have a nonzero
 * pixel in a pair of neighbouring pixel columns (2p, 2p + 1), grouped by pair
 * ("runs"), in ascending pair order and, within a run, in ascending image
 * order.  Each entry holds both of the image's pixels, one of which may be
 * zero.  A block's images then go through two rows of W1 (or of dW1) all at
 * once, while those rows are in registers, and the rows come in the order of
 * the inputs, so every sum keeps the reference's order.  Pairs halve the
 * loads and stores of hidden rows per nonzero pixel (neighbouring pixels of a
 * digit are mostly both ink) for little extra arithmetic. */
struct pixel_blocks {
    size_t count, width;      /* images, pixels per image */
    size_t n_slices, n_blocks;
    uint32_t *slice_blocks;   /* n_slices + 1: first block of each slice */
    uint32_t *block_first;    /* n_blocks + 1: first image of each block */
    uint32_t *block_runs;     /* n_blocks + 1: first run of each block */
    uint16_t *run_pair;       /* the pair of pixel columns of each run */
    uint32_t *run_entries;    /* runs + 1: first entry of each run */
    uint8_t *entry_image;     /* image of each entry, counted from its block's first */
    uint8_t *entry_low;       /* its pixel in column 2p, 0-255 */
    uint8_t *entry_high;      /* its pixel in column 2p + 1 (0 past the last column) */
    const uint8_t *labels;    /* borrowed from the dataset */
};

/* Pixel p as an input, p / 255, in one precision.  Every engine, and every
 * call of mlp_predict, has a table of its own: one shared table would be
 * written by engines created at the same time in different threads. */
union pixel_values {
    float f32[256];
    double f64[256];
};

static const void *pixel_values_fill(union pixel_values *values, enum precision precision)
{
    for (int p = 0; p < 256; p++) {
        if (precision == PRECISION_F64)
            values->f64[p] = (double)p / 255.0;
        else
            values->f32[p] = (float)p / 255.0f;
    }
    return precision == PRECISION_F64 ? (const void *)values->f64 : (const void *)values->f32;
}

/* One instruction set's copy of the kernels of kernels_impl.h. */
struct kernel_set {
    const char *isa;
    size_t (*padded_outputs)(size_t n_out);
    size_t (*scratch_count)(size_t n_hidden, size_t n_out);
    size_t (*predict_scratch_count)(size_t n_hidden, size_t n_out);
    void (*arrange_w2)(const struct mlp *m, void *w2_transposed, void *w2_padded);
    double (*slice_gradient)(const struct engine *e, const struct mlp *m, size_t slice);
    void (*sum_partials)(const struct engine *e, size_t first, size_t width);
    void (*descend)(const struct engine *e, struct mlp *m, double lr, size_t first,
                    size_t width);
    void (*predict)(const struct mlp *m, const struct pixel_blocks *blocks,
                    const void *pixel_value, void *scratch, double *out);
    double (*fma_probe)(size_t rounds);
};

struct engine {
    const struct kernel_set *kernels;
    struct mlp_layout layout;
    struct pixel_blocks blocks;
    size_t n_slices;
    size_t partial_stride;  /* elements between two slices' partial gradients */
    size_t scratch_stride;  /* elements between two slices' scratch spaces */
    void *partials;         /* n_slices partial gradients */
    void *scratch;          /* per slice: a block's activations and their gradients */
    void *grad;             /* the summed gradient, layout of params */
    void *w2_transposed;    /* W2 as n_out x n_hidden */
    void *w2_padded;        /* W2 with rows padded to whole tiles */
    double *slice_error;    /* sum of squared errors of each slice */
    int threads;            /* of every parallel region the engine runs */
    union pixel_values pixel_values;
    const void *pixel_value;  /* pixel_values in the model's precision */
};

/* GCC keeps the probe's accumulators in registers only when it unrolls the
 * lane loop completely, which it does at -O3. */
#if defined(__GNUC__) && !defined(__clang__)
#define PROBE_OPTIMIZE __attribute__((optimize("O3")))
#else
#define PROBE_OPTIMIZE
#endif

#define PASTE_(a, b, c) a##b##c
#define PASTE(a, b, c) PASTE_(a, b, c)
#define STRING_(x) #x
#define STRING(x) STRING_(x)

#define KERNEL_TARGET
#define KERNEL_ISA portable
#include "kernels_isa.h"

#ifdef HAVE_X86_KERNELS
#define KERNEL_TARGET __attribute__((target("avx2,fma")))
#define KERNEL_ISA avx2
#include "kernels_isa.h"

#define KERNEL_TARGET __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")))
#define KERNEL_ISA avx512
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

size_t engine_slice_count(size_t n)
{
    size_t slices = (n + MIN_SLICE_SAMPLES - 1) / MIN_SLICE_SAMPLES;
    if (slices > MAX_SLICES)
        slices = MAX_SLICES;
    return slices ? slices : 1;
}

/* Rounds a count of elements up so that consecutive blocks start on separate
 * cache lines (no false sharing between slices). */
static size_t padded_count(size_t count, size_t element_size)
{
    const size_t per_line = ALIGNMENT / element_size;
    return (count + per_line - 1) / per_line * per_line;
}

static void *aligned_zalloc(size_t count, size_t element_size)
{
    const size_t bytes = padded_count(count ? count : 1, element_size) * element_size;
    void *p = aligned_alloc(ALIGNMENT, bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

/* Pairs of pixel columns of images `width` pixels wide. */
static size_t pair_count(size_t width)
{
    return (width + 1) / 2;
}

/* Whether the image has a nonzero pixel in pair p, and its two pixels. */
static bool pair_pixels(const uint8_t *image, size_t width, size_t p, uint8_t *low,
                        uint8_t *high)
{
    *low = image[2 * p];
    *high = 2 * p + 1 < width ? image[2 * p + 1] : 0;
    return *low || *high;
}

/* Counts the entries (images with a nonzero pixel in a pair) and the pairs
 * that have any (the runs) of the images [first, end), into pair_entries
 * (one per pair). */
static void count_block(const struct dataset *ds, size_t first, size_t end,
                        uint32_t *pair_entries, size_t *entries, size_t *runs)
{
    const size_t width = dataset_image_size(ds), pairs = pair_count(width);
    uint8_t low, high;
    memset(pair_entries, 0, pairs * sizeof *pair_entries);
    for (size_t n = first; n < end; n++)
        for (size_t p = 0; p < pairs; p++)
            pair_entries[p] += pair_pixels(ds->pixels + n * width, width, p, &low, &high);
    for (size_t p = 0; p < pairs; p++) {
        *entries += pair_entries[p];
        *runs += pair_entries[p] != 0;
    }
}

/* Calls visit(slice, first, end, context) for every block [first, end) of
 * `count` images cut into `slices` slices, in order. */
static void for_each_block(size_t count, size_t slices,
                           void (*visit)(size_t slice, size_t first, size_t end, void *context),
                           void *context)
{
    for (size_t s = 0; s < slices; s++) {
        const size_t slice_end = (s + 1) * count / slices;
        for (size_t first = s * count / slices; first < slice_end; first += BLOCK_IMAGES)
            visit(s, first,
                  first + BLOCK_IMAGES < slice_end ? first + BLOCK_IMAGES : slice_end, context);
    }
}

struct block_builder {
    const struct dataset *ds;
    struct pixel_blocks *blocks;
    uint32_t *pair_entries;  /* scratch, one per pair of pixel columns */
    size_t entries, runs, n_blocks;
};

static void measure_block(size_t slice, size_t first, size_t end, void *context)
{
    struct block_builder *b = context;
    (void)slice;
    count_block(b->ds, first, end, b->pair_entries, &b->entries, &b->runs);
    b->n_blocks++;
}

/* Lays out one block: its runs in pair order, and in each run the images
 * in ascending order. */
static void fill_block(size_t slice, size_t first, size_t end, void *context)
{
    struct block_builder *b = context;
    struct pixel_blocks *blocks = b->blocks;
    if (first == slice * blocks->count / blocks->n_slices)
        blocks->slice_blocks[slice] = (uint32_t)b->n_blocks;
    const size_t width = blocks->width, pairs = pair_count(width);
    uint32_t *next = b->pair_entries;  /* reused: next free entry of each pair's run */
    size_t entries = 0, runs = 0;
    count_block(b->ds, first, end, b->pair_entries, &entries, &runs);

    uint32_t entry = blocks->run_entries[blocks->block_runs[b->n_blocks]];
    size_t run = blocks->block_runs[b->n_blocks];
    blocks->block_first[b->n_blocks] = (uint32_t)first;
    for (size_t p = 0; p < pairs; p++) {
        const uint32_t in_pair = next[p];
        if (!in_pair)
            continue;
        blocks->run_pair[run] = (uint16_t)p;
        blocks->run_entries[run] = entry;
        next[p] = entry;
        entry += in_pair;
        run++;
    }
    blocks->run_entries[run] = entry;
    for (size_t n = first; n < end; n++) {
        for (size_t p = 0; p < pairs; p++) {
            uint8_t low, high;
            if (pair_pixels(b->ds->pixels + n * width, width, p, &low, &high)) {
                blocks->entry_image[next[p]] = (uint8_t)(n - first);
                blocks->entry_low[next[p]] = low;
                blocks->entry_high[next[p]] = high;
                next[p]++;
            }
        }
    }
    b->n_blocks++;
    blocks->block_runs[b->n_blocks] = (uint32_t)run;
}

static void pixel_blocks_free(struct pixel_blocks *blocks)
{
    free(blocks->slice_blocks);
    free(blocks->block_first);
    free(blocks->block_runs);
    free(blocks->run_pair);
    free(blocks->run_entries);
    free(blocks->entry_image);
    free(blocks->entry_low);
    free(blocks->entry_high);
    memset(blocks, 0, sizeof *blocks);
}

/* Builds the blocks of ds so that no block straddles a boundary of the
 * `slices` equal slices the engine cuts the images into. */
static int pixel_blocks_build(struct pixel_blocks *blocks, const struct dataset *ds,
                              size_t slices, struct error *err)
{
    const size_t width = dataset_image_size(ds);
    struct block_builder b = {ds, blocks, NULL, 0, 0, 0};

    memset(blocks, 0, sizeof *blocks);
    if (width > UINT16_MAX + (size_t)1)
        return error_set(err, "images of %zu pixels are too large for the engine", width);
    b.pair_entries = calloc(width ? pair_count(width) : 1, sizeof *b.pair_entries);
    if (!b.pair_entries)
        return error_set(err, "out of memory");
    for_each_block(ds->count, slices, measure_block, &b);
    if (b.entries >= UINT32_MAX || ds->count >= UINT32_MAX) {
        free(b.pair_entries);
        return error_set(err, "%zu nonzero pixel pairs are too many for the engine", b.entries);
    }
    blocks->count = ds->count;
    blocks->width = width;
    blocks->labels = ds->labels;
    blocks->n_slices = slices;
    blocks->n_blocks = b.n_blocks;
    blocks->slice_blocks = calloc(slices + 1, sizeof *blocks->slice_blocks);
    blocks->block_first = calloc(b.n_blocks + 1, sizeof *blocks->block_first);
    blocks->block_runs = calloc(b.n_blocks + 1, sizeof *blocks->block_runs);
    blocks->run_pair = calloc(b.runs + 1, sizeof *blocks->run_pair);
    blocks->run_entries = calloc(b.runs + 1, sizeof *blocks->run_entries);
    blocks->entry_image = calloc(b.entries + 1, 1);
    blocks->entry_low = calloc(b.entries + 1, 1);
    blocks->entry_high = calloc(b.entries + 1, 1);
    if (!blocks->slice_blocks || !blocks->block_first || !blocks->block_runs ||
        !blocks->run_pair || !blocks->run_entries || !blocks->entry_image ||
        !blocks->entry_low || !blocks->entry_high) {
        free(b.pair_entries);
        pixel_blocks_free(blocks);
        return error_set(err, "out of memory for %zu images", ds->count);
    }
    b.n_blocks = 0;
    for_each_block(ds->count, slices, fill_block, &b);
    blocks->slice_blocks[slices] = (uint32_t)b.n_blocks;
    blocks->block_first[b.n_blocks] = (uint32_t)ds->count;
    free(b.pair_entries);
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

    struct engine *e = calloc(1, sizeof *e);
    if (!e)
        return error_set(err, "out of memory");
    e->n_slices = engine_slice_count(ds->count);
    if (pixel_blocks_build(&e->blocks, ds, e->n_slices, err) < 0) {
        free(e);
        return -1;
    }
    const size_t real_size = precision_size(m->precision);
    engine_use_threads(e, threads);
    e->kernels = kernels_for(isa, m->precision);
    e->pixel_value = pixel_values_fill(&e->pixel_values, m->precision);
    e->layout = mlp_layout(m->n_in, m->n_hidden, m->n_out);
    e->partial_stride = padded_count(e->layout.count, real_size);
    e->scratch_stride = padded_count(e->kernels->scratch_count(m->n_hidden, m->n_out), real_size);
    e->partials = aligned_zalloc(e->n_slices * e->partial_stride, real_size);
    e->scratch = aligned_zalloc(e->n_slices * e->scratch_stride, real_size);
    e->grad = aligned_zalloc(e->layout.count, real_size);
    e->w2_transposed = aligned_zalloc(m->n_hidden * m->n_out, real_size);
    e->w2_padded = aligned_zalloc(m->n_hidden * e->kernels->padded_outputs(m->n_out), real_size);
    e->slice_error = calloc(e->n_slices, sizeof *e->slice_error);
    if (!e->partials || !e->scratch || !e->grad || !e->w2_transposed || !e->w2_padded ||
        !e->slice_error) {
        engine_destroy(e);
        return error_set(err, "out of memory for the engine's gradient buffers");
    }
    *out = e;
    return 0;
}

void engine_destroy(struct engine *e)
{
    if (!e)
        return;
    pixel_blocks_free(&e->blocks);
    free(e->partials);
    free(e->scratch);
    free(e->grad);
    free(e->w2_transposed);
    free(e->w2_padded);
    free(e->slice_error);
    free(e);
}

void engine_use_threads(struct engine *e, int threads)
{
    e->threads = threads > 0 ? threads : engine_max_threads();
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

double engine_loss_and_gradient(struct engine *e, const struct mlp *m)
{
    const struct kernel_set *k = e->kernels;
    const size_t S = e->n_slices, P = e->layout.count;
    const size_t blocks = (P + BLOCK - 1) / BLOCK;

    k->arrange_w2(m, e->w2_transposed, e->w2_padded);
    /* Each slice accumulates its partial gradient privately ... */
#pragma omp parallel for num_threads(e->threads) schedule(dynamic, 1)
    for (size_t s = 0; s < S; s++)
        e->slice_error[s] = k->slice_gradient(e, m, s);

    /* ... and the partials are summed in slice order, whoever computed them. */
#pragma omp parallel for num_threads(e->threads) schedule(static)
    for (size_t b = 0; b < blocks; b++)
        k->sum_partials(e, b * BLOCK, P - b * BLOCK < BLOCK ? P - b * BLOCK : BLOCK);

    double squared_error = 0;
    for (size_t s = 0; s < S; s++)
        squared_error += e->slice_error[s];
    return squared_error / ((double)e->blocks.count * (double)m->n_out);
}

const void *engine_gradient(const struct engine *e)
{
    return e->grad;
}

double engine_epoch(struct engine *e, struct mlp *m, double lr)
{
    const double loss = engine_loss_and_gradient(e, m);
    const size_t P = e->layout.count, blocks = (P + BLOCK - 1) / BLOCK;

    /* The one shared update. */
#pragma omp parallel for num_threads(e->threads) schedule(static)
    for (size_t b = 0; b < blocks; b++)
        e->kernels->descend(e, m, lr, b * BLOCK, P - b * BLOCK < BLOCK ? P - b * BLOCK : BLOCK);
    return loss;
}

int mlp_predict(const struct mlp *m, const struct dataset *ds, double *logits,
                struct error *err)
{
    if (mlp_check_inputs(m, dataset_image_size(ds), err) < 0)
        return -1;
    const struct isa *isa = find_isa(NULL, err);
    if (!isa)
        return -1;
    const struct kernel_set *k = kernels_for(isa, m->precision);
    struct pixel_blocks blocks;
    if (pixel_blocks_build(&blocks, ds, 1, err) < 0)
        return -1;
    void *scratch = malloc(k->predict_scratch_count(m->n_hidden, m->n_out) *
                           precision_size(m->precision));
    if (!scratch) {
        pixel_blocks_free(&blocks);
        return error_set(err, "out of memory");
    }
    union pixel_values values;
    k->predict(m, &blocks, pixel_values_fill(&values, m->precision), scratch, logits);
    free(scratch);
    pixel_blocks_free(&blocks);
    return 0;
}

double fma_peak_flops(enum precision precision, int threads, double seconds)
{
    /* The machine's peak, whichever kernels $MNIST_OMP_ISA asks for. */
    const size_t lanes = 12 * 64 / precision_size(precision);
    double (*probe)(size_t) = kernels_for(best_isa(), precision)->fma_probe;
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
    return 2.0 * (double)lanes * (double)rounds * (double)threads / elapsed;
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
