/*
 * conv_gemm.c: 2-D convolution as matrix products on fastconv's own GEMM
 * (gemm.c), for float and double: forward, backward-data, backward-weight.
 * The bodies live in conv_gemm.inc, included once per type below.
 *
 * Per image n and group g (Kg = K/G output channels, Cg = C/G input
 * channels, CRS = Cg*R*S, PQ = P*Q):
 *   forward          Y[Kg, PQ]   = W[Kg, CRS] . cols[CRS, PQ]        (+ bias)
 *   backward-weight  dW[Kg, CRS] = sum_n dY_n[Kg, PQ] . cols_n[CRS, PQ]^T
 *   backward-data    stride 1:  dX = forward convolution of dY with the
 *                    weights flipped in (r, s) and transposed in (k, c);
 *                    stride > 1: dcols[CRS, PQ] = W^T . dY, then col2im.
 *
 * Implicit GEMM: no column matrix is ever built. The input planes of an
 * image are copied once into a zero-padded "slab" (cg_slab below), split into
 * stride phases, in which every im2col row (c, r, s) is a fixed offset plus
 * p * Ws + q: a GEMM operand of "lines" with runs of Q (see gemm.h), which
 * the GEMM packs straight into its micro-panels. With unit stride, no
 * padding and full rows the input itself is the slab (no copy at all, e.g.
 * 1x1 convolutions). The slab is bounded per thread (channels are taken in
 * chunks when an image is large); so is every other workspace.
 *
 * Threads: forward and backward-data split (image, group, column block) units
 * of the output; backward-weight splits the columns (c, r, s) of dW, each
 * thread summing over all images in order. Every output element is one GEMM
 * chain computed by one thread in an order that does not depend on the
 * thread count, so results are bitwise identical for any nthreads.
 *
 * The geometry check is fc_conv_geom_check (geom.c), once per entry point;
 * the interval solver fc_interval (fc_internal.h).
 */
#include <stdlib.h>
#include <string.h>
#include "fc_internal.h"
#include "gemm.h"
#include "conv_gemmt.h"
#include "conv_gemm_pre.h"

/* Per-thread bound of the slab (bytes); an image needing more is taken a
 * chunk of channels at a time. */
#define FC_CG_SLAB_BUDGET ((int64_t)16 << 20)
/* Per-thread bound of the backward-data column chunk (strided case). */
#define FC_CG_DCOLS_BUDGET ((int64_t)512 << 10)

/* One convolution as the kernels see it (pads may be negative: backward-data
 * runs as a forward convolution with pad' = dil * (R - 1) - pad). */
typedef struct {
    int64_t N, C, H, W;       /* input */
    int64_t K, R, S, G;       /* output channels, kernel, groups */
    int64_t sh, sw, dh, dw;
    int64_t pt, pl;           /* top / left padding */
    int64_t P, Q;             /* output */
} cg_prob;

/* The slab: for each channel, the stride phases (a, b) the taps use, each a
 * zero-padded Hs x Ws plane holding padded input rows a, a + sh, ... and
 * columns b, b + sw, ... . Tap (r, s) of output (p, q) is then phase
 * ((r*dh) % sh, (s*dw) % sw), row p + (r*dh) / sh, column q + (s*dw) / sw. */
typedef struct {
    int64_t Hs, Ws, plane;    /* phase plane */
    int64_t na, nb;           /* phases used in h and w */
    int64_t chan;             /* elements per channel (na * nb * plane) */
    int direct;               /* the input planes are the slab: no copy */
    int64_t *pa, *pb;         /* na row phases, nb column phases */
    int64_t *lines;           /* CRS line offsets (channel 0 at offset 0) */
} cg_slab;

static void cg_slab_free(cg_slab *L)
{
    free(L->pa);
    free(L->pb);
    free(L->lines);
    L->pa = L->pb = L->lines = NULL;
}

/* a * b (both >= 0) into *out; 0 when it does not fit in int64. */
static int cg_mul(int64_t a, int64_t b, int64_t *out)
{
    if (a != 0 && b > INT64_MAX / a) return 0;
    *out = a * b;
    return 1;
}

static int64_t cg_phase_index(const int64_t *list, int64_t n, int64_t v)
{
    for (int64_t i = 0; i < n; i++)
        if (list[i] == v) return i;
    return -1;
}

/* Plan the slab of problem pb with line offsets for nch channels. */
static fc_status cg_slab_plan(const cg_prob *pb, int64_t nch, cg_slab *L)
{
    const int64_t R = pb->R, S = pb->S, RS = R * S;
    memset(L, 0, sizeof *L);
    L->Hs = pb->P + ((R - 1) * pb->dh) / pb->sh;
    L->Ws = pb->Q + ((S - 1) * pb->dw) / pb->sw;
    L->direct = pb->sh == 1 && pb->sw == 1 && pb->pt == 0 && pb->pl == 0 && L->Ws == pb->W
                && L->Hs <= pb->H;
    int64_t nlines;
    if (!cg_mul(nch, RS, &nlines)) return FC_ENOMEM;
    L->pa = (int64_t *)malloc((size_t)R * sizeof(int64_t));
    L->pb = (int64_t *)malloc((size_t)S * sizeof(int64_t));
    L->lines = (int64_t *)malloc((size_t)(nlines > 0 ? nlines : 1) * sizeof(int64_t));
    if (L->pa == NULL || L->pb == NULL || L->lines == NULL) {
        cg_slab_free(L);
        return FC_ENOMEM;
    }
    for (int64_t r = 0; r < R; r++) {
        const int64_t a = (r * pb->dh) % pb->sh;
        if (cg_phase_index(L->pa, L->na, a) < 0) L->pa[L->na++] = a;
    }
    for (int64_t s = 0; s < S; s++) {
        const int64_t b = (s * pb->dw) % pb->sw;
        if (cg_phase_index(L->pb, L->nb, b) < 0) L->pb[L->nb++] = b;
    }
    if (L->direct) {
        L->Ws = pb->W;
        L->plane = pb->H * pb->W;
        L->chan = L->plane;
    } else {
        int64_t t;
        if (!cg_mul(L->Hs, L->Ws, &L->plane) || !cg_mul(L->na * L->nb, L->plane, &t))
            return cg_slab_free(L), FC_ENOMEM;
        L->chan = t;
        /* the slab of all nch channels must be addressable */
        if (!cg_mul(nch, L->chan, &t)) return cg_slab_free(L), FC_ENOMEM;
    }
    for (int64_t c = 0; c < nch; c++)
        for (int64_t r = 0; r < R; r++)
            for (int64_t s = 0; s < S; s++) {
                const int64_t ia = cg_phase_index(L->pa, L->na, (r * pb->dh) % pb->sh);
                const int64_t ib = cg_phase_index(L->pb, L->nb, (s * pb->dw) % pb->sw);
                L->lines[c * RS + r * S + s] = c * L->chan + (ia * L->nb + ib) * L->plane
                                               + ((r * pb->dh) / pb->sh) * L->Ws
                                               + (s * pb->dw) / pb->sw;
            }
    return FC_OK;
}

static cg_prob cg_from_geom(const fc_conv_geom *g)
{
    cg_prob p;
    p.N = g->N; p.C = g->C; p.H = g->H; p.W = g->W;
    p.K = g->K; p.R = g->R; p.S = g->S; p.G = g->groups;
    p.sh = g->stride_h; p.sw = g->stride_w; p.dh = g->dil_h; p.dw = g->dil_w;
    p.pt = g->pad_h; p.pl = g->pad_w;
    p.P = g->P; p.Q = g->Q;
    return p;
}

/* Column blocks per (image, group) pair so that nt threads get equal shares
 * of units: one block when the pairs already divide evenly (or are many),
 * else the fewest blocks that make them divide (at most one per NR tile). */
static int64_t cg_col_blocks(int64_t pairs, int64_t cols, int64_t nr, int nt)
{
    const int64_t tiles = (cols + nr - 1) / nr;
    if (nt <= 1) return 1;
    for (int64_t nb = 1; nb <= tiles; nb++)
        if ((pairs * nb) % nt == 0 || pairs * nb >= 8 * (int64_t)nt) return nb;
    return tiles;
}

/* Backward-data as the flipped forward convolution (rather than columns +
 * col2im)? Only with unit stride, and only when it does about the same
 * multiply-adds: it computes all H*W outputs from R*S taps each where the
 * columns path does P*Q, so "valid" convolutions with big kernels lose;
 * and the flipped GEMM's rows are the Cg input channels, too few to fill
 * the micro-tile when Cg is small (first layers). */
static int cg_bwd_data_flipped(const fc_conv_geom *g)
{
    if (g->stride_h != 1 || g->stride_w != 1) return 0;
    if (g->C / g->groups < 8) return 0;
    return 8 * g->H * g->W <= 9 * g->P * g->Q;
}

/* Weights of at least this many elements are packed by the whole team (and
 * a barrier); fewer are packed by the calling thread before the team starts. */
#define FC_CG_PAR_PACK_MIN ((int64_t)1 << 18)

/* Per-thread bound of the wide-mode output buffer (bytes). */
#define FC_CG_WIDE_BUDGET ((int64_t)512 << 10)

/* Wide mode for a forward pass over a copied slab: compute each block of
 * output rows at the slab's width Ws (the Ws - Q extra columns of a row are
 * dropped afterwards), so every im2col row of the block is one contiguous run
 * of the slab and the GEMM reads it in place, with no packing. Packing B costs
 * about 10 / M of the time (M = Kg rows reuse each packed element; measured
 * ~15% at M = 64); reading B in place costs the (Ws - Q) / Q extra columns
 * plus ~10% of slower, unaligned B loads. Wide when that trade wins (and
 * the slab has enough channels to be worth it: few-channel first layers
 * measured better packed), with a SIMD kernel. */
static int cg_wide(const cg_prob *pb, const cg_slab *L, int64_t Kg, const fc_gemm_kernel *kn)
{
    /* the portable kernel reads B in place much slower than it packs it */
    if (L->direct || pb->C / pb->G < 16 || fc_gemm_kernel_isa(kn) == FC_ISA_GENERIC) return 0;
    /* 10 / M > (Ws - Q) / Q + 1 / 10 */
    return 100 * pb->Q > Kg * (10 * (L->Ws - pb->Q) + pb->Q);
}

/* Running sum of one bias-gradient row (see cg_row_sum). */
typedef struct {
    double lane[8];
    double tail;
} cg_dbsum;

/* Sub-buffers of one workspace block (fc_ws_alloc, 64-byte aligned) stay
 * aligned: round their byte counts up to 64. */
static size_t cg_round(size_t n) { return (n + 63) / 64 * 64; }

/* The columns of a forward pass as the GEMM's B operand (CRS x columns),
 * starting at `base` (the slab, or the input when L->direct): the slab's
 * im2col lines with runs of Q in rows of Ws; in wide mode (cg_wide) the same
 * lines read in place at the slab's width; for a 1x1 input read in place,
 * the input planes as they are, a plain row-major (channels x HW) matrix. */
static fc_gemm_operand cg_cols_operand(const cg_prob *pb, const cg_slab *L, const void *base,
                                       int wide)
{
    fc_gemm_operand B;
    B.base = base; B.lines = L->lines; B.ld = 0;
    B.run = wide ? 0 : pb->Q; B.pitch = wide ? 0 : L->Ws;
    B.k_lines = wide ? FC_GEMM_IN_PLACE : 1;
    if (L->direct && pb->R * pb->S == 1) {
        B.lines = NULL; B.ld = pb->H * pb->W; B.run = 0; B.pitch = 0;
    }
    return B;
}

/* Split a forward pass by output channels (cg_forward_rows,
 * conv_gemm_rows.inc) rather than by columns? Only when the input is read in
 * place and the (image, group) pairs are fewer than the threads; then when
 * each thread's share of the column tiles is at most FC_CG_ROWS_TILES (the
 * column split is uneven there) and it gets at least two MR-row panels, or
 * when its share is at most FC_CG_ROWS_TILES_WIDE and it gets at least
 * FC_CG_ROWS_MIN_ROWS output channels. Each thread packs all the columns it
 * multiplies, so with many columns a band needs enough rows to pay for that:
 * measured at batch 1 on 2 threads (Zen 4), 1x1 convs at 28x28 went 0.65x
 * (32 -> 192), 0.79x (64 -> 128) and 0.93x (128 -> 256), but 1.02x and 1.08x
 * for 256 -> 64 and 192 -> 64; at 7x7 and 14x14, 0.53-0.84x from 64 output
 * channels up. */
#define FC_CG_ROWS_TILES 4
#define FC_CG_ROWS_TILES_WIDE 16
#define FC_CG_ROWS_MIN_ROWS 64
static int cg_rows_split(const cg_prob *pb, const cg_slab *L, const fc_gemm_kernel *kn, int nt)
{
    if (nt < 2 || !L->direct) return 0;
    const int64_t pairs = pb->N * pb->G, Kg = pb->K / pb->G;
    if (pairs >= nt) return 0;
    const int64_t mr = fc_gemm_kernel_mr(kn), nr = fc_gemm_kernel_nr(kn);
    const int64_t tiles = pairs * ((pb->P * pb->Q + nr - 1) / nr);
    if (tiles <= FC_CG_ROWS_TILES * (int64_t)nt) return (Kg + mr - 1) / mr >= 2 * (int64_t)nt;
    return tiles <= FC_CG_ROWS_TILES_WIDE * (int64_t)nt && Kg >= FC_CG_ROWS_MIN_ROWS * (int64_t)nt;
}

/* How the forward pass packs the weights (cg_forward): each group's Kg x CRS
 * matrix cut into nchunk chunks of cc input channels (the slab's budget), a
 * chunk packed as a whole A (fc_gemm_pack_a layout, nsl K-slices) into abytes
 * bytes; napack = G * nchunk such blocks. Returns 0 on overflow. */
typedef struct {
    int64_t cc, nchunk, nsl, napack;
    size_t abytes;
} cg_wlay;

static int cg_wlayout(const cg_prob *pb, const cg_slab *L, const fc_gemm_kernel *kn,
                      size_t tsize, cg_wlay *o)
{
    const int64_t G = pb->G, Cg = pb->C / G, Kg = pb->K / G, RS = pb->R * pb->S;
    o->cc = Cg;
    if (!L->direct) {
        o->cc = FC_CG_SLAB_BUDGET / (L->chan * (int64_t)tsize);
        o->cc = o->cc < 1 ? 1 : o->cc > Cg ? Cg : o->cc;
    }
    o->nchunk = (Cg + o->cc - 1) / o->cc;
    o->nsl = fc_gemm_pack_a_slices(kn, o->cc * RS);
    o->abytes = cg_round(fc_gemm_packed_a_bytes(kn, Kg, o->cc * RS));
    return o->abytes > 64 && cg_mul(G, o->nchunk, &o->napack)
           && (size_t)o->napack <= (SIZE_MAX - FC_CG_PRE_HDR) / o->abytes;
}

/* The header of weights packed once (conv_gemm_pre.h): what they were packed
 * for; cg_forward uses them only when all of it matches the call. */
typedef struct {
    const fc_gemm_kernel *kn;
    int64_t K, CRS, G, napack;
    int64_t cc;
    size_t abytes;
} cg_prehdr;
typedef char cg_prehdr_fits[sizeof(cg_prehdr) <= FC_CG_PRE_HDR ? 1 : -1];

/* The panels of wpre (or NULL) when its header matches this pass: the same
 * kernel (so the same type and ISA level), geometry and layout. */
static const char *cg_pre_match(const void *wpre, const fc_gemm_kernel *kn, const cg_prob *pb,
                                const cg_wlay *o)
{
    if (wpre == NULL) return NULL;
    const cg_prehdr *h = (const cg_prehdr *)wpre;
    if (h->kn != kn || h->K != pb->K || h->G != pb->G
        || h->CRS != pb->C / pb->G * pb->R * pb->S || h->cc != o->cc
        || h->napack != o->napack || h->abytes != o->abytes)
        return NULL;
    return (const char *)wpre + FC_CG_PRE_HDR;
}

#define T float
#define SFX f32
#include "conv_gemm_rows.inc"
#include "conv_gemm.inc"
#include "conv_gemm_pre.inc"
#include "conv_gemmt.inc"
#undef T
#undef SFX

#define T double
#define SFX f64
#include "conv_gemm_rows.inc"
#include "conv_gemm.inc"
#include "conv_gemm_pre.inc"
#include "conv_gemmt.inc"
#undef T
#undef SFX

/* ---- the transposed product's weights (conv_gemmt.h) ---------------------- */

size_t fc_conv_gemmt_packed_bytes(const fc_gemm_kernel *kn, int64_t K, int64_t CRS)
{
    return kn == NULL ? 0 : fc_gemm_packed_b_bytes(kn, CRS, K);
}

/* B[k][j] = w[j * CRS + k]: line j (an output channel), position k. */
fc_status fc_conv_gemmt_pack_w(const fc_gemm_kernel *kn, int64_t K, int64_t CRS,
                               const void *w, void *packed)
{
    if (kn == NULL || w == NULL || packed == NULL || K < 1 || CRS < 1) return FC_EINVAL;
    fc_gemm_operand B;
    B.base = w; B.lines = NULL; B.ld = CRS; B.run = 0; B.pitch = 0; B.k_lines = 0;
    return fc_gemm_pack_b(kn, &B, CRS, K, packed);
}

/* ---- the forward pass's weights packed once (conv_gemm_pre.h) -------------- */

size_t fc_conv_gemm_prepacked_bytes(const fc_conv_geom *g, int itemsize)
{
    if ((itemsize != 4 && itemsize != 8) || fc_conv_geom_check(g, 0) != FC_OK) return 0;
    const cg_prob pb = cg_from_geom(g);
    const fc_gemm_kernel *kn = itemsize == 4 ? fc_gemm_kernel_rows_f32(pb.K / pb.G)
                                             : fc_gemm_kernel_rows_f64(pb.K / pb.G);
    cg_slab L;
    cg_wlay o;
    if (cg_slab_plan(&pb, pb.C / pb.G, &L) != FC_OK) return 0;
    const int ok = cg_wlayout(&pb, &L, kn, (size_t)itemsize, &o);
    cg_slab_free(&L);
    return ok ? FC_CG_PRE_HDR + (size_t)o.napack * o.abytes : 0;
}
