/* `mnist-omp bench --recipe`: README's training recipes, each trained as the
 * program trains it (the trainer, the seeded draws, every epoch's shuffle),
 * timed epoch by epoch, evaluated on the test set and profiled kernel by
 * kernel against the machine's FMA peak.  The table of recipes here is
 * their one definition: bench/recipes and the NumPy and PyTorch baselines
 * read it from `mnist-omp bench --list-recipes`. */
#ifndef MNIST_OMP_BENCH_RECIPES_H
#define MNIST_OMP_BENCH_RECIPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "model.h"

struct bench_recipe {
    const char *name;
    const char *options;  /* mnist-omp's training options, as a user types them */
};

/* The recipe of that name; NULL when there is none. */
const struct bench_recipe *bench_recipe_find(const char *name);

/* Every recipe's name, comma-separated, into text (for messages). */
void bench_recipe_names(char *text, size_t size);

/* One line per recipe: its name, a space, its options. */
void bench_recipes_list(FILE *out);

/* Where the benchmark runs, for the report's header. */
struct bench_machine {
    const char *cpu, *isa;
    int cores;
};

/* What `bench --recipe` asks for: each recipe at each precision, training-
 * set size and thread count, in that order of nesting. */
struct bench_recipe_request {
    const struct bench_recipe *const *recipes;
    size_t n_recipes;
    const enum precision *precisions;
    size_t n_precisions;
    const size_t *sizes;    /* images, or SUBSET_ALL; NULL: the recipe's own */
    size_t n_sizes;
    const int *threads;
    size_t n_threads;
    unsigned epochs;        /* 0: the recipe's own */
    int64_t seed;
    const char *data_dir;   /* NULL: search as for training */
    bool json;
};

/* Runs the request, printing each run's results as it ends.  Returns an
 * exit status (EXIT_USAGE for a size the data cannot provide). */
int bench_recipes_run(const struct bench_recipe_request *request,
                      const struct bench_machine *machine);

#endif
