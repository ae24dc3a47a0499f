/*
 * fc_check.h: what the stand-alone C tests (the test_*.c files beside it)
 * share: the CHECK macro that counts checks and failures and reports the
 * first 30 failures with their place, and the xorshift64 generator behind
 * each test's random cases. A test picks its own seed by defining FC_TEST_SEED before including
 * this file, and ends with `return n_fail != 0;`.
 */
#ifndef FC_CHECK_H
#define FC_CHECK_H

#include <stdint.h>
#include <stdio.h>

#ifndef FC_TEST_SEED
#define FC_TEST_SEED 0x9E3779B97F4A7C15ull
#endif

static int n_fail = 0, n_check = 0;
#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        n_check++;                                                         \
        if (!(cond)) {                                                     \
            n_fail++;                                                      \
            if (n_fail < 30) {                                             \
                fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);       \
                fprintf(stderr, __VA_ARGS__);                              \
                fprintf(stderr, "\n");                                     \
            }                                                              \
        }                                                                  \
    } while (0)

static uint64_t rng_state = FC_TEST_SEED;
static inline uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

#endif
