/* Command-line options of mnist-omp. */
#ifndef MNIST_OMP_OPTIONS_H
#define MNIST_OMP_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "model.h"
#include "train.h"

/* --train-size all / --test-size all */
#define SUBSET_ALL SIZE_MAX

struct options {
    const char *data_dir;  /* NULL: search (see mnist_find_dir) */
    size_t train_size, test_size;
    unsigned epochs;
    double lr;
    size_t hidden;
    int64_t seed;
    int threads;           /* 0: OpenMP's default (OMP_NUM_THREADS or all cores) */
    enum precision precision;
    enum engine_kind engine;
    unsigned print_every;
    const char *log_path;  /* NULL: no log */
    bool quiet;

    /* Model files (NULL: none) */
    const char *save_path, *load_path, *resume_path, *checkpoint_path;
    unsigned checkpoint_every;  /* 0: only at the end and when interrupted */

    /* Pictures */
    const char *plots_dir;      /* NULL: none */
    size_t show;                /* training digits to print as text art */

    /* Settings given on the command line, which a loaded file must agree with. */
    bool given_hidden, given_precision, given_seed, given_lr, given_train_size,
        given_test_size;
};

/* The exit status of every command on a usage error. */
enum { EXIT_USAGE = 2 };

enum options_status {
    OPTIONS_RUN,          /* go on and train */
    OPTIONS_DONE,         /* --help or --version was printed: exit 0 */
    OPTIONS_USAGE_ERROR,  /* a message was printed: exit EXIT_USAGE */
};

/* The reference experiment (README, "What it does"). */
void options_defaults(struct options *o);

/* Parses argv into o; messages go to out (help, version) or errors. */
enum options_status options_parse(struct options *o, int argc, char **argv, FILE *out,
                                  FILE *errors);

/* Where usage errors go, and whose --help they point at. */
struct usage {
    FILE *stream;
    const char *command;  /* NULL: mnist-omp itself; else a subcommand, "bench" */
};

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
