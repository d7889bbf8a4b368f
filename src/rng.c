/* MT19937 with the exact draw semantics of CPython's `random` module.
 *
 * The generator itself follows the Matsumoto-Nishimura reference code
 * (mt19937ar.c); the py_random_* layer reproduces what CPython builds on top
 * of it (random.seed, getrandbits, _randbelow, shuffle, random, uniform), so
 * that a run seeded with 1337 makes exactly the draws Python would. */
#include "rng.h"

#include <assert.h>

#define MT19937_M 397
#define MATRIX_A 0x9908b0dfu    /* the twist's constant vector a */
#define UPPER_MASK 0x80000000u  /* most significant w-r bits */
#define LOWER_MASK 0x7fffffffu  /* least significant r bits */

void mt_init_genrand(struct py_random *r, uint32_t seed)
{
    r->state[0] = seed;
    for (int i = 1; i < MT19937_N; i++) {
        uint32_t prev = r->state[i - 1];
        /* Knuth's multiplier; the arithmetic is mod 2^32 by uint32_t. */
        r->state[i] = 1812433253u * (prev ^ (prev >> 30)) + (uint32_t)i;
    }
    r->index = MT19937_N;
}

void mt_init_by_array(struct py_random *r, const uint32_t *key, size_t key_length)
{
    assert(key_length > 0);
    mt_init_genrand(r, 19650218u);

    int i = 1;
    size_t j = 0;
    size_t rounds = key_length > MT19937_N ? key_length : MT19937_N;
    for (; rounds > 0; rounds--) {
        uint32_t prev = r->state[i - 1];
        r->state[i] = (r->state[i] ^ ((prev ^ (prev >> 30)) * 1664525u))
                      + key[j] + (uint32_t)j;
        i++;
        j++;
        if (i >= MT19937_N) {
            r->state[0] = r->state[MT19937_N - 1];
            i = 1;
        }
        if (j >= key_length)
            j = 0;
    }
    for (rounds = MT19937_N - 1; rounds > 0; rounds--) {
        uint32_t prev = r->state[i - 1];
        r->state[i] = (r->state[i] ^ ((prev ^ (prev >> 30)) * 1566083941u))
                      - (uint32_t)i;
        i++;
        if (i >= MT19937_N) {
            r->state[0] = r->state[MT19937_N - 1];
            i = 1;
        }
    }
    /* Guarantees a non-zero initial state whatever the key. */
    r->state[0] = 0x80000000u;
    r->index = MT19937_N;
}

void py_random_seed(struct py_random *r, int64_t seed)
{
    /* Python seeds with abs(seed); negate in unsigned arithmetic so that
     * INT64_MIN has a magnitude too. */
    uint64_t magnitude = seed < 0 ? 0u - (uint64_t)seed : (uint64_t)seed;
    uint32_t key[2] = {(uint32_t)magnitude, (uint32_t)(magnitude >> 32)};
    /* CPython passes only the significant words, and at least one. */
    size_t key_length = key[1] != 0 ? 2 : 1;
    mt_init_by_array(r, key, key_length);
}

/* Regenerates all N words of state at once (the "twist"). */
static void mt_twist(struct py_random *r)
{
    for (int i = 0; i < MT19937_N; i++) {
        uint32_t y = (r->state[i] & UPPER_MASK)
                     | (r->state[(i + 1) % MT19937_N] & LOWER_MASK);
        uint32_t mixed = (y >> 1) ^ ((y & 1u) ? MATRIX_A : 0u);
        r->state[i] = r->state[(i + MT19937_M) % MT19937_N] ^ mixed;
    }
    r->index = 0;
}

uint32_t py_random_next32(struct py_random *r)
{
    if (r->index >= MT19937_N)
        mt_twist(r);
    uint32_t y = r->state[r->index++];
    /* Tempering improves the equidistribution of the raw state words. */
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint32_t py_random_getrandbits(struct py_random *r, int k)
{
    assert(k > 0 && k <= 32);
    /* CPython keeps the most significant bits of one output. */
    return py_random_next32(r) >> (32 - k);
}

uint32_t py_random_randbelow(struct py_random *r, uint64_t n)
{
    assert(n > 0 && n <= UINT64_C(1) << 32);
    int bits = 0;
    for (uint64_t v = n; v != 0; v >>= 1)
        bits++;
    if (bits > 32) {
        /* n = 2^32: Python draws getrandbits(33), i.e. a full low word then
         * the top bit of a second output, and rejects when that bit is set.
         * Mirror it so the stream stays in step with Python's. */
        for (;;) {
            uint32_t low_word = py_random_next32(r);
            if ((py_random_next32(r) >> 31) == 0)
                return low_word;
        }
    }
    uint32_t candidate = py_random_getrandbits(r, bits);
    while (candidate >= n)
        candidate = py_random_getrandbits(r, bits);
    return candidate;
}

void py_random_shuffle(struct py_random *r, size_t *x, size_t n)
{
    /* Fisher-Yates from the back, exactly as random.shuffle walks it. */
    for (size_t i = n; i-- > 1;) {
        size_t j = py_random_randbelow(r, (uint64_t)i + 1);
        size_t tmp = x[i];
        x[i] = x[j];
        x[j] = tmp;
    }
}

double py_random_random(struct py_random *r)
{
    /* 27 high bits then 26 high bits: a 53-bit integer over 2^53. */
    uint32_t high = py_random_next32(r) >> 5;
    uint32_t low = py_random_next32(r) >> 6;
    return (high * 67108864.0 + low) * (1.0 / 9007199254740992.0);
}

double py_random_uniform(struct py_random *r, double lo, double hi)
{
    return lo + (hi - lo) * py_random_random(r);
}
