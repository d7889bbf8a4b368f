#include <config.h>

#define _POSIX_C_SOURCE 200809L  /* fsync, fileno, fdopen, O_CLOEXEC */

#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Makes a rename in the directory of path durable.  Best effort: some file
 * systems cannot sync a directory, and the file is complete under its name
 * either way. */
static void sync_directory_of(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    const int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* Another writer (or a crashed earlier run) may hold a temporary name. */
enum { TEMP_NAME_ATTEMPTS = 100 };

int atomic_file_open(struct atomic_file *f, const char *path, struct error *err)
{
    const size_t size = strlen(path) + 64;
    int fd = -1;

    *f = (struct atomic_file){.path = path, .temp_path = malloc(size)};
    if (!f->temp_path)
        return error_set(err, "%s: out of memory", path);
    /* open with O_EXCL rather than mkstemp: the file then gets the mode the
     * umask allows, as the final file should, not mkstemp's 0600 */
    for (int attempt = 0; fd < 0 && attempt < TEMP_NAME_ATTEMPTS; attempt++) {
        snprintf(f->temp_path, size, "%s.%ld-%d.tmp", path, (long)getpid(), attempt);
        fd = open(f->temp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd >= 0 && !(f->stream = fdopen(fd, "wb"))) {
        const int saved = errno;
        close(fd);
        remove(f->temp_path);
        errno = saved;
    }
    if (!f->stream) {
        const int saved = errno;
        free(f->temp_path);
        f->temp_path = NULL;
        if (saved == ENAMETOOLONG)  /* the path may not fit in the message: say so first */
            return error_set(err, "cannot write a file: the path is too long (%zu bytes): %s",
                             strlen(path), path);
        return error_set(err, "%s: cannot write: %s", path, strerror(saved));
    }
    return 0;
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
    if (!failed && rename(f->temp_path, f->path) != 0) {
        failed = 1;
        saved = errno;
    }
    if (!failed)
        sync_directory_of(f->path);
    if (failed)
        remove(f->temp_path);
    free(f->temp_path);
    f->temp_path = NULL;
    if (failed)  /* a stream error seen only through ferror may leave errno 0 */
        return error_set(err, "%s: cannot write: %s", f->path, strerror(saved ? saved : EIO));
    return 0;
}

void atomic_file_discard(struct atomic_file *f)
{
    fclose(f->stream);
    f->stream = NULL;
    remove(f->temp_path);
    free(f->temp_path);
    f->temp_path = NULL;
}
