/*
 * test_conv_pw_c.c: standalone check of conv_pw.c (the pointwise 1x1 kernel)
 * against a naive loop in double: random N, C (1 included), K and planes (sizes
 * that are no multiple of the tiles or vectors, planes narrower than a vector),
 * both dtypes, every SIMD variant the CPU has (fc_set_isa); fc_pw_pixels on a
 * random pixel range of one image with every epilogue step kind (affine,
 * bias, add, relu, leaky, clip, sigmoid, tanh), nothing written outside the
 * range, and the range cut in two pieces bitwise the same as in one; the
 * weight packing's layout; bad arguments and unsupported geometries give
 * FC_EINVAL. Integer-valued data keep the sums exact, so without an epilogue
 * the comparison is exact. Built and run by tools/ctests.sh; by hand:
 *   gcc -std=c99 -O2 -Wall -Wextra -fopenmp -Icsrc csrc/tests/test_conv_pw_c.c \
 *       csrc/[a-z]*.c -lm -o /tmp/tpw && /tmp/tpw
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fastconv.h"
#include "conv_pw.h"

#define FC_TEST_SEED 0x9C3B1F2E5A7D4C61ull
#include "fc_check.h"
#include "fc_epi_ref.h"

#define FC_CAT_(a, b) a##b
#define FC_CAT(a, b) FC_CAT_(a, b)
#define FC_NAME(base) FC_CAT(base##_, SFX)
#define STR_(s) #s
#define STR(s) STR_(s)

static int64_t rnd(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rng_next() % (uint64_t)(hi - lo + 1));
}

#define T float
#define SFX f32
#include "test_conv_pw_c.inc"
#undef T
#undef SFX
#define T double
#define SFX f64
#include "test_conv_pw_c.inc"
#undef T
#undef SFX

static void error_cases(void)
{
    fc_conv_geom g;
    float x[64] = {0}, w[64] = {0}, wp[64] = {0}, y[64];
    fc_conv_geom_init(&g, 1, 2, 4, 4, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1);  /* 3x3 */
    CHECK(!fc_pw_supported(&g), "3x3 supported");
    CHECK(fc_pw_pixels_f32(&g, x, wp, NULL, y, 0, 0, 4, NULL, 0) == FC_EINVAL, "3x3 accepted");
    fc_conv_geom_init(&g, 1, 2, 4, 4, 2, 1, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1);  /* stride 2 */
    CHECK(!fc_pw_supported(&g), "stride 2 supported");
    fc_conv_geom_init(&g, 1, 2, 4, 4, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1);  /* padding */
    CHECK(!fc_pw_supported(&g), "padding supported");
    fc_conv_geom_init(&g, 1, 2, 4, 4, 2, 1, 1, 2, 1, 1, 0, 0, 0, 0, 1, 1);  /* groups 2 */
    CHECK(!fc_pw_supported(&g), "groups 2 supported");
    fc_conv_geom_init(&g, 1, 2, 4, 4, 2, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1);
    CHECK(fc_pw_supported(&g), "1x1 not supported");
    CHECK(fc_pw_pixels_f32(&g, x, wp, NULL, y, 1, 0, 4, NULL, 0) == FC_EINVAL, "image past N");
    CHECK(fc_pw_pixels_f32(&g, x, wp, NULL, y, 0, 0, 17, NULL, 0) == FC_EINVAL, "pixels past PQ");
    CHECK(fc_pw_pixels_f32(&g, x, NULL, NULL, y, 0, 0, 4, NULL, 0) == FC_EINVAL, "wp NULL");
    CHECK(fc_pw_pixels_f32(&g, x, wp, NULL, y, 0, 0, 4, NULL, 1) == FC_EINVAL, "epi NULL");
    fc_dw_epi e = {FC_DW_ADD, NULL, NULL, NULL, 0, 0};
    CHECK(fc_pw_pixels_f32(&g, x, wp, NULL, y, 0, 0, 4, &e, 1) == FC_EINVAL, "add without src");
    e.kind = 99;
    CHECK(fc_pw_pixels_f32(&g, x, wp, NULL, y, 0, 0, 4, &e, 1) == FC_EINVAL, "bad step kind");
    CHECK(fc_pw_pixels_f32(&g, x, wp, NULL, y, 0, 3, 3, NULL, 0) == FC_OK, "empty range");
    CHECK(fc_pw_packed_elems(0, 3) == 0 && fc_pw_packed_elems(9, 3) == 2 * 3 * FC_PW_MR,
          "packed sizes");
    /* the layout: panel kb, channel c, lane m = w[kb*MR + m][c], zero past K */
    for (int i = 0; i < 27; i++) w[i] = (float)(i + 1);
    fc_pw_pack_w_f32(9, 3, w, wp);
    int ok = 1;
    for (int kb = 0; kb < 2; kb++)
        for (int c = 0; c < 3; c++)
            for (int m = 0; m < FC_PW_MR; m++) {
                const int k = kb * FC_PW_MR + m;
                ok &= wp[(kb * 3 + c) * FC_PW_MR + m] == (k < 9 ? w[k * 3 + c] : 0.0f);
            }
    CHECK(ok, "packed layout");
}

int main(int argc, char **argv)
{
    const int iters = argc > 1 ? atoi(argv[1]) : 200;
    error_cases();
    const int prev = fc_isa_level();
    for (int lv = FC_ISA_GENERIC; lv <= FC_ISA_AVX512; lv++) {
        if (fc_set_isa(lv) != lv) continue;
        for (int i = 0; i < iters; i++) {
            run_f32(i);
            run_f64(i);
        }
    }
    fc_set_isa(prev);
    printf("test_conv_pw_c: %s (%d failures, %d checks)\n", n_fail ? "FAILED" : "ok", n_fail, n_check);
    return n_fail ? 1 : 0;
}
