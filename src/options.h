/* Command-line options of mnist-omp. */
#ifndef MNIST_OMP_OPTIONS_H
#define MNIST_OMP_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "model.h"
#include "optimizer.h"
#include "train.h"

/* --train-size all / --test-size all */
#define SUBSET_ALL SIZE_MAX

/* The most hidden layers --hidden may list. */
enum { OPTIONS_MAX_HIDDEN = MLP_MAX_LAYERS - 1 };

struct options {
    const char *data_dir;  /* NULL: search (see mnist_find_dir) */
    size_t train_size, test_size;
    unsigned epochs;
    int64_t seed;
    int threads;           /* 0: OpenMP's default (OMP_NUM_THREADS or all cores) */
    enum precision precision;
    enum engine_kind engine;
    unsigned print_every;
    unsigned eval_every;   /* 0: evaluate only after the last epoch */
    const char *log_path;  /* NULL: no log */
    bool quiet;

    /* The network (SPEC part 2) */
    size_t hidden[OPTIONS_MAX_HIDDEN];  /* widths of the hidden layers */
    size_t n_hidden_layers;
    enum activation activation;
    enum loss loss;

    /* How it trains */
    size_t batch;          /* images per step; 0: all of them (--batch all) */
    double lr;
    struct optimizer optimizer;
    enum schedule_kind schedule;
    unsigned step_epochs;  /* --schedule step: E */
    double step_gamma;     /* --schedule step: G */

    /* Model files (NULL: none) */
    const char *save_path, *load_path, *resume_path, *checkpoint_path;
    unsigned checkpoint_every;  /* 0: only at the end and when interrupted */

    /* Pictures */
    const char *plots_dir;      /* NULL: none */
    size_t show;                /* training digits to print as text art */

    /* Settings given on the command line, which a loaded file must agree with. */
    bool given_hidden, given_precision, given_seed, given_lr, given_train_size,
        given_test_size, given_activation, given_loss, given_batch, given_optimizer,
        given_momentum, given_nesterov, given_weight_decay, given_beta1, given_beta2,
        given_eps, given_schedule, given_step_epochs, given_step_gamma;
};

/* The exit status of every command on a usage error. */
enum { EXIT_USAGE = 2 };

/* Where usage errors go, and whose --help they point at. */
struct usage {
    FILE *stream;
    const char *command;  /* NULL: mnist-omp itself; else a subcommand, "bench" */
};

enum options_status {
    OPTIONS_RUN,          /* go on and train */
    OPTIONS_DONE,         /* --help or --version was printed: exit 0 */
    OPTIONS_USAGE_ERROR,  /* a message was printed: exit EXIT_USAGE */
    OPTIONS_OUTPUT_ERROR, /* --help could not be written, and that was said: exit 1 */
};

/* The reference experiment (README, "What it does"). */
void options_defaults(struct options *o);

/* Parses argv into o; messages go to out (help, version) or errors.  The
 * checks of options_check_training run too, unless the run resumes a
 * checkpoint whose settings are still to be adopted. */
enum options_status options_parse(struct options *o, int argc, char **argv, FILE *out,
                                  FILE *errors);

/* The options of SPEC part 2 that only make sense together: the optimiser's
 * own settings given to another optimiser, --nesterov without momentum,
 * --step-epochs and --step-gamma without --schedule step or step without
 * them.  Prints a usage error and returns -1 on the first. */
int options_check_training(const struct options *o, const struct usage *u);

/* The layer widths of the network the options describe, for images of
 * `inputs` pixels: inputs, the hidden widths, the classes.  Returns the
 * number of weight layers. */
size_t options_widths(const struct options *o, size_t inputs, size_t *widths);

/* The training settings the options describe, over `epochs` epochs. */
struct training options_training(const struct options *o, unsigned epochs);

/* Parsers of one option's value, shared with the subcommands: each prints a
 * usage error naming the option and returns -1 when the text is not a whole
 * number in [min, max], a number of images or "all" (SUBSET_ALL), or a
 * precision (f32, f64, float32, float64).  Numbers are plain decimal: no
 * white space, '+', hex, inf or nan, and '-' only where min < 0. */
int options_parse_count(const char *option, const char *text, long long min, long long max,
                        long long *value, const struct usage *u);
int options_parse_subset(const char *option, const char *text, size_t *size,
                         const struct usage *u);
int options_parse_precision(const char *option, const char *text, enum precision *precision,
                            const struct usage *u);
/* --activation and --loss, for every command that takes them. */
int options_parse_activation(const char *text, enum activation *activation,
                             const struct usage *u);
int options_parse_loss(const char *text, enum loss *loss, const struct usage *u);

/* A number of images parsed by options_parse_subset, against the `available`
 * images of the data: SUBSET_ALL becomes all of them, more is a usage error. */
int options_resolve_subset(const char *option, size_t *size, size_t available,
                           const struct usage *u);

/* Prints "mnist-omp[ COMMAND]: message" and the hint to try that command's
 * --help. */
void options_usage_error(const struct usage *u, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

struct option;

/* Explains what getopt_long's '?' or ':' (code) was about, with opterr = 0:
 * a missing argument, an unknown short option, an ambiguous abbreviation of
 * several of `options` (naming them), an argument to an option that takes
 * none, or an unrecognized option. */
void options_bad_option(const struct usage *u, const struct option *options, int code,
                        char **argv);

#endif
