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

/* x86 SIMD instances (GCC, clang). They also fuse multiply-adds: clang
 * contracts a + b*c within an expression by default; GCC needs fp-contract
 * (its -std=c99 default is off), set per function. So an AVX2 / AVX-512 CPU
 * rounds once per multiply-add and the baseline twice; either way the
 * result is the same for every thread count. FC_DIRECT_MAX_ISA caps the
 * instance used (0 baseline, 1 AVX2, 2 AVX-512), e.g. for benchmarks. */
#ifndef FC_DIRECT_MAX_ISA
#define FC_DIRECT_MAX_ISA 2
#endif
#if !defined(FC_DIRECT_NO_MULTIVERSION) && (defined(__GNUC__) || defined(__clang__)) \
    && (defined(__x86_64__) || defined(__i386__))
#define FC_DIR_X86 1
#if defined(__clang__)
#define FC_DIR_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define FC_DIR_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
#else
#define FC_DIR_TARGET_AVX2 __attribute__((target("avx2,fma"), optimize("fp-contract=fast")))
#define FC_DIR_TARGET_AVX512 \
    __attribute__((target("avx512f,avx2,fma"), optimize("fp-contract=fast")))
#endif
#else
#define FC_DIR_X86 0
#endif

/* Most taps fused into one pass over an output plane (dir_taps has a case
 * for each count up to this). */
#define FC_DIR_MAXTAPS 4
/* Independent partial sums in a dot product (lets the compiler vectorise a
 * reduction without -ffast-math; the summation order stays fixed). The
 * combining expressions in the .inc assume 8. */
#define FC_DIR_LANES 8
/* Bytes of padded slabs backward-weight may hold at once (samples are
 * processed in chunks that fit; at least one sample per chunk). */
#define FC_DIR_BWD_WEIGHT_BUDGET ((int64_t)32 << 20)

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
static inline void direct_range(int64_t off, int64_t step, int64_t extent, int64_t count,
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

/* How the kernels lay out their padded slabs (see conv_direct.inc). */
typedef struct {
    int pad_x;          /* x is copied into zero-padded (Hp, Wp) planes */
    int flat;           /* unit stride: a whole plane is one loop */
    int widen_dy;       /* backward-weight, flat: dy copied to width Wp */
    int64_t Hp, Wp;     /* x slab: every tap of every output lies inside */
    int64_t Hd, Wd;     /* backward-data dy slab (unit stride) */
    int64_t *offs;      /* R*S flat tap offsets r*dh*Wp + s*dw in the x slab */
    int64_t *offs_bd;   /* R*S mirrored offsets (R-1-r)*dh*Wd + (S-1-s)*dw */
} dir_layout;

enum { DIR_FWD, DIR_BWD_DATA, DIR_BWD_WEIGHT };

static void direct_layout_free(dir_layout *L)
{
    free(L->offs);
    free(L->offs_bd);
    L->offs = L->offs_bd = NULL;
}

/* a * b (both >= 0) into *out; 0 when it does not fit in int64. */
static int direct_mul(int64_t a, int64_t b, int64_t *out)
{
    if (a != 0 && b > INT64_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* Fill *L for the pass `which` and report the workspace it needs in elements:
 * per thread for DIR_FWD / DIR_BWD_DATA, per sample for DIR_BWD_WEIGHT.
 * FC_ENOMEM when that size (or the offset tables) cannot be had. */
static fc_status direct_layout(const fc_conv_geom *g, dir_layout *L, int which, int64_t *elems)
{
    const int64_t R = g->R, S = g->S, RS = R * S;
    const int64_t Cg = g->C / g->groups, Kg = g->K / g->groups;
    memset(L, 0, sizeof *L);
    /* (R-1)*dh < H + pad_top + pad_bottom, likewise for S: no overflow */
    const int64_t span_h = (R - 1) * g->dil_h, span_w = (S - 1) * g->dil_w;
    if (which == DIR_BWD_DATA) {
        if (span_h > INT64_MAX - g->H || span_w > INT64_MAX - g->W) return FC_ENOMEM;
        L->Hd = g->H + span_h;
        L->Wd = g->W + span_w;
    }
    /* Hp <= H + pad_top + pad_bottom (and Wp likewise), so these fit. */
    L->Hp = (g->P - 1) * g->stride_h + span_h + 1;
    L->Wp = (g->Q - 1) * g->stride_w + span_w + 1;
    L->flat = g->stride_h == 1 && g->stride_w == 1;
    /* x already has the slab's layout: no padding and rows of width Wp */
    L->pad_x = !(g->pad_h == 0 && g->pad_w == 0 && L->Wp == g->W && L->Hp <= g->H);
    L->widen_dy = which == DIR_BWD_WEIGHT && L->flat && L->Wp != g->Q;

    int64_t e = 0, t1, t2;
    int ok = 1;
    if (which == DIR_FWD) {
        if (L->pad_x) ok = direct_mul(L->Hp, L->Wp, &t1) && direct_mul(t1, Cg, &e);
        if (ok && L->flat && L->Wp != g->Q) {
            ok = direct_mul(g->P, L->Wp, &t2) && t2 <= INT64_MAX - e;
            if (ok) e += t2;
        }
    } else if (which == DIR_BWD_DATA) {
        ok = direct_mul(L->Hd, L->Wd, &t1) && direct_mul(t1, Kg, &e);
        if (ok && L->Wd != g->W) {
            ok = direct_mul(g->H, L->Wd, &t2) && t2 <= INT64_MAX - e;
            if (ok) e += t2;
        }
    } else {
        if (L->pad_x) ok = direct_mul(L->Hp, L->Wp, &t1) && direct_mul(t1, g->C, &e);
        if (ok && L->widen_dy) {
            ok = direct_mul(g->P, L->Wp, &t1) && direct_mul(t1, g->K, &t2)
                 && t2 <= INT64_MAX - e;
            if (ok) e += t2;
        }
    }
    if (!ok) return FC_ENOMEM;

    /* The offsets stay below the slab's element count, checked above (or
     * below H*W when x is used in place). */
    int64_t *o = (int64_t *)malloc((size_t)RS * sizeof(int64_t));
    if (o == NULL) return FC_ENOMEM;
    for (int64_t r = 0; r < R; r++)
        for (int64_t s = 0; s < S; s++) {
            if (which == DIR_BWD_DATA)
                o[r * S + s] = (R - 1 - r) * g->dil_h * L->Wd + (S - 1 - s) * g->dil_w;
            else
                o[r * S + s] = r * g->dil_h * L->Wp + s * g->dil_w;
        }
    if (which == DIR_BWD_DATA) L->offs_bd = o;
    else L->offs = o;
    *elems = e;
    return FC_OK;
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
