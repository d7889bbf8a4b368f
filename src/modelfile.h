/* Saving and loading trained networks and training checkpoints in the
 * mnist-omp model format (doc/model-format.md): a fixed little-endian header,
 * the parameters, and a CRC-32 over everything before it.
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
     * its lr, planned epochs).  A version-1 file records only the lr; the
     * rest then reads as the reference experiment's full-batch SGD. */
    struct training training;
    /* Checkpoints only: CRC-32s of the training and test subsets drawn
     * (dataset_crc32), so that a resumed run can tell that it trains on the
     * same data.  False when loaded from a version-1 file. */
    bool has_fingerprint;
    uint32_t train_crc, test_crc;
};

/* Both kinds share one layout and differ only in the kind field, which says
 * what the writer meant: a checkpoint is the complete state of full-batch
 * gradient descent (parameters, epochs done and the settings a resumed run
 * must repeat), written to be resumed; a model is a finished network whose
 * metadata only records how it was made. */
enum model_kind { MODEL_FILE_MODEL, MODEL_FILE_CHECKPOINT };

/* The most epochs a file may record: what --epochs allows. */
#define MODEL_FILE_MAX_EPOCHS 100000000u

/* Each layer size must lie in [1, MODEL_FILE_MAX_SIZE]. */
#define MODEL_FILE_MAX_SIZE (UINT32_C(1) << 20)

/* Writes m and meta to path atomically (see above); a checkpoint also holds
 * state (the optimiser's step and moments, the epoch, the random stream),
 * which a model file does not (state NULL).  Refuses, writing nothing, a
 * network or metadata that model_load would refuse. */
int model_save(const char *path, enum model_kind kind, const struct mlp *m,
               const struct model_metadata *meta, const struct training_state *state,
               struct error *err);

/* Reads path into m, which it creates with mlp_create (the caller frees it
 * with mlp_free), its metadata into meta (which may be NULL) and, from a
 * checkpoint, the training state into state (which may be NULL; its moments
 * are allocated as by optimizer_state_create, for the caller to free).
 * Files of every earlier format version load.
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
