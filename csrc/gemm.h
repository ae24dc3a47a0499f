/*
 * gemm.h: fastconv's own matrix multiply (private to csrc/, not a public API).
 *
 * C (M x N) = A (M x K) * B (K x N) + beta * C, all row-major with leading
 * dimensions lda, ldb, ldc; trans_a / trans_b mean A / B are stored
 * transposed (A as K x M with lda, B as N x K with ldb). beta is 0 (C is
 * overwritten, never read, so it may hold garbage or NaN) or 1 (accumulate).
 *
 * Blocked BLIS-style: B packed into NR-wide panels, A into MR-tall panels,
 * an MR x NR register-blocked micro-kernel chosen at run time by CPU
 * features (AVX-512, AVX2+FMA, or portable C). Every element of C is reduced
 * over K in the same order whatever the blocking of M and N and whatever the
 * thread count, so results are bitwise reproducible.
 *
 * nthreads > 1 splits the work over independent blocks of C (never over K).
 * Returns FC_OK, FC_EINVAL (bad sizes / NULL) or FC_ENOMEM (packing buffers).
 */
#ifndef FC_GEMM_H
#define FC_GEMM_H

#include <stdint.h>
#include "fastconv.h"

fc_status fc_gemm_f32(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                      const float *A, int64_t lda, const float *B, int64_t ldb,
                      float beta, float *C, int64_t ldc, int nthreads);
fc_status fc_gemm_f64(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                      const double *A, int64_t lda, const double *B, int64_t ldb,
                      double beta, double *C, int64_t ldc, int nthreads);

/* Which micro-kernel fc_gemm uses: "avx512", "avx2" or "generic". Chosen once
 * from the CPU features, capped by the FASTCONV_ISA environment variable
 * (generic | avx2 | avx512) when set; fc_gemm_set_isa overrides at run time
 * (0 = generic, 1 = avx2, 2 = avx512; capped by what the CPU supports). */
const char *fc_gemm_isa(void);
int fc_gemm_set_isa(int level);

#endif
