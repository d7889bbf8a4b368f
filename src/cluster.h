/* The processes of a run: one per MPI rank when mnist-omp is built with
 * --with-mpi and started by mpirun, else one.  Every function is collective
 * (every rank calls it, in the same order, with matching sizes) and is
 * called only from the thread that called cluster_init, which is all that
 * MPI_THREAD_FUNNELED allows.  Without MPI, or outside mpirun, the run is
 * rank 0 of 1 and every collective is a local copy or nothing.
 *
 * A failure of MPI itself ends every rank (MPI's default error handler,
 * which this module keeps: a rank that went on after an error would leave
 * the others waiting for it).  A collective that returns -1 (out of memory)
 * may have left the other ranks waiting too: the caller reports it and calls
 * cluster_abort. */
#ifndef MNIST_OMP_CLUSTER_H
#define MNIST_OMP_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

struct cluster {
    int rank, ranks; /* {0, 1} without MPI or outside mpirun */
};

/* Joins the run (MPI_Init_thread, MPI_THREAD_FUNNELED, in a build with MPI
 * started by mpirun) and fills c; argc and argv are main's, for MPI to
 * read its arguments from.  Returns 0, or -1 with a message in err. */
int cluster_init(struct cluster *c, int *argc, char ***argv, struct error *err);

/* Leaves the run (MPI_Finalize) if cluster_init joined one. */
void cluster_finalize(void);

/* Rank 0, the one that prints and writes files. */
bool cluster_is_root(const struct cluster *c);

/* Every rank's bytes[rank] bytes concatenated in rank order into recv, on
 * every rank; send is this rank's bytes[c->rank] bytes (it may be their
 * place in recv).  Any total, beyond INT_MAX too.  Returns 0 or -1. */
int cluster_allgather(const struct cluster *c, const void *send, void *recv, const size_t *bytes);

/* Rank root's bytes bytes at buf copied into buf on every rank.  Returns 0
 * or -1. */
int cluster_broadcast(const struct cluster *c, void *buf, size_t bytes, int root);

/* The largest of every rank's value: an exact integer reduction, so its
 * result never depends on the number of ranks.  For agreeing on a stop
 * signal or on a failure. */
int cluster_max(const struct cluster *c, int value);

/* Each rank sends send_bytes[r] bytes (consecutive in send, in rank order)
 * to rank r and receives recv_bytes[r] bytes from rank r into recv (in rank
 * order); recv_bytes[r] on this rank is send_bytes[this rank] on rank r.
 * send and recv must not overlap.  Returns 0 or -1. */
int cluster_exchange(const struct cluster *c, const void *send, const size_t *send_bytes, void *recv,
                     const size_t *recv_bytes);

/* Ends every rank with status at once (MPI_Abort), after the caller printed
 * its message; without MPI, or outside mpirun, exit(status). */
_Noreturn void cluster_abort(const struct cluster *c, int status);

#endif
