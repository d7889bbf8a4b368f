/* Data-parallel training across the ranks of a cluster (mpirun): each rank
 * holds a share of the training images, works out a share of each batch's
 * units (src/kernels.h) on its threads, and every rank gathers all ranks'
 * subtrees of the units' tree and makes the same update, so that the
 * weights are bitwise those of one process, whatever the ranks and threads.
 *
 * The share of the training set that rank r holds is the rows of its share
 * of the full batch's units (shard_range): a full-batch step works on it
 * alone; a mini-batch step first fetches its rows' images, as pixel lists
 * (pixel_lists.h) with their labels, from the ranks that hold them. */
#ifndef MNIST_OMP_SHARD_H
#define MNIST_OMP_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "cluster.h"
#include "dataset.h"
#include "error.h"
#include "kernels.h"
#include "model.h"
#include "optimizer.h"
#include "pixel_lists.h"

/* The rows [*first, *end) of a batch of n that rank `rank` of `ranks`
 * works out: those of its contiguous share of the batch's units. */
void shard_range(size_t n, int rank, int ranks, size_t *first, size_t *end);

/* The parameter-sized arrays rank `rank` of `ranks` keeps for a batch of n
 * with `threads` threads: its threads' subtrees and, across ranks, every
 * rank's gathered (each rank with `threads` threads). */
size_t shard_partial_count(size_t n, int rank, int ranks, int threads);

struct shard {
    const struct cluster *cluster;
    const struct dataset *own;   /* this rank's images: the set's [own_first, ...) */
    size_t total, own_first;     /* images in the set; this rank's first */
    size_t *held_first;          /* ranks + 1: each rank's first image */
    struct pixel_lists own_lists;  /* own's images' (mini-batches) */
    uint32_t *lengths;           /* every image of the set's: its list's entries */
    struct dataset step;         /* a mini-batch step's rows' labels (and blank pixels:
                                    their images come as step_lists) */
    struct pixel_lists step_lists;
    struct engine *engine;       /* on own (full batch) or step (mini-batches) */
    uint32_t *outgoing, *incoming;  /* images sent and received in a step: a word with
                                       the label, then the image's list, each */
    size_t *send_bytes, *recv_bytes, *taken;  /* per rank */
    double *unit_losses;         /* every unit's, in order */
    size_t units_capacity;
    void *gathered;              /* a region a rank, in order: its pieces' partials (where
                                    its engine leaves them), then its units' losses */
    size_t *region_first;        /* ranks + 1: where each rank's region starts, in bytes */
    struct engine_piece *pieces; /* every rank's, in order */
    size_t pieces_capacity;
    size_t *pieces_of;           /* per rank: how many pieces it leaves */
    size_t pieces_for;           /* the batch size the regions and the pieces' nodes are
                                    for (0: none yet); they depend on nothing else */
    uint64_t sent_bytes;         /* this rank's bytes in the last step's exchanges: its
                                    images' lists for other ranks, its units' losses, its
                                    pieces (each gathered by every rank) */
};

/* A shard of a set whose images this rank holds in own (its share, as
 * shard_range cuts the set), trained in batches of `batch` (0: the whole
 * set) on `threads` threads.  Collective.  Returns 0, or -1 with err set
 * (out of memory before its collective ends every rank). */
int shard_create(struct shard *s, const struct cluster *c, const struct mlp *m,
                 const struct dataset *own, size_t batch, int threads, struct error *err);
void shard_destroy(struct shard *s);

/* One step on the images batch[0 .. count) of the set (NULL: all of it,
 * in order), on every rank at once: its loss.  A rank that runs out of
 * memory in it says so and ends every rank (the others would wait for it
 * in the step's exchanges). */
double shard_step(struct shard *s, struct mlp *m, const size_t *batch, size_t count,
                  const struct optimizer *o, const struct optimizer_step *step,
                  const struct optimizer_state *state);

#endif
