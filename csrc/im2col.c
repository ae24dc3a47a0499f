/*
 * im2col.c: im2col / col2im for float and double (bodies in im2col.inc).
 * The geometry check is fc_conv_geom_check (geom.c), the interval solver
 * fc_interval (fc_internal.h).
 */
#include <string.h>
#include "fc_internal.h"

#define T float
#define SFX f32
#include "im2col.inc"
#undef T
#undef SFX

#define T double
#define SFX f64
#include "im2col.inc"
#undef T
#undef SFX
