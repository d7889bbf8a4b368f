/* NumPy's .npz (numpy.savez): an uncompressed zip archive of one .npy file
 * per tensor of weights.h, so that numpy.load gives a mapping from the
 * tensor names to arrays. */
#ifndef MNIST_OMP_NPZ_H
#define MNIST_OMP_NPZ_H

#include "error.h"
#include "model.h"

/* Writes m's tensors to path atomically (atomic_file.h). */
int npz_save(const char *path, const struct mlp *m, struct error *err);

#endif
