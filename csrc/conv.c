/*
 * conv.c: the per-pass convolution entry points, fc_conv2d_fwd_*,
 * fc_conv2d_bwd_data_* and fc_conv2d_bwd_weight_*, for float and double
 * (bodies in conv.inc): each runs the kernel of the algorithm it is given
 * (fc_conv_algo: direct, GEMM or Winograd; direct on a strided depthwise
 * geometry is conv_dw.c's kernel, and so is direct backward-data on a 3x3
 * stride-1 one, see conv.inc). They only dispatch: the kernel
 * they call checks the geometry, once, and they return its status.
 */
#include "fc_internal.h"
#include "conv_dw.h"

#define T float
#define SFX f32
#include "conv.inc"
#undef T
#undef SFX

#define T double
#define SFX f64
#include "conv.inc"
#undef T
#undef SFX
