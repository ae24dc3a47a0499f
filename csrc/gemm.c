/*
 * gemm.c: fastconv's own matrix multiply, BLIS-style (see gemm.h).
 *
 * Loop nest (gemm.inc): for each NC-wide block of columns of C, for each
 * slice of K (at most KC deep), B's kc x nc block is packed into NR-wide
 * panels (or read in place, FC_GEMM_IN_PLACE); for each MC-tall block of
 * rows, A's mc x kc block is packed into MR-tall panels (or taken from a
 * buffer packed once, fc_gemm_pack_a); then an MR x NR micro-kernel runs over
 * every tile, one A panel against all B panels in turn. Panels are
 * zero-padded to full MR / NR; the micro-kernels handle a partial tile of C
 * themselves (fewer rows, masked last vector). Packing goes through function
 * pointers too: SIMD copies and in-register transposes for each ISA.
 *
 * Reproducibility: the micro-kernel starts its accumulators from C (or 0 on
 * the first slice when not accumulating) and adds the products of its kc
 * slice in increasing k, so every element of C is a single chain over
 * k = 0..K-1 whatever the blocking, the tile position or the thread count.
 * The AVX-512 and AVX2 kernels fuse each multiply-add (one rounding); the
 * portable kernel rounds the product and the sum (GCC does not contract
 * a*b+c under -std=c99), so variants differ from each other by rounding only.
 *
 * Micro-kernels: AVX-512 (float 14x32 and 8x48, double 14x16), AVX2+FMA (float 6x16,
 * double 6x8), portable C (4x8). The SIMD ones are compiled with function
 * target attributes (no -march flags), and picked per call at fastconv's
 * ISA level (fc_isa_level, runtime.c: the CPU features, capped by
 * FASTCONV_ISA, overridable by fc_set_isa).
 */
#include <stdlib.h>
#include <string.h>
#include "fc_internal.h"
#include "gemm.h"

/* Define FC_GEMM_NO_SIMD to build the portable kernel only (as on a
 * non-x86 CPU; the other kernels still follow the ISA level). */
#if FC_X86_SIMD && (defined(__x86_64__) || defined(_M_X64)) && !defined(FC_GEMM_NO_SIMD)
#define FC_GEMM_X86 1
#include <immintrin.h>
#define FC_TARGET_AVX512 FC_TARGET("avx512f,avx512dq,avx2,fma")
#define FC_TARGET_AVX2 FC_TARGET("avx2,fma")
#else
#define FC_GEMM_X86 0
#endif

/* FC_NOINLINE, FC_TARGET: fc_compiler.h */

/* Micro-kernel: c[i*ldc + j] (i < mr <= MR, j < nr <= NR) = (load ? c : 0)
 * + sum_k a[k*MR + i] * b[k*NR + j], k increasing, then + bias[i] when bias is
 * not NULL (the epilogue of the last K slice). a, b: packed panels
 * (zero-padded to MR / NR). Partial tiles are handled inside: the SIMD
 * kernels run only the rows and vectors the tile needs and mask the last
 * vector's loads and stores, so no scratch tile and no wasted rows. */
typedef void (*fc_ukr_fn)(int64_t kc, const void *a, const void *b, void *c, int64_t ldc,
                          int load, int mr, int nr, const void *bias);
/* The same with B read in place: row k of the tile is b + lines[k] (nr values,
 * no packing; see gemm.inc for when the driver takes this path). The SIMD
 * kernels have one; the portable kernel does not (the driver packs B). */
typedef void (*fc_ukr_lines_fn)(int64_t kc, const void *a, const void *b, const int64_t *lines,
                                void *c, int64_t ldc, int load, int mr, int nr,
                                const void *bias);

/* Packers (gemm.inc describes the panel layout): copy-pack takes lines that
 * index K, transpose-pack lines that index M (A) or N (B). */
typedef void (*fc_pack_copy_fn)(const fc_gemm_operand *o, int64_t l0, int64_t nl, int64_t t0,
                                int64_t np, int R, void *dst, int64_t *seg);
typedef void (*fc_pack_trans_fn)(const fc_gemm_operand *o, int64_t l0, int64_t nl, int64_t t0,
                                 int64_t np, int R, void *dst, int64_t *seg);

struct fc_gemm_kernel {
    int isa;            /* FC_ISA_* */
    int dsize;          /* sizeof(T) */
    int mr, nr;         /* micro-tile */
    int64_t kc, mc, nc; /* cache blocking: mc a multiple of mr, nc of nr; kc <= 512 */
    fc_ukr_fn ukr;
    fc_ukr_lines_fn ukr_lines;
    fc_pack_copy_fn pack_copy;
    fc_pack_trans_fn pack_trans;
};

/* Offset of position t in a line (see fc_gemm_operand). */
static inline int64_t opnd_pos(const fc_gemm_operand *o, int64_t t)
{
    return o->run > 0 ? (t / o->run) * o->pitch + t % o->run : t;
}

static inline int64_t opnd_line(const fc_gemm_operand *o, int64_t l)
{
    return o->lines != NULL ? o->lines[l] : l * o->ld;
}

/* Split positions [t0, t0 + n) into maximal contiguous segments: segment i
 * covers n_i positions starting at panel slot d_i and line offset s_i.
 * Returns the count (<= n). */
static int64_t opnd_segments(const fc_gemm_operand *o, int64_t t0, int64_t n,
                             int64_t *d, int64_t *s, int64_t *len)
{
    if (o->run <= 0 || o->pitch == o->run) {
        d[0] = 0;
        s[0] = opnd_pos(o, t0);
        len[0] = n;
        return n > 0 ? 1 : 0;
    }
    int64_t cnt = 0, i = 0;
    int64_t row = t0 / o->run, col = t0 % o->run;
    while (i < n) {
        int64_t l = o->run - col;
        if (l > n - i) l = n - i;
        d[cnt] = i;
        s[cnt] = row * o->pitch + col;
        len[cnt] = l;
        cnt++;
        i += l;
        row++;
        col = 0;
    }
    return cnt;
}

/* Copy-pack pieces: positions [t0, t0 + np) cut into runs that are contiguous
 * in a line and stay inside one R-wide panel. Piece i covers len_i positions
 * starting at line offset s_i and goes to packed offset d_i (of line 0 of a
 * panel block whose lines are nl apart). At most 2 * np + 2 pieces. */
static int64_t opnd_pieces(const fc_gemm_operand *o, int64_t t0, int64_t np, int64_t R,
                           int64_t nl, int64_t *d, int64_t *s, int64_t *len)
{
    int64_t cnt = 0, i = 0;
    while (i < np) {
        const int64_t t = t0 + i;
        int64_t l = R - i % R;                       /* to the end of the panel */
        if (o->run > 0 && o->pitch != o->run && o->run - t % o->run < l)
            l = o->run - t % o->run;                 /* to the end of the run */
        if (l > np - i) l = np - i;
        d[cnt] = (i / R) * nl * R + i % R;
        s[cnt] = opnd_pos(o, t);
        len[cnt] = l;
        cnt++;
        i += l;
    }
    return cnt;
}

/* ---- portable micro-kernel ------------------------------------------------ */

#define FC_GEN_MR 4
#define FC_GEN_NR 8

#define FC_GEN_UKR(T, SFX)                                                               \
static void ukr_generic_##SFX(int64_t kc, const void *a_, const void *b_, void *c_,      \
                              int64_t ldc, int load, int mr, int nr, const void *bias_)  \
{                                                                                        \
    const T *restrict bias = (const T *)bias_;                                           \
    const T *restrict a = (const T *)a_;                                                 \
    const T *restrict b = (const T *)b_;                                                 \
    T *restrict c = (T *)c_;                                                             \
    T acc[FC_GEN_MR][FC_GEN_NR];                                                         \
    for (int i = 0; i < FC_GEN_MR; i++)                                                  \
        for (int j = 0; j < FC_GEN_NR; j++)                                              \
            acc[i][j] = (load && i < mr && j < nr) ? c[i * ldc + j] : (T)0;              \
    for (int64_t k = 0; k < kc; k++) {                                                   \
        for (int i = 0; i < FC_GEN_MR; i++) {                                            \
            const T ai = a[i];                                                           \
            for (int j = 0; j < FC_GEN_NR; j++) acc[i][j] = acc[i][j] + ai * b[j];       \
        }                                                                                \
        a += FC_GEN_MR;                                                                  \
        b += FC_GEN_NR;                                                                  \
    }                                                                                    \
    for (int i = 0; i < mr; i++) {                                                       \
        const T bi = bias != NULL ? bias[i] : (T)0;                                      \
        if (bias != NULL)                                                                \
            for (int j = 0; j < nr; j++) c[i * ldc + j] = acc[i][j] + bi;                \
        else                                                                             \
            for (int j = 0; j < nr; j++) c[i * ldc + j] = acc[i][j];                     \
    }                                                                                    \
}
FC_GEN_UKR(float, f32)
FC_GEN_UKR(double, f64)


#if FC_GEMM_X86
/* ---- SIMD micro-kernels: up to MR rows x 2 vectors ------------------------
 * One body per (rows, vectors) pair, generated from a template with the
 * row count and vector count as compile-time constants (so each instance is
 * fully unrolled with its accumulators in registers), and a switch picking
 * the instance for a tile. Each A element is broadcast straight from memory
 * into the multiply-adds; the last vector of a row is loaded / stored under
 * a mask when the tile is narrower than NR.
 * AVX-512: 14 rows x 2 x 16 floats (or 8 doubles): 28 accumulators + 2 B
 * vectors of 32 registers; 28 independent multiply-adds per k cover two
 * FMA ports x 4 cycles of latency. AVX2: 6 rows x 2 vectors, 12 of 16. */
#define FC_ROWS14(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)

#define FC_U_DECL(i) VT c##i##a = VZERO(), c##i##b = VZERO();
#define FC_U_LOAD(i) if (NROW > (i)) { \
    if (NV == 2) { c##i##a = VLOADU(c + (i) * ldc); c##i##b = VMLOAD(c + (i) * ldc + VL, m1); } \
    else c##i##a = VMLOAD(c + (i) * ldc, m0); }
#define FC_U_FMA(i) if (NROW > (i)) { const VT ai = VSET1(a[i]); \
    c##i##a = VFMA(ai, b0, c##i##a); if (NV == 2) c##i##b = VFMA(ai, b1, c##i##b); }
#define FC_U_BIAS(i) if (NROW > (i)) { const VT bi = VSET1(bias[i]); \
    c##i##a = VADD(c##i##a, bi); if (NV == 2) c##i##b = VADD(c##i##b, bi); }
#define FC_U_STORE(i) if (NROW > (i)) { \
    if (NV == 2) { VSTOREU(c + (i) * ldc, c##i##a); VMSTORE(c + (i) * ldc + VL, m1, c##i##b); } \
    else VMSTORE(c + (i) * ldc, m0, c##i##a); }

/* The body: NROW rows, NV vectors; m0 masks vector 0 when NV == 1, m1
 * masks vector 1 when NV == 2. */
#define FC_UKR_BODY(NAME, TARGET, T, MR, MT)                                             \
static FC_ALWAYS_INLINE TARGET void                                 \
NAME##_body(int64_t kc, const T *restrict a, const T *restrict b, T *restrict c,         \
            int64_t ldc, int load, const int NROW, const int NV, MT m0, MT m1,           \
            const T *restrict bias, const int64_t *restrict bl, const int LINES)         \
{                                                                                        \
    FC_ROWS14(FC_U_DECL)                                                                 \
    if (load) { FC_ROWS14(FC_U_LOAD) }                                                   \
    for (int64_t k = 0; k < kc; k++) {                                                   \
        VT b0, b1;                                                                       \
        if (LINES) {                                                                     \
            const T *bk = b + bl[k];                                                     \
            b0 = NV == 2 ? VLOADU(bk) : VMLOAD(bk, m0);                                  \
            b1 = NV == 2 ? VMLOAD(bk + VL, m1) : VZERO();                                \
        } else {                                                                         \
            b0 = VLOAD(b);                                                               \
            b1 = NV == 2 ? VLOAD(b + VL) : VZERO();                                      \
            b += 2 * VL;                                                                 \
        }                                                                                \
        FC_ROWS14(FC_U_FMA)                                                              \
        a += (MR);                                                                       \
    }                                                                                    \
    if (bias != NULL) { FC_ROWS14(FC_U_BIAS) }                                           \
    FC_ROWS14(FC_U_STORE)                                                                \
    (void)m0; (void)m1;                                                                  \
}

#define FC_UKR_CASE(NAME, m) case m: { \
    if (nv == 2) NAME##_body(kc, a, b, c, ldc, load, m, 2, m0, m1, bias, bl, LINES); \
    else NAME##_body(kc, a, b, c, ldc, load, m, 1, m0, m1, bias, bl, LINES); } break;

/* The dispatchers: MASKS(nr) sets m0, m1 for a tile nr wide. NAME reads
 * packed B panels, NAME##_lines reads B rows in place. */
#define FC_UKR_DISPATCH(NAME, TARGET, T, MT, MASKS, CASES)                                \
static TARGET void NAME(int64_t kc, const void *a_, const void *b_, void *c_,            \
                        int64_t ldc, int load, int mr, int nr, const void *bias_)        \
{                                                                                        \
    const T *bias = (const T *)bias_;                                                    \
    const T *a = (const T *)a_;                                                          \
    const T *b = (const T *)b_;                                                          \
    const int64_t *bl = NULL;                                                            \
    T *c = (T *)c_;                                                                      \
    const int nv = nr > VL ? 2 : 1;                                                      \
    MT m0, m1;                                                                           \
    MASKS(nr)                                                                            \
    enum { LINES = 0 };                                                                  \
    switch (mr) {                                                                        \
    CASES(NAME)                                                                          \
    default: break;                                                                      \
    }                                                                                    \
}                                                                                        \
static TARGET void NAME##_lines(int64_t kc, const void *a_, const void *b_,              \
                                const int64_t *bl, void *c_, int64_t ldc, int load,      \
                                int mr, int nr, const void *bias_)                       \
{                                                                                        \
    const T *bias = (const T *)bias_;                                                    \
    const T *a = (const T *)a_;                                                          \
    const T *b = (const T *)b_;                                                          \
    T *c = (T *)c_;                                                                      \
    const int nv = nr > VL ? 2 : 1;                                                      \
    MT m0, m1;                                                                           \
    MASKS(nr)                                                                            \
    enum { LINES = 1 };                                                                  \
    switch (mr) {                                                                        \
    CASES(NAME)                                                                          \
    default: break;                                                                      \
    }                                                                                    \
}
#define FC_CASES14(NAME) \
    FC_UKR_CASE(NAME, 14) FC_UKR_CASE(NAME, 13) FC_UKR_CASE(NAME, 12) FC_UKR_CASE(NAME, 11) \
    FC_UKR_CASE(NAME, 10) FC_UKR_CASE(NAME, 9) FC_UKR_CASE(NAME, 8) FC_UKR_CASE(NAME, 7) \
    FC_CASES6(NAME)
#define FC_CASES6(NAME) \
    FC_UKR_CASE(NAME, 6) FC_UKR_CASE(NAME, 5) FC_UKR_CASE(NAME, 4) FC_UKR_CASE(NAME, 3) \
    FC_UKR_CASE(NAME, 2) FC_UKR_CASE(NAME, 1)

/* AVX-512: k-masks. */
#define FC_MASKS512(nr) \
    m0 = (MT0)(nr >= VL ? (MT0)~0u : (MT0)((1u << nr) - 1u)); \
    m1 = (MT0)(nr >= 2 * VL ? (MT0)~0u : nr > VL ? (MT0)((1u << (nr - VL)) - 1u) : (MT0)0);

#define VT __m512
#define VL 16
#define MT0 __mmask16
#define VZERO _mm512_setzero_ps
#define VLOAD _mm512_load_ps
#define VLOADU _mm512_loadu_ps
#define VSTOREU _mm512_storeu_ps
#define VMLOAD(p, m) _mm512_maskz_loadu_ps(m, p)
#define VMSTORE(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define VSET1 _mm512_set1_ps
#define VFMA _mm512_fmadd_ps
#define VADD _mm512_add_ps
FC_UKR_BODY(ukr_avx512_f32, FC_TARGET_AVX512, float, 14, __mmask16)
FC_UKR_DISPATCH(ukr_avx512_f32, FC_TARGET_AVX512, float, __mmask16, FC_MASKS512, FC_CASES14)
#undef VT
#undef VL
#undef MT0
#undef VZERO
#undef VLOAD
#undef VLOADU
#undef VSTOREU
#undef VMLOAD
#undef VMSTORE
#undef VSET1
#undef VFMA
#undef VADD

#define VT __m512d
#define VL 8
#define MT0 __mmask8
#define VZERO _mm512_setzero_pd
#define VLOAD _mm512_load_pd
#define VLOADU _mm512_loadu_pd
#define VSTOREU _mm512_storeu_pd
#define VMLOAD(p, m) _mm512_maskz_loadu_pd(m, p)
#define VMSTORE(p, m, v) _mm512_mask_storeu_pd(p, m, v)
#define VSET1 _mm512_set1_pd
#define VFMA _mm512_fmadd_pd
#define VADD _mm512_add_pd
FC_UKR_BODY(ukr_avx512_f64, FC_TARGET_AVX512, double, 14, __mmask8)
FC_UKR_DISPATCH(ukr_avx512_f64, FC_TARGET_AVX512, double, __mmask8, FC_MASKS512, FC_CASES14)
#undef VT
#undef VL
#undef MT0
#undef VZERO
#undef VLOAD
#undef VLOADU
#undef VSTOREU
#undef VMLOAD
#undef VMSTORE
#undef VSET1
#undef VFMA
#undef VADD

/* AVX2: lane masks from a table of -1 / 0 (a sliding window picks the
 * first n lanes). */
static const int32_t fc_lane_mask32[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
static const int64_t fc_lane_mask64[8] = {-1, -1, -1, -1, 0, 0, 0, 0};
#define FC_MASKS256_PS(nr) \
    m0 = _mm256_loadu_si256((const __m256i *)(fc_lane_mask32 + 8 - (nr >= VL ? VL : nr))); \
    m1 = _mm256_loadu_si256((const __m256i *)(fc_lane_mask32 + 8 - (nr > VL ? nr - VL : 0)));
#define FC_MASKS256_PD(nr) \
    m0 = _mm256_loadu_si256((const __m256i *)(fc_lane_mask64 + 4 - (nr >= VL ? VL : nr))); \
    m1 = _mm256_loadu_si256((const __m256i *)(fc_lane_mask64 + 4 - (nr > VL ? nr - VL : 0)));

#define VT __m256
#define VL 8
#define VZERO _mm256_setzero_ps
#define VLOAD _mm256_load_ps
#define VLOADU _mm256_loadu_ps
#define VSTOREU _mm256_storeu_ps
#define VMLOAD(p, m) _mm256_maskload_ps(p, m)
#define VMSTORE(p, m, v) _mm256_maskstore_ps(p, m, v)
#define VSET1 _mm256_set1_ps
#define VFMA _mm256_fmadd_ps
#define VADD _mm256_add_ps
FC_UKR_BODY(ukr_avx2_f32, FC_TARGET_AVX2, float, 6, __m256i)
FC_UKR_DISPATCH(ukr_avx2_f32, FC_TARGET_AVX2, float, __m256i, FC_MASKS256_PS, FC_CASES6)
#undef VT
#undef VL
#undef VZERO
#undef VLOAD
#undef VLOADU
#undef VSTOREU
#undef VMLOAD
#undef VMSTORE
#undef VSET1
#undef VFMA
#undef VADD

#define VT __m256d
#define VL 4
#define VZERO _mm256_setzero_pd
#define VLOAD _mm256_load_pd
#define VLOADU _mm256_loadu_pd
#define VSTOREU _mm256_storeu_pd
#define VMLOAD(p, m) _mm256_maskload_pd(p, m)
#define VMSTORE(p, m, v) _mm256_maskstore_pd(p, m, v)
#define VSET1 _mm256_set1_pd
#define VFMA _mm256_fmadd_pd
#define VADD _mm256_add_pd
FC_UKR_BODY(ukr_avx2_f64, FC_TARGET_AVX2, double, 6, __m256i)
FC_UKR_DISPATCH(ukr_avx2_f64, FC_TARGET_AVX2, double, __m256i, FC_MASKS256_PD, FC_CASES6)
#undef VT
#undef VL
#undef VZERO
#undef VLOAD
#undef VLOADU
#undef VSTOREU
#undef VMLOAD
#undef VMSTORE
#undef VSET1
#undef VFMA
#undef VADD

/* ---- SIMD packers ----------------------------------------------------------
 * Copy-pack: each segment is copied with full vectors and one masked tail.
 * Transpose-pack: V lines x V positions are loaded as V vectors, transposed
 * in registers (unpack / shuffle networks below) and stored as V panel rows
 * (masked to the R - r0 lanes the panel has left). Lines past the edge are
 * zero vectors. */

#if FC_GNUC
#define FC_UNROLL(n) _Pragma("GCC unroll 16")
#else
#define FC_UNROLL(n)
#endif

/* 16 x 16 floats: r[i][j] -> r[j][i]. */
static FC_ALWAYS_INLINE FC_TARGET_AVX512 void tr16_ps(__m512 *r)
{
    __m512 t[16], u[16];
    FC_UNROLL(16)
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* t[2i] lane k: r2i[4k], r2i+1[4k], r2i[4k+1], r2i+1[4k+1]; t[2i+1]: 4k+2, 4k+3 */
    FC_UNROLL(16)
    for (int b = 0; b < 4; b++) {
        const __m512d a0 = _mm512_castps_pd(t[4 * b]), a1 = _mm512_castps_pd(t[4 * b + 1]);
        const __m512d a2 = _mm512_castps_pd(t[4 * b + 2]), a3 = _mm512_castps_pd(t[4 * b + 3]);
        u[4 * b + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));   /* rows 4b..4b+3, col 4k */
        u[4 * b + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));   /* col 4k+1 */
        u[4 * b + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));   /* col 4k+2 */
        u[4 * b + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));   /* col 4k+3 */
    }
    FC_UNROLL(16)
    for (int c = 0; c < 4; c++) {
        const __m512 wlo = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);
        const __m512 whi = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
        const __m512 xlo = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
        const __m512 xhi = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
        r[c] = _mm512_shuffle_f32x4(wlo, xlo, 0x88);
        r[4 + c] = _mm512_shuffle_f32x4(wlo, xlo, 0xDD);
        r[8 + c] = _mm512_shuffle_f32x4(whi, xhi, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(whi, xhi, 0xDD);
    }
}

/* 8 x 8 doubles. */
static FC_ALWAYS_INLINE FC_TARGET_AVX512 void tr8_pd512(__m512d *r)
{
    __m512d t[8];
    FC_UNROLL(8)
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm512_unpacklo_pd(r[2 * i], r[2 * i + 1]);       /* rows 2i, 2i+1 at col 2k */
        t[2 * i + 1] = _mm512_unpackhi_pd(r[2 * i], r[2 * i + 1]);   /* col 2k+1 */
    }
    FC_UNROLL(8)
    for (int c = 0; c < 2; c++) {
        const __m512d wlo = _mm512_shuffle_f64x2(t[c], t[2 + c], 0x44);
        const __m512d whi = _mm512_shuffle_f64x2(t[c], t[2 + c], 0xEE);
        const __m512d xlo = _mm512_shuffle_f64x2(t[4 + c], t[6 + c], 0x44);
        const __m512d xhi = _mm512_shuffle_f64x2(t[4 + c], t[6 + c], 0xEE);
        r[c] = _mm512_shuffle_f64x2(wlo, xlo, 0x88);
        r[2 + c] = _mm512_shuffle_f64x2(wlo, xlo, 0xDD);
        r[4 + c] = _mm512_shuffle_f64x2(whi, xhi, 0x88);
        r[6 + c] = _mm512_shuffle_f64x2(whi, xhi, 0xDD);
    }
}

/* 8 x 8 floats (AVX2). */
static FC_ALWAYS_INLINE FC_TARGET_AVX2 void tr8_ps256(__m256 *r)
{
    __m256 t[8], u[8];
    FC_UNROLL(8)
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    FC_UNROLL(8)
    for (int b = 0; b < 2; b++) {
        const __m256d a0 = _mm256_castps_pd(t[4 * b]), a1 = _mm256_castps_pd(t[4 * b + 1]);
        const __m256d a2 = _mm256_castps_pd(t[4 * b + 2]), a3 = _mm256_castps_pd(t[4 * b + 3]);
        u[4 * b + 0] = _mm256_castpd_ps(_mm256_unpacklo_pd(a0, a2));
        u[4 * b + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(a0, a2));
        u[4 * b + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(a1, a3));
        u[4 * b + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(a1, a3));
    }
    FC_UNROLL(8)
    for (int c = 0; c < 4; c++) {
        r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
        r[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
    }
}

/* 4 x 4 doubles (AVX2). */
static FC_ALWAYS_INLINE FC_TARGET_AVX2 void tr4_pd256(__m256d *r)
{
    const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
    const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
    r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

#define FC_PACK_SIMD(NAME, TARGET, T, V, VT, MT, TRANSPOSE)                                 \
static FC_ALWAYS_INLINE TARGET void                                    \
NAME##_copy_n(T *d, const T *s, int64_t n)                                                  \
{                                                                                           \
    for (; n >= V; n -= V, d += V, s += V) VSTOREU(d, VLOADU(s));                           \
    if (n > 0) {                                                                            \
        const MT m = PMASK(n);                                                              \
        VMSTORE(d, m, VMLOAD(s, m));                                                        \
    }                                                                                       \
}                                                                                           \
static FC_ALWAYS_INLINE TARGET void NAME##_zero_n(T *d, int64_t n)     \
{                                                                                           \
    for (; n >= V; n -= V, d += V) VSTOREU(d, VZERO());                                     \
    if (n > 0) VMSTORE(d, PMASK(n), VZERO());                                               \
}                                                                                           \
static TARGET void NAME##_copy(const fc_gemm_operand *o, int64_t l0, int64_t nl, int64_t t0, \
                               int64_t np, int R, void *dst_, int64_t *seg)                 \
{                                                                                           \
    const T *base = (const T *)o->base;                                                     \
    T *dst = (T *)dst_;                                                                     \
    int64_t *d = seg, *s = seg + 2 * np + 8, *len = seg + 4 * np + 16;                      \
    const int64_t npc = opnd_pieces(o, t0, np, R, nl, d, s, len);                           \
    const int64_t tail = np % R;                                                            \
    T *ztail = dst + (np / R) * nl * R + tail;                                              \
    for (int64_t l = 0; l < nl; l++) {                                                      \
        const T *src = base + opnd_line(o, l0 + l);                                         \
        T *q = dst + l * R;                                                                 \
        for (int64_t g = 0; g < npc; g++) NAME##_copy_n(q + d[g], src + s[g], len[g]);      \
        if (tail) NAME##_zero_n(ztail + l * R, R - tail);                                   \
    }                                                                                       \
}                                                                                           \
static TARGET void NAME##_trans(const fc_gemm_operand *o, int64_t l0, int64_t nl,           \
                                int64_t t0, int64_t np, int R, void *dst_, int64_t *seg)    \
{                                                                                           \
    const T *base = (const T *)o->base;                                                     \
    T *dst = (T *)dst_;                                                                     \
    int64_t *d = seg, *s = seg + np, *len = seg + 2 * np;                                   \
    const int64_t nseg = opnd_segments(o, t0, np, d, s, len);                               \
    for (int64_t lp = 0; lp < nl; lp += R) {                                                \
        const int64_t cnt = nl - lp < R ? nl - lp : R;                                      \
        T *pd = dst + lp * np;                                                              \
        for (int r0 = 0; r0 < R; r0 += V) {                                                 \
            const int nrow = R - r0 < V ? R - r0 : V;                                       \
            const int64_t nval = cnt - r0 < 0 ? 0 : cnt - r0 > nrow ? nrow : cnt - r0;      \
            const MT sm = PMASK(nrow);                                                      \
            const T *src[V];                                                                \
            for (int i = 0; i < V; i++)                                                     \
                src[i] = i < nval ? base + opnd_line(o, l0 + lp + r0 + i) : base;           \
            for (int64_t g = 0; g < nseg; g++) {                                            \
                for (int64_t i0 = 0; i0 < len[g]; i0 += V) {                                \
                    const int64_t m = len[g] - i0 < V ? len[g] - i0 : V;                    \
                    const int64_t off = s[g] + i0;                                          \
                    VT rows[V];                                                             \
                    if (m == V) {                                                           \
                        FC_UNROLL(16)                                                       \
                        for (int i = 0; i < V; i++)                                         \
                            rows[i] = i < nval ? VLOADU(src[i] + off) : VZERO();            \
                    } else {                                                                \
                        const MT lm = PMASK(m);                                             \
                        FC_UNROLL(16)                                                       \
                        for (int i = 0; i < V; i++)                                         \
                            rows[i] = i < nval ? VMLOAD(src[i] + off, lm) : VZERO();        \
                    }                                                                       \
                    TRANSPOSE(rows);                                                        \
                    T *q = pd + (d[g] + i0) * R + r0;                                       \
                    if (nrow == V) {                                                        \
                        FC_UNROLL(16)                                                       \
                        for (int t = 0; t < V; t++)                                         \
                            if (t < m) VSTOREU(q + t * R, rows[t]);                         \
                    } else {                                                                \
                        FC_UNROLL(16)                                                       \
                        for (int t = 0; t < V; t++)                                         \
                            if (t < m) VMSTORE(q + t * R, sm, rows[t]);                     \
                    }                                                                       \
                }                                                                           \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
}

#define VZERO _mm512_setzero_ps
#define VLOADU _mm512_loadu_ps
#define VSTOREU _mm512_storeu_ps
#define VMLOAD(p, m) _mm512_maskz_loadu_ps(m, p)
#define VMSTORE(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define PMASK(n) ((__mmask16)(0xFFFFu >> (16 - (n))))
FC_PACK_SIMD(pack_avx512_f32, FC_TARGET_AVX512, float, 16, __m512, __mmask16, tr16_ps)
#undef VZERO
#undef VLOADU
#undef VSTOREU
#undef VMLOAD
#undef VMSTORE
#undef PMASK

#define VZERO _mm512_setzero_pd
#define VLOADU _mm512_loadu_pd
#define VSTOREU _mm512_storeu_pd
#define VMLOAD(p, m) _mm512_maskz_loadu_pd(m, p)
#define VMSTORE(p, m, v) _mm512_mask_storeu_pd(p, m, v)
#define PMASK(n) ((__mmask8)(0xFFu >> (8 - (n))))
FC_PACK_SIMD(pack_avx512_f64, FC_TARGET_AVX512, double, 8, __m512d, __mmask8, tr8_pd512)
#undef VZERO
#undef VLOADU
#undef VSTOREU
#undef VMLOAD
#undef VMSTORE
#undef PMASK

#define VZERO _mm256_setzero_ps
#define VLOADU _mm256_loadu_ps
#define VSTOREU _mm256_storeu_ps
#define VMLOAD(p, m) _mm256_maskload_ps(p, m)
#define VMSTORE(p, m, v) _mm256_maskstore_ps(p, m, v)
#define PMASK(n) _mm256_loadu_si256((const __m256i *)(fc_lane_mask32 + 8 - (n)))
FC_PACK_SIMD(pack_avx2_f32, FC_TARGET_AVX2, float, 8, __m256, __m256i, tr8_ps256)
#undef VZERO
#undef VLOADU
#undef VSTOREU
#undef VMLOAD
#undef VMSTORE
#undef PMASK

#define VZERO _mm256_setzero_pd
#define VLOADU _mm256_loadu_pd
#define VSTOREU _mm256_storeu_pd
#define VMLOAD(p, m) _mm256_maskload_pd(p, m)
#define VMSTORE(p, m, v) _mm256_maskstore_pd(p, m, v)
#define PMASK(n) _mm256_loadu_si256((const __m256i *)(fc_lane_mask64 + 4 - (n)))
FC_PACK_SIMD(pack_avx2_f64, FC_TARGET_AVX2, double, 4, __m256d, __m256i, tr4_pd256)
#undef VZERO
#undef VLOADU
#undef VSTOREU
#undef VMLOAD
#undef VMSTORE
#undef PMASK
#include "gemm_avx512w.inc"
#endif /* FC_GEMM_X86 */

/* ---- shared helpers --------------------------------------------------------- */

#define FC_GEMM_ALIGN 64

/* Workspace layout of one run: B block, then A block, each rounded up to
 * 64 bytes, then the packers' segment scratch. */
static size_t round_bytes(size_t n) { return (n + FC_GEMM_ALIGN - 1) / FC_GEMM_ALIGN * FC_GEMM_ALIGN; }

size_t fc_gemm_work_bytes(const fc_gemm_kernel *kn)
{
    const size_t d = (size_t)kn->dsize;
    int64_t cap = kn->kc > kn->nc ? kn->kc : kn->nc;
    if (kn->mc > cap) cap = kn->mc;
    return round_bytes((size_t)(kn->kc * kn->nc) * d) + round_bytes((size_t)(kn->mc * kn->kc) * d)
           + (size_t)(6 * cap + 24) * sizeof(int64_t) + FC_GEMM_ALIGN;
}

size_t fc_gemm_packed_a_bytes(const fc_gemm_kernel *kn, int64_t M, int64_t K)
{
    if (M < 0 || K < 0) return 0;
    const int64_t mpad = (M + kn->mr - 1) / kn->mr * kn->mr;
    if (K != 0 && mpad > INT64_MAX / K / kn->dsize) return 0;
    return (size_t)(mpad * K * kn->dsize) + FC_GEMM_ALIGN;
}

static void *align_up(void *p)
{
    uintptr_t u = (uintptr_t)p;
    return (void *)((u + FC_GEMM_ALIGN - 1) / FC_GEMM_ALIGN * FC_GEMM_ALIGN);
}

#define T float
#define SFX f32
#include "gemm.inc"
#undef T
#undef SFX

#define T double
#define SFX f64
#include "gemm.inc"
#undef T
#undef SFX

/* ---- the kernel table ------------------------------------------------------
 * Blocking (kc, mc, nc), measured on the development machine (Xeon with
 * AVX-512, L1d 48 KiB, L2 2 MiB per core) on square products and on the
 * benchmark layers' shapes: one MR x kc A panel (14 KiB) stays in L1 while
 * the kc x nc B block (1 MiB) streams from L2; K is cut into equal slices of
 * at most kc. kc <= 512 everywhere. */
static const fc_gemm_kernel kern_generic_f32 = {
    FC_ISA_GENERIC, 4, FC_GEN_MR, FC_GEN_NR, 256, 128, 2048,
    ukr_generic_f32, NULL, pack_copy_v_f32, pack_trans_v_f32};
static const fc_gemm_kernel kern_generic_f64 = {
    FC_ISA_GENERIC, 8, FC_GEN_MR, FC_GEN_NR, 256, 64, 1024,
    ukr_generic_f64, NULL, pack_copy_v_f64, pack_trans_v_f64};
#if FC_GEMM_X86
static const fc_gemm_kernel kern_avx2_f32 = {
    FC_ISA_AVX2, 4, 6, 16, 256, 144, 2048,
    ukr_avx2_f32, ukr_avx2_f32_lines, pack_avx2_f32_copy, pack_avx2_f32_trans};
static const fc_gemm_kernel kern_avx2_f64 = {
    FC_ISA_AVX2, 8, 6, 8, 256, 96, 1024,
    ukr_avx2_f64, ukr_avx2_f64_lines, pack_avx2_f64_copy, pack_avx2_f64_trans};
static const fc_gemm_kernel kern_avx512_f32 = {
    FC_ISA_AVX512, 4, 14, 32, 256, 280, 1024,
    ukr_avx512_f32, ukr_avx512_f32_lines, pack_avx512_f32_copy, pack_avx512_f32_trans};
/* 8 x 48 (gemm_avx512w.inc): same kc and mc, nc a multiple of 48. */
static const fc_gemm_kernel kern_avx512w_f32 = {
    FC_ISA_AVX512, 4, 8, 48, 256, 280, 1008,
    ukr_avx512w_f32, ukr_avx512w_f32_lines, pack_avx512_f32_copy, pack_avx512_f32_trans};
static const fc_gemm_kernel kern_avx512_f64 = {
    FC_ISA_AVX512, 8, 14, 16, 256, 140, 1024,
    ukr_avx512_f64, ukr_avx512_f64_lines, pack_avx512_f64_copy, pack_avx512_f64_trans};
#endif

/* ---- the kernel for the current ISA level (fc_isa_level, runtime.c) --------- */

/* The float micro-kernel (with its blocking) of the ISA level now. */
const fc_gemm_kernel *fc_gemm_kernel_f32(void)
{
#if FC_GEMM_X86
    switch (fc_isa_level()) {
    case FC_ISA_AVX512: return &kern_avx512_f32;
    case FC_ISA_AVX2: return &kern_avx2_f32;
    default: break;
    }
#endif
    return &kern_generic_f32;
}

/* The float micro-kernel for products with M rows: at the AVX-512 level,
 * the 8 x 48 tile when M is a multiple of 8 that the 14-row tile covers
 * with more than 6% of its rows wasted (M = 8, 16, 32, 64, 128: the output
 * channels of most convolution layers), else fc_gemm_kernel_f32. Each C
 * element is the same fused chain over k either way (same kc), so the
 * choice changes speed only, never a bit of the result. Measured on the
 * development Xeon (CPU time, interleaved A/B, 1 thread): forward of
 * resnet_1x1 (M = 64) +7%, resnet_3x3s2 (M = 128) +6%; on square products
 * the 14 x 32 tile is ~5% faster, hence not everywhere. */
const fc_gemm_kernel *fc_gemm_kernel_rows_f32(int64_t M)
{
    const fc_gemm_kernel *kn = fc_gemm_kernel_f32();
#if FC_GEMM_X86
    if (kn == &kern_avx512_f32 && M > 0 && M % 8 == 0 && (M + 13) / 14 * 14 * 100 > 106 * M)
        return &kern_avx512w_f32;
#endif
    return kn;
}

/* The double micro-kernel for M rows: always that of the ISA level. */
const fc_gemm_kernel *fc_gemm_kernel_rows_f64(int64_t M)
{
    (void)M;
    return fc_gemm_kernel_f64();
}

/* The double micro-kernel (with its blocking) of the ISA level now. */
const fc_gemm_kernel *fc_gemm_kernel_f64(void)
{
#if FC_GEMM_X86
    switch (fc_isa_level()) {
    case FC_ISA_AVX512: return &kern_avx512_f64;
    case FC_ISA_AVX2: return &kern_avx2_f64;
    default: break;
    }
#endif
    return &kern_generic_f64;
}

int fc_gemm_kernel_mr(const fc_gemm_kernel *kn) { return kn->mr; }
int fc_gemm_kernel_nr(const fc_gemm_kernel *kn) { return kn->nr; }
int fc_gemm_kernel_isa(const fc_gemm_kernel *kn) { return kn->isa; }


int64_t fc_gemm_pack_a_slices(const fc_gemm_kernel *kn, int64_t K)
{
    return K <= 0 ? 0 : (K + kn->kc - 1) / kn->kc;
}

fc_status fc_gemm_pack_a_part(const fc_gemm_kernel *kn, const fc_gemm_operand *A, int64_t M,
                              int64_t K, void *packed, int64_t s_lo, int64_t s_hi)
{
    if (kn->dsize == 4) return gemm_pack_a_full_f32(kn, A, M, K, (float *)align_up(packed), s_lo, s_hi)
                               ? FC_OK : FC_ENOMEM;
    return gemm_pack_a_full_f64(kn, A, M, K, (double *)align_up(packed), s_lo, s_hi)
           ? FC_OK : FC_ENOMEM;
}

fc_status fc_gemm_pack_a(const fc_gemm_kernel *kn, const fc_gemm_operand *A, int64_t M, int64_t K,
                         void *packed)
{
    return fc_gemm_pack_a_part(kn, A, M, K, packed, 0, fc_gemm_pack_a_slices(kn, K));
}

fc_status fc_gemm_run(const fc_gemm_kernel *kn, int64_t M, int64_t N, int64_t K,
                      const fc_gemm_operand *A, int64_t i0, const void *packed_a,
                      const fc_gemm_operand *B, int64_t j0,
                      int accumulate, void *C, int64_t ldc, void *work)
{
    return fc_gemm_run_bias(kn, M, N, K, A, i0, packed_a, B, j0, accumulate, C, ldc, NULL, work);
}

fc_status fc_gemm_run_bias(const fc_gemm_kernel *kn, int64_t M, int64_t N, int64_t K,
                           const fc_gemm_operand *A, int64_t i0, const void *packed_a,
                           const fc_gemm_operand *B, int64_t j0, int accumulate, void *C,
                           int64_t ldc, const void *row_bias, void *work)
{
    if (kn == NULL || C == NULL || M < 0 || N < 0 || K < 0) return FC_EINVAL;
    if (M == 0 || N == 0) return FC_OK;
    if (packed_a == NULL && A == NULL) return FC_EINVAL;
    if (K > 0 && B == NULL) return FC_EINVAL;
    void *own = NULL;
    if (work == NULL) {
        own = fc_ws_alloc(fc_gemm_work_bytes(kn));
        if (own == NULL) return FC_ENOMEM;
        work = own;
    }
    const void *pa = packed_a != NULL ? align_up((void *)packed_a) : NULL;
    if (kn->dsize == 4)
        gemm_run_f32(kn, M, N, K, A, i0, (const float *)pa, B, j0, accumulate, (float *)C, ldc,
                     (const float *)row_bias, (float *)align_up(work));
    else
        gemm_run_f64(kn, M, N, K, A, i0, (const double *)pa, B, j0, accumulate, (double *)C, ldc,
                     (const double *)row_bias, (double *)align_up(work));
    fc_ws_free(own);
    return FC_OK;
}
