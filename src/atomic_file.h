/* Output files, and the rule every one of them follows:
 *   - a symbolic link is followed, and its final target is what gets written
 *     (the link stays a link);
 *   - a path that exists must be a regular file: a device, FIFO, socket or
 *     directory is refused, never replaced;
 *   - a replaced file keeps its permission mode; a new one gets 0666 less
 *     the umask.
 * Whole files (models, checkpoints, pictures, plots) are written under a
 * short temporary name in the target's directory, then renamed over it, so
 * that a crash or a full disk never leaves a half-written file behind. */
#ifndef MNIST_OMP_ATOMIC_FILE_H
#define MNIST_OMP_ATOMIC_FILE_H

#include <stdio.h>

#include "error.h"

/* Whether path could be written now under the rule above: its type, and a
 * directory that exists and is writable.  Programs call it for each output
 * before long work, so that a bad path fails at once. */
int output_file_check(const char *path, struct error *err);

struct atomic_file {
    FILE *stream;      /* write the content here */
    const char *path;  /* the name given, for messages; must stay valid until commit or discard */
    char *target;      /* path with its symbolic links followed: what the commit replaces */
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

/* Opens path for writing in place, truncated, under the same rule of types
 * (the mode of an existing file is kept by nature), for a file that must be
 * readable while it grows. */
FILE *output_file_open_in_place(const char *path, struct error *err);

#endif
