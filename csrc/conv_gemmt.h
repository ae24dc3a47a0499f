/*
 * conv_gemmt.h: the transposed GEMM convolution for outputs of few pixels
 * (private to the package; the compiled plan's "gemmt" convs).
 *
 * Y^T[PQ, K] = cols^T[PQ, C*R*S] . W^T[C*R*S, K] per image (groups == 1):
 * the output pixels are the product's rows, cut into MR-tall panels (49
 * pixels: 4 panels of 14, where the usual Y[K, PQ] = W . cols wastes 15 of the
 * 64 columns of two 32-wide tiles), the output channels its columns, and the
 * weights its B operand, packed NR-wide once (fc_conv_gemmt_pack_w) instead
 * of at every call. Every output element is the same multiply-add chain over
 * (c, r, s) as fc_conv2d_fwd_gemm's with the same kernel, bias added last, so
 * the results are bitwise the GEMM path's (and independent of how the
 * channels are split over threads).
 */
#ifndef FC_CONV_GEMMT_H
#define FC_CONV_GEMMT_H

#include <stddef.h>
#include <stdint.h>
#include "fastconv.h"
#include "gemm.h"

/* Bytes of the packed weights of a K x C x R x S convolution (groups == 1)
 * for kernel kn (0 if the size overflows). */
size_t fc_conv_gemmt_packed_bytes(const fc_gemm_kernel *kn, int64_t K, int64_t CRS);
/* Pack w (K, CRS) row-major (a conv's weights, groups == 1) as the product's
 * B (CRS x K) into packed (fc_conv_gemmt_packed_bytes bytes). kn: the kernel
 * of w's type (fc_gemm_kernel_f32 / _f64). */
fc_status fc_conv_gemmt_pack_w(const fc_gemm_kernel *kn, int64_t K, int64_t CRS,
                               const void *w, void *packed);

/* Single-threaded: output channels [k0, k1) of every image of y (N, K, P, Q)
 * OUT = conv(x, w) (+ bias[k]), w given packed for kn (the same kernel) by
 * fc_conv_gemmt_pack_w. k0 must be a multiple of the kernel's NR and
 * g->groups 1 (FC_EINVAL otherwise). Workspace allocated inside (FC_ENOMEM). */
fc_status fc_conv_gemmt_fwd_f32(const fc_gemm_kernel *kn, const fc_conv_geom *g,
                                const float *x, const void *wpack, const float *bias,
                                float *y, int64_t k0, int64_t k1);
fc_status fc_conv_gemmt_fwd_f64(const fc_gemm_kernel *kn, const fc_conv_geom *g,
                                const double *x, const void *wpack, const double *bias,
                                double *y, int64_t k0, int64_t k1);

/* The same for output pixels [m0, m1) of every image only (0 <= m0 <= m1 <=
 * P*Q; FC_EINVAL otherwise): the rows [m0, m1) of the product, each output the
 * same chain as the whole call's, so pieces of pixels give the whole call's
 * bits. The per-image input slab (kernels larger than 1x1, strides, padding)
 * is built whole by every call. */
fc_status fc_conv_gemmt_fwd_px_f32(const fc_gemm_kernel *kn, const fc_conv_geom *g,
                                   const float *x, const void *wpack, const float *bias,
                                   float *y, int64_t k0, int64_t k1, int64_t m0, int64_t m1);
fc_status fc_conv_gemmt_fwd_px_f64(const fc_gemm_kernel *kn, const fc_conv_geom *g,
                                   const double *x, const void *wpack, const double *bias,
                                   double *y, int64_t k0, int64_t k1, int64_t m0, int64_t m1);

#endif
