/*
 * conv_dw.h: the depthwise convolution kernel (conv_dw.c), private to the
 * package: groups == C == K (one filter per channel), dilation 1, stride 1
 * or 2 in each direction, any kernel size (up to 64 taps), padding and plane
 * size. Used by fc_conv2d_fwd (the "direct" algorithm of a depthwise geometry
 * with stride 2 and rows of 16 or more, see conv.inc) and by the compiled
 * plan (plan.c) for every depthwise conv, which also hands it the op's
 * elementwise epilogue so that the epilogue runs on each output vector while
 * it is in registers.
 */
#ifndef FC_CONV_DW_H
#define FC_CONV_DW_H

#include <stdint.h>
#include "fastconv.h"

/* Epilogue steps, applied in order to every output v of channel k (the same
 * kinds and meanings as plan.h's FC_EPI_*, which plan.c maps one to one). */
enum {
    FC_DW_AFFINE = 1,   /* v = v * p0[k] + p1[k] */
    FC_DW_BIAS = 2,     /* v = v + p0[k] */
    FC_DW_ADD = 3,      /* v = v + src[same index as v in y] */
    FC_DW_RELU = 4,     /* v <= 0 ? 0 : v (NaN passes) */
    FC_DW_LEAKY = 5,    /* v > 0 ? v : v * (T)a */
    FC_DW_CLIP = 6,     /* min(max(v, (T)a), (T)b), NaN passes */
    FC_DW_SIGMOID = 7,  /* e = exp(-|v|): v >= 0 ? 1 / (1 + e) : e / (1 + e) */
    FC_DW_TANH = 8
};

#define FC_DW_MAX_EPI 8

typedef struct {
    int32_t kind;
    const void *p0, *p1;   /* per-channel parameters (T), indexed by the channel k */
    const void *src;       /* FC_DW_ADD: a tensor shaped as y (N, C, P, Q), its start */
    double a, b;
} fc_dw_epi;

/* 1 when g is a geometry this kernel computes (groups == C == K, dilation 1,
 * strides 1 or 2); the geometry itself is assumed checked. */
int fc_dw_supported(const fc_conv_geom *g);

/*
 * Planes [pl0, pl1) of the N*C output planes (plane n*C + k), single-threaded:
 * y plane = conv(x plane, w[k]) + b[k] (b may be NULL), then the nepi steps
 * of epi (at most FC_DW_MAX_EPI). x, y (and every ADD src) are whole tensors.
 * FC_EINVAL for an unsupported geometry or bad arguments, FC_ENOMEM when the
 * small workspace cannot be had.
 */
fc_status fc_dw_planes_f32(const fc_conv_geom *g, const float *x, const float *w,
                           const float *b, float *y, int64_t pl0, int64_t pl1,
                           const fc_dw_epi *epi, int nepi);
fc_status fc_dw_planes_f64(const fc_conv_geom *g, const double *x, const double *w,
                           const double *b, double *y, int64_t pl0, int64_t pl1,
                           const fc_dw_epi *epi, int nepi);

/* The whole forward, y (N, C, P, Q) overwritten, the planes split over
 * nthreads (each plane computed by one thread in one fixed order: bitwise
 * independent of nthreads). Checks g; FC_EINVAL when !fc_dw_supported(g). */
fc_status fc_conv2d_fwd_dw_f32(const fc_conv_geom *g, const float *x, const float *w,
                               const float *b, float *y, int nthreads);
fc_status fc_conv2d_fwd_dw_f64(const fc_conv_geom *g, const double *x, const double *w,
                               const double *b, double *y, int nthreads);

#endif
