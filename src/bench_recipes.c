#include <config.h>

#include "bench_recipes.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "dataset.h"
#include "error.h"
#include "evaluate.h"
#include "kernels.h"
#include "mnist.h"
#include "optimizer.h"
#include "options.h"
#include "rng.h"
#include "train.h"

/* README's recipes: the full MNIST, softmax cross-entropy. */
#define FULL_MNIST "--train-size all --test-size all --loss xent "
static const struct bench_recipe recipes[] = {
    {"a",
     FULL_MNIST "--hidden 128 --optimizer sgd --lr 0.1 --momentum 0.9 --batch 64 --epochs 15"},
    {"b", FULL_MNIST "--hidden 512,512 --optimizer adam --lr 1e-3 --batch 128 --epochs 15"},
    {"c",
     FULL_MNIST "--hidden 256 --optimizer sgd --lr 0.2 --momentum 0.9 --batch 256 --epochs 20"},
    {"fast", FULL_MNIST "--hidden 256 --optimizer sgd --lr 0.3 --momentum 0.9 --nesterov "
                        "--batch 128 --schedule cosine --epochs 3"},
};
#undef FULL_MNIST
enum { N_RECIPES = sizeof recipes / sizeof recipes[0], RECIPE_MAX_WORDS = 64 };

/* What the text report's columns mean. */
static const char table_notes[] =
    "\n* layer 0 skips the zero pixels: its GFLOP/s and %peak count the dense-\n"
    "equivalent work.  s/epoch: of the epochs before the last (of the only one, if\n"
    "one); the last is profiled, alone, since timing every work item slows a step.\n"
    "s/thread: a kernel's time summed over the threads, divided by them; share: of\n"
    "the threads' time in the profiled epoch; GFLOP/s: FLOPs / s/thread; %peak: of\n"
    "the FMA peak.  update: the sum of the units' gradients and the optimiser's\n"
    "update; other: the rest of a step (the batch's pixel lists, W^T, the loss);\n"
    "idle or serial: the threads waiting for one another or for the trainer's\n"
    "shuffle.\n";

static const char *const kernel_names[ENGINE_KERNELS] = {
    [ENGINE_FORWARD] = "forward",
    [ENGINE_WEIGHT_GRADIENT] = "weight gradient",
    [ENGINE_INPUT_GRADIENT] = "input gradient",
};
static const char *const kernel_keys[ENGINE_KERNELS] = {
    [ENGINE_FORWARD] = "forward",
    [ENGINE_WEIGHT_GRADIENT] = "weight_gradient",
    [ENGINE_INPUT_GRADIENT] = "input_gradient",
};

const struct bench_recipe *bench_recipe_find(const char *name)
{
    for (size_t i = 0; i < N_RECIPES; i++)
        if (strcmp(recipes[i].name, name) == 0)
            return &recipes[i];
    return NULL;
}

void bench_recipe_names(char *text, size_t size)
{
    size_t used = 0;
    text[0] = '\0';
    for (size_t i = 0; i < N_RECIPES && used < size; i++)
        used += (size_t)snprintf(text + used, size - used, "%s%s", i ? ", " : "",
                                 recipes[i].name);
}

void bench_recipes_list(FILE *out)
{
    for (size_t i = 0; i < N_RECIPES; i++)
        fprintf(out, "%s %s\n", recipes[i].name, recipes[i].options);
}

/* The recipe's options as the program's own parser reads them. */
static int recipe_options(const struct bench_recipe *r, struct options *o, struct error *err)
{
    char text[1024], program[] = "mnist-omp";
    char *argv[RECIPE_MAX_WORDS + 1] = {program};
    int argc = 1;

    if (strlen(r->options) >= sizeof text)
        return error_set(err, "recipe %s: its options are too long", r->name);
    strcpy(text, r->options);
    for (char *word = text; *word;) {
        const size_t length = strcspn(word, " ");
        if (argc == RECIPE_MAX_WORDS)
            return error_set(err, "recipe %s: more than %d words", r->name, RECIPE_MAX_WORDS);
        argv[argc++] = word;
        word += length;
        if (*word)
            *word++ = '\0';
    }
    options_defaults(o);
    if (options_parse(o, argc, argv, stderr, stderr) != OPTIONS_RUN)
        return error_set(err, "recipe %s: mnist-omp does not take its options", r->name);
    return 0;
}

/* One training run of a recipe and what it measured. */
struct recipe_run {
    const struct bench_recipe *recipe;
    struct options options;  /* the recipe's, with the request's seed, epochs and size */
    bool given_epochs, given_size;
    enum precision precision;
    int threads;
    double peak;             /* FMA peak of the precision and thread count, FLOP/s */
    size_t n_layers, widths[MLP_MAX_LAYERS + 1];
    double *epoch_seconds, *losses;  /* of each epoch */
    double training_seconds;
    struct timing_spread spread;     /* of the epochs' seconds but the profiled one's */
    size_t timed_epochs;             /* the epochs in the spread */
    size_t correct, test_count;
    struct engine_profile profile;
};

/* Reading the clock around every work item costs several percent of a
 * small batch's step, so only the last epoch is profiled. */
static int record_epoch(void *context, const struct trainer *t, unsigned epoch, double loss,
                        double seconds, struct error *err)
{
    struct recipe_run *r = context;
    r->epoch_seconds[epoch] = seconds - r->training_seconds;
    r->losses[epoch] = loss;
    r->training_seconds = seconds;
    if (epoch + 2 == r->options.epochs && engine_profile_start(t->omp) < 0)
        return error_set(err, "out of memory for the profile");
    return 0;
}

/* Trains the network from its seeded draws (training subset, test subset,
 * weights: SPEC's order, as the program draws them), profiled, and
 * evaluates it on the test subset. */
static int train_recipe(struct recipe_run *r, const struct dataset *train_all,
                        const struct dataset *test_all, struct error *err)
{
    const struct options *o = &r->options;
    struct dataset train_set = {0}, test_set = {0};
    struct mlp m = {0};
    struct py_random rng;
    struct training settings = options_training(o, o->epochs);
    struct training_state state = {0};
    struct trainer trainer = {0};
    struct evaluation ev = {0};
    double seconds;
    int status;

    py_random_seed(&rng, o->seed);
    status = dataset_draw_subset(&train_set, train_all, o->train_size, &rng, err);
    if (status == 0)
        status = dataset_draw_subset(&test_set, test_all, o->test_size, &rng, err);
    if (status == 0) {
        r->n_layers = options_widths(o, dataset_image_size(&train_set), r->widths);
        status = mlp_create(&m, r->n_layers, r->widths, o->activation, o->loss, r->precision,
                            err);
    }
    if (status == 0) {
        mlp_init_uniform(&m, &rng);
        state.rng = rng;
        status = optimizer_state_create(&state.optimizer, &settings.optimizer,
                                        mlp_param_count(&m), r->precision, err);
    }
    if (status == 0) {
        /* It takes the state over, even when it fails. */
        status = trainer_create(&trainer, ENGINE_OMP, &m, &train_set, &settings, &state,
                                r->threads, NULL, err);
        if (status == 0 && o->epochs == 1 && engine_profile_start(trainer.omp) < 0)
            status = error_set(err, "out of memory for the profile");
        if (status == 0)
            status = train(&trainer, &m, o->epochs, record_epoch, r, &seconds, err);
        if (status == 0)
            engine_profile_read(trainer.omp, &r->profile);
        trainer_destroy(&trainer);
    } else {
        optimizer_state_free(&state.optimizer);
    }
    if (status == 0)
        status = evaluate(&ev, &m, &test_set, err);
    r->correct = ev.correct;
    r->test_count = test_set.count;
    evaluation_free(&ev);
    mlp_free(&m);
    dataset_free(&train_set);
    dataset_free(&test_set);
    return status;
}

/* Measures one run; its arrays are the caller's to free. */
static int measure(struct recipe_run *r, const struct dataset *train_all,
                   const struct dataset *test_all, struct error *err)
{
    const unsigned epochs = r->options.epochs;
    r->epoch_seconds = malloc(epochs * sizeof *r->epoch_seconds);
    r->losses = malloc(epochs * sizeof *r->losses);
    double *sorted = malloc(epochs * sizeof *sorted);
    int status = r->epoch_seconds && r->losses && sorted
                     ? train_recipe(r, train_all, test_all, err)
                     : error_set(err, "out of memory for %u epochs", epochs);
    if (status == 0) {
        r->timed_epochs = epochs > 1 ? epochs - 1 : 1;
        memcpy(sorted, r->epoch_seconds, r->timed_epochs * sizeof *sorted);
        r->spread = timing_spread(sorted, r->timed_epochs);
    }
    free(sorted);
    return status;
}

/* Dense-equivalent floating-point operations per image of a layer's kernel:
 * each product is 2 n_in n_out, the bias gradient adds n_out, and the first
 * layer has no input gradient. */
static double kernel_flops_per_image(const struct recipe_run *r, size_t layer,
                                     enum engine_kernel kernel)
{
    const double n_in = (double)r->widths[layer], n_out = (double)r->widths[layer + 1];
    switch (kernel) {
    case ENGINE_WEIGHT_GRADIENT:
        return 2 * n_in * n_out + n_out;
    case ENGINE_INPUT_GRADIENT:
        return layer ? 2 * n_in * n_out : 0;
    default:
        return 2 * n_in * n_out;
    }
}

/* The seconds of the profiled epoch, the last. */
static double profiled_seconds(const struct recipe_run *r)
{
    return r->epoch_seconds[r->options.epochs - 1];
}

/* A kernel as the report shows it: its seconds per thread (its time summed
 * over the threads, divided by them), its share of the threads' time in the
 * profiled epoch, and its rate while it runs. */
struct kernel_figures {
    double seconds, share, flops, fraction_of_peak;
};

static struct kernel_figures figures(const struct recipe_run *r, double thread_seconds,
                                     double flops)
{
    const double seconds = thread_seconds / r->threads;
    const double rate = seconds > 0 ? flops / seconds : 0;
    return (struct kernel_figures){
        .seconds = seconds,
        .share = thread_seconds / (r->threads * profiled_seconds(r)),
        .flops = rate,
        .fraction_of_peak = rate / r->peak,
    };
}

/* The threads' time in the profiled epoch in no kernel and not in the rest
 * of a step: waiting for one another, or for the trainer's serial work (the
 * shuffle). */
static double idle_thread_seconds(const struct recipe_run *r)
{
    double busy = r->profile.other_seconds + r->profile.update_seconds;
    for (size_t l = 0; l < r->n_layers; l++)
        for (size_t k = 0; k < ENGINE_KERNELS; k++)
            busy += r->profile.seconds[l][k];
    return r->threads * profiled_seconds(r) - busy;
}

static void network_name(const struct recipe_run *r, char *text, size_t size)
{
    size_t used = 0;
    for (size_t l = 0; l <= r->n_layers && used < size; l++)
        used += (size_t)snprintf(text + used, size - used, "%s%zu", l ? "-" : "", r->widths[l]);
}

/* Appends to text[*used ..) as far as it goes. */
static void append(char *text, size_t size, size_t *used, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static void append(char *text, size_t size, size_t *used, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int n = *used < size ? vsnprintf(text + *used, size - *used, fmt, ap) : 0;
    va_end(ap);
    if (n > 0)
        *used += (size_t)n;
}

/* The mnist-omp command line that trains the same network to the same bits:
 * the recipe's options, the request's size and epochs in place of its own. */
static void command_line(const struct recipe_run *r, char *text, size_t size)
{
    char train_size[32], epochs[32];
    snprintf(train_size, sizeof train_size, "%zu", r->options.train_size);
    snprintf(epochs, sizeof epochs, "%u", r->options.epochs);
    const char *replacement = NULL;
    size_t used = 0;

    append(text, size, &used, "mnist-omp");
    for (const char *word = r->recipe->options; *word;) {
        const size_t length = strcspn(word, " ");
        if (replacement)
            append(text, size, &used, " %s", replacement);
        else
            append(text, size, &used, " %.*s", (int)length, word);
        replacement = NULL;
        if (r->given_size && strncmp(word, "--train-size ", length + 1) == 0)
            replacement = train_size;
        if (r->given_epochs && strncmp(word, "--epochs ", length + 1) == 0)
            replacement = epochs;
        word += length;
        word += strspn(word, " ");
    }
    append(text, size, &used, " --seed %lld --precision %s --threads %d",
           (long long)r->options.seed, precision_short_name(r->precision), r->threads);
}

static void print_text(const struct recipe_run *r)
{
    char network[256], command[1536];
    network_name(r, network, sizeof network);
    command_line(r, command, sizeof command);
    printf("\nrecipe %s: %s, %s, N = %zu, %d thread%s, %u epoch%s; FMA peak %.1f GFLOP/s\n",
           r->recipe->name, network, precision_short_name(r->precision), r->options.train_size,
           r->threads, r->threads == 1 ? "" : "s", r->options.epochs,
           r->options.epochs == 1 ? "" : "s", 1e-9 * r->peak);
    printf("  %s\n", command);
    printf("  s/epoch %.4f [%.4f - %.4f] of %zu epoch%s, training %.3f s, final loss %.6g,\n"
           "  test accuracy %.2f%% (%zu of %zu); the last epoch, %.4f s, profiled:\n",
           r->spread.median, r->spread.min, r->spread.max, r->timed_epochs,
           r->timed_epochs == 1 ? "" : "s", r->training_seconds,
           r->losses[r->options.epochs - 1], 100.0 * (double)r->correct / (double)r->test_count,
           r->correct, r->test_count, profiled_seconds(r));
    printf("  %-14s %-16s %9s %6s %9s %6s\n", "layer", "kernel", "s/thread", "share", "GFLOP/s",
           "%peak");
    for (size_t l = 0; l < r->n_layers; l++) {
        char layer[64];
        snprintf(layer, sizeof layer, "%zu %zux%zu%s", l, r->widths[l], r->widths[l + 1],
                 l ? "" : "*");
        for (size_t k = 0; k < ENGINE_KERNELS; k++) {
            const double per_image = kernel_flops_per_image(r, l, (enum engine_kernel)k);
            if (per_image == 0)
                continue;
            const struct kernel_figures f = figures(r, r->profile.seconds[l][k],
                                                    per_image * (double)r->profile.images);
            printf("  %-14s %-16s %9.4f %5.1f%% %9.1f %5.1f%%\n", layer, kernel_names[k],
                   f.seconds, 100 * f.share, 1e-9 * f.flops, 100 * f.fraction_of_peak);
        }
    }
    const struct kernel_figures update = figures(r, r->profile.update_seconds, 0);
    const struct kernel_figures other = figures(r, r->profile.other_seconds, 0);
    const struct kernel_figures idle = figures(r, idle_thread_seconds(r), 0);
    printf("  %-14s %-16s %9.4f %5.1f%%\n", "", "update", update.seconds, 100 * update.share);
    printf("  %-14s %-16s %9.4f %5.1f%%\n", "", "other", other.seconds, 100 * other.share);
    printf("  %-14s %-16s %9.4f %5.1f%%\n", "", "idle or serial", idle.seconds, 100 * idle.share);
    fflush(stdout);
}

static void print_json_numbers(const char *key, const double *values, size_t n)
{
    printf("\"%s\": [", key);
    for (size_t i = 0; i < n; i++)
        printf("%s%.9g", i ? ", " : "", values[i]);
    printf("]");
}

static void print_json(const struct recipe_run *r, bool first)
{
    char network[256], command[1536];
    network_name(r, network, sizeof network);
    command_line(r, command, sizeof command);
    printf("%s\n  {\"recipe\": \"%s\", \"options\": \"%s\", \"command\": \"%s\",\n"
           "   \"network\": \"%s\", \"precision\": \"%s\", \"size\": %zu, \"threads\": %d, "
           "\"epochs\": %u, \"seed\": %lld,\n"
           "   \"s_per_epoch_median\": %.6g, \"s_min\": %.6g, \"s_max\": %.6g, "
           "\"timed_epochs\": %zu, \"training_seconds\": %.6g,\n"
           "   \"profiled_epoch\": %u, \"profiled_seconds\": %.6g,\n   ",
           first ? "" : ",", r->recipe->name, r->recipe->options, command, network,
           precision_short_name(r->precision), r->options.train_size, r->threads,
           r->options.epochs, (long long)r->options.seed, r->spread.median, r->spread.min,
           r->spread.max, r->timed_epochs, r->training_seconds, r->options.epochs - 1,
           profiled_seconds(r));
    print_json_numbers("epoch_seconds", r->epoch_seconds, r->options.epochs);
    printf(",\n   ");
    print_json_numbers("losses", r->losses, r->options.epochs);
    printf(",\n   \"test_correct\": %zu, \"test_count\": %zu, \"test_accuracy\": %.6g,\n"
           "   \"peak_gflops\": %.6g, \"steps\": %llu, \"images\": %llu,\n   \"kernels\": [",
           r->correct, r->test_count, (double)r->correct / (double)r->test_count,
           1e-9 * r->peak, (unsigned long long)r->profile.steps,
           (unsigned long long)r->profile.images);
    const char *separator = "";
    for (size_t l = 0; l < r->n_layers; l++) {
        for (size_t k = 0; k < ENGINE_KERNELS; k++) {
            const double per_image = kernel_flops_per_image(r, l, (enum engine_kernel)k);
            if (per_image == 0)
                continue;
            const double flops = per_image * (double)r->profile.images;
            const struct kernel_figures f = figures(r, r->profile.seconds[l][k], flops);
            printf("%s\n    {\"layer\": %zu, \"n_in\": %zu, \"n_out\": %zu, \"kernel\": \"%s\", "
                   "\"dense_equivalent\": %s, \"seconds\": %.6g, \"share\": %.4g, "
                   "\"gflop\": %.6g, \"gflops\": %.6g, \"fraction_of_peak\": %.4g}",
                   separator, l, r->widths[l], r->widths[l + 1], kernel_keys[k],
                   l ? "false" : "true", f.seconds, f.share, 1e-9 * flops, 1e-9 * f.flops,
                   f.fraction_of_peak);
            separator = ",";
        }
    }
    const struct kernel_figures update = figures(r, r->profile.update_seconds, 0);
    const struct kernel_figures other = figures(r, r->profile.other_seconds, 0);
    const struct kernel_figures idle = figures(r, idle_thread_seconds(r), 0);
    printf("],\n   \"update_seconds\": %.6g, \"update_share\": %.4g, "
           "\"other_seconds\": %.6g, \"other_share\": %.4g, \"idle_seconds\": %.6g, "
           "\"idle_share\": %.4g}",
           update.seconds, update.share, other.seconds, other.share, idle.seconds, idle.share);
    fflush(stdout);
}

/* The runs of one recipe: each precision, size (sizes: resolved; NULL: the
 * recipe's own) and thread count. */
static int run_recipe(const struct bench_recipe_request *q, const struct bench_recipe *recipe,
                      const size_t *sizes, const struct dataset *train_all,
                      const struct dataset *test_all, const double *peaks, bool *first,
                      struct error *err)
{
    const struct usage usage = {stderr, "bench"};
    struct recipe_run r = {.recipe = recipe};

    if (recipe_options(recipe, &r.options, err) < 0)
        return EXIT_FAILURE;
    r.options.seed = q->seed;
    r.given_epochs = q->epochs > 0;
    if (r.given_epochs)
        r.options.epochs = q->epochs;
    r.given_size = sizes != NULL;
    if (!sizes && options_resolve_subset("--train-size", &r.options.train_size,
                                         train_all->count, &usage) < 0)
        return EXIT_USAGE;
    if (options_resolve_subset("--test-size", &r.options.test_size, test_all->count, &usage) <
        0)
        return EXIT_USAGE;
    const size_t recipe_size = r.options.train_size;
    for (size_t p = 0; p < q->n_precisions; p++) {
        for (size_t s = 0; s < (sizes ? q->n_sizes : 1); s++) {
            r.options.train_size = sizes ? sizes[s] : recipe_size;
            for (size_t t = 0; t < q->n_threads; t++) {
                r.precision = q->precisions[p];
                r.threads = q->threads[t];
                r.peak = peaks[p * q->n_threads + t];
                r.training_seconds = 0;
                const int status = measure(&r, train_all, test_all, err);
                if (status == 0) {
                    if (q->json)
                        print_json(&r, *first);
                    else
                        print_text(&r);
                    *first = false;
                }
                free(r.epoch_seconds);
                free(r.losses);
                if (status < 0)
                    return EXIT_FAILURE;
            }
        }
    }
    return EXIT_SUCCESS;
}

int bench_recipes_run(const struct bench_recipe_request *q, const struct bench_machine *machine)
{
    struct error err = {{0}};
    struct dataset train = {0}, test = {0};
    double *peaks = malloc(q->n_precisions * q->n_threads * sizeof *peaks);
    size_t *sizes = malloc((q->sizes ? q->n_sizes : 1) * sizeof *sizes);
    bool first = true;
    int status = EXIT_SUCCESS;

    if (!peaks || !sizes) {
        error_set(&err, "out of memory");
        status = EXIT_FAILURE;
    }
    if (status == EXIT_SUCCESS && (mnist_load(&train, q->data_dir, MNIST_TRAIN, &err) < 0 ||
                                   mnist_load(&test, q->data_dir, MNIST_TEST, &err) < 0))
        status = EXIT_FAILURE;
    /* Every size checked against the data before anything trains. */
    for (size_t s = 0; status == EXIT_SUCCESS && q->sizes && s < q->n_sizes; s++) {
        sizes[s] = q->sizes[s];
        if (options_resolve_subset("--sizes", &sizes[s], train.count,
                                   &(const struct usage){stderr, "bench"}) < 0)
            status = EXIT_USAGE;
    }
    /* The probe runs before any training, on an otherwise idle process. */
    for (size_t p = 0; status == EXIT_SUCCESS && p < q->n_precisions; p++)
        for (size_t t = 0; t < q->n_threads; t++)
            peaks[p * q->n_threads + t] = fma_peak_flops(q->precisions[p], q->threads[t], 0.2);
    if (status == EXIT_SUCCESS) {
        if (q->json)
            printf("{\"tool\": \"mnist-omp\", \"version\": \"%s\", \"cpu\": \"%s\", "
                   "\"kernels\": \"%s\", \"cores\": %d,\n \"flops_per_image\": {\"forward\": "
                   "\"2*n_in*n_out\", \"weight_gradient\": \"2*n_in*n_out + n_out\", "
                   "\"input_gradient\": \"2*n_in*n_out\"},\n \"results\": [",
                   PACKAGE_VERSION, machine->cpu, machine->isa, machine->cores);
        else
            printf("mnist-omp bench: recipes on %s (%s kernels, %d cores)\n", machine->cpu,
                   machine->isa, machine->cores);
    }
    for (size_t i = 0; status == EXIT_SUCCESS && i < q->n_recipes; i++)
        status = run_recipe(q, q->recipes[i], q->sizes ? sizes : NULL, &train, &test, peaks,
                            &first, &err);
    if (status == EXIT_SUCCESS) {
        if (q->json)
            printf("\n]}\n");
        else
            fputs(table_notes, stdout);
    } else if (status == EXIT_FAILURE) {
        fprintf(stderr, "mnist-omp: %s\n", err.msg);
    }
    free(peaks);
    free(sizes);
    dataset_free(&train);
    dataset_free(&test);
    return status;
}
