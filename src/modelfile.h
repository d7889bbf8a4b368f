/* Saving and loading trained networks and training checkpoints in the
 * mnist-omp model format (doc/model-format.md): a little-endian header with
 * the layer list and the training settings, in checkpoints the training
 * state, then the parameters (and the optimiser's moments), and a CRC-32 over
 * everything before it.  Files of every format version load; saving always
 * writes the newest (version 3).
 *
 * Saving is atomic: the file appears under its final name complete or not at
 * all, and a failed save leaves an existing file of that name untouched.
 * Loading checks every field, the length and the checksum before it trusts
 * anything, so a damaged or foreign file is refused with a message saying
 * which file and what is wrong, never half-loaded. */
#ifndef MNIST_OMP_MODELFILE_H
#define MNIST_OMP_MODELFILE_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "model.h"
#include "train.h"

/* The training history stored with the parameters.  The network's shape
 * (widths, activation, loss) and precision are the model's own.  train_size
 * and test_size are the subset sizes actually used. */
struct model_metadata {
    uint64_t epochs_done;
    int64_t seed;
    uint64_t train_size, test_size;
    /* How the run trained (struct training: batch, optimiser, schedule with
     * its lr, planned epochs).  A version-1 or -2 file records only the lr
     * and holds an n_in-H-n_out ReLU network with MSE: the rest then reads as
     * the reference experiment's full-batch SGD (batch 0, sgd, momentum 0,
     * no Nesterov, weight decay 0, the options' default beta1 0.9, beta2
     * 0.999 and eps 1e-8, constant schedule, step_epochs 0, step_gamma 0,
     * epochs = epochs_done). */
    struct training training;
    /* Checkpoints only: CRC-32s of the training and test subsets drawn
     * (dataset_crc32), so that a resumed run can tell that it trains on the
     * same data.  False in a model, and in a checkpoint without one (made
     * by a version-1 file's writer, or saved from a run resumed from one). */
    bool has_fingerprint;
    uint32_t train_crc, test_crc;
    /* Checkpoints only: whether the file held the random stream's state
     * (version 3).  A version-1 or -2 checkpoint is of full-batch SGD without
     * momentum, which draws nothing after the weights and keeps no moments:
     * model_load then fills the state with epoch = epochs_done, step =
     * epochs_done (one step per epoch), p1 = p2 = 1, no moments and a zeroed
     * stream, and the caller re-derives the stream as the run first drew it
     * (seed, the subsets, then the weights with mlp_init_uniform into a
     * scratch network of the same shape) before it trains or saves.  A caller
     * that passes state should pass meta too, to see this flag.  Ignored by
     * model_save, which writes the state it is given. */
    bool has_rng_state;
};

/* The kind field says what the writer meant: a checkpoint is the complete
 * state of a run (parameters, settings, the training state), written to be
 * resumed; a model is a finished network whose metadata only records how it
 * was made. */
enum model_kind { MODEL_FILE_MODEL, MODEL_FILE_CHECKPOINT };

/* The most epochs a file may record: what --epochs allows. */
#define MODEL_FILE_MAX_EPOCHS 100000000u

/* Writes m and meta to path atomically (see above) as format version 3; a
 * checkpoint also holds state (the optimiser's step and moments, the epoch,
 * the random stream), which it needs, and which a model file does not hold
 * (state is then ignored, and may be NULL).  Refuses, writing nothing, a
 * network, metadata or state that model_load would refuse. */
int model_save(const char *path, enum model_kind kind, const struct mlp *m,
               const struct model_metadata *meta, const struct training_state *state,
               struct error *err);

/* Refuses, with a message starting with subject, metadata (the history and
 * the training settings) that model_save would refuse: for other formats
 * that carry our metadata. */
int model_metadata_check(const char *subject, const struct model_metadata *meta,
                         struct error *err);

/* Reads path into m, which it creates with mlp_create (the caller frees it
 * with mlp_free), its metadata into meta (which may be NULL) and, from a
 * checkpoint, the training state into state (which may be NULL; its moments
 * are allocated as by optimizer_state_create, for the caller to free with
 * optimizer_state_free; a model file leaves it zeroed, with no moments).
 * Files of every earlier format version load (see has_rng_state).
 *
 * expected MODEL_FILE_MODEL accepts both kinds, since a checkpoint holds a
 * usable network; MODEL_FILE_CHECKPOINT accepts only a checkpoint, so that a
 * finished model is never mistaken for resumable state.  Whether a checkpoint
 * suits the run resuming it is for the caller to check against meta and m.
 *
 * On failure returns -1 and leaves m (and state) empty, nothing to free. */
int model_load(const char *path, enum model_kind expected, struct mlp *m,
               struct model_metadata *meta, struct training_state *state, struct error *err);

#endif
