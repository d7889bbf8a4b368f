/* The network: a multilayer perceptron given by its list of layer widths
 * (inputs, hidden layers, outputs), one activation for every hidden layer,
 * a linear output layer and a loss.  Its parameters live in one arena,
 * W1 b1 W2 b2 ... layer after layer (each W n_in x n_out, row-major), so
 * that gradients, optimiser moments, checkpoints and comparisons treat them
 * as a single array laid out by the same table of tensors.  With widths
 * 784,32,10, ReLU and MSE this is the tutorial's network, in its layout. */
#ifndef MNIST_OMP_MODEL_H
#define MNIST_OMP_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "rng.h"

enum precision { PRECISION_F32, PRECISION_F64 };

enum activation { ACTIVATION_RELU, ACTIVATION_TANH, ACTIVATION_SIGMOID };

enum loss { LOSS_MSE, LOSS_XENT };

/* The most weight layers a network may have (hidden layers + 1). */
enum { MLP_MAX_LAYERS = 64 };

/* The widest layer a network may have. */
#define MLP_MAX_WIDTH (1u << 20)

struct mlp {
    size_t n_layers;                    /* weight layers: hidden layers + 1 */
    size_t widths[MLP_MAX_LAYERS + 1];  /* widths[0]: inputs ... widths[n_layers]: outputs */
    enum activation activation;         /* of every hidden layer */
    enum loss loss;
    enum precision precision;
    void *params;                       /* the arena, layout of mlp_layer */
};

/* Layer l (0 = the first, fed by the inputs) as a table entry: its sizes and
 * where its weights (n_in x n_out, row-major) and biases (n_out) start in the
 * arena, counted in elements. */
struct mlp_layer {
    size_t n_in, n_out;
    size_t weights, bias;
};

struct mlp_layer mlp_layer(const struct mlp *m, size_t l);
size_t mlp_inputs(const struct mlp *m);
size_t mlp_outputs(const struct mlp *m);
/* The widest layer, inputs and outputs included. */
size_t mlp_max_width(const struct mlp *m);

/* Checks a network's shape before anything is allocated: 1..MLP_MAX_LAYERS
 * weight layers, every width in 1..MLP_MAX_WIDTH, and a parameter count
 * whose `copies` arenas (parameters, gradients, moments ...) of the given
 * precision fit in size_t and in this machine's memory.  *count receives the
 * parameter count. */
int mlp_check_shape(size_t n_layers, const size_t *widths, enum precision precision,
                    size_t copies, size_t *count, struct error *err);

/* Allocates a model of that shape with all parameters zero. */
int mlp_create(struct mlp *m, size_t n_layers, const size_t *widths, enum activation activation,
               enum loss loss, enum precision precision, struct error *err);
void mlp_free(struct mlp *m);

/* Whether a and b have the same widths, activation, loss and precision. */
bool mlp_same_shape(const struct mlp *a, const struct mlp *b);

/* Writes the widths as "784-32-10" into text (size bytes, always terminated). */
void mlp_format_widths(const struct mlp *m, char *text, size_t size);

size_t mlp_param_count(const struct mlp *m);
size_t precision_size(enum precision precision);
const char *precision_name(enum precision precision);        /* "float32", "float64" */
const char *precision_short_name(enum precision precision);  /* "f32", "f64" */
/* Reads either name; -1 for anything else. */
int precision_parse(const char *name, enum precision *precision);

const char *activation_name(enum activation activation);  /* "relu", "tanh", "sigmoid" */
int activation_parse(const char *name, enum activation *activation);
const char *loss_name(enum loss loss);                    /* "mse", "xent" */
int loss_parse(const char *name, enum loss *loss);

/* Checks that images of `pixels` pixels fit the inputs of m. */
int mlp_check_inputs(const struct mlp *m, size_t pixels, struct error *err);

/* The initialisation of SPEC part 2, drawn exactly as CPython would: layer
 * by layer from the input, W row by row, each entry uniform(-1/sqrt(n_in),
 * 1/sqrt(n_in)); every bias zero.  With one hidden layer it is the
 * tutorial's draw. */
void mlp_init_uniform(struct mlp *m, struct py_random *rng);

/* Nonzero when every parameter is a finite number. */
int mlp_is_finite(const struct mlp *m);

/* Parameter i as a double, whatever the precision. */
double mlp_param(const struct mlp *m, size_t i);

#endif
