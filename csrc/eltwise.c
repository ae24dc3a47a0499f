/*
 * eltwise.c: ReLU forward / backward, bias add / bias gradient and the
 * finiteness scan for float and double (bodies in eltwise.inc).
 */
#include <string.h>

#include "fc_internal.h"

/* Elementwise loops go parallel only above this many elements; below it the
 * thread start-up costs more than the loop. */
#define FC_ELTWISE_PAR_MIN ((int64_t)1 << 16)

/* 1 when a*b*c (all >= 0) fits in int64. */
static int eltwise_prod3_fits(int64_t a, int64_t b, int64_t c)
{
    if (a != 0 && b > INT64_MAX / a) return 0;
    int64_t ab = a * b;
    if (ab != 0 && c > INT64_MAX / ab) return 0;
    return 1;
}

/* FC_EU: the unsigned integer of T's width; FC_EEXP: T's exponent bits (all
 * set: inf or NaN). */
#define T float
#define SFX f32
#define FC_EU uint32_t
#define FC_EEXP 0x7f800000u
#include "eltwise.inc"
#undef T
#undef SFX
#undef FC_EU
#undef FC_EEXP

#define T double
#define SFX f64
#define FC_EU uint64_t
#define FC_EEXP 0x7ff0000000000000ull
#include "eltwise.inc"
#undef T
#undef SFX
#undef FC_EU
#undef FC_EEXP
