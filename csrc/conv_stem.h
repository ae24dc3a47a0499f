/*
 * conv_stem.h: the first-layer ("stem") convolution kernel (conv_stem.c),
 * private to the package: few input channels (C <= FC_STEM_MAXC), groups 1,
 * dilation 1, stride 1 or 2 in each direction, any kernel size (at most
 * FC_STEM_MAXTAPS taps C*R*S), any padding and plane size. Used by the
 * compiled plan (plan.c, FC_PLAN_STEM) for the first conv of image networks
 * (3 -> 32 3x3/2, 3 -> 64 7x7/2 ...), which hands it the op's elementwise
 * epilogue (the steps of conv_dw.h's fc_dw_epi, the same kinds as plan.h's
 * FC_EPI_*) so that it runs on each output vector while it is in registers.
 */
#ifndef FC_CONV_STEM_H
#define FC_CONV_STEM_H

#include <stdint.h>
#include "fastconv.h"
#include "conv_dw.h"

/* Most input channels (per group, groups == 1) and most taps C*R*S. */
#define FC_STEM_MAXC 4
#define FC_STEM_MAXTAPS 512

/* 1 when g is a geometry this kernel computes; the geometry itself is
 * assumed checked. */
int fc_stem_supported(const fc_conv_geom *g);

/*
 * Images [n0, n1) and output channels [k0, k1) of y (N, K, P, Q),
 * single-threaded: y = conv(x, w) + b (b may be NULL), then the nepi steps of
 * epi (at most FC_DW_MAX_EPI; an ADD step's src is a whole tensor shaped as
 * y). x, w, y are whole tensors. Each output is the bias plus the taps in
 * (c, r, s) order, whatever the range, the thread count or the SIMD level
 * (so integer-valued data give exact sums at every level). FC_EINVAL for an
 * unsupported geometry or bad arguments, FC_ENOMEM when the small workspace
 * cannot be had.
 */
fc_status fc_stem_piece_f32(const fc_conv_geom *g, const float *x, const float *w,
                            const float *b, float *y, int64_t n0, int64_t n1, int64_t k0,
                            int64_t k1, const fc_dw_epi *epi, int nepi);
fc_status fc_stem_piece_f64(const fc_conv_geom *g, const double *x, const double *w,
                            const double *b, double *y, int64_t n0, int64_t n1, int64_t k0,
                            int64_t k1, const fc_dw_epi *epi, int nepi);

#endif
