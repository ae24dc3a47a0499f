/*
 * conv_gemm_pre.h: a GEMM convolution's forward weights packed once (private
 * to the package; the compiled plan's "gemm" convs, which otherwise pack their
 * share of the weights at every call: about 5% of squeezenet1_1's time at
 * batch 1).
 *
 * fc_conv_gemm_prepack packs w exactly as fc_conv2d_fwd_gemm would for the
 * geometry g (its micro-kernel for g's rows at the ISA level now, its channel
 * chunks, its K-slices), behind a small header saying what for.
 * fc_conv2d_fwd_gemm_pre is fc_conv2d_fwd_gemm taking those panels instead of
 * packing: when the header does not match the call (another ISA level now,
 * another geometry) it packs w as usual. Either way every output is the same
 * multiply-add chain, so the results are bitwise fc_conv2d_fwd_gemm's.
 */
#ifndef FC_CONV_GEMM_PRE_H
#define FC_CONV_GEMM_PRE_H

#include <stddef.h>
#include <stdint.h>
#include "fastconv.h"

/* Bytes of the header in front of the packed panels (64: they stay aligned). */
#define FC_CG_PRE_HDR 64

/* Bytes of w packed for the forward pass of g (itemsize 4: float, 8: double),
 * header included; 0 for a bad geometry or itemsize, or on overflow. */
size_t fc_conv_gemm_prepacked_bytes(const fc_conv_geom *g, int itemsize);

/* Pack w (K, C/groups, R, S) into dst, `bytes` of them (the size above;
 * FC_EINVAL otherwise). dst 64-byte aligned is best. */
fc_status fc_conv_gemm_prepack_f32(const fc_conv_geom *g, const float *w, void *dst,
                                   size_t bytes);
fc_status fc_conv_gemm_prepack_f64(const fc_conv_geom *g, const double *w, void *dst,
                                   size_t bytes);

/* fc_conv2d_fwd_gemm with the weights also given packed (wpre, or NULL). */
fc_status fc_conv2d_fwd_gemm_pre_f32(const fc_conv_geom *g, const float *x, const float *w,
                                     const void *wpre, const float *b, float *y, int nthreads);
fc_status fc_conv2d_fwd_gemm_pre_f64(const fc_conv_geom *g, const double *x, const double *w,
                                     const void *wpre, const double *b, double *y,
                                     int nthreads);

#endif
