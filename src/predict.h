/* `mnist-omp predict`: classify 28x28 grayscale images (PGM or PNG) with a
 * saved model. */
#ifndef MNIST_OMP_PREDICT_H
#define MNIST_OMP_PREDICT_H

#include <stdbool.h>

#include "error.h"
#include "model.h"

/* Classifies the image at path with any network m whose inputs are a 28x28
 * digit's pixels: the predicted class (the first maximum of the logits) and
 * the softmax of the logits (mlp_outputs(m) of them) into probabilities.
 * invert turns dark digits on a light background into MNIST's light digits
 * on black.  Refuses images that are not 28x28 and networks of another
 * input size. */
int predict_image(const struct mlp *m, const char *path, bool invert, int *digit,
                  double *probabilities, struct error *err);

/* Runs the command with the arguments that follow `predict`; returns the
 * exit status. */
int predict_main(int argc, char **argv);

#endif
