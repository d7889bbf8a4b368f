/* Finding and loading the MNIST training and test sets from a directory. */
#ifndef MNIST_OMP_MNIST_H
#define MNIST_OMP_MNIST_H

#include "dataset.h"
#include "error.h"

enum mnist_split { MNIST_TRAIN, MNIST_TEST };

/* Picks the data directory: explicit (from --data) if not NULL, else
 * $MNIST_OMP_DATA, else ./data, else installed_dir.  The first candidate that
 * holds MNIST wins (an explicit directory or $MNIST_OMP_DATA that does not hold
 * it is an error, not a reason to look further).  Writes the chosen directory
 * into out (size out_size).  On failure, err lists every place it looked. */
int mnist_find_dir(const char *explicit_dir, const char *installed_dir,
                   char *out, size_t out_size, struct error *err);

/* Nonzero when dir holds the given split in one of the forms mnist_load reads. */
int mnist_dir_has(const char *dir, enum mnist_split split);

/* Loads one split from dir.  Looks for, in this order:
 *   IDX: train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz]
 *        (t10k-... for the test split), raw or gzip by content;
 *   CSV: mnist_train.csv / mnist_test.csv. */
int mnist_load(struct dataset *ds, const char *dir, enum mnist_split split,
               struct error *err);

/* mnist_load keeping only some of the split's images (struct dataset_keep):
 * with keep->slot NULL, a pass that checks the split and sets keep->records
 * to its images, keeping none. */
int mnist_load_kept(struct dataset *ds, const char *dir, enum mnist_split split,
                    struct dataset_keep *keep, struct error *err);

#endif
