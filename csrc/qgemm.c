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

#if FC_X86_SIMD && !defined(FC_GEMM_NO_SIMD)
#define FC_Q_X86 1
#include <immintrin.h>
#define FC_TARGET_VNNI FC_TARGET("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")
#define FC_TARGET_AVX2 FC_TARGET("avx2,fma")
#else
#define FC_Q_X86 0
#endif

#if FC_SSE2
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
        v = fc_cpu_x86_avx512_vnni();
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
    int level = fc_isa_level(); /* FC_ISA_GENERIC/AVX2/AVX512 = 0/1/2, capped by FASTCONV_ISA */
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

#include "qgemm_kernels.inc"

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
