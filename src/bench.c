#include <config.h>

#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_recipes.h"
#include "clock.h"
#include "cluster.h"
#include "kernels.h"
#include "mnist.h"
#include "model.h"
#include "optimizer.h"
#include "options.h"
#include "report.h"
#include "rng.h"
#include "shard.h"

enum { MAX_LIST = 16 };

static const char bench_usage[] =
    "Usage: mnist-omp bench [OPTION]...\n"
    "  or:  mnist-omp bench --recipe NAME[,NAME]... [OPTION]...\n"
    "Time training epochs (by default the reference experiment's: 784-32-10,\n"
    "full batch, SGD) at several thread counts, training-set sizes and\n"
    "precisions, and compare with this machine's peak, measured by an\n"
    "FMA-throughput probe.  With --recipe, train README's recipes instead, as\n"
    "the program trains them, and profile each kernel of each layer.  Under\n"
    "mpirun (a build --with-mpi), time each size on rank 0 alone, then on all\n"
    "ranks with their own OMP_NUM_THREADS, and print ranks x threads, ms per\n"
    "epoch, the speedup and the efficiency.\n"
    "\n"
    "  -t, --threads LIST      thread counts (default: 1, 2, 4, ... up to the\n"
    "                          number of cores, and that number)\n"
    "      --sizes LIST        training-set sizes, N or all (default 6000,60000;\n"
    "                          with --recipe, the recipe's: all)\n"
    "      --precision LIST    f32, f64 or both (default f32,f64; with --recipe, f32)\n"
    "      --hidden LIST       hidden-layer widths of the network (default 32)\n"
    "      --batch B           images per step, B or all (default all)\n"
    "      --epochs N          timed epochs per measurement (default 10; with\n"
    "                          --recipe, the recipe's, whose schedule then spans N)\n"
    "      --warmup N          untimed epochs first (default 2)\n"
    "      --recipe LIST       train these recipes (a, b, c, fast), each from\n"
    "                          its seeded draws at every precision, size and\n"
    "                          thread count; --hidden, --batch and --warmup\n"
    "                          do not apply\n"
    "      --seed S            the seed of the draws (default 1337)\n"
    "      --list-recipes      print each recipe's name and options, and exit\n"
    "  -d, --data DIR          MNIST directory (as for training)\n"
    "      --json              print the results as JSON\n"
    "  -h, --help              show this help and exit\n"
    "\n"
    "GFLOP/s count dense-equivalent work per epoch, 2 N (2 n_0 n_1 + 3 n_1 n_2 +\n"
    "3 n_2 n_3 + ...) for widths n_0 (inputs), n_1, ...; the engine skips the\n"
    "zero pixels, so it may exceed what dense code could do.  A recipe's\n"
    "kernels count 2 n_in n_out FLOPs per image for the forward product and\n"
    "the input gradient, 2 n_in n_out + n_out for the weight gradient; their\n"
    "rate is their FLOPs over their time summed over the threads, divided by\n"
    "the threads.\n"
    "\n"
    "The header gives OMP_PROC_BIND and OMP_PLACES as the environment sets them,\n"
    "the binding OpenMP applies and its number of places, and for each thread\n"
    "count, where each thread runs: its place (-1: not bound) and its CPU.  The\n"
    "suggested OMP_NUM_THREADS is the thread count whose epochs, summed over the\n"
    "sizes and precisions measured, take least time.\n";

struct bench_options {
    int threads[MAX_LIST];
    size_t n_threads;
    size_t sizes[MAX_LIST];
    size_t n_sizes;
    enum precision precisions[2];
    size_t n_precisions;
    size_t widths[MLP_MAX_LAYERS + 1];  /* inputs, the hidden layers, the classes */
    size_t n_layers;
    size_t batch;                       /* 0: the whole training set */
    unsigned epochs, warmup;
    const char *data_dir;
    bool json;
    const struct bench_recipe *recipes[MAX_LIST];
    size_t n_recipes;           /* 0: the reference experiment */
    struct options experiment;  /* the reference experiment: its rate; its seed (--seed)
                                   draws the recipes' runs too */
    size_t inputs;              /* pixels per image of the data */
    int cores;                  /* OpenMP's thread count before bench changes it */
};

/* Where a team of `threads` threads runs, probed before the measurements. */
struct placement {
    int threads;                /* asked for */
    int team;                   /* granted: the entries of places */
    struct thread_place *places;
};

/* OpenMP's binding, for the header. */
struct binding {
    const char *proc_bind_env, *places_env;  /* NULL: unset */
    const char *proc_bind;
    int n_places;
    struct placement placements[MAX_LIST];   /* one per thread count of the sweep */
    size_t n_placements;
    int suggested;                            /* threads granted to the fastest count */
};

struct measurement {
    enum precision precision;
    size_t size;
    int threads;
    double median, min, max;  /* seconds per epoch */
    double flops;             /* dense-equivalent FLOP/s at the median */
    double peak;              /* FMA peak of this precision and thread count, FLOP/s */
};

static void default_threads(struct bench_options *o)
{
    o->n_threads = 0;
    for (int t = 1; t < o->cores && o->n_threads < MAX_LIST - 1; t *= 2)
        o->threads[o->n_threads++] = t;
    o->threads[o->n_threads++] = o->cores;
}

/* Splits a comma-separated list, in place, into at most `max` items, none
 * of them empty.  Returns their number, or -1 after a usage error. */
static int split_list(const char *option, char *list, char **items, int max,
                      const struct usage *u)
{
    int count = 0;

    for (char *item = list;; item++) {
        char *comma = strchr(item, ',');
        if (comma)
            *comma = '\0';
        if (*item == '\0') {
            options_usage_error(u, "%s: %s", option,
                                count == 0 && !comma ? "empty list" : "empty item in the list");
            return -1;
        }
        if (count == max) {
            options_usage_error(u, "%s: more than %d values", option, max);
            return -1;
        }
        items[count++] = item;
        if (!comma)
            return count;
        item = comma;
    }
}

static int parse_bench_options(struct bench_options *o, int argc, char **argv)
{
    static const struct option long_options[] = {
        {"threads", required_argument, NULL, 't'},
        {"sizes", required_argument, NULL, 's'},
        {"precision", required_argument, NULL, 'p'},
        {"hidden", required_argument, NULL, 'H'},
        {"batch", required_argument, NULL, 'b'},
        {"epochs", required_argument, NULL, 'e'},
        {"warmup", required_argument, NULL, 'w'},
        {"data", required_argument, NULL, 'd'},
        {"recipe", required_argument, NULL, 'r'},
        {"seed", required_argument, NULL, 'S'},
        {"list-recipes", no_argument, NULL, 'L'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct usage usage = {stderr, "bench"};
    char *items[MAX_LIST];
    long long value;
    int code, count;
    /* The options that mean something else, or nothing, with --recipe. */
    const char *reference_only = NULL;
    bool given_sizes = false, given_precision = false, given_epochs = false;

    memset(o, 0, sizeof *o);
    options_defaults(&o->experiment);
    o->cores = engine_max_threads();
    default_threads(o);
    o->sizes[0] = 6000;
    o->sizes[1] = 60000;
    o->n_sizes = 2;
    o->precisions[0] = PRECISION_F32;
    o->precisions[1] = PRECISION_F64;
    o->n_precisions = 2;
    o->widths[1] = 32;
    o->n_layers = 2;
    o->epochs = 10;
    o->warmup = 2;
    optind = 1;
    opterr = 0;
    while ((code = getopt_long(argc, argv, ":t:d:h", long_options, NULL)) != -1) {
        switch (code) {
        case 't':
            if ((count = split_list("--threads", optarg, items, MAX_LIST, &usage)) < 0)
                return -1;
            for (int i = 0; i < count; i++) {
                if (options_parse_count("--threads", items[i], 1, 4096, &value, &usage) < 0)
                    return -1;
                o->threads[i] = (int)value;
            }
            o->n_threads = (size_t)count;
            break;
        case 's':
            if ((count = split_list("--sizes", optarg, items, MAX_LIST, &usage)) < 0)
                return -1;
            for (int i = 0; i < count; i++)
                if (options_parse_subset("--sizes", items[i], &o->sizes[i], &usage) < 0)
                    return -1;
            o->n_sizes = (size_t)count;
            given_sizes = true;
            break;
        case 'p':
            if ((count = split_list("--precision", optarg, items, 2, &usage)) < 0)
                return -1;
            for (int i = 0; i < count; i++)
                if (options_parse_precision("--precision", items[i], &o->precisions[i],
                                            &usage) < 0)
                    return -1;
            o->n_precisions = (size_t)count;
            given_precision = true;
            break;
        case 'H':
            if ((count = split_list("--hidden", optarg, items, MLP_MAX_LAYERS - 1, &usage)) < 0)
                return -1;
            for (int i = 0; i < count; i++) {
                if (options_parse_count("--hidden", items[i], 1, MLP_MAX_WIDTH, &value, &usage) <
                    0)
                    return -1;
                o->widths[i + 1] = (size_t)value;
            }
            o->n_layers = (size_t)count + 1;
            reference_only = "--hidden";
            break;
        case 'b':
            if (strcmp(optarg, "all") == 0)
                o->batch = 0;
            else if (options_parse_count("--batch", optarg, 1, 1LL << 40, &value, &usage) < 0)
                return -1;
            else
                o->batch = (size_t)value;
            reference_only = "--batch";
            break;
        case 'e':
            if (options_parse_count("--epochs", optarg, 1, 100000, &value, &usage) < 0)
                return -1;
            o->epochs = (unsigned)value;
            given_epochs = true;
            break;
        case 'w':
            if (options_parse_count("--warmup", optarg, 0, 100000, &value, &usage) < 0)
                return -1;
            o->warmup = (unsigned)value;
            reference_only = "--warmup";
            break;
        case 'r':
            if ((count = split_list("--recipe", optarg, items, MAX_LIST, &usage)) < 0)
                return -1;
            for (int i = 0; i < count; i++) {
                if (!(o->recipes[i] = bench_recipe_find(items[i]))) {
                    char names[256];
                    bench_recipe_names(names, sizeof names);
                    options_usage_error(&usage, "--recipe: no recipe '%s' (the recipes: %s)",
                                        items[i], names);
                    return -1;
                }
            }
            o->n_recipes = (size_t)count;
            break;
        case 'S':
            if (options_parse_count("--seed", optarg, -INT64_MAX, INT64_MAX, &value, &usage) < 0)
                return -1;
            o->experiment.seed = value;
            break;
        case 'L':
            bench_recipes_list(stdout);
            return 1;
        case 'd':
            o->data_dir = optarg;
            break;
        case 'j':
            o->json = true;
            break;
        case 'h':
            fputs(bench_usage, stdout);
            return 1;
        default:
            options_bad_option(&usage, long_options, code, argv);
            return -1;
        }
    }
    if (optind < argc) {
        options_usage_error(&usage, "unexpected argument '%s'", argv[optind]);
        return -1;
    }
    if (o->n_recipes) {
        if (reference_only) {
            options_usage_error(&usage, "%s does not go with --recipe: a recipe fixes how it "
                                "trains", reference_only);
            return -1;
        }
        if (!given_precision) {
            o->precisions[0] = PRECISION_F32;
            o->n_precisions = 1;
        }
        if (!given_sizes)
            o->n_sizes = 0;
        if (!given_epochs)
            o->epochs = 0;
    }
    return 0;
}

/* What an epoch trains: the network, its engine and plain SGD, over the
 * batches order[0, batch), order[batch, 2 batch), ... (order NULL: the whole
 * training set in one step). */
struct bench_run {
    struct engine *e;
    struct mlp *m;
    struct optimizer optimizer;
    struct optimizer_state state;
    const size_t *order;
    size_t count, batch;
    double lr;
};

static void train_epoch(struct bench_run *t)
{
    for (size_t first = 0; first < t->count; first += t->batch) {
        const size_t size = t->count - first < t->batch ? t->count - first : t->batch;
        const struct optimizer_step step = optimizer_begin_step(&t->optimizer, &t->state, t->lr);
        engine_train_step(t->e, t->m, t->order ? t->order + first : NULL, size, &t->optimizer,
                          &step, &t->state);
    }
}

/* Dense-equivalent floating-point operations of an epoch on n images: the
 * forward product and the weight gradient of every layer, the input
 * gradient of all but the first. */
static double network_epoch_flops(const struct mlp *m, size_t n)
{
    double per_image = 0;
    for (size_t l = 0; l < m->n_layers; l++)
        per_image += (l ? 3.0 : 2.0) * (double)m->widths[l] * (double)m->widths[l + 1];
    return 2.0 * (double)n * per_image;
}

/* Times `epochs` epochs one by one after `warmup` untimed ones. */
static void time_epochs(struct bench_run *t, const struct bench_options *o, double *seconds,
                        struct measurement *result)
{
    for (unsigned i = 0; i < o->warmup; i++)
        train_epoch(t);
    for (unsigned i = 0; i < o->epochs; i++) {
        const double start = clock_seconds();
        train_epoch(t);
        seconds[i] = clock_seconds() - start;
    }
    const struct timing_spread spread = timing_spread(seconds, o->epochs);
    result->min = spread.min;
    result->max = spread.max;
    result->median = spread.median;
}

static int measure_size(const struct bench_options *o, const struct dataset *all, size_t size,
                        enum precision precision, const double *peaks,
                        struct measurement *results, size_t *n_results, struct error *err)
{
    struct dataset subset;
    struct mlp m;
    struct engine *e = NULL;
    struct py_random rng;
    struct bench_run t = {.m = &m, .optimizer = {.kind = OPTIMIZER_SGD}, .lr = o->experiment.lr};
    double *seconds = malloc(o->epochs * sizeof *seconds);
    size_t *order = NULL;
    int status = -1;

    if (!seconds)
        return error_set(err, "out of memory");
    /* The first `size` images of the seeded permutation, as the program draws them. */
    py_random_seed(&rng, o->experiment.seed);
    if (dataset_draw_subset(&subset, all, size, &rng, err) < 0) {
        free(seconds);
        return -1;
    }
    if (mlp_create(&m, o->n_layers, o->widths, ACTIVATION_RELU, LOSS_MSE, precision, err) == 0) {
        mlp_init_uniform(&m, &rng);
        status = engine_create(&e, &m, &subset, NULL, 0, err);
    }
    t.e = e;
    t.count = size;
    t.batch = o->batch && o->batch < size ? o->batch : size;
    if (status == 0 && t.batch < size) {
        /* One shuffle, as an epoch of the trainer would draw it. */
        if (!(order = malloc(size * sizeof *order)))
            status = error_set(err, "out of memory");
        for (size_t i = 0; status == 0 && i < size; i++)
            order[i] = i;
        if (status == 0)
            py_random_shuffle(&rng, order, size);
        t.order = order;
    }
    if (status == 0)
        status = optimizer_state_create(&t.state, &t.optimizer, mlp_param_count(&m), precision,
                                        err);
    for (size_t i = 0; status == 0 && i < o->n_threads; i++) {
        struct measurement *r = &results[(*n_results)++];
        engine_use_threads(e, o->threads[i]);
        r->precision = precision;
        r->size = size;
        r->threads = o->threads[i];
        r->peak = peaks[i];
        time_epochs(&t, o, seconds, r);
        r->flops = network_epoch_flops(&m, size) / r->median;
        if (!o->json)
            fprintf(stderr, "  measured %s N=%zu threads=%d: %.3f ms/epoch\n",
                    precision_name(precision), size, r->threads, 1e3 * r->median);
    }
    optimizer_state_free(&t.state);
    engine_destroy(e);
    mlp_free(&m);
    dataset_free(&subset);
    free(order);
    free(seconds);
    return status;
}

static const char *cpu_model(char *buffer, size_t size)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(buffer, (int)size, f)) {
        char *colon = strchr(buffer, ':');
        if (strncmp(buffer, "model name", 10) == 0 && colon && colon[1] == ' ') {
            memmove(buffer, colon + 2, strlen(colon + 2) + 1);
            buffer[strcspn(buffer, "\n")] = '\0';
            fclose(f);
            return buffer;
        }
    }
    if (f)
        fclose(f);
    snprintf(buffer, size, "unknown CPU");
    return buffer;
}

/* Speed-up against the single-thread measurement of the same size and precision. */
static double speedup(const struct measurement *results, size_t n, const struct measurement *r)
{
    for (size_t i = 0; i < n; i++)
        if (results[i].threads == 1 && results[i].size == r->size &&
            results[i].precision == r->precision)
            return results[i].median / r->median;
    return 0;
}

/* The network as "784-32-10". */
static void network_name(const struct bench_options *o, char *text, size_t size)
{
    size_t used = 0;
    for (size_t l = 0; l <= o->n_layers && used < size; l++)
        used += (size_t)snprintf(text + used, size - used, "%s%zu", l ? "-" : "", o->widths[l]);
}

/* The probe of where each thread count of the sweep runs; -1 out of memory. */
static int probe_binding(const struct bench_options *o, struct binding *b)
{
    b->proc_bind_env = getenv("OMP_PROC_BIND");
    b->places_env = getenv("OMP_PLACES");
    b->proc_bind = engine_proc_bind();
    b->n_places = engine_place_count();
    for (size_t i = 0; i < o->n_threads; i++) {
        struct placement *p = &b->placements[b->n_placements];
        if (!(p->places = malloc((size_t)o->threads[i] * sizeof *p->places)))
            return -1;
        b->n_placements++;
        p->threads = o->threads[i];
        p->team = engine_thread_places(p->threads, p->places);
    }
    return 0;
}

static void binding_free(struct binding *b)
{
    for (size_t i = 0; i < b->n_placements; i++)
        free(b->placements[i].places);
}

/* The threads granted to the count of the sweep whose epochs, summed over
 * every size and precision, take least time: larger sets, which gain most
 * from threads, weigh most.  Granted, since a count beyond
 * $OMP_THREAD_LIMIT, or any count in a build without OpenMP, runs fewer. */
static int fastest_threads(const struct bench_options *o, const struct measurement *results,
                           size_t n, const struct binding *b)
{
    int best = b->placements[0].team;
    double best_seconds = INFINITY;
    for (size_t i = 0; i < o->n_threads; i++) {
        double seconds = 0;
        for (size_t k = 0; k < n; k++)
            if (results[k].threads == o->threads[i])
                seconds += results[k].median;
        if (seconds < best_seconds) {
            best = b->placements[i].team;
            best_seconds = seconds;
        }
    }
    return best;
}

static void print_binding(const struct binding *b)
{
    printf("OMP_PROC_BIND: %s, OMP_PLACES: %s; proc_bind: %s, places: %d\n",
           b->proc_bind_env ? b->proc_bind_env : "unset", b->places_env ? b->places_env : "unset",
           b->proc_bind, b->n_places);
    for (size_t i = 0; i < b->n_placements; i++) {
        const struct placement *p = &b->placements[i];
        printf("placement of %d thread%s:", p->threads, p->threads == 1 ? "" : "s");
        for (int t = 0; t < p->team; t++)
            printf("%s t%d place %d cpu %d", t ? "," : "", p->places[t].thread,
                   p->places[t].place, p->places[t].cpu);
        printf("\n");
    }
}

/* s as a JSON string, or null. */
static void print_json_string(const char *s)
{
    if (!s) {
        printf("null");
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", (unsigned)*s);
        else
            putchar(*s);
    }
    putchar('"');
}

static void print_json_binding(const struct binding *b)
{
    printf(" \"omp_proc_bind_env\": ");
    print_json_string(b->proc_bind_env);
    printf(", \"omp_places_env\": ");
    print_json_string(b->places_env);
    printf(", \"proc_bind\": \"%s\", \"num_places\": %d,\n \"placements\": [",
           b->proc_bind, b->n_places);
    for (size_t i = 0; i < b->n_placements; i++) {
        const struct placement *p = &b->placements[i];
        printf("%s\n  {\"threads\": %d, \"team\": [", i ? "," : "", p->threads);
        for (int t = 0; t < p->team; t++)
            printf("%s{\"thread\": %d, \"place\": %d, \"cpu\": %d}", t ? ", " : "",
                   p->places[t].thread, p->places[t].place, p->places[t].cpu);
        printf("]}");
    }
    printf("],\n \"suggested_threads\": %d,\n", b->suggested);
}

static void print_table(const struct bench_options *o, const struct measurement *results,
                        size_t n, const char *cpu, const char *isa, const struct binding *b)
{
    char network[256], batch[64];
    network_name(o, network, sizeof network);
    if (o->batch)
        snprintf(batch, sizeof batch, "batch-%zu SGD", o->batch);
    else
        snprintf(batch, sizeof batch, "full-batch gradient descent");
    printf("mnist-omp bench: %s %s on %s (%s kernels, %d cores)\n", network, batch, cpu, isa,
           o->cores);
    print_binding(b);
    printf("%-5s %6s %7s %10s %17s %11s %9s %7s %6s %6s\n", "prec", "N", "threads",
           "ms/epoch", "[min - max]", "samples/s", "GFLOP/s", "speedup", "eff.", "%peak");
    for (size_t i = 0; i < n; i++) {
        const struct measurement *r = &results[i];
        const double s = speedup(results, n, r);
        printf("%-5s %6zu %7d %10.3f [%6.3f - %6.3f] %11.3g %9.1f %7.2f %5.0f%% %5.0f%%\n",
               precision_short_name(r->precision), r->size, r->threads, 1e3 * r->median,
               1e3 * r->min, 1e3 * r->max, (double)r->size / r->median, 1e-9 * r->flops, s,
               s > 0 ? 100 * s / r->threads : 0.0, 100 * r->flops / r->peak);
    }
    printf("suggested OMP_NUM_THREADS: %d (%s)\n", b->suggested,
           o->n_threads > 1 ? "fastest measured" : "the only count measured");
}

static void print_json(const struct bench_options *o, const struct measurement *results,
                       size_t n, const char *cpu, const char *isa, const struct binding *b)
{
    char network[256], flops[512];
    size_t used = 0;
    network_name(o, network, sizeof network);
    for (size_t l = 0; l < o->n_layers && used < sizeof flops; l++)
        used += (size_t)snprintf(flops + used, sizeof flops - used, "%s%d*%zu*%zu",
                                 l ? " + " : "", l ? 3 : 2, o->widths[l], o->widths[l + 1]);
    printf("{\"tool\": \"mnist-omp\", \"version\": \"%s\", \"cpu\": \"%s\", \"kernels\": \"%s\", "
           "\"cores\": %d,\n",
           PACKAGE_VERSION, cpu, isa, o->cores);
    print_json_binding(b);
    printf(" \"network\": \"%s\", \"batch\": %zu,\n"
           " \"flops_per_epoch\": \"2*N*(%s)\",\n \"results\": [",
           network, o->batch, flops);
    for (size_t i = 0; i < n; i++) {
        const struct measurement *r = &results[i];
        printf("%s\n  {\"size\": %zu, \"precision\": \"%s\", \"threads\": %d, "
               "\"ms_per_epoch_median\": %.6g, \"ms_min\": %.6g, \"ms_max\": %.6g, "
               "\"samples_per_s\": %.6g, \"gflops\": %.6g, \"speedup\": %.4g, "
               "\"peak_gflops\": %.6g, \"fraction_of_peak\": %.4g}",
               i ? "," : "", r->size, precision_short_name(r->precision), r->threads,
               1e3 * r->median, 1e3 * r->min, 1e3 * r->max, (double)r->size / r->median,
               1e-9 * r->flops, speedup(results, n, r), 1e-9 * r->peak, r->flops / r->peak);
    }
    printf("\n]}\n");
}

/* The reference experiment's step at every precision, size and thread count. */
static int bench_reference(struct bench_options *o, const char *dir)
{
    struct error err = {{0}};
    struct dataset all = {0};
    struct measurement results[2 * MAX_LIST * MAX_LIST];
    size_t n_results = 0;
    struct binding binding = {0};
    char cpu[256];

    if (mnist_load(&all, dir, MNIST_TRAIN, &err) < 0) {
        fprintf(stderr, "mnist-omp: %s\n", err.msg);
        return EXIT_FAILURE;
    }
    o->inputs = dataset_image_size(&all);
    o->widths[0] = o->inputs;
    o->widths[o->n_layers] = MNIST_CLASSES;
    for (size_t i = 0; i < o->n_sizes; i++) {
        if (options_resolve_subset("--sizes", &o->sizes[i], all.count,
                                   &(const struct usage){stderr, "bench"}) < 0) {
            dataset_free(&all);
            return EXIT_USAGE;
        }
    }

    /* Before the first measurement, as the threads are placed before a run. */
    if (probe_binding(o, &binding) < 0) {
        binding_free(&binding);
        dataset_free(&all);
        fprintf(stderr, "mnist-omp: out of memory\n");
        return EXIT_FAILURE;
    }
    int status = EXIT_SUCCESS;
    for (size_t p = 0; p < o->n_precisions && status == EXIT_SUCCESS; p++) {
        double peaks[MAX_LIST];
        for (size_t t = 0; t < o->n_threads; t++)
            peaks[t] = fma_peak_flops(o->precisions[p], o->threads[t], 0.2);
        for (size_t s = 0; s < o->n_sizes && status == EXIT_SUCCESS; s++)
            if (measure_size(o, &all, o->sizes[s], o->precisions[p], peaks, results,
                             &n_results, &err) < 0)
                status = EXIT_FAILURE;
    }
    dataset_free(&all);
    if (status != EXIT_SUCCESS) {
        binding_free(&binding);
        fprintf(stderr, "mnist-omp: %s\n", err.msg);
        return status;
    }
    const char *isa = engine_best_isa();
    cpu_model(cpu, sizeof cpu);
    binding.suggested = fastest_threads(o, results, n_results, &binding);
    if (o->json)
        print_json(o, results, n_results, cpu, isa, &binding);
    else
        print_table(o, results, n_results, cpu, isa, &binding);
    binding_free(&binding);
    return EXIT_SUCCESS;
}

/* The median seconds of `epochs` epochs (after `warmup`) of SGD on m over
 * the batches order[0, batch), ... (order NULL: the whole set in one step)
 * of a set of `count`, each step a shard_step of every rank, whose time
 * ends when the last rank is done. */
static double time_shard_epochs(struct shard *sh, struct mlp *m, const size_t *order,
                                size_t count, size_t batch, double lr, unsigned warmup,
                                unsigned epochs, double *seconds)
{
    const struct optimizer sgd = {.kind = OPTIMIZER_SGD};
    struct optimizer_state state = {0};
    for (unsigned i = 0; i < warmup + epochs; i++) {
        const double start = clock_seconds();
        for (size_t first = 0; first < count; first += batch) {
            const size_t size = count - first < batch ? count - first : batch;
            const struct optimizer_step step = optimizer_begin_step(&sgd, &state, lr);
            if (isnan(shard_step(sh, m, order ? order + first : NULL, size, &sgd, &step,
                                 &state))) {
                fprintf(stderr, "mnist-omp: rank %d: out of memory in a step\n",
                        sh->cluster->rank);
                cluster_abort(sh->cluster, EXIT_FAILURE);
            }
        }
        cluster_max(sh->cluster, 0);
        if (i >= warmup)
            seconds[i - warmup] = clock_seconds() - start;
    }
    return timing_spread(seconds, epochs).median;
}

/* Under mpirun: each size and precision of the reference experiment's
 * network (as --hidden and --batch set it) trained first on rank 0 alone,
 * the other ranks waiting, then on all ranks, each with its own thread
 * count ($OMP_NUM_THREADS); rank 0 prints ranks x threads, ms per epoch of
 * both, the speedup, the efficiency (the speedup over the ranks) and the
 * bytes rank 0 sends a step. */
static int bench_ranks(struct bench_options *o, const char *dir, const struct cluster *c)
{
    struct error err = {{0}};
    struct dataset all = {0};
    const bool root = cluster_is_root(c);
    char cpu[256];

    if (mnist_load(&all, dir, MNIST_TRAIN, &err) < 0) {
        fprintf(stderr, "mnist-omp: rank %d: %s\n", c->rank, err.msg);
        cluster_abort(c, EXIT_FAILURE);
    }
    o->widths[0] = dataset_image_size(&all);
    o->widths[o->n_layers] = MNIST_CLASSES;
    for (size_t i = 0; i < o->n_sizes; i++)
        if (options_resolve_subset("--sizes", &o->sizes[i], all.count,
                                   &(const struct usage){stderr, "bench"}) < 0)
            cluster_abort(c, EXIT_USAGE);
    const int threads = engine_max_threads();
    printf("mnist-omp bench: %d ranks x %d thread%s on %s (%s kernels)\n", c->ranks, threads,
           threads == 1 ? "" : "s", cpu_model(cpu, sizeof cpu), engine_best_isa());
    printf("prec       N  batch  ranks x threads  1 rank ms/epoch  %d ranks ms/epoch  speedup  "
           "efficiency  rank 0 sends/step\n", c->ranks);
    double *seconds = malloc(o->epochs * sizeof *seconds);
    if (!seconds)
        cluster_abort(c, EXIT_FAILURE);
    for (size_t p = 0; p < o->n_precisions; p++) {
        for (size_t i = 0; i < o->n_sizes; i++) {
            const size_t size = o->sizes[i], batch = o->batch && o->batch < size ? o->batch : size;
            struct dataset subset, share;
            struct mlp m, initial;
            struct py_random rng;
            struct shard sh;
            size_t *order = NULL, *rows = NULL, first, end;
            py_random_seed(&rng, o->experiment.seed);
            bool ok = dataset_draw_subset(&subset, &all, size, &rng, &err) == 0 &&
                      mlp_create(&m, o->n_layers, o->widths, ACTIVATION_RELU, LOSS_MSE,
                                 o->precisions[p], &err) == 0;
            if (!ok) {
                fprintf(stderr, "mnist-omp: rank %d: %s\n", c->rank, err.msg);
                cluster_abort(c, EXIT_FAILURE);
            }
            mlp_init_uniform(&m, &rng);
            ok = mlp_create(&initial, m.n_layers, m.widths, m.activation, m.loss, m.precision,
                            &err) == 0;
            if (ok)
                memcpy(initial.params, m.params,
                       mlp_param_count(&m) * precision_size(m.precision));
            if (ok && batch < size) {
                ok = (order = malloc(size * sizeof *order)) != NULL;
                for (size_t k = 0; ok && k < size; k++)
                    order[k] = k;
                if (ok)
                    py_random_shuffle(&rng, order, size);
            }
            /* One rank: rank 0 alone, as one process trains. */
            double alone = 0;
            if (ok && root) {
                struct engine *e;
                struct bench_run t = {.m = &m, .optimizer = {.kind = OPTIMIZER_SGD},
                                      .lr = o->experiment.lr, .order = order, .count = size,
                                      .batch = batch};
                struct measurement one;
                ok = engine_create(&e, &m, &subset, NULL, 0, &err) == 0;
                if (ok) {
                    t.e = e;
                    time_epochs(&t, o, seconds, &one);
                    alone = one.median;
                    engine_destroy(e);
                }
            }
            if (cluster_max(c, !ok)) {
                fprintf(stderr, "mnist-omp: rank %d: %s\n", c->rank, ok ? "another rank failed" : err.msg);
                cluster_abort(c, EXIT_FAILURE);
            }
            /* All ranks, from the same start, each on its share. */
            memcpy(m.params, initial.params, mlp_param_count(&m) * precision_size(m.precision));
            shard_range(size, c->rank, c->ranks, &first, &end);
            ok = (rows = malloc((end - first + 1) * sizeof *rows)) != NULL;
            for (size_t k = first; ok && k < end; k++)
                rows[k - first] = k;
            ok = ok && dataset_select(&share, &subset, rows, end - first, &err) == 0;
            ok = ok && shard_create(&sh, c, &m, &share, batch < size ? batch : 0, 0, &err) == 0;
            if (!ok) {
                fprintf(stderr, "mnist-omp: rank %d: %s\n", c->rank, err.msg);
                cluster_abort(c, EXIT_FAILURE);
            }
            const double together = time_shard_epochs(&sh, &m, order, size, batch,
                                                      o->experiment.lr, o->warmup, o->epochs,
                                                      seconds);
            printf("%-5s %7zu  %5zu  %5d x %-7d  %15.3f  %16.3f  %7.2f  %9.1f%%  %10.2f MB\n",
                   precision_name(o->precisions[p]), size, batch, c->ranks, threads,
                   1e3 * alone, 1e3 * together, alone / together,
                   100.0 * alone / together / c->ranks, (double)sh.sent_bytes / 1e6);
            fflush(stdout);
            shard_destroy(&sh);
            dataset_free(&share);
            dataset_free(&subset);
            mlp_free(&initial);
            mlp_free(&m);
            free(rows);
            free(order);
        }
    }
    free(seconds);
    dataset_free(&all);
    return EXIT_SUCCESS;
}

static int bench_one_process(struct bench_options *o, const char *dir)
{
    char cpu[256];
    if (!o->n_recipes)
        return bench_reference(o, dir);
    const struct bench_machine machine = {cpu_model(cpu, sizeof cpu), engine_best_isa(),
                                          o->cores};
    const struct bench_recipe_request request = {
        .recipes = o->recipes, .n_recipes = o->n_recipes,
        .precisions = o->precisions, .n_precisions = o->n_precisions,
        .sizes = o->n_sizes ? o->sizes : NULL, .n_sizes = o->n_sizes,
        .threads = o->threads, .n_threads = o->n_threads,
        .epochs = o->epochs, .seed = o->experiment.seed, .data_dir = dir, .json = o->json,
    };
    return bench_recipes_run(&request, &machine);
}

int bench_main(int argc, char **argv)
{
    struct bench_options o;
    struct error err = {{0}};
    char dir[4096];
    struct cluster cluster;
    if (cluster_init(&cluster, &argc, &argv, &err) < 0) {
        fprintf(stderr, "mnist-omp: %s\n", err.msg);
        cluster_finalize();
        return EXIT_FAILURE;
    }
    /* Under mpirun, rank 0 alone prints. */
    if (!cluster_is_root(&cluster) && !freopen("/dev/null", "w", stdout))
        cluster_abort(&cluster, EXIT_FAILURE);
    const int parsed = parse_bench_options(&o, argc, argv);
    int status;
    if (parsed != 0)
        status = parsed > 0 ? EXIT_SUCCESS : EXIT_USAGE;
    else if (mnist_find_dir(o.data_dir, PKGDATADIR, dir, sizeof dir, &err) < 0) {
        fprintf(stderr, "mnist-omp: %s\n", err.msg);
        status = EXIT_FAILURE;
    } else if (cluster.ranks > 1 && o.n_recipes) {
        fprintf(stderr, "mnist-omp: bench --recipe runs in one process, not under mpirun\n");
        status = EXIT_USAGE;
    } else if (cluster.ranks > 1) {
        status = bench_ranks(&o, dir, &cluster);
    } else {
        status = bench_one_process(&o, dir);
    }
    status = cluster_max(&cluster, status);
    cluster_finalize();
    return status;
}
