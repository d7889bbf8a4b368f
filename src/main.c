/* mnist-omp: load -> draw subsets and initialise -> train (evaluating as asked) -> evaluate
 * -> report. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "atomic_file.h"
#include "bench.h"
#include "clock.h"
#include "cluster.h"
#include "dataset.h"
#include "evaluate.h"
#include "kernels.h"
#include "mnist.h"
#include "model.h"
#include "modelfile.h"
#include "options.h"
#include "predict.h"
#include "report.h"
#include "rng.h"
#include "shard.h"
#include "train.h"
#include "visuals.h"
#include "weights.h"

/* Set by SIGINT or SIGTERM: training stops after the current epoch. */
static volatile sig_atomic_t stop_signal;

static void request_stop(int signal_number)
{
    stop_signal = signal_number;
}

/* Everything a run holds, so that one function can release it on any path.
 * Epochs are numbered as the files count them: a --load file's epochs come
 * first (`offset` of them, which the training state does not count, since
 * --load starts a new run), then the epochs of the training state. */
struct run {
    struct options options;
    struct cluster cluster;           /* rank 0 alone prints and writes files */
    bool failed_elsewhere;            /* another rank failed, and said why */
    bool failure_agreed;              /* set_up's ranks agreed that one failed */
    char data_dir[4096];
    struct dataset train, test;       /* across ranks, train is this rank's share */
    size_t train_total, test_total;   /* images in the files the subsets come from */
    size_t train_count;               /* the training subset's images, across ranks too */
    uint32_t train_crc, test_crc;     /* the subsets' fingerprints (dataset_crc32) */
    struct mlp model;
    unsigned first_epoch, end_epoch;  /* epochs this run trains */
    unsigned offset;                  /* epochs before the training state's epoch 0 */
    unsigned epochs_done;             /* counted from the start, as the files count them */
    struct model_metadata start;      /* what the --load or --resume file recorded */
    struct training settings;         /* how this run trains */
    struct training_state state;      /* where it starts, until the trainer takes it */
    bool checkpoint_current;          /* the checkpoint file holds epochs_done epochs */
    struct trainer trainer;
    bool training;                    /* the trainer was created and holds the state */
    struct evaluation test_eval, train_first;
    unsigned evaluated;               /* test_eval is of the model after this many epochs */
    FILE *log;
    double *losses, *accuracies;      /* of each epoch this run trains, for --plots */
    bool progress;           /* an updating progress line on a terminal */
    double progress_shown;   /* when it was last redrawn */
    double accuracy_shown;   /* the latest test accuracy in percent; < 0: none */
};

static void run_free(struct run *r)
{
    dataset_free(&r->train);
    dataset_free(&r->test);
    mlp_free(&r->model);
    if (r->training)
        trainer_destroy(&r->trainer);
    else
        optimizer_state_free(&r->state.optimizer);
    evaluation_free(&r->test_eval);
    evaluation_free(&r->train_first);
    free(r->losses);
    free(r->accuracies);
    if (r->log)
        fclose(r->log);
}

/* The training state now: the trainer's once it runs. */
static const struct training_state *current_state(const struct run *r)
{
    return r->training ? &r->trainer.state : &r->state;
}

/* Rank c->rank's share (shard_range) of the first `size` images of a
 * shuffle of the split's `total`, drawn as dataset_draw_subset draws, read
 * from the split's files, keeping only the share.  Returns an exit status. */
static int load_share(struct dataset *share, const char *dir, enum mnist_split split,
                      size_t total, size_t size, struct py_random *rng,
                      const struct cluster *c, struct error *err)
{
    size_t *order = dataset_shuffled_order(total, rng, err);
    size_t *slot = malloc((total ? total : 1) * sizeof *slot);
    if (!order || !slot) {
        free(order);
        free(slot);
        if (order)
            error_set(err, "out of memory for the places of %zu images", total);
        return EXIT_FAILURE;
    }
    for (size_t i = 0; i < total; i++)
        slot[i] = DATASET_DROPPED;
    size_t first, end;
    shard_range(size, c->rank, c->ranks, &first, &end);
    for (size_t i = first; i < end; i++)
        slot[order[i]] = i - first;
    struct dataset_keep keep = {.slot = slot, .kept = end - first, .records = total};
    const int status = mnist_load_kept(share, dir, split, &keep, err);
    free(order);
    free(slot);
    return status < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Loads one split and keeps the subset of it that the options ask for, so
 * that only one whole split is in memory at a time; across ranks (share_of
 * not NULL), only this rank's share of the subset, the split read twice
 * (checked and counted, then the share kept) and never held whole.  The
 * size comes from the option, or from the checkpoint `size_file` when not
 * NULL, which is then blamed for a size the data cannot provide.  Returns
 * an exit status. */
static int load_subset(struct dataset *subset, size_t *total, const char *dir,
                       enum mnist_split split, const char *option, const char *size_file,
                       size_t *size, struct py_random *rng, const struct cluster *share_of,
                       struct error *err)
{
    struct dataset all;
    struct dataset_keep counted = {.slot = NULL};
    if (mnist_load_kept(&all, dir, split, share_of ? &counted : NULL, err) < 0)
        return EXIT_FAILURE;
    *total = share_of ? counted.records : all.count;
    if (size_file && *size > *total) {
        error_set(err, "%s: the checkpoint was made with %s %zu, more than the %zu images in %s",
                  size_file, option, *size, *total, dir);
        dataset_free(&all);
        return EXIT_FAILURE;
    }
    if (options_resolve_subset(option, size, *total, &(const struct usage){stderr, NULL}) < 0) {
        dataset_free(&all);
        return EXIT_USAGE;
    }
    if (share_of) {
        dataset_free(&all);
        const size_t units = engine_unit_count(*size);
        if (units < (size_t)share_of->ranks) {
            error_set(err, "a training set of %zu images is cut into %zu unit%s, fewer than "
                           "the %d ranks: use %zu ranks at most",
                      *size, units, units == 1 ? "" : "s", share_of->ranks, units);
            return EXIT_FAILURE;
        }
        return load_share(subset, dir, split, *total, *size, rng, share_of, err);
    }
    const int status = dataset_draw_subset(subset, &all, *size, rng, err);
    dataset_free(&all);
    return status < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* A setting stored in a file wins over the default; given on the command line
 * too, it must agree.  Returns -1 (after a usage message) when it does not. */
static int adopt_setting(const char *file, const char *option, bool given, bool differs,
                         const char *stored)
{
    if (given && differs) {
        options_usage_error(&(const struct usage){stderr, NULL}, "%s: %s was made with %s %s",
                            option, file, option, stored);
        return -1;
    }
    return 0;
}

/* The shortest decimal text that reads back as v, as a user would type it. */
static void format_real(char *text, size_t size, double v)
{
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(text, size, "%.*g", digits, v);
        if (strtod(text, NULL) == v)
            return;
    }
}

/* adopt_setting for a real-valued setting, which the file's value replaces. */
static int adopt_real(const char *file, const char *option, bool given, double *value,
                      double stored)
{
    char text[32];
    format_real(text, sizeof text, stored);
    if (adopt_setting(file, option, given, *value != stored, text) < 0)
        return -1;
    *value = stored;
    return 0;
}

/* The widths of the hidden layers as --hidden takes them: "512,512". */
static void format_hidden(char *text, size_t size, const struct mlp *m)
{
    size_t used = 0;
    text[0] = '\0';
    for (size_t l = 1; l < m->n_layers && used < size; l++) {
        const int n = snprintf(text + used, size - used, "%s%zu", l > 1 ? "," : "", m->widths[l]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

static bool same_hidden(const struct options *o, const struct mlp *m)
{
    if (o->n_hidden_layers + 1 != m->n_layers)
        return false;
    for (size_t l = 0; l < o->n_hidden_layers; l++)
        if (o->hidden[l] != m->widths[l + 1])
            return false;
    return true;
}

/* The loaded network decides its shape; options given must agree with it. */
static int adopt_shape(struct options *o, const char *path, const struct mlp *m)
{
    char hidden[1024];
    format_hidden(hidden, sizeof hidden, m);
    if (adopt_setting(path, "--hidden", o->given_hidden, !same_hidden(o, m), hidden) < 0 ||
        adopt_setting(path, "--activation", o->given_activation, o->activation != m->activation,
                      activation_name(m->activation)) < 0 ||
        adopt_setting(path, "--loss", o->given_loss, o->loss != m->loss, loss_name(m->loss)) <
            0 ||
        adopt_setting(path, "--precision", o->given_precision, o->precision != m->precision,
                      precision_short_name(m->precision)) < 0)
        return -1;
    o->n_hidden_layers = m->n_layers - 1;
    for (size_t l = 0; l < o->n_hidden_layers; l++)
        o->hidden[l] = m->widths[l + 1];
    o->activation = m->activation;
    o->loss = m->loss;
    o->precision = m->precision;
    return 0;
}

/* A resumed run repeats how the checkpoint trained: each setting given must
 * agree with the file's, and the others are the file's.  Settings that the
 * file's optimiser or schedule does not use are left to
 * options_check_training, which refuses them. */
static int adopt_training(struct options *o, const char *path, const struct training *t,
                          uint64_t train_size)
{
    const struct optimizer *f = &t->optimizer;
    struct optimizer *opt = &o->optimizer;
    char batch[32];
    const size_t stored_batch = t->batch;

    if (adopt_setting(path, "--optimizer", o->given_optimizer, opt->kind != f->kind,
                      optimizer_name(f->kind)) < 0 ||
        adopt_setting(path, "--schedule", o->given_schedule, o->schedule != t->schedule.kind,
                      schedule_name(t->schedule.kind)) < 0)
        return -1;
    opt->kind = f->kind;
    o->schedule = t->schedule.kind;
    if (o->batch >= train_size)  /* one batch of the whole set, as the file says it */
        o->batch = 0;
    if (stored_batch == 0)
        snprintf(batch, sizeof batch, "all");
    else
        snprintf(batch, sizeof batch, "%zu", stored_batch);
    if (adopt_setting(path, "--batch", o->given_batch, o->batch != stored_batch, batch) < 0 ||
        adopt_real(path, "--lr", o->given_lr, &o->lr, t->schedule.lr) < 0 ||
        adopt_real(path, "--weight-decay", o->given_weight_decay, &opt->weight_decay,
                   f->weight_decay) < 0)
        return -1;
    o->batch = stored_batch;
    if (f->kind == OPTIMIZER_SGD) {
        if (adopt_real(path, "--momentum", o->given_momentum, &opt->momentum, f->momentum) < 0)
            return -1;
        if (o->given_nesterov && !f->nesterov) {
            options_usage_error(&(const struct usage){stderr, NULL},
                                "--nesterov: %s was made without --nesterov", path);
            return -1;
        }
        opt->nesterov = f->nesterov;
    } else if (adopt_real(path, "--beta1", o->given_beta1, &opt->beta1, f->beta1) < 0 ||
               adopt_real(path, "--beta2", o->given_beta2, &opt->beta2, f->beta2) < 0 ||
               adopt_real(path, "--eps", o->given_eps, &opt->eps, f->eps) < 0)
        return -1;
    if (t->schedule.kind == SCHEDULE_STEP) {
        char epochs[32];
        snprintf(epochs, sizeof epochs, "%u", t->schedule.step_epochs);
        if (adopt_setting(path, "--step-epochs", o->given_step_epochs,
                          o->given_step_epochs && o->step_epochs != t->schedule.step_epochs,
                          epochs) < 0 ||
            adopt_real(path, "--step-gamma", o->given_step_gamma, &o->step_gamma,
                       t->schedule.step_gamma) < 0)
            return -1;
        o->step_epochs = t->schedule.step_epochs;
        /* what the checkpoint says counts as given for the check below */
        o->given_step_epochs = o->given_step_gamma = true;
    }
    return options_check_training(o, &(const struct usage){stderr, NULL});
}

/* Starts from --load or --resume: the network comes from the file, and a
 * checkpoint also fixes the settings that a resumed run must repeat. */
static int load_start(struct run *r, struct error *err)
{
    struct options *o = &r->options;
    const char *path = o->resume_path ? o->resume_path : o->load_path;
    struct model_metadata meta;

    const struct weights_hints hints = {o->given_activation, o->given_loss, o->activation,
                                        o->loss};
    if ((o->resume_path
             ? model_load(path, MODEL_FILE_CHECKPOINT, &r->model, &meta, &r->state, err)
             : weights_load(path, &hints, &r->model, &meta, err)) < 0)
        return EXIT_FAILURE;
    if (adopt_shape(o, path, &r->model) < 0)
        return EXIT_USAGE;
    r->start = meta;
    r->first_epoch = (unsigned)meta.epochs_done;
    if (!o->resume_path) {
        r->offset = r->first_epoch;
        r->end_epoch = r->first_epoch + o->epochs;
        return EXIT_SUCCESS;
    }
    if (r->state.epoch > meta.epochs_done) {
        error_set(err, "%s: the checkpoint's training state has %u epochs, more than the %llu "
                  "epochs it records", path, r->state.epoch,
                  (unsigned long long)meta.epochs_done);
        return EXIT_FAILURE;
    }
    r->offset = r->first_epoch - r->state.epoch;
    char seed[32], train_size[32], test_size[32];
    snprintf(seed, sizeof seed, "%lld", (long long)meta.seed);
    snprintf(train_size, sizeof train_size, "%llu", (unsigned long long)meta.train_size);
    snprintf(test_size, sizeof test_size, "%llu", (unsigned long long)meta.test_size);
    if (adopt_setting(path, "--seed", o->given_seed, o->seed != meta.seed, seed) < 0 ||
        adopt_setting(path, "--train-size", o->given_train_size,
                      o->train_size != meta.train_size, train_size) < 0 ||
        adopt_setting(path, "--test-size", o->given_test_size, o->test_size != meta.test_size,
                      test_size) < 0 ||
        adopt_training(o, path, &meta.training, meta.train_size) < 0)
        return EXIT_USAGE;
    o->seed = meta.seed;
    o->train_size = (size_t)meta.train_size;
    o->test_size = (size_t)meta.test_size;
    r->end_epoch = o->epochs > r->first_epoch ? o->epochs : r->first_epoch;
    return EXIT_SUCCESS;
}

/* A resumed run must train on the data the checkpoint was trained on: the
 * same subsets of the same files (a version-1 checkpoint does not say). */
static int check_same_data(const struct run *r, struct error *err)
{
    const char *path = r->options.resume_path;
    const uint32_t train_crc = r->train_crc, test_crc = r->test_crc;

    if (!r->start.has_fingerprint)
        return EXIT_SUCCESS;
    if (train_crc != r->start.train_crc || test_crc != r->start.test_crc) {
        const bool train = train_crc != r->start.train_crc;
        error_set(err, "%s: the checkpoint was made on other %s images than the %zu drawn now "
                  "from %s (CRC-32 %08" PRIx32 ", the checkpoint's %08" PRIx32 ")", path,
                  train ? "training" : "test", train ? r->train_count : r->test.count,
                  r->data_dir, train ? train_crc : test_crc,
                  train ? r->start.train_crc : r->start.test_crc);
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}

/* What a file saved now records: the epochs done and how they were made. */
static struct model_metadata metadata(const struct run *r)
{
    struct model_metadata meta = {
        .epochs_done = r->epochs_done, .seed = r->options.seed,
        .train_size = r->train_count, .test_size = r->test.count,
        .training = r->settings, .has_fingerprint = true,
        .train_crc = r->train_crc, .test_crc = r->test_crc,
    };
    return meta;
}

/* Saves the checkpoint unless it already holds this state (a last epoch
 * that --checkpoint-every saved, then the end of training). */
static int save_checkpoint(struct run *r, struct error *err)
{
    if (r->checkpoint_current)
        return 0;
    const struct model_metadata meta = metadata(r);
    if (model_save(r->options.checkpoint_path, MODEL_FILE_CHECKPOINT, &r->model, &meta,
                   current_state(r), err) < 0)
        return -1;
    r->checkpoint_current = true;
    return 0;
}

/* What the header reports: the threads asked for (0: OpenMP's default), as
 * many as OpenMP will actually run. */
static int granted_threads(int requested)
{
    const int wanted = requested > 0 ? requested : engine_max_threads();
    const int limit = engine_thread_limit();
    return wanted < limit ? wanted : limit;
}

static void clear_progress(struct run *r)
{
    if (r->progress)
        fputs("\r\033[K", stdout);
}

/* The terminal's width: the window's, else $COLUMNS, else 80. */
static size_t terminal_columns(void)
{
    struct winsize size;
    const char *columns = getenv("COLUMNS");
    char *end;

    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0)
        return size.ws_col;
    if (columns && *columns >= '1' && *columns <= '9') {
        const unsigned long value = strtoul(columns, &end, 10);
        if (*end == '\0' && value <= 10000)
            return value;
    }
    return 80;
}

/* The single updating line of a long run on a terminal, redrawn at most ten
 * times a second, fitted to the terminal's width at each redraw so that a
 * narrow or resized window shows no wrapped, stale lines. */
static void show_progress(struct run *r, unsigned epoch, double loss, double seconds)
{
    const double now = clock_seconds();
    const unsigned done = epoch + 1 - r->first_epoch, total = r->end_epoch - r->first_epoch;
    char line[256];

    if (!r->progress || (now - r->progress_shown < 0.1 && epoch + 1 < r->end_epoch))
        return;
    r->progress_shown = now;
    const struct progress p = {
        .epoch = epoch + 1, .end_epoch = r->end_epoch, .loss = loss,
        .accuracy = r->accuracy_shown, .elapsed = seconds, .per_epoch = seconds / done,
        .eta = seconds / done * (total - done),
    };
    report_progress_line(line, sizeof line, terminal_columns(), &p);
    printf("\r\033[K%s", line);
    fflush(stdout);
}

/* The evaluator runs after the last epoch and, with --eval-every K, after
 * every epoch e with (e + 1) divisible by K. */
static bool evaluated_after(const struct run *r, unsigned epoch)
{
    const unsigned every = r->options.eval_every;
    return epoch + 1 == r->end_epoch || (every && (epoch + 1) % every == 0);
}

/* The test accuracy (in percent) of the model as it is after `epochs`
 * epochs, into r->test_eval. */
static int evaluate_test(struct run *r, unsigned epochs, struct error *err)
{
    evaluation_free(&r->test_eval);
    if (evaluate(&r->test_eval, &r->model, &r->test, err) < 0)
        return -1;
    r->evaluated = epochs;
    return 0;
}

/* What an epoch's end shows and writes (rank 0's part).  -1: an output
 * failed, explained in err. */
static int epoch_outputs(struct run *r, unsigned epoch, double loss, double seconds,
                         struct error *err)
{
    const struct options *o = &r->options;
    double accuracy = -1;

    if (evaluated_after(r, epoch)) {
        if (evaluate_test(r, r->epochs_done, err) < 0)
            return -1;
        accuracy = r->accuracy_shown = 100.0 * evaluation_accuracy(&r->test_eval);
    }
    if (r->losses) {
        r->losses[epoch - r->first_epoch] = loss;
        r->accuracies[epoch - r->first_epoch] = accuracy >= 0 ? accuracy : NAN;
    }
    /* Only --eval-every puts the accuracy on the epoch lines: without it the
     * output is the reference experiment's, and the results below say it. */
    const bool shown = o->eval_every && accuracy >= 0;
    if (!o->quiet && (epoch % o->print_every == 0 || epoch + 1 == r->end_epoch || shown)) {
        clear_progress(r);
        report_epoch(stdout, epoch, loss, shown ? accuracy : -1);
        fflush(stdout); /* a pipe or a log shows progress as it happens */
    }
    show_progress(r, epoch, loss, seconds);
    /* A write error stays in the stream: close_log reports it at the end,
     * after the other outputs are written, instead of stopping training. */
    if (r->log) {
        fprintf(r->log, "%u,%.17g,%.6f,", epoch, loss, seconds);
        if (accuracy >= 0)
            fprintf(r->log, "%.2f", accuracy);
        fputc('\n', r->log);
    }
    if (o->checkpoint_every && (epoch + 1) % o->checkpoint_every == 0 &&
        save_checkpoint(r, err) < 0)
        return -1;
    return 0;
}

/* A failure, in what the ranks agree on: above every signal number. */
enum { RANK_FAILED = 1024 };

static int on_epoch(void *context, const struct trainer *t, unsigned state_epoch, double loss,
                    double seconds, struct error *err)
{
    struct run *r = context;
    const unsigned epoch = state_epoch + r->offset;
    (void)t;  /* the same as r->trainer, whose state current_state gives */

    r->epochs_done = epoch + 1;
    r->checkpoint_current = false;
    const bool root = cluster_is_root(&r->cluster);
    const int status = root ? epoch_outputs(r, epoch, loss, seconds, err) : 0;
    /* Every rank stops after the same epoch: the first that any rank saw
     * a signal or a failure in. */
    const int agreed = cluster_max(&r->cluster, status < 0 ? RANK_FAILED : stop_signal);
    if (agreed == RANK_FAILED) {
        r->failed_elsewhere = status == 0;
        return -1;
    }
    stop_signal = agreed;
    return stop_signal ? 1 : 0;
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

/* SIGINT or SIGTERM stopped training: keep the state when a checkpoint is
 * configured and say how to go on. */
static int stop_interrupted(struct run *r, struct error *err)
{
    const int signal_number = stop_signal;
    clear_progress(r);
    fprintf(stderr, "mnist-omp: %s after epoch %u.\n",
            signal_number == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)",
            r->epochs_done - 1);
    if (r->options.checkpoint_path) {
        if (save_checkpoint(r, err) < 0) {
            fprintf(stderr, "mnist-omp: %s\n", err->msg);
            return EXIT_FAILURE;
        }
        fprintf(stderr, "mnist-omp: the training state is in %s; to go on, run the same "
                        "command with --resume %s\n",
                r->options.checkpoint_path, r->options.checkpoint_path);
    }
    return 128 + signal_number;
}

/* A stop signal that came after the last epoch, while the files were
 * written: they are complete, and the status still says what happened. */
static int stopped_after_training(void)
{
    const int signal_number = stop_signal;
    fprintf(stderr, "mnist-omp: %s after training; the files and results are complete.\n",
            signal_number == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)");
    return 128 + signal_number;
}

static void catch_stop_signals(void)
{
    static const int stop_signals[] = {SIGINT, SIGTERM};
    struct sigaction action, current;
    memset(&action, 0, sizeof action);
    action.sa_handler = request_stop;
    /* A second signal, while the first waits for the epoch to end or the
     * files are written, stops the program. */
    action.sa_flags = SA_RESETHAND;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < sizeof stop_signals / sizeof *stop_signals; i++) {
        /* One ignored at start (a script's background job) stays ignored. */
        if (sigaction(stop_signals[i], NULL, &current) == 0 && current.sa_handler == SIG_IGN)
            continue;
        sigaction(stop_signals[i], &action, NULL);
    }
}

/* Every output, checked before the data is loaded, so that a bad path fails
 * at once rather than after training. */
static int check_outputs(const struct options *o, struct error *err)
{
    const struct {
        const char *option, *path;
    } files[] = {{"--save", o->save_path}, {"--checkpoint", o->checkpoint_path},
                 {"--log", o->log_path}};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        if (files[i].path && output_file_check(files[i].path, err) < 0)
            return -1;
    return o->plots_dir ? visuals_check(o->plots_dir, err) : 0;
}

/* The outputs that failed at the end of a run, kept so that the others are
 * still written and the results printed before they are reported. */
enum { MAX_OUTPUTS = 4 };  /* --log, --checkpoint, --save, --plots */
struct failed_outputs {
    struct error errors[MAX_OUTPUTS];
    size_t count;
};

static void report_failures(const struct failed_outputs *f)
{
    for (size_t i = 0; i < f->count; i++)
        fprintf(stderr, "mnist-omp: %s\n", f->errors[i].msg);
}

/* The arenas of a network's size that training keeps on a training set of
 * n images: the parameters, the optimiser's moments and, in the OpenMP
 * engine, the subtrees of the units' tree that the threads leave for the
 * largest batch (under mpirun, this rank's and every rank's, gathered).
 * n = 0: not known yet (before the data is loaded), the subtrees then
 * uncounted. */
static size_t training_arenas(const struct run *r, size_t n)
{
    const struct options *o = &r->options;
    const size_t batch = o->batch == 0 || o->batch > n ? n : o->batch;
    const size_t partials = o->engine == ENGINE_OMP && n
                                ? shard_partial_count(batch, r->cluster.rank, r->cluster.ranks,
                                                      granted_threads(o->threads))
                                : 0;
    return 1 + optimizer_moment_count(&o->optimizer) + partials;
}

/* Whether the network the options describe, with images of `inputs`
 * pixels, fits this machine's memory for a training set of n (0: not known
 * yet), checked before anything of its size is allocated (and again once
 * n is known). */
static int check_network_size(const struct run *r, size_t inputs, size_t n, struct error *err)
{
    size_t widths[MLP_MAX_LAYERS + 1], count;
    const size_t n_layers = options_widths(&r->options, inputs, widths);
    return mlp_check_shape(n_layers, widths, r->options.precision, training_arenas(r, n), &count,
                           err);
}

/* A checkpoint of format version 1 or 2 (full-batch SGD, which draws
 * nothing after the weights) did not keep the random stream: it is where
 * the run's weights left it, drawn again into a scratch network. */
static int rederive_stream(struct run *r, struct py_random *rng, struct error *err)
{
    struct mlp scratch;
    if (mlp_create(&scratch, r->model.n_layers, r->model.widths, r->model.activation,
                   r->model.loss, r->model.precision, err) < 0)
        return EXIT_FAILURE;
    mlp_init_uniform(&scratch, rng);
    mlp_free(&scratch);
    r->state.rng = *rng;
    return EXIT_SUCCESS;
}

/* Loads the data and the starting network, and sets up where training
 * starts.  Returns an exit status. */
static int prepare(struct run *r, struct error *err)
{
    struct options *o = &r->options;
    struct py_random rng;
    int status = EXIT_SUCCESS;

    r->end_epoch = o->epochs;
    if (o->load_path || o->resume_path)
        status = load_start(r, err);
    if (status == EXIT_SUCCESS &&
        mnist_find_dir(o->data_dir, PKGDATADIR, r->data_dir, sizeof r->data_dir, err) < 0)
        status = EXIT_FAILURE;
    /* The draws happen in SPEC's order: training subset, test subset, then
     * the weights layer by layer; the batches' shuffles continue the stream. */
    py_random_seed(&rng, o->seed);
    const bool across_ranks = r->cluster.ranks > 1;
    if (status == EXIT_SUCCESS)
        status = load_subset(&r->train, &r->train_total, r->data_dir, MNIST_TRAIN,
                             "--train-size", o->given_train_size ? NULL : o->resume_path,
                             &o->train_size, &rng, across_ranks ? &r->cluster : NULL, err);
    if (status == EXIT_SUCCESS)
        status = load_subset(&r->test, &r->test_total, r->data_dir, MNIST_TEST, "--test-size",
                             o->given_test_size ? NULL : o->resume_path, &o->test_size, &rng,
                             NULL, err);
    if (status == EXIT_SUCCESS) {
        r->train_count = o->train_size;
        if (!across_ranks)  /* across ranks, joined from the shares' (set_up) */
            r->train_crc = dataset_crc32(&r->train);
        r->test_crc = dataset_crc32(&r->test);
    }
    if (status == EXIT_SUCCESS && o->resume_path && !across_ranks)
        status = check_same_data(r, err);
    if (status == EXIT_SUCCESS) {
        const char *start = o->resume_path ? o->resume_path : o->load_path;
        struct error cause;
        if (check_network_size(r, start ? mlp_inputs(&r->model) : dataset_image_size(&r->train),
                               r->train_count, &cause) < 0) {
            if (start) {
                error_set(err, "%s: %s", start, cause.msg);
                status = EXIT_FAILURE;
            } else {
                options_usage_error(&(const struct usage){stderr, NULL}, "--hidden: %s",
                                    cause.msg);
                status = EXIT_USAGE;
            }
        }
    }
    if (status == EXIT_SUCCESS && r->model.params &&
        mlp_check_inputs(&r->model, dataset_image_size(&r->train), err) < 0)
        status = EXIT_FAILURE;
    if (status != EXIT_SUCCESS)
        return status;
    if (!r->model.params) {
        size_t widths[MLP_MAX_LAYERS + 1];
        const size_t n_layers = options_widths(o, dataset_image_size(&r->train), widths);
        if (mlp_create(&r->model, n_layers, widths, o->activation, o->loss, o->precision, err) <
            0)
            return EXIT_FAILURE;
        mlp_init_uniform(&r->model, &rng);
    }
    /* A batch of the whole training set or more is the full batch, and
     * files record it as such. */
    if (o->batch >= r->train_count)
        o->batch = 0;
    r->settings = options_training(o, r->end_epoch - r->offset);
    if (o->resume_path)
        return r->start.has_rng_state ? EXIT_SUCCESS : rederive_stream(r, &rng, err);
    /* A new run (--load too): epoch 0, the stream as the draws left it, a
     * fresh optimiser. */
    r->state.epoch = 0;
    r->state.rng = rng;
    return optimizer_state_create(&r->state.optimizer, &r->settings.optimizer,
                                  mlp_param_count(&r->model), r->model.precision, err) < 0
               ? EXIT_FAILURE
               : EXIT_SUCCESS;
}

/* The curves of --plots, one entry per epoch this run trains. */
static int allocate_curves(struct run *r, struct error *err)
{
    const size_t epochs = r->end_epoch - r->first_epoch + 1;
    r->losses = calloc(epochs, sizeof *r->losses);
    r->accuracies = calloc(epochs, sizeof *r->accuracies);
    if (!r->losses || !r->accuracies)
        return error_set(err, "out of memory for the curves of %u epochs",
                         r->end_epoch - r->first_epoch);
    return 0;
}

/* Whether any rank failed (`failed`: this one did), as every rank agrees.
 * A rank keeps quiet about a failure that another explains: rank 0's, or
 * any but its own. */
static bool any_rank_failed(struct run *r, bool failed)
{
    const bool root = cluster_is_root(&r->cluster);
    const int worst = cluster_max(&r->cluster, failed ? (root ? 2 : 1) : 0);
    r->failed_elsewhere = worst && (!failed || (!root && worst == 2));
    return worst != 0;
}

/* Across ranks, the training subset's fingerprint, which no rank holds
 * whole: every rank's share's parts, joined in rank order.  A rank out of
 * memory here ends every rank (the others would wait for it). */
static void join_fingerprint(struct run *r)
{
    const struct cluster *c = &r->cluster;
    const size_t ranks = (size_t)c->ranks;
    struct dataset_crc32_part *parts = calloc(ranks, sizeof *parts);
    size_t *bytes = calloc(ranks, sizeof *bytes);
    bool ok = parts && bytes;
    if (ok) {
        parts[c->rank] = dataset_crc32_part(&r->train);
        for (size_t k = 0; k < ranks; k++)
            bytes[k] = sizeof *parts;
        ok = cluster_allgather(c, &parts[c->rank], parts, bytes) == 0;
    }
    if (!ok) {
        fprintf(stderr, "mnist-omp: rank %d: out of memory for the training set's fingerprint\n",
                c->rank);
        cluster_abort(c, EXIT_FAILURE);
    }
    r->train_crc = dataset_crc32_join(parts, ranks, dataset_image_size(&r->train));
    free(parts);
    free(bytes);
}

/* Trains from r->first_epoch to r->end_epoch.  Returns what train returns. */
static int run_training(struct run *r, double *seconds, struct error *err)
{
    const struct options *o = &r->options;
    catch_stop_signals();
    /* The trainer takes the state over, even when it fails. */
    const bool failed = trainer_create(&r->trainer, o->engine, &r->model, &r->train,
                                       &r->settings, &r->state, o->threads, &r->cluster,
                                       err) < 0;
    r->training = !failed;
    memset(&r->state, 0, sizeof r->state);
    if (any_rank_failed(r, failed))
        return -1;
    const int status =
        train(&r->trainer, &r->model, r->end_epoch - r->offset, on_epoch, r, seconds, err);
    /* Training fails alike on every rank (a divergence) or on rank 0 (an
     * output): rank 0 says why. */
    if (status < 0 && !cluster_is_root(&r->cluster))
        r->failed_elsewhere = true;
    return status;
}

/* Everything before training: the outputs' checks, the data, the start,
 * the header, the log.  Returns an exit status. */
static int set_up(struct run *r, struct run_description *run, struct error *err)
{
    struct options *o = &r->options;
    /* A network that cannot fit is refused before the data loads (and
     * again once the training set's size is known, in prepare). */
    int status = EXIT_SUCCESS;
    if (!o->load_path && !o->resume_path &&
        check_network_size(r, MNIST_SIDE * MNIST_SIDE,
                           o->train_size == SUBSET_ALL ? 0 : o->train_size, err) < 0) {
        options_usage_error(&(const struct usage){stderr, NULL}, "--hidden: %s", err->msg);
        status = EXIT_USAGE;
    } else if (check_outputs(o, err) < 0) {
        status = EXIT_FAILURE;
    } else {
        status = prepare(r, err);
    }
    if (r->cluster.ranks > 1) {
        /* Each rank read its own files; once all did, the training set's
         * fingerprint is joined from their shares, before anything is
         * printed or written. */
        r->failure_agreed = any_rank_failed(r, status != EXIT_SUCCESS);
        if (r->failure_agreed)
            return status != EXIT_SUCCESS ? status : EXIT_FAILURE;
        join_fingerprint(r);
        if (o->resume_path) {
            status = check_same_data(r, err);
            /* Every rank comes to the same verdict: rank 0 gives it. */
            r->failure_agreed = any_rank_failed(r, status != EXIT_SUCCESS);
        }
    }
    if (status != EXIT_SUCCESS)
        return status;

    if (o->plots_dir && allocate_curves(r, err) < 0)
        return EXIT_FAILURE;
    r->progress = !o->quiet && isatty(STDOUT_FILENO);
    r->accuracy_shown = -1;

    *run = (struct run_description){
        .model = &r->model, .training = &r->settings, .data_dir = r->data_dir,
        .train_count = r->train_count, .train_total = r->train_total,
        .test_count = r->test.count, .test_total = r->test_total,
        .seed = o->seed, .engine = o->engine,
        .threads = o->engine == ENGINE_REFERENCE ? 1 : granted_threads(o->threads),
        .ranks = r->cluster.ranks,
        .first_epoch = r->first_epoch, .end_epoch = r->end_epoch,
        .start_file = o->resume_path ? o->resume_path : o->load_path,
    };
    if (!o->quiet)
        report_header(stdout, run);
    if (o->show)
        visuals_show(stdout, &r->train, o->show);
    /* An output that cannot be written (a full disk, a closed stdout) fails
     * before training; reported here, so cleared for the check at exit. */
    if (ferror(stdout) || fflush(stdout) != 0) {
        error_set(err, "write error: %s", strerror(errno ? errno : EIO));
        clearerr(stdout);
        return EXIT_FAILURE;
    }
    /* The log is written in place as training goes, not through a temporary
     * file: it can be followed (tail -f) during a long run, and one that is
     * interrupted or killed leaves the epochs it did.  It follows the rule of
     * types of every output, and its write errors are reported at the end. */
    if (o->log_path) {
        r->log = output_file_open_in_place(o->log_path, err);
        if (!r->log)
            return EXIT_FAILURE;
        fputs("epoch,loss,seconds,test_accuracy\n", r->log);
    }
    return EXIT_SUCCESS;
}

static int execute(struct run *r, struct error *err)
{
    struct options *o = &r->options;
    const bool root = cluster_is_root(&r->cluster);
    if (!root) {  /* rank 0 alone writes files and shows digits */
        o->save_path = o->checkpoint_path = o->log_path = o->plots_dir = NULL;
        o->show = 0;
    }
    if (r->cluster.ranks > 1 && o->engine != ENGINE_OMP) {
        options_usage_error(&(const struct usage){stderr, NULL},
                            "--engine reference runs in one process, not across %d ranks",
                            r->cluster.ranks);
        return EXIT_USAGE;
    }
    struct run_description run;
    const int status = set_up(r, &run, err);
    /* A failure on any rank ends them all (unless set_up's ranks agreed on
     * one already). */
    if (r->failure_agreed || any_rank_failed(r, status != EXIT_SUCCESS))
        return status != EXIT_SUCCESS ? status : EXIT_FAILURE;

    double seconds = 0;
    int stopped = 0;
    r->epochs_done = r->first_epoch;
    if (r->end_epoch > r->first_epoch) {
        stopped = run_training(r, &seconds, err);
        clear_progress(r);
        if (stopped < 0)
            return EXIT_FAILURE;
        if (!root)  /* the rest is rank 0's: its outputs and results */
            return stopped > 0 ? 128 + stop_signal : EXIT_SUCCESS;
        run.end_epoch = r->epochs_done; /* fewer when interrupted */
        report_training_time(stdout, &run, seconds);
    }
    /* Each output that fails adds its message to `failed`, and the others
     * are still written. */
    struct failed_outputs failed = {.count = 0};
    failed.count += close_log(r, &failed.errors[failed.count]) < 0;
    if (stopped > 0) {
        report_failures(&failed);
        return stop_interrupted(r, err);
    }
    if (o->checkpoint_path)
        failed.count += save_checkpoint(r, &failed.errors[failed.count]) < 0;
    if (o->save_path) {
        const struct model_metadata meta = metadata(r);
        failed.count += model_save(o->save_path, MODEL_FILE_MODEL, &r->model, &meta, NULL,
                                   &failed.errors[failed.count]) < 0;
    }

    /* The last epoch's evaluation is the result; without one (--epochs 0)
     * the model is evaluated now. */
    struct dataset first_train = r->train;
    first_train.count = 1;
    if ((!r->test_eval.logits || r->evaluated != r->epochs_done) &&
        evaluate_test(r, r->epochs_done, err) < 0)
        return EXIT_FAILURE;
    if (evaluate(&r->train_first, &r->model, &first_train, err) < 0)
        return EXIT_FAILURE;
    report_evaluation(stdout, &r->test_eval, &r->test, &r->train_first, &r->train);
    const struct visuals_curves curves = {
        .losses = r->losses, .accuracies = r->accuracies,
        .epochs = r->epochs_done - r->first_epoch,
        .loss_name = r->model.loss == LOSS_XENT ? "cross-entropy" : "MSE",
    };
    if (o->plots_dir)
        failed.count += visuals_write(o->plots_dir, &r->train, &r->test, &r->test_eval, &curves,
                                      stdout, &failed.errors[failed.count]) < 0;
    if (failed.count > 0) {
        fflush(stdout);  /* the results first, then what is missing */
        report_failures(&failed);
        error_set(err, "%zu output%s not written (see above); the others are complete",
                  failed.count, failed.count == 1 ? " was" : "s were");
        return EXIT_FAILURE;
    }
    return stop_signal ? stopped_after_training() : EXIT_SUCCESS;
}

static int train_command(int argc, char **argv)
{
    struct run r;
    struct error err = {{0}};

    memset(&r, 0, sizeof r);
    if (cluster_init(&r.cluster, &argc, &argv, &err) < 0) {
        fprintf(stderr, "mnist-omp: %s\n", err.msg);
        cluster_finalize();
        return EXIT_FAILURE;
    }
    /* Under mpirun, rank 0 alone prints; every rank says what went wrong
     * on it (but for the command line, which every rank reads alike). */
    const bool root = cluster_is_root(&r.cluster);
    if (!root && !freopen("/dev/null", "w", stdout))
        cluster_abort(&r.cluster, EXIT_FAILURE);
    options_defaults(&r.options);
    int status = EXIT_FAILURE;
    switch (options_parse(&r.options, argc, argv, stdout, root ? stderr : stdout)) {
    case OPTIONS_DONE:
        status = EXIT_SUCCESS;
        break;
    case OPTIONS_USAGE_ERROR:
        status = EXIT_USAGE;
        break;
    case OPTIONS_OUTPUT_ERROR:
        break;
    case OPTIONS_RUN:
        status = execute(&r, &err);
        if (status == EXIT_FAILURE && !r.failed_elsewhere) {
            if (r.cluster.ranks > 1)
                fprintf(stderr, "mnist-omp: rank %d: %s\n", r.cluster.rank, err.msg);
            else
                fprintf(stderr, "mnist-omp: %s\n", err.msg);
        }
        break;
    }
    run_free(&r);
    /* Every rank ends with the same status, once rank 0's files are
     * written. */
    status = cluster_max(&r.cluster, status);
    cluster_finalize();
    return status;
}

/* Opens /dev/null on any of descriptors 0-2 that the caller closed, so that
 * no file opened later takes its number (a --log file getting descriptor 1
 * would receive the report).  It is opened in the opposite direction: a
 * write to a closed stdout then fails and is reported, not lost. */
static int open_standard_descriptors(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
            continue;
        const int opened = open("/dev/null", fd == 0 ? O_WRONLY : O_RDONLY);
        if (opened != fd) {  /* the lowest free number, unless open failed */
            if (opened >= 0)
                close(opened);
            return -1;
        }
    }
    return 0;
}

/* Every command's output must have reached stdout: a full disk or a closed
 * descriptor turns a success into a failure, with a message. */
static int close_stdout(int status)
{
    errno = 0;
    const bool failed = fflush(stdout) != 0 || ferror(stdout);
    const int saved = errno;
    if (fclose(stdout) != 0 || failed) {
        fprintf(stderr, "mnist-omp: write error: %s\n", strerror(failed ? (saved ? saved : EIO)
                                                                          : errno));
        return status == EXIT_SUCCESS ? EXIT_FAILURE : status;
    }
    return status;
}

int main(int argc, char **argv)
{
    int status;
    if (open_standard_descriptors() < 0)
        return EXIT_FAILURE;  /* without /dev/null, nowhere to say so safely */
    if (argc > 1 && strcmp(argv[1], "bench") == 0)
        status = bench_main(argc - 1, argv + 1);
    else if (argc > 1 && strcmp(argv[1], "predict") == 0)
        status = predict_main(argc - 1, argv + 1);
    else if (argc > 1 && strcmp(argv[1], "export") == 0)
        status = export_main(argc - 1, argv + 1);
    else
        status = train_command(argc, argv);
    return close_stdout(status);
}
