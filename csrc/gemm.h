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

#include <stddef.h>
#include <stdint.h>
#include "fastconv.h"

fc_status fc_gemm_f32(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                      const float *A, int64_t lda, const float *B, int64_t ldb,
                      float beta, float *C, int64_t ldc, int nthreads);
fc_status fc_gemm_f64(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                      const double *A, int64_t lda, const double *B, int64_t ldb,
                      double beta, double *C, int64_t ldc, int nthreads);

/* The micro-kernel fc_gemm uses is that of fastconv's ISA level
 * (fc_isa_level / fc_set_isa in fastconv.h, runtime.c), read at each call. */

/* ---- the driver behind fc_gemm, with pluggable operands ----------------
 *
 * Used by conv_gemm.c to pack im2col tiles straight from the input (implicit
 * GEMM) and by anyone who needs to run one block of a product inside their
 * own parallel region. Everything here is single-threaded.
 *
 * An operand is a set of "lines" (rows of a stored matrix): line l starts at
 * base + lines[l] (or base + l * ld when lines is NULL), and position t of a
 * line sits at offset (t / run) * pitch + t % run from its start (at t when
 * run <= 0). With run = Q and pitch = a padded row width, a line is one input
 * channel plane seen through one filter tap: an im2col row. k_lines says
 * which dimension the lines index: for A (M x K), k_lines = 0 means A[i][k]
 * = line i, position k (row-major A), 1 means line k, position i (A stored
 * transposed); for B (K x N), k_lines = 1 means B[k][j] = line k, position j
 * (row-major B), 0 means line j, position k (B stored transposed).
 * k_lines = FC_GEMM_IN_PLACE (B only, with a line table and contiguous lines,
 * run <= 0): as 1, but the SIMD micro-kernels read B's rows in place instead
 * of packing them (the portable one still packs); for rows that are already
 * in cache (otherwise 1 is faster).
 */
#define FC_GEMM_IN_PLACE 2
typedef struct {
    const void *base;          /* float * or double *, as the kernel's type */
    const int64_t *lines;      /* line offsets in elements, or NULL */
    int64_t ld;                /* line stride when lines == NULL */
    int64_t run, pitch;        /* position layout, see above */
    int k_lines;
} fc_gemm_operand;

/* One micro-kernel with its tile and cache blocking, for one element type.
 * Take it once per operation (fc_gemm_kernel_f32 reads the current ISA
 * level) and pass the same one to every call below, so packed buffers and
 * runs always agree on the tile. */
typedef struct fc_gemm_kernel fc_gemm_kernel;
const fc_gemm_kernel *fc_gemm_kernel_f32(void);
const fc_gemm_kernel *fc_gemm_kernel_f64(void);
/* The kernel for a product with M rows of C (A's rows): at some ISA levels a
 * tile shape that fills M better (gemm.c says when); same results. */
const fc_gemm_kernel *fc_gemm_kernel_rows_f32(int64_t M);
const fc_gemm_kernel *fc_gemm_kernel_rows_f64(int64_t M);
int fc_gemm_kernel_mr(const fc_gemm_kernel *kn);
int fc_gemm_kernel_nr(const fc_gemm_kernel *kn);
int fc_gemm_kernel_isa(const fc_gemm_kernel *kn);   /* FC_ISA_GENERIC, _AVX2 or _AVX512 */

/* Bytes of workspace fc_gemm_run needs (64-byte aligned is best). */
size_t fc_gemm_work_bytes(const fc_gemm_kernel *kn);
/* Bytes of an A (M x K) packed once by fc_gemm_pack_a and reused by many
 * fc_gemm_run calls; 0 if the size overflows. */
size_t fc_gemm_packed_a_bytes(const fc_gemm_kernel *kn, int64_t M, int64_t K);
/* FC_ENOMEM if its small scratch cannot be allocated. */
fc_status fc_gemm_pack_a(const fc_gemm_kernel *kn, const fc_gemm_operand *A, int64_t M, int64_t K,
                         void *packed);
/* The same in pieces (e.g. one per thread): the packed A is made of
 * fc_gemm_pack_a_slices(kn, K) independent K-slices; this packs slices
 * [s_lo, s_hi) into the same buffer. */
int64_t fc_gemm_pack_a_slices(const fc_gemm_kernel *kn, int64_t K);
fc_status fc_gemm_pack_a_part(const fc_gemm_kernel *kn, const fc_gemm_operand *A, int64_t M,
                              int64_t K, void *packed, int64_t s_lo, int64_t s_hi);

/* C[0:M, 0:N] (row-major, ldc) = A[i0:i0+M, 0:K] . B[0:K, j0:j0+N]
 * (+ C when accumulate). A comes from packed_a (made by fc_gemm_pack_a for
 * exactly these M, K rows, i.e. i0 is ignored) when it is not NULL, else from
 * A. work: fc_gemm_work_bytes bytes, or NULL to allocate (FC_ENOMEM on
 * failure). Each C element is one multiply-add chain over k = 0..K-1 that
 * starts from 0 (or from C when accumulate), whatever M, N, i0, j0. */
fc_status fc_gemm_run(const fc_gemm_kernel *kn, int64_t M, int64_t N, int64_t K,
                      const fc_gemm_operand *A, int64_t i0, const void *packed_a,
                      const fc_gemm_operand *B, int64_t j0,
                      int accumulate, void *C, int64_t ldc, void *work);
/* The same, then row_bias[i] (M values, or NULL) added to row i of C after
 * the last product: C = A . B (+ C) + bias, the bias last. */
fc_status fc_gemm_run_bias(const fc_gemm_kernel *kn, int64_t M, int64_t N, int64_t K,
                           const fc_gemm_operand *A, int64_t i0, const void *packed_a,
                           const fc_gemm_operand *B, int64_t j0, int accumulate, void *C,
                           int64_t ldc, const void *row_bias, void *work);

/* B (K x N) packed whole once (e.g. a layer's weights at compile time), for
 * many fc_gemm_run_packed_b calls with the same kernel: its bytes (0 if the
 * size overflows), and the packing (FC_ENOMEM if its scratch cannot be had). */
size_t fc_gemm_packed_b_bytes(const fc_gemm_kernel *kn, int64_t K, int64_t N);
fc_status fc_gemm_pack_b(const fc_gemm_kernel *kn, const fc_gemm_operand *B, int64_t K,
                         int64_t N, void *packed);
/* C[0:M, 0:N] (row-major, ldc) = A[i0:i0+M, 0:K] . B[0:K, j0:j0+N], B packed
 * by fc_gemm_pack_b with n_b columns; i0 >= 0, j0 a multiple of the kernel's
 * NR (FC_EINVAL otherwise). Each C element is the same chain over k as
 * fc_gemm_run's. */
fc_status fc_gemm_run_packed_b(const fc_gemm_kernel *kn, int64_t M, int64_t N, int64_t K,
                               const fc_gemm_operand *A, int64_t i0, const void *packed_b,
                               int64_t n_b, int64_t j0, void *C, int64_t ldc, void *work);

#endif
