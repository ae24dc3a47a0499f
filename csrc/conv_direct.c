/*
 * conv_direct.c: direct (no im2col, no GEMM) 2-D convolution for float and
 * double: forward, backward-data and backward-weight (+ bias gradient).
 * The bodies live in conv_direct.inc, included below once per (type, SIMD
 * instance) for the vector kernels (conv_direct_vec.inc) and once per type
 * for the portable loops and the entry points (conv_direct_entry.inc); this
 * file holds the type-independent helpers (slab
 * layout, vector positions). The geometry check is fc_conv_geom_check
 * (geom.c), the interval solver fc_interval (fc_internal.h).
 *
 * SIMD: the vector kernels are written with GCC / clang vector extensions
 * and register-blocked (a block of output channels x several vectors of
 * outputs stay in registers across all the taps; the weight gradient keeps
 * a block of dy planes x a block of taps). They are compiled for a portable
 * 16-byte instance (SSE2 on x86-64) and, on x86 with GCC or clang, for AVX2
 * + FMA and AVX-512 through function target attributes (no -march flags: one
 * build runs on every x86-64); the widest instance the ISA setting allows
 * whose vector fits in an output row is used, and rows narrower than every
 * vector take the portable loops (plain C the compiler vectorises, baseline
 * and AVX2 instances). Elsewhere, or with -DFC_DIRECT_NO_MULTIVERSION, only
 * the portable instances are built. Measured on one Sapphire Rapids core
 * (float32, thread CPU time): about 150 GFLOP/s forward on the 3- and
 * 1-channel first layers, 90-100 GFLOP/s backward; depthwise layers are
 * bound by memory traffic.
 *
 * Determinism: every output element is computed by exactly one thread, in
 * an order that does not depend on the thread count, so results are bitwise
 * identical for any nthreads (on one machine).
 */
#include <stdlib.h>
#include <string.h>
#include "fc_internal.h"

#define FC_DIR_INLINE static FC_ALWAYS_INLINE

/* The x86 SIMD instances also fuse multiply-adds: clang contracts a + b*c
 * within an expression by default; GCC needs fp-contract=fast (its -std=c99
 * default is off), set per function. So an AVX2 or AVX-512 CPU rounds once
 * per multiply-add and the baseline twice, and the vector widths sum in
 * different orders: each variant rounds differently, but every variant gives
 * the same result for every thread count. The variant is the best the CPU
 * runs, capped at run time by fastconv's ISA level (runtime.c: FASTCONV_ISA
 * or fc_set_isa, read through fc_isa_level(), as the GEMM does) and at build
 * time by -DFC_DIRECT_MAX_ISA=0 (baseline only), 1 (up to AVX2) or 2. */
#ifndef FC_DIRECT_MAX_ISA
#define FC_DIRECT_MAX_ISA 2
#endif
#if !defined(FC_DIRECT_NO_MULTIVERSION) && FC_HAVE_VECTOR_EXT && FC_X86
#define FC_DIR_X86 1
#define FC_DIR_TARGET_AVX2 FC_TARGET_FMA("avx2,fma")
#define FC_DIR_TARGET_AVX512 FC_TARGET_FMA("avx512f,avx2,fma")
#else
#define FC_DIR_X86 0
#endif

/* The SIMD level the direct kernels may use now: FC_ISA_GENERIC (baseline),
 * FC_ISA_AVX2 (+ FMA) or FC_ISA_AVX512 (fc_isa_level is already capped by the
 * CPU's features), capped by FC_DIRECT_MAX_ISA. */
#if FC_DIR_X86
static int direct_isa_cap(void)
{
    const int lv = fc_isa_level();
    return lv < FC_DIRECT_MAX_ISA ? lv : FC_DIRECT_MAX_ISA;
}
#endif

/* Most taps fused into one pass over an output plane by the portable loops
 * (dir_taps has a case for each count up to this; 9 = a whole 3x3 kernel). */
#define FC_DIR_MAXTAPS 9
/* Bytes of padded slabs backward-weight may hold at once: the portable path
 * takes samples in chunks that fit (at least one sample per chunk); the
 * vector path gives each thread a quarter of it for one group of samples
 * (at least one sample), independently of the thread count. */
#ifndef FC_DIR_BWD_WEIGHT_BUDGET
#define FC_DIR_BWD_WEIGHT_BUDGET ((int64_t)32 << 20)
#endif

/* Split ntaps taps into passes of at most maxt, as even as possible (with
 * maxt = 9: 9 -> 9, 10 -> 5 + 5, 576 -> 64 x 9): returns the pass length. */
static inline int64_t direct_pass_len(int64_t ntaps, int64_t maxt)
{
    const int64_t npass = (ntaps + maxt - 1) / maxt;
    return (ntaps + npass - 1) / npass;
}

/* How the kernels lay out their padded slabs (see conv_direct.inc). */
typedef struct {
    int pad_x;          /* x is copied into a slab (else used in place) */
    int64_t Hq, Wq;     /* x slab phase plane; Wq >= Q is the loops' row width */
    int64_t xplane;     /* elements per input channel in the slab (or H*W) */
    int64_t Hd, Wd;     /* backward-data dy slab */
    int64_t ntaps;      /* entries of offs */
    int64_t *offs;      /* flat tap offsets, see direct_layout */
    /* backward-data: per dx stride phase f (sh*sw of them), phase[5f..5f+4] =
     * i0, i1, j0, j1, first tap (phase[5*nph + 4] = R*S ends the last);
     * tap[] lists the (r*S + s) in phase order */
    int64_t nph;
    int64_t *phase, *tap;
} dir_layout;

enum { DIR_FWD, DIR_BWD_DATA, DIR_BWD_WEIGHT };

/* a * b (both >= 0) into *out; 0 when it does not fit in int64. */
static int direct_mul(int64_t a, int64_t b, int64_t *out)
{
    if (a != 0 && b > INT64_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* *acc += a * b (all >= 0); 0 when it does not fit. */
static int direct_muladd(int64_t *acc, int64_t a, int64_t b)
{
    int64_t t;
    if (!direct_mul(a, b, &t) || t > INT64_MAX - *acc) return 0;
    *acc += t;
    return 1;
}

/*
 * Fill *L for the pass `which` and report the workspace it needs, in
 * elements: per thread for DIR_FWD / DIR_BWD_DATA, per sample for
 * DIR_BWD_WEIGHT. FC_ENOMEM when a size does not fit or a table cannot be had.
 *
 * The x slab (forward, backward-weight): the zero-padded input, Hp x Wp with
 * Hp = (P-1)*sh + (R-1)*dh + 1 (every row any tap reads), Wp likewise, split
 * into sh*sw phase planes of Hq x Wq, Hq = ceil(Hp/sh), Wq = ceil(Wp/sw):
 * phase (a, b) row i column j holds padded x[i*sh + a][j*sw + b]. Tap (r, s)
 * of output (p, q) reads padded x[(p + r*dh/sh)*sh + r*dh%sh][...], i.e.
 * phase (r*dh%sh, s*dw%sw) at row p + r*dh/sh, column q + s*dw/sw: at flat
 * index j = p*Wq + q plus a constant, whatever the stride. With unit stride
 * and no padding x itself is that slab (pad_x == 0). Tap tables, in the
 * order the weights are stored:
 *   DIR_FWD:        (c', r, s) -> c'*xplane + phase*Hq*Wq + (r*dh/sh)*Wq + s*dw/sw;
 *   DIR_BWD_WEIGHT: (r, s), the same with c' = 0.
 *
 * Backward-data works on the phases of dx instead. In padded coordinates
 * u = h + ph, v = w + pw, dx at u = i*sh + rho receives only the taps with
 * r*dh % sh == rho, from dy row i - m_r, m_r = floor(r*dh/sh) >= 0 (columns
 * likewise). So each dx phase (rho, sig) is a unit-stride correlation of dy,
 * shifted by (M, Nn) = (max m_r, max n_s) into a zero-padded Hd x Wd slab,
 * with that phase's taps: output (i, j) of the phase, i in [i0, i1), j in
 * [j0, j1) (the u, v inside the padded input), at flat index
 * (i - i0)*Wd + (j - j0), reads tap (k', r, s) at the constant offset
 *   k'*Hd*Wd + (i0 + M - m_r)*Wd + (j0 + Nn - n_s).
 * offs lists, phase after phase, its taps in (k', r, s) order (tap[] names
 * the (r, s)); every dx element belongs to one phase.
 * Every offset is below the slab size, which has been checked to fit.
 */
static fc_status direct_layout(const fc_conv_geom *g, dir_layout *L, int which, int64_t *elems)
{
    const int64_t R = g->R, S = g->S, RS = R * S;
    const int64_t sh = g->stride_h, sw = g->stride_w, dh = g->dil_h, dw = g->dil_w;
    const int64_t ph = g->pad_h, pw = g->pad_w;
    const int64_t Cg = g->C / g->groups, Kg = g->K / g->groups;
    memset(L, 0, sizeof *L);
    /* (R-1)*dh <= H + pad_top + pad_bottom - 1 (geometry check), same for S */
    const int64_t span_h = (R - 1) * dh, span_w = (S - 1) * dw;
    int64_t e = 0;
    int ok = 1;

    if (which == DIR_BWD_DATA) {
        const int64_t M = span_h / sh, Nn = span_w / sw;
        /* ph < H + pads and M <= span_h, all of which fit: no overflow */
        L->Hd = (ph + g->H - 1) / sh + 1 + M;
        L->Wd = (pw + g->W - 1) / sw + 1 + Nn;
        L->ntaps = Kg * RS;
        ok = direct_mul(sh, sw, &L->nph);
        int64_t t;
        ok = ok && direct_mul(L->Hd, L->Wd, &t) && direct_muladd(&e, Kg, t)
             && direct_muladd(&e, Kg, RS)                         /* gathered weights */
             && direct_muladd(&e, (g->H - 1) / sh + 1, L->Wd)     /* one phase's output */
             && L->nph < INT64_MAX / 5 - 5;
        if (!ok) return FC_ENOMEM;
        L->offs = (int64_t *)malloc((size_t)L->ntaps * sizeof(int64_t));
        L->tap = (int64_t *)malloc((size_t)RS * sizeof(int64_t));
        L->phase = (int64_t *)malloc((size_t)(5 * L->nph + 5) * sizeof(int64_t));
        if (L->offs == NULL || L->tap == NULL || L->phase == NULL) {
            free(L->offs);
            free(L->tap);
            free(L->phase);
            return FC_ENOMEM;
        }
        int64_t nt = 0;                                  /* taps listed so far */
        for (int64_t rho = 0; rho < sh; rho++)
            for (int64_t sig = 0; sig < sw; sig++) {
                int64_t *f = L->phase + 5 * (rho * sw + sig);
                int64_t lo, hi;
                fc_interval(rho - ph, sh, g->H, L->Hd, &lo, &hi);   /* rows inside dx */
                f[0] = lo;
                f[1] = hi;
                fc_interval(sig - pw, sw, g->W, L->Wd, &lo, &hi);
                f[2] = lo;
                f[3] = hi;
                f[4] = nt;
                const int64_t first = nt;
                for (int64_t r = 0; r < R; r++)
                    for (int64_t s = 0; s < S; s++)
                        if ((r * dh) % sh == rho && (s * dw) % sw == sig) L->tap[nt++] = r * S + s;
                const int64_t n_f = nt - first;
                for (int64_t kk = 0; kk < Kg; kk++)
                    for (int64_t i = 0; i < n_f; i++) {
                        const int64_t r = L->tap[first + i] / S, s = L->tap[first + i] % S;
                        L->offs[Kg * first + kk * n_f + i] =
                            kk * L->Hd * L->Wd + (f[0] + M - r * dh / sh) * L->Wd
                            + (f[2] + Nn - s * dw / sw);
                    }
            }
        L->phase[5 * L->nph + 4] = nt;                   /* == RS */
        *elems = e;
        return FC_OK;
    }

    /* Hp <= H + pad_top + pad_bottom, Wp likewise: these fit */
    const int64_t Hp = (g->P - 1) * sh + span_h + 1;
    const int64_t Wp = (g->Q - 1) * sw + span_w + 1;
    L->pad_x = !(sh == 1 && sw == 1 && ph == 0 && pw == 0 && Wp == g->W && Hp <= g->H);
    L->Hq = (Hp + sh - 1) / sh;
    L->Wq = (Wp + sw - 1) / sw;                  /* >= Q */
    if (L->pad_x) {
        int64_t t;
        ok = direct_mul(L->Hq, L->Wq, &t) && direct_mul(t, sh * sw, &L->xplane);
    } else {
        L->xplane = g->H * g->W;
    }
    if (which == DIR_FWD) {
        L->ntaps = Cg * RS;                      /* <= the weight count: fits */
        if (ok && L->pad_x) ok = direct_muladd(&e, Cg, L->xplane);
        if (ok && L->Wq != g->Q) ok = direct_muladd(&e, g->P, L->Wq);
    } else {
        L->ntaps = RS;
        if (ok && L->pad_x) ok = direct_muladd(&e, g->C, L->xplane);
    }
    if (!ok) return FC_ENOMEM;

    L->offs = (int64_t *)malloc((size_t)L->ntaps * sizeof(int64_t));
    if (L->offs == NULL) return FC_ENOMEM;
    const int64_t nblk = L->ntaps / RS;          /* c' (fwd) or 1 */
    for (int64_t i = 0; i < nblk; i++)
        for (int64_t r = 0; r < R; r++)
            for (int64_t s = 0; s < S; s++) {
                const int64_t phase = ((r * dh) % sh) * sw + (s * dw) % sw;
                L->offs[(i * R + r) * S + s] = i * L->xplane + phase * L->Hq * L->Wq
                                               + (r * dh / sh) * L->Wq + s * dw / sw;
            }
    *elems = e;
    return FC_OK;
}

static void direct_layout_free(dir_layout *L)
{
    free(L->offs);
    free(L->phase);
    free(L->tap);
    L->offs = L->phase = L->tap = NULL;
}

/* ---- vector positions ------------------------------------------------------
 *
 * The vector kernels visit a region of nrows x width outputs (width >= VL)
 * as "row mode" positions: (r, q0) for q0 = 0, VL, 2*VL, ... with the last
 * moved back to width - VL, so every lane is a real output of row r (the
 * overlap is recomputed identically). A position's first lane reads the
 * input slab at ip and writes at op. */
typedef struct {
    int64_t npos;
    int64_t *ip, *op;
} dir_pos;

static int64_t direct_npos(int64_t nrows, int64_t width, int64_t vl)
{
    return nrows * ((width + vl - 1) / vl);
}

/* 0 when the arrays cannot be had (ps->ip == NULL then). */
static int direct_pos_alloc(dir_pos *ps, int64_t npos)
{
    ps->npos = npos;
    ps->op = NULL;
    ps->ip = npos > 0 && (uint64_t)npos <= SIZE_MAX / (2 * sizeof(int64_t))
                 ? (int64_t *)malloc((size_t)npos * 2 * sizeof(int64_t)) : NULL;
    if (ps->ip != NULL) ps->op = ps->ip + npos;
    return ps->ip != NULL || npos == 0;
}

static void direct_pos_free(dir_pos *ps)
{
    free(ps->ip);
    ps->ip = ps->op = NULL;
}

/* Fill ps->ip/op from index `at`: ip = r*ipitch + q0, op = obase + r*opitch + q0. */
static void direct_pos_rows(dir_pos *ps, int64_t at, int64_t nrows, int64_t width, int64_t vl,
                            int64_t ipitch, int64_t obase, int64_t opitch)
{
    const int64_t nq = (width + vl - 1) / vl;
    for (int64_t r = 0; r < nrows; r++)
        for (int64_t i = 0; i < nq; i++) {
            const int64_t q0 = (i + 1) * vl <= width ? i * vl : width - vl;
            ps->ip[at] = r * ipitch + q0;
            ps->op[at] = obase + r * opitch + q0;
            at++;
        }
}

/* Register blocking of each vector instance (must match the instances
 * below): output channels per correlation tile, output vectors per tile,
 * the same with one channel, dy planes x taps per weight-gradient tile, and
 * taps with one plane. 32 registers with AVX-512 (4 x 6 = 24 accumulators),
 * 16 with AVX2 and SSE2. */
/* What the backward-weight vector kernel of one call works with (filled by
 * the entry point; see bwd_weight_units in conv_direct_vec.inc). */
typedef struct {
    int64_t nkb;        /* output-channel blocks per group */
    int64_t cb, ncb;    /* input channels per unit, blocks of them per group */
    int64_t nsp;        /* sample parts (own partial sums each) */
    int64_t ns;         /* samples per group (one T partial sum, one slab fill) */
    int64_t pb;         /* output rows per row block */
    int64_t tb, rsp;    /* taps per block; R*S padded to a multiple of tb */
    int64_t units;      /* G * ncb * nsp */
    const int64_t *toff;    /* rsp tap offsets (the last repeated) */
    double *acc, *db;       /* nsp * K*(C/G)*R*S, nsp * K (or NULL) */
} dir_bww;

static const int64_t direct_kbmax[3] = {2, 2, 4};
static const int64_t direct_tbmax[3] = {4, 5, 6};
static const int64_t direct_tb1[3] = {9, 9, 9};

/* Vector level for rows `width` outputs wide and elements of tsize bytes:
 * the widest instance allowed (direct_isa_cap) whose vector (16 << level
 * bytes) fits in a row; -1 when none does (the portable loops then). */
static int direct_level(int64_t width, int tsize)
{
#if !FC_HAVE_VECTOR_EXT
    /* no vector kernels without GNU vector types: always the portable loops */
    (void)width; (void)tsize;
    return -1;
#endif
#if FC_DIR_X86
    int lv = direct_isa_cap();
#else
    int lv = 0;
#endif
    for (; lv >= 0; lv--)
        if ((16 << lv) / tsize <= width) return lv;
    return -1;
}

/* The vector kernels, once per (type, instance): written with GNU vector
 * types, so only where the compiler has them (else direct_level is -1). */
#if FC_HAVE_VECTOR_EXT
#define FC_DIR_SIMD 1

#define T float
#define SFX f32
#define FC_TI int32_t
#define FC_TW 4
#include "conv_direct_isas.inc"
#undef T
#undef SFX
#undef FC_TI
#undef FC_TW

#define T double
#define SFX f64
#define FC_TI int64_t
#define FC_TW 8
#include "conv_direct_isas.inc"
#undef T
#undef SFX
#undef FC_TI
#undef FC_TW
#undef FC_DIR_SIMD
#endif /* FC_HAVE_VECTOR_EXT */

/* The portable loops and the entry points, once per type. */
#define T float
#define SFX f32
#include "conv_direct.inc"
#undef T
#undef SFX

#define T double
#define SFX f64
#include "conv_direct.inc"
#undef T
#undef SFX
