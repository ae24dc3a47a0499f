/*
 * fc_poison.h: forced first (-include) by the FASTCONV_PORTABLE_C=1 build,
 * the proxy for MSVC that runs on this machine (see setup.py). It includes
 * every system header the kernels use, then poisons the GNU spellings MSVC
 * does not have, so that any left in csrc/ outside fc_compiler.h's
 * FC_GNUC branches is a compile error. (Macros the system headers defined
 * before the poison, such as cpuid.h's, may still expand to them.) The
 * build adds -std=c11 (no typeof, no asm keyword), -Werror=vla and
 * -DFC_PORTABLE_C, and the ISA flags globally, as MSVC compiles intrinsics
 * in any function.
 */
#ifndef FC_POISON_H
#define FC_POISON_H

#ifdef __cplusplus
#error "fc_poison.h is for the C sources"
#endif

#define _POSIX_C_SOURCE 200809L   /* as plan.c (time.h, before any include) */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <emmintrin.h>
#include <immintrin.h>
#endif

#pragma GCC poison __attribute__ __attribute __declspec
#pragma GCC poison __builtin_cpu_supports __builtin_cpu_init __builtin_cpu_is
#pragma GCC poison __builtin_prefetch __builtin_expect __builtin_unreachable
#pragma GCC poison __builtin_shuffle __builtin_shufflevector __builtin_convertvector
#pragma GCC poison __builtin_assume_aligned __builtin_ctz __builtin_ctzll __builtin_clz
#pragma GCC poison __builtin_clzll __builtin_popcount __builtin_popcountll __builtin_memcpy
#pragma GCC poison __builtin_memset __builtin_alloca alloca
#pragma GCC poison __typeof__ __typeof typeof __auto_type __extension__
#pragma GCC poison __asm__ __asm asm __volatile__ __inline__ __inline __restrict__ __restrict
#pragma GCC poison __int128 __thread __label__
#pragma GCC poison __atomic_load_n __atomic_store_n __atomic_add_fetch __atomic_fetch_add
#pragma GCC poison __atomic_exchange_n __atomic_compare_exchange_n __sync_synchronize
#pragma GCC poison __sync_fetch_and_add __sync_bool_compare_and_swap
#pragma GCC poison sched_yield clock_gettime posix_memalign aligned_alloc

#endif /* FC_POISON_H */
