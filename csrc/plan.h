/*
 * plan.h: the compiled inference plan's executor and the SIMD GEMV behind
 * small-batch fully connected layers (fastconv.inference builds the op array;
 * private to the package, included by _kernels.pxd).
 *
 * A plan is an array of fc_plan_op that fc_plan_run_<dtype> walks in order,
 * once per forward, inside one parallel region: every op splits its outputs
 * over the threads (output channels / rows for one image, images for a
 * batch), calls the kernels single-threaded on its share, runs the op's
 * epilogue on that share right away (while it is in cache), and a thread
 * starts the next op once every unit of this one is done (shares are claimed
 * as the threads come, so a descheduled thread holds up nobody). Buffers
 * are named by fc_plan_ref: slot 0 is the network input, slot 1 the network
 * output, slot 2 the arena (one block for every intermediate tensor, offsets
 * planned by Python); offsets count
 * elements of the plan's type. Nothing is allocated here that Python sees;
 * the kernels take their usual internal workspace.
 */
#ifndef FC_PLAN_H
#define FC_PLAN_H

#include <stdint.h>
#include "fastconv.h"

enum {
    FC_PLAN_CONV = 1,     /* y = conv(x, w) + b, epilogue, optional fused pool (y -> y2) */
    FC_PLAN_LINEAR = 2,   /* y (N, F) = x (N, in) . w^T (+ b), epilogue */
    FC_PLAN_MAXPOOL = 3,  /* y = maxpool(x) (values only, no indices), epilogue */
    FC_PLAN_AVGPOOL = 4,  /* y = avgpool(x), epilogue */
    FC_PLAN_GAP = 5,      /* y (N, C) = mean of x (N, C, L) over L, epilogue */
    FC_PLAN_EPI = 6,      /* y = epilogue(x), elementwise over (N, C, L) */
    FC_PLAN_COPY = 7      /* y[n*ld + j] = x[n*len + j], n < N, j < len (a Concat piece) */
};

/* FC_PLAN_GEMMT: a conv as the transposed product (conv_gemmt.h), the weights
 * packed once (fc_plan_op.wpack, for the GEMM kernel wkern). FC_PLAN_DW: depthwise
 * (conv_dw.h), the epilogue fused. FC_PLAN_PW: pointwise 1x1 (conv_pw.h), the
 * weights packed once (wpack, fc_pw_pack_w: one layout for every SIMD level), the
 * epilogue fused, an image's pixels split over the threads; no fused pool.
 * FC_PLAN_STEM: few input channels (conv_stem.h), the epilogue fused. */
enum { FC_PLAN_DIRECT = 0, FC_PLAN_GEMM = 1, FC_PLAN_WINOGRAD = 2, FC_PLAN_GEMV = 3,
       FC_PLAN_GEMMT = 4, FC_PLAN_DW = 5, FC_PLAN_PW = 6, FC_PLAN_STEM = 7 };

/* Epilogue steps, applied in order to every output element v of channel k. */
enum {
    FC_EPI_AFFINE = 1,    /* v = v * p0[k] + p1[k] (a BatchNorm that could not be folded) */
    FC_EPI_BIAS = 2,      /* v = v + p0[k] */
    FC_EPI_ADD = 3,       /* v = v + src[same index] (a residual) */
    FC_EPI_RELU = 4,      /* v <= 0 ? 0 : v (NaN passes) */
    FC_EPI_LEAKY = 5,     /* v > 0 ? v : v * (T)a */
    FC_EPI_CLIP = 6,      /* min(max(v, (T)a), (T)b) (ReLU6: a = 0, b = 6) */
    FC_EPI_SIGMOID = 7,   /* e = exp(-|v|): v >= 0 ? 1 / (1 + e) : e / (1 + e) */
    FC_EPI_TANH = 8
};

typedef struct {
    int32_t slot;         /* 0 input, 1 output, 2 arena */
    int64_t off;          /* in elements of T */
} fc_plan_ref;

#define FC_PLAN_MAX_EPI 6

typedef struct {
    int32_t kind;
    const void *p0, *p1;  /* per-channel parameters (T) */
    fc_plan_ref src;      /* FC_EPI_ADD */
    double a, b;
} fc_plan_epi;

typedef struct {
    int32_t kind, algo;
    fc_conv_geom conv;    /* FC_PLAN_CONV */
    fc_pool_geom pool;    /* pools; for CONV the fused pool when fused_pool != 0 */
    int32_t fused_pool;   /* 0, FC_PLAN_MAXPOOL or FC_PLAN_AVGPOOL */
    int64_t N, C, L;      /* the output seen as (N, C, L) (LINEAR, GAP: L = 1) */
    int64_t in_features;  /* LINEAR; COPY: the row length len */
    int64_t ld;           /* COPY: the destination row pitch */
    int64_t kalign;       /* CONV: output channels of a thread's share are a multiple of this */
    int64_t chunk;        /* CONV: images per kernel call when a thread has whole images */
    int32_t pxsplit;      /* CONV, FC_PLAN_GEMMT, no fused pool: an image is cut into parts of
                             its output pixels (whole MR-tall panels of the product, every
                             channel) instead of its channels */
    int32_t solo;         /* CONV: run by its kernel with all the threads, outside the shared
                             region (the region ends before it and a new one starts with its
                             epilogue and fused pool; see fc_plan_run) */
    fc_plan_ref x, y;     /* input, output */
    fc_plan_ref y2;       /* CONV with a fused pool: the pooled output */
    const void *w, *b;
    const void *wpack;    /* FC_PLAN_GEMMT: w packed by fc_conv_gemmt_pack_w for wkern;
                             FC_PLAN_PW: w packed by fc_pw_pack_w */
    const void *wkern;    /* the fc_gemm_kernel it was packed for (another one now: the
                             op runs as FC_PLAN_GEMM, same results) */
    const void *wpre;     /* FC_PLAN_GEMM, groups 1, or NULL: w packed once per channel share
                             of an image (fc_conv_gemm_prepack, conv_gemm_pre.h) for the
                             cut into wpre_kp shares (fc_plan_conv_units); used when the
                             op is cut so at run time, share s at wpre + wpre_off[s] */
    const int64_t *wpre_off;
    int64_t wpre_kp;
    int32_t nepi;
    fc_plan_epi epi[FC_PLAN_MAX_EPI];
} fc_plan_op;

/* Run ops[0 .. nops) once: x the network input, y its output, arena the
 * intermediates (as planned). op_seconds: NULL, or nops doubles that receive
 * each op's wall time (a debug profile). Returns the first failing kernel's
 * status (FC_ENOMEM when a kernel's workspace could not be had). */
fc_status fc_plan_run_f32(const fc_plan_op *ops, int64_t nops, const float *x, float *y,
                          float *arena, int nthreads, double *op_seconds);
fc_status fc_plan_run_f64(const fc_plan_op *ops, int64_t nops, const double *x, double *y,
                          double *arena, int nthreads, double *op_seconds);

/* How a shared conv op of N images and nblk output-channel blocks (kalign
 * channels, or groups) is cut over nth threads: kp channel parts per image,
 * kp = m / gcd(N, m) with m = nth * 2 (one image in 4 parts on 2 threads, a
 * batch of 8 as whole images, a batch of 3 as 12 quarter images), capped by
 * nblk; when kp is 1, whole images are claimed `step` at a time: chunk (the
 * op's images per kernel call), but at most N / m with several threads, so
 * every thread finds work. */
void fc_plan_conv_units(int64_t N, int64_t nblk, int64_t chunk, int nth, int64_t *kp,
                        int64_t *step);

/*
 * GEMV: y[v*ldy + i] = sum_k W[i*ldw + k] * x[v*ldx + k] (+ bias[i], added
 * after the sum) for rows i < M and vectors v < nv; W row-major (M, K), as a
 * Linear layer's weight. Parallel over rows; each row's sum is read from W
 * once for all nv vectors. The SIMD variant follows fastconv's GEMM setting
 * (fc_isa_level / fc_set_isa / FASTCONV_ISA). FC_EINVAL on negative sizes
 * or leading dimensions shorter than a row.
 */
fc_status fc_gemv_f32(int64_t M, int64_t K, const float *W, int64_t ldw, int64_t nv,
                      const float *x, int64_t ldx, const float *bias, float *y, int64_t ldy,
                      int nthreads);
fc_status fc_gemv_f64(int64_t M, int64_t K, const double *W, int64_t ldw, int64_t nv,
                      const double *x, int64_t ldx, const double *bias, double *y, int64_t ldy,
                      int nthreads);

/* Rows [m0, m1) only, single-threaded (the plan executor's piece). */
void fc_gemv_rows_f32(int64_t m0, int64_t m1, int64_t K, const float *W, int64_t ldw,
                      int64_t nv, const float *x, int64_t ldx, const float *bias, float *y,
                      int64_t ldy);
void fc_gemv_rows_f64(int64_t m0, int64_t m1, int64_t K, const double *W, int64_t ldw,
                      int64_t nv, const double *x, int64_t ldx, const double *bias, double *y,
                      int64_t ldy);

#endif
