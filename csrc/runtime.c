/*
 * runtime.c: thread and CPU-feature queries, and the ISA level.
 *
 * OpenMP is optional: without it every query answers 1. CPU features use the
 * compiler's cpuid-based builtins (which also check that the OS saves the
 * wide registers), so one build runs on every x86-64 and picks its SIMD width
 * at run time; on other architectures the x86 answers are 0.
 *
 * The ISA level (fc_isa, fastconv.h) is the one SIMD setting of every kernel:
 * the GEMM micro-kernels, the direct convolution, the Winograd transforms and
 * the pooling rows all read fc_isa_level(). It is the best level the CPU runs,
 * capped by the FASTCONV_ISA environment variable, which is read here and
 * nowhere else, once (at the first query).
 */
#include <stdlib.h>
#include <string.h>
#include "fc_internal.h"

int fc_openmp_enabled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int fc_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int fc_num_procs(void)
{
#ifdef _OPENMP
    return omp_get_num_procs();
#else
    return 1;
#endif
}

/* CPU and OS support, from fc_compiler.h (0 off x86) */
int fc_cpu_has_avx2(void) { return fc_cpu_x86_avx2_fma(); }
int fc_cpu_has_avx512(void) { return fc_cpu_x86_avx512f(); }

/* ---- the ISA level ------------------------------------------------------ */

/* FC_ISA_* once chosen, -1 before the first query. Only an int is ever read
 * or written (two threads making the first query both compute, and store,
 * the same value). */
static volatile int g_isa = -1;

/* The best level this CPU runs. */
static int isa_supported(void)
{
    if (fc_cpu_has_avx512()) return FC_ISA_AVX512;
    if (fc_cpu_has_avx2()) return FC_ISA_AVX2;
    return FC_ISA_GENERIC;
}

/* cap, lowered to FASTCONV_ISA when that names a level (generic | avx2 |
 * avx512); any other value, or none, leaves cap. */
static int isa_from_env(int cap)
{
    const char *e = getenv("FASTCONV_ISA");
    int want = cap;
    if (e != NULL) {
        if (strcmp(e, "generic") == 0) want = FC_ISA_GENERIC;
        else if (strcmp(e, "avx2") == 0) want = FC_ISA_AVX2;
        else if (strcmp(e, "avx512") == 0) want = FC_ISA_AVX512;
    }
    return want < cap ? want : cap;
}

/* The level now: chosen at the first query, then whatever fc_set_isa set. */
int fc_isa_level(void)
{
    int isa = g_isa;
    if (isa < 0) {
        isa = isa_from_env(isa_supported());
        g_isa = isa;
    }
    return isa;
}

/* Set the level, clamped to [FC_ISA_GENERIC, what the CPU runs]. */
int fc_set_isa(int level)
{
    const int cap = isa_supported();
    if (level < FC_ISA_GENERIC) level = FC_ISA_GENERIC;
    if (level > cap) level = cap;
    g_isa = level;
    return level;
}

/* The name Python and FASTCONV_ISA use for a level. */
const char *fc_isa_name(int level)
{
    switch (level) {
    case FC_ISA_AVX512: return "avx512";
    case FC_ISA_AVX2: return "avx2";
    case FC_ISA_GENERIC: return "generic";
    default: return "unknown";
    }
}
