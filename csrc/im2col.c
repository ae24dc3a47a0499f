/*
 * im2col.c: im2col / col2im for float and double (bodies in im2col.inc).
 * The geometry check is fc_conv_geom_check (geom.c), the interval solver
 * fc_interval (fc_internal.h).
 */
#include <string.h>
#include "fc_internal.h"

/* col2im's planes with AVX-512 where the CPU has it (col2im_plane.inc);
 * FC_IM2COL_NO_SIMD builds the portable body only. */
#if FC_X86_SIMD && (defined(__x86_64__) || defined(_M_X64)) && !defined(FC_IM2COL_NO_SIMD)
#define FC_C2I_X86 1
#include <immintrin.h>
#else
#define FC_C2I_X86 0
#endif

#define T float
#define SFX f32
#define FC_C2I_PS ps            /* the intrinsics' type suffix: _mm512_add_ps */
#define FC_C2I_V __m512
#define FC_C2I_L 16
#define FC_C2I_M __mmask16
#include "im2col.inc"
#undef T
#undef SFX
#undef FC_C2I_PS
#undef FC_C2I_V
#undef FC_C2I_L
#undef FC_C2I_M

#define T double
#define SFX f64
#define FC_C2I_PS pd
#define FC_C2I_V __m512d
#define FC_C2I_L 8
#define FC_C2I_M __mmask8
#include "im2col.inc"
#undef T
#undef SFX
#undef FC_C2I_PS
#undef FC_C2I_V
#undef FC_C2I_L
#undef FC_C2I_M
