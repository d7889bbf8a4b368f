/* Wall-clock time for timing training epochs. */
#ifndef MNIST_OMP_CLOCK_H
#define MNIST_OMP_CLOCK_H

/* Seconds on a monotonic clock (only differences are meaningful). */
double clock_seconds(void);

#endif
