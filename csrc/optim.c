/*
 * optim.c: the optimisers' fused parameter updates (fastconv.optim), for
 * float and double (bodies in optim.inc).
 */
#include "fc_internal.h"

/* Updates go parallel only above this many elements. */
#define FC_OPTIM_PAR_MIN ((int64_t)1 << 16)

#define T float
#define SFX f32
#include "optim.inc"
#undef T
#undef SFX

#define T double
#define SFX f64
#include "optim.inc"
#undef T
#undef SFX
