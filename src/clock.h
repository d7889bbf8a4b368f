/* Wall-clock time for timing training epochs. */
#ifndef MNIST_OMP_CLOCK_H
#define MNIST_OMP_CLOCK_H

#include <stddef.h>

/* Seconds on a monotonic clock (only differences are meaningful). */
double clock_seconds(void);

/* The median, fastest and slowest of a set of timings. */
struct timing_spread {
    double median, min, max;
};

/* Of seconds[0 .. n), n >= 1, which it sorts in place. */
struct timing_spread timing_spread(double *seconds, size_t n);

#endif
