/* Finding MNIST on disk and loading it in whichever form it is there. */
#define _POSIX_C_SOURCE 200809L

#include "mnist.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct split_files {
    const char *name;            /* for messages */
    const char *images, *labels; /* IDX, each also read as NAME.gz */
    const char *csv;
};

static const struct split_files split_files[] = {
    [MNIST_TRAIN] = {"training", "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "mnist_train.csv"},
    [MNIST_TEST] = {"test", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "mnist_test.csv"},
};

#define MNIST_FILES \
    "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz]" \
    " and t10k-labels-idx1-ubyte[.gz], or mnist_train.csv and mnist_test.csv"

enum split_form { FORM_NONE, FORM_IDX, FORM_CSV };

/* Writes dir/name+suffix into path; nonzero when that file exists. */
static int locate(char path[PATH_MAX], const char *dir, const char *name, const char *suffix)
{
    int length = snprintf(path, PATH_MAX, "%s/%s%s", dir, name, suffix);
    return length >= 0 && length < PATH_MAX && access(path, F_OK) == 0;
}

/* dir/name and dir/name.gz both there is refused rather than resolved, since
 * nothing tells which the user means to train on. */
enum idx_presence { IDX_ABSENT, IDX_FOUND, IDX_AMBIGUOUS };

static enum idx_presence locate_idx(char path[PATH_MAX], const char *dir, const char *name)
{
    char gz_path[PATH_MAX];
    const int have_raw = locate(path, dir, name, ""), have_gz = locate(gz_path, dir, name, ".gz");

    if (have_raw)
        return have_gz ? IDX_AMBIGUOUS : IDX_FOUND;
    if (!have_gz)
        return IDX_ABSENT;
    memcpy(path, gz_path, PATH_MAX);
    return IDX_FOUND;
}

/* Finds the split in dir: data_path receives the IDX images or the CSV file,
 * labels_path the IDX labels, or for FORM_AMBIGUOUS data_path the raw name of
 * the file found twice. */
enum { FORM_AMBIGUOUS = FORM_CSV + 1 };

static int locate_split(const char *dir, enum mnist_split split, char data_path[PATH_MAX],
                        char labels_path[PATH_MAX])
{
    const struct split_files *files = &split_files[split];
    const enum idx_presence images = locate_idx(data_path, dir, files->images);
    const enum idx_presence labels = locate_idx(labels_path, dir, files->labels);

    if (images == IDX_AMBIGUOUS || labels == IDX_AMBIGUOUS) {
        if (images != IDX_AMBIGUOUS)
            memcpy(data_path, labels_path, PATH_MAX);
        return FORM_AMBIGUOUS;
    }
    if (images == IDX_FOUND && labels == IDX_FOUND)
        return FORM_IDX;
    if (locate(data_path, dir, files->csv, ""))
        return FORM_CSV;
    return FORM_NONE;
}

/* Appends to text what keeps the split's IDX files from being read: each one
 * missing, or a symbolic link to nothing. */
static void explain_missing(char *text, size_t size, const char *dir, enum mnist_split split)
{
    const char *const names[] = {split_files[split].images, split_files[split].labels};

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[PATH_MAX], gz_path[PATH_MAX];
        struct stat st;
        const size_t used = strlen(text);

        if (locate(path, dir, names[i], "") || locate(gz_path, dir, names[i], ".gz"))
            continue;
        if (lstat(path, &st) == 0 || lstat(gz_path, &st) == 0)
            snprintf(text + used, size - used, "%s%s is a dangling symbolic link",
                     used ? "; " : "", lstat(path, &st) == 0 ? path : gz_path);
        else
            snprintf(text + used, size - used, "%s%s/%s[.gz] is missing", used ? "; " : "",
                     dir, names[i]);
    }
}

int mnist_dir_has(const char *dir, enum mnist_split split)
{
    char data_path[PATH_MAX], labels_path[PATH_MAX];
    return locate_split(dir, split, data_path, labels_path) != FORM_NONE;
}

int mnist_load(struct dataset *ds, const char *dir, enum mnist_split split,
               struct error *err)
{
    return mnist_load_kept(ds, dir, split, NULL, err);
}

int mnist_load_kept(struct dataset *ds, const char *dir, enum mnist_split split,
                    struct dataset_keep *keep, struct error *err)
{
    char data_path[PATH_MAX], labels_path[PATH_MAX];
    const struct split_files *files = &split_files[split];

    char missing[2 * PATH_MAX + 128] = "";

    switch (locate_split(dir, split, data_path, labels_path)) {
    case FORM_IDX:
        return dataset_load_idx(ds, data_path, labels_path, keep, err);
    case FORM_CSV:
        return dataset_load_csv(ds, data_path, keep, err);
    case FORM_AMBIGUOUS:
        memset(ds, 0, sizeof *ds);
        return error_set(err, "%s: %s.gz exists as well: remove one, so that it is clear "
                         "which is read", data_path, data_path);
    default:
        break;
    }
    memset(ds, 0, sizeof *ds);
    explain_missing(missing, sizeof missing, dir, split);
    return error_set(err, "%s: no MNIST %s set: %s (and no %s)", dir, files->name, missing,
                     files->csv);
}

/* A directory holds MNIST when it holds both splits: the program trains on
 * one and evaluates on the other. */
static int holds_mnist(const char *dir)
{
    return mnist_dir_has(dir, MNIST_TRAIN) && mnist_dir_has(dir, MNIST_TEST);
}

/* Why dir cannot serve, for error messages: into text, of `size` bytes. */
static const char *why_not_mnist(const char *dir, char *text, size_t size)
{
    struct stat st;

    if (stat(dir, &st) != 0)
        return strerror(errno);
    if (!S_ISDIR(st.st_mode))
        return "not a directory";
    text[0] = '\0';
    for (int split = MNIST_TRAIN; split <= MNIST_TEST; split++)
        if (!mnist_dir_has(dir, (enum mnist_split)split))
            explain_missing(text, size, dir, (enum mnist_split)split);
    return text[0] ? text : "no MNIST there";
}

static int choose(const char *dir, char *out, size_t out_size, struct error *err)
{
    int length = snprintf(out, out_size, "%s", dir);
    if (length < 0 || (size_t)length >= out_size)
        return error_set(err, "%s: path too long", dir);
    return 0;
}

/* A directory the user named is used or refused, never passed over: falling
 * back to some other copy would hide a typo. */
static int choose_named(const char *dir, const char *named_by, char *out, size_t out_size,
                        struct error *err)
{
    char why[4 * PATH_MAX + 256];

    if (!holds_mnist(dir))
        return error_set(err, "%s: %s (named by %s; a data directory holds " MNIST_FILES ")",
                         dir, why_not_mnist(dir, why, sizeof why), named_by);
    return choose(dir, out, out_size, err);
}

int mnist_find_dir(const char *explicit_dir, const char *installed_dir,
                   char *out, size_t out_size, struct error *err)
{
    static const char local_dir[] = "./data";
    const char *env_dir = getenv("MNIST_OMP_DATA");

    if (explicit_dir)
        return choose_named(explicit_dir, "--data", out, out_size, err);
    if (env_dir && *env_dir)  /* set but empty counts as unset, as usual for paths */
        return choose_named(env_dir, "$MNIST_OMP_DATA", out, out_size, err);
    if (holds_mnist(local_dir))
        return choose(local_dir, out, out_size, err);
    if (installed_dir && holds_mnist(installed_dir))
        return choose(installed_dir, out, out_size, err);

    return error_set(err, "no MNIST data found: looked in %s%s%s (for " MNIST_FILES
                     "); name a directory with --data or $MNIST_OMP_DATA",
                     local_dir, installed_dir ? " and " : "", installed_dir ? installed_dir : "");
}
