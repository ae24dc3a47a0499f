/*
 * pool.c: max and average pooling, forward and backward, for float and
 * double (bodies in pool.inc, which includes pool_bwd.inc and pool_entry.inc).
 *
 * SIMD: the row loops of max / average pooling are written with GCC / clang
 * vector extensions (max) or as plain unit-stride loops the compiler
 * vectorises (average), and pool.inc is compiled once per ISA: a portable
 * 16-byte instance (SSE2 on x86-64, whatever the target has elsewhere) and,
 * on x86 with GCC or clang, AVX2 and AVX-512 instances through function
 * target attributes (no -march flags: one build runs on every x86-64). The
 * instance is picked per call by pool_isa(): the best the CPU runs, capped
 * by fastconv's ISA level (runtime.c: FASTCONV_ISA=generic|avx2|avx512, or
 * fc_set_isa), so tests can force each variant. Pooling only
 * compares, adds and divides (no fused multiply-add), so every variant gives
 * bitwise identical results, also for every thread count.
 *
 * Vector paths: VL adjacent output columns at a time, for the columns whose
 * windows lie inside the input and stride_w 1 or 2 (a tap of VL outputs is
 * then one load, or two loads de-interleaved); the few border columns, and
 * other strides, take a scalar loop with exactly the same arithmetic.
 */
#include <stdlib.h>
#include <string.h>
#include "fc_internal.h"

#define FC_POOL_INLINE static FC_ALWAYS_INLINE

#if !defined(FC_POOL_NO_MULTIVERSION) && FC_HAVE_VECTOR_EXT && FC_X86
#define FC_POOL_X86 1
#else
#define FC_POOL_X86 0
#endif

/* SIMD level for this call: the ISA level (runtime.c, already capped by the
 * CPU's features and by FASTCONV_ISA). */
#if FC_POOL_X86
static int pool_isa(void) { return fc_isa_level(); }
#endif

/* 1 when the product of the n non-negative d[i] fits in int64 (workspace
 * sizes; the geometry itself is checked by fc_pool_geom_check). */
static int pool_prod_fits(const int64_t *d, int n)
{
    int64_t acc = 1;
    for (int i = 0; i < n; i++) {
        if (d[i] != 0 && acc > INT64_MAX / d[i]) return 0;
        acc *= d[i];
    }
    return 1;
}

/* Columns q in [*qa, *qb) whose whole window lies inside [0, W):
 * q*sw - pw >= 0 and q*sw - pw + (kw-1)*dil_w <= W - 1 (may be empty).
 * These take the max kernels' vector path. */
static void pool_interior_cols(const fc_pool_geom *g, int64_t *qa, int64_t *qb)
{
    const int64_t last = g->W - 1 - (g->kw - 1) * g->dil_w + g->pad_w;  /* max q*sw */
    int64_t a = (g->pad_w + g->stride_w - 1) / g->stride_w;
    int64_t b = last >= 0 ? last / g->stride_w + 1 : 0;
    if (a > g->Q) a = g->Q;
    if (b > g->Q) b = g->Q;
    if (b < a) b = a;
    *qa = a;
    *qb = b;
}

/* Average pooling window along one axis, as PyTorch: the window
 * [start, start + k) is first cut at extent + pad (the far padding), its
 * length then is the count_include_pad divisor factor; it is then clipped to
 * the input [0, extent) for the summation. */
static inline void avg_window(int64_t start, int64_t k, int64_t extent, int64_t pad,
                              int64_t *lo, int64_t *hi, int64_t *padded_len)
{
    int64_t end = start + k;
    if (end > extent + pad) end = extent + pad;
    *padded_len = end - start;
    *lo = start < 0 ? 0 : start;
    *hi = end > extent ? extent : end;
}

/*
 * Column tables shared by every plane of one call (pool_tables): tap j of
 * output column q reads input column q*stride_w + c[j], c[j] = j*dil_w -
 * pad_w; wfac[q] is the w-factor of the average divisor of column q (the
 * window's length cut at W + pad_w with count_include_pad, else its length
 * inside [0, W)).
 */
typedef struct {
    int64_t *c;                 /* kw entries */
    int64_t *wfac;              /* Q entries (average pooling only) */
} pool_tab;

static void pool_tables_free(pool_tab *t)
{
    free(t->c);
    free(t->wfac);
    t->c = t->wfac = NULL;
}

static fc_status pool_tables(const fc_pool_geom *g, int want_wfac, pool_tab *t)
{
    const int64_t kw = g->kw, Q = g->Q;
    t->c = t->wfac = NULL;
    if ((uint64_t)kw > SIZE_MAX / sizeof(int64_t) || (uint64_t)Q > SIZE_MAX / sizeof(int64_t))
        return FC_ENOMEM;
    t->c = (int64_t *)malloc((size_t)kw * sizeof(int64_t));
    if (t->c == NULL) return FC_ENOMEM;
    for (int64_t j = 0; j < kw; j++) t->c[j] = j * g->dil_w - g->pad_w;
    if (want_wfac) {
        t->wfac = (int64_t *)malloc((size_t)Q * sizeof(int64_t));
        if (t->wfac == NULL) {
            pool_tables_free(t);
            return FC_ENOMEM;
        }
        for (int64_t q = 0; q < Q; q++) {
            int64_t w0, w1, wlen;
            avg_window(q * g->stride_w - g->pad_w, kw, g->W, g->pad_w, &w0, &w1, &wlen);
            t->wfac[q] = g->count_include_pad ? wlen : w1 - w0;
        }
    }
    return FC_OK;
}

/* Per-ISA instances of the row kernels (FC_POOL_SIMD pass of pool.inc):
 * FC_ISA names the instance, FC_VB is its vector width in bytes, FC_ATTR its
 * function attributes. FC_TI is the integer type as wide as T, FC_TW its
 * size in bytes. */
#define FC_POOL_SIMD 1

#define T float
#define SFX f32
#define FC_TI int32_t
#define FC_TW 4
#include "pool_isas.inc"
#undef T
#undef SFX
#undef FC_TI
#undef FC_TW

#define T double
#define SFX f64
#define FC_TI int64_t
#define FC_TW 8
#include "pool_isas.inc"
#undef T
#undef SFX
#undef FC_TI
#undef FC_TW
#undef FC_POOL_SIMD

/* The entry points, once per type. */
#define T float
#define SFX f32
#include "pool.inc"
#undef T
#undef SFX

#define T double
#define SFX f64
#include "pool.inc"
#undef T
#undef SFX
