/*
 * conv_stem.c: the first-layer ("stem") convolution forward for few input
 * channels (conv_stem.h), the kernel the compiled plan runs for convs such
 * as MobileNet's 3 -> 32 3x3/2 or ResNet's 3 -> 64 7x7/2, the epilogue fused.
 *
 * With C <= 4 input channels a GEMM has a depth of only C*R*S (27 for a 3x3
 * on RGB) and the direct kernel vectorises over output channels that the
 * input does not have; here the output pixels run along the SIMD lanes
 * instead. Per image, bands of output rows: the band's input (every channel)
 * is copied, zero-padded and split by stride phase (even / odd rows and
 * columns with stride 2) into a buffer that stays in L1 / L2, so every tap
 * (c, r, s) is one unit-stride load at a constant offset from the output
 * position, with no bounds test. A tile is a block of KB output channels
 * (8, 4 or 1) times one vector in each of NV output rows (NV 1, 2 or 3 by
 * level and kernel size, st_nv): each input vector loaded
 * feeds KB multiply-adds with the block's weights broadcast, the KB*NV
 * accumulators stay in registers through all C*R*S taps and the epilogue,
 * and are stored once (conv_stem.inc). The weights are packed per piece as
 * [block][tap][KB] so a tap's KB weights are adjacent.
 *
 * The tiles are written with GCC / clang vector extensions, compiled for a
 * 16-byte instance and on x86 for AVX2 + FMA and AVX-512 through function
 * target attributes, chosen by fc_isa_level() as conv_dw.c does, plus a
 * plain-C instance (rows narrower than any vector; builds without vector
 * extensions, FC_PORTABLE_C). Each output is the bias plus the taps in
 * (c, r, s) order in every instance: integer-valued data give the same
 * (exact) results at every level, thread count and channel split.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "fc_internal.h"
#include "conv_stem.h"

/* Output channels per tile (the widest block) and bytes of the band buffer
 * the band height aims at. */
#define ST_KB 8
#ifndef ST_BAND_BYTES
#define ST_BAND_BYTES 49152
#endif

#if !defined(FC_DIRECT_NO_MULTIVERSION) && FC_HAVE_VECTOR_EXT && FC_X86
#define ST_X86 1
#else
#define ST_X86 0
#endif
#define ST_HAVE_VEC FC_HAVE_VECTOR_EXT
#define ST_SCALAR (-1)

int fc_stem_supported(const fc_conv_geom *g)
{
    return g->groups == 1 && g->C >= 1 && g->C <= FC_STEM_MAXC && g->dil_h == 1
           && g->dil_w == 1 && (g->stride_h == 1 || g->stride_h == 2)
           && (g->stride_w == 1 || g->stride_w == 2) && g->R >= 1 && g->S >= 1
           && g->R <= FC_STEM_MAXTAPS && g->S <= FC_STEM_MAXTAPS
           && g->C * g->R * g->S <= FC_STEM_MAXTAPS;
}

#if ST_HAVE_VEC
/* Lanes of level lv's vectors for elements of tsize bytes (1: ST_SCALAR). */
static int64_t st_lanes(int lv, int tsize)
{
    return lv < 0 ? 1 : (int64_t)((16 << lv) / tsize);
}
#endif

/* The tiles' level for rows Q outputs wide: the widest the ISA setting
 * allows whose vectors fit in a row and cover it with at most a quarter of
 * the lanes recomputed (ceil(Q/VL)*VL <= 1.25*Q), else ST_SCALAR. */
static int st_level(int64_t Q, int tsize)
{
#if ST_HAVE_VEC
#if ST_X86
    int lv = fc_isa_level();
#else
    int lv = 0;
#endif
    for (; lv >= 0; lv--) {
        const int64_t vl = st_lanes(lv, tsize);
        if (vl <= Q && 4 * ((Q + vl - 1) / vl) * vl <= 5 * Q) return lv;
    }
#else
    (void)Q;
    (void)tsize;
#endif
    return ST_SCALAR;
}

/* Output rows per tile at level lv for a kernel of ntaps taps C*R*S: 3 at
 * the AVX-512 level from ST_R3_TAPS taps, else 2 (below AVX-512 the tiles
 * have 1 row; the bands are still cut in whole pairs of rows). Per tap a
 * tile loads NV vectors and broadcasts 8 weights for 8*NV multiply-adds, so
 * 3 rows feed the FMA units better, but its band is taller and a 3x3
 * kernel's few taps do not pay for that. Measured (float32, batch 1, 2
 * threads, one-conv plans, the same plan with 2- and 3-row tiles alternated
 * in one process, full-width AVX-512 Xeon): 3 -> 64 7x7/2 at 224x224
 * 0.86-0.92x the time, 5x5 stems 0.95-0.99x; 3 -> 32 3x3/2 1.05-1.10x and
 * 3 -> 64 3x3/2 1.04-1.05x, hence 2 rows there. */
#ifndef ST_R3_TAPS
#define ST_R3_TAPS 64
#endif
static int st_nv(int lv, int64_t ntaps)
{
#if ST_X86
    if (lv >= FC_ISA_AVX512) return ntaps >= ST_R3_TAPS ? 3 : 2;
#endif
    (void)lv;
    (void)ntaps;
    return 2;
}

/* How the tiles apply the epilogue: none; one clip or one ReLU; every step
 * in vector form; or (a sigmoid or tanh among them) a plain-C pass over the
 * band's rows after the tiles (st_epi_rows). */
enum { ST_MODE_NONE = 0, ST_MODE_CLIP, ST_MODE_RELU, ST_MODE_VEC, ST_MODE_SCALAR };

/* The tiles' view of one band of one image and one block of output channels. */
#define ST_CTX(T, SFX)                                                               \
    typedef struct {                                                                 \
        const T *buf;                 /* the band's phase planes, every channel */   \
        const int64_t *off;           /* per tap: its offset from buf + p*wb + q */  \
        int64_t ntaps, wb, Q, PQ;                                                    \
        int64_t nrows;                /* output rows of the band */                  \
        int kb;                       /* channels in the block: 8, 4 or 1 */         \
        const T *wp;                  /* the block's weights, [tap][kb] */           \
        T bias[ST_KB];                                                               \
        T *y;                         /* channel 0 of the block, the band's row 0 */ \
        int nepi, mode;                                                              \
        int kind[FC_DW_MAX_EPI];                                                     \
        T s0[FC_DW_MAX_EPI][ST_KB], s1[FC_DW_MAX_EPI][ST_KB];  /* per channel */     \
        const T *src[FC_DW_MAX_EPI];  /* ADD: src at y's index */                    \
    } st_ctx_##SFX;

ST_CTX(float, f32)
ST_CTX(double, f64)

#define ST_TARGET_AVX2 FC_TARGET_FMA("avx2,fma")
#define ST_TARGET_AVX512 FC_TARGET_FMA("avx512f,avx2,fma")

#define T float
#define SFX f32
#define FC_TI int32_t
#define FC_TW 4
#define ST_EXP expf
#define ST_TANH tanhf
#include "conv_stem_isas.inc"
#include "conv_stem_entry.inc"
#undef T
#undef SFX
#undef FC_TI
#undef FC_TW
#undef ST_EXP
#undef ST_TANH

#define T double
#define SFX f64
#define FC_TI int64_t
#define FC_TW 8
#define ST_EXP exp
#define ST_TANH tanh
#include "conv_stem_isas.inc"
#include "conv_stem_entry.inc"
#undef T
#undef SFX
#undef FC_TI
#undef FC_TW
#undef ST_EXP
#undef ST_TANH
