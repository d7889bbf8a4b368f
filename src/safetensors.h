/* safetensors files (https://huggingface.co/docs/safetensors): an 8-byte
 * little-endian header length, a JSON header giving each tensor's dtype,
 * shape and byte range, then the tensors' bytes.  The tensors are those of
 * weights.h; the header's __metadata__ holds the network's shape and the
 * training history as strings, so that a file we wrote loads back into the
 * very model file it came from. */
#ifndef MNIST_OMP_SAFETENSORS_H
#define MNIST_OMP_SAFETENSORS_H

#include "error.h"
#include "model.h"
#include "modelfile.h"
#include "weights.h"

/* Writes m and meta to path atomically (atomic_file.h). */
int safetensors_save(const char *path, const struct mlp *m, const struct model_metadata *meta,
                     struct error *err);

/* Reads path into m (created with mlp_create) and meta.  The widths come
 * from the shapes; the activation and the loss from our metadata when the
 * file has it, else from hints (doc/model-format.md).  Refuses, naming the
 * file and the fault, anything but the tensors of weights.h, in one dtype
 * (F32 or F64), finite, whose byte ranges tile the data exactly.  On
 * failure returns -1 with m left empty. */
int safetensors_load(const char *path, const struct weights_hints *hints, struct mlp *m,
                     struct model_metadata *meta, struct error *err);

#endif
