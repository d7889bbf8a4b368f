/* The names of a setting's values (relu, adam, cosine ...) read back. */
#ifndef MNIST_OMP_NAMES_H
#define MNIST_OMP_NAMES_H

#include <string.h>

/* The index of name among names[0, count), or -1. */
static inline int name_index(const char *name, const char *const *names, int count)
{
    for (int i = 0; i < count; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

#endif
