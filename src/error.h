/* Error reporting shared by every module: a fixed buffer the caller owns,
 * so that library code never prints and never exits on its own. */
#ifndef MNIST_OMP_ERROR_H
#define MNIST_OMP_ERROR_H

#include <stddef.h>

struct error {
    char msg[1024];
};

#if defined(__GNUC__)
#define ERROR_PRINTF(fmt_arg) __attribute__((format(printf, fmt_arg, fmt_arg + 1)))
#else
#define ERROR_PRINTF(fmt_arg)
#endif

/* Formats a message into err (when err is not NULL) and returns -1, so that a
 * failing function can end with `return error_set(err, ...);`. */
int error_set(struct error *err, const char *fmt, ...) ERROR_PRINTF(2);

#endif
