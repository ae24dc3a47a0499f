/*
 * ops_extra.h: the C API of the issue-14 operators (included at the end of
 * fastconv.h; same conventions: geometry first, inputs const T *restrict,
 * outputs T *restrict, thread count last, fc_status returned, int64 sizes).
 */
#ifndef FASTCONV_OPS_EXTRA_H
#define FASTCONV_OPS_EXTRA_H

#include <stdint.h>
#include "fastconv.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Deformable convolution geometry (torchvision's deform_conv2d): input x
 * (N, C, H, W), weights (K, C/groups, R, S), offsets (N, 2*OG*R*S, P, Q) as
 * (dy, dx) pairs per kernel tap and offset group, optional mask
 * (N, OG*R*S, P, Q); output (N, K, P, Q). OG = offset groups (C % OG == 0). */
typedef struct {
    int64_t N, C, H, W;
    int64_t K, R, S;
    int64_t groups, offset_groups;
    int64_t stride_h, stride_w;
    int64_t pad_h, pad_w;
    int64_t dil_h, dil_w;
    int64_t P, Q;
} fc_deform_geom;

/* Fill *g and check it: extents >= 1 (N >= 0), C and K divisible by groups,
 * C by offset_groups, P, Q >= 1, every buffer size fits in int64. */
fc_status fc_deform_geom_init(fc_deform_geom *g, int64_t N, int64_t C, int64_t H, int64_t W,
                              int64_t K, int64_t R, int64_t S, int64_t groups,
                              int64_t offset_groups, int64_t stride_h, int64_t stride_w,
                              int64_t pad_h, int64_t pad_w, int64_t dil_h, int64_t dil_w);

#define FC_DECLARE_EXTRA(T, SFX)                                                          \
/* Lp pooling forward (PyTorch's lp_pool2d, padding 0, dilation 1): y (N, C, P, Q) =      \
 * (kh*kw / n * sum over the window of x^p)^(1/p), n the window's element count (less    \
 * than kh*kw only for ceil_mode's clipped last windows). p = 1, 2, 3 and 0.5 are         \
 * computed as products / square roots, like PyTorch's pow. */                            \
fc_status fc_lppool2d_fwd_##SFX(const fc_pool_geom *g, double p, const T *restrict x,    \
                                T *restrict y, int nthreads);                             \
/* Lp pooling backward: dx (N, C, H, W) overwritten with the gradient of sum(y * dy);     \
 * a window whose power sum is 0 contributes 0 (never NaN). */                             \
fc_status fc_lppool2d_bwd_##SFX(const fc_pool_geom *g, double p, const T *restrict x,    \
                                const T *restrict dy, T *restrict dx, int nthreads);      \
/* Deformable im2col: cols (C*R*S, P*Q) of image n (row c*R*S + r*S + s): bilinear       \
 * samples of x at (p*sh - ph + r*dh + off_y, q*sw - pw + s*dw + off_x), zero outside,    \
 * times the mask when mask != NULL. Images [n0, n0 + nb) side by side: cols is           \
 * (C*R*S, nb*P*Q). */                                                                    \
fc_status fc_deform_im2col_##SFX(const fc_deform_geom *g, int64_t n0, int64_t nb,        \
                                 const T *restrict x, const T *restrict offset,          \
                                 const T *restrict mask, T *restrict cols, int nthreads); \
/* Deformable convolution forward: y (N, K, P, Q) = W . deformable cols (+ b).            \
 * Workspace allocated inside (FC_ENOMEM when it cannot be). */                           \
fc_status fc_deform_conv2d_fwd_##SFX(const fc_deform_geom *g, const T *restrict x,       \
                                     const T *restrict offset, const T *restrict mask,   \
                                     const T *restrict w, const T *restrict b,           \
                                     T *restrict y, int nthreads);                        \
/* Deformable convolution backward: dx, doffset, dmask (when mask != NULL), dw, db         \
 * (db may be NULL; dx may be NULL when not wanted) all overwritten. Each image is one    \
 * thread's (its dcols scattered into its own dx plane set): deterministic. */            \
fc_status fc_deform_conv2d_bwd_##SFX(const fc_deform_geom *g, const T *restrict x,       \
                                     const T *restrict offset, const T *restrict mask,   \
                                     const T *restrict w, const T *restrict dy,          \
                                     T *restrict dx, T *restrict doffset,                \
                                     T *restrict dmask, T *restrict dw, T *restrict db,  \
                                     int nthreads);

FC_DECLARE_EXTRA(float, f32)
FC_DECLARE_EXTRA(double, f64)

#undef FC_DECLARE_EXTRA

#ifdef __cplusplus
}
#endif
#endif /* FASTCONV_OPS_EXTRA_H */
