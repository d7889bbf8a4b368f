/* Trained weights in the formats Python users load in one line, beside our
 * own (doc/model-format.md, "safetensors and .npz"): a network of L layers
 * is 2L tensors named as a PyTorch nn.Sequential of nn.Linear and
 * activation modules holds them, so that load_state_dict takes them as they
 * are.  Tensor k is layer l = k / 2's weight ("2l.weight", n_out x n_in, our
 * W transposed) when k is even, its bias ("2l.bias", n_out) when k is odd.
 * Values are little-endian IEEE-754 in the network's precision. */
#ifndef MNIST_OMP_WEIGHTS_H
#define MNIST_OMP_WEIGHTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "model.h"
#include "modelfile.h"

/* Room for "126.weight", and for any index the compiler can imagine. */
enum { WEIGHTS_NAME_SIZE = 32 };

struct weights_tensor {
    char name[WEIGHTS_NAME_SIZE];
    size_t dims;      /* 2 for a weight, 1 for a bias */
    size_t shape[2];  /* {n_out, n_in} or {n_out} */
    size_t count;     /* elements */
};

size_t weights_tensor_count(const struct mlp *m);
struct weights_tensor weights_tensor(const struct mlp *m, size_t k);

/* Tensor k of m as little-endian bytes (count * precision_size) into out,
 * and back from in into m's arena. */
void weights_tensor_encode(const struct mlp *m, size_t k, uint8_t *out);
void weights_tensor_decode(struct mlp *m, size_t k, const uint8_t *in);

/* What a file that holds only tensors cannot say, for weights_load:
 * the hidden layers' activation and the loss when given on the command line
 * (which a file that says them must agree with), and the loss to take when
 * neither does. */
struct weights_hints {
    bool has_activation, has_loss;
    enum activation activation;
    enum loss loss;
};

/* Loads a network from a model file of ours or (told apart by its first
 * bytes) a safetensors file, as model_load with MODEL_FILE_MODEL does. */
int weights_load(const char *path, const struct weights_hints *hints, struct mlp *m,
                 struct model_metadata *meta, struct error *err);

/* Runs `mnist-omp export` with the arguments that follow `export`; returns
 * the exit status. */
int export_main(int argc, char **argv);

#endif
