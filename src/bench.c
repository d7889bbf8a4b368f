#include <config.h>

#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "kernels.h"
#include "mnist.h"
#include "model.h"
#include "options.h"
#include "report.h"
#include "rng.h"

enum { MAX_LIST = 16, EXIT_USAGE = 2, HIDDEN = 32, CLASSES = 10 };

static const char bench_usage[] =
    "Usage: mnist-omp bench [OPTION]...\n"
    "Time epochs of the reference experiment's training step at several thread\n"
    "counts, training-set sizes and precisions, and compare with this machine's\n"
    "peak, measured by an FMA-throughput probe.\n"
    "\n"
    "  -t, --threads LIST      thread counts (default: 1, 2, 4, ... up to the\n"
    "                          number of cores, and that number)\n"
    "      --sizes LIST        training-set sizes, N or all (default 6000,60000)\n"
    "      --precision LIST    f32, f64 or both (default f32,f64)\n"
    "      --epochs N          timed epochs per measurement (default 10)\n"
    "      --warmup N          untimed epochs first (default 2)\n"
    "  -d, --data DIR          MNIST directory (as for training)\n"
    "      --json              print the results as JSON\n"
    "  -h, --help              show this help and exit\n"
    "\n"
    "GFLOP/s count dense-equivalent work, 2 N (2 n_in H + 3 H n_out) per epoch;\n"
    "the engine skips the zero pixels, so it may exceed what dense code could do.\n";

struct bench_options {
    int threads[MAX_LIST];
    size_t n_threads;
    size_t sizes[MAX_LIST];
    size_t n_sizes;
    enum precision precisions[2];
    size_t n_precisions;
    unsigned epochs, warmup;
    const char *data_dir;
    bool json;
};

struct measurement {
    enum precision precision;
    size_t size;
    int threads;
    double median, min, max;  /* seconds per epoch */
    double peak;              /* FMA peak of this precision and thread count, FLOP/s */
};

static void default_threads(struct bench_options *o)
{
    const int cores = engine_max_threads();
    o->n_threads = 0;
    for (int t = 1; t < cores && o->n_threads < MAX_LIST - 1; t *= 2)
        o->threads[o->n_threads++] = t;
    o->threads[o->n_threads++] = cores;
}

/* Parses a comma-separated list of positive numbers (or "all" where allowed,
 * stored as SUBSET_ALL). */
static int parse_list(const char *option, const char *text, bool allow_all, size_t *values,
                      size_t *count)
{
    char *copy = strdup(text), *save = NULL;
    *count = 0;
    if (!copy)
        return -1;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *end;
        errno = 0;
        const unsigned long long v = strtoull(item, &end, 10);
        const bool all = allow_all && strcmp(item, "all") == 0;
        if (*count == MAX_LIST || (!all && (end == item || *end || errno || v == 0 ||
                                            v > 1000000000ULL || item[0] == '-'))) {
            options_usage_error(stderr, "%s: '%s' is not a list of at most %d positive numbers%s",
                                option, text, MAX_LIST, allow_all ? " or 'all'" : "");
            free(copy);
            return -1;
        }
        values[(*count)++] = all ? SUBSET_ALL : (size_t)v;
    }
    free(copy);
    if (*count == 0) {
        options_usage_error(stderr, "%s: empty list", option);
        return -1;
    }
    return 0;
}

static int parse_epochs(const char *option, const char *text, unsigned min, unsigned *value)
{
    char *end;
    errno = 0;
    const unsigned long v = strtoul(text, &end, 10);
    if (end == text || *end || errno || text[0] == '-' || v < min || v > 100000) {
        options_usage_error(stderr, "%s: '%s' is not a whole number from %u to 100000", option,
                            text, min);
        return -1;
    }
    *value = (unsigned)v;
    return 0;
}

static int parse_precisions(const char *text, struct bench_options *o)
{
    o->n_precisions = 0;
    if (strcmp(text, "f32") == 0 || strcmp(text, "f32,f64") == 0)
        o->precisions[o->n_precisions++] = PRECISION_F32;
    if (strcmp(text, "f64") == 0 || strcmp(text, "f32,f64") == 0)
        o->precisions[o->n_precisions++] = PRECISION_F64;
    if (o->n_precisions == 0) {
        options_usage_error(stderr, "--precision: '%s' is not f32, f64 or f32,f64", text);
        return -1;
    }
    return 0;
}

static int parse_bench_options(struct bench_options *o, int argc, char **argv)
{
    static const struct option long_options[] = {
        {"threads", required_argument, NULL, 't'},
        {"sizes", required_argument, NULL, 's'},
        {"precision", required_argument, NULL, 'p'},
        {"epochs", required_argument, NULL, 'e'},
        {"warmup", required_argument, NULL, 'w'},
        {"data", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    size_t values[MAX_LIST], count;
    int code;

    memset(o, 0, sizeof *o);
    default_threads(o);
    o->sizes[0] = 6000;
    o->sizes[1] = 60000;
    o->n_sizes = 2;
    parse_precisions("f32,f64", o);
    o->epochs = 10;
    o->warmup = 2;
    optind = 1;
    opterr = 0;
    while ((code = getopt_long(argc, argv, ":t:d:h", long_options, NULL)) != -1) {
        switch (code) {
        case 't':
            if (parse_list("--threads", optarg, false, values, &count) < 0)
                return -1;
            for (size_t i = 0; i < count; i++)
                o->threads[i] = values[i] > 4096 ? 4096 : (int)values[i];
            o->n_threads = count;
            break;
        case 's':
            if (parse_list("--sizes", optarg, true, o->sizes, &o->n_sizes) < 0)
                return -1;
            break;
        case 'p':
            if (parse_precisions(optarg, o) < 0)
                return -1;
            break;
        case 'e':
            if (parse_epochs("--epochs", optarg, 1, &o->epochs) < 0)
                return -1;
            break;
        case 'w':
            if (parse_epochs("--warmup", optarg, 0, &o->warmup) < 0)
                return -1;
            break;
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
            options_usage_error(stderr, "bench: %s option '%s'",
                                code == ':' ? "missing argument to" : "unrecognized",
                                argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        options_usage_error(stderr, "bench: unexpected argument '%s'", argv[optind]);
        return -1;
    }
    return 0;
}

static int compare_doubles(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Times `epochs` epochs one by one after `warmup` untimed ones. */
static void time_epochs(struct engine *e, struct mlp *m, const struct bench_options *o,
                        double *seconds, struct measurement *result)
{
    for (unsigned i = 0; i < o->warmup; i++)
        engine_epoch(e, m, 0.8);
    for (unsigned i = 0; i < o->epochs; i++) {
        const double start = clock_seconds();
        engine_epoch(e, m, 0.8);
        seconds[i] = clock_seconds() - start;
    }
    qsort(seconds, o->epochs, sizeof *seconds, compare_doubles);
    result->min = seconds[0];
    result->max = seconds[o->epochs - 1];
    result->median = o->epochs % 2 ? seconds[o->epochs / 2]
                                   : (seconds[o->epochs / 2 - 1] + seconds[o->epochs / 2]) / 2;
}

static int measure_size(const struct bench_options *o, const struct dataset *all, size_t size,
                        enum precision precision, const double *peaks,
                        struct measurement *results, size_t *n_results, struct error *err)
{
    struct dataset subset;
    struct mlp m;
    struct engine *e = NULL;
    struct py_random rng;
    double *seconds = malloc(o->epochs * sizeof *seconds);
    int status = -1;

    if (!seconds)
        return error_set(err, "out of memory");
    /* The first `size` images of the seeded permutation, as the program draws them. */
    py_random_seed(&rng, 1337);
    if (dataset_draw_subset(&subset, all, size, &rng, err) < 0) {
        free(seconds);
        return -1;
    }
    if (mlp_create(&m, dataset_image_size(all), HIDDEN, CLASSES, precision, err) == 0) {
        mlp_init_xavier(&m, &rng);
        status = engine_create(&e, &m, &subset, NULL, err);
    }
    for (size_t t = 0; status == 0 && t < o->n_threads; t++) {
        struct measurement *r = &results[(*n_results)++];
        engine_set_threads(o->threads[t]);
        r->precision = precision;
        r->size = size;
        r->threads = o->threads[t];
        r->peak = peaks[t];
        time_epochs(e, &m, o, seconds, r);
        if (!o->json)
            fprintf(stderr, "  measured %s N=%zu threads=%d: %.3f ms/epoch\n",
                    precision_name(precision), size, r->threads, 1e3 * r->median);
    }
    engine_destroy(e);
    mlp_free(&m);
    dataset_free(&subset);
    free(seconds);
    return status;
}

static const char *cpu_model(char *buffer, size_t size)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    snprintf(buffer, size, "unknown CPU");
    while (f && fgets(buffer, (int)size, f)) {
        if (strncmp(buffer, "model name", 10) == 0) {
            char *colon = strchr(buffer, ':');
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

static void print_table(const struct measurement *results, size_t n, const char *cpu,
                        const char *isa)
{
    printf("mnist-omp bench: 784-%d-%d full-batch gradient descent on %s (%s kernels, %d "
           "cores)\n",
           HIDDEN, CLASSES, cpu, isa, engine_max_threads());
    printf("%-5s %6s %7s %10s %17s %11s %9s %7s %6s %6s\n", "prec", "N", "threads",
           "ms/epoch", "[min - max]", "samples/s", "GFLOP/s", "speedup", "eff.", "%peak");
    for (size_t i = 0; i < n; i++) {
        const struct measurement *r = &results[i];
        const double flops = epoch_flops(r->size, 784, HIDDEN, CLASSES) / r->median;
        const double s = speedup(results, n, r);
        printf("%-5s %6zu %7d %10.3f [%6.3f - %6.3f] %11.3g %9.1f %7.2f %5.0f%% %5.0f%%\n",
               r->precision == PRECISION_F64 ? "f64" : "f32", r->size, r->threads,
               1e3 * r->median, 1e3 * r->min, 1e3 * r->max, (double)r->size / r->median,
               1e-9 * flops, s, s > 0 ? 100 * s / r->threads : 0.0, 100 * flops / r->peak);
    }
}

static void print_json(const struct measurement *results, size_t n, const char *cpu,
                       const char *isa)
{
    printf("{\"tool\": \"mnist-omp\", \"version\": \"%s\", \"cpu\": \"%s\", \"kernels\": \"%s\", "
           "\"cores\": %d,\n \"flops_per_epoch\": \"2*N*(2*784*32 + 3*32*10)\",\n \"results\": [",
           PACKAGE_VERSION, cpu, isa, engine_max_threads());
    for (size_t i = 0; i < n; i++) {
        const struct measurement *r = &results[i];
        const double flops = epoch_flops(r->size, 784, HIDDEN, CLASSES) / r->median;
        printf("%s\n  {\"size\": %zu, \"precision\": \"%s\", \"threads\": %d, "
               "\"ms_per_epoch_median\": %.6g, \"ms_min\": %.6g, \"ms_max\": %.6g, "
               "\"samples_per_s\": %.6g, \"gflops\": %.6g, \"speedup\": %.4g, "
               "\"peak_gflops\": %.6g, \"fraction_of_peak\": %.4g}",
               i ? "," : "", r->size, r->precision == PRECISION_F64 ? "f64" : "f32", r->threads,
               1e3 * r->median, 1e3 * r->min, 1e3 * r->max, (double)r->size / r->median,
               1e-9 * flops, speedup(results, n, r), 1e-9 * r->peak, flops / r->peak);
    }
    printf("\n]}\n");
}

int bench_main(int argc, char **argv)
{
    struct bench_options o;
    struct error err = {{0}};
    struct dataset all = {0};
    struct measurement results[2 * MAX_LIST * MAX_LIST];
    size_t n_results = 0;
    char dir[4096], cpu[256];

    const int parsed = parse_bench_options(&o, argc, argv);
    if (parsed != 0)
        return parsed > 0 ? EXIT_SUCCESS : EXIT_USAGE;
    if (mnist_find_dir(o.data_dir, PKGDATADIR, dir, sizeof dir, &err) < 0 ||
        mnist_load(&all, dir, MNIST_TRAIN, &err) < 0) {
        fprintf(stderr, "mnist-omp: %s\n", err.msg);
        return EXIT_FAILURE;
    }
    for (size_t i = 0; i < o.n_sizes; i++) {
        if (o.sizes[i] == SUBSET_ALL)
            o.sizes[i] = all.count;
        if (o.sizes[i] > all.count) {
            options_usage_error(stderr, "--sizes: %zu is larger than the %zu images in the data",
                                o.sizes[i], all.count);
            dataset_free(&all);
            return EXIT_USAGE;
        }
    }

    int status = EXIT_SUCCESS;
    const char *isa = "portable";
    for (size_t p = 0; p < o.n_precisions && status == EXIT_SUCCESS; p++) {
        double peaks[MAX_LIST];
        for (size_t t = 0; t < o.n_threads; t++)
            peaks[t] = fma_peak_flops(o.precisions[p], o.threads[t], 0.2);
        for (size_t s = 0; s < o.n_sizes && status == EXIT_SUCCESS; s++)
            if (measure_size(&o, &all, o.sizes[s], o.precisions[p], peaks, results,
                             &n_results, &err) < 0)
                status = EXIT_FAILURE;
    }
    dataset_free(&all);
    if (status != EXIT_SUCCESS) {
        fprintf(stderr, "mnist-omp: %s\n", err.msg);
        return status;
    }
    isa = engine_best_isa();
    cpu_model(cpu, sizeof cpu);
    if (o.json)
        print_json(results, n_results, cpu, isa);
    else
        print_table(results, n_results, cpu, isa);
    return EXIT_SUCCESS;
}
