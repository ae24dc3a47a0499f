/*
 * test_conv_stem_c.c: standalone check of conv_stem.c (the few-input-channel
 * "stem" kernel) against a naive loop computed in double: random images
 * (rows narrower than any vector up to 40 wide), C = 1..4 input channels,
 * 1..19 output channels (blocks of 8, 4 and 1), kernels 1..7 x 1..7, strides
 * 1 and 2 in each direction, asymmetric padding 0..3, both dtypes, every
 * SIMD variant the CPU has (fc_set_isa); fc_stem_piece on random image and
 * channel ranges with every epilogue step kind (affine, bias, add, relu,
 * leaky, clip, sigmoid, tanh), nothing written outside the range; the whole
 * output computed as two channel halves equals one piece bitwise; bad
 * arguments and unsupported geometries (C = 5, groups 2, dilation 2,
 * stride 3) give FC_EINVAL. Integer-valued data keep the sums exact, so
 * before the epilogue the comparison is exact. Built and run by
 * tools/ctests.sh; by hand:
 *   gcc -std=c99 -O2 -Wall -Wextra -fopenmp -Icsrc csrc/tests/test_conv_stem_c.c \
 *       csrc/[a-z]*.c -lm -o /tmp/tstem && /tmp/tstem
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fastconv.h"
#include "conv_stem.h"

#define FC_TEST_SEED 0x5DEECE66Dull
#include "fc_check.h"
#include "fc_epi_ref.h"

static int64_t rnd(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rng_next() % (uint64_t)(hi - lo + 1));
}

/* y (N, K, P, Q) in double, no epilogue */
static void naive(const fc_conv_geom *g, const double *x, const double *w, const double *b,
                  double *y)
{
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t k = 0; k < g->K; k++)
            for (int64_t p = 0; p < g->P; p++)
                for (int64_t q = 0; q < g->Q; q++) {
                    double s = b[k];
                    for (int64_t c = 0; c < g->C; c++)
                        for (int64_t r = 0; r < g->R; r++)
                            for (int64_t t = 0; t < g->S; t++) {
                                const int64_t ih = p * g->stride_h + r - g->pad_h;
                                const int64_t iw = q * g->stride_w + t - g->pad_w;
                                if (ih >= 0 && ih < g->H && iw >= 0 && iw < g->W)
                                    s += w[((k * g->C + c) * g->R + r) * g->S + t]
                                         * x[((n * g->C + c) * g->H + ih) * g->W + iw];
                            }
                    y[((n * g->K + k) * g->P + p) * g->Q + q] = s;
                }
}

#define T float
#define SFX f32
#include "test_conv_stem_c.inc"
#undef T
#undef SFX
#define T double
#define SFX f64
#include "test_conv_stem_c.inc"
#undef T
#undef SFX

static void error_cases(void)
{
    fc_conv_geom g;
    float x[512] = {0}, w[512] = {0}, y[512];
    fc_conv_geom_init(&g, 1, 5, 4, 4, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1);  /* C = 5 */
    CHECK(!fc_stem_supported(&g), "C = 5 supported");
    CHECK(fc_stem_piece_f32(&g, x, w, NULL, y, 0, 1, 0, 2, NULL, 0) == FC_EINVAL, "C = 5 piece");
    fc_conv_geom_init(&g, 1, 4, 4, 4, 2, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1);  /* groups 2 */
    CHECK(!fc_stem_supported(&g), "groups 2 supported");
    fc_conv_geom_init(&g, 1, 2, 6, 6, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 2, 2);  /* dilation 2 */
    CHECK(!fc_stem_supported(&g), "dilation 2 supported");
    fc_conv_geom_init(&g, 1, 2, 7, 7, 2, 3, 3, 1, 3, 3, 1, 1, 1, 1, 1, 1);  /* stride 3 */
    CHECK(!fc_stem_supported(&g), "stride 3 supported");
    fc_conv_geom_init(&g, 1, 3, 4, 4, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1);
    CHECK(fc_stem_supported(&g), "3 -> 2 3x3 not supported");
    CHECK(fc_stem_piece_f32(&g, x, w, NULL, y, 0, 2, 0, 2, NULL, 0) == FC_EINVAL, "images past N");
    CHECK(fc_stem_piece_f32(&g, x, w, NULL, y, 0, 1, 0, 3, NULL, 0) == FC_EINVAL, "channels past K");
    CHECK(fc_stem_piece_f32(&g, x, NULL, NULL, y, 0, 1, 0, 2, NULL, 0) == FC_EINVAL, "w NULL");
    CHECK(fc_stem_piece_f32(&g, x, w, NULL, y, 0, 1, 0, 2, NULL, 1) == FC_EINVAL, "epi NULL");
    fc_dw_epi e = {FC_DW_ADD, NULL, NULL, NULL, 0, 0};
    CHECK(fc_stem_piece_f32(&g, x, w, NULL, y, 0, 1, 0, 2, &e, 1) == FC_EINVAL, "add without src");
    e.kind = FC_DW_AFFINE;
    CHECK(fc_stem_piece_f32(&g, x, w, NULL, y, 0, 1, 0, 2, &e, 1) == FC_EINVAL, "affine NULL");
    e.kind = 99;
    CHECK(fc_stem_piece_f32(&g, x, w, NULL, y, 0, 1, 0, 2, &e, 1) == FC_EINVAL, "bad step kind");
    CHECK(fc_stem_piece_f32(&g, x, w, NULL, y, 0, 1, 1, 1, NULL, 0) == FC_OK, "empty range");
}

int main(int argc, char **argv)
{
    const int iters = argc > 1 ? atoi(argv[1]) : 120;
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
    printf("test_conv_stem_c: %s (%d failures, %d checks)\n", n_fail ? "FAILED" : "ok", n_fail,
           n_check);
    return n_fail ? 1 : 0;
}
