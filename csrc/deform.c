/*
 * deform.c: deformable convolution (torchvision's deform_conv2d, DCNv1 and,
 * with a mask, DCNv2) for float and double; bodies in deform.inc.
 *
 * Method, per image n: deformable im2col builds cols (C*R*S, P*Q), row
 * c*R*S + r*S + s holding the bilinear sample of channel c at
 *     (p*sh - ph + r*dh + offset_y, q*sw - pw + s*dw + offset_x)
 * (zero outside the image, times the mask value when there is a mask), the
 * offsets and mask of channel c's offset group; then per group
 *     y_n[g] = W_g (Kg x Cg*R*S) . cols_g (Cg*R*S x P*Q)   (fastconv's GEMM).
 * Backward: dcols_g = W_g^T . dy_n[g]; dx scatters dcols through the same
 * bilinear weights (one thread per channel plane: no two threads write one
 * element); d offset and d mask gather over the channels of their offset group
 * (one thread per (offset group, tap) row); dW_g += dy_n[g] . cols_g^T summed
 * over the images in order. Every sum has a fixed order, so results do not
 * depend on the thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "fc_internal.h"
#include "gemm.h"

static int df_mul(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0) return 0;
    if (a != 0 && b > INT64_MAX / a) return 0;
    *out = a * b;
    return 1;
}

fc_status fc_deform_geom_init(fc_deform_geom *g, int64_t N, int64_t C, int64_t H, int64_t W,
                              int64_t K, int64_t R, int64_t S, int64_t groups,
                              int64_t offset_groups, int64_t stride_h, int64_t stride_w,
                              int64_t pad_h, int64_t pad_w, int64_t dil_h, int64_t dil_w)
{
    if (g == NULL) return FC_EINVAL;
    if (N < 0 || C < 1 || H < 1 || W < 1 || K < 1 || R < 1 || S < 1) return FC_EINVAL;
    if (groups < 1 || offset_groups < 1 || C % groups || K % groups || C % offset_groups)
        return FC_EINVAL;
    if (stride_h < 1 || stride_w < 1 || dil_h < 1 || dil_w < 1 || pad_h < 0 || pad_w < 0)
        return FC_EINVAL;
    if (pad_h > INT64_MAX / 4 || pad_w > INT64_MAX / 4 || H > INT64_MAX / 4 || W > INT64_MAX / 4)
        return FC_EOVERFLOW;
    int64_t eh, ew;
    if (!df_mul(dil_h, R - 1, &eh) || !df_mul(dil_w, S - 1, &ew)) return FC_EOVERFLOW;
    const int64_t nh = H + 2 * pad_h - eh - 1, nw = W + 2 * pad_w - ew - 1;
    if (nh < 0 || nw < 0) return FC_EINVAL;
    const int64_t P = nh / stride_h + 1, Q = nw / stride_w + 1;
    /* every buffer (x, y, w, offsets, cols) must be addressable, times 8 bytes */
    const int64_t dims[5][5] = {{N, C, H, W, 1}, {N, K, P, Q, 1}, {K, C / groups, R, S, 1},
                                {N, 2 * offset_groups, R * S, P, Q}, {C, R, S, P, Q}};
    for (int i = 0; i < 5; i++) {
        int64_t t = 1;
        for (int j = 0; j < 5; j++)
            if (!df_mul(t, dims[i][j], &t)) return FC_EOVERFLOW;
        if (t > INT64_MAX / 8) return FC_EOVERFLOW;
    }
    g->N = N; g->C = C; g->H = H; g->W = W; g->K = K; g->R = R; g->S = S;
    g->groups = groups; g->offset_groups = offset_groups;
    g->stride_h = stride_h; g->stride_w = stride_w; g->pad_h = pad_h; g->pad_w = pad_w;
    g->dil_h = dil_h; g->dil_w = dil_w; g->P = P; g->Q = Q;
    return FC_OK;
}

static fc_status df_check(const fc_deform_geom *g)
{
    if (g == NULL || g->N < 0 || g->C < 1 || g->H < 1 || g->W < 1 || g->K < 1 || g->R < 1
        || g->S < 1 || g->groups < 1 || g->offset_groups < 1 || g->C % g->groups
        || g->K % g->groups || g->C % g->offset_groups || g->P < 1 || g->Q < 1)
        return FC_EINVAL;
    return FC_OK;
}

#define T float
#define SFX f32
#include "deform.inc"
#undef T
#undef SFX

#define T double
#define SFX f64
#include "deform.inc"
#undef T
#undef SFX
