/*
 * pool.c: max and average pooling, forward and backward, for float and
 * double (bodies in pool.inc).
 */
#include <string.h>
#include "fc_internal.h"

/* 1 when the product of the n non-negative d[i] fits in int64. */
static int pool_prod_fits(const int64_t *d, int n)
{
    int64_t acc = 1;
    for (int i = 0; i < n; i++) {
        if (d[i] != 0 && acc > INT64_MAX / d[i]) return 0;
        acc *= d[i];
    }
    return 1;
}

/* Sanity of a pooling geometry as these kernels use it (fc_pool_geom_init
 * already checked it; this guards against a hand-filled struct). */
static fc_status pool_check_geom(const fc_pool_geom *g)
{
    if (g == NULL) return FC_EINVAL;
    if (g->N < 0 || g->C < 1 || g->H < 1 || g->W < 1 || g->kh < 1 || g->kw < 1) return FC_EINVAL;
    if (g->stride_h < 1 || g->stride_w < 1 || g->dil_h < 1 || g->dil_w < 1) return FC_EINVAL;
    if (g->pad_h < 0 || g->pad_w < 0 || g->P < 1 || g->Q < 1) return FC_EINVAL;
    const int64_t xs[4] = {g->N, g->C, g->H, g->W};
    const int64_t ys[4] = {g->N, g->C, g->P, g->Q};
    if (!pool_prod_fits(xs, 4) || !pool_prod_fits(ys, 4)) return FC_EOVERFLOW;
    return FC_OK;
}

/* The taps j in [0, count) with 0 <= off + j*step < extent form one interval
 * [*lo, *hi) (empty when *lo == *hi). Divisions happen only for windows that
 * cross the border; interior windows take the two cheap compares. */
static inline void pool_range(int64_t off, int64_t step, int64_t extent, int64_t count,
                              int64_t *lo, int64_t *hi)
{
    int64_t l = 0, h = count;
    if (off < 0) l = (-off + step - 1) / step;            /* ceil(-off / step) */
    if (off + (count - 1) * step >= extent)
        h = off >= extent ? 0 : (extent - 1 - off) / step + 1;
    if (l > count) l = count;
    if (h < l) h = l;
    *lo = l;
    *hi = h;
}

/* FC_OK when every pooling window holds at least one real input element,
 * FC_EINVAL otherwise. With dilation a window can fall entirely into the
 * padding or between input elements (e.g. H=2, kernel 2, dilation 3,
 * padding 1: taps at -1 and 2); such a window has no maximum, no index and a
 * zero element count, so it is rejected. O(P + Q). */
static fc_status pool_check_windows(const fc_pool_geom *g)
{
    int64_t lo, hi;
    for (int64_t p = 0; p < g->P; p++) {
        pool_range(p * g->stride_h - g->pad_h, g->dil_h, g->H, g->kh, &lo, &hi);
        if (lo == hi) return FC_EINVAL;
    }
    for (int64_t q = 0; q < g->Q; q++) {
        pool_range(q * g->stride_w - g->pad_w, g->dil_w, g->W, g->kw, &lo, &hi);
        if (lo == hi) return FC_EINVAL;
    }
    return FC_OK;
}

/* Columns q in [*qa, *qb) whose whole window lies inside [0, W):
 * q*sw - pw >= 0 and q*sw - pw + (kw-1)*dil_w <= W - 1 (may be empty).
 * These take the kernels' vectorised interior paths. */
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

/* Columns per block in the interior paths (stack buffers of this length). */
#define FC_AVG_BLOCK 128

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
