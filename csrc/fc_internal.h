/*
 * fc_internal.h: private helpers shared by the kernel files (not installed).
 *
 * The OpenMP shim follows the scikit-learn pattern: every file uses the
 * FC_OMP_* macros and fc_omp_* functions, which collapse to serial code when
 * the compiler has no OpenMP, so the package builds and runs without it.
 *
 * Type instantiation: a kernel body lives in NAME.inc and is included twice by
 * NAME.c, once with T=float, SFX=f32 and once with T=double, SFX=f64. Inside
 * the .inc, FC_NAME(fc_im2col) expands to fc_im2col_f32 / fc_im2col_f64.
 */
#ifndef FC_INTERNAL_H
#define FC_INTERNAL_H

#include <stdint.h>
#include <stddef.h>
#include "fastconv.h"
#include "fc_compiler.h"

#ifdef _OPENMP
#include <omp.h>
#define FC_PRAGMA(x) _Pragma(#x)
static inline int fc_omp_thread_num(void) { return omp_get_thread_num(); }
static inline int fc_omp_num_threads(void) { return omp_get_num_threads(); }
#else
#define FC_PRAGMA(x)
static inline int fc_omp_thread_num(void) { return 0; }
static inline int fc_omp_num_threads(void) { return 1; }
#endif

/* Parallel for over a loop, only when nthreads > 1 (so a single-threaded
 * call, e.g. in a forked child, never touches the OpenMP runtime's pool). */
#define FC_OMP_PARALLEL_FOR(nthreads) \
    FC_PRAGMA(omp parallel for schedule(static) num_threads(nthreads) if((nthreads) > 1))
#define FC_OMP_PARALLEL(nthreads) \
    FC_PRAGMA(omp parallel num_threads(nthreads) if((nthreads) > 1))

#define FC_CAT_(a, b) a##_##b
#define FC_CAT(a, b) FC_CAT_(a, b)
#define FC_NAME(base) FC_CAT(base, SFX)

static inline int fc_clamp_threads(int nthreads) { return nthreads < 1 ? 1 : nthreads; }

/* Split [0, n) into nparts nearly equal contiguous chunks; chunk i is [*lo, *hi). */
static inline void fc_split(int64_t n, int64_t nparts, int64_t i, int64_t *lo, int64_t *hi)
{
    int64_t base = n / nparts, rem = n % nparts;
    *lo = i * base + (i < rem ? i : rem);
    *hi = *lo + base + (i < rem ? 1 : 0);
}

/* ---- the one geometry check (geom.c) ----------------------------------------
 *
 * Every entry point that takes a geometry calls its check exactly once, before
 * any loop or allocation, and trusts the struct from then on (internal helpers
 * and the per-algorithm kernels a dispatcher calls do not check again).
 * fc_conv_geom_init / fc_pool_geom_init end with the same check, so a struct
 * they made always passes it; the kernels' call only guards against a struct
 * filled by hand. Both return FC_EINVAL for an extent out of range and
 * FC_EOVERFLOW for a size that does not fit in int64.
 *
 * fc_conv_geom_check: N >= 0; C, H, W, K, R, S, groups, strides, dilations,
 * P, Q >= 1; pads >= 0; groups divides C and K; every buffer (N*C*H*W,
 * N*K*P*Q, K*(C/groups)*R*S, C*R*S*P*Q elements) fits in int64 bytes;
 * (P-1)*stride <= INT64_MAX/2 and the padded extent read, (P-1)*stride +
 * (R-1)*dil + 1, fits (likewise for Q, S): so every index and interval bound
 * the kernels form (fc_interval below) fits too. need = FC_GEOM_IM2COL: the
 * geometry as im2col / col2im read it: K and groups are ignored (checked as
 * if 1), and the batch's column matrix N*C*R*S*P*Q must fit too.
 *
 * fc_pool_geom_check: N >= 0; C, H, W, kh, kw, strides, dilations, P, Q >= 1;
 * pads >= 0; the input and output fit in int64 bytes; the padded extent read
 * fits. need = FC_GEOM_WINDOWS also asks that every window hold at least one
 * real element (with dilation one can fall wholly into the padding or between
 * input elements, e.g. H=2, kernel 2, dilation 3, padding 1: taps at -1 and 2;
 * such a window has no maximum and a zero count), O(P + Q). */
enum { FC_GEOM_IM2COL = 1, FC_GEOM_WINDOWS = 2 };
fc_status fc_conv_geom_check(const fc_conv_geom *g, int need);
fc_status fc_pool_geom_check(const fc_pool_geom *g, int need);

/* ---- the one interval solver ------------------------------------------------
 *
 * The j in [0, count) with 0 <= off + j*step < extent form one interval
 * [*lo, *hi), 0 <= *lo <= *hi <= count (empty when *lo == *hi): which output
 * rows a kernel tap reads inside the input (off = tap offset - pad, step =
 * stride), or which taps of a window do (off = window start, step =
 * dilation). Index trick: solved once per tap or window with one ceil
 * division (only when off < 0) and a multiply-compare for the far edge (a
 * floor division only when the interval is cut there), so the loops over
 * the interval need no bounds test. Exact for every int64 off with
 * step >= 1, extent >= 1, count >= 0: the far-edge test is done in uint64
 * (extent - 1 - off < 2^64 when off < extent), with a division instead of
 * the product when either factor has 32 bits or more. */
static inline void fc_interval(int64_t off, int64_t step, int64_t extent, int64_t count,
                               int64_t *lo, int64_t *hi)
{
    uint64_t l = 0;
    int64_t h = count;
    if (off < 0) l = (uint64_t)(-(off + 1)) / (uint64_t)step + 1u;      /* ceil(-off / step) */
    if (off >= extent) {
        h = 0;
    } else if (count > 1) {
        const uint64_t room = (uint64_t)extent - 1u - (uint64_t)off;  /* extent - 1 - off */
        const uint64_t c1 = (uint64_t)count - 1u, st = (uint64_t)step;
        const int cut = ((c1 | st) >> 32) == 0 ? c1 * st > room : c1 > room / st;
        if (cut) h = (int64_t)(room / st) + 1;                       /* < count */
    }
    if (l > (uint64_t)count) l = (uint64_t)count;
    if (h < (int64_t)l) h = (int64_t)l;
    *lo = (int64_t)l;
    *hi = h;
}

/* ---- internal kernel bodies ---------------------------------------------------
 * col2im on a geometry the caller has checked (conv_gemm.c's strided
 * backward-data runs it once per column chunk, inside its own parallel loop):
 * the body of fc_col2im_f32 / _f64 without the check. */
void fc_col2im_run_f32(const fc_conv_geom *g, const float *restrict cols, float *restrict x,
                       int nthreads);
void fc_col2im_run_f64(const fc_conv_geom *g, const double *restrict cols, double *restrict x,
                       int nthreads);

/* The weights of a backward-data pass run as a forward convolution of dy
 * (conv_gemm.inc): wf (C, K/groups, R, S) = w (K, C/groups, R, S) with each
 * group's (k, c) transposed and every filter turned by 180 degrees. Returns 1
 * when every weight is finite: that forward multiplies each weight by dy's
 * zero padding too, so an inf or NaN would make NaN at borders where the
 * definition has no such term, and the caller must take a path that only
 * multiplies real dy elements. */
int fc_conv_turn_w_f32(const fc_conv_geom *g, const float *restrict w, float *restrict wf);
int fc_conv_turn_w_f64(const fc_conv_geom *g, const double *restrict w, double *restrict wf);

/* Kernel workspace (workspace.c): 64-byte aligned, at least `bytes` long,
 * NULL when memory is short; reuses a block a previous call gave back with
 * fc_ws_free instead of going to malloc (and the page faults of fresh
 * memory) every call. */
void *fc_ws_alloc(size_t bytes);
void fc_ws_free(void *p);

#endif /* FC_INTERNAL_H */
