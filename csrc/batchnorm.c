/*
 * batchnorm.c: 2-D batch normalisation over NCHW data (x viewed as (N, C, L),
 * L = H*W), float and double (bodies in batchnorm.inc): the training forward
 * (batch statistics), the affine map used by the eval forward and the eval
 * backward, and the backward through the batch statistics.
 *
 * Reductions are per channel, each channel by one thread, over n in order and
 * each row with 8 interleaved double lanes combined in lane order: the result
 * does not depend on the thread count.
 */
#include <math.h>
#include "fc_internal.h"

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
