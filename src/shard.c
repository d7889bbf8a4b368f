#include <config.h>

#include "shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void shard_range(size_t n, int rank, int ranks, size_t *first, size_t *end)
{
    const size_t units = engine_unit_count(n);
    *first = engine_unit_row(n, (size_t)rank * units / (size_t)ranks);
    *end = engine_unit_row(n, ((size_t)rank + 1) * units / (size_t)ranks);
}

/* Rank r's units of a batch of n: [*first, *end). */
static void unit_range(size_t n, int rank, int ranks, size_t *first, size_t *end)
{
    const size_t units = engine_unit_count(n);
    *first = (size_t)rank * units / (size_t)ranks;
    *end = ((size_t)rank + 1) * units / (size_t)ranks;
}

size_t shard_partial_count(size_t n, int rank, int ranks, int threads)
{
    if (ranks == 1)
        return engine_partial_count(n, threads);
    size_t own = 0, all = 0;
    for (int r = 0; r < ranks; r++) {
        size_t first, end;
        unit_range(n, r, ranks, &first, &end);
        const size_t pieces = engine_piece_count(first, end, threads);
        all += pieces;
        own += r == rank ? pieces : 0;
    }
    return own + all;
}

/* Grows *buffer to hold count elements of size bytes (its contents go). */
static int reserve(void *buffer, size_t *capacity, size_t count, size_t size)
{
    void **p = buffer;
    if (count <= *capacity && *p)
        return 0;
    free(*p);
    *p = count ? calloc(count, size) : NULL;
    *capacity = *p ? count : 0;
    return *p || !count ? 0 : -1;
}

/* A rank that cannot go on would leave the others waiting in its
 * collectives: it ends them all. */
static _Noreturn void rank_failed(const struct cluster *c, const char *what)
{
    fprintf(stderr, "mnist-omp: rank %d: out of memory for %s\n", c->rank, what);
    cluster_abort(c, EXIT_FAILURE);
}

int shard_create(struct shard *s, const struct cluster *c, const struct mlp *m,
                 const struct dataset *own, size_t batch, int threads, struct error *err)
{
    const size_t ranks = (size_t)c->ranks, width = dataset_image_size(own);
    memset(s, 0, sizeof *s);
    s->cluster = c;
    s->own = own;
    s->held_first = calloc(ranks + 1, sizeof *s->held_first);
    s->send_bytes = calloc(ranks, sizeof *s->send_bytes);
    s->recv_bytes = calloc(ranks, sizeof *s->recv_bytes);
    s->taken = calloc(ranks, sizeof *s->taken);
    s->pieces_of = calloc(ranks, sizeof *s->pieces_of);
    s->region_first = calloc(ranks + 1, sizeof *s->region_first);
    if (!s->held_first || !s->send_bytes || !s->recv_bytes || !s->taken || !s->pieces_of ||
        !s->region_first)
        rank_failed(c, "the shares of the ranks");
    /* Every rank's count, then where each rank's share starts. */
    for (size_t r = 0; r < ranks; r++)
        s->send_bytes[r] = sizeof(size_t);
    s->held_first[c->rank + 1] = own->count;
    if (cluster_allgather(c, &s->held_first[c->rank + 1], s->held_first + 1, s->send_bytes) < 0)
        rank_failed(c, "the shares of the ranks");
    for (size_t r = 0; r < ranks; r++)
        s->held_first[r + 1] += s->held_first[r];
    s->total = s->held_first[ranks];
    s->own_first = s->held_first[c->rank];
    for (size_t r = 0; r < ranks; r++) {
        size_t first, end;
        shard_range(s->total, (int)r, c->ranks, &first, &end);
        if (first != s->held_first[r] || end != s->held_first[r + 1]) {
            shard_destroy(s);
            return error_set(err, "rank %zu holds training images [%zu, %zu), not its share "
                                  "[%zu, %zu)", r, s->held_first[r], s->held_first[r + 1],
                             first, end);
        }
    }
    const size_t step_rows = batch && batch < s->total ? batch : s->total;
    if (engine_unit_count(step_rows) < ranks) {
        const size_t units = engine_unit_count(step_rows);
        shard_destroy(s);
        return error_set(err, "a batch of %zu images is cut into %zu unit%s, fewer than the %zu "
                              "ranks: use %zu ranks at most",
                         step_rows, units, units == 1 ? "" : "s", ranks, units);
    }
    /* The other ranks go on to their next collective: a rank out of memory
     * here ends them all. */
    if (reserve(&s->unit_losses, &s->units_capacity, engine_unit_count(step_rows),
                sizeof *s->unit_losses) < 0)
        rank_failed(c, "the losses of the units");
    if (step_rows == s->total) {
        if (engine_create(&s->engine, m, own, NULL, threads, err) < 0) {
            shard_destroy(s);
            return -1;
        }
        return 0;
    }
    /* A mini-batch step's rows are at most a batch; the engine is made for
     * that many (blank images: each step brings its own lists).  Every rank
     * knows the length of every image's list, so that it knows how much
     * each other rank sends it. */
    struct error ignored;  /* the loaders' 28 x 28 images are never too wide for the lists */
    if (pixel_lists_build(&s->own_lists, own, &ignored) < 0 ||
        pixel_lists_create(&s->step_lists, width, step_rows, step_rows * s->own_lists.pairs,
                           &ignored) < 0)
        rank_failed(c, "the images' pixel lists");
    const size_t record = 1 + s->own_lists.pairs;  /* words, at most */
    s->step = (struct dataset){.count = step_rows, .rows = own->rows, .cols = own->cols};
    s->step.pixels = calloc(step_rows, width);
    s->step.labels = calloc(step_rows, 1);
    s->outgoing = malloc(step_rows * record * sizeof *s->outgoing);
    s->incoming = malloc(step_rows * record * sizeof *s->incoming);
    s->lengths = malloc(s->total * sizeof *s->lengths);
    if (!s->step.pixels || !s->step.labels || !s->outgoing || !s->incoming || !s->lengths)
        rank_failed(c, "the images of a batch");
    for (size_t i = 0; i < own->count; i++) {
        size_t length;
        pixel_lists_image(&s->own_lists, i, &length);
        s->lengths[s->own_first + i] = (uint32_t)length;
    }
    for (size_t r = 0; r < ranks; r++)
        s->send_bytes[r] = (s->held_first[r + 1] - s->held_first[r]) * sizeof *s->lengths;
    if (cluster_allgather(c, s->lengths + s->own_first, s->lengths, s->send_bytes) < 0)
        rank_failed(c, "the images of a batch");
    if (engine_create(&s->engine, m, &s->step, NULL, threads, err) < 0) {
        shard_destroy(s);
        return -1;
    }
    return 0;
}

void shard_destroy(struct shard *s)
{
    engine_destroy(s->engine);
    dataset_free(&s->step);
    pixel_lists_free(&s->own_lists);
    pixel_lists_free(&s->step_lists);
    free(s->lengths);
    free(s->held_first);
    free(s->send_bytes);
    free(s->recv_bytes);
    free(s->taken);
    free(s->pieces_of);
    free(s->region_first);
    free(s->outgoing);
    free(s->incoming);
    free(s->unit_losses);
    free(s->gathered);
    free(s->pieces);
    memset(s, 0, sizeof *s);
}

/* The rank that holds image i of the set. */
static size_t holder(const struct shard *s, size_t i)
{
    size_t low = 0, high = (size_t)s->cluster->ranks;  /* held_first[low] <= i < [high] */
    while (high - low > 1) {
        const size_t mid = low + (high - low) / 2;
        if (s->held_first[mid] <= i)
            low = mid;
        else
            high = mid;
    }
    return low;
}

/* Brings the images of this rank's rows [first, end) of the batch into
 * s->step_lists and their labels into s->step, in row order: each rank
 * sends every rank the images it holds of that rank's rows, in row order,
 * a record (the label, then the image's list) each. */
static int fetch_images(struct shard *s, const size_t *batch, size_t count, size_t first,
                        size_t end)
{
    const struct cluster *c = s->cluster;
    const size_t word = sizeof *s->outgoing;
    size_t at = 0;
    for (int r = 0; r < c->ranks; r++) {
        size_t row, row_end;
        shard_range(count, r, c->ranks, &row, &row_end);
        const size_t start = at;
        for (; row < row_end; row++) {
            const size_t image = batch[row];
            if (image < s->own_first || image - s->own_first >= s->own->count)
                continue;
            size_t length;
            const uint32_t *entries =
                pixel_lists_image(&s->own_lists, image - s->own_first, &length);
            s->outgoing[at++] = s->own->labels[image - s->own_first];
            memcpy(s->outgoing + at, entries, length * word);
            at += length;
        }
        s->send_bytes[r] = (at - start) * word;
        s->recv_bytes[r] = 0;
    }
    for (size_t row = first; row < end; row++)
        s->recv_bytes[holder(s, batch[row])] += (1 + s->lengths[batch[row]]) * word;
    for (int r = 0; r < c->ranks; r++)
        s->sent_bytes += r == c->rank ? 0 : s->send_bytes[r];
    if (cluster_exchange(c, s->outgoing, s->send_bytes, s->incoming, s->recv_bytes) < 0)
        return -1;
    for (size_t r = 0, offset = 0; r < (size_t)c->ranks; r++) {
        s->taken[r] = offset;
        offset += s->recv_bytes[r] / word;
    }
    pixel_lists_clear(&s->step_lists);
    for (size_t row = first; row < end; row++) {
        const size_t r = holder(s, batch[row]), length = s->lengths[batch[row]];
        const uint32_t *in = s->incoming + s->taken[r];
        s->step.labels[row - first] = (uint8_t)in[0];
        if (pixel_lists_append(&s->step_lists, in + 1, length) < 0)
            return -1;
        s->taken[r] += 1 + length;
    }
    s->step.count = end - first;
    return 0;
}

/* Lays out s->gathered for a batch of `count`, once a batch size: rank r's
 * region holds its pieces' partials (engine_partial_bytes apart, where its
 * engine leaves them) and then its units' losses, so that one gathering
 * brings both.  Which subtrees each rank leaves depends on the batch size
 * and its threads alone.  -1: out of memory. */
static int lay_out_regions(struct shard *s, size_t count)
{
    const struct cluster *c = s->cluster;
    const size_t ranks = (size_t)c->ranks, bytes = engine_partial_bytes(s->engine);
    if (s->pieces_for == count)
        return 0;
    s->pieces_for = 0;
    size_t unit_first, unit_end, pieces = 0;
    unit_range(count, c->rank, c->ranks, &unit_first, &unit_end);
    for (size_t r = 0; r < ranks; r++)
        s->send_bytes[r] = sizeof *s->pieces_of;
    s->pieces_of[c->rank] = engine_piece_count(unit_first, unit_end, engine_threads(s->engine));
    if (cluster_allgather(c, &s->pieces_of[c->rank], s->pieces_of, s->send_bytes) < 0)
        return -1;
    s->region_first[0] = 0;
    for (size_t r = 0; r < ranks; r++) {
        size_t r_first, r_end;
        unit_range(count, (int)r, c->ranks, &r_first, &r_end);
        const size_t losses = (r_end - r_first) * sizeof *s->unit_losses;
        /* Each region starts on a partial's alignment. */
        const size_t region = s->pieces_of[r] * bytes + (losses + ENGINE_ALIGNMENT - 1) /
                                                            ENGINE_ALIGNMENT * ENGINE_ALIGNMENT;
        s->region_first[r + 1] = s->region_first[r] + region;
        pieces += s->pieces_of[r];
    }
    free(s->gathered);
    s->gathered = aligned_alloc(ENGINE_ALIGNMENT, s->region_first[ranks]);
    if (!s->gathered || reserve(&s->pieces, &s->pieces_capacity, pieces, sizeof *s->pieces) < 0)
        return -1;
    engine_place_pieces(s->engine, (char *)s->gathered + s->region_first[c->rank],
                        s->pieces_of[c->rank]);
    return 0;
}

/* Where rank r's units' losses lie in its region of s->gathered: after its
 * pieces' partials. */
static double *region_losses(const struct shard *s, size_t r)
{
    return (double *)((char *)s->gathered + s->region_first[r] +
                      s->pieces_of[r] * engine_partial_bytes(s->engine));
}

/* Every rank's pieces, in rank (that is, unit) order, into s->pieces, and
 * every unit's loss into s->unit_losses, after this rank's step left its
 * own in its region of s->gathered.  Returns how many pieces, or 0 when
 * memory runs out.  The pieces' nodes are gathered once a batch size. */
static size_t gather_pieces(struct shard *s, size_t count)
{
    const struct cluster *c = s->cluster;
    const size_t ranks = (size_t)c->ranks, bytes = engine_partial_bytes(s->engine);
    const struct engine_piece *mine;
    const size_t n_mine = engine_pieces(s->engine, &mine);
    size_t first = 0, total = 0;
    for (size_t r = 0; r < ranks; r++) {
        first = r == (size_t)c->rank ? total : first;
        total += s->pieces_of[r];
    }
    if (s->pieces_for != count) {
        memcpy(s->pieces + first, mine, n_mine * sizeof *mine);
        for (size_t r = 0; r < ranks; r++)
            s->send_bytes[r] = s->pieces_of[r] * sizeof *s->pieces;
        if (cluster_allgather(c, s->pieces + first, s->pieces, s->send_bytes) < 0)
            return 0;
        s->sent_bytes += n_mine * sizeof *s->pieces + sizeof *s->pieces_of;
        /* The partials that came with the nodes were other ranks' addresses. */
        for (size_t r = 0, i = 0; r < ranks; r++)
            for (size_t k = 0; k < s->pieces_of[r]; k++, i++)
                s->pieces[i].partial = (char *)s->gathered + s->region_first[r] + k * bytes;
        s->pieces_for = count;
    }
    for (size_t r = 0; r < ranks; r++)
        s->send_bytes[r] = s->region_first[r + 1] - s->region_first[r];
    s->sent_bytes += s->send_bytes[c->rank];
    if (cluster_allgather(c, (char *)s->gathered + s->region_first[c->rank], s->gathered,
                          s->send_bytes) < 0)
        return 0;
    for (size_t r = 0; r < ranks; r++) {
        size_t r_first, r_end;
        unit_range(count, (int)r, c->ranks, &r_first, &r_end);
        memcpy(s->unit_losses + r_first, region_losses(s, r),
               (r_end - r_first) * sizeof *s->unit_losses);
    }
    return total;
}

double shard_step(struct shard *s, struct mlp *m, const size_t *batch, size_t count,
                  const struct optimizer *o, const struct optimizer_step *step,
                  const struct optimizer_state *state)
{
    const struct cluster *c = s->cluster;
    size_t first, end, unit_first, unit_end;
    shard_range(count, c->rank, c->ranks, &first, &end);
    unit_range(count, c->rank, c->ranks, &unit_first, &unit_end);
    s->sent_bytes = 0;
    if (batch) {
        struct error ignored;
        if (fetch_images(s, batch, count, first, end) < 0 ||
            engine_load_pixel_lists(s->engine, &s->step_lists, &ignored) < 0)
            rank_failed(c, "the batch's images");
    }
    if (lay_out_regions(s, count) < 0)
        rank_failed(c, "the ranks' subtrees");
    if (engine_share_gradient(s->engine, m, NULL, end - first, count, unit_first, unit_end) < 0)
        rank_failed(c, "the gradient");
    engine_unit_losses(s->engine, region_losses(s, (size_t)c->rank));
    /* Every piece and every unit's loss: the same on every rank. */
    const size_t pieces = gather_pieces(s, count);
    if (!pieces ||
        engine_update_from_pieces(s->engine, m, s->pieces, pieces, o, step, state) < 0)
        rank_failed(c, "the ranks' subtrees");
    return engine_batch_loss(m, s->unit_losses, count);
}
