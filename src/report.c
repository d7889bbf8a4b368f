#include "report.h"

#include <stdlib.h>
#include <string.h>

enum { MISCLASSIFIED_SHOWN = 20 };

double epoch_flops(size_t n, size_t n_in, size_t n_hidden, size_t n_out)
{
    return 2.0 * (double)n * (2.0 * (double)n_in * (double)n_hidden +
                              3.0 * (double)n_hidden * (double)n_out);
}

/* The ending of a count's noun. */
static const char *plural(unsigned long long count)
{
    return count == 1 ? "" : "s";
}

void report_header(FILE *out, const struct run_description *run)
{
    const struct mlp *m = run->model;
    fprintf(out, "mnist-omp: %zu-%zu-%zu ReLU MLP, MSE loss, full-batch gradient descent\n",
            m->n_in, m->n_hidden, m->n_out);
    fprintf(out, "Data:      %s (train %zu of %zu, test %zu of %zu, seed %lld)\n",
            run->data_dir, run->train_count, run->train_total, run->test_count,
            run->test_total, (long long)run->seed);
    const unsigned epochs = run->end_epoch - run->first_epoch;
    fprintf(out, "Training:  %u epoch%s, lr %g, %s, engine %s, %d thread%s\n", epochs,
            plural(epochs), run->lr, precision_name(m->precision), engine_kind_name(run->engine),
            run->threads, plural((unsigned)run->threads));
    if (run->start_file)
        fprintf(out, "Start:     %s (%u epoch%s done)\n", run->start_file, run->first_epoch,
                plural(run->first_epoch));
}

void report_epoch(FILE *out, unsigned epoch, double loss)
{
    fprintf(out, "Epoch: %u  Loss: %.16g\n", epoch, loss);
}

void report_progress_line(char *line, size_t size, size_t columns, unsigned epoch,
                          unsigned end_epoch, double loss, double elapsed, double eta)
{
    enum { FORMS = 4 };
    const size_t fit = columns > 0 ? columns - 1 : 0;
    char form[FORMS][128];

    snprintf(form[0], sizeof form[0], "Epoch %u/%u  loss %.6g  elapsed %.1f s  ETA %.1f s",
             epoch, end_epoch, loss, elapsed, eta);
    snprintf(form[1], sizeof form[1], "Epoch %u/%u  loss %.6g  ETA %.1f s", epoch, end_epoch,
             loss, eta);
    snprintf(form[2], sizeof form[2], "%u/%u loss %.4g", epoch, end_epoch, loss);
    snprintf(form[3], sizeof form[3], "%u/%u", epoch, end_epoch);
    size_t chosen = 0;
    while (chosen + 1 < FORMS && strlen(form[chosen]) > fit)
        chosen++;
    snprintf(line, size, "%.*s", (int)(fit < sizeof form[0] ? fit : sizeof form[0]),
             form[chosen]);
}

void report_training_time(FILE *out, const struct run_description *run, double seconds)
{
    const struct mlp *m = run->model;
    const unsigned epochs = run->end_epoch - run->first_epoch;
    const double per_epoch = epochs ? seconds / epochs : 0.0;
    const double flops = epoch_flops(run->train_count, m->n_in, m->n_hidden, m->n_out);
    fprintf(out, "Training time: %.3f s (%.3f ms/epoch, %.1f GFLOP/s)\n", seconds,
            1e3 * per_epoch, per_epoch > 0 ? flops / per_epoch * 1e-9 : 0.0);
}

static void report_softmax(FILE *out, const char *which, const struct evaluation *ev,
                           const struct dataset *ds)
{
    double *p = malloc(ev->n_out * sizeof *p);
    if (!p)
        return;
    softmax(ev->logits, ev->n_out, p);
    fprintf(out, "Softmax of the first %s image (label %u, predicted %u):", which,
            ds->labels[0], ev->predicted[0]);
    for (size_t o = 0; o < ev->n_out; o++)
        fprintf(out, " %.4f", p[o]);
    fputc('\n', out);
    free(p);
}

void report_evaluation(FILE *out, const struct evaluation *test_eval,
                       const struct dataset *test, const struct evaluation *train_first,
                       const struct dataset *train)
{
    fprintf(out, "Test Set Accuracy = %.1f%% (%zu of %zu)\n",
            100.0 * evaluation_accuracy(test_eval), test_eval->correct, test_eval->count);
    report_softmax(out, "training", train_first, train);
    report_softmax(out, "test", test_eval, test);

    const size_t wrong = test_eval->count - test_eval->correct;
    const int listed = wrong < MISCLASSIFIED_SHOWN ? (int)wrong : MISCLASSIFIED_SHOWN;
    fprintf(out, "First %d misclassified test image%s (of %zu):\n", listed,
            plural((unsigned)listed), wrong);
    fprintf(out, "  index  predicted  true\n");
    int shown = 0;
    for (size_t n = 0; n < test_eval->count && shown < MISCLASSIFIED_SHOWN; n++) {
        if (test_eval->predicted[n] != test->labels[n]) {
            fprintf(out, "  %5zu  %9u  %4u\n", n, test_eval->predicted[n], test->labels[n]);
            shown++;
        }
    }
}
