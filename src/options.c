#include <config.h>

#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "modelfile.h"

static const char usage_text[] =
    "Usage: mnist-omp [OPTION]...\n"
    "Train a 784-H-10 ReLU perceptron on MNIST with full-batch gradient descent,\n"
    "in parallel with OpenMP.  With no options, run the reference experiment:\n"
    "H = 32, MSE loss, lr 0.8, 300 epochs, seed 1337, 6000 training and 1000 test\n"
    "images, float32, all available threads.\n"
    "\n"
    "Data:\n"
    "  -d, --data DIR          MNIST directory (IDX, IDX.gz or CSV); default: the\n"
    "                          first of $MNIST_OMP_DATA, ./data and the installed\n"
    "                          data directory that holds MNIST\n"
    "      --train-size N|all  training images: the first N of the seeded\n"
    "                          permutation of the training set (default 6000)\n"
    "      --test-size N|all   test images, likewise (default 1000)\n"
    "\n"
    "Model and training:\n"
    "      --hidden N          hidden units (default 32)\n"
    "      --epochs N          epochs of full-batch gradient descent (default 300)\n"
    "      --lr X              learning rate (default 0.8)\n"
    "      --seed N            seed of Python's random module (default 1337)\n"
    "      --precision P       f32 (default) or f64\n"
    "      --engine E          omp (default) or reference (the serial yardstick)\n"
    "  -t, --threads N         OpenMP threads (default: $OMP_NUM_THREADS or all cores)\n"
    "\n"
    "Output:\n"
    "      --print-every N     print the loss every N epochs and at the last (default 10)\n"
    "      --log FILE          write epoch,loss,seconds for every epoch as CSV\n"
    "  -q, --quiet             print only the final results\n"
    "      --show N            print the first N training digits as text art\n"
    "      --plots DIR         write samples.png, errors.png, loss.svg, confusion.txt\n"
    "                          and confusion.png into DIR\n"
    "\n"
    "Model files:\n"
    "      --save FILE         write the trained model to FILE\n"
    "      --load FILE         start from a saved model (with --epochs 0: only\n"
    "                          evaluate it); its epochs are numbered on from the\n"
    "                          epochs it had done\n"
    "      --checkpoint FILE   save the training state to FILE at the end, when\n"
    "                          interrupted (SIGINT, SIGTERM) and, with\n"
    "      --checkpoint-every N   every N epochs\n"
    "      --resume FILE       continue from a checkpoint up to --epochs in all:\n"
    "                          it restores the parameters and the epochs done, and\n"
    "                          the run repeats its hidden units, seed, lr, sizes\n"
    "                          and precision on the same training data\n"
    "\n"
    "Other commands:\n"
    "  mnist-omp predict --load FILE [--invert] IMAGE...\n"
    "                          classify 28x28 PGM or PNG images\n"
    "  mnist-omp bench [OPTION]...  time epochs (see mnist-omp bench --help)\n"
    "  -h, --help              show this help and exit\n"
    "  -V, --version           show the version and exit\n"
    "\n"
    "Environment:\n"
    "  MNIST_OMP_DATA          data directory when --data is not given\n"
    "  OMP_NUM_THREADS         threads when --threads is not given\n"
    "  OMP_THREAD_LIMIT        at most this many threads, whatever was asked\n"
    "  MNIST_OMP_ISA           kernels: avx512, avx2 or portable (default: the best\n"
    "                          the CPU supports; all give bitwise the same results)\n"
    "\n"
    "Exit status: 0 on success, 1 on a data, training or output error, 2 on a usage\n"
    "error, 130 or 143 when interrupted by SIGINT or SIGTERM.\n"
    "Report bugs to: " PACKAGE_BUGREPORT "\n";

void options_defaults(struct options *o)
{
    memset(o, 0, sizeof *o);
    o->train_size = 6000;
    o->test_size = 1000;
    o->epochs = 300;
    o->lr = 0.8;
    o->hidden = 32;
    o->seed = 1337;
    o->precision = PRECISION_F32;
    o->engine = ENGINE_OMP;
    o->print_every = 10;
}

void options_usage_error(const struct usage *u, const char *fmt, ...)
{
    const char *space = u->command ? " " : "", *command = u->command ? u->command : "";
    va_list ap;
    fprintf(u->stream, "mnist-omp%s%s: ", space, command);
    va_start(ap, fmt);
    vfprintf(u->stream, fmt, ap);
    va_end(ap);
    fprintf(u->stream, "\nTry 'mnist-omp%s%s --help' for more information.\n", space, command);
}

/* The long options that `name` (what follows "--", up to any '=') is a
 * prefix of, written out as "'--save', '--seed'", and the first of them in
 * *match.  Returns their number; an exact match counts alone, as
 * getopt_long takes it. */
static int prefix_matches(const struct option *options, const char *name, size_t length,
                          char *list, size_t size, const struct option **match)
{
    int count = 0;
    size_t used = 0;

    list[0] = '\0';
    for (const struct option *opt = options; opt->name; opt++) {
        if (strncmp(opt->name, name, length) != 0)
            continue;
        if (opt->name[length] == '\0') {
            *match = opt;
            return 1;
        }
        if (count == 0)
            *match = opt;
        int n = snprintf(list + used, size - used, "%s'--%s'", count ? ", " : "", opt->name);
        if (n > 0 && (size_t)n < size - used)
            used += (size_t)n;
        count++;
    }
    return count;
}

void options_bad_option(const struct usage *u, const struct option *options, int code,
                        char **argv)
{
    const char *arg = argv[optind - 1];
    char candidates[512];
    const struct option *match = NULL;

    if (code == ':') {
        options_usage_error(u, "missing argument to option '%s'", arg);
        return;
    }
    if (strncmp(arg, "--", 2) == 0) {
        const size_t length = strcspn(arg + 2, "=");
        const int count = prefix_matches(options, arg + 2, length, candidates,
                                         sizeof candidates, &match);
        if (count > 1)
            options_usage_error(u, "option '%.*s' is ambiguous: it could be %s",
                                (int)(length + 2), arg, candidates);
        else if (count == 1 && arg[2 + length] == '=')
            options_usage_error(u, "option '--%s' takes no argument", match->name);
        else
            options_usage_error(u, "unrecognized option '%s'", arg);
        return;
    }
    options_usage_error(u, "unrecognized option '-%c'", optopt);
}

/* Plain decimal: digits, after a '-' only where negative numbers are allowed.
 * strtoll and strtod alone would also take white space, '+', hex, inf and
 * nan. */
static bool is_decimal_integer(const char *text, bool negative_allowed)
{
    if (negative_allowed && *text == '-')
        text++;
    if (!isdigit((unsigned char)*text))
        return false;
    while (isdigit((unsigned char)*text))
        text++;
    return *text == '\0';
}

static const char *skip_digits(const char *text)
{
    while (isdigit((unsigned char)*text))
        text++;
    return text;
}

/* Digits with an optional decimal point (digits on at least one side) and an
 * optional exponent: 0.8, .5, 2., 1e-3. */
static bool is_decimal_real(const char *text)
{
    const char *p = skip_digits(text);
    bool digits = p != text;

    if (*p == '.') {
        const char *fraction = p + 1;
        p = skip_digits(fraction);
        digits = digits || p != fraction;
    }
    if (!digits)
        return false;
    if (*p == 'e' || *p == 'E') {
        const char *exponent = p + 1;
        if (*exponent == '+' || *exponent == '-')
            exponent++;
        p = skip_digits(exponent);
        if (p == exponent)
            return false;
    }
    return *p == '\0';
}

/* Parses a whole number in [min, max]; the whole text must be the number. */
static int parse_integer(const char *text, long long min, long long max, long long *value)
{
    char *end;
    if (!is_decimal_integer(text, min < 0))
        return -1;
    errno = 0;
    const long long v = strtoll(text, &end, 10);
    if (*end != '\0' || errno == ERANGE || v < min || v > max)
        return -1;
    *value = v;
    return 0;
}

int options_parse_count(const char *option, const char *text, long long min, long long max,
                       long long *value, const struct usage *u)
{
    if (parse_integer(text, min, max, value) == 0)
        return 0;
    options_usage_error(u, "%s: '%s' is not a whole number from %lld to %lld", option, text,
                        min, max);
    return -1;
}

int options_parse_subset(const char *option, const char *text, size_t *size,
                         const struct usage *u)
{
    long long value;
    if (strcmp(text, "all") == 0) {
        *size = SUBSET_ALL;
        return 0;
    }
    if (parse_integer(text, 1, 1LL << 40, &value) == 0) {
        *size = (size_t)value;
        return 0;
    }
    options_usage_error(u, "%s: '%s' is neither a positive number of images nor 'all'", option,
                        text);
    return -1;
}

int options_resolve_subset(const char *option, size_t *size, size_t available,
                           const struct usage *u)
{
    if (*size == SUBSET_ALL)
        *size = available;
    if (*size <= available)
        return 0;
    options_usage_error(u, "%s: %zu is larger than the %zu images in the data", option, *size,
                        available);
    return -1;
}

int options_parse_precision(const char *option, const char *text, enum precision *precision,
                            const struct usage *u)
{
    if (precision_parse(text, precision) == 0)
        return 0;
    options_usage_error(u, "%s: '%s' is not f32 or f64", option, text);
    return -1;
}

static int parse_rate(const char *text, double *lr, const struct usage *u)
{
    if (is_decimal_real(text)) {
        errno = 0;
        const double v = strtod(text, NULL);
        if (errno != ERANGE && isfinite(v)) {
            *lr = v;
            return 0;
        }
    }
    options_usage_error(u, "--lr: '%s' is not a finite decimal number >= 0", text);
    return -1;
}

enum { OPT_TRAIN_SIZE = 256, OPT_TEST_SIZE, OPT_EPOCHS, OPT_LR, OPT_HIDDEN, OPT_SEED,
       OPT_PRECISION, OPT_ENGINE, OPT_PRINT_EVERY, OPT_LOG, OPT_SAVE, OPT_LOAD, OPT_RESUME,
       OPT_CHECKPOINT, OPT_CHECKPOINT_EVERY, OPT_PLOTS, OPT_SHOW };

static const struct option long_options[] = {
    {"data", required_argument, NULL, 'd'},
    {"train-size", required_argument, NULL, OPT_TRAIN_SIZE},
    {"test-size", required_argument, NULL, OPT_TEST_SIZE},
    {"epochs", required_argument, NULL, OPT_EPOCHS},
    {"lr", required_argument, NULL, OPT_LR},
    {"hidden", required_argument, NULL, OPT_HIDDEN},
    {"seed", required_argument, NULL, OPT_SEED},
    {"threads", required_argument, NULL, 't'},
    {"precision", required_argument, NULL, OPT_PRECISION},
    {"engine", required_argument, NULL, OPT_ENGINE},
    {"print-every", required_argument, NULL, OPT_PRINT_EVERY},
    {"log", required_argument, NULL, OPT_LOG},
    {"save", required_argument, NULL, OPT_SAVE},
    {"load", required_argument, NULL, OPT_LOAD},
    {"resume", required_argument, NULL, OPT_RESUME},
    {"checkpoint", required_argument, NULL, OPT_CHECKPOINT},
    {"checkpoint-every", required_argument, NULL, OPT_CHECKPOINT_EVERY},
    {"plots", required_argument, NULL, OPT_PLOTS},
    {"show", required_argument, NULL, OPT_SHOW},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static int apply_option(struct options *o, int code, const char *arg, FILE *out,
                        const struct usage *errors, enum options_status *status)
{
    long long v;
    switch (code) {
    case 'd':
        o->data_dir = arg;
        return 0;
    case OPT_TRAIN_SIZE:
        o->given_train_size = true;
        return options_parse_subset("--train-size", arg, &o->train_size, errors);
    case OPT_TEST_SIZE:
        o->given_test_size = true;
        return options_parse_subset("--test-size", arg, &o->test_size, errors);
    case OPT_EPOCHS:
        if (options_parse_count("--epochs", arg, 0, MODEL_FILE_MAX_EPOCHS, &v, errors) < 0)
            return -1;
        o->epochs = (unsigned)v;
        return 0;
    case OPT_LR:
        o->given_lr = true;
        return parse_rate(arg, &o->lr, errors);
    case OPT_HIDDEN:
        if (options_parse_count("--hidden", arg, 1, 65536, &v, errors) < 0)
            return -1;
        o->hidden = (size_t)v;
        o->given_hidden = true;
        return 0;
    case OPT_SEED:
        if (options_parse_count("--seed", arg, -INT64_MAX, INT64_MAX, &v, errors) < 0)
            return -1;
        o->seed = v;
        o->given_seed = true;
        return 0;
    case OPT_SAVE:
        o->save_path = arg;
        return 0;
    case OPT_LOAD:
        o->load_path = arg;
        return 0;
    case OPT_RESUME:
        o->resume_path = arg;
        return 0;
    case OPT_CHECKPOINT:
        o->checkpoint_path = arg;
        return 0;
    case OPT_CHECKPOINT_EVERY:
        if (options_parse_count("--checkpoint-every", arg, 1, 100000000, &v, errors) < 0)
            return -1;
        o->checkpoint_every = (unsigned)v;
        return 0;
    case OPT_PLOTS:
        o->plots_dir = arg;
        return 0;
    case OPT_SHOW:
        if (options_parse_count("--show", arg, 1, 100000, &v, errors) < 0)
            return -1;
        o->show = (size_t)v;
        return 0;
    case 't':
        if (options_parse_count("--threads", arg, 1, 4096, &v, errors) < 0)
            return -1;
        o->threads = (int)v;
        return 0;
    case OPT_PRECISION:
        o->given_precision = true;
        return options_parse_precision("--precision", arg, &o->precision, errors);
    case OPT_ENGINE:
        if (strcmp(arg, "omp") == 0)
            o->engine = ENGINE_OMP;
        else if (strcmp(arg, "reference") == 0)
            o->engine = ENGINE_REFERENCE;
        else {
            options_usage_error(errors, "--engine: '%s' is not omp or reference", arg);
            return -1;
        }
        return 0;
    case OPT_PRINT_EVERY:
        if (options_parse_count("--print-every", arg, 1, 100000000, &v, errors) < 0)
            return -1;
        o->print_every = (unsigned)v;
        return 0;
    case OPT_LOG:
        o->log_path = arg;
        return 0;
    case 'q':
        o->quiet = true;
        return 0;
    case 'h':
        fputs(usage_text, out);
        *status = OPTIONS_DONE;
        return 0;
    case 'V':
        fprintf(out, "%s %s\n", PACKAGE_NAME, PACKAGE_VERSION);
        *status = OPTIONS_DONE;
        return 0;
    default:
        return -1;
    }
}

/* Options that only make sense together, or not at all together. */
static int check_combinations(const struct options *o, const struct usage *errors)
{
    if (o->load_path && o->resume_path) {
        options_usage_error(errors, "--load and --resume exclude each other");
        return -1;
    }
    if (o->checkpoint_every && !o->checkpoint_path) {
        options_usage_error(errors, "--checkpoint-every needs --checkpoint FILE");
        return -1;
    }
    if (o->epochs == 0 && !o->load_path && !o->resume_path) {
        options_usage_error(errors, "--epochs 0 only evaluates a model: give --load FILE");
        return -1;
    }
    return 0;
}

enum options_status options_parse(struct options *o, int argc, char **argv, FILE *out,
                                  FILE *errors)
{
    const struct usage usage = {errors, NULL};
    enum options_status status = OPTIONS_RUN;
    int code;

    optind = 1;
    opterr = 0; /* our messages name the program, not argv[0] */
    while ((code = getopt_long(argc, argv, ":d:t:qhV", long_options, NULL)) != -1) {
        if (code == '?' || code == ':') {
            options_bad_option(&usage, long_options, code, argv);
            return OPTIONS_USAGE_ERROR;
        }
        if (apply_option(o, code, optarg, out, &usage, &status) < 0)
            return OPTIONS_USAGE_ERROR;
        if (status == OPTIONS_DONE)
            return status;
    }
    if (optind < argc) {
        options_usage_error(&usage, "unexpected argument '%s'", argv[optind]);
        return OPTIONS_USAGE_ERROR;
    }
    return status == OPTIONS_RUN && check_combinations(o, &usage) < 0 ? OPTIONS_USAGE_ERROR
                                                                      : status;
}
