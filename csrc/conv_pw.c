/*
 * conv_pw.c: the pointwise (1x1, stride 1) convolution forward of the
 * compiled plan (conv_pw.h), its epilogue fused.
 *
 * Per image, pixel tiles of NV vectors: every output channel pass of a tile
 * (MB channels x NV vectors of accumulators, conv_pw.inc) reads the tile's
 * input rows straight from x, so nothing of the input is packed or copied
 * (but the short tail of an image, fewer pixels than a vector, which goes
 * through a small zero-padded buffer so no load reads past a row). The
 * weights come packed (fc_pw_pack_w), one layout for all instances. The
 * tiles are written with GCC / clang vector extensions, compiled for a
 * 16-byte instance (SSE2 on x86-64) and on x86 for AVX2 + FMA and AVX-512
 * through function target attributes (fc_isa_level(), FASTCONV_ISA, as
 * conv_dw.c), plus a plain-C instance for builds without vector extensions
 * (FC_PORTABLE_C).
 *
 * Determinism: each output is one chain of multiply-adds over c in order,
 * plus the bias and the epilogue, the same in any tile shape: the results
 * do not depend on how the executor cuts the pixels or on the thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "fc_internal.h"
#include "conv_pw.h"

#if !defined(FC_DIRECT_NO_MULTIVERSION) && FC_HAVE_VECTOR_EXT && FC_X86
#define PW_X86 1
#else
#define PW_X86 0
#endif
#define PW_HAVE_VEC FC_HAVE_VECTOR_EXT
/* The AVX-512 tile: output channels per pass x vectors of pixels (8 x 3: 24
 * accumulators of the 32 registers). */
#ifndef PW_MB512
#define PW_MB512 8
#endif
#ifndef PW_NV512
#define PW_NV512 3
#endif

int fc_pw_supported(const fc_conv_geom *g)
{
    return g->R == 1 && g->S == 1 && g->stride_h == 1 && g->stride_w == 1 && g->pad_h == 0
           && g->pad_w == 0 && g->P == g->H && g->Q == g->W && g->dil_h == 1
           && g->dil_w == 1 && g->groups == 1;
}

int64_t fc_pw_packed_elems(int64_t K, int64_t C)
{
    if (K < 1 || C < 1) return 0;
    const int64_t panels = (K + FC_PW_MR - 1) / FC_PW_MR;
    if (C > INT64_MAX / FC_PW_MR / panels) return 0;
    return panels * C * FC_PW_MR;
}

/* How the tiles apply the epilogue: none; one clip or one ReLU; every step
 * in vector form; or (a sigmoid or tanh among them) a plain-C pass over the
 * tile's outputs right after its stores (pw_epi_cols). */
enum { PW_MODE_NONE = 0, PW_MODE_CLIP, PW_MODE_RELU, PW_MODE_VEC, PW_MODE_SCALAR };

/* One image's view (per type). */
#define PW_CTX(T, SFX)                                                               \
    typedef struct {                                                                 \
        const T *x;                   /* the image's input (C rows of PQ) */         \
        const T *wp;                  /* packed weights */                           \
        const T *b;                   /* bias or NULL */                             \
        T *y;                         /* the image's output (K rows of PQ) */        \
        int64_t C, K, PQ;                                                            \
        int nepi, mode;                                                              \
        int kind[FC_DW_MAX_EPI];                                                     \
        const T *p0[FC_DW_MAX_EPI], *p1[FC_DW_MAX_EPI];  /* per-channel parameters */ \
        T s0[FC_DW_MAX_EPI], s1[FC_DW_MAX_EPI];          /* leaky / clip scalars */  \
        const T *src[FC_DW_MAX_EPI];  /* ADD: the image's part of src */             \
    } pw_ctx_##SFX;

PW_CTX(float, f32)
PW_CTX(double, f64)

#define PW_TARGET_AVX2 FC_TARGET_FMA("avx2,fma")
#define PW_TARGET_AVX512 FC_TARGET_FMA("avx512f,avx2,fma")

#define T float
#define SFX f32
#define FC_TI int32_t
#define FC_TW 4
#define PW_EXP expf
#define PW_TANH tanhf
#include "conv_pw_entry.inc"
#undef T
#undef SFX
#undef FC_TI
#undef FC_TW
#undef PW_EXP
#undef PW_TANH

#define T double
#define SFX f64
#define FC_TI int64_t
#define FC_TW 8
#define PW_EXP exp
#define PW_TANH tanh
#include "conv_pw_entry.inc"
#undef T
#undef SFX
#undef FC_TI
#undef FC_TW
#undef PW_EXP
#undef PW_TANH
