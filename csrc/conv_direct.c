/*
 * conv_direct.c: direct (no im2col, no GEMM) 2-D convolution for float and
 * double: forward, backward-data and backward-weight (+ bias gradient).
 * The bodies live in conv_direct.inc, included once per type below.
 *
 * SIMD: the hot loops are plain C written so the compiler can vectorise
 * them. On x86 with GCC or clang every hot loop is compiled twice, once for
 * the baseline ISA and once with target("avx2,fma"); fc_cpu_has_avx2() picks
 * one at run time, so one build runs on every x86-64. Define
 * FC_DIRECT_NO_MULTIVERSION to build the baseline path only. Both paths do
 * the same operations in the same order; they can differ only by FMA
 * contraction, which GCC does not perform under -std=c99 (ISO mode).
 *
 * Determinism: every output element is computed by exactly one thread, in
 * an order that does not depend on the thread count, so results are bitwise
 * identical for any nthreads.
 */
#include <stdlib.h>
#include <string.h>
#include "fc_internal.h"

#if defined(__GNUC__) || defined(__clang__)
#define FC_DIR_INLINE static inline __attribute__((always_inline))
#else
#define FC_DIR_INLINE static inline
#endif

#if !defined(FC_DIRECT_NO_MULTIVERSION) && (defined(__GNUC__) || defined(__clang__)) \
    && (defined(__x86_64__) || defined(__i386__))
#define FC_DIR_AVX2 1
#define FC_DIR_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define FC_DIR_AVX2 0
#endif

/* Most taps of one kernel row fused into a single pass over an output row. */
#define FC_DIR_MAXTAPS 4
/* Independent partial sums in a dot product (lets the compiler vectorise a
 * reduction without -ffast-math; the summation order stays fixed). */
#define FC_DIR_LANES 8

/* Sanity of a geometry as these kernels use it. fc_conv_geom_init already
 * checked all of it (including that every index fits in int64); this only
 * guards against a hand-filled struct. */
static fc_status direct_check_geom(const fc_conv_geom *g)
{
    if (g == NULL) return FC_EINVAL;
    if (g->N < 0 || g->C < 1 || g->H < 1 || g->W < 1) return FC_EINVAL;
    if (g->K < 1 || g->R < 1 || g->S < 1 || g->groups < 1) return FC_EINVAL;
    if (g->stride_h < 1 || g->stride_w < 1 || g->dil_h < 1 || g->dil_w < 1) return FC_EINVAL;
    if (g->pad_h < 0 || g->pad_w < 0 || g->P < 1 || g->Q < 1) return FC_EINVAL;
    if (g->C % g->groups != 0 || g->K % g->groups != 0) return FC_EINVAL;
    return FC_OK;
}

/* The j in [0, count) with 0 <= off + j*step < extent form one interval
 * [*lo, *hi) (empty when lo == hi), found with one ceil and one floor
 * division rather than a bounds test per element. step >= 1. */
FC_DIR_INLINE void direct_range(int64_t off, int64_t step, int64_t extent, int64_t count,
                                int64_t *lo, int64_t *hi)
{
    int64_t l = 0, h = count;
    if (off < 0) l = (-off + step - 1) / step;               /* ceil(-off / step) */
    if (off >= extent) h = 0;
    else if ((extent - 1 - off) / step + 1 < count) h = (extent - 1 - off) / step + 1;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

#define T float
#define SFX f32
#include "conv_direct.inc"
#undef T
#undef SFX

#define T double
#define SFX f64
#include "conv_direct.inc"
#undef T
#undef SFX
