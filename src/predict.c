#include <config.h>

#include "predict.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "evaluate.h"
#include "image.h"
#include "modelfile.h"
#include "options.h"
#include "weights.h"

static const char predict_usage[] =
    "Usage: mnist-omp predict --load FILE [OPTION]... IMAGE...\n"
    "Classify 28x28 grayscale images (PGM P2/P5 or PNG) with a model saved by\n"
    "mnist-omp --save, printing the predicted digit and the softmax probabilities.\n"
    "\n"
    "  -l, --load FILE     the model (or safetensors: see mnist-omp export --help)\n"
    "      --activation A  relu, tanh or sigmoid: the hidden layers' activation,\n"
    "                      for a safetensors file that does not say it\n"
    "  -i, --invert        the images have dark digits on a light background\n"
    "                      (transparent pixels are taken as white, else as black)\n"
    "      --logits        print the logits, to 17 digits, instead of the\n"
    "                      probabilities\n"
    "  -h, --help          show this help and exit\n";

/* predict_image before the softmax: the logits themselves. */
static int predict_logits(const struct mlp *m, const char *path, bool invert, int *digit,
                          double *logits, struct error *err)
{
    struct gray_image image = {0};
    struct evaluation ev;
    uint8_t label = 0;

    if (mlp_inputs(m) != MNIST_SIDE * MNIST_SIDE)
        return error_set(err, "the model takes %zu inputs, not the %d pixels of a %dx%d digit",
                         mlp_inputs(m), MNIST_SIDE * MNIST_SIDE, MNIST_SIDE, MNIST_SIDE);
    if (image_read(path, invert ? 255 : 0, &image, err) < 0)
        return -1;
    if (image.width != MNIST_SIDE || image.height != MNIST_SIDE) {
        error_set(err, "%s: the image is %zux%zu pixels; the model reads %dx%d digits", path,
                  image.width, image.height, MNIST_SIDE, MNIST_SIDE);
        gray_image_free(&image);
        return -1;
    }
    if (invert)
        for (size_t i = 0; i < MNIST_SIDE * MNIST_SIDE; i++)
            image.pixels[i] = (uint8_t)(255 - image.pixels[i]);
    const struct dataset one = {1, MNIST_SIDE, MNIST_SIDE, image.pixels, &label};
    const int status = evaluate(&ev, m, &one, err);
    gray_image_free(&image);
    if (status < 0)
        return -1;
    *digit = ev.predicted[0];
    memcpy(logits, ev.logits, mlp_outputs(m) * sizeof *logits);
    evaluation_free(&ev);
    return 0;
}

int predict_image(const struct mlp *m, const char *path, bool invert, int *digit,
                  double *probabilities, struct error *err)
{
    if (predict_logits(m, path, invert, digit, probabilities, err) < 0)
        return -1;
    softmax(probabilities, mlp_outputs(m), probabilities);
    return 0;
}

int predict_main(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"load", required_argument, NULL, 'l'},
        {"invert", no_argument, NULL, 'i'},
        {"activation", required_argument, NULL, 'a'},
        {"logits", no_argument, NULL, 'g'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct usage usage = {stderr, "predict"};
    const char *model_path = NULL;
    struct weights_hints hints = {.activation = ACTIVATION_RELU, .loss = LOSS_MSE};
    bool invert = false, logits = false;
    int code;

    optind = 1;
    opterr = 0;
    while ((code = getopt_long(argc, argv, ":l:ih", long_options, NULL)) != -1) {
        if (code == 'l') {
            model_path = optarg;
        } else if (code == 'i') {
            invert = true;
        } else if (code == 'g') {
            logits = true;
        } else if (code == 'a') {
            if (options_parse_activation(optarg, &hints.activation, &usage) < 0)
                return EXIT_USAGE;
            hints.has_activation = true;
        } else if (code == 'h') {
            fputs(predict_usage, stdout);
            return EXIT_SUCCESS;
        } else {
            options_bad_option(&usage, long_options, code, argv);
            return EXIT_USAGE;
        }
    }
    if (!model_path || optind == argc) {
        options_usage_error(&usage, "give --load FILE and at least one image");
        return EXIT_USAGE;
    }

    struct mlp m;
    struct error err;
    if (weights_load(model_path, &hints, &m, NULL, &err) < 0) {
        fprintf(stderr, "mnist-omp: %s\n", err.msg);
        return EXIT_FAILURE;
    }
    const size_t outputs = mlp_outputs(&m);
    double *values = malloc(outputs * sizeof *values);
    int status = EXIT_SUCCESS;
    if (!values) {
        fprintf(stderr, "mnist-omp: out of memory\n");
        status = EXIT_FAILURE;
    }
    for (int i = optind; i < argc && values; i++) {
        int digit;
        if ((logits ? predict_logits(&m, argv[i], invert, &digit, values, &err)
                    : predict_image(&m, argv[i], invert, &digit, values, &err)) < 0) {
            fprintf(stderr, "mnist-omp: %s\n", err.msg);
            status = EXIT_FAILURE;
            continue;
        }
        if (logits)
            printf("%s: %d  logits:", argv[i], digit);
        else
            printf("%s: %d (%.1f%%)  probabilities:", argv[i], digit, 100 * values[digit]);
        for (size_t o = 0; o < outputs; o++)
            printf(logits ? " %zu:%.17g" : " %zu:%.4f", o, values[o]);
        putchar('\n');
    }
    free(values);
    mlp_free(&m);
    return status;
}
