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

/* Kernel workspace (workspace.c): 64-byte aligned, at least `bytes` long,
 * NULL when memory is short; reuses a block a previous call gave back with
 * fc_ws_free instead of going to malloc (and the page faults of fresh
 * memory) every call. */
void *fc_ws_alloc(size_t bytes);
void fc_ws_free(void *p);

#endif /* FC_INTERNAL_H */
