/* The tensors of weights.h, telling the formats apart when loading, and the
 * export command. */
#include <config.h>

#include "weights.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset.h"
#include "npz.h"
#include "options.h"
#include "safetensors.h"

static const char export_usage[] =
    "Usage: mnist-omp export --load FILE [--activation A] [--loss L] OUT\n"
    "Write a network's weights as OUT.safetensors (safetensors) or OUT.npz\n"
    "(NumPy), tensors named as in a PyTorch nn.Sequential of nn.Linear and\n"
    "activation modules (0.weight, 0.bias, 2.weight ...); any other name\n"
    "gets an mnist-omp model file.\n"
    "\n"
    "  -l, --load FILE     the network: an mnist-omp model or checkpoint, or a\n"
    "                      safetensors file with those tensors\n"
    "      --activation A  relu, tanh or sigmoid: the hidden layers' activation,\n"
    "                      for a safetensors file that does not say it\n"
    "      --loss L        mse or xent, likewise (default mse)\n"
    "  -h, --help          show this help and exit\n";

size_t weights_tensor_count(const struct mlp *m)
{
    return 2 * m->n_layers;
}

struct weights_tensor weights_tensor(const struct mlp *m, size_t k)
{
    const struct mlp_layer layer = mlp_layer(m, k / 2);
    struct weights_tensor t = {.shape = {layer.n_out, layer.n_in}};
    const bool weight = k % 2 == 0;
    snprintf(t.name, sizeof t.name, "%zu.%s", k / 2 * 2, weight ? "weight" : "bias");
    t.dims = weight ? 2 : 1;
    t.count = weight ? layer.n_out * layer.n_in : layer.n_out;
    return t;
}

/* Where element j of tensor k lies in the arena: a weight is stored
 * n_in x n_out, and read out n_out x n_in. */
static size_t arena_index(const struct mlp *m, size_t k, size_t j)
{
    const struct mlp_layer layer = mlp_layer(m, k / 2);
    if (k % 2 == 1)
        return layer.bias + j;
    return layer.weights + j % layer.n_in * layer.n_out + j / layer.n_in;
}

void weights_tensor_encode(const struct mlp *m, size_t k, uint8_t *out)
{
    const size_t count = weights_tensor(m, k).count, width = precision_size(m->precision);
    for (size_t j = 0; j < count; j++) {
        const size_t i = arena_index(m, k, j);
        uint64_t bits = 0;
        if (m->precision == PRECISION_F64) {
            memcpy(&bits, (const double *)m->params + i, 8);
        } else {
            uint32_t bits32;
            memcpy(&bits32, (const float *)m->params + i, 4);
            bits = bits32;
        }
        for (size_t b = 0; b < width; b++)
            out[j * width + b] = (uint8_t)(bits >> 8 * b);
    }
}

void weights_tensor_decode(struct mlp *m, size_t k, const uint8_t *in)
{
    const size_t count = weights_tensor(m, k).count, width = precision_size(m->precision);
    for (size_t j = 0; j < count; j++) {
        const size_t i = arena_index(m, k, j);
        uint64_t bits = 0;
        for (size_t b = 0; b < width; b++)
            bits |= (uint64_t)in[j * width + b] << 8 * b;
        if (m->precision == PRECISION_F64) {
            memcpy((double *)m->params + i, &bits, 8);
        } else {
            const uint32_t bits32 = (uint32_t)bits;
            memcpy((float *)m->params + i, &bits32, 4);
        }
    }
}

static bool ends_with(const char *text, const char *suffix)
{
    const size_t n = strlen(text), k = strlen(suffix);
    return n >= k && strcmp(text + n - k, suffix) == 0;
}

/* A safetensors file starts with its header's length and then the JSON
 * object's '{'; a model file of ours with "MNISTOMP".  Whatever is neither
 * goes to model_load, whose messages explain what a model file must be;
 * a name ending in .safetensors goes to the safetensors loader, whose
 * messages explain that format. */
static int is_safetensors(const char *path, struct error *err)
{
    if (ends_with(path, ".safetensors"))
        return 1;
    off_t size;
    const int fd = dataset_open_regular(path, &size, err);
    if (fd < 0)
        return -1;
    char start[9];
    const bool json = size >= 9 && read(fd, start, sizeof start) == (ssize_t)sizeof start &&
                      start[8] == '{';
    close(fd);
    return json;
}

int weights_load(const char *path, const struct weights_hints *hints, struct mlp *m,
                 struct model_metadata *meta, struct error *err)
{
    const int safetensors = is_safetensors(path, err);
    if (safetensors < 0) {
        memset(m, 0, sizeof *m);
        return -1;
    }
    if (safetensors)
        return safetensors_load(path, hints, m, meta, err);
    return model_load(path, MODEL_FILE_MODEL, m, meta, NULL, err);
}

int export_main(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"load", required_argument, NULL, 'l'},
        {"activation", required_argument, NULL, 'a'},
        {"loss", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct usage usage = {stderr, "export"};
    struct weights_hints hints = {.activation = ACTIVATION_RELU, .loss = LOSS_MSE};
    const char *model_path = NULL;
    int code;

    optind = 1;
    opterr = 0;
    while ((code = getopt_long(argc, argv, ":l:h", long_options, NULL)) != -1) {
        if (code == 'l') {
            model_path = optarg;
        } else if (code == 'a') {
            if (options_parse_activation(optarg, &hints.activation, &usage) < 0)
                return EXIT_USAGE;
            hints.has_activation = true;
        } else if (code == 'o') {
            if (options_parse_loss(optarg, &hints.loss, &usage) < 0)
                return EXIT_USAGE;
            hints.has_loss = true;
        } else if (code == 'h') {
            fputs(export_usage, stdout);
            return EXIT_SUCCESS;
        } else {
            options_bad_option(&usage, long_options, code, argv);
            return EXIT_USAGE;
        }
    }
    if (!model_path || argc - optind != 1) {
        options_usage_error(&usage, "give --load FILE and one output file");
        return EXIT_USAGE;
    }

    const char *out = argv[optind];
    struct mlp m;
    struct model_metadata meta;
    struct error err;
    int status = weights_load(model_path, &hints, &m, &meta, &err);
    if (status == 0) {
        if (ends_with(out, ".safetensors"))
            status = safetensors_save(out, &m, &meta, &err);
        else if (ends_with(out, ".npz"))
            status = npz_save(out, &m, &err);
        else
            status = model_save(out, MODEL_FILE_MODEL, &m, &meta, NULL, &err);
        mlp_free(&m);
    }
    if (status != 0) {
        fprintf(stderr, "mnist-omp: %s\n", err.msg);
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}
