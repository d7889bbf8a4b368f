#include <config.h>

#include "clock.h"

#include <stdlib.h>
#include <time.h>

double clock_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

static int compare_doubles(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct timing_spread timing_spread(double *seconds, size_t n)
{
    qsort(seconds, n, sizeof *seconds, compare_doubles);
    return (struct timing_spread){
        .median = n % 2 ? seconds[n / 2] : (seconds[n / 2 - 1] + seconds[n / 2]) / 2,
        .min = seconds[0],
        .max = seconds[n - 1],
    };
}
