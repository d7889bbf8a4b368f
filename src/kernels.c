#include "kernels.h"

#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Slices are what threads share out: 32 keep up to 16 threads busy with
 * little imbalance while the slice-order reduction, which reads every
 * slice's partial gradient, stays cheap.  A slice holds at least
 * MIN_SLICE_SAMPLES samples so that small batches are not cut into slivers.
 * The reduction works on blocks of REDUCE_BLOCK gradient elements. */
enum { MAX_SLICES = 32, MIN_SLICE_SAMPLES = 128, REDUCE_BLOCK = 1024, ALIGNMENT = 64 };

struct engine {
    enum precision precision;
    struct mlp_layout layout;
    struct pixel_rows rows;
    size_t n_slices;
    size_t partial_stride;  /* elements between two slices' partial gradients */
    size_t scratch_stride;  /* elements between two slices' scratch spaces */
    void *partials;         /* n_slices partial gradients */
    void *scratch;
    void *grad;             /* the summed gradient, layout of params */
    double *slice_error;    /* sum of squared errors of each slice */
    union {
        float f32[256];
        double f64[256];
    } pixel_value_table;
    void *pixel_value;
};

size_t engine_slice_count(size_t n)
{
    size_t slices = (n + MIN_SLICE_SAMPLES - 1) / MIN_SLICE_SAMPLES;
    if (slices > MAX_SLICES)
        slices = MAX_SLICES;
    return slices ? slices : 1;
}

/* Rounds a count of elements up so that consecutive blocks start on separate
 * cache lines (no false sharing between slices). */
static size_t padded_count(size_t count, size_t element_size)
{
    const size_t per_line = ALIGNMENT / element_size;
    return (count + per_line - 1) / per_line * per_line;
}

static void *aligned_zalloc(size_t count, size_t element_size)
{
    const size_t bytes = padded_count(count, element_size) * element_size;
    void *p = aligned_alloc(ALIGNMENT, bytes ? bytes : ALIGNMENT);
    if (p)
        memset(p, 0, bytes);
    return p;
}

#define REAL float
#define FN(name) name##_f32
#include "kernels_impl.h"
#undef REAL
#undef FN

#define REAL double
#define FN(name) name##_f64
#include "kernels_impl.h"
#undef REAL
#undef FN

int pixel_rows_build(struct pixel_rows *rows, const struct dataset *ds, struct error *err)
{
    const size_t width = dataset_image_size(ds);
    size_t nonzeros = 0;

    memset(rows, 0, sizeof *rows);
    if (width > UINT16_MAX + (size_t)1)
        return error_set(err, "images of %zu pixels are too large for the engine", width);
    for (size_t i = 0; i < ds->count * width; i++)
        nonzeros += ds->pixels[i] != 0;
    if (nonzeros > UINT32_MAX)
        return error_set(err, "%zu nonzero pixels are too many for the engine", nonzeros);

    rows->count = ds->count;
    rows->width = width;
    rows->labels = ds->labels;
    rows->start = malloc((ds->count + 1) * sizeof *rows->start);
    rows->column = malloc((nonzeros ? nonzeros : 1) * sizeof *rows->column);
    rows->value = malloc(nonzeros ? nonzeros : 1);
    if (!rows->start || !rows->column || !rows->value) {
        pixel_rows_free(rows);
        return error_set(err, "out of memory for %zu images", ds->count);
    }
    uint32_t next = 0;
    for (size_t n = 0; n < ds->count; n++) {
        const uint8_t *image = ds->pixels + n * width;
        rows->start[n] = next;
        for (size_t k = 0; k < width; k++) {
            if (image[k]) {
                rows->column[next] = (uint16_t)k;
                rows->value[next] = image[k];
                next++;
            }
        }
    }
    rows->start[ds->count] = next;
    return 0;
}

void pixel_rows_free(struct pixel_rows *rows)
{
    free(rows->start);
    free(rows->column);
    free(rows->value);
    memset(rows, 0, sizeof *rows);
}

int engine_create(struct engine **out, const struct mlp *m, const struct dataset *ds,
                  struct error *err)
{
    *out = NULL;
    if (ds->count == 0)
        return error_set(err, "cannot train on an empty training set");
    if (dataset_image_size(ds) != m->n_in)
        return error_set(err, "images have %zu pixels but the network has %zu inputs",
                         dataset_image_size(ds), m->n_in);

    struct engine *e = calloc(1, sizeof *e);
    if (!e)
        return error_set(err, "out of memory");
    if (pixel_rows_build(&e->rows, ds, err) < 0) {
        free(e);
        return -1;
    }
    const size_t real_size = precision_size(m->precision);
    e->precision = m->precision;
    e->layout = mlp_layout(m->n_in, m->n_hidden, m->n_out);
    e->n_slices = engine_slice_count(ds->count);
    e->partial_stride = padded_count(e->layout.count, real_size);
    e->scratch_stride = padded_count(2 * m->n_hidden + 2 * m->n_out, real_size);
    e->partials = aligned_zalloc(e->n_slices * e->partial_stride, real_size);
    e->scratch = aligned_zalloc(e->n_slices * e->scratch_stride, real_size);
    e->grad = aligned_zalloc(e->layout.count, real_size);
    e->slice_error = calloc(e->n_slices, sizeof *e->slice_error);
    if (!e->partials || !e->scratch || !e->grad || !e->slice_error) {
        engine_destroy(e);
        return error_set(err, "out of memory for the engine's gradient buffers");
    }
    if (e->precision == PRECISION_F64) {
        fill_pixel_values_f64(e->pixel_value_table.f64);
        e->pixel_value = e->pixel_value_table.f64;
    } else {
        fill_pixel_values_f32(e->pixel_value_table.f32);
        e->pixel_value = e->pixel_value_table.f32;
    }
    *out = e;
    return 0;
}

void engine_destroy(struct engine *e)
{
    if (!e)
        return;
    pixel_rows_free(&e->rows);
    free(e->partials);
    free(e->scratch);
    free(e->grad);
    free(e->slice_error);
    free(e);
}

double engine_loss_and_gradient(struct engine *e, const struct mlp *m)
{
    if (e->precision == PRECISION_F64)
        return loss_and_gradient_f64(e, m);
    return loss_and_gradient_f32(e, m);
}

const void *engine_gradient(const struct engine *e)
{
    return e->grad;
}

double engine_epoch(struct engine *e, struct mlp *m, double lr)
{
    const double loss = engine_loss_and_gradient(e, m);
    if (e->precision == PRECISION_F64)
        apply_gradient_f64(e, m, lr);
    else
        apply_gradient_f32(e, m, lr);
    return loss;
}

int mlp_predict(const struct mlp *m, const struct pixel_rows *rows, size_t first,
                size_t count, double *logits, struct error *err)
{
    const size_t real_size = precision_size(m->precision);
    void *hidden = malloc(m->n_hidden * real_size);
    void *out = malloc(m->n_out * real_size);
    if (!hidden || !out) {
        free(hidden);
        free(out);
        return error_set(err, "out of memory");
    }
    if (m->precision == PRECISION_F64)
        predict_f64(m, rows, first, count, hidden, out, logits);
    else
        predict_f32(m, rows, first, count, hidden, out, logits);
    free(hidden);
    free(out);
    return 0;
}

int engine_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void engine_set_threads(int n)
{
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}
