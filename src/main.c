/* mnist-omp: load -> draw subsets and initialise -> train -> evaluate -> report. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "dataset.h"
#include "evaluate.h"
#include "kernels.h"
#include "mnist.h"
#include "model.h"
#include "options.h"
#include "report.h"
#include "rng.h"
#include "train.h"

enum { EXIT_USAGE = 2, N_CLASSES = 10 };

/* Everything a run holds, so that one function can release it on any path. */
struct run {
    struct options options;
    char data_dir[4096];
    struct dataset train, test;
    size_t train_total, test_total;  /* images in the files the subsets come from */
    struct mlp model;
    struct trainer trainer;
    struct evaluation test_eval, train_first;
    FILE *log;
};

static void run_free(struct run *r)
{
    dataset_free(&r->train);
    dataset_free(&r->test);
    mlp_free(&r->model);
    trainer_destroy(&r->trainer);
    evaluation_free(&r->test_eval);
    evaluation_free(&r->train_first);
    if (r->log)
        fclose(r->log);
}

/* Keeps the first `size` images of a seeded shuffle of all of `all`, as
 * Python's random.shuffle(list(range(count))) orders them. */
static int draw_subset(struct dataset *subset, const struct dataset *all, size_t size,
                       struct py_random *rng, struct error *err)
{
    size_t *order = malloc(all->count * sizeof *order);
    if (!order)
        return error_set(err, "out of memory for a permutation of %zu images", all->count);
    for (size_t i = 0; i < all->count; i++)
        order[i] = i;
    py_random_shuffle(rng, order, all->count);
    const int status = dataset_select(subset, all, order, size, err);
    free(order);
    return status;
}

/* Loads one split and keeps the subset of it that the options ask for, so
 * that only one whole split is in memory at a time.  Returns an exit status. */
static int load_subset(struct dataset *subset, size_t *total, const char *dir,
                       enum mnist_split split, const char *option, size_t *size,
                       struct py_random *rng, struct error *err)
{
    struct dataset all;
    if (mnist_load(&all, dir, split, err) < 0)
        return EXIT_FAILURE;
    *total = all.count;
    if (*size == SUBSET_ALL)
        *size = all.count;
    if (*size > all.count) {
        options_usage_error(stderr, "%s: %zu is larger than the %zu images in the data",
                            option, *size, all.count);
        dataset_free(&all);
        return EXIT_USAGE;
    }
    const int status = draw_subset(subset, &all, *size, rng, err);
    dataset_free(&all);
    return status < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

struct epoch_printer {
    const struct options *options;
    FILE *log;
    const char *log_path;
};

static int on_epoch(void *context, unsigned epoch, double loss, double seconds,
                    struct error *err)
{
    const struct epoch_printer *p = context;
    const unsigned last = p->options->epochs - 1;
    if (!p->options->quiet && (epoch % p->options->print_every == 0 || epoch == last))
        report_epoch(stdout, epoch, loss);
    if (p->log && fprintf(p->log, "%u,%.17g,%.6f\n", epoch, loss, seconds) < 0)
        return error_set(err, "%s: cannot write the log: %s", p->log_path, strerror(errno));
    return 0;
}

static int close_log(struct run *r, struct error *err)
{
    FILE *log = r->log;
    r->log = NULL;
    if (log && (fflush(log) != 0 || ferror(log) || fclose(log) != 0))
        return error_set(err, "%s: cannot write the log: %s", r->options.log_path,
                         strerror(errno));
    return 0;
}

static int execute(struct run *r, struct error *err)
{
    struct options *o = &r->options;
    struct py_random rng;

    if (mnist_find_dir(o->data_dir, PKGDATADIR, r->data_dir, sizeof r->data_dir, err) < 0)
        return EXIT_FAILURE;

    /* The draws happen in the tutorial's order: training subset, test subset, W1, W2. */
    py_random_seed(&rng, o->seed);
    int status = load_subset(&r->train, &r->train_total, r->data_dir, MNIST_TRAIN,
                             "--train-size", &o->train_size, &rng, err);
    if (status == EXIT_SUCCESS)
        status = load_subset(&r->test, &r->test_total, r->data_dir, MNIST_TEST, "--test-size",
                             &o->test_size, &rng, err);
    if (status != EXIT_SUCCESS)
        return status;
    if (mlp_create(&r->model, dataset_image_size(&r->train), o->hidden, N_CLASSES,
                   o->precision, err) < 0)
        return EXIT_FAILURE;
    mlp_init_xavier(&r->model, &rng);

    if (o->threads > 0)
        engine_set_threads(o->threads);
    if (o->log_path) {
        r->log = fopen(o->log_path, "w");
        if (!r->log || fputs("epoch,loss,seconds\n", r->log) < 0) {
            error_set(err, "%s: cannot write the log: %s", o->log_path, strerror(errno));
            return EXIT_FAILURE;
        }
    }

    struct run_description run = {
        .model = &r->model, .data_dir = r->data_dir,
        .train_count = r->train.count, .train_total = r->train_total,
        .test_count = r->test.count, .test_total = r->test_total,
        .seed = o->seed, .engine = o->engine, .threads = engine_max_threads(),
        .epochs = o->epochs, .lr = o->lr,
    };
    if (!o->quiet)
        report_header(stdout, &run);

    struct epoch_printer printer = {o, r->log, o->log_path};
    double seconds;
    if (trainer_create(&r->trainer, o->engine, &r->model, &r->train, err) < 0 ||
        train(&r->trainer, &r->model, o->epochs, o->lr, on_epoch, &printer, &seconds, err) < 0 ||
        close_log(r, err) < 0)
        return EXIT_FAILURE;
    report_training_time(stdout, &run, seconds);

    struct dataset first_train = r->train;
    first_train.count = 1;
    if (evaluate(&r->test_eval, &r->model, &r->test, err) < 0 ||
        evaluate(&r->train_first, &r->model, &first_train, err) < 0)
        return EXIT_FAILURE;
    report_evaluation(stdout, &r->test_eval, &r->test, &r->train_first, &r->train);
    return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
    struct run r;
    struct error err = {{0}};

    if (argc > 1 && strcmp(argv[1], "bench") == 0)
        return bench_main(argc - 1, argv + 1);
    memset(&r, 0, sizeof r);
    options_defaults(&r.options);
    switch (options_parse(&r.options, argc, argv, stdout, stderr)) {
    case OPTIONS_DONE:
        return EXIT_SUCCESS;
    case OPTIONS_USAGE_ERROR:
        return EXIT_USAGE;
    case OPTIONS_RUN:
        break;
    }
    const int status = execute(&r, &err);
    if (status == EXIT_FAILURE)
        fprintf(stderr, "mnist-omp: %s\n", err.msg);
    if (fflush(stdout) != 0 && status == EXIT_SUCCESS) {
        fprintf(stderr, "mnist-omp: cannot write the output: %s\n", strerror(errno));
        run_free(&r);
        return EXIT_FAILURE;
    }
    run_free(&r);
    return status;
}
