/* The OpenMP training engine: every hot loop of mnist-omp and every
 * `#pragma omp` lives in kernels.c / kernels_impl.h.
 *
 * Design.  A step goes layer by layer over the whole batch: each layer's
 * forward product (X.W) and its two transposed counterparts, the weight
 * gradient (A^T.dZ) and the input gradient (dZ.W^T), are cut into tiles
 * (rows x columns of the result) that `#pragma omp parallel for` shares out
 * among the threads, so that a batch of 64 keeps every thread busy as well
 * as the full 60000 do.  One register-tiled micro-kernel serves all three
 * dense products (its operand strides make A or A^T); every lane of it is a
 * separate output element and every sum runs over its terms in ascending
 * order from zero, so every instruction set and tile shape gives the same
 * bits.  exp, log and tanh are scalar libm calls outside vector loops.
 *
 * The weight gradients are summed per unit: the batch is cut into
 * engine_unit_count(count) contiguous units (a function of the batch size
 * alone, never of the thread count), and the units' gradients are added in
 * one fixed binary tree over the units (kernels.c): each thread walks its
 * own contiguous range of units, tile by tile, keeping the complete
 * subtrees of its range, and the update adds the ranges' subtrees in the
 * same tree before the one shared update.  The weights are therefore
 * bitwise identical for any number of threads.
 *
 * The first layer skips the exact zeros of the input: at engine_create
 * each image gets the list of its pixel pairs that are not both zero; the
 * forward pass turns the lists of each block of the batch's rows around
 * into, per pair, the block's rows that have the pair (in time
 * proportional to the block's nonzeros), then runs down them, so that a
 * pair's two rows of W serve all of them at once; the weight gradient
 * runs down the same lists, block after block.  Skipping
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
#include "optimizer.h"

/* mlp_predict works through the images this many at a time. */
enum { BLOCK_IMAGES = 256 };

struct engine;

/* Prepares to train a network of m's shape and precision on ds (which must
 * outlive the engine).  isa names the instruction set of the kernels
 * ("avx512", "avx2", "portable"); NULL picks $MNIST_OMP_ISA or else the best
 * this CPU runs.  The engine runs `threads` OpenMP threads (0:
 * engine_max_threads()), a setting of its own that leaves the rest of the
 * process alone, so that engines can train side by side in several threads.
 * Every choice of either computes bitwise the same numbers. */
int engine_create(struct engine **out, const struct mlp *m, const struct dataset *ds,
                  const char *isa, int threads, struct error *err);
void engine_destroy(struct engine *e);
/* Changes the engine's thread count (0: engine_max_threads()) and ends
 * profiling (engine_profile_start). */
void engine_use_threads(struct engine *e, int threads);
const char *engine_isa(const struct engine *e);
/* The instruction set engine_create picks when given none. */
const char *engine_best_isa(void);

/* The instruction sets this build has kernels for, best first, and whether
 * this CPU runs them. */
size_t kernel_isa_count(void);
const char *kernel_isa_name(size_t i);
bool kernel_isa_supported(size_t i);

/* Forward pass, loss and backward pass of one batch: the images
 * batch[0 .. count) of ds, in that order (batch NULL: all of ds in its
 * order, count = ds->count, whose structure the engine then builds only
 * once).  Returns the batch's loss (m->loss, a mean over its images, SPEC
 * part 2), NaN when memory runs out (a batch that repeats images may need
 * more); the gradient stays inside the engine (engine_gradient) in the
 * layout of m->params.  m must have the shape the engine was made for. */
double engine_batch_gradient(struct engine *e, const struct mlp *m, const size_t *batch,
                             size_t count);
const void *engine_gradient(const struct engine *e);

/* The one shared update: optimizer_apply over the whole arena, cut among the
 * engine's threads, with the gradient of the last engine_batch_gradient,
 * and the engine's instruction set. */
void engine_update(struct engine *e, struct mlp *m, const struct optimizer *o,
                   const struct optimizer_step *step, const struct optimizer_state *s);

/* Where a step's time goes, for the benchmark: once engine_profile_start
 * has been called, every later step adds each thread's busy time (not its
 * waits) in each kernel, per layer, so that a kernel's FLOPs over its
 * seconds divided by the threads is the rate it runs at when it runs.
 * "update" is the sum of the ranges' subtrees and the optimiser's update
 * (engine_train_step, engine_update); "other" is the rest of a step: the
 * batch's pixel lists, the transposes of the weights, the loss (and
 * engine_batch_gradient's sum of the partials). */
enum engine_kernel {
    ENGINE_FORWARD,          /* layer l: X.W, bias and activation */
    ENGINE_WEIGHT_GRADIENT,  /* layer l: A^T.dZ, with the bias gradient */
    ENGINE_INPUT_GRADIENT,   /* layer l > 0: dZ.W^T and the activation's derivative */
    ENGINE_KERNELS
};
struct engine_profile {
    double seconds[MLP_MAX_LAYERS][ENGINE_KERNELS];  /* summed over the threads */
    double update_seconds, other_seconds;            /* summed over the threads */
    uint64_t steps, images;                          /* profiled steps, their images */
};
/* Clears the profile and turns profiling on (0 on success, -1 out of memory). */
int engine_profile_start(struct engine *e);
/* The profile of the steps since engine_profile_start (all zero before it). */
void engine_profile_read(const struct engine *e, struct engine_profile *out);

/* engine_batch_gradient then engine_update, to the bit, with the threads
 * started once (a training step waits for them once per layer and pass,
 * no more); the update sums the ranges' subtrees block by block as it
 * goes.  Returns the batch's loss (NaN: out of memory). */
double engine_train_step(struct engine *e, struct mlp *m, const size_t *batch, size_t count,
                         const struct optimizer *o, const struct optimizer_step *step,
                         const struct optimizer_state *s);

/* The number of units a batch of n samples is cut into (a function of n
 * alone), the first row of unit u (u = the count: n), and the partial
 * gradients a step on it keeps with `threads` threads (each thread's stack
 * of subtrees of the units' tree). */
size_t engine_unit_count(size_t n);
size_t engine_unit_row(size_t n, size_t u);
size_t engine_partial_count(size_t n, int threads);
/* The subtrees `threads` threads leave over the units [first, end) (a
 * process's share): engine_partial_count(n, threads) is that of all of a
 * batch of n's units. */
size_t engine_piece_count(size_t first, size_t end, int threads);

/* A step across processes (MPI ranks, src/shard.c): a batch of `total`
 * images is cut into engine_unit_count(total) units and each process works
 * out a contiguous share of them, its rows ds's images batch[0 .. count)
 * (NULL: ds in order; count = engine_unit_row(total, unit_end) -
 * engine_unit_row(total, unit_first)).  engine_share_gradient runs the
 * forward pass, the loss and the backward pass of those rows and leaves
 * the complete subtrees of its ranges of units as pieces (node (level,
 * index) of the units' tree, in a partial gradient in the layout of
 * m->params), in unit order; engine_unit_losses gives each of its units'
 * sums of its rows' losses.  Once every process's pieces are gathered, in
 * unit order, engine_update_from_pieces adds them up in the tree (into the
 * first piece's partial) and applies the optimiser, so that every process
 * makes the same update as one process would, and engine_batch_loss turns
 * all the units' losses into the batch's.  -1: out of memory (or count
 * that does not match the units). */
struct engine_piece {
    size_t level, index;
    void *partial;
};
int engine_share_gradient(struct engine *e, const struct mlp *m, const size_t *batch,
                          size_t count, size_t total, size_t unit_first, size_t unit_end);
void engine_unit_losses(const struct engine *e, double *out);
size_t engine_pieces(const struct engine *e, const struct engine_piece **pieces);
/* The alignment of the engine's buffers, and of memory given to
 * engine_place_pieces. */
enum { ENGINE_ALIGNMENT = 64 };

/* Where engine_share_gradient leaves its pieces' partials: at memory
 * (ENGINE_ALIGNMENT), one every engine_partial_bytes(e) bytes, with room for
 * `count` (a step that leaves more fails, as if out of memory; it leaves
 * engine_piece_count(unit_first, unit_end, engine_threads(e))), so that a
 * cluster can gather them where they are made; NULL: in the engine's own
 * buffers. */
size_t engine_partial_bytes(const struct engine *e);
void engine_place_pieces(struct engine *e, void *memory, size_t count);
int engine_threads(const struct engine *e);
int engine_update_from_pieces(struct engine *e, struct mlp *m, const struct engine_piece *pieces,
                              size_t n_pieces, const struct optimizer *o,
                              const struct optimizer_step *step, const struct optimizer_state *s);
double engine_batch_loss(const struct mlp *m, const double *unit_losses, size_t total);

/* Makes `images` the engine's images in place of its dataset's pixels
 * (the labels stay its dataset's): as many as it was made for, or fewer,
 * as wide.  -1, explained in err: not so, or out of memory. */
struct pixel_lists;
int engine_load_pixel_lists(struct engine *e, const struct pixel_lists *images,
                            struct error *err);

/* Logits (ds->count x outputs, as doubles) of every image of ds, computed on
 * the calling thread with the engine's forward kernel. */
int mlp_predict(const struct mlp *m, const struct dataset *ds, double *logits,
                struct error *err);

/* Floating-point operations per second (an FMA counts as two) that `threads`
 * threads reach running only independent fused multiply-adds with the
 * kernels' instruction set: the machine's peak, measured for at least
 * `seconds`. */
double fma_peak_flops(enum precision precision, int threads, double seconds);

/* The threads an engine runs by default: $OMP_NUM_THREADS or all cores, 1
 * in a build without OpenMP. */
int engine_max_threads(void);

/* The most threads OpenMP grants a parallel region ($OMP_THREAD_LIMIT);
 * 1 without OpenMP. */
int engine_thread_limit(void);

/* Where a thread of a team runs: its number, its OpenMP place (-1: not
 * bound to one) and the CPU it was on when asked (-1: unknown). */
struct thread_place {
    int thread, place, cpu;
};

/* Starts a team of `threads` threads, as the engine's parallel regions do,
 * and records where each runs into out (room for `threads`).  Returns the
 * threads the team got: fewer under $OMP_THREAD_LIMIT, 1 without OpenMP
 * (its place -1). */
int engine_thread_places(int threads, struct thread_place *out);

/* The binding OpenMP applies to a team (omp_get_proc_bind: "false", "true",
 * "master", "close" or "spread"; "false" without OpenMP), and its number of
 * places (0 without OpenMP). */
const char *engine_proc_bind(void);
int engine_place_count(void);

#endif
