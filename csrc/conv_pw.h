/*
 * conv_pw.h: the pointwise (1x1) convolution kernel of the compiled plan
 * (conv_pw.c), private to the package: R = S = 1, stride 1, no padding,
 * dilation 1, groups 1. Per image, Y[k, j] = sum_c W[k, c] X[c, j] over the
 * P*Q pixels j, read from X (NCHW) as it lies (no packing of the input); the
 * weights are packed once (fc_pw_pack_w) into panels of FC_PW_MR output
 * channels, [ceil(K / MR)][C][MR], the same layout for every SIMD level. The
 * plan hands it the op's epilogue (conv_dw.h's fc_dw_epi steps), applied in
 * registers before the one store of each output vector.
 */
#ifndef FC_CONV_PW_H
#define FC_CONV_PW_H

#include <stdint.h>
#include "fastconv.h"
#include "conv_dw.h"

/* Output channels per weight panel (every instance). */
#define FC_PW_MR 8

/* 1 when g is a geometry this kernel computes (1x1, stride 1, no padding,
 * dilation 1, groups 1); the geometry itself is assumed checked. */
int fc_pw_supported(const fc_conv_geom *g);

/* Elements of T in the packed weights of K output x C input channels
 * (ceil(K / MR) * C * MR), 0 when K or C < 1 or on overflow. */
int64_t fc_pw_packed_elems(int64_t K, int64_t C);

/* w (K, C) row-major -> wp (fc_pw_packed_elems(K, C) elements): panel kb,
 * input channel c, lane m holds w[kb*MR + m][c], 0 for channels past K. */
void fc_pw_pack_w_f32(int64_t K, int64_t C, const float *w, float *wp);
void fc_pw_pack_w_f64(int64_t K, int64_t C, const double *w, double *wp);

/* Pixels per register tile of the SIMD level now in use (the executor cuts
 * an image's pixels at multiples of it; any cut gives the same results). */
int64_t fc_pw_tile_f32(void);
int64_t fc_pw_tile_f64(void);

/*
 * Image n, pixels [j0, j1) of its P*Q, every output channel, single-threaded:
 * y[n, k, j] = sum_c wp(k, c) x[n, c, j] (+ b[k] when b != NULL), then the
 * nepi steps of epi (each ADD src a tensor shaped as y, its start). x, y are
 * whole tensors. Each output's sum runs over c in order with one multiply-add
 * per step, whatever the pixel range: results are independent of how an image
 * is cut. FC_EINVAL for an unsupported geometry or bad arguments, FC_ENOMEM
 * when the small tail buffer cannot be had.
 */
fc_status fc_pw_pixels_f32(const fc_conv_geom *g, const float *x, const float *wp,
                           const float *b, float *y, int64_t n, int64_t j0, int64_t j1,
                           const fc_dw_epi *epi, int nepi);
fc_status fc_pw_pixels_f64(const fc_conv_geom *g, const double *x, const double *wp,
                           const double *b, double *y, int64_t n, int64_t j0, int64_t j1,
                           const fc_dw_epi *epi, int nepi);

#endif
