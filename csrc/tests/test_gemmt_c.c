/*
 * test_gemmt_c.c: stand-alone C check of the transposed GEMM convolution
 * (conv_gemmt.h): for random geometries (groups 1; stride, padding,
 * dilation, 1x1 and larger kernels, batches) and every SIMD level the CPU
 * runs, fc_conv_gemmt_fwd over channel pieces [k0, k1) (k0 on the kernel's
 * panels) must give bitwise what fc_conv2d_fwd_gemm gives, with and without
 * bias, in float and double, and so must pieces of output pixels over every
 * channel (fc_conv_gemmt_fwd_px); bad pieces are refused (FC_EINVAL) without a
 * write. Built and run by tools/ctests.sh; by hand from the repository root:
 *   gcc -std=c99 -O1 -g -Wall -Wextra -fopenmp -Icsrc csrc/tests/test_gemmt_c.c \
 *       csrc/[a-z]*.c -o /tmp/tgt -lm && /tmp/tgt
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fastconv.h"
#include "conv_gemmt.h"

#include "fc_check.h"
static int64_t rint_in(int64_t lo, int64_t hi) { return lo + (int64_t)(rng_next() % (uint64_t)(hi - lo + 1)); }
/* values in [-1, 1) with 10 random bits: the sums round, so bitwise equality
 * means the same chains */
static double rval(void) { return (double)(int64_t)(rng_next() % 1024) / 512.0 - 1.0; }

#define TEST_TYPE(T, SFX)                                                                  \
static void test_case_##SFX(const fc_conv_geom *g, int with_bias)                          \
{                                                                                          \
    const int64_t nx = g->N * g->C * g->H * g->W, nw = g->K * g->C * g->R * g->S;          \
    const int64_t ny = g->N * g->K * g->P * g->Q, CRS = g->C * g->R * g->S;                \
    T *x = (T *)malloc((size_t)nx * sizeof(T)), *w = (T *)malloc((size_t)nw * sizeof(T)); \
    T *b = (T *)malloc((size_t)g->K * sizeof(T));                                         \
    T *want = (T *)malloc((size_t)ny * sizeof(T)), *got = (T *)malloc((size_t)ny * sizeof(T)); \
    for (int64_t i = 0; i < nx; i++) x[i] = (T)rval();                                     \
    for (int64_t i = 0; i < nw; i++) w[i] = (T)rval();                                     \
    for (int64_t i = 0; i < g->K; i++) b[i] = (T)rval();                                   \
    const T *bias = with_bias ? b : NULL;                                                  \
    const fc_gemm_kernel *kn = fc_gemm_kernel_##SFX();                                     \
    const int64_t nr = fc_gemm_kernel_nr(kn);                                              \
    void *pk = malloc(fc_conv_gemmt_packed_bytes(kn, g->K, CRS));                          \
    CHECK(pk != NULL && fc_conv_gemmt_pack_w(kn, g->K, CRS, w, pk) == FC_OK, "pack");      \
    CHECK(fc_conv2d_fwd_gemm_##SFX(g, x, w, bias, want, 2) == FC_OK, "gemm");              \
    for (int64_t i = 0; i < ny; i++) got[i] = (T)-7;                                       \
    /* the channels in pieces of whole panels, the last one partial */                     \
    int64_t k0 = 0;                                                                        \
    while (k0 < g->K) {                                                                    \
        int64_t k1 = k0 + nr * rint_in(1, 3);                                              \
        if (k1 > g->K) k1 = g->K;                                                          \
        CHECK(fc_conv_gemmt_fwd_##SFX(kn, g, x, pk, bias, got, k0, k1) == FC_OK, "run");   \
        k0 = k1;                                                                           \
    }                                                                                      \
    int64_t bad = 0;                                                                       \
    for (int64_t i = 0; i < ny; i++) bad += memcmp(&got[i], &want[i], sizeof(T)) != 0;     \
    CHECK(bad == 0, #SFX " N %d C %d H %d W %d K %d R %d S %d stride %d pad %d dil %d bias %d:" \
          " %d of %d differ", (int)g->N, (int)g->C, (int)g->H, (int)g->W, (int)g->K,       \
          (int)g->R, (int)g->S, (int)g->stride_h, (int)g->pad_h, (int)g->dil_h, with_bias, \
          (int)bad, (int)ny);                                                              \
    /* pixel pieces (fc_conv_gemmt_fwd_px) of random lengths, every channel: the same */   \
    for (int64_t i = 0; i < ny; i++) got[i] = (T)-7;                                       \
    {                                                                                      \
        const int64_t PQ = g->P * g->Q;                                                    \
        int64_t m0 = 0;                                                                    \
        while (m0 < PQ) {                                                                  \
            int64_t m1 = m0 + rint_in(1, 20);                                              \
            if (m1 > PQ) m1 = PQ;                                                          \
            CHECK(fc_conv_gemmt_fwd_px_##SFX(kn, g, x, pk, bias, got, 0, g->K, m0, m1) == FC_OK, \
                  "run px");                                                               \
            m0 = m1;                                                                       \
        }                                                                                  \
        bad = 0;                                                                           \
        for (int64_t i = 0; i < ny; i++) bad += memcmp(&got[i], &want[i], sizeof(T)) != 0; \
        CHECK(bad == 0, #SFX " pixel pieces: %d of %d differ", (int)bad, (int)ny);         \
        for (int64_t i = 0; i < ny; i++) got[i] = (T)-7;                                   \
        CHECK(fc_conv_gemmt_fwd_px_##SFX(kn, g, x, pk, bias, got, 0, g->K, 0, PQ + 1)     \
              == FC_EINVAL, "m1");                                                         \
        CHECK(fc_conv_gemmt_fwd_px_##SFX(kn, g, x, pk, bias, got, 0, g->K, 2, 1)          \
              == FC_EINVAL, "m0 > m1");                                                    \
        CHECK(fc_conv_gemmt_fwd_px_##SFX(kn, g, x, pk, bias, got, 0, g->K, -1, 1)         \
              == FC_EINVAL, "m0");                                                         \
    }                                                                                      \
    /* a piece off the panels, past the channels or reversed: refused, nothing written */  \
    for (int64_t i = 0; i < ny; i++) got[i] = (T)-7;                                       \
    if (nr > 1 && g->K > 1)                                                                \
        CHECK(fc_conv_gemmt_fwd_##SFX(kn, g, x, pk, bias, got, 1, g->K) == FC_EINVAL, "k0"); \
    CHECK(fc_conv_gemmt_fwd_##SFX(kn, g, x, pk, bias, got, 0, g->K + 1) == FC_EINVAL, "k1"); \
    CHECK(fc_conv_gemmt_fwd_##SFX(kn, g, x, NULL, bias, got, 0, g->K) == FC_EINVAL, "pk"); \
    bad = 0;                                                                               \
    for (int64_t i = 0; i < ny; i++) bad += got[i] != (T)-7;                               \
    CHECK(bad == 0, "a refused call wrote %d elements", (int)bad);                         \
    free(pk); free(x); free(w); free(b); free(want); free(got);                            \
}
TEST_TYPE(float, f32)
TEST_TYPE(double, f64)

int main(void)
{
    const int levels[3] = {FC_ISA_GENERIC, FC_ISA_AVX2, FC_ISA_AVX512};
    const int top = fc_set_isa(FC_ISA_AVX512);
    for (int li = 0; li < 3; li++) {
        if (levels[li] > top) break;
        fc_set_isa(levels[li]);
        for (int it = 0; it < 12; it++) {
            fc_conv_geom g;
            const int64_t R = rint_in(1, 3), S = rint_in(1, 3), sh = rint_in(1, 2);
            const int64_t sw = rint_in(1, 2), dl = rint_in(1, 2), ph = rint_in(0, 2);
            const int64_t pw = rint_in(0, 2);
            const int64_t H = rint_in(dl * (R - 1) + 1, 12), W = rint_in(dl * (S - 1) + 1, 12);
            if (fc_conv_geom_init(&g, rint_in(1, 2), rint_in(1, 40), H, W, rint_in(1, 70), R, S,
                                  1, sh, sw, ph, ph, pw, pw, dl, dl) != FC_OK) {
                CHECK(0, "geometry");
                continue;
            }
            test_case_f32(&g, (int)(it & 1));
            test_case_f64(&g, (int)((it >> 1) & 1));
        }
    }
    fc_set_isa(top);
    printf("test_gemmt_c: %d checks, %d failures\n", n_check, n_fail);
    return n_fail != 0;
}
