#include <config.h>

#include "model.h"
#include "names.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct mlp_layer mlp_layer(const struct mlp *m, size_t l)
{
    struct mlp_layer layer = {m->widths[l], m->widths[l + 1], 0, 0};
    for (size_t k = 0; k < l; k++)
        layer.weights += m->widths[k] * m->widths[k + 1] + m->widths[k + 1];
    layer.bias = layer.weights + layer.n_in * layer.n_out;
    return layer;
}

size_t mlp_inputs(const struct mlp *m)
{
    return m->widths[0];
}

size_t mlp_outputs(const struct mlp *m)
{
    return m->widths[m->n_layers];
}

size_t mlp_max_width(const struct mlp *m)
{
    size_t widest = 0;
    for (size_t l = 0; l <= m->n_layers; l++)
        if (m->widths[l] > widest)
            widest = m->widths[l];
    return widest;
}

/* Bytes of memory this machine has; SIZE_MAX when it cannot tell. */
static size_t physical_memory(void)
{
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0 || (unsigned long)pages > SIZE_MAX / (unsigned long)page)
        return SIZE_MAX;
    return (size_t)pages * (size_t)page;
}

int mlp_check_shape(size_t n_layers, const size_t *widths, enum precision precision,
                    size_t copies, size_t *count, struct error *err)
{
    if (n_layers < 1 || n_layers > MLP_MAX_LAYERS)
        return error_set(err, "a network has 1 to %d layers of weights (got %zu)",
                         MLP_MAX_LAYERS, n_layers);
    for (size_t l = 0; l <= n_layers; l++)
        if (widths[l] < 1 || widths[l] > MLP_MAX_WIDTH)
            return error_set(err, "layer widths must lie in 1..%u (got %zu)", MLP_MAX_WIDTH,
                             widths[l]);
    /* Counted in 64 bits (each layer < 2^41, at most 2^47 in all), so that
     * a 32-bit size_t cannot wrap before the comparison with SIZE_MAX. */
    uint64_t total = 0;
    for (size_t l = 0; l < n_layers; l++)
        total += (uint64_t)widths[l] * widths[l + 1] + widths[l + 1];
    if (total > SIZE_MAX)
        return error_set(err, "the network has too many parameters to count");
    const size_t params = (size_t)total;
    const size_t element = precision_size(precision), memory = physical_memory();
    if (params > memory / element / (copies ? copies : 1))
        return error_set(err,
                         "the network's %zu parameters would need %.3g GB in %s for its %zu "
                         "arrays, more than this machine's %.3g GB of memory",
                         params, (double)params * (double)element * (double)copies / 1e9,
                         precision_name(precision), copies, (double)memory / 1e9);
    *count = params;
    return 0;
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

static const char *const activation_names[] = {"relu", "tanh", "sigmoid"};
static const char *const loss_names[] = {"mse", "xent"};

const char *activation_name(enum activation activation)
{
    return activation_names[activation];
}

int activation_parse(const char *name, enum activation *activation)
{
    const int i = name_index(name, activation_names, 3);
    if (i >= 0)
        *activation = (enum activation)i;
    return i < 0 ? -1 : 0;
}

const char *loss_name(enum loss loss)
{
    return loss_names[loss];
}

int loss_parse(const char *name, enum loss *loss)
{
    const int i = name_index(name, loss_names, 2);
    if (i >= 0)
        *loss = (enum loss)i;
    return i < 0 ? -1 : 0;
}

int mlp_check_inputs(const struct mlp *m, size_t pixels, struct error *err)
{
    if (pixels != mlp_inputs(m))
        return error_set(err, "images have %zu pixels but the network has %zu inputs", pixels,
                         mlp_inputs(m));
    return 0;
}

size_t mlp_param_count(const struct mlp *m)
{
    const struct mlp_layer last = mlp_layer(m, m->n_layers - 1);
    return last.bias + last.n_out;
}

int mlp_create(struct mlp *m, size_t n_layers, const size_t *widths, enum activation activation,
               enum loss loss, enum precision precision, struct error *err)
{
    size_t count;
    memset(m, 0, sizeof *m);
    if (mlp_check_shape(n_layers, widths, precision, 1, &count, err) < 0)
        return -1;
    m->n_layers = n_layers;
    memcpy(m->widths, widths, (n_layers + 1) * sizeof *widths);
    m->activation = activation;
    m->loss = loss;
    m->precision = precision;
    m->params = calloc(count, precision_size(precision));
    if (!m->params) {
        char shape[64];
        mlp_format_widths(m, shape, sizeof shape);
        memset(m, 0, sizeof *m);
        return error_set(err, "out of memory for a %s network", shape);
    }
    return 0;
}

void mlp_free(struct mlp *m)
{
    free(m->params);
    memset(m, 0, sizeof *m);
}

bool mlp_same_shape(const struct mlp *a, const struct mlp *b)
{
    if (a->n_layers != b->n_layers || a->activation != b->activation || a->loss != b->loss ||
        a->precision != b->precision)
        return false;
    for (size_t l = 0; l <= a->n_layers; l++)
        if (a->widths[l] != b->widths[l])
            return false;
    return true;
}

void mlp_format_widths(const struct mlp *m, char *text, size_t size)
{
    size_t used = 0;
    text[0] = '\0';
    for (size_t l = 0; l <= m->n_layers && used < size; l++) {
        const int n = snprintf(text + used, size - used, "%s%zu", l ? "-" : "", m->widths[l]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
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
    const size_t count = mlp_param_count(m);
    for (size_t i = 0; i < count; i++)
        if (!isfinite(mlp_param(m, i)))
            return 0;
    return 1;
}

void mlp_init_uniform(struct mlp *m, struct py_random *rng)
{
    memset(m->params, 0, mlp_param_count(m) * precision_size(m->precision));
    for (size_t l = 0; l < m->n_layers; l++) {
        const struct mlp_layer layer = mlp_layer(m, l);
        const double bound = 1.0 / sqrt((double)layer.n_in);
        for (size_t i = 0; i < layer.n_in * layer.n_out; i++)
            set_param(m, layer.weights + i, py_random_uniform(rng, -bound, bound));
    }
}
