/*
 * plan.c: the compiled inference plan's executor (see plan.h); the bodies,
 * one per type, are in plan.inc (the conv ops in plan_conv.inc).
 *
 * The whole forward is one parallel region. Between two ops the threads wait
 * for the op's claimed units to be done (see plan_finish below), spinning
 * briefly and then yielding the core, because a batch-1 network of ten
 * small ops would otherwise pay a team wake-up or a sleeping barrier
 * (OMP_WAIT_POLICY=PASSIVE, which fastconv sets) ten times per image, and a
 * barrier would make every op wait for a thread the OS has descheduled.
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
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "fc_internal.h"
#include "gemm.h"
#include "conv_gemmt.h"
#include "conv_gemm_pre.h"
#include "plan.h"
#include "conv_dw.h"
#include "conv_pw.h"
#include "conv_stem.h"

#if FC_X86_SIMD
#include <immintrin.h>
#define PLAN_PAUSE() _mm_pause()
#else
#define PLAN_PAUSE() ((void)0)
#endif

/* ---- synchronisation between ops -------------------------------------------
 * No barrier: every op's work is cut into units that the threads claim from
 * the op's own counter (plan_claim) as they come. A thread that finds no unit
 * left adds the units it claimed to the op's done counter and waits until
 * done reaches the op's unit count (plan_finish), then moves to the next op.
 * So a thread that the OS has descheduled (a busy machine) holds nobody up
 * unless it holds a claimed unit: the others take over its share, and when
 * it wakes it runs through the finished ops finding nothing left to claim.
 * Waiting spins briefly, then yields the core. */
typedef struct {
    void *base[3];      /* input, output, arena */
    int *status;
    int64_t *next;      /* the current op's claim counter */
    int64_t units;      /* per thread: the current op's unit count (0: claimed nothing) */
    int64_t mine;       /* per thread: units of the current op this thread claimed */
} plan_ctx;

/* Counters per op, one cache line each: [0] the next unclaimed unit, [8] units done. */
#define PLAN_SYNC_STRIDE 16

/* Spins before a waiting thread starts yielding its core (a few microseconds:
 * an op's imbalance is usually below that; a busy machine gets the core back). */
#define PLAN_SPINS 1000

static int64_t plan_fetch_add(int64_t *p, int64_t v)
{
    int64_t u;
#if FC_HAVE_ATOMICS
    u = __atomic_fetch_add(p, v, __ATOMIC_ACQ_REL);
#else
    FC_PRAGMA(omp atomic capture)
    { u = *p; *p += v; }
    FC_PRAGMA(omp flush)
#endif
    return u;
}

static int64_t plan_load(int64_t *p)
{
#if FC_HAVE_ATOMICS
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
#else
    int64_t v;
    FC_PRAGMA(omp flush)
    FC_PRAGMA(omp atomic read)
    v = *p;
    return v;
#endif
}

static void plan_yield(int *spins)
{
    if (++*spins < PLAN_SPINS) {
        PLAN_PAUSE();
    } else {
#if FC_HAVE_ATOMICS
        sched_yield();
#else
        PLAN_PAUSE();
#endif
    }
}

/* Claim `step` units of the current op, which has `units` in all: returns the
 * first, or >= units when none are left. Which thread computes a unit never
 * changes its result. */
static int64_t plan_claim(plan_ctx *c, int64_t step, int64_t units)
{
    const int64_t u = plan_fetch_add(c->next, step);
    c->units = units;
    if (u < units) c->mine += u + step <= units ? step : units - u;
    return u;
}

/* Another unit of `total` items (pool planes, rows ...) cut into about
 * nth * PLAN_UNITS_PER_THREAD units: 1 and its range [lo, hi), or 0 when none is left. */
static int plan_next_range(plan_ctx *c, int64_t total, int nth, int64_t *lo, int64_t *hi);

static int plan_status(int *status);

/* The end of an op on this thread: count its claimed units done, wait for the rest. */
static void plan_finish(int64_t *done, const plan_ctx *c, int nth, int *status)
{
    if (nth <= 1 || c->units <= 0) return;
    int64_t d = plan_fetch_add(done, c->mine) + c->mine;
    int spins = 0;
    while (d < c->units) {
        if (plan_status(status) != 0) return;
        plan_yield(&spins);
        d = plan_load(done);
    }
}

/* Units per thread of a dynamically shared op: enough to even out a late start. */
#define PLAN_UNITS_PER_THREAD 2

static int plan_next_range(plan_ctx *c, int64_t total, int nth, int64_t *lo, int64_t *hi)
{
    int64_t units = nth > 1 ? (int64_t)nth * PLAN_UNITS_PER_THREAD : 1;
    if (units > total) units = total;
    if (units <= 0) return 0;
    const int64_t u = plan_claim(c, 1, units);
    if (u >= units) return 0;
    fc_split(total, units, u, lo, hi);
    return 1;
}

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
    int expected = 0;
    __atomic_compare_exchange_n(status, &expected, (int)st, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
#else
    FC_PRAGMA(omp critical(fc_plan_status))
    if (*status == 0) *status = (int)st;
#endif
}

static int plan_status(int *status)
{
#if FC_HAVE_ATOMICS
    return __atomic_load_n(status, __ATOMIC_ACQUIRE);
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

void fc_plan_conv_units(int64_t N, int64_t nblk, int64_t chunk, int nth, int64_t *kp,
                        int64_t *step)
{
    const int64_t m = (int64_t)(nth > 1 ? nth : 1) * PLAN_UNITS_PER_THREAD;
    int64_t parts = nth > 1 && N > 0 ? m / plan_gcd(N, m) : 1;
    if (parts > nblk) parts = nblk;
    if (parts < 1) parts = 1;
    int64_t s = 1;
    if (parts == 1) {
        /* chunk images per call, but never so many that the first thread to
         * arrive claims the whole batch: at most N / m with several threads
         * (before this cap, chunk = 8 at a batch of 4 or 8 left the second
         * thread idle: MobileNetV2's 7x7 1x1 convs ran at half speed) */
        const int64_t fair = nth > 1 ? N / m : N;
        s = chunk > 0 ? chunk : 1;
        if (s > fair) s = fair > 0 ? fair : 1;
    }
    *kp = parts;
    *step = s;
}


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
