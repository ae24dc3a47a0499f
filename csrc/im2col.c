/*
 * im2col.c: im2col / col2im for float and double (bodies in im2col.inc).
 */
#include <string.h>
#include "fc_internal.h"

/* Sanity of a convolution geometry as these kernels use it (fc_conv_geom_init
 * already checked all of it; this guards against a hand-filled struct). */
static fc_status im2col_check_geom(const fc_conv_geom *g)
{
    if (g == NULL) return FC_EINVAL;
    if (g->N < 0 || g->C < 1 || g->H < 1 || g->W < 1 || g->R < 1 || g->S < 1) return FC_EINVAL;
    if (g->stride_h < 1 || g->stride_w < 1 || g->dil_h < 1 || g->dil_w < 1) return FC_EINVAL;
    if (g->pad_h < 0 || g->pad_w < 0 || g->P < 1 || g->Q < 1) return FC_EINVAL;
    /* N*C*H*W and N*C*R*S*P*Q must be addressable. */
    const int64_t dims_x[4] = {g->N, g->C, g->H, g->W};
    const int64_t dims_c[6] = {g->N, g->C, g->R, g->S, g->P, g->Q};
    int64_t acc = 1;
    for (int i = 0; i < 4; i++) {
        if (dims_x[i] != 0 && acc > INT64_MAX / dims_x[i]) return FC_EOVERFLOW;
        acc *= dims_x[i];
    }
    acc = 1;
    for (int i = 0; i < 6; i++) {
        if (dims_c[i] != 0 && acc > INT64_MAX / dims_c[i]) return FC_EOVERFLOW;
        acc *= dims_c[i];
    }
    return FC_OK;
}

/* The j in [0, count) with 0 <= off + j*step < extent form one interval
 * [*lo, *hi) (empty when *lo == *hi): solved with one ceil and one floor
 * division instead of a bounds test per element. step >= 1, count >= 1. */
static inline void im2col_range(int64_t off, int64_t step, int64_t extent, int64_t count,
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

#define T float
#define SFX f32
#include "im2col.inc"
#undef T
#undef SFX

#define T double
#define SFX f64
#include "im2col.inc"
#undef T
#undef SFX
