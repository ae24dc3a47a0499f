/*
 * batchnorm.c: 2-D batch normalisation over NCHW data (x viewed as (N, C, L),
 * L = H*W), float and double (bodies in batchnorm.inc): the training forward
 * (batch statistics), the affine map used by the eval forward and the eval
 * backward, and the backward through the batch statistics.
 *
 * Reductions are per channel, each channel by one thread, over n in order and
 * each row with FC_BN_LANES interleaved double lanes combined in lane order: the
 * result does not depend on the thread count (nor on the SIMD instance).
 */
#include <math.h>
#include "fc_internal.h"

/* Double accumulators per sum (see batchnorm_chan.inc). */
#define FC_BN_LANES 16

/* Loops go parallel only above this many elements. */
#define FC_BN_PAR_MIN ((int64_t)1 << 15)

/* FC_OK when N, C, L >= 0 and N*C*L fits in int64. */
static fc_status bn_check_sizes(int64_t N, int64_t C, int64_t L)
{
    if (N < 0 || C < 0 || L < 0) return FC_EINVAL;
    if (N != 0 && C > INT64_MAX / N) return FC_EOVERFLOW;
    const int64_t NC = N * C;
    if (NC != 0 && L > INT64_MAX / NC) return FC_EOVERFLOW;
    return FC_OK;
}

/* Threads for a loop over `units` independent units of `work` elements in all. */
static int bn_threads(int nthreads, int64_t units, int64_t work)
{
    int nt = work > FC_BN_PAR_MIN ? fc_clamp_threads(nthreads) : 1;
    if ((int64_t)nt > units) nt = (int)(units < 1 ? 1 : units);
    return nt;
}

/* SIMD: the loops (batchnorm_chan.inc) are compiled once per ISA, a portable
 * instance and, on x86 with GCC / clang, AVX2 and AVX-512 ones through
 * function target attributes, picked per call by fc_isa_level(). */
#if !defined(FC_BN_NO_MULTIVERSION) && FC_GNUC && FC_X86
#define FC_BN_X86 1
#else
#define FC_BN_X86 0
#endif

/* base_ISA_SFX: the name of a loop in the instance being compiled. */
#define FC_BN(base) FC_NAME(FC_CAT(base, FC_ISA))

#define T float
#define SFX f32
#include "batchnorm.inc"
#undef T
#undef SFX

#define T double
#define SFX f64
#include "batchnorm.inc"
#undef T
#undef SFX
