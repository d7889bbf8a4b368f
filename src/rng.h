/* MT19937 with the exact semantics of CPython's `random` module, so that every
 * draw of the reference experiment matches `random.seed(1337)` in Python. */
#ifndef MNIST_OMP_RNG_H
#define MNIST_OMP_RNG_H

#include <stddef.h>
#include <stdint.h>

#define MT19937_N 624

struct py_random {
    uint32_t state[MT19937_N];
    int index;  /* next word of state to temper; MT19937_N means "twist first" */
};

/* The two seeding routines of the MT19937 reference implementation. */
void mt_init_genrand(struct py_random *r, uint32_t seed);
void mt_init_by_array(struct py_random *r, const uint32_t *key, size_t key_length);

/* random.seed(seed) for an integer seed: init_by_array with the 32-bit words
 * of |seed|, least significant first ({0} for seed 0). */
void py_random_seed(struct py_random *r, int64_t seed);

/* The next tempered 32-bit output (genrand_uint32). */
uint32_t py_random_next32(struct py_random *r);

/* random.getrandbits(k) for 0 < k <= 32. */
uint32_t py_random_getrandbits(struct py_random *r, int k);

/* random._randbelow(n) for 0 < n <= 2^32: rejection sampling on getrandbits. */
uint32_t py_random_randbelow(struct py_random *r, uint64_t n);

/* random.shuffle(x) on an array of indices. */
void py_random_shuffle(struct py_random *r, size_t *x, size_t n);

/* random.random(): 53-bit double in [0, 1). */
double py_random_random(struct py_random *r);

/* random.uniform(lo, hi) = lo + (hi - lo) * random(). */
double py_random_uniform(struct py_random *r, double lo, double hi);

#endif
