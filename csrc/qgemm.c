/*
 * qgemm.c: the int8 GEMM (u8 x s8 -> s32) with its requantization epilogue
 * (qops.h), and the driver every int8 product runs through (qgemm.h).
 *
 * Layout. Weights W (M x K) are packed once into 8-row panels: panel pi, k
 * group kq (4 consecutive k) holds rows 8pi..8pi+7, 4 bytes each (32 bytes),
 * zero-padded beyond M and K. The uint8 operand is consumed in NR-column
 * panels: k group kq of a panel is NR columns x 4 bytes (4 k values per
 * column), one SIMD register of "4 k values per int32 lane", which is what
 * vpdpbusd and vpmaddubsw + vpmaddwd consume; one 4-byte weight group is
 * broadcast to every lane. A GEMM / Linear operand is packed into that form
 * one panel at a time; a convolution on a C4 image (4 channels per pixel)
 * already is in it and is read in place (see "convolutions on C4 images").
 *
 * Micro-kernels: an 8 x NR int32 tile, summed over all of K in registers
 * (K <= FC_QGEMM_MAX_K, no K blocking), then the epilogue turns it into
 * uint8 / float32 / int32 output:
 *   avx512_vnni  8 x 32 (16 zmm accumulators), vpdpbusd; for a C4 uint8
 *                output the requantization and the channel interleave are
 *                done in registers (ukr_vnni_c4)
 *   avx2         8 x 16, two halves of 4 rows (8 ymm accumulators each),
 *                vpmaddubsw + vpmaddwd on the low 7 bits, and on the high bit
 *                (scaled by 128) only for panels that have one (qops.h); the
 *                C4 requantization also in registers (ukr_avx2_c4)
 *   generic      8 x 8, plain C
 * Integer sums are exact, so the variants agree bit for bit; the epilogue is
 * the same sequence of float32 operations in each (no FMA) and rounds half
 * to even explicitly.
 *
 * Driver: jobs = (problem, share of the column panels, share of the row
 * panels when there are fewer problems than threads); each job packs (or
 * pads) its operand into its own workspace and runs its row panels against
 * every column panel. Every output element is one full-K sum, so the result
 * does not depend on the thread count.
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

/* tile[i*NR + j] (i < 8, j < NR) = sum over k groups q < kq of the 4-byte dot
 * product of weight group w[q*32 + 4i ..] (int8) with operand group
 * base + off[q] + 4j (uint8): row q of the operand is NR consecutive 4-byte
 * groups at base + off[q], either a packed panel (off[q] = q * NR * 4) or
 * read in place from a C4 image (qconv.c). */
typedef void (*qukr_fn)(int64_t kq, const uint8_t *w, const uint8_t *base, const int64_t *off,
                        int32_t *tile);
typedef void (*qepi_fn)(const int32_t *tile, int64_t ldt, int mr, int nr, const qtile_epi *p,
                        char *out, int64_t ldr, int64_t ldcol);

/* Fused variant for convolutions with a uint8 C4 output: the same sums, then
 * the epilogue p in registers, rows 4q..4q+3 interleaved into 4-byte groups:
 * ut4[q*NR*4 + 4j + t] = row 4q+t, column j (q = 0, 1). NULL: the driver
 * runs ukr, epi and the interleave separately (same arithmetic). */
typedef void (*qukr_c4_fn)(int64_t kq, const uint8_t *w, const uint8_t *base, const int64_t *off,
                           const qtile_epi *p, uint8_t *ut4);

typedef struct {
    int isa;
    int nr;
    qukr_fn ukr;
    qepi_fn epi;
    qukr_c4_fn ukr_c4;
} qkern;

static inline int32_t ld32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

#define GEN_NR 8
static void ukr_generic(int64_t kq, const uint8_t *w, const uint8_t *base, const int64_t *off,
                        int32_t *tile)
{
    int32_t acc[MR][GEN_NR];
    memset(acc, 0, sizeof(acc));
    for (int64_t k = 0; k < kq; k++) {
        const uint8_t *b = base + off[k];
        for (int i = 0; i < MR; i++) {
            const int32_t w0 = (int8_t)w[4 * i], w1 = (int8_t)w[4 * i + 1];
            const int32_t w2 = (int8_t)w[4 * i + 2], w3 = (int8_t)w[4 * i + 3];
            for (int j = 0; j < GEN_NR; j++) {
                const uint8_t *bj = b + 4 * j;
                acc[i][j] += w0 * bj[0] + w1 * bj[1] + w2 * bj[2] + w3 * bj[3];
            }
        }
        w += 4 * MR;
    }
    memcpy(tile, acc, sizeof(acc));
}

static const qkern kern_generic = {0, GEN_NR, ukr_generic, epi_generic, NULL};

#if FC_Q_X86
/* ---- AVX-512 VNNI: 8 x 32 ---------------------------------------------- */
#define VNNI_NR 32
/* acc += dot4(u8 lanes of b, s8 lanes of a). As a tied inline-asm operand
 * rather than _mm512_dpbusd_epi32: GCC 12 copies every accumulator of the
 * intrinsic form to a new register each iteration (and spills), which halves
 * the kernel's speed. */
#if defined(__GNUC__) && !defined(__clang__)
#define VNNI_DP(acc, b, a) __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(b), "v"(a))
#else
#define VNNI_DP(acc, b, a) ((acc) = _mm512_dpbusd_epi32((acc), (b), (a)))
#endif
#define VNNI_ROW(i)                                                   \
    {                                                                 \
        const __m512i a = _mm512_set1_epi32(ld32(w + 4 * (i)));       \
        VNNI_DP(c##i##0, b0, a);                                      \
        VNNI_DP(c##i##1, b1, a);                                      \
    }
#define VNNI_DECL(i) __m512i c##i##0 = _mm512_setzero_si512(), c##i##1 = _mm512_setzero_si512();
#define VNNI_STORE(i)                                                 \
    _mm512_storeu_si512((void *)(tile + (i) * VNNI_NR), c##i##0);     \
    _mm512_storeu_si512((void *)(tile + (i) * VNNI_NR + 16), c##i##1);

FC_TARGET_VNNI static void ukr_vnni(int64_t kq, const uint8_t *w, const uint8_t *base,
                                    const int64_t *off, int32_t *tile)
{
    VNNI_DECL(0) VNNI_DECL(1) VNNI_DECL(2) VNNI_DECL(3)
    VNNI_DECL(4) VNNI_DECL(5) VNNI_DECL(6) VNNI_DECL(7)
    for (int64_t k = 0; k < kq; k++) {
        const uint8_t *b = base + off[k];
        const __m512i b0 = _mm512_loadu_si512((const void *)b);
        const __m512i b1 = _mm512_loadu_si512((const void *)(b + 64));
        VNNI_ROW(0) VNNI_ROW(1) VNNI_ROW(2) VNNI_ROW(3)
        VNNI_ROW(4) VNNI_ROW(5) VNNI_ROW(6) VNNI_ROW(7)
        w += 4 * MR;
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

/* Requantize one vector of row i to 16 uint8 (epi_avx512's arithmetic). */
FC_TARGET_VNNI static inline __m128i vnni_rq(__m512i acc, __m512i bias, __m512 m, __m512 lo,
                                             __m512 hi, __m512i zo)
{
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc, bias)), m);
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    __m512i q = _mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm512_cvtepi32_epi8(_mm512_add_epi32(q, zo));
}

/* 4 rows of 16 uint8 -> 16 columns x 4 bytes (64 bytes at o). */
FC_TARGET_VNNI static inline void vnni_il4(__m128i a, __m128i b, __m128i c, __m128i e, uint8_t *o)
{
    const __m128i ab_lo = _mm_unpacklo_epi8(a, b), ab_hi = _mm_unpackhi_epi8(a, b);
    const __m128i ce_lo = _mm_unpacklo_epi8(c, e), ce_hi = _mm_unpackhi_epi8(c, e);
    _mm_storeu_si128((__m128i *)o, _mm_unpacklo_epi16(ab_lo, ce_lo));
    _mm_storeu_si128((__m128i *)(o + 16), _mm_unpackhi_epi16(ab_lo, ce_lo));
    _mm_storeu_si128((__m128i *)(o + 32), _mm_unpacklo_epi16(ab_hi, ce_hi));
    _mm_storeu_si128((__m128i *)(o + 48), _mm_unpackhi_epi16(ab_hi, ce_hi));
}

#define VNNI_RQ(i)                                                                   \
    const __m512i b##i = _mm512_set1_epi32(p->bias[i]);                              \
    const __m512 m##i = _mm512_set1_ps(p->mult[i]);                                  \
    const __m128i u##i##0 = vnni_rq(c##i##0, b##i, m##i, lo, hi, zo);                \
    const __m128i u##i##1 = vnni_rq(c##i##1, b##i, m##i, lo, hi, zo);

FC_TARGET_VNNI static void ukr_vnni_c4(int64_t kq, const uint8_t *w, const uint8_t *base,
                                       const int64_t *off, const qtile_epi *p, uint8_t *ut4)
{
    VNNI_DECL(0) VNNI_DECL(1) VNNI_DECL(2) VNNI_DECL(3)
    VNNI_DECL(4) VNNI_DECL(5) VNNI_DECL(6) VNNI_DECL(7)
    for (int64_t k = 0; k < kq; k++) {
        const uint8_t *b = base + off[k];
        const __m512i b0 = _mm512_loadu_si512((const void *)b);
        const __m512i b1 = _mm512_loadu_si512((const void *)(b + 64));
        VNNI_ROW(0) VNNI_ROW(1) VNNI_ROW(2) VNNI_ROW(3)
        VNNI_ROW(4) VNNI_ROW(5) VNNI_ROW(6) VNNI_ROW(7)
        w += 4 * MR;
    }
    const __m512 lo = _mm512_set1_ps(p->lo), hi = _mm512_set1_ps(p->hi);
    const __m512i zo = _mm512_set1_epi32(p->zo);
    VNNI_RQ(0) VNNI_RQ(1) VNNI_RQ(2) VNNI_RQ(3)
    vnni_il4(u00, u10, u20, u30, ut4);
    vnni_il4(u01, u11, u21, u31, ut4 + 64);
    VNNI_RQ(4) VNNI_RQ(5) VNNI_RQ(6) VNNI_RQ(7)
    vnni_il4(u40, u50, u60, u70, ut4 + 128);
    vnni_il4(u41, u51, u61, u71, ut4 + 192);
}

static const qkern kern_vnni = {2, VNNI_NR, ukr_vnni, epi_avx512, ukr_vnni_c4};

/* ---- AVX2: 8 x 16 as two 4 x 16 halves ----------------------------------- */
#define AVX2_NR 16
#define AVX2_DECL(i) __m256i c##i##0 = _mm256_setzero_si256(), c##i##1 = _mm256_setzero_si256();
#define AVX2_LOW(i)                                                                        \
    {                                                                                      \
        const __m256i a = _mm256_set1_epi32(ld32(w + 4 * (i)));                            \
        c##i##0 = _mm256_add_epi32(c##i##0, _mm256_madd_epi16(_mm256_maddubs_epi16(l0, a), ones)); \
        c##i##1 = _mm256_add_epi32(c##i##1, _mm256_madd_epi16(_mm256_maddubs_epi16(l1, a), ones)); \
    }
#define AVX2_HIGH(i)                                                                       \
    {                                                                                      \
        const __m256i a = _mm256_set1_epi32(ld32(w + 4 * (i)));                            \
        c##i##0 = _mm256_add_epi32(c##i##0, _mm256_madd_epi16(_mm256_maddubs_epi16(h0, a), c128)); \
        c##i##1 = _mm256_add_epi32(c##i##1, _mm256_madd_epi16(_mm256_maddubs_epi16(h1, a), c128)); \
    }
#define AVX2_STORE(i)                                                         \
    _mm256_storeu_si256((__m256i *)(tile + (i) * AVX2_NR), c##i##0);          \
    _mm256_storeu_si256((__m256i *)(tile + (i) * AVX2_NR + 8), c##i##1);

/* Requantize 8 lanes of one row (epi_avx2's arithmetic) to int32 in [0, 255]. */
FC_TARGET_AVX2 static inline __m256i avx2_rq(__m256i acc, __m256i bias, __m256 m, __m256 lo,
                                             __m256 hi, __m256i zo)
{
    __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(acc, bias)), m);
    v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
    v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm256_add_epi32(_mm256_cvttps_epi32(v), zo);
}

/* 4 rows x 8 columns of int32 in [0, 255] -> 8 columns x 4 bytes (32 bytes at o):
 * the packs leave each 128-bit lane a 4 x 4 byte block (row-major), one
 * vpshufb transposes it to column-major, and lane order is column order. */
FC_TARGET_AVX2 static inline void avx2_c4_store(__m256i r0, __m256i r1, __m256i r2, __m256i r3,
                                                uint8_t *o)
{
    const __m256i t = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
                                       0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const __m256i b = _mm256_packus_epi16(_mm256_packus_epi32(r0, r1), _mm256_packus_epi32(r2, r3));
    _mm256_storeu_si256((__m256i *)o, _mm256_shuffle_epi8(b, t));
}

/* Rows 0..3 of the weight panel w (its groups 32 bytes apart). The low 7 bits
 * of every operand byte first, OR-ing the bytes on the way; the high bits
 * (times 128) in a second pass only when one was set: *high caches that
 * answer for the second half. Out: the int32 tile rows, or (p != NULL) the
 * requantized rows as one C4 quad (16 columns x 4 bytes at ut4). */
FC_TARGET_AVX2 static void ukr_avx2_half(int64_t kq, const uint8_t *w, const uint8_t *base,
                                         const int64_t *off, int32_t *tile, int *high,
                                         const qtile_epi *p, int row0, uint8_t *ut4)
{
    const __m256i ones = _mm256_set1_epi16(1), c128 = _mm256_set1_epi16(128);
    const __m256i m7f = _mm256_set1_epi8(0x7f), m01 = _mm256_set1_epi8(1);
    const uint8_t *w0 = w;
    AVX2_DECL(0) AVX2_DECL(1) AVX2_DECL(2) AVX2_DECL(3)
    __m256i orv = _mm256_setzero_si256();
    for (int64_t k = 0; k < kq; k++) {
        const uint8_t *b = base + off[k];
        const __m256i x0 = _mm256_loadu_si256((const __m256i *)b);
        const __m256i x1 = _mm256_loadu_si256((const __m256i *)(b + 32));
        orv = _mm256_or_si256(orv, _mm256_or_si256(x0, x1));
        const __m256i l0 = _mm256_and_si256(x0, m7f), l1 = _mm256_and_si256(x1, m7f);
        AVX2_LOW(0) AVX2_LOW(1) AVX2_LOW(2) AVX2_LOW(3)
        w += 4 * MR;
    }
    if (*high < 0) *high = _mm256_movemask_epi8(orv) != 0;
    if (*high) {
        w = w0;
        for (int64_t k = 0; k < kq; k++) {
            const uint8_t *b = base + off[k];
            const __m256i x0 = _mm256_loadu_si256((const __m256i *)b);
            const __m256i x1 = _mm256_loadu_si256((const __m256i *)(b + 32));
            const __m256i h0 = _mm256_and_si256(_mm256_srli_epi16(x0, 7), m01);
            const __m256i h1 = _mm256_and_si256(_mm256_srli_epi16(x1, 7), m01);
            AVX2_HIGH(0) AVX2_HIGH(1) AVX2_HIGH(2) AVX2_HIGH(3)
            w += 4 * MR;
        }
    }
    if (p == NULL) {
        AVX2_STORE(0) AVX2_STORE(1) AVX2_STORE(2) AVX2_STORE(3)
        return;
    }
    const __m256 lo = _mm256_set1_ps(p->lo), hi = _mm256_set1_ps(p->hi);
    const __m256i zo = _mm256_set1_epi32(p->zo);
#define AVX2_RQ(i, h) avx2_rq(c##i##h, _mm256_set1_epi32(p->bias[row0 + (i)]), \
                              _mm256_set1_ps(p->mult[row0 + (i)]), lo, hi, zo)
    avx2_c4_store(AVX2_RQ(0, 0), AVX2_RQ(1, 0), AVX2_RQ(2, 0), AVX2_RQ(3, 0), ut4);
    avx2_c4_store(AVX2_RQ(0, 1), AVX2_RQ(1, 1), AVX2_RQ(2, 1), AVX2_RQ(3, 1), ut4 + 32);
#undef AVX2_RQ
}

FC_TARGET_AVX2 static void ukr_avx2(int64_t kq, const uint8_t *w, const uint8_t *base,
                                    const int64_t *off, int32_t *tile)
{
    int high = -1;
    ukr_avx2_half(kq, w, base, off, tile, &high, NULL, 0, NULL);
    ukr_avx2_half(kq, w + 16, base, off, tile + 4 * AVX2_NR, &high, NULL, 0, NULL);
}

FC_TARGET_AVX2 static void ukr_avx2_c4(int64_t kq, const uint8_t *w, const uint8_t *base,
                                       const int64_t *off, const qtile_epi *p, uint8_t *ut4)
{
    int high = -1;
    ukr_avx2_half(kq, w, base, off, NULL, &high, p, 0, ut4);
    ukr_avx2_half(kq, w + 16, base, off, NULL, &high, p, 4, ut4 + AVX2_NR * 4);
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

static const qkern kern_avx2 = {1, AVX2_NR, ukr_avx2, epi_avx2, ukr_avx2_c4};
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

/* Interleave 4 rows of n bytes (k = 4q .. 4q+3 of n columns) into 4-byte
 * groups at dst (n groups, then zero groups up to nr). Returns 0x80 when a
 * byte >= 128 was seen. */
unsigned fc_qinterleave4(const uint8_t *r0, const uint8_t *r1, const uint8_t *r2,
                         const uint8_t *r3, int64_t n, int64_t nr, uint8_t *dst)
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

/* Pack one NR-column panel (columns j0 .. j0+n-1, all K rows) of a MATRIX or
 * ROWS operand into dst (kq groups of nr x 4 bytes). zero: nr zero bytes. */
static void pack_panel(const fc_qsrc *s, int64_t K, int64_t j0, int64_t n, int64_t kq, int nr,
                       uint8_t *dst, const uint8_t *zero)
{
    if (s->kind == FC_QSRC_ROWS) {
        /* column j of the operand is row j of the input: 4 k values are 4 bytes */
        const int64_t full = K / 4;
        for (int64_t jj = 0; jj < nr; jj++) {
            if (jj >= n) {
                for (int64_t q = 0; q < kq; q++) memset(dst + (q * nr + jj) * 4, 0, 4);
                continue;
            }
            const uint8_t *row = s->a + (j0 + jj) * s->lda;
            for (int64_t q = 0; q < full; q++) memcpy(dst + (q * nr + jj) * 4, row + 4 * q, 4);
            if (full < kq) {
                uint8_t *o = dst + (full * nr + jj) * 4;
                for (int t = 0; t < 4; t++) o[t] = 4 * full + t < K ? row[4 * full + t] : 0;
            }
        }
        return;
    }
    for (int64_t q = 0; q < kq; q++) {
        const uint8_t *rows[4];
        for (int t = 0; t < 4; t++) {
            const int64_t k = 4 * q + t;
            rows[t] = k < K ? s->a + k * s->lda + j0 : zero;
        }
        fc_qinterleave4(rows[0], rows[1], rows[2], rows[3], n, nr, dst + q * nr * 4);
    }
}

/* ---- convolutions on C4 images --------------------------------------------
 * The input is uint8 in the C4 layout (N, ceil(C/4), H, W, 4): the 4 bytes of
 * a pixel are 4 consecutive channels, which is exactly one k group of the GEMM
 * when K is ordered (channel quad, r, s, channel % 4) (the weights are packed
 * in that order: fastconv.qfunctional.PackedWeights). Each job copies its
 * image (its group's quads) into a padded buffer of Hv x Wv pixels per quad
 * (borders = the zero point), so k group (cq, r, s) of output pixel (p, q)
 * is the 4-byte word at koff[(cq*R + r)*S + s] + ((p*sh)*Wv + q*sw) * 4.
 * Stride 1 ("virtual width"): the GEMM runs over virtual columns j = p*Wv +
 * q (q < Wv), so an operand row is the contiguous run koff[k] + 4j and the
 * micro-kernel reads it in place, no packing at all; columns with q >= Q are
 * computed and dropped (Wv/Q - 1 extra work). Other strides gather the words
 * of each panel into a packed panel first. */
typedef struct {
    int virt;
    int64_t Cgq, Hv, Wv, ncols;
    int64_t *koff;
} qconv_plan;

static void pad_image_c4(const fc_conv_geom *g, const qconv_plan *cp, const uint8_t *x_img,
                         uint8_t pad, uint8_t *pimg)
{
    const int64_t Hv = cp->Hv, Wv = cp->Wv;
    const int64_t top = g->pad_h < Hv ? g->pad_h : Hv;
    int64_t hn = Hv - g->pad_h < g->H ? Hv - g->pad_h : g->H;
    if (hn < 0) hn = 0;
    const int64_t left = g->pad_w < Wv ? g->pad_w : Wv;
    int64_t wn = Wv - g->pad_w < g->W ? Wv - g->pad_w : g->W;
    if (wn < 0) wn = 0;
    const int64_t right = Wv - left - wn;
    for (int64_t c = 0; c < cp->Cgq; c++) {
        uint8_t *d = pimg + c * Hv * Wv * 4;
        const uint8_t *src = x_img + c * g->H * g->W * 4;
        memset(d, pad, (size_t)(top * Wv * 4));
        for (int64_t h = 0; h < hn; h++) {
            uint8_t *row = d + (top + h) * Wv * 4;
            memset(row, pad, (size_t)(left * 4));
            memcpy(row + left * 4, src + h * g->W * 4, (size_t)(wn * 4));
            memset(row + (left + wn) * 4, pad, (size_t)(right * 4));
        }
        memset(d + (top + hn) * Wv * 4, pad, (size_t)((Hv - top - hn) * Wv * 4));
    }
}

/* Gather panel columns j0 .. j0+n-1 (output pixels) of a strided conv. */
static void gather_panel(const fc_conv_geom *g, const qconv_plan *cp, const uint8_t *pimg,
                         int64_t j0, int64_t n, int64_t kq, int nr, uint8_t *dst, int64_t *colo)
{
    for (int64_t jj = 0; jj < n; jj++) {
        const int64_t p = (j0 + jj) / g->Q, q = (j0 + jj) % g->Q;
        colo[jj] = (p * g->stride_h * cp->Wv + q * g->stride_w) * 4;
    }
    for (int64_t k = 0; k < kq; k++) {
        const uint8_t *src = pimg + cp->koff[k];
        uint8_t *d = dst + k * nr * 4;
        for (int64_t jj = 0; jj < n; jj++) memcpy(d + jj * 4, src + colo[jj], 4);
        if (n < nr) memset(d + n * 4, 0, (size_t)(nr - n) * 4);
    }
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

/* The epilogue constants of rows row0 .. row0+mr-1 (rows beyond mr: zero, so
 * they come out as the zero point). */
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

/* Write the tile's columns [c0, c0+len) (output pixels pix0 ..) of a conv. */
static void conv_out(const qkern *kn, const fc_qsrc *s, const int32_t *tile, int nr, int mr,
                     const qtile_epi *te, int64_t c0, int64_t len, int64_t pix0, char *rowbase,
                     uint8_t *ut, int64_t quad0, int64_t nquad, int64_t PQ)
{
    if (!s->c4_out) {
        kn->epi(tile + c0, nr, mr, (int)len, te, rowbase + pix0 * (int64_t)s->esize, s->ldc_row, 1);
        return;
    }
    /* C4 output: uint8 rows (whole channel quads), then 4 rows -> 4-byte groups */
    const int mr4 = (int)(4 * nquad);
    kn->epi(tile + c0, nr, mr4, (int)len, te, (char *)ut, nr, 1);
    for (int64_t qd = 0; qd < nquad; qd++) {
        const uint8_t *r = ut + 4 * qd * nr;
        fc_qinterleave4(r, r + nr, r + 2 * nr, r + 3 * nr, len, len,
                        (uint8_t *)s->c + ((quad0 + qd) * PQ + pix0) * 4);
    }
}

fc_status fc_qgemm_drive(const fc_qsrc *s, int64_t M, int64_t N, int64_t K, const fc_qepi *epi,
                         int nthreads)
{
    if (M == 0 || N == 0 || s->nprob == 0) return FC_OK;
    const qkern *kn = qkernel();
    const int nr = kn->nr;
    const int64_t kq = (K + 3) / 4, mp = (M + MR - 1) / MR;
    const fc_conv_geom *g = s->g;
    const int conv = s->kind == FC_QSRC_C4;
    qconv_plan cp;
    memset(&cp, 0, sizeof(cp));
    int64_t G = 1, ncols = N, Kq_out = 0;
    int64_t *offs = (int64_t *)malloc((size_t)(kq > 0 ? kq : 1) * sizeof(int64_t));
    if (offs == NULL) return FC_ENOMEM;
    for (int64_t k = 0; k < kq; k++) offs[k] = k * nr * 4;     /* rows of a packed panel */
    if (conv) {
        G = g->groups;
        cp.Cgq = kq / (g->R * g->S);
        cp.virt = g->stride_h == 1 && g->stride_w == 1;
        cp.Hv = (g->P - 1) * g->stride_h + g->dil_h * (g->R - 1) + 1;
        cp.Wv = (g->Q - 1) * g->stride_w + g->dil_w * (g->S - 1) + 1;
        cp.ncols = cp.virt ? (g->P - 1) * cp.Wv + g->Q : g->P * g->Q;
        ncols = cp.ncols;
        Kq_out = (g->K + 3) / 4;
        cp.koff = (int64_t *)malloc((size_t)(kq > 0 ? kq : 1) * sizeof(int64_t));
        if (cp.koff == NULL) {
            free(offs);
            return FC_ENOMEM;
        }
        for (int64_t k = 0; k < kq; k++) {
            const int64_t c = k / (g->R * g->S), r = (k / g->S) % g->R, sx = k % g->S;
            cp.koff[k] = ((c * cp.Hv + r * g->dil_h) * cp.Wv + sx * g->dil_w) * 4;
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
    const int fused = conv && s->c4_out && kn->ukr_c4 != NULL;
    const size_t pbytes = (size_t)((kq > 0 ? kq : 1) * nr * 4);
    const size_t ibytes = conv ? (size_t)(cp.Cgq * cp.Hv * cp.Wv * 4 + nr * 4 + 64) : 0;
    const size_t wsbytes = al64(pbytes) + al64((size_t)nr) + al64((size_t)MR * nr * 4)
                         + al64((size_t)MR * nr) + al64((size_t)nr * 8) + al64(ibytes);
    int failed = 0;

    FC_OMP_PARALLEL(nthreads)
    {
        char *ws = (char *)fc_ws_alloc(wsbytes);
        uint8_t *bpan = (uint8_t *)ws;
        uint8_t *zero = bpan + al64(pbytes);
        int32_t *tile = (int32_t *)(zero + al64((size_t)nr));
        uint8_t *ut = (uint8_t *)tile + al64((size_t)MR * nr * 4);
        int64_t *colo = (int64_t *)(ut + al64((size_t)MR * nr));
        uint8_t *pimg = (uint8_t *)colo + al64((size_t)nr * 8);
        if (ws != NULL) {
            memset(zero, 0, (size_t)nr);
            if (conv) memset(pimg + ibytes - nr * 4 - 64, 0, (size_t)nr * 4 + 64);  /* slack */
        }
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
            char *cbase = s->c;
            if (conv) {
                const int64_t Cq_in = G == 1 ? cp.Cgq : G * cp.Cgq;
                pad_image_c4(g, &cp, s->a + (n_img * Cq_in + grp * cp.Cgq) * g->H * g->W * 4,
                             s->pad, pimg);
                if (!s->c4_out) cbase += (n_img * g->K + grp * M) * N * (int64_t)s->esize;
            }
            for (int64_t pj = clo; pj < chi; pj++) {
                const int64_t j0 = pj * nr;
                const int64_t n = ncols - j0 < nr ? ncols - j0 : nr;
                const uint8_t *base = bpan;
                const int64_t *off = offs;
                if (conv && cp.virt) {
                    base = pimg + j0 * 4;
                    off = cp.koff;
                } else if (conv) {
                    gather_panel(g, &cp, pimg, j0, n, kq, nr, bpan, colo);
                } else {
                    pack_panel(s, K, j0, n, kq, nr, bpan, zero);
                }
                for (int64_t pi = plo; pi < phi; pi++) {
                    const int mr = (int)(M - pi * MR < MR ? M - pi * MR : MR);
                    qtile_epi te;
                    tile_epi(epi, s->rowsum, row0 + pi * MR, mr, &te);
                    if (fused) {
                        /* requantized and interleaved in registers; copy the runs out */
                        kn->ukr_c4(kq, w + pi * kq * 4 * MR, base, off, &te, ut);
                        const int64_t PQ = g->P * g->Q;
                        const int64_t quad0 = n_img * Kq_out + (row0 + pi * MR) / 4;
                        const int64_t nquad = (mr + 3) / 4;
                        int64_t jv = j0;
                        while (jv < j0 + n) {
                            int64_t pix = jv, len = j0 + n - jv, step = len;
                            if (cp.virt) {
                                const int64_t p = jv / cp.Wv, q = jv % cp.Wv;
                                step = cp.Wv - q < len ? cp.Wv - q : len;
                                len = q < g->Q ? (g->Q - q < step ? g->Q - q : step) : 0;
                                pix = p * g->Q + q;
                            }
                            for (int64_t qd = 0; qd < nquad && len > 0; qd++)
                                memcpy((uint8_t *)s->c + ((quad0 + qd) * PQ + pix) * 4,
                                       ut + qd * nr * 4 + (jv - j0) * 4, (size_t)len * 4);
                            jv += step;
                        }
                        continue;
                    }
                    kn->ukr(kq, w + pi * kq * 4 * MR, base, off, tile);
                    if (!conv) {
                        char *out = cbase + ((pi * MR) * s->ldc_row + j0 * s->ldc_col) * (int64_t)s->esize;
                        kn->epi(tile, nr, mr, (int)n, &te, out, s->ldc_row, s->ldc_col);
                        continue;
                    }
                    const int64_t PQ = g->P * g->Q;
                    const int64_t quad0 = n_img * Kq_out + (row0 + pi * MR) / 4;
                    const int64_t nquad = (mr + 3) / 4;
                    char *rowbase = cbase + (pi * MR) * s->ldc_row * (int64_t)s->esize;
                    if (!cp.virt) {
                        conv_out(kn, s, tile, nr, mr, &te, 0, n, j0, rowbase, ut, quad0, nquad, PQ);
                        continue;
                    }
                    /* virtual columns -> output pixels: one run of q < Q per row p */
                    int64_t jv = j0;
                    while (jv < j0 + n) {
                        const int64_t p = jv / cp.Wv, q = jv % cp.Wv;
                        int64_t run = cp.Wv - q;
                        if (run > j0 + n - jv) run = j0 + n - jv;
                        if (q < g->Q) {
                            const int64_t len = g->Q - q < run ? g->Q - q : run;
                            conv_out(kn, s, tile, nr, mr, &te, jv - j0, len, p * g->Q + q, rowbase,
                                     ut, quad0, nquad, PQ);
                        }
                        jv += run;
                    }
                }
            }
        }
        if (ws != NULL) fc_ws_free(ws);
    }
    free(cp.koff);
    free(offs);
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
