/*
 * fc_compiler.h: the one place for compiler-specific spellings. Every other
 * source writes these macros and functions, never __attribute__, __builtin_*,
 * __atomic_* or __asm__ itself, so the kernels build with GCC, clang and MSVC.
 *
 *   FC_GNUC             1 with GCC / clang, unless FC_PORTABLE_C is defined
 *                       (0 then, and with MSVC): GNU attributes and builtins
 *   FC_MSVC             1 with Microsoft's compiler (not clang-cl)
 *   FC_HAVE_VECTOR_EXT  GNU vector types with operators (= FC_GNUC); where 0,
 *                       the kernels written with them use plain-C fallbacks
 *   FC_X86              an x86 target (GCC/clang or MSVC spelling)
 *   FC_X86_SIMD         x86 intrinsics usable in any function (GCC/clang with
 *                       FC_TARGET, MSVC anywhere, the portable proxy build
 *                       with the ISA flags passed globally)
 *   FC_TARGET(s)        GCC/clang: __attribute__((target(s))); else empty
 *   FC_TARGET_FMA(s)    as FC_TARGET, and with GCC also fp-contract=fast so
 *                       a + b*c fuses (clang contracts by default)
 *   FC_ALWAYS_INLINE    "inline" that the compiler must honour
 *   FC_NOINLINE         never inlined
 *   FC_PREFETCH(p, rw, locality)  cache hint (rw 0/1, locality 0..3)
 *   FC_NO_LIBCALL_LOOPS GCC: do not turn copy / zero loops into memcpy / memset
 *                       calls (optimize("no-tree-loop-distribute-patterns"))
 *   FC_RESTRICT         restrict (C99 keyword; MSVC's C11 mode knows it too)
 *   fc_cpu_x86_avx2_fma(), fc_cpu_x86_avx512f(), fc_cpu_x86_avx512_vnni():
 *                       1 when both the CPU and the OS (XSAVE state) support it
 *   fc_atomic_*         the few atomics the plan barrier and the workspace
 *                       cache use (GNU builtins or MSVC Interlocked*)
 *
 * FC_PORTABLE_C is the proxy for MSVC that runs here (setup.py with
 * FASTCONV_PORTABLE_C=1): GCC in -std=c11 with the GNU spellings poisoned
 * (csrc/tests/fc_poison.h), so any that is left fails to compile.
 */
#ifndef FC_COMPILER_H
#define FC_COMPILER_H

#include <stddef.h>
#include <stdint.h>

#if defined(_MSC_VER) && !defined(__clang__)
#define FC_MSVC 1
#else
#define FC_MSVC 0
#endif

#if (defined(__GNUC__) || defined(__clang__)) && !defined(FC_PORTABLE_C)
#define FC_GNUC 1
#else
#define FC_GNUC 0
#endif

#define FC_HAVE_VECTOR_EXT FC_GNUC

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)
#define FC_X86 1
#else
#define FC_X86 0
#endif

/* SSE2 is part of x86-64 (MSVC does not define __SSE2__ for x64). */
#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#define FC_SSE2 1
#else
#define FC_SSE2 0
#endif

#if FC_X86 && (FC_GNUC || FC_MSVC || defined(FC_PORTABLE_C))
#define FC_X86_SIMD 1
#else
#define FC_X86_SIMD 0
#endif

#if FC_GNUC
#define FC_TARGET(s) __attribute__((target(s)))
#if defined(__clang__)
#define FC_TARGET_FMA(s) __attribute__((target(s)))
#else
#define FC_TARGET_FMA(s) __attribute__((target(s), optimize("fp-contract=fast")))
#endif
#define FC_ALWAYS_INLINE inline __attribute__((always_inline))
#define FC_NOINLINE __attribute__((noinline))
#define FC_PREFETCH(p, rw, locality) __builtin_prefetch((p), (rw), (locality))
#else
#define FC_TARGET(s)
#define FC_TARGET_FMA(s)
#if FC_MSVC
#define FC_ALWAYS_INLINE __forceinline
#define FC_NOINLINE __declspec(noinline)
#else
#define FC_ALWAYS_INLINE inline
#define FC_NOINLINE
#endif
#if FC_X86_SIMD
#include <immintrin.h>
/* locality 3 -> T0 ... 0 -> NTA; a write hint is a read hint here */
#define FC_PREFETCH(p, rw, locality)                                                     \
    _mm_prefetch((const char *)(p), (locality) >= 3 ? _MM_HINT_T0 : (locality) == 2      \
                 ? _MM_HINT_T1 : (locality) == 1 ? _MM_HINT_T2 : _MM_HINT_NTA)
#else
#define FC_PREFETCH(p, rw, locality) ((void)(p))
#endif
#endif

#define FC_RESTRICT restrict

#if FC_GNUC && !defined(__clang__)
#define FC_NO_LIBCALL_LOOPS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define FC_NO_LIBCALL_LOOPS
#endif

/* ---- CPU features ------------------------------------------------------- */
#if FC_X86 && FC_GNUC
static inline int fc_cpu_x86_avx2_fma(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
static inline int fc_cpu_x86_avx512f(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && fc_cpu_x86_avx2_fma();
}
static inline int fc_cpu_x86_avx512_vnni(void)
{
    __builtin_cpu_init();
    return fc_cpu_x86_avx512f() && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}
#elif FC_X86_SIMD
/* cpuid and xgetbv: MSVC's <intrin.h>, or <cpuid.h> in the proxy build. */
#if FC_MSVC
#include <intrin.h>
#else
#include <cpuid.h>
#endif
static inline void fc_cpuid(int r[4], int leaf, int sub)
{
#if FC_MSVC
    __cpuidex(r, leaf, sub);
#else   /* the cpuid.h macro (GCC and clang; older clang has no __cpuidex) */
    unsigned int a = 0, b = 0, c = 0, d = 0;
    __cpuid_count((unsigned int)leaf, (unsigned int)sub, a, b, c, d);
    r[0] = (int)a;
    r[1] = (int)b;
    r[2] = (int)c;
    r[3] = (int)d;
#endif
}
/* The OS saves the register state in mask (XCR0) on a context switch. */
static inline int fc_os_saves(uint64_t mask)
{
    int r[4];
    fc_cpuid(r, 1, 0);
    if (!((uint32_t)r[2] & (1u << 27))) return 0;   /* OSXSAVE: xgetbv usable */
    return ((uint64_t)_xgetbv(0) & mask) == mask;
}
static inline int fc_cpu_x86_avx2_fma(void)
{
    int r[4];
    fc_cpuid(r, 0, 0);
    if (r[0] < 7) return 0;
    fc_cpuid(r, 1, 0);
    const int fma = ((uint32_t)r[2] >> 12) & 1, avx = ((uint32_t)r[2] >> 28) & 1;
    fc_cpuid(r, 7, 0);
    const int avx2 = ((uint32_t)r[1] >> 5) & 1;
    return fma && avx && avx2 && fc_os_saves(0x6);          /* XMM, YMM state */
}
static inline int fc_cpu_x86_avx512f(void)
{
    int r[4];
    if (!fc_cpu_x86_avx2_fma()) return 0;
    fc_cpuid(r, 7, 0);
    return (((uint32_t)r[1] >> 16) & 1) && fc_os_saves(0xE6);  /* + opmask, ZMM */
}
static inline int fc_cpu_x86_avx512_vnni(void)
{
    int r[4];
    if (!fc_cpu_x86_avx512f()) return 0;
    fc_cpuid(r, 7, 0);
    const uint32_t b = (uint32_t)r[1], c = (uint32_t)r[2];
    return ((b >> 30) & 1) && ((b >> 31) & 1) && ((c >> 11) & 1);   /* BW, VL, VNNI */
}
#else
static inline int fc_cpu_x86_avx2_fma(void) { return 0; }
static inline int fc_cpu_x86_avx512f(void) { return 0; }
static inline int fc_cpu_x86_avx512_vnni(void) { return 0; }
#endif

/* ---- atomics ------------------------------------------------------------ */
/* FC_HAVE_ATOMICS is 0 where neither spelling exists (callers then use an
 * OpenMP construct or do without: MSVC, and the proxy build, take that
 * path, which the proxy build tests). */
#if FC_GNUC
#define FC_HAVE_ATOMICS 1
static inline int fc_atomic_add_int(int *p, int v) { return __atomic_add_fetch(p, v, __ATOMIC_ACQ_REL); }
static inline int fc_atomic_load_int(int *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void fc_atomic_store_int(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline void fc_atomic_store_i64(int64_t *p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline int64_t fc_atomic_fetch_add_i64(int64_t *p, int64_t v)
{
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
/* *p = v if *p == 0; returns 1 when it stored */
static inline int fc_atomic_cas0_int(int *p, int v)
{
    int expected = 0;
    return __atomic_compare_exchange_n(p, &expected, v, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
static inline void *fc_atomic_xchg_ptr(void *volatile *p, void *v)
{
    return __atomic_exchange_n(p, v, __ATOMIC_ACQ_REL);
}
static inline int fc_atomic_cas0_ptr(void *volatile *p, void *v)
{
    void *expected = NULL;
    return __atomic_compare_exchange_n(p, &expected, v, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
#else
#define FC_HAVE_ATOMICS 0
#endif

#endif /* FC_COMPILER_H */
