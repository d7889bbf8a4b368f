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
#include "optimizer.h"

/* The engine keeps the images in blocks of at most BLOCK_IMAGES consecutive
 * images (see kernels.c): an image's index in its block is a byte. */
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
/* Changes the engine's thread count (0: engine_max_threads()). */
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
 * order, whose structure the engine then builds only once).  Returns the
 * batch's loss (m->loss, a mean over its images, SPEC part 2); the gradient
 * stays inside the engine (engine_gradient) in the layout of m->params. */
double engine_batch_gradient(struct engine *e, const struct mlp *m, const size_t *batch,
                             size_t count);
const void *engine_gradient(const struct engine *e);

/* The one shared update: optimizer_apply over the whole arena, cut among the
 * engine's threads, with the gradient of the last engine_batch_gradient. */
void engine_update(struct engine *e, struct mlp *m, const struct optimizer *o,
                   const struct optimizer_step *step, const struct optimizer_state *s);

/* The number of slices a batch of n samples is cut into. */
size_t engine_slice_count(size_t n);

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

#endif
