/* `mnist-omp bench`: training epochs timed at several thread counts, sizes
 * and precisions, against this machine's measured FMA peak. */
#ifndef MNIST_OMP_BENCH_H
#define MNIST_OMP_BENCH_H

/* Runs the benchmark with the arguments that follow `bench`; returns the
 * exit status. */
int bench_main(int argc, char **argv);

#endif
