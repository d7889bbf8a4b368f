#include <config.h>

#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "modelfile.h"

static const char usage_text[] =
    "Usage: mnist-omp [OPTION]...\n"
    "Train a multilayer perceptron on MNIST, in parallel with OpenMP.  With no\n"
    "options, run the reference experiment: a 784-32-10 ReLU network, MSE loss,\n"
    "full-batch gradient descent with lr 0.8, 300 epochs, seed 1337, 6000 training\n"
    "and 1000 test images, float32, all available threads.\n"
    "\n"
    "Data:\n"
    "  -d, --data DIR          MNIST directory (IDX, IDX.gz or CSV); default: the\n"
    "                          first of $MNIST_OMP_DATA, ./data and the installed\n"
    "                          data directory that holds MNIST\n"
    "      --train-size N|all  training images: the first N of the seeded\n"
    "                          permutation of the training set (default 6000)\n"
    "      --test-size N|all   test images, likewise (default 1000)\n"
    "\n"
    "Network:\n"
    "      --hidden LIST       widths of the hidden layers, comma-separated\n"
    "                          (default 32; 512,512 is two hidden layers)\n"
    "      --activation A      relu (default), tanh or sigmoid, every hidden layer\n"
    "      --loss L            mse (default) or xent (softmax cross-entropy)\n"
    "      --precision P       f32 (default) or f64\n"
    "\n"
    "Training:\n"
    "      --epochs N          epochs (default 300)\n"
    "      --batch B|all       images per step, reshuffled every epoch; all (the\n"
    "                          default): full-batch, nothing shuffled\n"
    "      --lr X              learning rate (default 0.8)\n"
    "      --schedule S        constant (default), cosine (over the whole run) or\n"
    "                          step, which needs both of:\n"
    "      --step-epochs E     multiply the rate by G every E epochs\n"
    "      --step-gamma G\n"
    "      --optimizer O       sgd (default), adam or adamw\n"
    "      --momentum MU       sgd: momentum, 0 <= MU < 1 (default 0)\n"
    "      --nesterov          sgd: Nesterov momentum (needs MU > 0)\n"
    "      --weight-decay WD   added to the gradient as WD*w; adamw: decoupled\n"
    "                          (default 0; adamw 0.01)\n"
    "      --beta1 B1          adam, adamw: 0 <= B1 < 1 (default 0.9)\n"
    "      --beta2 B2          adam, adamw: 0 <= B2 < 1 (default 0.999)\n"
    "      --eps E             adam, adamw: E > 0 (default 1e-8)\n"
    "      --seed N            seed of Python's random module (default 1337)\n"
    "      --engine E          omp (default) or reference (the serial yardstick)\n"
    "  -t, --threads N         OpenMP threads (default: $OMP_NUM_THREADS or all cores)\n"
    "\n"
    "Output:\n"
    "      --print-every N     print the loss every N epochs and at the last (default 10)\n"
    "      --eval-every K      also measure the test accuracy after every K-th epoch\n"
    "                          (always after the last) and print it with the loss\n"
    "      --log FILE          write epoch,loss,seconds,test_accuracy for every\n"
    "                          epoch as CSV\n"
    "  -q, --quiet             print only the final results\n"
    "      --show N            print the first N training digits as text art\n"
    "      --plots DIR         write samples.png, errors.png, loss.svg, accuracy.svg,\n"
    "                          confusion.txt and confusion.png into DIR\n"
    "\n"
    "Model files:\n"
    "      --save FILE         write the trained model to FILE\n"
    "      --load FILE         start a new run from a saved model's weights (with\n"
    "                          --epochs 0: only evaluate it); its epochs are\n"
    "                          numbered on from the epochs it had done; or a\n"
    "                          safetensors file with mnist-omp export's tensors\n"
    "                          (--activation for one that does not say it)\n"
    "      --checkpoint FILE   save the training state to FILE at the end, when\n"
    "                          interrupted (SIGINT, SIGTERM) and, with\n"
    "      --checkpoint-every N   every N epochs\n"
    "      --resume FILE       continue from a checkpoint up to --epochs in all:\n"
    "                          it restores the parameters and the epochs done, the\n"
    "                          optimiser's state and the random stream, and the run\n"
    "                          repeats its network, seed, sizes, precision and\n"
    "                          training settings on the same training data\n"
    "\n"
    "Other commands:\n"
    "  mnist-omp predict --load FILE [--invert] IMAGE...\n"
    "                          classify 28x28 PGM or PNG images\n"
    "  mnist-omp export --load FILE OUT   write the weights as OUT.safetensors,\n"
    "                          OUT.npz or a model file (mnist-omp export --help)\n"
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
    o->hidden[0] = 32;
    o->n_hidden_layers = 1;
    o->activation = ACTIVATION_RELU;
    o->loss = LOSS_MSE;
    o->batch = 0;
    o->optimizer = (struct optimizer){.kind = OPTIMIZER_SGD, .momentum = 0, .nesterov = false,
                                      .weight_decay = 0, .beta1 = 0.9, .beta2 = 0.999,
                                      .eps = 1e-8};
    o->schedule = SCHEDULE_CONSTANT;
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

int options_parse_activation(const char *text, enum activation *activation,
                             const struct usage *u)
{
    if (activation_parse(text, activation) == 0)
        return 0;
    options_usage_error(u, "--activation: '%s' is not relu, tanh or sigmoid", text);
    return -1;
}

int options_parse_loss(const char *text, enum loss *loss, const struct usage *u)
{
    if (loss_parse(text, loss) == 0)
        return 0;
    options_usage_error(u, "--loss: '%s' is not mse or xent", text);
    return -1;
}

/* The ranges of real-valued options, as their messages state them. */
enum real_range {
    REAL_NONNEGATIVE,  /* [0, inf): --lr, --weight-decay */
    REAL_POSITIVE,     /* (0, inf): --eps, --step-gamma */
    REAL_FRACTION,     /* [0, 1): --momentum, --beta1, --beta2 */
};

static const char *const real_range_text[] = {
    [REAL_NONNEGATIVE] = ">= 0", [REAL_POSITIVE] = "> 0", [REAL_FRACTION] = "from 0 to below 1",
};

static bool in_range(double v, enum real_range range)
{
    switch (range) {
    case REAL_POSITIVE:
        return v > 0;
    case REAL_FRACTION:
        return v < 1;
    case REAL_NONNEGATIVE:
        break;
    }
    return true;
}

/* A plain decimal number (never negative: is_decimal_real takes no sign)
 * that is finite and in range. */
static int parse_real(const char *option, const char *text, enum real_range range,
                      double *value, const struct usage *u)
{
    if (is_decimal_real(text)) {
        errno = 0;
        const double v = strtod(text, NULL);
        if (errno != ERANGE && isfinite(v) && in_range(v, range)) {
            *value = v;
            return 0;
        }
    }
    options_usage_error(u, "%s: '%s' is not a finite decimal number %s", option, text,
                        real_range_text[range]);
    return -1;
}

/* --hidden: comma-separated widths, each a whole number of units. */
static int parse_hidden(const char *text, struct options *o, const struct usage *u)
{
    size_t count = 0;
    const char *item = text;

    if (*text == '\0') {
        options_usage_error(u, "--hidden: empty list");
        return -1;
    }
    for (;;) {
        const size_t length = strcspn(item, ",");
        char width[32];
        long long v;
        if (length == 0) {
            options_usage_error(u, "--hidden: empty item in the list '%s'", text);
            return -1;
        }
        if (count == OPTIONS_MAX_HIDDEN) {
            options_usage_error(u, "--hidden: more than %d hidden layers in '%s'",
                                OPTIONS_MAX_HIDDEN, text);
            return -1;
        }
        snprintf(width, sizeof width, "%.*s", (int)length, item);
        if (length >= sizeof width || parse_integer(width, 1, MLP_MAX_WIDTH, &v) < 0) {
            options_usage_error(u, "--hidden: '%.*s' is not a whole number from 1 to %u",
                                (int)length, item, MLP_MAX_WIDTH);
            return -1;
        }
        o->hidden[count++] = (size_t)v;
        if (item[length] == '\0')
            break;
        item += length + 1;
    }
    o->n_hidden_layers = count;
    return 0;
}

/* A name among those of a parse function: activation_parse, loss_parse ... */
#define PARSE_NAME(option, text, parse, target, names, u)                                   \
    ((parse)((text), (target)) == 0                                                         \
         ? 0                                                                                \
         : (options_usage_error((u), "%s: '%s' is not %s", (option), (text), (names)), -1))

enum { OPT_TRAIN_SIZE = 256, OPT_TEST_SIZE, OPT_EPOCHS, OPT_LR, OPT_HIDDEN, OPT_SEED,
       OPT_PRECISION, OPT_ENGINE, OPT_PRINT_EVERY, OPT_LOG, OPT_SAVE, OPT_LOAD, OPT_RESUME,
       OPT_CHECKPOINT, OPT_CHECKPOINT_EVERY, OPT_PLOTS, OPT_SHOW, OPT_ACTIVATION, OPT_LOSS,
       OPT_BATCH, OPT_OPTIMIZER, OPT_MOMENTUM, OPT_NESTEROV, OPT_WEIGHT_DECAY, OPT_BETA1,
       OPT_BETA2, OPT_EPS, OPT_SCHEDULE, OPT_STEP_EPOCHS, OPT_STEP_GAMMA, OPT_EVAL_EVERY };

static const struct option long_options[] = {
    {"data", required_argument, NULL, 'd'},
    {"train-size", required_argument, NULL, OPT_TRAIN_SIZE},
    {"test-size", required_argument, NULL, OPT_TEST_SIZE},
    {"epochs", required_argument, NULL, OPT_EPOCHS},
    {"lr", required_argument, NULL, OPT_LR},
    {"hidden", required_argument, NULL, OPT_HIDDEN},
    {"activation", required_argument, NULL, OPT_ACTIVATION},
    {"loss", required_argument, NULL, OPT_LOSS},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"optimizer", required_argument, NULL, OPT_OPTIMIZER},
    {"momentum", required_argument, NULL, OPT_MOMENTUM},
    {"nesterov", no_argument, NULL, OPT_NESTEROV},
    {"weight-decay", required_argument, NULL, OPT_WEIGHT_DECAY},
    {"beta1", required_argument, NULL, OPT_BETA1},
    {"beta2", required_argument, NULL, OPT_BETA2},
    {"eps", required_argument, NULL, OPT_EPS},
    {"schedule", required_argument, NULL, OPT_SCHEDULE},
    {"step-epochs", required_argument, NULL, OPT_STEP_EPOCHS},
    {"step-gamma", required_argument, NULL, OPT_STEP_GAMMA},
    {"seed", required_argument, NULL, OPT_SEED},
    {"threads", required_argument, NULL, 't'},
    {"precision", required_argument, NULL, OPT_PRECISION},
    {"engine", required_argument, NULL, OPT_ENGINE},
    {"print-every", required_argument, NULL, OPT_PRINT_EVERY},
    {"eval-every", required_argument, NULL, OPT_EVAL_EVERY},
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

/* The options of the network and of how it trains. */
static int apply_training_option(struct options *o, int code, const char *arg,
                                 const struct usage *errors)
{
    long long v;
    switch (code) {
    case OPT_LR:
        o->given_lr = true;
        return parse_real("--lr", arg, REAL_NONNEGATIVE, &o->lr, errors);
    case OPT_HIDDEN:
        o->given_hidden = true;
        return parse_hidden(arg, o, errors);
    case OPT_ACTIVATION:
        o->given_activation = true;
        return options_parse_activation(arg, &o->activation, errors);
    case OPT_LOSS:
        o->given_loss = true;
        return options_parse_loss(arg, &o->loss, errors);
    case OPT_BATCH:
        o->given_batch = true;
        if (options_parse_subset("--batch", arg, &o->batch, errors) < 0)
            return -1;
        if (o->batch == SUBSET_ALL)
            o->batch = 0;
        return 0;
    case OPT_OPTIMIZER:
        o->given_optimizer = true;
        return PARSE_NAME("--optimizer", arg, optimizer_parse, &o->optimizer.kind,
                          "sgd, adam or adamw", errors);
    case OPT_MOMENTUM:
        o->given_momentum = true;
        return parse_real("--momentum", arg, REAL_FRACTION, &o->optimizer.momentum, errors);
    case OPT_NESTEROV:
        o->given_nesterov = true;
        o->optimizer.nesterov = true;
        return 0;
    case OPT_WEIGHT_DECAY:
        o->given_weight_decay = true;
        return parse_real("--weight-decay", arg, REAL_NONNEGATIVE, &o->optimizer.weight_decay,
                          errors);
    case OPT_BETA1:
        o->given_beta1 = true;
        return parse_real("--beta1", arg, REAL_FRACTION, &o->optimizer.beta1, errors);
    case OPT_BETA2:
        o->given_beta2 = true;
        return parse_real("--beta2", arg, REAL_FRACTION, &o->optimizer.beta2, errors);
    case OPT_EPS:
        o->given_eps = true;
        return parse_real("--eps", arg, REAL_POSITIVE, &o->optimizer.eps, errors);
    case OPT_SCHEDULE:
        o->given_schedule = true;
        return PARSE_NAME("--schedule", arg, schedule_parse, &o->schedule,
                          "constant, cosine or step", errors);
    case OPT_STEP_EPOCHS:
        o->given_step_epochs = true;
        if (options_parse_count("--step-epochs", arg, 1, MODEL_FILE_MAX_EPOCHS, &v, errors) < 0)
            return -1;
        o->step_epochs = (unsigned)v;
        return 0;
    case OPT_STEP_GAMMA:
        o->given_step_gamma = true;
        return parse_real("--step-gamma", arg, REAL_POSITIVE, &o->step_gamma, errors);
    case OPT_SEED:
        if (options_parse_count("--seed", arg, -INT64_MAX, INT64_MAX, &v, errors) < 0)
            return -1;
        o->seed = v;
        o->given_seed = true;
        return 0;
    case OPT_PRECISION:
        o->given_precision = true;
        return options_parse_precision("--precision", arg, &o->precision, errors);
    default:
        return 1;  /* not one of these */
    }
}

static int apply_option(struct options *o, int code, const char *arg, FILE *out,
                        const struct usage *errors, enum options_status *status)
{
    long long v;
    const int training = apply_training_option(o, code, arg, errors);
    if (training <= 0)
        return training;
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
        if (options_parse_count("--checkpoint-every", arg, 1, MODEL_FILE_MAX_EPOCHS, &v,
                                errors) < 0)
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
        if (options_parse_count("--print-every", arg, 1, MODEL_FILE_MAX_EPOCHS, &v, errors) < 0)
            return -1;
        o->print_every = (unsigned)v;
        return 0;
    case OPT_EVAL_EVERY:
        if (options_parse_count("--eval-every", arg, 1, MODEL_FILE_MAX_EPOCHS, &v, errors) < 0)
            return -1;
        o->eval_every = (unsigned)v;
        return 0;
    case OPT_LOG:
        o->log_path = arg;
        return 0;
    case 'q':
        o->quiet = true;
        return 0;
    case 'h':
        /* Longer than stdio's buffer, the help is written while it is put:
         * a failure is reported now, while errno still says what it was. */
        errno = 0;
        if (fputs(usage_text, out) == EOF || fflush(out) != 0) {
            fprintf(errors->stream, "mnist-omp: write error: %s\n",
                    strerror(errno ? errno : EIO));
            clearerr(out);
            *status = OPTIONS_OUTPUT_ERROR;
            return 0;
        }
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

/* An option of one optimiser given to another: refused rather than ignored,
 * since the run would not do what the command line says. */
static int check_belongs(bool given, const char *option, bool applies, const char *owners,
                         const struct optimizer *opt, const struct usage *u)
{
    if (!given || applies)
        return 0;
    options_usage_error(u, "%s applies only to --optimizer %s, not %s", option, owners,
                        optimizer_name(opt->kind));
    return -1;
}

/* The default --weight-decay: 0.01 for adamw (torch.optim's), else 0. */
static double options_default_weight_decay(enum optimizer_kind kind)
{
    return kind == OPTIMIZER_ADAMW ? 0.01 : 0.0;
}

int options_check_training(const struct options *o, const struct usage *u)
{
    const struct optimizer *opt = &o->optimizer;
    const bool sgd = opt->kind == OPTIMIZER_SGD;

    if (check_belongs(o->given_momentum, "--momentum", sgd, "sgd (adam's is --beta1)", opt, u) <
            0 ||
        check_belongs(o->given_nesterov, "--nesterov", sgd, "sgd", opt, u) < 0 ||
        check_belongs(o->given_beta1, "--beta1", !sgd, "adam or adamw", opt, u) < 0 ||
        check_belongs(o->given_beta2, "--beta2", !sgd, "adam or adamw", opt, u) < 0 ||
        check_belongs(o->given_eps, "--eps", !sgd, "adam or adamw", opt, u) < 0)
        return -1;
    if (opt->nesterov && !(opt->momentum > 0)) {
        options_usage_error(u, "--nesterov needs --momentum greater than 0");
        return -1;
    }
    const bool step = o->schedule == SCHEDULE_STEP;
    if (!step && (o->given_step_epochs || o->given_step_gamma)) {
        options_usage_error(u, "%s applies only to --schedule step",
                            o->given_step_epochs ? "--step-epochs" : "--step-gamma");
        return -1;
    }
    if (step && (!o->given_step_epochs || !o->given_step_gamma)) {
        options_usage_error(u, "--schedule step needs --step-epochs E and --step-gamma G");
        return -1;
    }
    return 0;
}

size_t options_widths(const struct options *o, size_t inputs, size_t *widths)
{
    widths[0] = inputs;
    for (size_t l = 0; l < o->n_hidden_layers; l++)
        widths[l + 1] = o->hidden[l];
    widths[o->n_hidden_layers + 1] = MNIST_CLASSES;
    return o->n_hidden_layers + 1;
}

struct training options_training(const struct options *o, unsigned epochs)
{
    struct training t = {
        .batch = o->batch,
        .optimizer = o->optimizer,
        .schedule = {.kind = o->schedule, .lr = o->lr, .step_epochs = o->step_epochs,
                     .step_gamma = o->step_gamma},
        .epochs = epochs,
    };
    return t;
}

/* Options that only make sense together, or not at all together. */
static int check_combinations(struct options *o, const struct usage *errors)
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
    /* A checkpoint's own settings are adopted first (main.c). */
    if (o->resume_path)
        return 0;
    if (!o->given_weight_decay)
        o->optimizer.weight_decay = options_default_weight_decay(o->optimizer.kind);
    return options_check_training(o, errors);
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
        if (status != OPTIONS_RUN)
            return status;
    }
    if (optind < argc) {
        options_usage_error(&usage, "unexpected argument '%s'", argv[optind]);
        return OPTIONS_USAGE_ERROR;
    }
    return status == OPTIONS_RUN && check_combinations(o, &usage) < 0 ? OPTIONS_USAGE_ERROR
                                                                      : status;
}
