/*
 * qconv.c: int8 convolution entry points (the GEMM driver of qgemm.c reads
 * C4 images in place), the NCHW <-> C4 layout changes, uint8 im2col, max
 * pooling (NCHW and C4) and ReLU on uint8, and the float32 <-> uint8
 * conversions at a quantized network's edges (qops.h).
 */
#include <stdlib.h>
#include <string.h>
#include "fc_internal.h"
#include "qgemm.h"

#if FC_SSE2
#include <emmintrin.h>
#include <immintrin.h>
#define FC_QC_SSE2 1
#else
#define FC_QC_SSE2 0
#endif

#if FC_X86_SIMD && !defined(FC_GEMM_NO_SIMD)
#define FC_QC_X86 1
#else
#define FC_QC_X86 0
#endif

#define QCHUNK_L 4096

static fc_status qconv_check_geom(const fc_conv_geom *g)
{
    if (g == NULL) return FC_EINVAL;
    if (g->N < 0 || g->C < 1 || g->H < 1 || g->W < 1 || g->K < 1 || g->R < 1 || g->S < 1)
        return FC_EINVAL;
    if (g->groups < 1 || g->C % g->groups || g->K % g->groups) return FC_EINVAL;
    if (g->stride_h < 1 || g->stride_w < 1 || g->dil_h < 1 || g->dil_w < 1) return FC_EINVAL;
    if (g->pad_h < 0 || g->pad_w < 0 || g->P < 1 || g->Q < 1) return FC_EINVAL;
    return FC_OK;
}

/* Row k = (c, r, s) of one image's im2col, columns j0 .. j0+nc-1. Output
 * column j is pixel (p, q) = (j / Q, j % Q); it reads input (h, w) = (p*sh -
 * ph + r*dh, q*sw - pw + s*dw), or pad outside the input. Walked one output
 * row (a run of q) at a time: with stride 1 a run is pad bytes, one memcpy,
 * pad bytes. The unsigned compare catches h < 0 and h >= H at once. */
void fc_qconv_fill_row(const fc_conv_geom *g, const uint8_t *x_img, int64_t c, int64_t r,
                       int64_t s, int64_t j0, int64_t nc, uint8_t pad, uint8_t *dst)
{
    const int64_t H = g->H, W = g->W, Q = g->Q;
    const uint8_t *plane = x_img + c * H * W;
    const int64_t end = j0 + nc;
    int64_t j = j0, p = j0 / Q, q = j0 % Q;
    while (j < end) {
        const int64_t run = Q - q < end - j ? Q - q : end - j;
        const int64_t h = p * g->stride_h - g->pad_h + r * g->dil_h;
        uint8_t *d = dst + (j - j0);
        if ((uint64_t)h >= (uint64_t)H) {
            memset(d, pad, (size_t)run);
        } else {
            const uint8_t *src = plane + h * W;
            const int64_t w0 = q * g->stride_w - g->pad_w + s * g->dil_w;
            if (g->stride_w == 1) {
                int64_t lo = w0 < 0 ? -w0 : 0, hi = W - w0;
                if (lo > run) lo = run;
                if (hi > run) hi = run;
                if (hi < lo) hi = lo;
                memset(d, pad, (size_t)lo);
                memcpy(d + lo, src + w0 + lo, (size_t)(hi - lo));
                memset(d + hi, pad, (size_t)(run - hi));
            } else {
                for (int64_t t = 0; t < run; t++) {
                    const int64_t wi = w0 + t * g->stride_w;
                    d[t] = (uint64_t)wi < (uint64_t)W ? src[wi] : pad;
                }
            }
        }
        j += run;
        p++;
        q = 0;
    }
}

fc_status fc_qim2col_u8(const fc_conv_geom *g, const uint8_t *restrict x, uint8_t pad_value,
                        uint8_t *restrict cols, int nthreads)
{
    fc_status st = qconv_check_geom(g);
    if (st != FC_OK) return st;
    if (g->N == 0) return FC_OK;
    if (x == NULL || cols == NULL) return FC_EINVAL;
    const int64_t RS = g->R * g->S, PQ = g->P * g->Q, rows = g->N * g->C * RS;
    nthreads = fc_clamp_threads(nthreads);
    FC_OMP_PARALLEL_FOR(nthreads)
    for (int64_t row = 0; row < rows; row++) {
        const int64_t n = row / (g->C * RS), k = row % (g->C * RS);
        const int64_t c = k / RS, r = (k / g->S) % g->R, s = k % g->S;
        fc_qconv_fill_row(g, x + n * g->C * g->H * g->W, c, r, s, 0, PQ, pad_value,
                          cols + row * PQ);
    }
    return FC_OK;
}

/* Channel quads of a conv's input for the C4 kernels: ceil(C/4) with one
 * group; C/groups must be a multiple of 4 with several. */
static int64_t conv_quads(const fc_conv_geom *g)
{
    const int64_t G = g->groups, Cg = g->C / G;
    if (G == 1) return (g->C + 3) / 4;
    return Cg % 4 ? -1 : Cg / 4;
}

fc_status fc_qconv2d_c4(const fc_conv_geom *g, const uint8_t *restrict x_c4,
                        const uint8_t *restrict packed_w, const int32_t *restrict rowsum,
                        const fc_qepi *epi, int y_c4, void *restrict y, int nthreads)
{
    fc_status st = qconv_check_geom(g);
    if (st != FC_OK) return st;
    const int64_t G = g->groups, M = g->K / G, Cgq = conv_quads(g);
    if (Cgq < 0) return FC_EINVAL;
    const int64_t Kd = Cgq * g->R * g->S * 4;
    if (Kd > FC_QGEMM_MAX_K) return FC_EINVAL;
    st = fc_qepi_check(epi, g->K);
    if (st != FC_OK) return st;
    if (y_c4 && (epi->out_kind != FC_QOUT_U8 || (G > 1 && M % 4))) return FC_EINVAL;
    if (g->N == 0) return FC_OK;
    if (x_c4 == NULL || packed_w == NULL || rowsum == NULL || y == NULL) return FC_EINVAL;
    fc_qsrc s;
    memset(&s, 0, sizeof(s));
    s.kind = FC_QSRC_C4;
    s.a = x_c4;
    s.g = g;
    s.nprob = g->N * G;
    s.packed_w = packed_w;
    s.wbytes = fc_qgemm_packed_bytes(M, Kd);
    s.rowsum = rowsum;
    s.c = (char *)y;
    s.ldc_row = g->P * g->Q;
    s.ldc_col = 1;
    s.esize = epi->out_kind == FC_QOUT_U8 ? 1 : 4;
    s.pad = (uint8_t)epi->a_zero;
    s.c4_out = y_c4;
    return fc_qgemm_drive(&s, M, g->P * g->Q, Kd, epi, nthreads);
}

fc_status fc_qconv2d_u8(const fc_conv_geom *g, const uint8_t *restrict x,
                        const uint8_t *restrict packed_w, const int32_t *restrict rowsum,
                        const fc_qepi *epi, void *restrict y, int nthreads)
{
    fc_status st = qconv_check_geom(g);
    if (st != FC_OK) return st;
    const int64_t Cgq = conv_quads(g);
    if (Cgq < 0) return FC_EINVAL;
    if (g->N == 0) return FC_OK;
    if (x == NULL) return FC_EINVAL;
    const int64_t Cq = g->groups == 1 ? Cgq : g->groups * Cgq;
    uint8_t *x4 = (uint8_t *)malloc((size_t)(g->N * Cq * g->H * g->W * 4));
    if (x4 == NULL) return FC_ENOMEM;
    st = fc_qreorder_to_c4(g->N, g->C, g->H * g->W, x, (uint8_t)epi->a_zero, x4, nthreads);
    if (st == FC_OK) st = fc_qconv2d_c4(g, x4, packed_w, rowsum, epi, 0, y, nthreads);
    free(x4);
    return st;
}

/* ---- layout changes ----------------------------------------------------------- */

fc_status fc_qreorder_to_c4(int64_t N, int64_t C, int64_t L, const uint8_t *restrict x,
                            uint8_t pad, uint8_t *restrict y, int nthreads)
{
    if (N < 0 || C < 1 || L < 0) return FC_EINVAL;
    if (N == 0 || L == 0) return FC_OK;
    if (x == NULL || y == NULL) return FC_EINVAL;
    const int64_t Cq = (C + 3) / 4, jobs = N * Cq;
    nthreads = fc_clamp_threads(nthreads);
    FC_OMP_PARALLEL(nthreads)
    {
        uint8_t padrow[QCHUNK_L];
        memset(padrow, pad, sizeof(padrow));
        FC_PRAGMA(omp for schedule(static))
        for (int64_t jb = 0; jb < jobs; jb++) {
            const int64_t n = jb / Cq, cq = jb % Cq;
            for (int64_t l0 = 0; l0 < L; l0 += QCHUNK_L) {
                const int64_t len = L - l0 < QCHUNK_L ? L - l0 : QCHUNK_L;
                const uint8_t *r[4];
                for (int t = 0; t < 4; t++) {
                    const int64_t c = 4 * cq + t;
                    r[t] = c < C ? x + (n * C + c) * L + l0 : padrow;
                }
                fc_qinterleave4(r[0], r[1], r[2], r[3], len, len, y + ((n * Cq + cq) * L + l0) * 4);
            }
        }
    }
    return FC_OK;
}

fc_status fc_qreorder_from_c4(int64_t N, int64_t C, int64_t L, const uint8_t *restrict x,
                              uint8_t *restrict y, int nthreads)
{
    if (N < 0 || C < 1 || L < 0) return FC_EINVAL;
    if (N == 0 || L == 0) return FC_OK;
    if (x == NULL || y == NULL) return FC_EINVAL;
    const int64_t Cq = (C + 3) / 4, planes = N * C;
    nthreads = fc_clamp_threads(nthreads);
    FC_OMP_PARALLEL_FOR(nthreads)
    for (int64_t pl = 0; pl < planes; pl++) {
        const int64_t n = pl / C, c = pl % C;
        const uint8_t *src = x + (n * Cq + c / 4) * L * 4 + c % 4;
        uint8_t *d = y + pl * L;
        for (int64_t i = 0; i < L; i++) d[i] = src[4 * i];
    }
    return FC_OK;
}

/* ---- max pooling ----------------------------------------------------------- */

static fc_status qpool_check_geom(const fc_pool_geom *g)
{
    if (g == NULL) return FC_EINVAL;
    if (g->N < 0 || g->C < 1 || g->H < 1 || g->W < 1 || g->kh < 1 || g->kw < 1) return FC_EINVAL;
    if (g->stride_h < 1 || g->stride_w < 1 || g->dil_h < 1 || g->dil_w < 1) return FC_EINVAL;
    if (g->pad_h < 0 || g->pad_w < 0 || g->P < 1 || g->Q < 1) return FC_EINVAL;
    return FC_OK;
}

/* 2x2 windows, stride 2, no padding, every window inside the input. */
static void qmax2x2(const uint8_t *xp, int64_t W, int64_t P, int64_t Q, uint8_t *yp)
{
    for (int64_t p = 0; p < P; p++) {
        const uint8_t *r0 = xp + 2 * p * W, *r1 = r0 + W;
        uint8_t *o = yp + p * Q;
        int64_t q = 0;
#if FC_QC_SSE2
        const __m128i lowbytes = _mm_set1_epi16(0x00ff);
        for (; q + 16 <= Q; q += 16) {
            /* within each 16-bit lane (even, odd): max with the lane shifted down a byte */
            __m128i a0 = _mm_loadu_si128((const __m128i *)(r0 + 2 * q));
            __m128i a1 = _mm_loadu_si128((const __m128i *)(r0 + 2 * q + 16));
            __m128i b0 = _mm_loadu_si128((const __m128i *)(r1 + 2 * q));
            __m128i b1 = _mm_loadu_si128((const __m128i *)(r1 + 2 * q + 16));
            __m128i m0 = _mm_max_epu8(a0, b0), m1 = _mm_max_epu8(a1, b1);
            m0 = _mm_and_si128(_mm_max_epu8(m0, _mm_srli_epi16(m0, 8)), lowbytes);
            m1 = _mm_and_si128(_mm_max_epu8(m1, _mm_srli_epi16(m1, 8)), lowbytes);
            _mm_storeu_si128((__m128i *)(o + q), _mm_packus_epi16(m0, m1));
        }
#endif
        for (; q < Q; q++) {
            uint8_t a = r0[2 * q] > r0[2 * q + 1] ? r0[2 * q] : r0[2 * q + 1];
            uint8_t b = r1[2 * q] > r1[2 * q + 1] ? r1[2 * q] : r1[2 * q + 1];
            o[q] = a > b ? a : b;
        }
    }
}

fc_status fc_qmaxpool2d_u8(const fc_pool_geom *g, const uint8_t *restrict x,
                           uint8_t *restrict y, int nthreads)
{
    fc_status st = qpool_check_geom(g);
    if (st != FC_OK) return st;
    if (g->N == 0) return FC_OK;
    if (x == NULL || y == NULL) return FC_EINVAL;
    const int64_t H = g->H, W = g->W, P = g->P, Q = g->Q, planes = g->N * g->C;
    const int fast = g->kh == 2 && g->kw == 2 && g->stride_h == 2 && g->stride_w == 2
                     && g->pad_h == 0 && g->pad_w == 0 && g->dil_h == 1 && g->dil_w == 1
                     && 2 * P <= H && 2 * Q <= W;
    nthreads = fc_clamp_threads(nthreads);
    FC_OMP_PARALLEL_FOR(nthreads)
    for (int64_t pl = 0; pl < planes; pl++) {
        const uint8_t *xp = x + pl * H * W;
        uint8_t *yp = y + pl * P * Q;
        if (fast) {
            qmax2x2(xp, W, P, Q, yp);
            continue;
        }
        for (int64_t p = 0; p < P; p++) {
            const int64_t h0 = p * g->stride_h - g->pad_h;
            for (int64_t q = 0; q < Q; q++) {
                const int64_t w0 = q * g->stride_w - g->pad_w;
                uint8_t m = 0;
                for (int64_t i = 0; i < g->kh; i++) {
                    const int64_t h = h0 + i * g->dil_h;
                    if ((uint64_t)h >= (uint64_t)H) continue;
                    for (int64_t j = 0; j < g->kw; j++) {
                        const int64_t w = w0 + j * g->dil_w;
                        if ((uint64_t)w < (uint64_t)W && xp[h * W + w] > m) m = xp[h * W + w];
                    }
                }
                yp[p * Q + q] = m;
            }
        }
    }
    return FC_OK;
}

/* Max pooling of C4 images: g->C counts channel quads, each pixel is 4 bytes
 * (4 channels) maximised bytewise. 2x2 / stride 2 windows: 4 output pixels per
 * step (max of the two rows, then of the even and odd pixels). */
static void qmax2x2_c4(const uint8_t *xp, int64_t W, int64_t P, int64_t Q, uint8_t *yp)
{
    for (int64_t p = 0; p < P; p++) {
        const uint8_t *r0 = xp + 2 * p * W * 4, *r1 = r0 + W * 4;
        uint8_t *o = yp + p * Q * 4;
        int64_t q = 0;
#if FC_QC_SSE2
        for (; q + 4 <= Q; q += 4) {
            const __m128i a0 = _mm_loadu_si128((const __m128i *)(r0 + 8 * q));
            const __m128i a1 = _mm_loadu_si128((const __m128i *)(r0 + 8 * q + 16));
            const __m128i b0 = _mm_loadu_si128((const __m128i *)(r1 + 8 * q));
            const __m128i b1 = _mm_loadu_si128((const __m128i *)(r1 + 8 * q + 16));
            const __m128 m0 = _mm_castsi128_ps(_mm_max_epu8(a0, b0));
            const __m128 m1 = _mm_castsi128_ps(_mm_max_epu8(a1, b1));
            const __m128i ev = _mm_castps_si128(_mm_shuffle_ps(m0, m1, _MM_SHUFFLE(2, 0, 2, 0)));
            const __m128i od = _mm_castps_si128(_mm_shuffle_ps(m0, m1, _MM_SHUFFLE(3, 1, 3, 1)));
            _mm_storeu_si128((__m128i *)(o + 4 * q), _mm_max_epu8(ev, od));
        }
#endif
        for (; q < Q; q++)
            for (int t = 0; t < 4; t++) {
                uint8_t m = r0[8 * q + t];
                if (r0[8 * q + 4 + t] > m) m = r0[8 * q + 4 + t];
                if (r1[8 * q + t] > m) m = r1[8 * q + t];
                if (r1[8 * q + 4 + t] > m) m = r1[8 * q + 4 + t];
                o[4 * q + t] = m;
            }
    }
}

fc_status fc_qmaxpool2d_c4(const fc_pool_geom *g, const uint8_t *restrict x,
                           uint8_t *restrict y, int nthreads)
{
    fc_status st = qpool_check_geom(g);
    if (st != FC_OK) return st;
    if (g->N == 0) return FC_OK;
    if (x == NULL || y == NULL) return FC_EINVAL;
    const int64_t H = g->H, W = g->W, P = g->P, Q = g->Q, planes = g->N * g->C;
    const int fast = g->kh == 2 && g->kw == 2 && g->stride_h == 2 && g->stride_w == 2
                     && g->pad_h == 0 && g->pad_w == 0 && g->dil_h == 1 && g->dil_w == 1
                     && 2 * P <= H && 2 * Q <= W;
    nthreads = fc_clamp_threads(nthreads);
    FC_OMP_PARALLEL_FOR(nthreads)
    for (int64_t pl = 0; pl < planes; pl++) {
        const uint8_t *xp = x + pl * H * W * 4;
        uint8_t *yp = y + pl * P * Q * 4;
        if (fast) {
            qmax2x2_c4(xp, W, P, Q, yp);
            continue;
        }
        for (int64_t p = 0; p < P; p++) {
            const int64_t h0 = p * g->stride_h - g->pad_h;
            for (int64_t q = 0; q < Q; q++) {
                const int64_t w0 = q * g->stride_w - g->pad_w;
                uint8_t m[4] = {0, 0, 0, 0};
                for (int64_t i = 0; i < g->kh; i++) {
                    const int64_t h = h0 + i * g->dil_h;
                    if ((uint64_t)h >= (uint64_t)H) continue;
                    for (int64_t j = 0; j < g->kw; j++) {
                        const int64_t w = w0 + j * g->dil_w;
                        if ((uint64_t)w >= (uint64_t)W) continue;
                        const uint8_t *v = xp + (h * W + w) * 4;
                        for (int t = 0; t < 4; t++) m[t] = v[t] > m[t] ? v[t] : m[t];
                    }
                }
                memcpy(yp + (p * Q + q) * 4, m, 4);
            }
        }
    }
    return FC_OK;
}

/* ---- elementwise ------------------------------------------------------------ */

#define QCHUNK 65536

fc_status fc_qrelu_u8(int64_t n, const uint8_t *restrict x, uint8_t zp, uint8_t *restrict y,
                      int nthreads)
{
    if (n < 0) return FC_EINVAL;
    if (n == 0) return FC_OK;
    if (x == NULL || y == NULL) return FC_EINVAL;
    const int64_t nchunks = (n + QCHUNK - 1) / QCHUNK;
    nthreads = fc_clamp_threads(nthreads);
    FC_OMP_PARALLEL_FOR(nthreads)
    for (int64_t ch = 0; ch < nchunks; ch++) {
        const int64_t lo = ch * QCHUNK, hi = lo + QCHUNK < n ? lo + QCHUNK : n;
        for (int64_t i = lo; i < hi; i++) y[i] = x[i] > zp ? x[i] : zp;
    }
    return FC_OK;
}

/* (N, C, L) blocks of L values sharing one scale and zero point. */
static int q_layout(int64_t N, int64_t C, int64_t L)
{
    return N >= 0 && C >= 1 && L >= 0;
}

/* One row of quantization: the loop every variant compiles (auto-vectorized
 * for the SIMD targets; the same IEEE operations in each, so the same bits):
 * v = x * inv + z, clamped to [0, 255] (NaN -> 0), rounded half to even by
 * the 2^23 trick (exact for 0 <= v < 2^23). */
#define QUANT_ROW_BODY                                                  \
    for (int64_t i = 0; i < n; i++) {                                   \
        float v = x[i] * inv + z;                                       \
        v = v > 0.0f ? v : 0.0f;                                        \
        v = v < 255.0f ? v : 255.0f;                                    \
        v = (v + 8388608.0f) - 8388608.0f;                              \
        q[i] = (uint8_t)(int32_t)v;                                     \
    }

static void quant_row(const float *restrict x, int64_t n, float inv, float z, uint8_t *restrict q)
{
    QUANT_ROW_BODY
}

#if FC_QC_X86
FC_TARGET("avx512f,avx512bw,avx512vl,avx2,fma")
static void quant_row_avx512(const float *restrict x, int64_t n, float inv, float z,
                             uint8_t *restrict q)
{
    QUANT_ROW_BODY
}

/* Explicit (GCC does not vectorize the row for AVX2): max_ps(v, 0) is
 * "v > 0 ? v : 0" including NaN -> 0, min_ps(v, 255) is "v < 255 ? v : 255". */
FC_TARGET("avx2,fma")
static void quant_row_avx2(const float *restrict x, int64_t n, float inv, float z,
                           uint8_t *restrict q)
{
    const __m256 vi = _mm256_set1_ps(inv), vz = _mm256_set1_ps(z), zero = _mm256_setzero_ps();
    const __m256 top = _mm256_set1_ps(255.0f), magic = _mm256_set1_ps(8388608.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i r[4];
        for (int k = 0; k < 4; k++) {
            __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * k), vi), vz);
            v = _mm256_min_ps(_mm256_max_ps(v, zero), top);
            v = _mm256_sub_ps(_mm256_add_ps(v, magic), magic);
            r[k] = _mm256_cvttps_epi32(v);
        }
        /* 4 x 8 int32 -> 32 bytes: packs work per 128-bit lane, then restore the order */
        const __m256i ab = _mm256_packus_epi32(r[0], r[1]), cd = _mm256_packus_epi32(r[2], r[3]);
        const __m256i b = _mm256_packus_epi16(ab, cd);
        _mm256_storeu_si256((__m256i *)(q + i), _mm256_permutevar8x32_epi32(b, order));
    }
    const int64_t rest = n - i;
    const float *x0 = x + i;
    uint8_t *q0 = q + i;
    for (int64_t j = 0; j < rest; j++) {
        float v = x0[j] * inv + z;
        v = v > 0.0f ? v : 0.0f;
        v = v < 255.0f ? v : 255.0f;
        v = (v + 8388608.0f) - 8388608.0f;
        q0[j] = (uint8_t)(int32_t)v;
    }
}
#endif

typedef void (*quant_row_fn)(const float *, int64_t, float, float, uint8_t *);

static quant_row_fn quant_row_for_isa(void)
{
#if FC_QC_X86
    switch (fc_qgemm_isa()) {
    case 2: return quant_row_avx512;
    case 1: return quant_row_avx2;
    default: break;
    }
#endif
    return quant_row;
}

fc_status fc_quantize_u8(int64_t N, int64_t C, int64_t L, const float *restrict x,
                         const float *restrict inv_scale, const int32_t *restrict zp,
                         uint8_t *restrict q, int nthreads)
{
    if (!q_layout(N, C, L) || inv_scale == NULL || zp == NULL) return FC_EINVAL;
    for (int64_t c = 0; c < C; c++)
        if (zp[c] < 0 || zp[c] > 255) return FC_EINVAL;
    if (N == 0 || L == 0) return FC_OK;
    if (x == NULL || q == NULL) return FC_EINVAL;
    const quant_row_fn row = quant_row_for_isa();
    const int64_t blocks = N * C;
    nthreads = fc_clamp_threads(nthreads);
    FC_OMP_PARALLEL_FOR(nthreads)
    for (int64_t bl = 0; bl < blocks; bl++) {
        const int64_t c = bl % C;
        row(x + bl * L, L, inv_scale[c], (float)zp[c], q + bl * L);
    }
    return FC_OK;
}

fc_status fc_quantize_u8_c4(int64_t N, int64_t C, int64_t L, const float *restrict x,
                            float inv_scale, int32_t zp, uint8_t *restrict y, int nthreads)
{
    if (!q_layout(N, C, L) || zp < 0 || zp > 255) return FC_EINVAL;
    if (N == 0 || L == 0) return FC_OK;
    if (x == NULL || y == NULL) return FC_EINVAL;
    const quant_row_fn row = quant_row_for_isa();
    const int64_t Cq = (C + 3) / 4, jobs = N * Cq;
    nthreads = fc_clamp_threads(nthreads);
    FC_OMP_PARALLEL(nthreads)
    {
        uint8_t tmp[4][QCHUNK_L];
        FC_PRAGMA(omp for schedule(static))
        for (int64_t jb = 0; jb < jobs; jb++) {
            const int64_t n = jb / Cq, cq = jb % Cq;
            for (int64_t l0 = 0; l0 < L; l0 += QCHUNK_L) {
                const int64_t len = L - l0 < QCHUNK_L ? L - l0 : QCHUNK_L;
                for (int t = 0; t < 4; t++) {
                    const int64_t c = 4 * cq + t;
                    if (c < C)
                        row(x + (n * C + c) * L + l0, len, inv_scale, (float)zp, tmp[t]);
                    else
                        memset(tmp[t], zp, (size_t)len);
                }
                fc_qinterleave4(tmp[0], tmp[1], tmp[2], tmp[3], len, len,
                                y + ((n * Cq + cq) * L + l0) * 4);
            }
        }
    }
    return FC_OK;
}

fc_status fc_dequantize_u8(int64_t N, int64_t C, int64_t L, const uint8_t *restrict q,
                           const float *restrict scale, const int32_t *restrict zp,
                           float *restrict y, int nthreads)
{
    if (!q_layout(N, C, L) || scale == NULL || zp == NULL) return FC_EINVAL;
    if (N == 0 || L == 0) return FC_OK;
    if (q == NULL || y == NULL) return FC_EINVAL;
    const int64_t blocks = N * C;
    nthreads = fc_clamp_threads(nthreads);
    FC_OMP_PARALLEL_FOR(nthreads)
    for (int64_t bl = 0; bl < blocks; bl++) {
        const int64_t c = bl % C;
        const float s = scale[c];
        const int32_t z = zp[c];
        const uint8_t *qs = q + bl * L;
        float *ys = y + bl * L;
        for (int64_t i = 0; i < L; i++) ys[i] = (float)((int32_t)qs[i] - z) * s;
    }
    return FC_OK;
}
