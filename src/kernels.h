/* The OpenMP training engine: every hot loop of mnist-omp and every
 * `#pragma omp` lives in kernels.c / kernels_impl.h.
 *
 * Design.  The full batch is cut into a fixed number of contiguous slices
 * that depends only on the number of samples (never on the thread count).
 * `#pragma omp parallel for` hands slices to threads; a slice runs the whole
 * forward and backward pass of its images a block at a time (X is read once
 * per epoch) and accumulates its partial gradients privately.  The partials
 * are then summed in slice order and applied in one shared update.  The
 * summation order is therefore a function of the data alone, so the weights
 * are bitwise identical for any number of threads.  Pixels are kept only in pairs that are not both zero: skipping
 * exact zeros leaves every sum bitwise unchanged (while the weights are
 * finite), since an accumulator that starts at +0 is never -0 and adding
 * +-0 to it is exact. */
#ifndef MNIST_OMP_KERNELS_H
#define MNIST_OMP_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "error.h"
#include "model.h"

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
enum { BLOCK_IMAGES = 256 };  /* the most an image's index in its block (a byte) allows */
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

/* Builds the blocks of ds so that no block straddles a boundary of the
 * `slices` equal slices the engine cuts the images into. */
int pixel_blocks_build(struct pixel_blocks *blocks, const struct dataset *ds, size_t slices,
                       struct error *err);
void pixel_blocks_free(struct pixel_blocks *blocks);

struct engine;

/* Prepares to train a network of m's shape and precision on ds (which must
 * outlive the engine).  isa names the instruction set of the kernels
 * ("avx512", "avx2", "portable"); NULL picks $MNIST_OMP_ISA or else the best
 * this CPU runs.  Every choice computes bitwise the same numbers. */
int engine_create(struct engine **out, const struct mlp *m, const struct dataset *ds,
                  const char *isa, struct error *err);
void engine_destroy(struct engine *e);
const char *engine_isa(const struct engine *e);
/* The instruction set engine_create picks when given none. */
const char *engine_best_isa(void);

/* The instruction sets this build has kernels for, best first, and whether
 * this CPU runs them. */
size_t kernel_isa_count(void);
const char *kernel_isa_name(size_t i);
bool kernel_isa_supported(size_t i);

/* Loss of m on the whole training set, and its gradient, which stays inside
 * the engine (engine_gradient) in the layout of m->params. */
double engine_loss_and_gradient(struct engine *e, const struct mlp *m);
const void *engine_gradient(const struct engine *e);

/* One step of full-batch gradient descent; returns the loss before the update. */
double engine_epoch(struct engine *e, struct mlp *m, double lr);

/* The number of slices a batch of n samples is cut into. */
size_t engine_slice_count(size_t n);

/* Logits (ds->count x n_out, as doubles) of every image of ds, computed on
 * the calling thread with the engine's forward kernel. */
int mlp_predict(const struct mlp *m, const struct dataset *ds, double *logits,
                struct error *err);

/* Floating-point operations per second (an FMA counts as two) that `threads`
 * threads reach running only independent fused multiply-adds with the
 * kernels' instruction set: the machine's peak, measured for at least
 * `seconds`. */
double fma_peak_flops(enum precision precision, int threads, double seconds);

/* Threads the engine will use: 1 in a build without OpenMP. */
int engine_max_threads(void);

/* The most threads OpenMP grants a parallel region ($OMP_THREAD_LIMIT);
 * 1 without OpenMP. */
int engine_thread_limit(void);
void engine_set_threads(int n);

#endif
