/*
 * fastconv.h: the one public C header of fastconv.
 *
 * Layout is NCHW everywhere; convolution weights are (K, C/groups, R, S).
 * Every entry point takes its geometry first (filled and validated by the
 * matching *_geom_init; each kernel checks it once more, before its loops,
 * against a struct filled by hand), then inputs as const T *restrict, then
 * outputs as T *restrict, then workspace, then the thread count. Every size
 * and index is int64_t. Every entry point returns an fc_status; none allocates memory that
 * Python sees, calls back into Python, or aborts.
 *
 * Kernels are written once per op in an .inc file and instantiated for float
 * (suffix _f32) and double (suffix _f64).
 */
#ifndef FASTCONV_H
#define FASTCONV_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    FC_OK = 0,
    FC_EINVAL = 1,     /* an argument is out of range: mapped to ValueError */
    FC_ENOMEM = 2,     /* internal workspace could not be allocated: MemoryError */
    FC_EOVERFLOW = 3   /* a size does not fit in int64: OverflowError */
} fc_status;

/* Convolution geometry. Input x (N, C, H, W), weights (K, C/groups, R, S),
 * output (N, K, P, Q). pad_h / pad_w are the top / left zero padding; the
 * bottom / right padding only enters through P and Q, so "same" padding with
 * an even kernel (more padding after than before) is expressible. */
typedef struct {
    int64_t N, C, H, W;
    int64_t K, R, S;
    int64_t groups;
    int64_t stride_h, stride_w;
    int64_t pad_h, pad_w;
    int64_t dil_h, dil_w;
    int64_t P, Q;
} fc_conv_geom;

/* Fill *g and check it: every extent >= 1 (N >= 0), C and K divisible by
 * groups, P, Q >= 1, and every buffer size (N*C*H*W, N*K*P*Q, K*C/g*R*S,
 * C*R*S*P*Q) fits in int64. pad_bottom / pad_right only determine P and Q. */
fc_status fc_conv_geom_init(fc_conv_geom *g, int64_t N, int64_t C, int64_t H, int64_t W,
                            int64_t K, int64_t R, int64_t S, int64_t groups,
                            int64_t stride_h, int64_t stride_w,
                            int64_t pad_top, int64_t pad_bottom,
                            int64_t pad_left, int64_t pad_right,
                            int64_t dil_h, int64_t dil_w);

/* Pooling geometry. Input (N, C, H, W), output (N, C, P, Q), window kh x kw. */
typedef struct {
    int64_t N, C, H, W;
    int64_t kh, kw;
    int64_t stride_h, stride_w;
    int64_t pad_h, pad_w;
    int64_t dil_h, dil_w;
    int64_t P, Q;
    int count_include_pad;   /* avg pooling only */
} fc_pool_geom;

/* Fill *g and check it (extents >= 1, N >= 0, 2*pad <= dilated kernel, sizes
 * fit in int64, ceil_mode as PyTorch: the last window must start inside the
 * input or the left padding). */
fc_status fc_pool_geom_init(fc_pool_geom *g, int64_t N, int64_t C, int64_t H, int64_t W,
                            int64_t kh, int64_t kw, int64_t stride_h, int64_t stride_w,
                            int64_t pad_h, int64_t pad_w, int64_t dil_h, int64_t dil_w,
                            int ceil_mode, int count_include_pad);

/* ---- threads ---------------------------------------------------------- */
int fc_openmp_enabled(void);      /* 1 when built with OpenMP */
int fc_max_threads(void);         /* omp_get_max_threads(), or 1 */
int fc_num_procs(void);           /* omp_get_num_procs(), or 1 */

/* ---- CPU features ----------------------------------------------------- */
int fc_cpu_has_avx2(void);        /* AVX2 + FMA usable (incl. OS support) */
int fc_cpu_has_avx512(void);      /* AVX-512 F usable (incl. OS support) */

/* ---- ISA level (runtime.c) ----------------------------------------------- */
/* The SIMD level every kernel uses: the GEMM micro-kernels, the direct
 * convolution, the Winograd transforms and the pooling rows. Starts as the
 * best level the CPU runs, capped by the environment variable FASTCONV_ISA
 * (generic | avx2 | avx512; read once, at the first query; any other value
 * is ignored). fc_set_isa sets it for later calls, clamped to
 * [FC_ISA_GENERIC, what the CPU runs], and returns the level now in use.
 * Process-wide, for tests and benchmarks: not to be changed during a call.
 * fc_isa_name: "generic", "avx2", "avx512" ("unknown" for other values). */
typedef enum { FC_ISA_GENERIC = 0, FC_ISA_AVX2 = 1, FC_ISA_AVX512 = 2 } fc_isa;
int fc_isa_level(void);
int fc_set_isa(int level);
const char *fc_isa_name(int level);

/* ---- Winograd tile size ------------------------------------------------ */
/* Output tile m of later Winograd calls: 4 (F(4x4,3x3), the default) or 2
 * (F(2x2,3x3), fewer savings, smaller float32 error); 0 restores the default.
 * Returns the previous setting, or -1 for any other value (nothing changed).
 * Process-wide, for tests and benchmarks: not to be changed during a call. */
int fc_winograd_set_tile(int m);
int fc_winograd_get_tile(void);

/* ---- workspace cache ----------------------------------------------------- */
/* The Winograd and GEMM kernels keep up to four freed workspace blocks (each
 * at most 256 MiB) for their next calls, instead of returning them to the
 * system and page-faulting fresh memory every call. fc_workspace_cached
 * gives the bytes kept now; fc_workspace_release frees them and returns how
 * many bytes that was. Both are thread-safe. */
#include <stddef.h>
size_t fc_workspace_cached(void);
size_t fc_workspace_release(void);

/* ---- convolution algorithms ----------------------------------------------- */
/* The algo argument of fc_conv2d_{fwd,bwd_data,bwd_weight}_*: which kernel
 * family computes the pass (any other value: FC_EINVAL). */
typedef enum { FC_ALGO_DIRECT = 0, FC_ALGO_GEMM = 1, FC_ALGO_WINOGRAD = 2 } fc_conv_algo;

#define FC_DECLARE_ALL(T, SFX)                                                        \
/* im2col: x (N, C, H, W) -> cols (N, C*R*S, P*Q); row c*R*S + r*S + s,            \
 * column p*Q + q, as torch.nn.functional.unfold. Uses g->C,H,W,R,S,stride,       \
 * pad, dil, P, Q and g->N (K and groups are ignored). */                          \
fc_status fc_im2col_##SFX(const fc_conv_geom *g, const T *restrict x,             \
                          T *restrict cols, int nthreads);                         \
/* col2im: cols (N, C*R*S, P*Q) -> x (N, C, H, W), summing overlaps (torch fold).  \
 * x is overwritten (zeroed first). */                                            \
fc_status fc_col2im_##SFX(const fc_conv_geom *g, const T *restrict cols,          \
                          T *restrict x, int nthreads);                            \
/* Convolution, one entry point per pass, the algorithm (fc_conv_algo) as an      \
 * argument: runs the per-algorithm kernel below (which checks g once) and        \
 * returns its status; FC_EINVAL for an unknown algo. Forward: y (N, K, P, Q)     \
 * = conv(x, w) + b (b may be NULL); backward-data: dx (N, C, H, W) overwritten;  \
 * backward-weight: dw (K, C/g, R, S) and db (K, may be NULL) overwritten. When   \
 * N == 0 the batch buffers (x, y, dy, dx) may be NULL. */                        \
fc_status fc_conv2d_fwd_##SFX(const fc_conv_geom *g, int algo, const T *restrict x, \
                          const T *restrict w, const T *restrict b,                \
                          T *restrict y, int nthreads);                            \
fc_status fc_conv2d_bwd_data_##SFX(const fc_conv_geom *g, int algo,               \
                          const T *restrict dy, const T *restrict w,               \
                          T *restrict dx, int nthreads);                           \
fc_status fc_conv2d_bwd_weight_##SFX(const fc_conv_geom *g, int algo,             \
                          const T *restrict dy, const T *restrict x,               \
                          T *restrict dw, T *restrict db, int nthreads);           \
/* Direct convolution forward: y = conv(x, w) + b (b may be NULL). */              \
fc_status fc_conv2d_fwd_direct_##SFX(const fc_conv_geom *g, const T *restrict x,  \
                          const T *restrict w, const T *restrict b,                \
                          T *restrict y, int nthreads);                            \
/* Direct backward-data: dx = conv_transpose(dy, w); dx overwritten. */            \
fc_status fc_conv2d_bwd_data_direct_##SFX(const fc_conv_geom *g,                  \
                          const T *restrict dy, const T *restrict w,               \
                          T *restrict dx, int nthreads);                           \
/* Direct backward-weight: dw (K, C/g, R, S) and db (K, may be NULL), both         \
 * overwritten; each entry summed by one thread in a fixed order (bitwise    \
 * independent of nthreads). */                                                     \
fc_status fc_conv2d_bwd_weight_direct_##SFX(const fc_conv_geom *g,                \
                          const T *restrict dy, const T *restrict x,               \
                          T *restrict dw, T *restrict db, int nthreads);           \
/* GEMM convolution (conv_gemm.c: implicit im2col packed into fastconv's own       \
 * SIMD GEMM, bounded workspace allocated inside, FC_ENOMEM if it cannot be).      \
 * Same arguments and results as the direct kernels; bitwise independent of        \
 * nthreads. Backward-weight overwrites dw and db (db may be NULL). */             \
fc_status fc_conv2d_fwd_gemm_##SFX(const fc_conv_geom *g, const T *restrict x,    \
                          const T *restrict w, const T *restrict b,                \
                          T *restrict y, int nthreads);                            \
fc_status fc_conv2d_bwd_data_gemm_##SFX(const fc_conv_geom *g,                    \
                          const T *restrict dy, const T *restrict w,               \
                          T *restrict dx, int nthreads);                           \
fc_status fc_conv2d_bwd_weight_gemm_##SFX(const fc_conv_geom *g,                  \
                          const T *restrict dy, const T *restrict x,               \
                          T *restrict dw, T *restrict db, int nthreads);           \
/* Winograd convolution (winograd.c): 3x3 kernels, stride 1, dilation 1 only       \
 * (any padding and groups; FC_EINVAL otherwise). Same arguments and results as    \
 * the direct kernels up to the transforms' rounding; workspace allocated inside   \
 * (FC_ENOMEM if it cannot be); bitwise independent of nthreads. */                \
fc_status fc_conv2d_fwd_winograd_##SFX(const fc_conv_geom *g, const T *restrict x,\
                          const T *restrict w, const T *restrict b,                \
                          T *restrict y, int nthreads);                            \
fc_status fc_conv2d_bwd_data_winograd_##SFX(const fc_conv_geom *g,                \
                          const T *restrict dy, const T *restrict w,               \
                          T *restrict dx, int nthreads);                           \
fc_status fc_conv2d_bwd_weight_winograd_##SFX(const fc_conv_geom *g,              \
                          const T *restrict dy, const T *restrict x,               \
                          T *restrict dw, T *restrict db, int nthreads);           \
/* Max pooling forward: y (N, C, P, Q), idx (N, C, P, Q) = flat h*W + w index of   \
 * the first maximum in each window (NaN counts as the maximum; an all -inf or     \
 * all-NaN window still yields a valid index). */                                  \
fc_status fc_maxpool2d_fwd_##SFX(const fc_pool_geom *g, const T *restrict x,      \
                          T *restrict y, int64_t *restrict idx, int nthreads);     \
/* The same y without the indices (inference). */                                  \
fc_status fc_maxpool2d_fwd_values_##SFX(const fc_pool_geom *g, const T *restrict x,\
                          T *restrict y, int nthreads);                            \
/* Max pooling backward: dx (N, C, H, W) overwritten: dx[idx] += dy. Indices are   \
 * checked to lie in [0, H*W) first; FC_EINVAL (nothing written) if not. */        \
fc_status fc_maxpool2d_bwd_##SFX(const fc_pool_geom *g, const T *restrict dy,     \
                          const int64_t *restrict idx, T *restrict dx,             \
                          int nthreads);                                           \
/* Average pooling forward / backward (dx overwritten). Divisor as PyTorch:        \
 * window clipped to the padded input, and to the input when !count_include_pad. */\
fc_status fc_avgpool2d_fwd_##SFX(const fc_pool_geom *g, const T *restrict x,      \
                          T *restrict y, int nthreads);                            \
fc_status fc_avgpool2d_bwd_##SFX(const fc_pool_geom *g, const T *restrict dy,     \
                          T *restrict dx, int nthreads);                           \
/* Elementwise, n elements: y = x > 0 ? x : 0 (NaN passes); dx = x <= 0 ? 0 : dy. */                   \
fc_status fc_relu_fwd_##SFX(int64_t n, const T *restrict x, T *restrict y,        \
                          int nthreads);                                           \
fc_status fc_relu_bwd_##SFX(int64_t n, const T *restrict dy, const T *restrict x, \
                          T *restrict dx, int nthreads);                           \
/* In place, x (n): ReLU with fc_relu_fwd's bits; clip x < lo ? lo : x, then    \
 * > hi ? hi : that (NaN kept; FC_EINVAL unless lo <= hi).                        \
 */                                                                                \
fc_status fc_relu_inplace_##SFX(int64_t n, T *x, int nthreads);                    \
fc_status fc_clip_inplace_##SFX(int64_t n, T *x, T lo, T hi, int nthreads);        \
/* One SGD step over n elements (optim.c): d = g (+ wd * p when wd != 0); with   \
 * buf (momentum): buf = d on the first step, else buf = momentum * buf + d,      \
 * and d = buf; then p -= lr * d. torch.optim.SGD without dampening or Nesterov. \
 * buf NULL: no momentum. */                                                       \
fc_status fc_sgd_step_##SFX(int64_t n, T *p, const T *g, T *buf, T lr, T momentum, \
                          T wd, int first, int nthreads);                          \
/* *finite = 1 when no element of x (n) is inf or NaN, else 0. */              \
fc_status fc_all_finite_##SFX(int64_t n, const T *restrict x, int *finite,       \
                          int nthreads);                                           \
/* Bias add in place over NCHW-like data y (N, K, L): y[n,k,:] += b[k]. */         \
fc_status fc_bias_add_##SFX(int64_t N, int64_t K, int64_t L, const T *restrict b, \
                          T *restrict y, int nthreads);                            \
/* Bias gradient: db[k] = sum over n, l of dy[n,k,l]; db overwritten. */           \
fc_status fc_bias_grad_##SFX(int64_t N, int64_t K, int64_t L,                     \
                          const T *restrict dy, T *restrict db, int nthreads);     \
/* Batch normalisation over x (N, C, L), L = H*W (batchnorm.c). Training forward: \
 * per-channel batch mean, biased var (summed in double), invstd = 1/sqrt(var+eps)\
 * and y = (x - mean) * invstd * gamma + beta (gamma, beta NULL: 1, 0). */         \
fc_status fc_bn_fwd_train_##SFX(int64_t N, int64_t C, int64_t L, double eps,      \
                          const T *restrict x, const T *restrict gamma,            \
                          const T *restrict beta, T *restrict y, T *restrict mean, \
                          T *restrict var, T *restrict invstd, int nthreads);      \
/* y = (x - m[c]) * s[c] + b[c] (m, b NULL: 0); y may be x. */                     \
fc_status fc_bn_affine_##SFX(int64_t N, int64_t C, int64_t L, const T *x,         \
                          const T *restrict m, const T *restrict s,                \
                          const T *restrict b, T *y, int nthreads);                \
/* Backward through batch statistics: sum_dy, sum_dy_xhat (C) and, when dx is not \
 * NULL, dx = gamma*invstd*(dy - sum_dy/n - xhat*sum_dy_xhat/n), n = N*L. */        \
fc_status fc_bn_bwd_##SFX(int64_t N, int64_t C, int64_t L, const T *restrict x,   \
                          const T *restrict dy, const T *restrict mean,            \
                          const T *restrict invstd, const T *restrict gamma,       \
                          T *restrict sum_dy, T *restrict sum_dy_xhat,             \
                          T *restrict dx, int nthreads);

FC_DECLARE_ALL(float, f32)
FC_DECLARE_ALL(double, f64)

#undef FC_DECLARE_ALL

#ifdef __cplusplus
}
#endif
#include "qops.h"   /* int8 inference kernels (qgemm.c, qconv.c) */
#endif /* FASTCONV_H */
#include "ops_extra.h"   /* issue 14: lp pooling, deformable convolution */
