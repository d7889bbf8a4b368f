#include <config.h>

/* fsync, fileno, fdopen, fchmod, readlink, lstat, O_CLOEXEC */
#define _POSIX_C_SOURCE 200809L

#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The links followed before giving up, as the kernel's own limit. */
enum { MAX_LINKS_FOLLOWED = 40 };

/* Another writer (or a crashed earlier run) may hold a temporary name. */
enum { TEMP_NAME_ATTEMPTS = 100 };

/* The directory part of path ("." when there is none), in new memory. */
static char *directory_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    const size_t length = slash == path ? 1 : (size_t)(slash - path);
    char *dir = malloc(length + 1);
    if (dir) {
        memcpy(dir, path, length);
        dir[length] = '\0';
    }
    return dir;
}

/* path with every symbolic link at its end followed, in new memory; a link
 * that leads nowhere yet gives the name that a write creates. */
static char *follow_links(const char *path, struct error *err)
{
    char *current = strdup(path);
    for (int hops = 0; current && hops <= MAX_LINKS_FOLLOWED; hops++) {
        struct stat st;
        if (lstat(current, &st) != 0 || !S_ISLNK(st.st_mode))
            return current;  /* the checks that follow report a failed lstat */
        char link[PATH_MAX];
        const ssize_t length = readlink(current, link, sizeof link - 1);
        if (length < 0) {
            error_set(err, "%s: cannot read the symbolic link %s: %s", path, current,
                      strerror(errno));
            free(current);
            return NULL;
        }
        link[length] = '\0';
        char *dir = link[0] == '/' ? NULL : directory_of(current);
        const size_t size = (dir ? strlen(dir) + 1 : 0) + (size_t)length + 1;
        char *next = (link[0] == '/' || dir) ? malloc(size) : NULL;
        if (next)
            snprintf(next, size, "%s%s%s", dir ? dir : "", dir ? "/" : "", link);
        free(dir);
        free(current);
        current = next;
    }
    if (current) {
        error_set(err, "%s: too many levels of symbolic links", path);
        free(current);
    } else {
        error_set(err, "%s: out of memory", path);
    }
    return NULL;
}

static const char *kind_of(mode_t mode)
{
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISDIR(mode))
        return "a directory";
    return "not a regular file";
}

static int refuse(const char *path, const char *target, mode_t mode, struct error *err)
{
    if (strcmp(path, target) != 0)
        return error_set(err, "%s: leads to %s, which is %s; refusing to replace it", path,
                         target, kind_of(mode));
    return error_set(err, "%s: is %s; refusing to replace it", path, kind_of(mode));
}

static int cannot_write(const char *path, int error_number, struct error *err)
{
    if (error_number == ENAMETOOLONG)  /* the path may not fit in the message: say so first */
        return error_set(err, "cannot write a file: the path is too long (%zu bytes): %s",
                         strlen(path), path);
    return error_set(err, "%s: cannot write: %s", path, strerror(error_number));
}

/* The directory that receives target: it must exist and take new names. */
static int check_directory(const char *path, const char *target, struct error *err)
{
    struct stat st;
    char *dir = directory_of(target);
    int status = 0;
    if (!dir)
        return error_set(err, "%s: out of memory", path);
    if (stat(dir, &st) != 0)
        status = error_set(err, "%s: cannot write in %s: %s", path, dir, strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        status = error_set(err, "%s: cannot write in %s: not a directory", path, dir);
    else if (access(dir, W_OK | X_OK) != 0)
        status = error_set(err, "%s: cannot write in %s: %s", path, dir, strerror(errno));
    free(dir);
    return status;
}

/* Checks target (path with its links followed) under the rule; *mode gets
 * the permissions of an existing file, or -1 for a new one. */
static int check_target(const char *path, const char *target, int *mode, struct error *err)
{
    struct stat st;
    *mode = -1;
    if (lstat(target, &st) == 0) {
        if (!S_ISREG(st.st_mode))
            return refuse(path, target, st.st_mode, err);
        *mode = (int)(st.st_mode & 07777);
    } else if (errno != ENOENT) {
        return cannot_write(path, errno, err);
    }
    return check_directory(path, target, err);
}

int output_file_check(const char *path, struct error *err)
{
    int mode;
    char *target = follow_links(path, err);
    if (!target)
        return -1;
    const int status = check_target(path, target, &mode, err);
    free(target);
    return status;
}

/* A temporary name unlikely to be taken: the clock, the process and the
 * attempt, mixed (splitmix64's finaliser). */
static uint64_t temp_name_bits(int attempt)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t x = (uint64_t)now.tv_nsec ^ ((uint64_t)now.tv_sec << 30) ^
                 ((uint64_t)getpid() << 40) ^ (uint64_t)attempt;
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

/* Creates the temporary file in the directory of f->target, under a short
 * name, so that it fits NAME_MAX whatever the length of the final name. */
static int create_temp_file(struct atomic_file *f)
{
    char *dir = directory_of(f->target);
    const size_t size = dir ? strlen(dir) + 32 : 0;
    int fd = -1;
    f->temp_path = dir ? malloc(size) : NULL;
    if (!f->temp_path) {
        free(dir);
        errno = ENOMEM;
        return -1;
    }
    /* open with O_EXCL rather than mkstemp: a new file then gets the mode the
     * umask allows, as the final file should, not mkstemp's 0600 */
    for (int attempt = 0; fd < 0 && attempt < TEMP_NAME_ATTEMPTS; attempt++) {
        snprintf(f->temp_path, size, "%s/.mnist-omp-%012llx.tmp", dir,
                 (unsigned long long)(temp_name_bits(attempt) & 0xffffffffffffULL));
        fd = open(f->temp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    free(dir);
    return fd;
}

int atomic_file_open(struct atomic_file *f, const char *path, struct error *err)
{
    int mode, fd;

    *f = (struct atomic_file){.path = path, .target = follow_links(path, err)};
    if (!f->target)
        return -1;
    if (check_target(path, f->target, &mode, err) != 0) {
        free(f->target);
        f->target = NULL;
        return -1;
    }
    fd = create_temp_file(f);
    if (fd >= 0 && ((mode >= 0 && fchmod(fd, (mode_t)mode) != 0) ||
                    !(f->stream = fdopen(fd, "wb")))) {
        const int saved = errno;
        close(fd);
        remove(f->temp_path);
        errno = saved;
    }
    if (!f->stream) {
        const int saved = errno;
        free(f->temp_path);
        free(f->target);
        *f = (struct atomic_file){.path = path};
        return cannot_write(path, saved, err);
    }
    return 0;
}

/* Makes a rename in dir durable.  Best effort: some file systems cannot sync
 * a directory, and the file is complete under its name either way. */
static void sync_directory_of(const char *path)
{
    char *dir = directory_of(path);
    const int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY) : -1;
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

static void release(struct atomic_file *f)
{
    free(f->temp_path);
    free(f->target);
    f->temp_path = f->target = NULL;
}

int atomic_file_commit(struct atomic_file *f, struct error *err)
{
    int failed, saved;

    errno = 0;
    failed = fflush(f->stream) != 0 || ferror(f->stream) || fsync(fileno(f->stream)) != 0;
    saved = errno;
    if (fclose(f->stream) != 0 && !failed) {
        failed = 1;
        saved = errno;
    }
    f->stream = NULL;
    if (!failed && rename(f->temp_path, f->target) != 0) {
        failed = 1;
        saved = errno;
    }
    if (!failed)
        sync_directory_of(f->target);
    if (failed)
        remove(f->temp_path);
    release(f);
    if (failed)  /* a stream error seen only through ferror may leave errno 0 */
        return cannot_write(f->path, saved ? saved : EIO, err);
    return 0;
}

void atomic_file_discard(struct atomic_file *f)
{
    fclose(f->stream);
    f->stream = NULL;
    remove(f->temp_path);
    release(f);
}

FILE *output_file_open_in_place(const char *path, struct error *err)
{
    struct stat st;
    if (output_file_check(path, err) != 0)
        return NULL;
    /* Not truncated before fstat has seen a regular file; O_NONBLOCK keeps a
     * FIFO put there since the check from blocking the open. */
    const int fd = open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0666);
    if (fd < 0) {
        cannot_write(path, errno, err);
        return NULL;
    }
    FILE *stream = NULL;
    if (fstat(fd, &st) != 0)
        cannot_write(path, errno, err);
    else if (!S_ISREG(st.st_mode))
        refuse(path, path, st.st_mode, err);
    else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0 || ftruncate(fd, 0) != 0 ||
             !(stream = fdopen(fd, "w")))
        cannot_write(path, errno, err);
    if (!stream)
        close(fd);
    return stream;
}
