/*
 * runtime.c: thread and CPU-feature queries.
 *
 * OpenMP is optional: without it every query answers 1. CPU features use the
 * compiler's cpuid-based builtins (which also check that the OS saves the
 * wide registers), so one build runs on every x86-64 and picks its SIMD width
 * at run time; on other architectures the x86 answers are 0.
 */
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

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
int fc_cpu_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

int fc_cpu_has_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2")
        && __builtin_cpu_supports("fma");
}
#else
int fc_cpu_has_avx2(void) { return 0; }
int fc_cpu_has_avx512(void) { return 0; }
#endif
