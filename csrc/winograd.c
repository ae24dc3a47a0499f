/*
 * winograd.c: Winograd convolution for 3x3, stride-1, dilation-1 layers, for
 * float and double: forward, backward-data and backward-weight (the bodies
 * live in winograd.inc, included once per type below, with its parts
 * winograd_xform.inc and winograd_bwdw.inc).
 *
 * Algorithm: F(m x m, 3 x 3) with alpha = m + 2. The output is cut into
 * m x m tiles; tile t reads an alpha x alpha input patch d_t. With the
 * transform matrices B (alpha x alpha), G (alpha x 3), A (alpha x m):
 *   U[k][c]   = G w[k][c] G^T                    (filter transform, per call)
 *   V[t][c]   = B^T d_t[c] B                     (input transform)
 *   M[t][k]   = sum_c U[k][c] (.) V[t][c]        (alpha^2 independent GEMMs)
 *   y_t[k]    = A^T M[t][k] A + b[k]             (output transform)
 * Backward-data is the same machinery: dx is a 3x3 stride-1 convolution of
 * dy (K input channels, C output channels) with the filter turned by 180
 * degrees and its channel axes swapped, offset by 2 - pad (possibly
 * negative: everything outside the input is zero either way).
 * Backward-weight uses the same matrices the other way round (dw = d/dw of
 * the forward's trilinear form): per tile, the dy tile becomes A dy_t A^T,
 * Z[k][c] = sum_t (A dy_t A^T)[k] (.) V[t][c] (alpha^2 GEMMs summing over
 * the tiles), dw[k][c] = G^T Z[k][c] G.
 *
 * Tile size: m = 4 by default (fc_winograd_set_tile switches to 2). F(4x4)
 * does 36 multiplications per tile and channel pair where the direct method
 * does 144 (F(2x2): 16 for 36). Its interpolation points are 0, 1, -1, 2,
 * -1/2 (and infinity), not the usual 0, +-1, +-2: the smaller range of the
 * transform coefficients cuts the float32 error about 3x. Measured on the
 * benchmark layers (N(0,1) inputs, He-initialised weights, against float64
 * fastconv.reference, max |error| / max |output|): forward and backward-data
 * 1.3e-6 .. 5.2e-6 (cifar_c1 .. resnet_c4; the direct method 0.2e-6 .. 2e-6,
 * F(2x2) 0.2e-6 .. 0.7e-6; the usual points gave up to 1.6e-5), well inside
 * the 1e-4 the tests allow; backward-weight 1.9e-6 .. 3.2e-6 (the GEMM path
 * 1.8e-6 .. 6.9e-6). F(4x4) runs forward + both gradients 1.1x .. 1.5x
 * faster than F(2x2) on those layers, so it is the default. Like any
 * Winograd scheme, an inf or NaN spreads further than the definition (the
 * transforms add and subtract it): an input element makes every output
 * tile that reads it NaN, a weight its whole output channel.
 *
 * Layout: the transforms are vectorised over channels. The alpha input rows
 * of a run of tile rows are transposed once into a buffer [row][col][channel]
 * (channel fastest), so every patch element of a tile is a contiguous vector
 * over channels; the transformed tiles are written as V[xi][tile][c], the
 * row-major (tiles x C) left operand of the GEMM for transform point xi; the
 * products M[xi][tile][k] are transformed back vectorised over k and
 * transposed into the NCHW output. Strides between the many streams of a
 * transform are an odd number of cache lines (no set conflicts).
 *
 * Work division: tiles are grouped into blocks of whole tile rows (or, for
 * very wide images, segments of one tile row), sized from the geometry only.
 * With small transformed filters each block is computed start to finish by
 * one thread in its own cache-sized workspace; with large ones all threads
 * share one large block at a time (see wg_run). Every output element is
 * produced the same way whichever thread computes it, and every sum runs in
 * an order fixed by the geometry, so results are bitwise identical for any
 * nthreads (and either schedule).
 *
 * SIMD: the transforms and transposes are plain C loops over channels,
 * compiled three times (baseline, AVX2+FMA, AVX-512 via function target
 * attributes, as conv_direct.c) and picked at run time at the ISA level
 * (fc_isa_level, runtime.c), the one fc_gemm uses too; the products go
 * through fc_gemm_run (gemm.h) with workspace owned here. The geometry check
 * is fc_conv_geom_check (geom.c), once per entry point.
 */
#include <stdlib.h>
#include <string.h>
#include "fc_internal.h"

#include "gemm.h"

#define FC_WG_INLINE static FC_ALWAYS_INLINE

/* On the channel loops of the transforms: the iterations are independent
 * and the buffers never overlap, so vectorise without run-time alias checks
 * (GCC otherwise versions the loops and may take the scalar copy). */
#if FC_GNUC && defined(__clang__)
#define FC_WG_VEC _Pragma("clang loop vectorize(assume_safety)")
#elif FC_GNUC
#define FC_WG_VEC _Pragma("GCC ivdep")
#else
#define FC_WG_VEC
#endif

#ifndef FC_WG_MAX_ISA
#define FC_WG_MAX_ISA 2
#endif
#if !defined(FC_WG_NO_MULTIVERSION) && FC_X86_SIMD
#define FC_WG_X86 1
#define FC_WG_TARGET_AVX2 FC_TARGET_FMA("avx2,fma")
#define FC_WG_TARGET_AVX512 FC_TARGET_FMA("avx512f,avx2,fma")
#else
#define FC_WG_X86 0
#endif

/* Output tile size used by the public entry points (2 or 4). */
#ifndef FC_WG_DEFAULT_TILE
#define FC_WG_DEFAULT_TILE 4
#endif
/* Target bytes of one block's transformed input + output (V and M). */
#ifndef FC_WG_BLOCK_BUDGET
#define FC_WG_BLOCK_BUDGET ((int64_t)1 << 20)
#endif
/* With U (the transformed filters) above this many bytes, blocks are shared
 * by all threads and sized by FC_WG_SHARED_BUDGET. */
#ifndef FC_WG_SHARED_U
#define FC_WG_SHARED_U ((int64_t)1 << 20)
#endif
#ifndef FC_WG_SHARED_BUDGET
#define FC_WG_SHARED_BUDGET ((int64_t)16 << 20)
#endif
/* Backward-weight with private blocks: the tiles' sums are split into at most
 * this many fixed chunks of blocks (each summed by one thread, then added in
 * order), independent of the thread count. */
#define FC_WG_DW_CHUNKS 12
/* Most tiles in one private block (the GEMMs' row count gains little beyond). */
#define FC_WG_MAX_TILES 256
/* Filter rows (input channels) transposed and transformed per step. */
#define FC_WG_WT_ROWS 8
/* Channels transformed per pass (the pass's scratch stays in L1). */
#define FC_WG_CHUNK 64

static int wg_tile = FC_WG_DEFAULT_TILE;


/* Tile size for later calls: 2 or 4; 0 restores the default. Returns the
 * previous setting, or -1 (and changes nothing) for any other value. For
 * benchmarks and tests; not meant to be changed while a call runs. */
int fc_winograd_set_tile(int m)
{
    int prev = wg_tile;
    if (m == 0) m = FC_WG_DEFAULT_TILE;
    if (m != 2 && m != 4) return -1;
    wg_tile = m;
    return prev;
}

int fc_winograd_get_tile(void) { return wg_tile; }

/* One Winograd run: out (N, Co, Ho, Wo) = sum over ci, r, s of
 * u[co][ci][r][s] * in[n][ci][h - off_h + r][w - off_w + s] (zero outside
 * the Hi x Wi input), images `in_img` / `out_img` elements apart. */
typedef struct {
    int m, alpha;
    int patch;                /* input patch per tile: alpha (x), or m (dy) */
    int64_t N, Ci, Hi, Wi, Co, Ho, Wo;
    int64_t off_h, off_w;
    int64_t in_img, out_img;
    int64_t nTy, nTx;         /* tiles per image: rows, columns */
    int64_t sw, nseg;         /* a tile row is nseg segments of <= sw tiles */
    int64_t upb;              /* units (tile-row segments) per block */
    int64_t nunits, nblocks;
    int64_t ntmax;            /* most tiles in a block: upb * sw */
    int64_t ibw;              /* input buffer width in columns: m*sw + 2 */
    int shared;               /* schedule: 0 private blocks, 1 shared blocks (set
                               * by the caller to force shared blocks) */
    /* strides in elements, each an odd number of 64-byte lines so that the
     * many streams of a transform fall in different cache sets */
    int64_t ib_rs, ob_rs;     /* between rows of the input / output buffers */
    int64_t vs, ms, us;       /* between transform points in V, M and U */
    /* workspace, in elements: U (u_elems); per thread (per_thread): input
     * rows ib, output rows ob, transform scratch, a zero bias, the GEMM's
     * packing buffers, filter rows (wt), and with private blocks V and M (ib
     * shares memory with M, ob with V: each is dead while the other lives);
     * with shared blocks V (offset 0) and M (offset o_m) in one shared area. */
    int64_t u_elems, shared_elems, per_thread;
    int64_t o_ib, o_ob, o_v, o_m, o_tmp, o_zero, o_gemm, o_wt;
    int64_t e_ib, e_v, e_tmp, e_gemm;   /* sizes of some parts (rounded up) */
    const fc_gemm_kernel *kern;
    size_t gemm_bytes;
} wg_plan;

/* a*b into *out for a, b >= 0; 0 on overflow. */
static int wg_mul(int64_t a, int64_t b, int64_t *out)
{
    if (a != 0 && b > INT64_MAX / a) return 0;
    *out = a * b;
    return 1;
}

static int wg_add(int64_t a, int64_t b, int64_t *out)
{
    if (b > INT64_MAX - a) return 0;
    *out = a + b;
    return 1;
}

/* n elements rounded up to an odd number of 64-byte lines (esize-byte
 * elements); 0 on overflow. */
static int64_t wg_odd_lines(int64_t n, size_t esize)
{
    const int64_t per = 64 / (int64_t)esize;
    if (n > INT64_MAX - 2 * per) return 0;
    int64_t lines = (n + per - 1) / per;
    if (lines % 2 == 0) lines++;
    return lines * per;
}

/* Tiles in block blk. */
static int64_t wg_block_tiles(const wg_plan *pl, int64_t blk)
{
    const int64_t u0 = blk * pl->upb;
    const int64_t u1 = u0 + pl->upb < pl->nunits ? u0 + pl->upb : pl->nunits;
    if (pl->nseg == 1) return (u1 - u0) * pl->nTx;
    /* one unit per block: a segment of sw tiles, the last one shorter */
    const int64_t tx0 = (u0 % pl->nseg) * pl->sw;
    return pl->nTx - tx0 < pl->sw ? pl->nTx - tx0 : pl->sw;
}

/* Fill the plan's tiling, schedule and workspace layout (elements of size
 * `esize`); the caller has set the sizes, offsets and kern / gemm_bytes, and
 * patch = m for a dy plan (anything else means an input plan). FC_ENOMEM
 * when a size does not fit. Depends on the geometry only (never on the
 * thread count). */
static fc_status wg_make_plan(wg_plan *pl, int m, size_t esize)
{
    pl->m = m;
    pl->alpha = m + 2;
    if (pl->patch != m) pl->patch = m + 2;
    const int64_t a2 = (int64_t)pl->alpha * pl->alpha;
    pl->nTy = (pl->Ho + m - 1) / m;
    pl->nTx = (pl->Wo + m - 1) / m;

    /* schedule: shared blocks when U is too large to stream once per
     * small private block */
    int64_t per_tile, nt, ubytes, t0;
    if (!wg_mul(pl->Ci, pl->Co, &t0) || !(pl->us = wg_odd_lines(t0, esize))
        || !wg_mul(a2, pl->us, &pl->u_elems) || !wg_mul(pl->u_elems, (int64_t)esize, &ubytes))
        return FC_ENOMEM;
    pl->shared = pl->shared || ubytes > FC_WG_SHARED_U;
    const int64_t budget = pl->shared ? FC_WG_SHARED_BUDGET : FC_WG_BLOCK_BUDGET;

    /* tiles per block from the budget: V and M hold a2*(Ci + Co) per tile */
    if (!wg_mul(a2, pl->Ci + pl->Co, &per_tile) || !wg_mul(per_tile, (int64_t)esize, &per_tile))
        return FC_ENOMEM;
    nt = budget / per_tile;
    if (nt < 16) {
        /* allow a larger block rather than tiny GEMMs, within 8x the budget */
        int64_t big = 8 * budget / per_tile;
        nt = big < 16 ? big : 16;
    }
    if (nt < 1) nt = 1;
    if (!pl->shared && nt > FC_WG_MAX_TILES) nt = FC_WG_MAX_TILES;

    pl->sw = pl->nTx < nt ? pl->nTx : nt;
    pl->nseg = (pl->nTx + pl->sw - 1) / pl->sw;
    pl->upb = pl->nseg == 1 ? nt / pl->nTx : 1;
    if (pl->upb < 1) pl->upb = 1;
    int64_t rows;
    if (!wg_mul(pl->N, pl->nTy, &rows) || !wg_mul(rows, pl->nseg, &pl->nunits)) return FC_ENOMEM;
    if (!pl->shared) {
        /* keep at least ~8 private blocks when there are enough units */
        int64_t cap = (pl->nunits + 7) / 8;
        if (cap < 1) cap = 1;
        if (pl->upb > cap) pl->upb = cap;
    } else if (pl->upb > pl->nunits) {
        pl->upb = pl->nunits;
    }
    pl->nblocks = (pl->nunits + pl->upb - 1) / pl->upb;
    pl->ntmax = pl->upb * pl->sw;
    pl->ibw = m * pl->sw + 2;

    /* buffers; a run spans at most min(upb, nTy) tile rows */
    const int64_t run_rows = pl->upb < pl->nTy ? pl->upb : pl->nTy;
    int64_t e_ib, e_ob, e_v, e_m, e_tmp, e_zero, e_gemm = 0, acc = 0, t1;
    if (!wg_mul(pl->ibw, pl->Ci, &t1) || !(pl->ib_rs = wg_odd_lines(t1, esize))) return FC_ENOMEM;
    if (!wg_mul(m * pl->sw, pl->Co, &t1) || !(pl->ob_rs = wg_odd_lines(t1, esize))) return FC_ENOMEM;
    if (!wg_mul(pl->ntmax, pl->Ci, &t1) || !(pl->vs = wg_odd_lines(t1, esize))) return FC_ENOMEM;
    if (!wg_mul(pl->ntmax, pl->Co, &t1) || !(pl->ms = wg_odd_lines(t1, esize))) return FC_ENOMEM;
    if (!wg_mul(run_rows * m + 2, pl->ib_rs, &e_ib) || !wg_mul(run_rows * m, pl->ob_rs, &e_ob))
        return FC_ENOMEM;
    if (!wg_mul(a2, pl->vs, &e_v) || !wg_mul(a2, pl->ms, &e_m)) return FC_ENOMEM;
    e_tmp = a2 * FC_WG_CHUNK;
    e_zero = pl->Co;
    e_gemm = (int64_t)((pl->gemm_bytes + esize - 1) / esize);
    /* each part starts on a 64-byte line */
#define WG_PART(off, e)                                                      \
    do {                                                                     \
        int64_t r_ = ((e) + 15) / 16 * 16;                                   \
        off = acc;                                                           \
        if (!wg_add(acc, r_, &acc)) return FC_ENOMEM;                        \
    } while (0)
    if (!pl->shared) {
        WG_PART(pl->o_ib, e_ib > e_m ? e_ib : e_m);
        pl->o_m = pl->o_ib;
        WG_PART(pl->o_v, e_v > e_ob ? e_v : e_ob);
        pl->o_ob = pl->o_v;
    } else {
        WG_PART(pl->o_ib, e_ib);
        WG_PART(pl->o_ob, e_ob);
    }
    WG_PART(pl->o_tmp, e_tmp);
    WG_PART(pl->o_zero, e_zero);
    WG_PART(pl->o_gemm, e_gemm);
    WG_PART(pl->o_wt, FC_WG_WT_ROWS * 9 * pl->Co);
    pl->per_thread = acc;
    pl->e_ib = (e_ib + 15) / 16 * 16;
    pl->e_v = (e_v + 15) / 16 * 16;
    pl->e_tmp = (e_tmp + 15) / 16 * 16;
    pl->e_gemm = (e_gemm + 15) / 16 * 16;
    pl->shared_elems = 0;
    if (pl->shared) {
        acc = 0;
        WG_PART(pl->o_v, e_v);
        WG_PART(pl->o_m, e_m);
        pl->shared_elems = acc;
    }
#undef WG_PART
    if ((uint64_t)pl->per_thread > SIZE_MAX / esize / 256) return FC_ENOMEM;
    return FC_OK;
}

/* SIMD level of the transforms: the ISA level (runtime.c, as fc_gemm's, so
 * FASTCONV_ISA and fc_set_isa select both), capped by the CPU. */
static int wg_isa(void) { return fc_isa_level(); }

/* The geometry Winograd handles, on a checked one: 3x3, stride 1, dilation 1
 * (any padding, any groups). */
static int wg_supported(const fc_conv_geom *g)
{
    return g->R == 3 && g->S == 3 && g->stride_h == 1 && g->stride_w == 1 && g->dil_h == 1
           && g->dil_w == 1;
}

/* Workspace of n elements of size esize, 64-byte aligned, from the
 * workspace cache (NULL on failure or overflow); give it back with
 * fc_ws_free. */
static void *wg_alloc(size_t n, size_t esize)
{
    if (n > SIZE_MAX / esize) return NULL;
    return fc_ws_alloc(n * esize);
}

/* ---- square block transposes: dst[j*dld + c] = src[c*sld + j], c, j < B --- */

#if FC_WG_X86
#include <immintrin.h>

/* 8x8 floats: unpack pairs, then 4-element shuffles, then swap 128-bit halves. */
static inline FC_WG_TARGET_AVX2 void wg_tr_blk_f32(const float *restrict src, int64_t sld,
                                                   float *restrict dst, int64_t dld)
{
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + sld);
    __m256 r2 = _mm256_loadu_ps(src + 2 * sld), r3 = _mm256_loadu_ps(src + 3 * sld);
    __m256 r4 = _mm256_loadu_ps(src + 4 * sld), r5 = _mm256_loadu_ps(src + 5 * sld);
    __m256 r6 = _mm256_loadu_ps(src + 6 * sld), r7 = _mm256_loadu_ps(src + 7 * sld);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + dld, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * dld, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * dld, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * dld, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * dld, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * dld, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * dld, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/* 4x4 doubles: unpack pairs, then swap 128-bit halves. */
static inline FC_WG_TARGET_AVX2 void wg_tr_blk_f64(const double *restrict src, int64_t sld,
                                                   double *restrict dst, int64_t dld)
{
    __m256d r0 = _mm256_loadu_pd(src), r1 = _mm256_loadu_pd(src + sld);
    __m256d r2 = _mm256_loadu_pd(src + 2 * sld), r3 = _mm256_loadu_pd(src + 3 * sld);
    __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
    __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
    _mm256_storeu_pd(dst, _mm256_permute2f128_pd(t0, t2, 0x20));
    _mm256_storeu_pd(dst + dld, _mm256_permute2f128_pd(t1, t3, 0x20));
    _mm256_storeu_pd(dst + 2 * dld, _mm256_permute2f128_pd(t0, t2, 0x31));
    _mm256_storeu_pd(dst + 3 * dld, _mm256_permute2f128_pd(t1, t3, 0x31));
}
#define WG_SIMD_TR 1
#else
#define WG_SIMD_TR 0
#endif

#define T float
#define SFX f32
#define WG_TR_B 8
#include "winograd.inc"
#undef WG_TR_B
#undef T
#undef SFX

#define T double
#define SFX f64
#define WG_TR_B 4
#include "winograd.inc"
#undef WG_TR_B
#undef T
#undef SFX
