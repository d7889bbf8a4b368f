#include <config.h>

#include "cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_MPI
#include <mpi.h>

/* Whether cluster_init joined an MPI run: only then may MPI be called. */
static bool joined;

/* MPI counts are int, and some transports misbehave near INT_MAX: larger
 * buffers travel in pieces of 1 GiB. */
static const size_t chunk_bytes = (size_t)1 << 30;

static size_t smaller(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* Whether a launcher started this process as a rank of a run: Open MPI's
 * mpirun sets PMIX_RANK and OMPI_COMM_WORLD_SIZE, Slurm's srun PMIX_RANK or
 * PMI_RANK.  Started otherwise, MPI would make the process a run of one
 * ("singleton"), but only after spawning a daemon, a third of a second: the
 * run is rank 0 of 1 without it. */
static bool launched(void)
{
    return getenv("PMIX_RANK") || getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_RANK");
}

static int join(struct cluster *c, int *argc, char ***argv, struct error *err)
{
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return error_set(err, "cannot start MPI");
    joined = true;
    /* The OpenMP threads compute; only the thread that started MPI calls it. */
    if (provided < MPI_THREAD_FUNNELED)
        return error_set(err, "this MPI cannot run in a multithreaded process "
                              "(it provides thread level %d, below MPI_THREAD_FUNNELED)",
                         provided);
    if (MPI_Comm_rank(MPI_COMM_WORLD, &c->rank) != MPI_SUCCESS ||
        MPI_Comm_size(MPI_COMM_WORLD, &c->ranks) != MPI_SUCCESS) {
        *c = (struct cluster){.rank = 0, .ranks = 1};
        return error_set(err, "cannot find this process's rank in the MPI run");
    }
    return 0;
}

/* cluster_allgather's communication, every rank's bytes already in place
 * in recv. */
static int allgather_mpi(const struct cluster *c, void *recv, const size_t *bytes, size_t total)
{
    if (total > chunk_bytes) {
        /* Gigabytes: Allgatherv's int counts and offsets cannot place them,
         * so each rank broadcasts its share, in pieces. */
        size_t offset = 0;
        for (int r = 0; r < c->ranks; offset += bytes[r], r++)
            if (cluster_broadcast(c, (char *)recv + offset, bytes[r], r) != 0)
                return -1;
        return 0;
    }
    int *counts = malloc(2 * (size_t)c->ranks * sizeof *counts);
    if (!counts)
        return -1;
    int *offsets = counts + c->ranks;
    size_t offset = 0;
    for (int r = 0; r < c->ranks; offset += bytes[r], r++) {
        counts[r] = (int)bytes[r];
        offsets[r] = (int)offset;
    }
    const int status =
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_BYTE, recv, counts, offsets, MPI_BYTE, MPI_COMM_WORLD);
    free(counts);
    return status == MPI_SUCCESS ? 0 : -1;
}

/* cluster_exchange's communication with the other ranks, in rounds of one
 * piece per peer and direction: a peer's piece k in either direction
 * exists on both sides, so both post it in their round k, and the messages
 * between two ranks arrive in the order sent. */
static int exchange_mpi(const struct cluster *c, const char *send, const size_t *send_bytes,
                        char *recv, const size_t *recv_bytes)
{
    MPI_Request *requests = malloc(2 * (size_t)c->ranks * sizeof *requests);
    if (!requests)
        return -1;
    int status = MPI_SUCCESS;
    for (size_t done = 0; status == MPI_SUCCESS; done += chunk_bytes) {
        int posted = 0;
        size_t send_at = 0, recv_at = 0;
        for (int r = 0; r < c->ranks && status == MPI_SUCCESS; r++) {
            if (r != c->rank && recv_bytes[r] > done)
                status = MPI_Irecv(recv + recv_at + done, (int)smaller(recv_bytes[r] - done, chunk_bytes),
                                   MPI_BYTE, r, 0, MPI_COMM_WORLD, &requests[posted++]);
            if (status == MPI_SUCCESS && r != c->rank && send_bytes[r] > done)
                status = MPI_Isend(send + send_at + done, (int)smaller(send_bytes[r] - done, chunk_bytes),
                                   MPI_BYTE, r, 0, MPI_COMM_WORLD, &requests[posted++]);
            send_at += send_bytes[r];
            recv_at += recv_bytes[r];
        }
        if (posted == 0)
            break;
        if (status == MPI_SUCCESS)
            status = MPI_Waitall(posted, requests, MPI_STATUSES_IGNORE);
    }
    free(requests);
    return status == MPI_SUCCESS ? 0 : -1;
}
#endif /* HAVE_MPI */

int cluster_init(struct cluster *c, int *argc, char ***argv, struct error *err)
{
    *c = (struct cluster){.rank = 0, .ranks = 1};
#ifdef HAVE_MPI
    if (launched())
        return join(c, argc, argv, err);
#else
    (void)argc;
    (void)argv;
    (void)err;
#endif
    return 0;
}

void cluster_finalize(void)
{
#ifdef HAVE_MPI
    if (joined)
        MPI_Finalize();
    joined = false;
#endif
}

bool cluster_is_root(const struct cluster *c)
{
    return c->rank == 0;
}

/* Every collective below starts with this rank's own share, a local copy;
 * a run of one (every run without MPI) has nothing else to do. */

int cluster_allgather(const struct cluster *c, const void *send, void *recv, const size_t *bytes)
{
    size_t at = 0, total = 0;
    for (int r = 0; r < c->ranks; r++) {
        if (r == c->rank)
            at = total;
        total += bytes[r];
    }
    char *mine = (char *)recv + at;
    if (bytes[c->rank] > 0 && mine != send)
        memmove(mine, send, bytes[c->rank]);
#ifdef HAVE_MPI
    if (c->ranks > 1)
        return allgather_mpi(c, recv, bytes, total);
#endif
    return 0;
}

int cluster_broadcast(const struct cluster *c, void *buf, size_t bytes, int root)
{
#ifdef HAVE_MPI
    for (size_t done = 0; c->ranks > 1 && done < bytes; done += chunk_bytes)
        if (MPI_Bcast((char *)buf + done, (int)smaller(bytes - done, chunk_bytes), MPI_BYTE, root,
                      MPI_COMM_WORLD) != MPI_SUCCESS)
            return -1;
#else
    (void)c;
    (void)buf;
    (void)bytes;
    (void)root;
#endif
    return 0;
}

int cluster_max(const struct cluster *c, int value)
{
    int max = value;
#ifdef HAVE_MPI
    /* MPI's error handler ends the run should the reduction fail. */
    if (c->ranks > 1)
        MPI_Allreduce(&value, &max, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
#else
    (void)c;
#endif
    return max;
}

int cluster_exchange(const struct cluster *c, const void *send, const size_t *send_bytes, void *recv,
                     const size_t *recv_bytes)
{
    size_t send_at = 0, recv_at = 0;
    for (int r = 0; r < c->rank; r++) {
        send_at += send_bytes[r];
        recv_at += recv_bytes[r];
    }
    if (send_bytes[c->rank] > 0)
        memcpy((char *)recv + recv_at, (const char *)send + send_at, send_bytes[c->rank]);
#ifdef HAVE_MPI
    if (c->ranks > 1)
        return exchange_mpi(c, send, send_bytes, recv, recv_bytes);
#endif
    return 0;
}

_Noreturn void cluster_abort(const struct cluster *c, int status)
{
    (void)c;
    /* MPI_Abort kills the processes without flushing their buffered output,
     * the caller's message among it. */
    fflush(NULL);
#ifdef HAVE_MPI
    if (joined)
        MPI_Abort(MPI_COMM_WORLD, status);
#endif
    exit(status);
}
