/*
 * test_conv_direct_c.c: standalone check of conv_direct.c against a naive
 * 7-loop reference (computed in double), on random shapes with groups
 * (incl. depthwise), stride (incl. strides beyond the kernel), dilation,
 * asymmetric padding, non-square and 1x1 kernels, N == 0, both dtypes;
 * 1 vs 2 threads must agree bitwise (and db == NULL must not change dw); bad
 * pointers and bad geometries give FC_EINVAL. "bench" as argument measures
 * N=8, C=64, 56x56, K=64, 3x3, pad 1 (float32; add "1" for one thread only).
 *
 * Every case runs under each SIMD variant the CPU has (baseline, AVX2,
 * AVX-512, forced through fc_set_isa, the ISA level the direct kernels read).
 * Also: inf / NaN in x elements no output window reads must not reach dw.
 *
 * Built and run by tools/ctests.sh (with and without OpenMP, then under
 * ASan + UBSan). By hand, from the repository root (every csrc .c file: the
 * kernels need the runtime, the geometry check and the workspace cache):
 *   gcc -std=c99 -O2 -Wall -Wextra -fopenmp -Icsrc csrc/tests/test_conv_direct_c.c \
 *       csrc/[a-z]*.c -lm -o /tmp/tcd && /tmp/tcd [iterations]
 * Variants worth running: -DFC_DIRECT_MAX_ISA=0 (baseline instances only),
 * -DFC_DIR_BWD_WEIGHT_BUDGET=1 (backward-weight one sample per chunk /
 * group), -fsanitize=address,undefined, and without -fopenmp.
 */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "fastconv.h"

#include "fc_check.h"
static int64_t rnd(int64_t lo, int64_t hi) { return lo + (int64_t)(rng_next() % (uint64_t)(hi - lo + 1)); }
static double rndu(void) { return (double)(rng_next() >> 11) / 9007199254740992.0 * 2.0 - 1.0; }


/* naive references in double */
static void ref_fwd(const fc_conv_geom *g, const double *x, const double *w, const double *b,
                    double *y)
{
    int64_t Cg = g->C / g->groups, Kg = g->K / g->groups;
    for (int64_t n = 0; n < g->N; n++)
    for (int64_t k = 0; k < g->K; k++)
    for (int64_t p = 0; p < g->P; p++)
    for (int64_t q = 0; q < g->Q; q++) {
        double s = b ? b[k] : 0.0;
        for (int64_t cc = 0; cc < Cg; cc++)
        for (int64_t r = 0; r < g->R; r++)
        for (int64_t t = 0; t < g->S; t++) {
            int64_t c = (k / Kg) * Cg + cc;
            int64_t h = p * g->stride_h - g->pad_h + r * g->dil_h;
            int64_t v = q * g->stride_w - g->pad_w + t * g->dil_w;
            if (h < 0 || h >= g->H || v < 0 || v >= g->W) continue;
            s += w[((k * Cg + cc) * g->R + r) * g->S + t] * x[((n * g->C + c) * g->H + h) * g->W + v];
        }
        y[((n * g->K + k) * g->P + p) * g->Q + q] = s;
    }
}

static void ref_bwd(const fc_conv_geom *g, const double *x, const double *w, const double *dy,
                    double *dx, double *dw, double *db)
{
    int64_t Cg = g->C / g->groups, Kg = g->K / g->groups;
    memset(dx, 0, sizeof(double) * (size_t)(g->N * g->C * g->H * g->W));
    memset(dw, 0, sizeof(double) * (size_t)(g->K * Cg * g->R * g->S));
    memset(db, 0, sizeof(double) * (size_t)g->K);
    for (int64_t n = 0; n < g->N; n++)
    for (int64_t k = 0; k < g->K; k++)
    for (int64_t p = 0; p < g->P; p++)
    for (int64_t q = 0; q < g->Q; q++) {
        double d = dy[((n * g->K + k) * g->P + p) * g->Q + q];
        db[k] += d;
        for (int64_t cc = 0; cc < Cg; cc++)
        for (int64_t r = 0; r < g->R; r++)
        for (int64_t t = 0; t < g->S; t++) {
            int64_t c = (k / Kg) * Cg + cc;
            int64_t h = p * g->stride_h - g->pad_h + r * g->dil_h;
            int64_t v = q * g->stride_w - g->pad_w + t * g->dil_w;
            if (h < 0 || h >= g->H || v < 0 || v >= g->W) continue;
            int64_t xi = ((n * g->C + c) * g->H + h) * g->W + v;
            int64_t wi = ((k * Cg + cc) * g->R + r) * g->S + t;
            dx[xi] += w[wi] * d;
            dw[wi] += x[xi] * d;
        }
    }
}

static double maxabs(const double *a, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) if (fabs(a[i]) > m) m = fabs(a[i]);
    return m;
}

#define DEFINE_CMP(T)                                                                   \
static double maxerr_##T(const T *a, const double *ref, int64_t n)                     \
{                                                                                       \
    double m = 0;                                                                       \
    for (int64_t i = 0; i < n; i++) {                                                   \
        double e = fabs((double)a[i] - ref[i]);                                         \
        if (!(e <= m)) m = e;      /* NaN propagates */                                 \
    }                                                                                   \
    return m;                                                                           \
}
DEFINE_CMP(float)
DEFINE_CMP(double)

/* One random case, run for one type. */
#define DEFINE_CASE(T, SFX, TOL)                                                        \
static void run_case_##SFX(const fc_conv_geom *g, const double *xd, const double *wd,  \
                           const double *bd, const double *dyd, const double *yref,     \
                           const double *dxref, const double *dwref, const double *dbref,\
                           int use_bias, const char *desc)                              \
{                                                                                       \
    int64_t nx = g->N * g->C * g->H * g->W, ny = g->N * g->K * g->P * g->Q;            \
    int64_t nw = g->K * (g->C / g->groups) * g->R * g->S;                              \
    T *x = malloc(sizeof(T) * (size_t)(nx + 1)), *w = malloc(sizeof(T) * (size_t)nw);  \
    T *b = malloc(sizeof(T) * (size_t)g->K), *dy = malloc(sizeof(T) * (size_t)(ny + 1));\
    T *y1 = malloc(sizeof(T) * (size_t)(ny + 1)), *y2 = malloc(sizeof(T) * (size_t)(ny + 1));\
    T *dx1 = malloc(sizeof(T) * (size_t)(nx + 1)), *dx2 = malloc(sizeof(T) * (size_t)(nx + 1));\
    T *dw1 = malloc(sizeof(T) * (size_t)nw), *dw2 = malloc(sizeof(T) * (size_t)nw);    \
    T *db1 = malloc(sizeof(T) * (size_t)g->K), *db2 = malloc(sizeof(T) * (size_t)g->K);\
    for (int64_t i = 0; i < nx; i++) x[i] = (T)xd[i];                                   \
    for (int64_t i = 0; i < nw; i++) w[i] = (T)wd[i];                                   \
    for (int64_t i = 0; i < g->K; i++) b[i] = (T)bd[i];                                 \
    for (int64_t i = 0; i < ny; i++) dy[i] = (T)dyd[i];                                 \
    for (int64_t i = 0; i < ny; i++) y1[i] = y2[i] = (T)NAN;                            \
    for (int64_t i = 0; i < nx; i++) dx1[i] = dx2[i] = (T)NAN;                          \
    for (int64_t i = 0; i < nw; i++) dw1[i] = dw2[i] = (T)NAN;                          \
    for (int64_t i = 0; i < g->K; i++) db1[i] = db2[i] = (T)NAN;                        \
    const T *bp = use_bias ? b : NULL;                                                  \
    CHECK(fc_conv2d_fwd_direct_##SFX(g, x, w, bp, y1, 1) == FC_OK, "fwd status %s", desc);\
    CHECK(fc_conv2d_fwd_direct_##SFX(g, x, w, bp, y2, 2) == FC_OK, "fwd status %s", desc);\
    CHECK(fc_conv2d_bwd_data_direct_##SFX(g, dy, w, dx1, 1) == FC_OK, "bwd-data %s", desc);\
    CHECK(fc_conv2d_bwd_data_direct_##SFX(g, dy, w, dx2, 2) == FC_OK, "bwd-data %s", desc);\
    CHECK(fc_conv2d_bwd_weight_direct_##SFX(g, dy, x, dw1, db1, 1) == FC_OK, "bwd-w %s", desc);\
    CHECK(fc_conv2d_bwd_weight_direct_##SFX(g, dy, x, dw2, db2, 2) == FC_OK, "bwd-w %s", desc);\
    double sy = maxabs(yref, ny) + 1, sx = maxabs(dxref, nx) + 1;                       \
    double sw = maxabs(dwref, nw) + 1, sb = maxabs(dbref, g->K) + 1;                    \
    double ey = maxerr_##T(y1, yref, ny), ex = maxerr_##T(dx1, dxref, nx);              \
    double ew = maxerr_##T(dw1, dwref, nw), eb = maxerr_##T(db1, dbref, g->K);          \
    CHECK(ey <= TOL * sy, "%s fwd err %g (scale %g) %s", #SFX, ey, sy, desc);           \
    CHECK(ex <= TOL * sx, "%s bwd-data err %g (scale %g) %s", #SFX, ex, sx, desc);      \
    CHECK(ew <= TOL * sw, "%s bwd-weight err %g (scale %g) %s", #SFX, ew, sw, desc);    \
    CHECK(eb <= TOL * sb, "%s bias err %g (scale %g) %s", #SFX, eb, sb, desc);          \
    CHECK(memcmp(y1, y2, sizeof(T) * (size_t)ny) == 0, "%s fwd 1 vs 2 threads %s", #SFX, desc);\
    CHECK(memcmp(dx1, dx2, sizeof(T) * (size_t)nx) == 0, "%s bwd-data threads %s", #SFX, desc);\
    CHECK(memcmp(dw1, dw2, sizeof(T) * (size_t)nw) == 0, "%s bwd-w threads %s", #SFX, desc);\
    CHECK(memcmp(db1, db2, sizeof(T) * (size_t)g->K) == 0, "%s db threads %s", #SFX, desc);\
    /* db == NULL leaves dw identical */                                                \
    CHECK(fc_conv2d_bwd_weight_direct_##SFX(g, dy, x, dw2, NULL, 3) == FC_OK, "bwd-w nodb %s", desc);\
    CHECK(memcmp(dw1, dw2, sizeof(T) * (size_t)nw) == 0, "%s bwd-w db=NULL %s", #SFX, desc);\
    free(x); free(w); free(b); free(dy); free(y1); free(y2); free(dx1); free(dx2);      \
    free(dw1); free(dw2); free(db1); free(db2);                                         \
}
DEFINE_CASE(float, f32, 2e-5)
DEFINE_CASE(double, f64, 1e-12)

static void random_case(int iter)
{
    fc_conv_geom g;
    int64_t groups = rnd(1, 3);
    if (rnd(0, 4) == 0) groups = rnd(1, 6);   /* sometimes depthwise-ish */
    int64_t C = groups * rnd(1, 3), K = groups * rnd(1, 3);
    if (rnd(0, 5) == 0) { K = C; groups = C; }                     /* depthwise */
    int64_t N = rnd(0, 5) == 0 ? 0 : rnd(1, 3);
    int64_t H = rnd(1, 12), W = rnd(1, 40);
    if (rnd(0, 15) == 0) {          /* more samples, taller planes: sample parts and groups */
        N = rnd(4, 12);
        H = rnd(12, 40);
        W = rnd(14, 70);
    }
    int64_t R = rnd(1, 4), S = rnd(1, 7);
    if (rnd(0, 4) == 0) { R = 1; S = 1; }
    int64_t sh = rnd(1, 3), sw = rnd(1, 3), dh = rnd(1, 3), dwl = rnd(1, 3);
    if (rnd(0, 1)) { sw = 1; dwl = 1; }
    if (rnd(0, 7) == 0) { sh = rnd(1, 6); sw = rnd(1, 6); }   /* strides beyond the kernel */
    int64_t pt = rnd(0, 4), pb = rnd(0, 4), pl = rnd(0, 4), pr = rnd(0, 4);
    if (rnd(0, 3) == 0) pt = pb = pl = pr = 0;       /* x used in place (no slab copy) */
    fc_status st = fc_conv_geom_init(&g, N, C, H, W, K, R, S, groups, sh, sw, pt, pb, pl, pr, dh, dwl);
    if (st != FC_OK) return;   /* kernel larger than padded input: skip */
    char desc[256];
    snprintf(desc, sizeof desc,
             "[it %d N%lld C%lld H%lld W%lld K%lld R%lld S%lld G%lld s%lld,%lld d%lld,%lld p%lld,%lld,%lld,%lld P%lld Q%lld]",
             iter, (long long)N, (long long)C, (long long)H, (long long)W, (long long)K,
             (long long)R, (long long)S, (long long)groups, (long long)sh, (long long)sw,
             (long long)dh, (long long)dwl, (long long)pt, (long long)pb, (long long)pl,
             (long long)pr, (long long)g.P, (long long)g.Q);
    int64_t nx = N * C * H * W, ny = N * K * g.P * g.Q, nw = K * (C / groups) * R * S;
    double *x = malloc(sizeof(double) * (size_t)(nx + 1)), *w = malloc(sizeof(double) * (size_t)nw);
    double *b = malloc(sizeof(double) * (size_t)K), *dy = malloc(sizeof(double) * (size_t)(ny + 1));
    double *y = malloc(sizeof(double) * (size_t)(ny + 1)), *dx = malloc(sizeof(double) * (size_t)(nx + 1));
    double *dw = malloc(sizeof(double) * (size_t)nw), *db = malloc(sizeof(double) * (size_t)K);
    /* values exactly representable in float so both types see the same inputs */
    for (int64_t i = 0; i < nx; i++) x[i] = (double)(float)rndu();
    for (int64_t i = 0; i < nw; i++) w[i] = (double)(float)rndu();
    for (int64_t i = 0; i < K; i++) b[i] = (double)(float)rndu();
    for (int64_t i = 0; i < ny; i++) dy[i] = (double)(float)rndu();
    int use_bias = (int)rnd(0, 1);
    ref_fwd(&g, x, w, use_bias ? b : NULL, y);
    ref_bwd(&g, x, w, dy, dx, dw, db);
    run_case_f32(&g, x, w, b, dy, y, dx, dw, db, use_bias, desc);
    run_case_f64(&g, x, w, b, dy, y, dx, dw, db, use_bias, desc);
    free(x); free(w); free(b); free(dy); free(y); free(dx); free(dw); free(db);
}

static void error_cases(void)
{
    fc_conv_geom g;
    float x[64], w[64], y[64], dw[64], db[4];
    CHECK(fc_conv_geom_init(&g, 1, 2, 4, 4, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1) == FC_OK, "geom");
    CHECK(fc_conv2d_fwd_direct_f32(NULL, x, w, NULL, y, 1) == FC_EINVAL, "NULL geom");
    CHECK(fc_conv2d_fwd_direct_f32(&g, NULL, w, NULL, y, 1) == FC_EINVAL, "NULL x");
    CHECK(fc_conv2d_fwd_direct_f32(&g, x, NULL, NULL, y, 1) == FC_EINVAL, "NULL w");
    CHECK(fc_conv2d_fwd_direct_f32(&g, x, w, NULL, NULL, 1) == FC_EINVAL, "NULL y");
    CHECK(fc_conv2d_bwd_data_direct_f32(&g, NULL, w, x, 1) == FC_EINVAL, "NULL dy");
    CHECK(fc_conv2d_bwd_data_direct_f32(&g, y, NULL, x, 1) == FC_EINVAL, "NULL w");
    CHECK(fc_conv2d_bwd_data_direct_f32(&g, y, w, NULL, 1) == FC_EINVAL, "NULL dx");
    CHECK(fc_conv2d_bwd_weight_direct_f32(&g, NULL, x, dw, db, 1) == FC_EINVAL, "NULL dy");
    CHECK(fc_conv2d_bwd_weight_direct_f32(&g, y, NULL, dw, db, 1) == FC_EINVAL, "NULL x");
    CHECK(fc_conv2d_bwd_weight_direct_f32(&g, y, x, NULL, db, 1) == FC_EINVAL, "NULL dw");
    fc_conv_geom bad = g;
    bad.groups = 3;
    CHECK(fc_conv2d_fwd_direct_f32(&bad, x, w, NULL, y, 1) == FC_EINVAL, "bad groups");
    bad = g; bad.stride_w = 0;
    CHECK(fc_conv2d_bwd_data_direct_f32(&bad, y, w, x, 1) == FC_EINVAL, "bad stride");
    bad = g; bad.P = 0;
    CHECK(fc_conv2d_bwd_weight_direct_f32(&bad, y, x, dw, db, 1) == FC_EINVAL, "bad P");
    /* nthreads <= 0 is treated as 1 */
    CHECK(fc_conv2d_fwd_direct_f32(&g, x, w, NULL, y, 0) == FC_OK, "nthreads 0");
    /* N == 0: nothing read, dw and db zeroed */
    CHECK(fc_conv_geom_init(&g, 0, 2, 4, 4, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1) == FC_OK, "geom0");
    CHECK(fc_conv2d_fwd_direct_f32(&g, NULL, w, NULL, NULL, 2) == FC_OK, "N=0 fwd");
    CHECK(fc_conv2d_bwd_data_direct_f32(&g, NULL, w, NULL, 2) == FC_OK, "N=0 bwd-data");
    for (int i = 0; i < 18; i++) dw[i] = 1.0f;
    db[0] = db[1] = 1.0f;
    CHECK(fc_conv2d_bwd_weight_direct_f32(&g, NULL, NULL, dw, db, 2) == FC_OK, "N=0 bwd-w");
    int zero = 1;
    for (int i = 0; i < 18; i++) zero &= dw[i] == 0.0f;
    CHECK(zero && db[0] == 0.0f && db[1] == 0.0f, "N=0 zeroes dw, db");
}

/* Single-thread timings use this thread's CPU time, which is robust to a
 * busy machine; multi-thread ones use wall time. */
static int use_cpu_clock = 0;
static double now(void)
{
    struct timespec ts;
    clock_gettime(use_cpu_clock ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void bench(int nthreads)
{
    fc_conv_geom g;
    fc_conv_geom_init(&g, 8, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1);
    int64_t nx = 8 * 64 * 56 * 56, ny = nx, nw = 64 * 64 * 9;
    float *x = malloc(sizeof(float) * (size_t)nx), *w = malloc(sizeof(float) * (size_t)nw);
    float *y = malloc(sizeof(float) * (size_t)ny), *dx = malloc(sizeof(float) * (size_t)nx);
    float *dw = malloc(sizeof(float) * (size_t)nw), *b = malloc(sizeof(float) * 64);
    for (int64_t i = 0; i < nx; i++) x[i] = (float)rndu();
    for (int64_t i = 0; i < nw; i++) w[i] = (float)rndu();
    for (int i = 0; i < 64; i++) b[i] = (float)rndu();
    double flops = 2.0 * 8 * 64 * 64 * 9 * 56 * 56;
    const char *names[3] = {"fwd", "bwd-data", "bwd-weight"};
    use_cpu_clock = nthreads == 1;
    for (int which = 0; which < 3; which++) {
        double best = 1e30;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = now();
            if (which == 0) fc_conv2d_fwd_direct_f32(&g, x, w, b, y, nthreads);
            else if (which == 1) fc_conv2d_bwd_data_direct_f32(&g, y, w, dx, nthreads);
            else fc_conv2d_bwd_weight_direct_f32(&g, y, x, dw, b, nthreads);
            double t = now() - t0;
            if (t < best) best = t;
        }
        printf("f32 %-10s N=8 C=64 56x56 K=64 3x3 pad1, %d thread(s): %.1f ms, %.2f GFLOP/s%s\n",
               names[which], nthreads, best * 1e3, flops / best * 1e-9,
               use_cpu_clock ? " (thread CPU time)" : " (wall time)");
    }
    free(x); free(w); free(y); free(dx); free(dw); free(b);
}

/* inf / NaN in x elements that no output window reads (rows and columns cut
 * off by the stride, gaps between windows): dw must be finite and equal to
 * dw for the same x with those elements zero. */
#define DEFINE_UNREAD(T, SFX)                                                          \
static void unread_case_##SFX(int64_t W, int64_t S, int64_t stride, int64_t pad, T bad)  \
{                                                                                      \
    fc_conv_geom g;                                                                    \
    if (fc_conv_geom_init(&g, 2, 2, W, W, 5, S, S, 1, stride, stride, pad, pad, pad, pad, \
                          1, 1) != FC_OK) return;                                      \
    int64_t nx = g.N * g.C * g.H * g.W, ny = g.N * g.K * g.P * g.Q;                    \
    int64_t nw = g.K * g.C * g.R * g.S;                                                \
    T *x = malloc(sizeof(T) * (size_t)nx), *x0 = malloc(sizeof(T) * (size_t)nx);       \
    T *dy = malloc(sizeof(T) * (size_t)ny);                                            \
    T *dw = malloc(sizeof(T) * (size_t)nw), *dw0 = malloc(sizeof(T) * (size_t)nw);     \
    T db[5], db0[5];                                                                   \
    char *rd = calloc((size_t)(g.H * g.W), 1);                                         \
    for (int64_t p = 0; p < g.P; p++)                                                  \
        for (int64_t q = 0; q < g.Q; q++)                                              \
            for (int64_t r = 0; r < g.R; r++)                                          \
                for (int64_t s = 0; s < g.S; s++) {                                    \
                    int64_t h = p * stride - pad + r, v = q * stride - pad + s;        \
                    if (h >= 0 && h < g.H && v >= 0 && v < g.W) rd[h * g.W + v] = 1;  \
                }                                                                      \
    for (int64_t i = 0; i < nx; i++) {                                                 \
        x0[i] = rd[i % (g.H * g.W)] ? (T)rndu() : (T)0;                                \
        x[i] = rd[i % (g.H * g.W)] ? x0[i] : bad;                                      \
    }                                                                                  \
    for (int64_t i = 0; i < ny; i++) dy[i] = (T)rndu();                                \
    CHECK(fc_conv2d_bwd_weight_direct_##SFX(&g, dy, x, dw, db, 2) == FC_OK, "unread st"); \
    CHECK(fc_conv2d_bwd_weight_direct_##SFX(&g, dy, x0, dw0, db0, 1) == FC_OK, "unread st"); \
    CHECK(memcmp(dw, dw0, sizeof(T) * (size_t)nw) == 0,                                \
          "%s unread inf/NaN reached dw (W %lld S %lld stride %lld pad %lld)", #SFX,     \
          (long long)W, (long long)S, (long long)stride, (long long)pad);              \
    free(x); free(x0); free(dy); free(dw); free(dw0); free(rd);                        \
}
DEFINE_UNREAD(float, f32)
DEFINE_UNREAD(double, f64)

static void unread_cases(void)
{
    const int64_t shapes[][4] = {   /* W, S, stride, pad */
        {10, 3, 2, 0}, {42, 3, 2, 0}, {26, 2, 3, 0}, {38, 7, 2, 0}, {40, 3, 4, 1},
        {7, 2, 3, 0}, {70, 5, 2, 0}, {35, 1, 2, 0},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int64_t *t = shapes[i];
        unread_case_f32(t[0], t[1], t[2], t[3], INFINITY);
        unread_case_f32(t[0], t[1], t[2], t[3], NAN);
        unread_case_f64(t[0], t[1], t[2], t[3], -INFINITY);
        unread_case_f64(t[0], t[1], t[2], t[3], NAN);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "bench") == 0) {
        printf("avx2 available: %d\n", fc_cpu_has_avx2());
        bench(1);
        if (argc < 3 || strcmp(argv[2], "1") != 0) bench(2);
        return 0;
    }
    error_cases();
    int iters = argc > 1 ? atoi(argv[1]) : 400;
    const int prev = fc_isa_level();
    int levels = 0;
    for (int lv = FC_ISA_GENERIC; lv <= FC_ISA_AVX512; lv++) {
        if (fc_set_isa(lv) != lv) continue;     /* not on this CPU */
        levels++;
        for (int i = 0; i < iters; i++) random_case(i);
        unread_cases();
    }
    fc_set_isa(prev);
    if (n_fail) { printf("%d failures\n", n_fail); return 1; }
    printf("all %d random cases OK under %d SIMD variant(s)\n", iters, levels);
    return 0;
}
