/* Files that appear whole or not at all: written under a temporary name in
 * the same directory, then renamed over `path`, so that a crash or a full
 * disk never leaves a half-written file behind.  Pictures, plots and model
 * files are all written this way. */
#ifndef MNIST_OMP_ATOMIC_FILE_H
#define MNIST_OMP_ATOMIC_FILE_H

#include <stdio.h>

#include "error.h"

struct atomic_file {
    FILE *stream;      /* write the content here */
    const char *path;  /* the final name; must stay valid until commit or discard */
    char *temp_path;
};

int atomic_file_open(struct atomic_file *f, const char *path, struct error *err);

/* Flushes, syncs and closes the stream, renames the file into place and
 * syncs the directory, so that the rename is durable too.
 * Any write error met on the way (the stream remembers them) makes it fail,
 * remove the temporary file and explain in err.  f is released either way. */
int atomic_file_commit(struct atomic_file *f, struct error *err);

/* Closes and removes the temporary file, leaving `path` untouched. */
void atomic_file_discard(struct atomic_file *f);

#endif
