#include "report.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum { MISCLASSIFIED_SHOWN = 20 };

double epoch_flops(size_t n, const struct mlp *m)
{
    double products = 0;
    for (size_t l = 0; l < m->n_layers; l++) {
        const struct mlp_layer layer = mlp_layer(m, l);
        products += (l == 0 ? 2.0 : 3.0) * (double)layer.n_in * (double)layer.n_out;
    }
    return 2.0 * (double)n * products;
}

/* The ending of a count's noun. */
static const char *plural(unsigned long long count)
{
    return count == 1 ? "" : "s";
}

static const char *activation_title(enum activation activation)
{
    return activation == ACTIVATION_RELU ? "ReLU" : activation_name(activation);
}

/* "full-batch gradient descent" for the tutorial's optimiser, else the
 * batches, the optimiser and the settings it uses. */
static void describe_training(char *text, size_t size, const struct training *t,
                              size_t train_count)
{
    const struct optimizer *o = &t->optimizer;
    const bool full = t->batch == 0 || t->batch >= train_count;
    char batches[64];
    int used;

    if (full && o->kind == OPTIMIZER_SGD && o->momentum == 0 && o->weight_decay == 0) {
        snprintf(text, size, "full-batch gradient descent");
        return;
    }
    if (full)
        snprintf(batches, sizeof batches, "full batch");
    else
        snprintf(batches, sizeof batches, "batches of %zu", t->batch);
    if (o->kind == OPTIMIZER_SGD)
        used = snprintf(text, size, "%s, SGD (momentum %g%s", batches, o->momentum,
                        o->nesterov ? ", Nesterov" : "");
    else
        used = snprintf(text, size, "%s, %s (beta1 %g, beta2 %g, eps %g", batches,
                        o->kind == OPTIMIZER_ADAM ? "Adam" : "AdamW", o->beta1, o->beta2, o->eps);
    if (used >= 0 && (size_t)used < size)
        snprintf(text + used, size - (size_t)used, ", weight decay %g)", o->weight_decay);
}

/* The learning rate and, unless constant, its schedule. */
static void describe_rate(char *text, size_t size, const struct schedule *s)
{
    switch (s->kind) {
    case SCHEDULE_COSINE:
        snprintf(text, size, "lr %g cosine", s->lr);
        break;
    case SCHEDULE_STEP:
        snprintf(text, size, "lr %g times %g every %u epoch%s", s->lr, s->step_gamma,
                 s->step_epochs, plural(s->step_epochs));
        break;
    case SCHEDULE_CONSTANT:
        snprintf(text, size, "lr %g", s->lr);
        break;
    }
}

void report_header(FILE *out, const struct run_description *run)
{
    const struct mlp *m = run->model;
    char widths[1024], training[256], rate[128];

    mlp_format_widths(m, widths, sizeof widths);
    describe_training(training, sizeof training, run->training, run->train_count);
    describe_rate(rate, sizeof rate, &run->training->schedule);
    fprintf(out, "mnist-omp: %s %s MLP, %s loss, %s\n", widths, activation_title(m->activation),
            m->loss == LOSS_XENT ? "cross-entropy" : "MSE", training);
    fprintf(out, "Data:      %s (train %zu of %zu, test %zu of %zu, seed %lld)\n",
            run->data_dir, run->train_count, run->train_total, run->test_count,
            run->test_total, (long long)run->seed);
    const unsigned epochs = run->end_epoch - run->first_epoch;
    fprintf(out, "Training:  %u epoch%s, %s, %s, engine %s, ", epochs, plural(epochs), rate,
            precision_name(m->precision), engine_kind_name(run->engine));
    if (run->ranks > 1)
        fprintf(out, "%d ranks x ", run->ranks);
    fprintf(out, "%d thread%s\n", run->threads, plural((unsigned)run->threads));
    if (run->start_file)
        fprintf(out, "Start:     %s (%u epoch%s done)\n", run->start_file, run->first_epoch,
                plural(run->first_epoch));
}

void report_epoch(FILE *out, unsigned epoch, double loss, double accuracy)
{
    fprintf(out, "Epoch: %u  Loss: %.16g", epoch, loss);
    if (accuracy >= 0)
        fprintf(out, "  Test accuracy: %.2f%%", accuracy);
    fputc('\n', out);
}

void report_progress_line(char *line, size_t size, size_t columns, const struct progress *p)
{
    enum { FORMS = 5 };
    const size_t fit = columns > 0 ? columns - 1 : 0;
    char form[FORMS][160], accuracy[32] = "";

    if (p->accuracy >= 0)
        snprintf(accuracy, sizeof accuracy, "  test %.2f%%", p->accuracy);
    snprintf(form[0], sizeof form[0],
             "Epoch %u/%u  loss %.6g%s  %.1f ms/epoch  elapsed %.1f s  ETA %.1f s", p->epoch,
             p->end_epoch, p->loss, accuracy, 1e3 * p->per_epoch, p->elapsed, p->eta);
    snprintf(form[1], sizeof form[1], "Epoch %u/%u  loss %.6g%s  %.1f ms/epoch  ETA %.1f s",
             p->epoch, p->end_epoch, p->loss, accuracy, 1e3 * p->per_epoch, p->eta);
    snprintf(form[2], sizeof form[2], "Epoch %u/%u  loss %.6g  ETA %.1f s", p->epoch,
             p->end_epoch, p->loss, p->eta);
    snprintf(form[3], sizeof form[3], "%u/%u loss %.4g", p->epoch, p->end_epoch, p->loss);
    snprintf(form[4], sizeof form[4], "%u/%u", p->epoch, p->end_epoch);
    size_t chosen = 0;
    while (chosen + 1 < FORMS && strlen(form[chosen]) > fit)
        chosen++;
    snprintf(line, size, "%.*s", (int)(fit < sizeof form[0] ? fit : sizeof form[0]),
             form[chosen]);
}

void report_training_time(FILE *out, const struct run_description *run, double seconds)
{
    const unsigned epochs = run->end_epoch - run->first_epoch;
    const double per_epoch = epochs ? seconds / epochs : 0.0;
    const double flops = epoch_flops(run->train_count, run->model);
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
