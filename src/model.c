#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct mlp_layout mlp_layout(size_t n_in, size_t n_hidden, size_t n_out)
{
    struct mlp_layout l;
    l.w1 = 0;
    l.b1 = l.w1 + n_in * n_hidden;
    l.w2 = l.b1 + n_hidden;
    l.b2 = l.w2 + n_hidden * n_out;
    l.count = l.b2 + n_out;
    return l;
}

size_t precision_size(enum precision precision)
{
    return precision == PRECISION_F64 ? sizeof(double) : sizeof(float);
}

const char *precision_name(enum precision precision)
{
    return precision == PRECISION_F64 ? "float64" : "float32";
}

const char *precision_short_name(enum precision precision)
{
    return precision == PRECISION_F64 ? "f64" : "f32";
}

int precision_parse(const char *name, enum precision *precision)
{
    for (int p = PRECISION_F32; p <= PRECISION_F64; p++)
        if (strcmp(name, precision_name((enum precision)p)) == 0 ||
            strcmp(name, precision_short_name((enum precision)p)) == 0) {
            *precision = (enum precision)p;
            return 0;
        }
    return -1;
}

int mlp_check_inputs(const struct mlp *m, size_t pixels, struct error *err)
{
    if (pixels != m->n_in)
        return error_set(err, "images have %zu pixels but the network has %zu inputs", pixels,
                         m->n_in);
    return 0;
}

size_t mlp_param_count(const struct mlp *m)
{
    return mlp_layout(m->n_in, m->n_hidden, m->n_out).count;
}

int mlp_create(struct mlp *m, size_t n_in, size_t n_hidden, size_t n_out,
               enum precision precision, struct error *err)
{
    memset(m, 0, sizeof *m);
    if (n_in == 0 || n_hidden == 0 || n_out == 0)
        return error_set(err, "network sizes must be positive (got %zu-%zu-%zu)",
                         n_in, n_hidden, n_out);
    m->n_in = n_in;
    m->n_hidden = n_hidden;
    m->n_out = n_out;
    m->precision = precision;
    m->params = calloc(mlp_param_count(m), precision_size(precision));
    if (!m->params)
        return error_set(err, "out of memory for a %zu-%zu-%zu network", n_in, n_hidden, n_out);
    return 0;
}

void mlp_free(struct mlp *m)
{
    free(m->params);
    memset(m, 0, sizeof *m);
}

static void set_param(struct mlp *m, size_t i, double value)
{
    if (m->precision == PRECISION_F64)
        ((double *)m->params)[i] = value;
    else
        ((float *)m->params)[i] = (float)value;
}

double mlp_param(const struct mlp *m, size_t i)
{
    if (m->precision == PRECISION_F64)
        return ((const double *)m->params)[i];
    return ((const float *)m->params)[i];
}

int mlp_is_finite(const struct mlp *m)
{
    for (size_t i = 0; i < mlp_param_count(m); i++)
        if (!isfinite(mlp_param(m, i)))
            return 0;
    return 1;
}

static void fill_uniform(struct mlp *m, size_t first, size_t count, size_t fan_in,
                         struct py_random *rng)
{
    const double bound = 1.0 / sqrt((double)fan_in);
    for (size_t i = 0; i < count; i++)
        set_param(m, first + i, py_random_uniform(rng, -bound, bound));
}

void mlp_init_xavier(struct mlp *m, struct py_random *rng)
{
    struct mlp_layout l = mlp_layout(m->n_in, m->n_hidden, m->n_out);
    memset(m->params, 0, l.count * precision_size(m->precision));
    fill_uniform(m, l.w1, m->n_in * m->n_hidden, m->n_in, rng);
    fill_uniform(m, l.w2, m->n_hidden * m->n_out, m->n_hidden, rng);
}
