/*
 * conv_dw.c: depthwise convolution forward (groups == C == K), the kernel
 * the compiled plan runs for depthwise layers with their epilogue fused,
 * and fc_conv2d_fwd's "direct" algorithm on such geometries (conv_dw.h).
 *
 * Planes of up to DW_FLAT_MAX outputs are computed flat (dw_flat_ok: one run
 * of vectors over the plane, the input split by stride phase, the reads that
 * wrap into a neighbouring row masked). Larger ones, per output plane, in
 * bands of output rows: the band's input is copied,
 * zero-padded and split by stride phase (even / odd columns and rows with
 * stride 2), into a buffer that stays in L1, so the row loops read every
 * tap at a constant offset with no bounds test and unit-stride loads; they
 * keep a tile of 4 vertically adjacent output vectors in registers, load
 * each input vector once for all the tile rows it feeds, apply the epilogue
 * in registers and store once (conv_dw.inc). The row loops are written with
 * GCC / clang vector extensions, compiled for a 16-byte instance (SSE2 on
 * x86-64) and on x86 for AVX2 + FMA and AVX-512 through function target
 * attributes (the mechanism and ISA cap of conv_direct.c: fc_isa_level(),
 * FASTCONV_ISA), plus a plain-C instance that serves rows narrower than any
 * vector and builds without vector extensions (FC_PORTABLE_C).
 *
 * Determinism: each output plane is computed by one thread, in bands that
 * depend only on the geometry: bitwise the same for any thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "fc_internal.h"
#include "conv_dw.h"

/* Most taps (R*S) of a supported kernel: 8x8 (the row loops keep the splatted
 * weights in an array of this many vectors). */
#define FC_DW_MAXRS 64
/* Output rows per tile of the row loops. */
#ifndef DW_B
#define DW_B 4
#endif
/* Output rows per block of flat stride-1 3x3 planes with rows of at least a
 * vector (flat33_rows in conv_dw.inc; 6 runs out of AVX-512's 32 registers:
 * 1.4-1.7x the time of 4). */
#ifndef DW_ROWBLK
#define DW_ROWBLK 4
#endif
/* Bytes of the input band buffer the band height aims at (L1-resident). */
#ifndef DW_BAND_BYTES
#define DW_BAND_BYTES 16384
#endif

#if !defined(FC_DIRECT_NO_MULTIVERSION) && FC_HAVE_VECTOR_EXT && FC_X86
#define DW_X86 1
#else
#define DW_X86 0
#endif
#define DW_HAVE_VEC FC_HAVE_VECTOR_EXT
#define DW_SCALAR (-1)

int fc_dw_supported(const fc_conv_geom *g)
{
    return g->groups == g->C && g->K == g->C && g->dil_h == 1 && g->dil_w == 1
           && (g->stride_h == 1 || g->stride_h == 2) && (g->stride_w == 1 || g->stride_w == 2)
           && g->R >= 1 && g->S >= 1 && g->R <= FC_DW_MAXRS && g->S <= FC_DW_MAXRS
           && g->R * g->S <= FC_DW_MAXRS;
}

/* Lanes of level lv's vectors for elements of tsize bytes (1: DW_SCALAR). */
static int64_t dw_lanes(int lv, int tsize)
{
    return lv < 0 ? 1 : (int64_t)((16 << lv) / tsize);
}

/* The row loops' level for rows Q outputs wide: the widest the ISA setting
 * allows whose vectors cover Q with at most a quarter of the lanes wasted
 * (ceil(Q/VL)*VL <= 1.25*Q: 112, 56, 28 and 14 floats with AVX-512, 7 with
 * AVX2), else DW_SCALAR. */
static int dw_level(int64_t Q, int tsize)
{
#if DW_HAVE_VEC
#if DW_X86
    int lv = fc_isa_level();
#else
    int lv = 0;
#endif
    for (; lv >= 0; lv--) {
        const int64_t vl = dw_lanes(lv, tsize);
        if (4 * ((Q + vl - 1) / vl) * vl <= 5 * Q) return lv;
    }
#else
    (void)Q;
    (void)tsize;
#endif
    return DW_SCALAR;
}

/* Outputs per plane up to which a plane is computed flat (flat_m in
 * conv_dw.inc: one run of vectors over the whole plane, no per-row loop,
 * the row wraps masked) rather than in bands of rows. Since the masks are
 * made in registers (no table per call), flat also wins on planes up to
 * 112x112 (AVX-512, 2 threads, one-conv plans, medians, flat / bands): 3x3
 * 32 ch 112x112 0.83x at batch 1 and 0.74x at batch 8, 96 ch 0.83x, 16 ch
 * 224 -> 112 stride 2 0.68x; 5x5 32 ch 112x112 0.51x. (Flat sums a tap
 * column before adding it; bands add row by row: the bits differ, and
 * depend only on the geometry and the SIMD level.) */
#ifndef DW_FLAT_MAX
#define DW_FLAT_MAX 16384
#endif

#if DW_HAVE_VEC   /* the flat planes are vector code only */
/* The flat layout of a geometry: the input split by stride phase (a, b) into
 * sh*sw regions of rs elements, each lead zeros then rows of Q (phase row i,
 * column j: x[i*sh + a][j*sw + b]) and zeros after; tap (r, s) reads phase
 * ((r - pad_h) mod sh, (s - pad_w) mod sw) at row p + dr, column q + dc. */
typedef struct {
    int64_t lead, rows, rs;
    int64_t off[FC_DW_MAXRS];   /* tap r*S + s: buf offset of output 0's read */
    int64_t dc[FC_DW_MAXRS];    /* column s: dc */
    uint64_t mbits;             /* bit s: column s has reads outside [0, Q) */
} dw_flat;

static int64_t dw_floordiv(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* 1 and the layout when g is computed flat: P*Q <= DW_FLAT_MAX, a vector
 * instance, and every read that lands on real input at a phase column inside
 * [0, Q) (the regions keep Q columns: a column q + dc >= Q must be padding). */
static int dw_flat_ok(const fc_conv_geom *g, int64_t vl, dw_flat *fl)
{
    const int64_t sh = g->stride_h, sw = g->stride_w, Q = g->Q;
    if (g->P * Q > DW_FLAT_MAX || g->S > 64) return 0;
    int64_t drmin = 0, drmax = 0, dcmin = 0, dcmax = 0;
    fl->mbits = 0;
    for (int64_t s = 0; s < g->S; s++) {
        const int64_t dc = dw_floordiv(s - g->pad_w, sw), b = s - g->pad_w - dc * sw;
        fl->dc[s] = dc;
        if (dc < dcmin) dcmin = dc;
        if (dc > dcmax) dcmax = dc;
        if (dc != 0) fl->mbits |= (uint64_t)1 << s;
        if (dc > 0 && (g->W - b + sw - 1) / sw > Q) return 0;   /* real input past column Q */
    }
    for (int64_t r = 0; r < g->R; r++) {
        const int64_t dr = dw_floordiv(r - g->pad_h, sh);
        if (dr < drmin) drmin = dr;
        if (dr > drmax) drmax = dr;
    }
    fl->lead = -drmin * Q - dcmin;
    fl->rows = g->P + drmax;
    fl->rs = fl->lead + fl->rows * Q + dcmax + vl;
    for (int64_t r = 0; r < g->R; r++) {
        const int64_t dr = dw_floordiv(r - g->pad_h, sh), a = r - g->pad_h - dr * sh;
        for (int64_t s = 0; s < g->S; s++) {
            const int64_t b = s - g->pad_w - fl->dc[s] * sw;
            fl->off[r * g->S + s] = (a * sw + b) * fl->rs + fl->lead + dr * Q + fl->dc[s];
        }
    }
    return 1;
}

/* The flat planes' level: the widest the ISA setting allows (the waste is
 * one partial vector per plane, not one per row). */
static int dw_flat_level(void)
{
#if DW_X86
    return fc_isa_level();
#else
    return 0;
#endif
}
#endif

/* A band's buffer: nb output rows, extra = (R-1)/sh more phase rows, rows of
 * wb (= max(Q, VL) + (S-1)/sw: every column a vector reads), phase planes
 * ps apart, elems in all. */
typedef struct {
    int64_t nb, extra, wb, ps, elems;
} dw_band;

static void dw_band_size(const fc_conv_geom *g, int64_t vl, int64_t tsize, dw_band *bd)
{
    const int64_t nph = g->stride_h * g->stride_w;
    bd->extra = (g->R - 1) / g->stride_h;
    bd->wb = (g->Q > vl ? g->Q : vl) + (g->S - 1) / g->stride_w;
    int64_t nb = DW_BAND_BYTES / (nph * bd->wb * tsize) - bd->extra;
    if (nb >= 2 * DW_B) nb -= nb % DW_B;
    if (nb < DW_B) nb = DW_B;
    if (nb > g->P) nb = g->P;
    bd->nb = nb;
    bd->ps = (nb + bd->extra) * bd->wb;
    bd->elems = nph * bd->ps;
}

/* How the row loops apply the epilogue: none; one clip or one ReLU; every
 * step in vector form; or (a sigmoid or tanh among them) a plain-C pass over
 * the band's rows after the row loops (dw_epi_rows). */
enum { DW_MODE_NONE = 0, DW_MODE_CLIP, DW_MODE_RELU, DW_MODE_VEC, DW_MODE_SCALAR };

/* The row loops' view of one band of one plane (per type). */
#define DW_CTX(T, TI, SFX)                                                             \
    typedef struct {                                                                 \
        const T *buf;                 /* the band's phase planes */                  \
        int64_t ps, wb;               /* phase plane stride, row pitch */            \
        int64_t R, S, sh, sw, Q;                                                     \
        int64_t nrows;                /* output rows of the band */                  \
        int64_t plast;                /* the plane's last row if in the band, or -1 */ \
        const T *w;                   /* the channel's R*S weights */                \
        T bias;                                                                      \
        T *y;                         /* the band's first output row (pitch Q) */    \
        int nepi, mode;               /* steps; how they are applied (DW_MODE_*) */  \
        int kind[FC_DW_MAX_EPI];                                                     \
        T s0[FC_DW_MAX_EPI], s1[FC_DW_MAX_EPI];   /* the steps' scalars */           \
        const T *src[FC_DW_MAX_EPI];  /* ADD: the band's first row of src */         \
        const int64_t *dc;            /* flat planes: each column's dc; bands: NULL */ \
        TI col0[64 / sizeof(T)];      /* flat planes: lane i's output column, i % Q */ \
        int64_t nv;                   /* flat planes: vectors per plane */           \
        const int64_t *off;           /* flat planes: each tap's offset in buf */    \
        uint64_t mbits;               /* flat planes: bit s, column s is masked */   \
    } dw_ctx_##SFX;

DW_CTX(float, int32_t, f32)
DW_CTX(double, int64_t, f64)

#define DW_TARGET_AVX2 FC_TARGET_FMA("avx2,fma")
#define DW_TARGET_AVX512 FC_TARGET_FMA("avx512f,avx2,fma")


#define T float
#define SFX f32
#define FC_TI int32_t
#define FC_TU uint32_t
#define FC_TW 4
#define DW_EXP expf
#define DW_TANH tanhf
#include "conv_dw_isas.inc"
#include "conv_dw_entry.inc"
#undef T
#undef SFX
#undef FC_TI
#undef FC_TU
#undef FC_TW
#undef DW_EXP
#undef DW_TANH

#define T double
#define SFX f64
#define FC_TI int64_t
#define FC_TU uint64_t
#define FC_TW 8
#define DW_EXP exp
#define DW_TANH tanh
#include "conv_dw_isas.inc"
#include "conv_dw_entry.inc"
#undef T
#undef SFX
#undef FC_TI
#undef FC_TU
#undef FC_TW
#undef DW_EXP
#undef DW_TANH
