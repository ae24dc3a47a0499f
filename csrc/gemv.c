/*
 * gemv.c: y = W x for row-major W (M, K), a batch-1 (or few-row) fully
 * connected layer (see plan.h). Memory bound: W is streamed once per call,
 * so the kernels take 4 rows at a time (4 loads of W against one load of x,
 * two accumulators per row to cover the multiply-add latency), then run every
 * vector of the batch against those 4 rows while they sit in L1.
 *
 * Variants: AVX-512, AVX2+FMA and portable C, compiled with function target
 * attributes (no -march) and chosen at each call from fastconv's GEMM
 * setting (so FASTCONV_ISA and fc_set_isa apply here too). The SIMD
 * variants fuse multiply-adds and reduce lanes in a tree; the portable one
 * sums in 4 interleaved chains: variants differ by rounding only, and are
 * exact on integer data whose sums fit in the mantissa.
 */
#include "fc_internal.h"
#include "gemm.h"
#include "plan.h"

#if FC_X86_SIMD && (defined(__x86_64__) || defined(_M_X64)) && !defined(FC_GEMM_NO_SIMD)
#define FC_GEMV_X86 1
#include <immintrin.h>
#define FC_TGT512 FC_TARGET("avx512f,avx512dq,avx2,fma")
#define FC_TGT256 FC_TARGET("avx2,fma")
#else
#define FC_GEMV_X86 0
#endif

/* The SIMD level: the GEMM's current one (0 generic, 1 avx2, 2 avx512). */
static int gemv_isa(int dsize)
{
    return fc_gemm_kernel_isa(dsize == 4 ? fc_gemm_kernel_f32() : fc_gemm_kernel_f64());
}

/* ---- portable ------------------------------------------------------------ */
#define FC_GEMV_GENERIC(T, SFX)                                                           \
static void gemv_generic_##SFX(int64_t m0, int64_t m1, int64_t K, const T *W, int64_t ldw, \
                               int64_t nv, const T *x, int64_t ldx, const T *bias, T *y,  \
                               int64_t ldy)                                               \
{                                                                                         \
    for (int64_t i = m0; i < m1; i++) {                                                   \
        const T *w = W + i * ldw;                                                         \
        for (int64_t v = 0; v < nv; v++) {                                                \
            const T *xv = x + v * ldx;                                                    \
            T s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                             \
            int64_t k = 0;                                                                \
            for (; k + 4 <= K; k += 4) {                                                  \
                s0 += w[k] * xv[k];                                                       \
                s1 += w[k + 1] * xv[k + 1];                                               \
                s2 += w[k + 2] * xv[k + 2];                                               \
                s3 += w[k + 3] * xv[k + 3];                                               \
            }                                                                             \
            for (; k < K; k++) s0 += w[k] * xv[k];                                        \
            T s = (s0 + s1) + (s2 + s3);                                                  \
            if (bias != NULL) s += bias[i];                                               \
            y[v * ldy + i] = s;                                                           \
        }                                                                                 \
    }                                                                                     \
}
FC_GEMV_GENERIC(float, f32)
FC_GEMV_GENERIC(double, f64)

#if FC_GEMV_X86
/* ---- SIMD ------------------------------------------------------------------
 * One body for every (ISA, type): VL lanes, 4 rows x 2 accumulators. The last
 * partial vector of a row is loaded under a mask (never past the row end). */
static const int32_t gemv_mask32[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
static const int64_t gemv_mask64[8] = {-1, -1, -1, -1, 0, 0, 0, 0};

static inline FC_TGT256 float hsum256_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

static inline FC_TGT256 double hsum256_pd(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}

#define FC_GEMV_SIMD(NAME, TGT, T, VL, VT, MT, ZERO, LOADU, MLOAD, FMA, ADD, HSUM, MASK)      \
static TGT void NAME(int64_t m0, int64_t m1, int64_t K, const T *W, int64_t ldw, int64_t nv,  \
                     const T *x, int64_t ldx, const T *bias, T *y, int64_t ldy)               \
{                                                                                             \
    const int64_t K2 = K - K % (2 * VL), K1 = K - K % VL;                                      \
    const MT mt = MASK(K - K1);                                                               \
    int64_t i = m0;                                                                           \
    for (; i + 4 <= m1; i += 4) {                                                             \
        const T *w0 = W + i * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;           \
        for (int64_t v = 0; v < nv; v++) {                                                    \
            const T *xv = x + v * ldx;                                                        \
            VT a0 = ZERO(), a1 = ZERO(), a2 = ZERO(), a3 = ZERO();                            \
            VT b0 = ZERO(), b1 = ZERO(), b2 = ZERO(), b3 = ZERO();                            \
            int64_t k = 0;                                                                    \
            for (; k < K2; k += 2 * VL) {                                                     \
                const VT x0 = LOADU(xv + k), x1 = LOADU(xv + k + VL);                         \
                a0 = FMA(LOADU(w0 + k), x0, a0); b0 = FMA(LOADU(w0 + k + VL), x1, b0);        \
                a1 = FMA(LOADU(w1 + k), x0, a1); b1 = FMA(LOADU(w1 + k + VL), x1, b1);        \
                a2 = FMA(LOADU(w2 + k), x0, a2); b2 = FMA(LOADU(w2 + k + VL), x1, b2);        \
                a3 = FMA(LOADU(w3 + k), x0, a3); b3 = FMA(LOADU(w3 + k + VL), x1, b3);        \
            }                                                                                 \
            for (; k < K1; k += VL) {                                                         \
                const VT x0 = LOADU(xv + k);                                                  \
                a0 = FMA(LOADU(w0 + k), x0, a0); a1 = FMA(LOADU(w1 + k), x0, a1);             \
                a2 = FMA(LOADU(w2 + k), x0, a2); a3 = FMA(LOADU(w3 + k), x0, a3);             \
            }                                                                                 \
            if (K1 < K) {                                                                     \
                const VT x0 = MLOAD(xv + K1, mt);                                             \
                b0 = FMA(MLOAD(w0 + K1, mt), x0, b0); b1 = FMA(MLOAD(w1 + K1, mt), x0, b1);   \
                b2 = FMA(MLOAD(w2 + K1, mt), x0, b2); b3 = FMA(MLOAD(w3 + K1, mt), x0, b3);   \
            }                                                                                 \
            T s0 = HSUM(ADD(a0, b0)), s1 = HSUM(ADD(a1, b1));                                 \
            T s2 = HSUM(ADD(a2, b2)), s3 = HSUM(ADD(a3, b3));                                 \
            if (bias != NULL) {                                                               \
                s0 += bias[i]; s1 += bias[i + 1]; s2 += bias[i + 2]; s3 += bias[i + 3];       \
            }                                                                                 \
            T *yv = y + v * ldy + i;                                                          \
            yv[0] = s0; yv[1] = s1; yv[2] = s2; yv[3] = s3;                                   \
        }                                                                                     \
    }                                                                                         \
    for (; i < m1; i++) {                                                                     \
        const T *w0 = W + i * ldw;                                                            \
        for (int64_t v = 0; v < nv; v++) {                                                    \
            const T *xv = x + v * ldx;                                                        \
            VT a0 = ZERO(), b0 = ZERO();                                                      \
            int64_t k = 0;                                                                    \
            for (; k < K2; k += 2 * VL) {                                                     \
                a0 = FMA(LOADU(w0 + k), LOADU(xv + k), a0);                                   \
                b0 = FMA(LOADU(w0 + k + VL), LOADU(xv + k + VL), b0);                         \
            }                                                                                 \
            for (; k < K1; k += VL) a0 = FMA(LOADU(w0 + k), LOADU(xv + k), a0);               \
            if (K1 < K) b0 = FMA(MLOAD(w0 + K1, mt), MLOAD(xv + K1, mt), b0);                 \
            T s0 = HSUM(ADD(a0, b0));                                                         \
            if (bias != NULL) s0 += bias[i];                                                  \
            y[v * ldy + i] = s0;                                                              \
        }                                                                                     \
    }                                                                                         \
}

/* AVX-512 */
#define M512_PS(n) ((__mmask16)((1u << (n)) - 1u))
#define M512_PD(n) ((__mmask8)((1u << (n)) - 1u))
#define MLOAD512_PS(p, m) _mm512_maskz_loadu_ps(m, p)
#define MLOAD512_PD(p, m) _mm512_maskz_loadu_pd(m, p)
FC_GEMV_SIMD(gemv_avx512_f32, FC_TGT512, float, 16, __m512, __mmask16, _mm512_setzero_ps,
             _mm512_loadu_ps, MLOAD512_PS, _mm512_fmadd_ps, _mm512_add_ps, _mm512_reduce_add_ps,
             M512_PS)
FC_GEMV_SIMD(gemv_avx512_f64, FC_TGT512, double, 8, __m512d, __mmask8, _mm512_setzero_pd,
             _mm512_loadu_pd, MLOAD512_PD, _mm512_fmadd_pd, _mm512_add_pd, _mm512_reduce_add_pd,
             M512_PD)

/* AVX2: masks from a sliding window over a table of -1s then 0s */
#define M256_PS(n) _mm256_loadu_si256((const __m256i *)(gemv_mask32 + 8 - (n)))
#define M256_PD(n) _mm256_loadu_si256((const __m256i *)(gemv_mask64 + 4 - (n)))
#define MLOAD256_PS(p, m) _mm256_maskload_ps(p, m)
#define MLOAD256_PD(p, m) _mm256_maskload_pd(p, m)
FC_GEMV_SIMD(gemv_avx2_f32, FC_TGT256, float, 8, __m256, __m256i, _mm256_setzero_ps,
             _mm256_loadu_ps, MLOAD256_PS, _mm256_fmadd_ps, _mm256_add_ps, hsum256_ps, M256_PS)
FC_GEMV_SIMD(gemv_avx2_f64, FC_TGT256, double, 4, __m256d, __m256i, _mm256_setzero_pd,
             _mm256_loadu_pd, MLOAD256_PD, _mm256_fmadd_pd, _mm256_add_pd, hsum256_pd, M256_PD)
#endif

#define FC_GEMV_API(T, SFX)                                                                   \
void fc_gemv_rows_##SFX(int64_t m0, int64_t m1, int64_t K, const T *W, int64_t ldw, int64_t nv, \
                        const T *x, int64_t ldx, const T *bias, T *y, int64_t ldy)            \
{                                                                                             \
    if (m1 <= m0 || nv <= 0) return;                                                          \
    switch (FC_GEMV_X86 ? gemv_isa((int)sizeof(T)) : 0) {                                     \
    FC_GEMV_CASES_##SFX                                                                       \
    default: gemv_generic_##SFX(m0, m1, K, W, ldw, nv, x, ldx, bias, y, ldy);                 \
    }                                                                                         \
}                                                                                             \
fc_status fc_gemv_##SFX(int64_t M, int64_t K, const T *W, int64_t ldw, int64_t nv,           \
                        const T *x, int64_t ldx, const T *bias, T *y, int64_t ldy,            \
                        int nthreads)                                                         \
{                                                                                             \
    if (M < 0 || K < 0 || nv < 0 || ldw < K || ldx < K || ldy < M) return FC_EINVAL;          \
    if (M == 0 || nv == 0) return FC_OK;                                                      \
    if (y == NULL || (K > 0 && (W == NULL || x == NULL))) return FC_EINVAL;                   \
    /* rows in blocks of 16 per thread; parallel only when W is worth it */                  \
    const int nt = M * K * nv >= ((int64_t)1 << 16) ? fc_clamp_threads(nthreads) : 1;          \
    if (nt <= 1) {          /* no OpenMP region at all: even a serial one costs ~0.5 us */   \
        fc_gemv_rows_##SFX(0, M, K, W, ldw, nv, x, ldx, bias, y, ldy);                        \
        return FC_OK;                                                                         \
    }                                                                                         \
    const int64_t nblk = (M + 15) / 16;                                                       \
    FC_OMP_PARALLEL(nt)                                                                       \
    {                                                                                         \
        int64_t lo, hi;                                                                       \
        fc_split(nblk, fc_omp_num_threads(), fc_omp_thread_num(), &lo, &hi);                  \
        lo *= 16;                                                                             \
        hi = hi * 16 < M ? hi * 16 : M;                                                       \
        fc_gemv_rows_##SFX(lo, hi, K, W, ldw, nv, x, ldx, bias, y, ldy);                      \
    }                                                                                         \
    return FC_OK;                                                                             \
}

#if FC_GEMV_X86
#define FC_GEMV_CASES_f32                                                                     \
    case 2: gemv_avx512_f32(m0, m1, K, W, ldw, nv, x, ldx, bias, y, ldy); break;              \
    case 1: gemv_avx2_f32(m0, m1, K, W, ldw, nv, x, ldx, bias, y, ldy); break;
#define FC_GEMV_CASES_f64                                                                     \
    case 2: gemv_avx512_f64(m0, m1, K, W, ldw, nv, x, ldx, bias, y, ldy); break;              \
    case 1: gemv_avx2_f64(m0, m1, K, W, ldw, nv, x, ldx, bias, y, ldy); break;
#else
#define FC_GEMV_CASES_f32
#define FC_GEMV_CASES_f64
#endif

FC_GEMV_API(float, f32)
FC_GEMV_API(double, f64)
