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
 *
 * Files: this one holds the operand helpers, the portable micro-kernel, the
 * workspace sizes, the kernel table with the choice per ISA level and the
 * public entry points; the SIMD micro-kernels are in gemm_ukr_x86.inc and
 * gemm_avx512w.inc, the SIMD packers in gemm_pack_x86.inc, the packing
 * and loop nest per type in gemm.inc.
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
/* The micro-kernels' k loop unrolled 4 times (the same operations in the same
 * order, so the same bits): measured on the full-width AVX-512 Xeon, 1 thread,
 * the same products alternated between builds, 0.93-0.94x the time of float
 * 1024 x 1024 x 1024 and 3136 x 576 x 64 products and 0.80x of a double 512
 * product; 8 times measured no better than 4. */
#if FC_GNUC
#define FC_UKR_UNROLL _Pragma("GCC unroll 4")
#else
#define FC_UKR_UNROLL
#endif
#include "gemm_ukr_x86.inc"    /* the SIMD micro-kernels */
#include "gemm_pack_x86.inc"   /* the SIMD packers */
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
        gemm_run_f32(kn, M, N, K, A, i0, (const float *)pa, B, j0, NULL, 0, accumulate,
                     (float *)C, ldc, (const float *)row_bias, (float *)align_up(work));
    else
        gemm_run_f64(kn, M, N, K, A, i0, (const double *)pa, B, j0, NULL, 0, accumulate,
                     (double *)C, ldc, (const double *)row_bias, (double *)align_up(work));
    fc_ws_free(own);
    return FC_OK;
}

size_t fc_gemm_packed_b_bytes(const fc_gemm_kernel *kn, int64_t K, int64_t N)
{
    if (N < 0 || K < 0) return 0;
    const int64_t npad = (N + kn->nr - 1) / kn->nr * kn->nr;
    if (K != 0 && npad > INT64_MAX / K / kn->dsize) return 0;
    return (size_t)(npad * K * kn->dsize) + FC_GEMM_ALIGN;
}

fc_status fc_gemm_pack_b(const fc_gemm_kernel *kn, const fc_gemm_operand *B, int64_t K,
                         int64_t N, void *packed)
{
    if (kn == NULL || B == NULL || packed == NULL || K < 0 || N < 0) return FC_EINVAL;
    if (kn->dsize == 4)
        return gemm_pack_b_full_f32(kn, B, K, N, (float *)align_up(packed)) ? FC_OK : FC_ENOMEM;
    return gemm_pack_b_full_f64(kn, B, K, N, (double *)align_up(packed)) ? FC_OK : FC_ENOMEM;
}

fc_status fc_gemm_run_packed_b(const fc_gemm_kernel *kn, int64_t M, int64_t N, int64_t K,
                               const fc_gemm_operand *A, int64_t i0, const void *packed_b,
                               int64_t n_b, int64_t j0, void *C, int64_t ldc, void *work)
{
    if (kn == NULL || C == NULL || A == NULL || packed_b == NULL || M < 0 || N < 0 || K < 0
        || i0 < 0 || j0 < 0 || j0 % kn->nr != 0 || j0 + N > n_b || ldc < N)
        return FC_EINVAL;
    if (M == 0 || N == 0) return FC_OK;
    void *own = NULL;
    if (work == NULL) {
        own = fc_ws_alloc(fc_gemm_work_bytes(kn));
        if (own == NULL) return FC_ENOMEM;
        work = own;
    }
    const int64_t npad = (n_b + kn->nr - 1) / kn->nr * kn->nr;
    const void *pb = align_up((void *)packed_b);
    if (kn->dsize == 4)
        gemm_run_f32(kn, M, N, K, A, i0, NULL, NULL, j0, (const float *)pb, npad, 0, (float *)C,
                     ldc, NULL, (float *)align_up(work));
    else
        gemm_run_f64(kn, M, N, K, A, i0, NULL, NULL, j0, (const double *)pb, npad, 0,
                     (double *)C, ldc, NULL, (double *)align_up(work));
    fc_ws_free(own);
    return FC_OK;
}
