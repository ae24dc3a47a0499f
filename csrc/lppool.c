/*
 * lppool.c: power-average (Lp) pooling, PyTorch's lp_pool2d, for float and
 * double; the bodies live in lppool.inc, included once per type below.
 *
 * PyTorch computes lp_pool2d as avg_pool2d(x^p) * (kh*kw), then the 1/p power
 * (through sign(v) * relu(|v|), which is v itself). So for a window with n
 * elements (n < kh*kw only for ceil_mode's clipped last windows):
 *     u = kh*kw / n * sum x^p,      y = u^(1/p).
 * Negative inputs are not made positive: x^p of a negative x is what pow gives
 * (NaN for a non-integer p, negative for odd p), and a negative u gives NaN
 * for any p but 1 (as PyTorch).
 * Gradient: dx += dy * u^(1/p - 1) * kh*kw / n * x^(p-1) over the windows of
 * x, except that a window with u == 0 gives 0 (PyTorch: 0 * inf = NaN).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "fc_internal.h"

/* v^e with PyTorch's shortcuts for the common exponents. */
static inline float lp_pow_f32(float v, float e)
{
    if (e == 1.0f) return v;
    if (e == 2.0f) return v * v;
    if (e == 3.0f) return v * v * v;
    if (e == 0.5f) return sqrtf(v);
    if (e == 0.0f) return 1.0f;
    return powf(v, e);
}

static inline double lp_pow_f64(double v, double e)
{
    if (e == 1.0) return v;
    if (e == 2.0) return v * v;
    if (e == 3.0) return v * v * v;
    if (e == 0.5) return sqrt(v);
    if (e == 0.0) return 1.0;
    return pow(v, e);
}

/* The geometry as these kernels use it: no padding, no dilation. */
static fc_status lp_check(const fc_pool_geom *g, double p)
{
    if (g == NULL || !(p > 0.0) || isinf(p)) return FC_EINVAL;
    if (g->N < 0 || g->C < 1 || g->H < 1 || g->W < 1 || g->kh < 1 || g->kw < 1) return FC_EINVAL;
    if (g->stride_h < 1 || g->stride_w < 1 || g->P < 1 || g->Q < 1) return FC_EINVAL;
    if (g->pad_h != 0 || g->pad_w != 0 || g->dil_h != 1 || g->dil_w != 1) return FC_EINVAL;
    /* every window starts inside the input (fc_pool_geom_init's ceil_mode rule) */
    if ((g->P - 1) * g->stride_h >= g->H || (g->Q - 1) * g->stride_w >= g->W) return FC_EINVAL;
    return FC_OK;
}

#define T float
#define SFX f32
#include "lppool.inc"
#undef T
#undef SFX

#define T double
#define SFX f64
#include "lppool.inc"
#undef T
#undef SFX
