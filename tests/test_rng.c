/* Unit tests for src/rng.c: the generator must replay CPython's `random`
 * module draw for draw, because the reference experiment is defined as
 * "what Python does after random.seed(1337)".
 *
 * Every expected value below was produced by python3 (CPython 3.11); the
 * one-liner above each table regenerates it.  Python is not available in CI,
 * so the values are embedded.  Doubles are written as hex literals
 * (float.hex) and compared bit for bit: a single-ulp drift is a failure. */
#include "rng.h"

#include <check.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

/* ------------------------------------------------ shared helpers */

static void assert_bit_identical(double got, double want, const char *what, size_t i)
{
    ck_assert_msg(memcmp(&got, &want, sizeof got) == 0,
                  "%s[%zu]: got %a (%.17g), want %a (%.17g)",
                  what, i, got, got, want, want);
}

static void assert_is_permutation(const size_t *x, size_t n)
{
    unsigned char *seen = calloc(n, 1);
    ck_assert_ptr_nonnull(seen);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(x[i] < n && !seen[x[i]],
                      "x[%zu] = %zu is out of range or repeated", i, x[i]);
        seen[x[i]] = 1;
    }
    free(seen);
}

static size_t *identity(size_t n)
{
    size_t *x = malloc(n * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < n; i++)
        x[i] = i;
    return x;
}

/* ------------------------------------------------ MT19937 reference outputs */

/* The published outputs of mt19937ar.c; also
 * python3 -c 'import random as R; m = [5489]; [m.append((1812433253 * (m[-1] ^ m[-1] >> 30) + i) & 0xffffffff) for i in range(1, 624)]; R.setstate((3, tuple(m) + (624,), None)); o = [R.getrandbits(32) for _ in range(10000)]; print(o[:10], o[999], o[9999])'
 * The 10000th output, 4123659995, is the one C++11 requires of std::mt19937. */
static const uint32_t genrand_5489_first[] = {
    3499211612u, 581869302u, 3890346734u, 3586334585u, 545404204u,
    4161255391u, 3922919429u, 949333985u, 2715962298u, 1323567403u,
};
static const uint32_t genrand_5489_1000th = 1341017984u;
static const uint32_t genrand_5489_10000th = 4123659995u;

START_TEST(test_init_genrand_matches_reference)
{
    struct py_random r;
    mt_init_genrand(&r, 5489u);
    size_t drawn = 0;
    for (; drawn < COUNT(genrand_5489_first); drawn++)
        ck_assert_uint_eq(py_random_next32(&r), genrand_5489_first[drawn]);
    for (; drawn < 999; drawn++)
        py_random_next32(&r);
    ck_assert_uint_eq(py_random_next32(&r), genrand_5489_1000th);
    for (drawn++; drawn < 9999; drawn++)
        py_random_next32(&r);
    ck_assert_uint_eq(py_random_next32(&r), genrand_5489_10000th);
}
END_TEST

/* The published outputs of mt19937ar.c's own main(); also
 * python3 -c 'import random as R; R.seed(0x456 << 96 | 0x345 << 64 | 0x234 << 32 | 0x123); o = [R.getrandbits(32) for _ in range(1000)]; print(o[:10], o[999])' */
static const uint32_t by_array_key[] = {0x123, 0x234, 0x345, 0x456};
static const uint32_t by_array_first[] = {
    1067595299u, 955945823u, 477289528u, 4107218783u, 4228976476u,
    3344332714u, 3355579695u, 227628506u, 810200273u, 2591290167u,
};
static const uint32_t by_array_1000th = 3460025646u;

START_TEST(test_init_by_array_matches_reference)
{
    struct py_random r;
    mt_init_by_array(&r, by_array_key, COUNT(by_array_key));
    size_t drawn = 0;
    for (; drawn < COUNT(by_array_first); drawn++)
        ck_assert_uint_eq(py_random_next32(&r), by_array_first[drawn]);
    for (; drawn < 999; drawn++)
        py_random_next32(&r);
    ck_assert_uint_eq(py_random_next32(&r), by_array_1000th);
}
END_TEST

/* ------------------------------------------------ CPython random.seed(int) */

/* Each table has one row per seed of the one-liners' tuple
 * (1337, 0, 2**40+5, 2**32, -2**63), in that order.  2**32 is the first seed
 * with a two-word key; -2**63 is INT64_MIN, whose magnitude does not fit in
 * an int64_t. */
enum { ROW_1337, ROW_0, ROW_2_40_PLUS_5, ROW_2_32, ROW_INT64_MIN, PYTHON_ROWS };

struct seed_case {
    int64_t seed;
    int row;  /* the row of Python's tables that this seed must replay */
};

static const struct seed_case seed_cases[] = {
    {1337, ROW_1337},
    {0, ROW_0},
    {(INT64_C(1) << 40) + 5, ROW_2_40_PLUS_5},
    {INT64_C(1) << 32, ROW_2_32},
    {INT64_MIN, ROW_INT64_MIN},
    /* random.seed(n) uses abs(n): a negative seed replays its magnitude. */
    {-1337, ROW_1337},
    {-((INT64_C(1) << 40) + 5), ROW_2_40_PLUS_5},
};

static const struct seed_case *seeded(struct py_random *r, int case_index)
{
    const struct seed_case *c = &seed_cases[case_index];
    py_random_seed(r, c->seed);
    return c;
}

/* python3 -c 'import random as R; [print(R.seed(s) or "{%s}," % ", ".join(R.random().hex() for _ in range(6))) for s in (1337, 0, 2**40+5, 2**32, -2**63)]' */
static const double expected_random[PYTHON_ROWS][6] = {
    {0x1.3c4a1a3b3bf8dp-1, 0x1.11082f6d6eac7p-1, 0x1.76a0f3c915d6cp-2, 0x1.2bec51eed75d6p-1, 0x1.5353dac6737b8p-3, 0x1.a61450d54c6b9p-1},
    {0x1.b0580f98a7dbep-1, 0x1.84129978f9c1ap-1, 0x1.aeaa51052e978p-2, 0x1.092178fb945a6p-2, 0x1.05c5ccdf19707p-1, 0x1.9ea70df588b3cp-2},
    {0x1.023e2261153dcp-1, 0x1.130d0ad4f7578p-2, 0x1.da00b1c1c1612p-1, 0x1.0fd9e3b08a4d2p-1, 0x1.a2cc383564a04p-1, 0x1.92c1807d31931p-1},
    {0x1.ced31cb3df170p-4, 0x1.abdb5477a4f26p-2, 0x1.1139c02ebd380p-6, 0x1.39338e3811e8ep-1, 0x1.9c7dc430ca10dp-1, 0x1.5377abeb3e742p-2},
    {0x1.1b5fa2193586fp-1, 0x1.e198384d65bb9p-1, 0x1.ef9ab7f81e664p-3, 0x1.b3dbe4202321dp-1, 0x1.5b28d2b6d4850p-4, 0x1.820fdc5552ab9p-1},
};

START_TEST(test_random_matches_python)
{
    struct py_random r;
    const struct seed_case *c = seeded(&r, _i);
    for (size_t i = 0; i < COUNT(expected_random[0]); i++)
        assert_bit_identical(py_random_random(&r), expected_random[c->row][i],
                             "random()", i);
}
END_TEST

/* python3 -c 'import random as R, math; b = 1 / math.sqrt(784); [print(R.seed(s) or "{%s}," % ", ".join(R.uniform(-b, b).hex() for _ in range(6))) for s in (1337, 0, 2**40+5, 2**32, -2**63)]' */
static const double expected_uniform_784[PYTHON_ROWS][6] = {
    {0x1.139be5a112284p-7, 0x1.37711a1a30e30p-9, -0x1.39fdd2c6a982ep-7, 0x1.9195363e8c7a8p-8, -0x1.873dcc20e294ep-6, 0x1.7b9c2679d33f0p-6},
    {0x1.93126ccaa43fcp-6, 0x1.2de15ecb5f716p-6, -0x1.73d0d6c3bd4b8p-8, -0x1.1a22e372c42b0p-6, 0x1.a63a88e2b2680p-11, -0x1.bd045278fcca4p-8},
    {0x1.4813a530b5900p-12, -0x1.0ecc85e809e52p-6, 0x1.f24abadf70de0p-6, 0x1.21d96809e0f00p-9, 0x1.741bee30e6008p-6, 0x1.4f7125b071502p-6},
    {-0x1.c4e840f12df96p-6, -0x1.80a7a26f5719cp-8, -0x1.1ad03922e6f4dp-5, 0x1.057df7dbbf964p-7, 0x1.65b1c06f84b8cp-6, -0x1.8a5c2de64cad6p-7},
    {0x1.f48b94161bed0p-9, 0x1.01d2897d068d4p-5, -0x1.2df0bb7237c59p-6, 0x1.9b1b2e00504d4p-6, -0x1.e5f45614e7da0p-6, 0x1.2948d30c2aaccp-6},
};

START_TEST(test_uniform_matches_python)
{
    /* The bound of the input layer's initial weights (fan-in 784). */
    const double bound = 1.0 / sqrt(784.0);
    struct py_random r;
    const struct seed_case *c = seeded(&r, _i);
    for (size_t i = 0; i < COUNT(expected_uniform_784[0]); i++)
        assert_bit_identical(py_random_uniform(&r, -bound, bound),
                             expected_uniform_784[c->row][i], "uniform()", i);
}
END_TEST

/* python3 -c 'import random as R; [print(R.seed(s) or "{%s}," % ", ".join(str(R.getrandbits(k)) for k in (1, 2, 5, 8, 16, 24, 31, 32))) for s in (1337, 0, 2**40+5, 2**32, -2**63)]' */
static const int getrandbits_widths[] = {1, 2, 5, 8, 16, 24, 31, 32};
static const uint32_t expected_getrandbits[PYTHON_ROWS][COUNT(getrandbits_widths)] = {
    {1, 3, 17, 181, 23976, 9579437, 1257968761, 3143464376},
    {1, 1, 24, 227, 27562, 679215, 556019485, 4146640122},
    {1, 2, 8, 169, 60672, 460164, 1140226276, 3257480346},
    {0, 1, 13, 239, 1092, 382887, 1313661828, 3762791315},
    {1, 1, 30, 53, 15859, 16260710, 1828124941, 2156693347},
};

START_TEST(test_getrandbits_matches_python)
{
    struct py_random r;
    const struct seed_case *c = seeded(&r, _i);
    for (size_t i = 0; i < COUNT(getrandbits_widths); i++) {
        uint32_t got = py_random_getrandbits(&r, getrandbits_widths[i]);
        ck_assert_msg(got == expected_getrandbits[c->row][i],
                      "getrandbits(%d): got %" PRIu32 ", want %" PRIu32,
                      getrandbits_widths[i], got, expected_getrandbits[c->row][i]);
    }
}
END_TEST

/* The last column is the getrandbits(32) that follows: it checks that
 * randbelow consumed exactly as many outputs (rejections included) as Python.
 * python3 -c 'import random as R; [print(R.seed(s) or "{%s, %d}," % (", ".join(str(R._inst._randbelow(n)) for n in (1, 2, 3, 7, 10, 255, 256, 60000, 10**9, 2**31, 2**32-1, 2**32)), R.getrandbits(32))) for s in (1337, 0, 2**40+5, 2**32, -2**63)]' */
static const uint64_t randbelow_bounds[] = {
    1, 2, 3, 7, 10, 255, 256, 60000, 1000000000,
    UINT64_C(1) << 31, (UINT64_C(1) << 32) - 1, UINT64_C(1) << 32,
};
static const uint32_t expected_randbelow[PYTHON_ROWS][COUNT(randbelow_bounds) + 1] = {
    {0, 0, 1, 3, 5, 235, 157, 25660, 748526813, 880236376, 3270773552, 3918321625, 469390093},
    {0, 1, 0, 2, 8, 124, 207, 51367, 891047768, 1302718217, 4156669319, 2046968324, 2505606783},
    {0, 0, 2, 6, 0, 42, 40, 52200, 876539435, 574919823, 1026390891, 2949429290, 1063433780},
    {0, 1, 1, 0, 0, 156, 169, 54908, 585842146, 1940533316, 60122280, 593069562, 3515254089},
    {0, 0, 0, 6, 8, 21, 182, 49415, 357739410, 1310961893, 1968830774, 4140643018, 1043646439},
};

START_TEST(test_randbelow_matches_python)
{
    struct py_random r;
    const struct seed_case *c = seeded(&r, _i);
    const uint32_t *want = expected_randbelow[c->row];
    for (size_t i = 0; i < COUNT(randbelow_bounds); i++) {
        uint32_t got = py_random_randbelow(&r, randbelow_bounds[i]);
        ck_assert_msg(got == want[i],
                      "randbelow(%" PRIu64 "): got %" PRIu32 ", want %" PRIu32,
                      randbelow_bounds[i], got, want[i]);
    }
    ck_assert_uint_eq(py_random_next32(&r), want[COUNT(randbelow_bounds)]);
}
END_TEST

/* randbelow(2**32) draws getrandbits(33): under seed 1 the first try is
 * rejected, under seed 5 it is accepted.  Columns: seed, first getrandbits(32),
 * randbelow(2**32).
 * python3 -c 'import random as R; [print(R.seed(s) or "{%d, %d, %d}," % (s, R.getrandbits(32), R.seed(s) or R._inst._randbelow(2**32))) for s in (1, 5)]' */
static const struct {
    int64_t seed;
    uint32_t first_output;
    uint32_t randbelow_2_32;
} randbelow_2_32_cases[] = {
    {1, 577090037, 3280387012},
    {5, 2675342405, 2675342405},
};

START_TEST(test_randbelow_2_32_rejects_like_python)
{
    struct py_random r;
    py_random_seed(&r, randbelow_2_32_cases[_i].seed);
    ck_assert_uint_eq(py_random_next32(&r), randbelow_2_32_cases[_i].first_output);
    py_random_seed(&r, randbelow_2_32_cases[_i].seed);
    ck_assert_uint_eq(py_random_randbelow(&r, UINT64_C(1) << 32),
                      randbelow_2_32_cases[_i].randbelow_2_32);
}
END_TEST

/* python3 -c 'import random as R; [print(R.seed(s) or R.shuffle(x := list(range(10))) or "{%s}," % ", ".join(map(str, x))) for s in (1337, 0, 2**40+5, 2**32, -2**63)]' */
static const size_t expected_shuffle_10[PYTHON_ROWS][10] = {
    {0, 3, 7, 2, 1, 6, 4, 5, 8, 9},
    {7, 8, 1, 5, 3, 4, 2, 0, 9, 6},
    {1, 2, 3, 6, 7, 0, 5, 4, 9, 8},
    {8, 9, 3, 2, 4, 7, 0, 6, 5, 1},
    {5, 7, 9, 2, 0, 4, 1, 3, 6, 8},
};

START_TEST(test_shuffle_10_matches_python)
{
    struct py_random r;
    const struct seed_case *c = seeded(&r, _i);
    size_t x[10];
    for (size_t i = 0; i < COUNT(x); i++)
        x[i] = i;
    py_random_shuffle(&r, x, COUNT(x));
    for (size_t i = 0; i < COUNT(x); i++)
        ck_assert_msg(x[i] == expected_shuffle_10[c->row][i],
                      "x[%zu]: got %zu, want %zu", i, x[i], expected_shuffle_10[c->row][i]);
}
END_TEST

/* What the program does: seed, shuffle the 60000 training indices, then
 * shuffle the 10000 test indices with the same generator.  The head of each
 * list is settled last, so it depends on every draw of the shuffle.
 * python3 -c 'import random as R; [print(R.seed(s) or R.shuffle(x := list(range(60000))) or "{%s}," % ", ".join(map(str, x[:10]))) for s in (1337, 0, 2**40+5, 2**32, -2**63)]' */
static const size_t expected_train_head[PYTHON_ROWS][10] = {
    {25940, 59654, 3083, 9442, 55181, 59135, 51768, 47034, 25734, 5564},
    {24413, 42772, 6584, 51319, 6641, 34757, 4076, 50822, 42060, 7211},
    {17128, 1788, 40671, 16512, 944, 3832, 27696, 13450, 5613, 52865},
    {35399, 30927, 15359, 39453, 14961, 45826, 18715, 10724, 32155, 44131},
    {28874, 36079, 55713, 1119, 11704, 1126, 54067, 5755, 33637, 41225},
};

/* python3 -c 'import random as R; [print(R.seed(s) or R.shuffle(list(range(60000))) or R.shuffle(x := list(range(10000))) or "{%s}," % ", ".join(map(str, x[:10]))) for s in (1337, 0, 2**40+5, 2**32, -2**63)]' */
static const size_t expected_test_head[PYTHON_ROWS][10] = {
    {7043, 7253, 170, 1326, 602, 4606, 7789, 723, 2861, 2381},
    {3275, 1993, 3047, 6346, 9215, 821, 8949, 723, 226, 1661},
    {5371, 6614, 6744, 3035, 2636, 349, 8313, 6735, 125, 967},
    {4855, 5434, 893, 254, 3861, 5742, 4251, 3567, 7282, 471},
    {798, 8348, 1546, 9598, 7381, 9367, 7138, 7200, 3688, 6262},
};

static void shuffle_and_check_head(struct py_random *r, size_t n,
                                   const size_t want_head[10], const char *what)
{
    size_t *x = identity(n);
    py_random_shuffle(r, x, n);
    for (size_t i = 0; i < 10; i++)
        ck_assert_msg(x[i] == want_head[i], "%s[%zu]: got %zu, want %zu",
                      what, i, x[i], want_head[i]);
    assert_is_permutation(x, n);
    free(x);
}

START_TEST(test_training_then_test_shuffle_matches_python)
{
    struct py_random r;
    const struct seed_case *c = seeded(&r, _i);
    shuffle_and_check_head(&r, 60000, expected_train_head[c->row], "train");
    shuffle_and_check_head(&r, 10000, expected_test_head[c->row], "test");
}
END_TEST

START_TEST(test_shuffle_of_fewer_than_two_draws_nothing)
{
    /* random.shuffle of a 0- or 1-element list consumes no output. */
    struct py_random shuffled, untouched;
    py_random_seed(&shuffled, 1337);
    py_random_seed(&untouched, 1337);
    size_t one = 42;
    py_random_shuffle(&shuffled, NULL, 0);
    py_random_shuffle(&shuffled, &one, 1);
    ck_assert_uint_eq(one, 42);
    ck_assert_uint_eq(py_random_next32(&shuffled), py_random_next32(&untouched));
}
END_TEST

/* ------------------------------------------------ runner */

static Suite *rng_suite(void)
{
    Suite *s = suite_create("rng");

    TCase *reference = tcase_create("mt19937");
    tcase_add_test(reference, test_init_genrand_matches_reference);
    tcase_add_test(reference, test_init_by_array_matches_reference);
    suite_add_tcase(s, reference);

    TCase *python = tcase_create("cpython");
    int cases = (int)COUNT(seed_cases);
    tcase_add_loop_test(python, test_random_matches_python, 0, cases);
    tcase_add_loop_test(python, test_uniform_matches_python, 0, cases);
    tcase_add_loop_test(python, test_getrandbits_matches_python, 0, cases);
    tcase_add_loop_test(python, test_randbelow_matches_python, 0, cases);
    tcase_add_loop_test(python, test_randbelow_2_32_rejects_like_python, 0,
                        (int)COUNT(randbelow_2_32_cases));
    tcase_add_loop_test(python, test_shuffle_10_matches_python, 0, cases);
    tcase_add_loop_test(python, test_training_then_test_shuffle_matches_python, 0, cases);
    tcase_add_test(python, test_shuffle_of_fewer_than_two_draws_nothing);
    suite_add_tcase(s, python);

    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(rng_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
