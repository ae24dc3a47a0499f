/*
 * test_conv_dw_c.c: standalone check of conv_dw.c (the depthwise kernel)
 * against a naive loop computed in double: random planes (narrower than any
 * vector up to 40 wide), kernels 1..5 x 1..5, strides 1 and 2 in each
 * direction, padding 0..2, both dtypes, every SIMD variant the CPU has
 * (fc_set_isa), 1 vs 2 threads bitwise; fc_dw_planes with every epilogue
 * step kind (affine, bias, add, relu, leaky, clip, sigmoid, tanh) on a
 * sub-range of planes, nothing written outside it; bad arguments and
 * unsupported geometries (dilation 2, stride 3, K != C) give FC_EINVAL.
 * Integer-valued data keep the sums exact, so before the epilogue the
 * comparison is exact. Built and run by tools/ctests.sh; by hand:
 *   gcc -std=c99 -O2 -Wall -Wextra -fopenmp -Icsrc csrc/tests/test_conv_dw_c.c \
 *       csrc/[a-z]*.c -lm -o /tmp/tdw && /tmp/tdw
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fastconv.h"
#include "conv_dw.h"

#define FC_TEST_SEED 0x2545F4914F6CDD1Dull
#include "fc_check.h"
#include "fc_epi_ref.h"

static int64_t rnd(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rng_next() % (uint64_t)(hi - lo + 1));
}

/* y (N, C, P, Q) in double, no epilogue */
static void naive(const fc_conv_geom *g, const double *x, const double *w, const double *b,
                  double *y)
{
    for (int64_t pl = 0; pl < g->N * g->C; pl++) {
        const int64_t k = pl % g->C;
        for (int64_t p = 0; p < g->P; p++)
            for (int64_t q = 0; q < g->Q; q++) {
                double s = b[k];
                for (int64_t r = 0; r < g->R; r++)
                    for (int64_t t = 0; t < g->S; t++) {
                        const int64_t ih = p * g->stride_h + r - g->pad_h;
                        const int64_t iw = q * g->stride_w + t - g->pad_w;
                        if (ih >= 0 && ih < g->H && iw >= 0 && iw < g->W)
                            s += w[k * g->R * g->S + r * g->S + t] * x[(pl * g->H + ih) * g->W + iw];
                    }
                y[(pl * g->P + p) * g->Q + q] = s;
            }
    }
}

#define T float
#define SFX f32
#include "test_conv_dw_c.inc"
#undef T
#undef SFX
#define T double
#define SFX f64
#include "test_conv_dw_c.inc"
#undef T
#undef SFX

static void error_cases(void)
{
    fc_conv_geom g;
    float x[64] = {0}, w[64] = {0}, y[64];
    fc_conv_geom_init(&g, 1, 2, 4, 4, 2, 3, 3, 2, 1, 1, 1, 1, 1, 1, 2, 2);  /* dilation 2 */
    CHECK(!fc_dw_supported(&g), "dilation 2 supported");
    CHECK(fc_conv2d_fwd_dw_f32(&g, x, w, NULL, y, 1) == FC_EINVAL, "dilation 2 accepted");
    fc_conv_geom_init(&g, 1, 2, 7, 7, 2, 3, 3, 2, 3, 3, 1, 1, 1, 1, 1, 1);  /* stride 3 */
    CHECK(!fc_dw_supported(&g), "stride 3 supported");
    fc_conv_geom_init(&g, 1, 2, 4, 4, 4, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1);  /* K = 2C */
    CHECK(!fc_dw_supported(&g), "K != C supported");
    CHECK(fc_dw_planes_f32(&g, x, w, NULL, y, 0, 1, NULL, 0) == FC_EINVAL, "K != C planes");
    fc_conv_geom_init(&g, 1, 2, 4, 4, 2, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1);
    CHECK(fc_dw_supported(&g), "3x3 depthwise not supported");
    CHECK(fc_dw_planes_f32(&g, x, w, NULL, y, 0, 3, NULL, 0) == FC_EINVAL, "planes past N*C");
    CHECK(fc_dw_planes_f32(&g, x, NULL, NULL, y, 0, 1, NULL, 0) == FC_EINVAL, "w NULL");
    CHECK(fc_dw_planes_f32(&g, x, w, NULL, y, 0, 1, NULL, 1) == FC_EINVAL, "epi NULL");
    fc_dw_epi e = {FC_DW_ADD, NULL, NULL, NULL, 0, 0};
    CHECK(fc_dw_planes_f32(&g, x, w, NULL, y, 0, 1, &e, 1) == FC_EINVAL, "add without src");
    e.kind = 99;
    CHECK(fc_dw_planes_f32(&g, x, w, NULL, y, 0, 1, &e, 1) == FC_EINVAL, "bad step kind");
    CHECK(fc_conv2d_fwd_dw_f32(&g, NULL, w, NULL, y, 1) == FC_EINVAL, "x NULL");
    g.N = 0;
    CHECK(fc_conv2d_fwd_dw_f32(&g, NULL, w, NULL, NULL, 2) == FC_OK, "N == 0");
}

int main(int argc, char **argv)
{
    const int iters = argc > 1 ? atoi(argv[1]) : 150;
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
    printf("test_conv_dw_c: %s (%d failures)\n", n_fail ? "FAILED" : "ok", n_fail);
    return n_fail ? 1 : 0;
}
