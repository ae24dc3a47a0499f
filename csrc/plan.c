/*
 * plan.c: the compiled inference plan's executor (see plan.h); the bodies,
 * one per type, are in plan.inc.
 *
 * The whole forward is one parallel region. Between two ops the threads meet
 * at a barrier of our own (an atomic counter and a sense flag, spinning
 * briefly and then yielding the core), because a batch-1 network of ten
 * small ops would otherwise pay a team wake-up or a sleeping barrier
 * (OMP_WAIT_POLICY=PASSIVE, which fastconv sets) ten times per image.
 *
 * Calls into the existing kernels are made in exactly one small function per
 * kernel family (plan_call_conv, plan_call_maxpool, plan_call_avgpool,
 * plan_call_gemm in plan.inc), so a rename of the kernel API is one edit.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include "fc_compiler.h"
#if FC_HAVE_ATOMICS
#include <sched.h>
#endif
#include <string.h>
#include <time.h>
#include "fc_internal.h"
#include "gemm.h"
#include "plan.h"

#if FC_X86_SIMD
#include <immintrin.h>
#define PLAN_PAUSE() _mm_pause()
#else
#define PLAN_PAUSE() ((void)0)
#endif

/* ---- the barrier ----------------------------------------------------------- */
typedef struct {
    int count;
    int sense;
    int64_t next;   /* the current op's next unclaimed unit (plan_claim), 0 after each barrier */
} plan_bar;

/* Spins before a waiting thread starts yielding its core (a few microseconds:
 * an op's imbalance is usually below that; a busy machine gets the core back). */
#define PLAN_SPINS 1000

static void plan_barrier(plan_bar *b, int nth, int *my_sense)
{
    if (nth <= 1) {
        b->next = 0;
        return;
    }
#if FC_HAVE_ATOMICS
    const int s = !*my_sense;
    *my_sense = s;
    if (fc_atomic_add_int(&b->count, 1) == nth) {
        fc_atomic_store_int(&b->count, 0);
        fc_atomic_store_i64(&b->next, 0);
        fc_atomic_store_int(&b->sense, s);
    } else {
        int spins = 0;
        while (fc_atomic_load_int(&b->sense) != s) {
            if (++spins < PLAN_SPINS) PLAN_PAUSE();
            else sched_yield();   /* FC_HAVE_ATOMICS: GCC / clang, POSIX */
        }
    }
#else
    (void)my_sense;
    FC_PRAGMA(omp barrier)
    FC_PRAGMA(omp single)
    b->next = 0;
#endif
}

/* Claim `step` units of the current op: returns the first, or >= the op's unit
 * count when none are left. Threads take units as they come, so one that
 * started late (woken for the region) or was preempted on a busy machine
 * takes fewer. Which thread computes a unit never changes its result. */
static int64_t plan_claim(plan_bar *b, int64_t step)
{
    int64_t u;
#if FC_HAVE_ATOMICS
    u = fc_atomic_fetch_add_i64(&b->next, step);
#else
    FC_PRAGMA(omp atomic capture)
    { u = b->next; b->next += step; }
#endif
    return u;
}

/* Units per thread of a dynamically shared op: enough to even out a late start. */
#define PLAN_UNITS_PER_THREAD 2

static double plan_now(void)
{
    struct timespec ts;
#if FC_GNUC
    clock_gettime(CLOCK_MONOTONIC, &ts);
#else
    timespec_get(&ts, TIME_UTC);   /* C11 (MSVC has no clock_gettime) */
#endif
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void plan_fail(int *status, fc_status st)
{
    if (st == FC_OK) return;
#if FC_HAVE_ATOMICS
    (void)fc_atomic_cas0_int(status, (int)st);
#else
    FC_PRAGMA(omp critical(fc_plan_status))
    if (*status == 0) *status = (int)st;
#endif
}

static int plan_status(int *status)
{
#if FC_HAVE_ATOMICS
    return fc_atomic_load_int(status);
#else
    int s;
    FC_PRAGMA(omp atomic read)
    s = *status;
    return s;
#endif
}

static int64_t plan_gcd(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

typedef struct {
    void *base[3];      /* input, output, arena */
    int *status;
    plan_bar *bar;
} plan_ctx;

#define T float
#define SFX f32
#define PLAN_EXP expf
#define PLAN_TANH tanhf
#include "plan.inc"
#undef T
#undef SFX
#undef PLAN_EXP
#undef PLAN_TANH

#define T double
#define SFX f64
#define PLAN_EXP exp
#define PLAN_TANH tanh
#include "plan.inc"
#undef T
#undef SFX
#undef PLAN_EXP
#undef PLAN_TANH
