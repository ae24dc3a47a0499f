/*
 * qgemm.c: the int8 GEMM (u8 x s8 -> s32) with its requantization epilogue
 * (qops.h), and the driver every int8 product runs through (qgemm.h).
 *
 * Layout. Weights W (M x K) are packed once into 8-row panels: panel pi, k
 * group kq (4 consecutive k) holds rows 8pi..8pi+7, 4 bytes each (32 bytes),
 * zero-padded beyond M and K. The uint8 operand is packed per call, one block
 * of nc columns at a time, into NR-column panels: k group kq holds NR
 * columns x 4 bytes (k-interleaved, zero beyond K and N). So one k group of a
 * panel is one SIMD register of "4 k values per int32 lane", which is what
 * vpdpbusd and vpmaddubsw + vpmaddwd consume; one 4-byte weight group
 * is broadcast to every lane.
 *
 * Micro-kernels: an 8 x NR int32 tile, summed over all of K in registers
 * (K <= FC_QGEMM_MAX_K, no K blocking), then stored to a small tile buffer
 * that the epilogue turns into uint8 / float32 / int32 output:
 *   avx512_vnni  8 x 32 (16 zmm accumulators), vpdpbusd
 *   avx2         8 x 16, two halves of 4 rows (8 ymm accumulators each),
 *                vpmaddubsw + vpmaddwd on the low 7 bits, and on the high bit
 *                (scaled by 128) only for panels that have one (qops.h)
 *   generic      8 x 8, plain C
 * Integer sums are exact, so the variants agree bit for bit; the epilogue is
 * the same sequence of float32 operations in each (no FMA) and rounds half
 * to even explicitly.
 *
 * Driver: jobs = (problem, column block[, share of row panels when there are
 * fewer jobs than threads]); each thread packs its block into its own
 * workspace and runs every row panel against it. Every output element is one
 * full-K sum, so the result does not depend on the thread count.
 */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <float.h>
#include "fc_internal.h"
#include "gemm.h"
#include "qgemm.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(FC_GEMM_NO_SIMD)
#define FC_Q_X86 1
#include <immintrin.h>
#define FC_TARGET_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))
#define FC_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define FC_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define FC_Q_X86 0
#endif

#if defined(__SSE2__)
#include <emmintrin.h>
#define FC_Q_SSE2 1
#else
#define FC_Q_SSE2 0
#endif

#define MR FC_QGEMM_MR

/* ---- CPU feature and ISA choice --------------------------------------- */

static volatile int g_vnni = -1;

int fc_cpu_has_avx512_vnni(void)
{
#if FC_Q_X86
    int v = g_vnni;
    if (v < 0) {
        __builtin_cpu_init();
        v = fc_cpu_has_avx512() && __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
        g_vnni = v;
    }
    return v;
#else
    return 0;
#endif
}

static int qisa_cap(void)
{
#if FC_Q_X86
    if (fc_cpu_has_avx512_vnni()) return 2;
    if (fc_cpu_has_avx2()) return 1;
#endif
    return 0;
}

static volatile int g_qisa_forced = -1;

int fc_qgemm_isa(void)
{
    int f = g_qisa_forced;
    if (f >= 0) return f;
    const char *s = fc_gemm_isa();
    int level = strcmp(s, "avx512") == 0 ? 2 : strcmp(s, "avx2") == 0 ? 1 : 0;
    int cap = qisa_cap();
    return level < cap ? level : cap;
}

int fc_qgemm_set_isa(int level)
{
    if (level < 0) {
        g_qisa_forced = -1;
    } else {
        int cap = qisa_cap();
        g_qisa_forced = level > cap ? cap : level;
    }
    return fc_qgemm_isa();
}

/* ---- epilogue --------------------------------------------------------- */

/* The epilogue constants of one tile's rows. */
typedef struct {
    int32_t kind, relu, zo;
    float lo, hi;                 /* uint8: clamp bounds before adding zo */
    int32_t bias[MR];             /* bias - a_zero * rowsum (mod 2^32) */
    float mult[MR];
} qtile_epi;

/* Round half to even, whatever the FPU rounding mode (|v| <= 256 here). */
static inline float q_rne(float v)
{
    float r = floorf(v);
    float d = v - r;              /* exact */
    if (d > 0.5f || (d == 0.5f && fmodf(r, 2.0f) != 0.0f)) r += 1.0f;
    return r;
}

static inline int32_t q_add(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);   /* wraps (never does within the limits) */
}

/* tile (mr x nr, row stride ldt) -> out element (i, j) at out + (i*ldr + j*ldcol) elements. */
static void epi_generic(const int32_t *tile, int64_t ldt, int mr, int nr, const qtile_epi *p,
                        char *out, int64_t ldr, int64_t ldcol)
{
    for (int i = 0; i < mr; i++) {
        const int32_t *t = tile + i * ldt;
        for (int j = 0; j < nr; j++) {
            const int32_t a = q_add(t[j], p->bias[i]);
            const int64_t off = i * ldr + j * ldcol;
            if (p->kind == FC_QOUT_I32) {
                ((int32_t *)out)[off] = a;
            } else if (p->kind == FC_QOUT_U8) {
                float v = (float)a * p->mult[i];
                v = v > p->lo ? v : p->lo;
                v = v < p->hi ? v : p->hi;
                ((uint8_t *)out)[off] = (uint8_t)((int32_t)q_rne(v) + p->zo);
            } else {
                float v = (float)a * p->mult[i];
                if (p->relu) v = v > 0.0f ? v : 0.0f;
                ((float *)out)[off] = v;
            }
        }
    }
}

/* ---- micro-kernels ------------------------------------------------------ */

typedef void (*qukr_fn)(int64_t kq, const uint8_t *w, const uint8_t *b, int32_t *tile, int high);
typedef void (*qepi_fn)(const int32_t *tile, int64_t ldt, int mr, int nr, const qtile_epi *p,
                        char *out, int64_t ldr, int64_t ldcol);

typedef struct {
    int isa;
    int nr;
    int need_high;                /* packing records the panels with a byte >= 128 */
    qukr_fn ukr;
    qepi_fn epi;
} qkern;

static inline int32_t ld32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

#define GEN_NR 8
static void ukr_generic(int64_t kq, const uint8_t *w, const uint8_t *b, int32_t *tile, int high)
{
    (void)high;
    int32_t acc[MR][GEN_NR];
    memset(acc, 0, sizeof(acc));
    for (int64_t k = 0; k < kq; k++) {
        for (int i = 0; i < MR; i++) {
            const int32_t w0 = (int8_t)w[4 * i], w1 = (int8_t)w[4 * i + 1];
            const int32_t w2 = (int8_t)w[4 * i + 2], w3 = (int8_t)w[4 * i + 3];
            for (int j = 0; j < GEN_NR; j++) {
                const uint8_t *bj = b + 4 * j;
                acc[i][j] += w0 * bj[0] + w1 * bj[1] + w2 * bj[2] + w3 * bj[3];
            }
        }
        w += 4 * MR;
        b += 4 * GEN_NR;
    }
    memcpy(tile, acc, sizeof(acc));
}

static const qkern kern_generic = {0, GEN_NR, 0, ukr_generic, epi_generic};

#if FC_Q_X86
/* ---- AVX-512 VNNI: 8 x 32 ---------------------------------------------- */
#define VNNI_NR 32
#define VNNI_ROW(i)                                                   \
    {                                                                 \
        const __m512i a = _mm512_set1_epi32(ld32(w + 4 * (i)));       \
        c##i##0 = _mm512_dpbusd_epi32(c##i##0, b0, a);                \
        c##i##1 = _mm512_dpbusd_epi32(c##i##1, b1, a);                \
    }
#define VNNI_DECL(i) __m512i c##i##0 = _mm512_setzero_si512(), c##i##1 = _mm512_setzero_si512();
#define VNNI_STORE(i)                                                 \
    _mm512_storeu_si512((void *)(tile + (i) * VNNI_NR), c##i##0);     \
    _mm512_storeu_si512((void *)(tile + (i) * VNNI_NR + 16), c##i##1);

FC_TARGET_VNNI static void ukr_vnni(int64_t kq, const uint8_t *w, const uint8_t *b,
                                    int32_t *tile, int high)
{
    (void)high;
    VNNI_DECL(0) VNNI_DECL(1) VNNI_DECL(2) VNNI_DECL(3)
    VNNI_DECL(4) VNNI_DECL(5) VNNI_DECL(6) VNNI_DECL(7)
    for (int64_t k = 0; k < kq; k++) {
        const __m512i b0 = _mm512_loadu_si512((const void *)b);
        const __m512i b1 = _mm512_loadu_si512((const void *)(b + 64));
        VNNI_ROW(0) VNNI_ROW(1) VNNI_ROW(2) VNNI_ROW(3)
        VNNI_ROW(4) VNNI_ROW(5) VNNI_ROW(6) VNNI_ROW(7)
        w += 4 * MR;
        b += 4 * VNNI_NR;
    }
    VNNI_STORE(0) VNNI_STORE(1) VNNI_STORE(2) VNNI_STORE(3)
    VNNI_STORE(4) VNNI_STORE(5) VNNI_STORE(6) VNNI_STORE(7)
}

/* Contiguous rows (ldcol == 1): 16 lanes at a time, the tail masked. */
FC_TARGET_VNNI static void epi_avx512(const int32_t *tile, int64_t ldt, int mr, int nr,
                                      const qtile_epi *p, char *out, int64_t ldr, int64_t ldcol)
{
    if (ldcol != 1) {
        epi_generic(tile, ldt, mr, nr, p, out, ldr, ldcol);
        return;
    }
    const __m512 lo = _mm512_set1_ps(p->lo), hi = _mm512_set1_ps(p->hi);
    const __m512 zero = _mm512_setzero_ps();
    const __m512i zo = _mm512_set1_epi32(p->zo);
    for (int i = 0; i < mr; i++) {
        const int32_t *t = tile + i * ldt;
        const __m512i bias = _mm512_set1_epi32(p->bias[i]);
        const __m512 m = _mm512_set1_ps(p->mult[i]);
        for (int j = 0; j < nr; j += 16) {
            const int n = nr - j < 16 ? nr - j : 16;
            const __mmask16 k = (__mmask16)(n == 16 ? 0xFFFFu : ((1u << n) - 1u));
            const __m512i a = _mm512_add_epi32(_mm512_maskz_loadu_epi32(k, t + j), bias);
            if (p->kind == FC_QOUT_I32) {
                _mm512_mask_storeu_epi32((int32_t *)out + i * ldr + j, k, a);
            } else if (p->kind == FC_QOUT_U8) {
                __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(a), m);
                v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
                __m512i q = _mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                q = _mm512_add_epi32(q, zo);
                _mm512_mask_cvtepi32_storeu_epi8((uint8_t *)out + i * ldr + j, k, q);
            } else {
                __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(a), m);
                if (p->relu) v = _mm512_max_ps(v, zero);
                _mm512_mask_storeu_ps((float *)out + i * ldr + j, k, v);
            }
        }
    }
}

static const qkern kern_vnni = {2, VNNI_NR, 0, ukr_vnni, epi_avx512};

/* ---- AVX2: 8 x 16 as two 4 x 16 halves ----------------------------------- */
#define AVX2_NR 16
#define AVX2_DECL(i) __m256i c##i##0 = _mm256_setzero_si256(), c##i##1 = _mm256_setzero_si256();
#define AVX2_ROW(i)                                                                        \
    {                                                                                      \
        const __m256i a = _mm256_set1_epi32(ld32(w + 4 * (i)));                            \
        c##i##0 = _mm256_add_epi32(c##i##0, _mm256_madd_epi16(_mm256_maddubs_epi16(l0, a), ones)); \
        c##i##1 = _mm256_add_epi32(c##i##1, _mm256_madd_epi16(_mm256_maddubs_epi16(l1, a), ones)); \
        if (HIGH) {                                                                        \
            c##i##0 = _mm256_add_epi32(c##i##0, _mm256_madd_epi16(_mm256_maddubs_epi16(h0, a), c128)); \
            c##i##1 = _mm256_add_epi32(c##i##1, _mm256_madd_epi16(_mm256_maddubs_epi16(h1, a), c128)); \
        }                                                                                  \
    }
#define AVX2_STORE(i)                                                         \
    _mm256_storeu_si256((__m256i *)(tile + (i) * AVX2_NR), c##i##0);          \
    _mm256_storeu_si256((__m256i *)(tile + (i) * AVX2_NR + 8), c##i##1);

/* Rows 4*half .. 4*half+3 of the panel; HIGH: also the activations' bit 7. */
FC_TARGET_AVX2 static FC_ALWAYS_INLINE void ukr_avx2_half(int64_t kq, const uint8_t *w,
                                                          const uint8_t *b, int32_t *tile,
                                                          const int HIGH)
{
    const __m256i ones = _mm256_set1_epi16(1), c128 = _mm256_set1_epi16(128);
    const __m256i m7f = _mm256_set1_epi8(0x7f), m01 = _mm256_set1_epi8(1);
    AVX2_DECL(0) AVX2_DECL(1) AVX2_DECL(2) AVX2_DECL(3)
    for (int64_t k = 0; k < kq; k++) {
        const __m256i x0 = _mm256_loadu_si256((const __m256i *)b);
        const __m256i x1 = _mm256_loadu_si256((const __m256i *)(b + 32));
        const __m256i l0 = _mm256_and_si256(x0, m7f), l1 = _mm256_and_si256(x1, m7f);
        __m256i h0 = l0, h1 = l1;
        if (HIGH) {
            h0 = _mm256_and_si256(_mm256_srli_epi16(x0, 7), m01);
            h1 = _mm256_and_si256(_mm256_srli_epi16(x1, 7), m01);
        }
        (void)h0; (void)h1; (void)c128;
        AVX2_ROW(0) AVX2_ROW(1) AVX2_ROW(2) AVX2_ROW(3)
        w += 4 * MR;
        b += 4 * AVX2_NR;
    }
    AVX2_STORE(0) AVX2_STORE(1) AVX2_STORE(2) AVX2_STORE(3)
}

FC_TARGET_AVX2 static void ukr_avx2(int64_t kq, const uint8_t *w, const uint8_t *b,
                                    int32_t *tile, int high)
{
    if (high) {
        ukr_avx2_half(kq, w, b, tile, 1);
        ukr_avx2_half(kq, w + 16, b, tile + 4 * AVX2_NR, 1);
    } else {
        ukr_avx2_half(kq, w, b, tile, 0);
        ukr_avx2_half(kq, w + 16, b, tile + 4 * AVX2_NR, 0);
    }
}

/* Contiguous rows: 8 lanes at a time, the tail in scalar code (same arithmetic). */
FC_TARGET_AVX2 static void epi_avx2(const int32_t *tile, int64_t ldt, int mr, int nr,
                                    const qtile_epi *p, char *out, int64_t ldr, int64_t ldcol)
{
    if (ldcol != 1) {
        epi_generic(tile, ldt, mr, nr, p, out, ldr, ldcol);
        return;
    }
    const __m256 lo = _mm256_set1_ps(p->lo), hi = _mm256_set1_ps(p->hi);
    const __m256 zero = _mm256_setzero_ps();
    const __m256i zo = _mm256_set1_epi32(p->zo);
    for (int i = 0; i < mr; i++) {
        const int32_t *t = tile + i * ldt;
        const __m256i bias = _mm256_set1_epi32(p->bias[i]);
        const __m256 m = _mm256_set1_ps(p->mult[i]);
        int j = 0;
        for (; j + 8 <= nr; j += 8) {
            const __m256i a = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(t + j)), bias);
            if (p->kind == FC_QOUT_I32) {
                _mm256_storeu_si256((__m256i *)((int32_t *)out + i * ldr + j), a);
            } else if (p->kind == FC_QOUT_U8) {
                __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(a), m);
                v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
                v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                __m256i q = _mm256_add_epi32(_mm256_cvttps_epi32(v), zo);
                q = _mm256_packus_epi32(q, q);                   /* per 128-bit lane */
                q = _mm256_packus_epi16(q, q);
                const int32_t b0 = _mm_cvtsi128_si32(_mm256_castsi256_si128(q));
                const int32_t b1 = _mm_cvtsi128_si32(_mm256_extracti128_si256(q, 1));
                uint8_t *o = (uint8_t *)out + i * ldr + j;
                memcpy(o, &b0, 4);
                memcpy(o + 4, &b1, 4);
            } else {
                __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(a), m);
                if (p->relu) v = _mm256_max_ps(v, zero);
                _mm256_storeu_ps((float *)out + i * ldr + j, v);
            }
        }
        if (j < nr) {
            qtile_epi one = *p;
            one.bias[0] = p->bias[i];
            one.mult[0] = p->mult[i];
            const size_t es = p->kind == FC_QOUT_U8 ? 1 : 4;
            epi_generic(t + j, ldt, 1, nr - j, &one, out + (i * ldr + j) * (int64_t)es, ldr, 1);
        }
    }
}

static const qkern kern_avx2 = {1, AVX2_NR, 1, ukr_avx2, epi_avx2};
#endif /* FC_Q_X86 */

static const qkern *qkernel(void)
{
#if FC_Q_X86
    switch (fc_qgemm_isa()) {
    case 2: return &kern_vnni;
    case 1: return &kern_avx2;
    default: break;
    }
#endif
    return &kern_generic;
}

/* ---- packing ------------------------------------------------------------ */

size_t fc_qgemm_packed_bytes(int64_t M, int64_t K)
{
    if (M < 0 || K < 0) return 0;
    const int64_t mp = (M + MR - 1) / MR, kq = (K + 3) / 4;
    if (mp != 0 && kq > INT64_MAX / (4 * MR) / mp) return 0;
    return (size_t)(mp * kq * 4 * MR);
}

fc_status fc_qgemm_pack_w(int64_t M, int64_t K, const int8_t *restrict w, int64_t ldw,
                          uint8_t *restrict packed, int32_t *restrict rowsum)
{
    if (M < 0 || K < 0 || K > FC_QGEMM_MAX_K || ldw < K) return FC_EINVAL;
    if ((M > 0 && K > 0 && (w == NULL || packed == NULL)) || (M > 0 && rowsum == NULL))
        return FC_EINVAL;
    const int64_t mp = (M + MR - 1) / MR, kq = (K + 3) / 4;
    for (int64_t pi = 0; pi < mp; pi++) {
        uint8_t *dst = packed + pi * kq * 4 * MR;
        for (int64_t q = 0; q < kq; q++)
            for (int i = 0; i < MR; i++)
                for (int t = 0; t < 4; t++) {
                    const int64_t row = pi * MR + i, k = 4 * q + t;
                    dst[(q * MR + i) * 4 + t] =
                        (row < M && k < K) ? (uint8_t)w[row * ldw + k] : 0;
                }
    }
    for (int64_t i = 0; i < M; i++) {
        int32_t s = 0;
        for (int64_t k = 0; k < K; k++) s += w[i * ldw + k];
        rowsum[i] = s;
    }
    return FC_OK;
}

/* Interleave 4 rows of n <= nr bytes (k = 4kq .. 4kq+3 of one panel's
 * columns) into the panel's k group dst (nr columns x 4 bytes, zero beyond n).
 * Returns 0x80 when a byte >= 128 was seen. */
static unsigned interleave4(const uint8_t *r0, const uint8_t *r1, const uint8_t *r2,
                            const uint8_t *r3, int64_t n, int nr, uint8_t *dst)
{
    int64_t jj = 0;
    unsigned orv = 0;
#if FC_Q_SSE2
    __m128i acc = _mm_setzero_si128();
    for (; jj + 16 <= n; jj += 16) {
        const __m128i a = _mm_loadu_si128((const __m128i *)(r0 + jj));
        const __m128i b = _mm_loadu_si128((const __m128i *)(r1 + jj));
        const __m128i c = _mm_loadu_si128((const __m128i *)(r2 + jj));
        const __m128i e = _mm_loadu_si128((const __m128i *)(r3 + jj));
        const __m128i ab_lo = _mm_unpacklo_epi8(a, b), ab_hi = _mm_unpackhi_epi8(a, b);
        const __m128i ce_lo = _mm_unpacklo_epi8(c, e), ce_hi = _mm_unpackhi_epi8(c, e);
        uint8_t *o = dst + jj * 4;
        _mm_storeu_si128((__m128i *)o, _mm_unpacklo_epi16(ab_lo, ce_lo));
        _mm_storeu_si128((__m128i *)(o + 16), _mm_unpackhi_epi16(ab_lo, ce_lo));
        _mm_storeu_si128((__m128i *)(o + 32), _mm_unpacklo_epi16(ab_hi, ce_hi));
        _mm_storeu_si128((__m128i *)(o + 48), _mm_unpackhi_epi16(ab_hi, ce_hi));
        acc = _mm_or_si128(acc, _mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, e)));
    }
    if (_mm_movemask_epi8(acc)) orv |= 0x80;
#endif
    for (; jj < n; jj++) {
        uint8_t *o = dst + jj * 4;
        o[0] = r0[jj];
        o[1] = r1[jj];
        o[2] = r2[jj];
        o[3] = r3[jj];
        orv |= (unsigned)(o[0] | o[1] | o[2] | o[3]);
    }
    if (jj < nr) memset(dst + jj * 4, 0, (size_t)(nr - jj) * 4);
    return orv & 0x80;
}

/* How a convolution's uint8 operand is read. Stride 1 ("virtual width"): the
 * image is first copied into a padded buffer of Hv x Wv per channel (Hv = P +
 * dh(R-1), Wv = Q + dw(S-1), borders = the zero point), and the GEMM runs over
 * virtual columns j = p*Wv + q, q < Wv: im2col row (c, r, s) is then the
 * contiguous run pimg + c*Hv*Wv + r*dh*Wv + s*dw + j, so packing is a plain
 * interleave of 4 pointers. Columns with q >= Q are computed and dropped
 * (Wv/Q - 1 extra work: 6% for 32x32 with 3x3 "same" padding). Other strides
 * fill each row through fc_qconv_fill_row. */
typedef struct {
    int virt;
    int64_t Hv, Wv, Nv;           /* virtual grid and its column count */
    const int64_t *koff;          /* virt: offset of row k in the padded image */
} qconv_plan;

/* Copy the group's channels of one image into the padded buffer. */
static void pad_image(const fc_conv_geom *g, const qconv_plan *cp, const uint8_t *x_img,
                      int64_t Cg, uint8_t pad, uint8_t *pimg)
{
    const int64_t Hv = cp->Hv, Wv = cp->Wv;
    int64_t hn = g->H, wn = g->W;
    if (hn > Hv - g->pad_h) hn = Hv - g->pad_h;
    if (wn > Wv - g->pad_w) wn = Wv - g->pad_w;
    for (int64_t c = 0; c < Cg; c++) {
        uint8_t *d = pimg + c * Hv * Wv;
        const uint8_t *src = x_img + c * g->H * g->W;
        memset(d, pad, (size_t)(g->pad_h * Wv));
        for (int64_t h = 0; h < hn; h++) {
            uint8_t *row = d + (g->pad_h + h) * Wv;
            memset(row, pad, (size_t)g->pad_w);
            memcpy(row + g->pad_w, src + h * g->W, (size_t)wn);
            memset(row + g->pad_w + wn, pad, (size_t)(Wv - g->pad_w - wn));
        }
        if (g->pad_h + hn < Hv)
            memset(d + (g->pad_h + hn) * Wv, pad, (size_t)((Hv - g->pad_h - hn) * Wv));
    }
}

/* Pack one NR-column panel (columns j0 .. j0+n-1, all K rows) of problem
 * prob's uint8 operand into dst (kq groups of nr x 4 bytes). tmp: 5 * nr
 * bytes (4 rows, then a zero row). Returns 0x80 when a byte >= 128 was packed. */
static unsigned pack_panel(const fc_qsrc *s, const qconv_plan *cp, const uint8_t *pimg,
                           const uint8_t *x_img, int64_t K, int64_t j0, int64_t n, int64_t kq,
                           int nr, uint8_t *dst, uint8_t *tmp)
{
    unsigned hi = 0;
    const uint8_t *zero = tmp + 4 * nr;
    const uint8_t *rows[4];
    if (s->kind == FC_QSRC_ROWS) {
        /* column j of the operand is row j of the input: 4 k values are 4 bytes */
        const int64_t full = K / 4;
        for (int64_t jj = 0; jj < nr; jj++) {
            if (jj >= n) {
                for (int64_t q = 0; q < kq; q++) memset(dst + (q * nr + jj) * 4, 0, 4);
                continue;
            }
            const uint8_t *row = s->a + (j0 + jj) * s->lda;
            for (int64_t q = 0; q < full; q++) {
                uint8_t *o = dst + (q * nr + jj) * 4;
                memcpy(o, row + 4 * q, 4);
                hi |= (unsigned)(o[0] | o[1] | o[2] | o[3]);
            }
            if (full < kq) {
                uint8_t *o = dst + (full * nr + jj) * 4;
                for (int t = 0; t < 4; t++) o[t] = 4 * full + t < K ? row[4 * full + t] : 0;
                hi |= (unsigned)(o[0] | o[1] | o[2] | o[3]);
            }
        }
        return hi & 0x80;
    }
    for (int64_t q = 0; q < kq; q++) {
        for (int t = 0; t < 4; t++) {
            const int64_t k = 4 * q + t;
            if (k >= K) {
                rows[t] = zero;
            } else if (s->kind == FC_QSRC_MATRIX) {
                rows[t] = s->a + k * s->lda + j0;
            } else if (cp->virt) {
                rows[t] = pimg + cp->koff[k] + j0;
            } else {
                const fc_conv_geom *g = s->g;
                const int64_t RS = g->R * g->S;
                fc_qconv_fill_row(g, x_img, k / RS, (k / g->S) % g->R, k % g->S, j0, n, s->pad,
                                  tmp + t * nr);
                rows[t] = tmp + t * nr;
            }
        }
        hi |= interleave4(rows[0], rows[1], rows[2], rows[3], n, nr, dst + q * nr * 4);
    }
    return hi;
}

/* ---- driver --------------------------------------------------------------- */

fc_status fc_qepi_check(const fc_qepi *epi, int64_t M)
{
    if (epi == NULL) return FC_EINVAL;
    if (epi->out_kind != FC_QOUT_I32 && epi->out_kind != FC_QOUT_U8 && epi->out_kind != FC_QOUT_F32)
        return FC_EINVAL;
    if (epi->a_zero < 0 || epi->a_zero > 255 || epi->out_zero < 0 || epi->out_zero > 255)
        return FC_EINVAL;
    if (epi->bias != NULL)
        for (int64_t i = 0; i < M; i++)
            if (epi->bias[i] < -FC_QBIAS_MAX || epi->bias[i] > FC_QBIAS_MAX) return FC_EINVAL;
    if (epi->out_kind != FC_QOUT_I32) {
        if (epi->mult == NULL && M > 0) return FC_EINVAL;
        for (int64_t i = 0; i < M; i++) {
            const float m = epi->mult[i];
            if (!(m == m) || m > FLT_MAX || m < -FLT_MAX) return FC_EINVAL;
        }
    }
    return FC_OK;
}

static void tile_epi(const fc_qepi *epi, const int32_t *rowsum, int64_t row0, int mr,
                     qtile_epi *t)
{
    t->kind = epi->out_kind;
    t->relu = epi->relu;
    t->zo = epi->out_zero;
    t->lo = epi->relu ? 0.0f : (float)(-epi->out_zero);
    t->hi = (float)(255 - epi->out_zero);
    for (int i = 0; i < MR; i++) {
        if (i < mr) {
            const uint32_t b = epi->bias ? (uint32_t)epi->bias[row0 + i] : 0u;
            t->bias[i] = (int32_t)(b - (uint32_t)epi->a_zero * (uint32_t)rowsum[row0 + i]);
            t->mult[i] = epi->out_kind == FC_QOUT_I32 ? 0.0f : epi->mult[row0 + i];
        } else {
            t->bias[i] = 0;
            t->mult[i] = 0.0f;
        }
    }
}

static size_t al64(size_t n) { return (n + 63) & ~(size_t)63; }

fc_status fc_qgemm_drive(const fc_qsrc *s, int64_t M, int64_t N, int64_t K, const fc_qepi *epi,
                         int nthreads)
{
    if (M == 0 || N == 0 || s->nprob == 0) return FC_OK;
    const qkern *kn = qkernel();
    const int nr = kn->nr;
    const int64_t kq = (K + 3) / 4, mp = (M + MR - 1) / MR;
    const fc_conv_geom *g = s->g;
    qconv_plan cp;
    memset(&cp, 0, sizeof(cp));
    int64_t G = 1, Cg = 0, ncols = N;
    int64_t *koff = NULL;
    if (s->kind == FC_QSRC_CONV) {
        G = g->groups;
        Cg = g->C / G;
        cp.virt = g->stride_h == 1 && g->stride_w == 1;
        if (cp.virt) {
            cp.Hv = g->P + g->dil_h * (g->R - 1);
            cp.Wv = g->Q + g->dil_w * (g->S - 1);
            cp.Nv = (g->P - 1) * cp.Wv + g->Q;
            ncols = cp.Nv;
            koff = (int64_t *)malloc((size_t)(K > 0 ? K : 1) * sizeof(int64_t));
            if (koff == NULL) return FC_ENOMEM;
            for (int64_t k = 0; k < K; k++) {
                const int64_t RS = g->R * g->S, c = k / RS, r = (k / g->S) % g->R, sx = k % g->S;
                koff[k] = c * cp.Hv * cp.Wv + r * g->dil_h * cp.Wv + sx * g->dil_w;
            }
            cp.koff = koff;
        }
    }
    /* jobs: (problem, share of the column panels, share of the row panels) */
    const int64_t npan = (ncols + nr - 1) / nr;
    nthreads = fc_clamp_threads(nthreads);
    int64_t cparts = 1, rparts = 1;
    if (s->nprob < 4 * (int64_t)nthreads) {
        cparts = (4 * (int64_t)nthreads + s->nprob - 1) / s->nprob;
        if (cparts > npan) cparts = npan;
    }
    if (s->nprob * cparts < 2 * (int64_t)nthreads) {
        rparts = (2 * (int64_t)nthreads + s->nprob * cparts - 1) / (s->nprob * cparts);
        if (rparts > mp) rparts = mp;
    }
    const int64_t njobs = s->nprob * cparts * rparts;
    if (njobs < nthreads) nthreads = (int)njobs;
    const size_t pbytes = (size_t)((kq > 0 ? kq : 1) * nr * 4);
    const size_t ibytes = cp.virt ? (size_t)(Cg * cp.Hv * cp.Wv) : 0;
    const size_t wsbytes = al64(pbytes) + al64((size_t)(5 * nr)) + al64((size_t)MR * nr * 4)
                         + al64(ibytes);
    int failed = 0;

    FC_OMP_PARALLEL(nthreads)
    {
        char *ws = (char *)fc_ws_alloc(wsbytes);
        uint8_t *bpan = (uint8_t *)ws;
        uint8_t *tmp = bpan + al64(pbytes);
        int32_t *tile = (int32_t *)(tmp + al64((size_t)(5 * nr)));
        uint8_t *pimg = (uint8_t *)tile + al64((size_t)MR * nr * 4);
        if (ws != NULL) memset(tmp + 4 * nr, 0, (size_t)nr);   /* the zero row */
        FC_PRAGMA(omp for schedule(dynamic, 1))
        for (int64_t job = 0; job < njobs; job++) {
            if (ws == NULL) {
                failed = 1;
                continue;
            }
            const int64_t prob = job / (cparts * rparts);
            const int64_t rem = job % (cparts * rparts);
            int64_t clo, chi, plo, phi;
            fc_split(npan, cparts, rem / rparts, &clo, &chi);
            fc_split(mp, rparts, rem % rparts, &plo, &phi);
            if (clo == chi || plo == phi) continue;
            const int64_t grp = prob % G, n_img = prob / G;
            const uint8_t *w = s->packed_w + (size_t)grp * s->wbytes;
            const int64_t row0 = grp * M;
            const uint8_t *x_img = NULL;
            char *cbase = s->c;
            if (s->kind == FC_QSRC_CONV) {
                x_img = s->a + (n_img * g->C + grp * Cg) * g->H * g->W;
                cbase += (n_img * g->K + grp * M) * N * (int64_t)s->esize;
                if (cp.virt) pad_image(g, &cp, x_img, Cg, s->pad, pimg);
            }
            for (int64_t pj = clo; pj < chi; pj++) {
                const int64_t j0 = pj * nr;
                const int n = (int)(ncols - j0 < nr ? ncols - j0 : nr);
                const unsigned high = pack_panel(s, &cp, pimg, x_img, K, j0, n, kq, nr, bpan, tmp);
                const int hi = kn->need_high ? high != 0 : 0;
                for (int64_t pi = plo; pi < phi; pi++) {
                    const int mr = (int)(M - pi * MR < MR ? M - pi * MR : MR);
                    qtile_epi te;
                    kn->ukr(kq, w + pi * kq * 4 * MR, bpan, tile, hi);
                    tile_epi(epi, s->rowsum, row0 + pi * MR, mr, &te);
                    char *rowbase = cbase + (pi * MR) * s->ldc_row * (int64_t)s->esize;
                    if (!cp.virt) {
                        kn->epi(tile, nr, mr, n, &te, rowbase + j0 * s->ldc_col * (int64_t)s->esize,
                                s->ldc_row, s->ldc_col);
                        continue;
                    }
                    /* virtual columns -> output pixels, one run of q < Q per row p */
                    int64_t jv = j0;
                    while (jv < j0 + n) {
                        const int64_t p = jv / cp.Wv, q = jv % cp.Wv;
                        int64_t run = cp.Wv - q;
                        if (run > j0 + n - jv) run = j0 + n - jv;
                        if (q < g->Q) {
                            const int64_t len = g->Q - q < run ? g->Q - q : run;
                            kn->epi(tile + (jv - j0), nr, mr, (int)len, &te,
                                    rowbase + (p * g->Q + q) * (int64_t)s->esize, s->ldc_row, 1);
                        }
                        jv += run;
                    }
                }
            }
        }
        if (ws != NULL) fc_ws_free(ws);
    }
    free(koff);
    return failed ? FC_ENOMEM : FC_OK;
}

/* ---- entry points ------------------------------------------------------------ */

static int esize_of(int kind) { return kind == FC_QOUT_U8 ? 1 : 4; }

fc_status fc_qgemm_u8s8(int64_t M, int64_t N, int64_t K, const uint8_t *restrict packed_w,
                        const int32_t *restrict rowsum, const uint8_t *restrict a, int64_t lda,
                        int a_trans, const fc_qepi *epi, void *restrict c, int64_t ldc_row,
                        int64_t ldc_col, int nthreads)
{
    if (M < 0 || N < 0 || K < 0 || K > FC_QGEMM_MAX_K) return FC_EINVAL;
    fc_status st = fc_qepi_check(epi, M);
    if (st != FC_OK) return st;
    if (M == 0 || N == 0) return FC_OK;
    if (rowsum == NULL || c == NULL || (K > 0 && (a == NULL || packed_w == NULL))) return FC_EINVAL;
    if (lda < (a_trans ? K : N) || ldc_row < 0 || ldc_col < 0) return FC_EINVAL;
    fc_qsrc s;
    memset(&s, 0, sizeof(s));
    s.kind = a_trans ? FC_QSRC_ROWS : FC_QSRC_MATRIX;
    s.a = a;
    s.lda = lda;
    s.nprob = 1;
    s.packed_w = packed_w;
    s.wbytes = fc_qgemm_packed_bytes(M, K);
    s.rowsum = rowsum;
    s.c = (char *)c;
    s.ldc_row = ldc_row;
    s.ldc_col = ldc_col;
    s.esize = esize_of(epi->out_kind);
    return fc_qgemm_drive(&s, M, N, K, epi, nthreads);
}

fc_status fc_qlinear_u8(int64_t N, int64_t M, int64_t K, const uint8_t *restrict x,
                        const uint8_t *restrict packed_w, const int32_t *restrict rowsum,
                        const fc_qepi *epi, void *restrict y, int nthreads)
{
    /* y^T (M x N) = W . x^T: output row i is feature i, column j sample j */
    return fc_qgemm_u8s8(M, N, K, packed_w, rowsum, x, K, 1, epi, y, 1, M, nthreads);
}
