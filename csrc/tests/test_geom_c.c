/*
 * test_geom_c.c: stand-alone check of what every kernel shares:
 *  - the interval solver fc_interval (fc_internal.h): against brute force and
 *    against the four per-kernel solvers it replaced (same result, also where
 *    the interval is empty), and against 128-bit arithmetic at the ends of
 *    the int64 range;
 *  - the one geometry check, fc_conv_geom_check / fc_pool_geom_check (geom.c):
 *    every geometry fc_conv_geom_init / fc_pool_geom_init makes passes it; a
 *    field out of range is FC_EINVAL and a size that does not fit
 *    FC_EOVERFLOW, at the check and at every entry point (im2col and col2im
 *    ignore K and groups);
 *  - the ISA level (runtime.c): fc_isa_level, fc_set_isa (clamped), fc_isa_name;
 *  - the per-pass entry points fc_conv2d_{fwd,bwd_data,bwd_weight}_*: bitwise
 *    the kernel of the algorithm asked for, FC_EINVAL for an unknown one.
 * "isa" as argument only prints the ISA level's name (tools/ctests.sh runs it
 * under several FASTCONV_ISA values).
 *
 * Built and run by tools/ctests.sh (with and without OpenMP, then under
 * ASan + UBSan). By hand, from the repository root:
 *   gcc -std=c99 -O2 -Wall -Wextra -fopenmp -Icsrc csrc/tests/test_geom_c.c \
 *       csrc/[a-z]*.c -lm -o /tmp/tgc && /tmp/tgc
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fc_internal.h"

#define FC_TEST_SEED 0x2545F4914F6CDD1Dull
#include "fc_check.h"
static int64_t rnd(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rng_next() % (uint64_t)(hi - lo + 1));
}

/* ---- fc_interval ------------------------------------------------------------ */

/* The solver of conv_direct.c and conv_gemm.c before fc_interval. */
static void old_range_a(int64_t off, int64_t step, int64_t extent, int64_t count, int64_t *lo,
                        int64_t *hi)
{
    int64_t l = 0, h = count;
    if (off < 0) l = (-off + step - 1) / step;
    if (off >= extent) h = 0;
    else if ((extent - 1 - off) / step + 1 < count) h = (extent - 1 - off) / step + 1;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* The solver of im2col.c and pool.c before fc_interval. */
static void old_range_b(int64_t off, int64_t step, int64_t extent, int64_t count, int64_t *lo,
                        int64_t *hi)
{
    int64_t l = 0, h = count;
    if (off < 0) l = (-off + step - 1) / step;
    if (off + (count - 1) * step >= extent) h = off >= extent ? 0 : (extent - 1 - off) / step + 1;
    if (l > count) l = count;
    if (h < l) h = l;
    *lo = l;
    *hi = h;
}

static void test_interval_small(void)
{
    for (int64_t off = -40; off <= 40; off++)
        for (int64_t step = 1; step <= 7; step++)
            for (int64_t extent = 1; extent <= 25; extent++)
                for (int64_t count = 0; count <= 20; count++) {
                    int64_t lo, hi, la, ha, lb, hb;
                    fc_interval(off, step, extent, count, &lo, &hi);
                    old_range_a(off, step, extent, count, &la, &ha);
                    old_range_b(off, step, extent, count, &lb, &hb);
                    CHECK(lo == la && hi == ha && lo == lb && hi == hb,
                          "fc_interval(%lld, %lld, %lld, %lld) = [%lld, %lld), old [%lld, %lld) "
                          "[%lld, %lld)", (long long)off, (long long)step, (long long)extent,
                          (long long)count, (long long)lo, (long long)hi, (long long)la,
                          (long long)ha, (long long)lb, (long long)hb);
                    int ok = 0 <= lo && lo <= hi && hi <= count;
                    for (int64_t j = 0; j < count; j++) {
                        const int in = off + j * step >= 0 && off + j * step < extent;
                        ok &= in == (j >= lo && j < hi);
                    }
                    CHECK(ok, "fc_interval(%lld, %lld, %lld, %lld) = [%lld, %lld) vs brute force",
                          (long long)off, (long long)step, (long long)extent, (long long)count,
                          (long long)lo, (long long)hi);
                }
}

#ifdef __SIZEOF_INT128__
__extension__ typedef __int128 fc_i128;

/* The interval in 128-bit arithmetic (no overflow for any int64 input). */
static void ref_interval(int64_t off, int64_t step, int64_t extent, int64_t count, int64_t *lo,
                         int64_t *hi)
{
    fc_i128 l = 0, h = count;
    if (off < 0) l = (-(fc_i128)off + step - 1) / step;
    if (off >= extent) h = 0;
    else if (((fc_i128)extent - 1 - off) / step + 1 < h) h = ((fc_i128)extent - 1 - off) / step + 1;
    if (l > count) l = count;
    if (h < l) h = l;
    *lo = (int64_t)l;
    *hi = (int64_t)h;
}

/* A value near one of the interesting places of the int64 range. */
static int64_t edge_value(int positive)
{
    static const int64_t base[] = {0, 1, 2, 3, (int64_t)1 << 31, (int64_t)1 << 32,
                                   (int64_t)1 << 62, INT64_MAX / 2, INT64_MAX - 1, INT64_MAX};
    int64_t v = base[rng_next() % (sizeof base / sizeof base[0])];
    if (rng_next() % 3 == 0) v = (int64_t)(rng_next() >> 1);
    else if (v > 2 && rng_next() % 2) v -= (int64_t)(rng_next() % 3);
    if (!positive && rng_next() % 2) v = -v - (int64_t)(rng_next() % 2);   /* down to INT64_MIN */
    return v;
}

static void test_interval_edges(void)
{
    for (int i = 0; i < 200000; i++) {
        const int64_t off = edge_value(0);
        int64_t step = edge_value(1), extent = edge_value(1), count = edge_value(1);
        if (step < 1) step = 1;
        if (extent < 1) extent = 1;
        int64_t lo, hi, rl, rh;
        fc_interval(off, step, extent, count, &lo, &hi);
        ref_interval(off, step, extent, count, &rl, &rh);
        CHECK(lo == rl && hi == rh,
              "fc_interval(%lld, %lld, %lld, %lld) = [%lld, %lld), 128-bit [%lld, %lld)",
              (long long)off, (long long)step, (long long)extent, (long long)count,
              (long long)lo, (long long)hi, (long long)rl, (long long)rh);
    }
}
#else
static void test_interval_edges(void) {}
#endif

/* ---- geometry checks -------------------------------------------------------- */

/* Four distinct buffers of each type, larger than any small geometry below
 * needs (never read when the checks work). */
#define NBUF (1 << 15)
typedef struct {
    float *f[4];
    double *d[4];
    int64_t *idx;
} bufs;

static bufs bufs_new(void)
{
    bufs B;
    for (int i = 0; i < 4; i++) {
        B.f[i] = calloc(NBUF, sizeof(float));
        B.d[i] = calloc(NBUF, sizeof(double));
    }
    B.idx = calloc(NBUF, sizeof(int64_t));
    return B;
}

static void bufs_free(bufs *B)
{
    for (int i = 0; i < 4; i++) {
        free(B->f[i]);
        free(B->d[i]);
    }
    free(B->idx);
}

/* Status of every convolution entry point on g (all buffers given): 1 when
 * im2col and col2im give want_cols and all others want. */
static int conv_entries_give(const fc_conv_geom *g, fc_status want, fc_status want_cols,
                             const bufs *B)
{
    float *const *f = B->f;
    double *const *d = B->d;
    int ok = 1;
    ok &= fc_im2col_f32(g, f[0], f[1], 1) == want_cols;
    ok &= fc_col2im_f64(g, d[0], d[1], 1) == want_cols;
    for (int algo = FC_ALGO_DIRECT; algo <= FC_ALGO_WINOGRAD; algo++) {
        ok &= fc_conv2d_fwd_f32(g, algo, f[0], f[1], NULL, f[2], 1) == want;
        ok &= fc_conv2d_bwd_data_f64(g, algo, d[0], d[1], d[2], 1) == want;
        ok &= fc_conv2d_bwd_weight_f32(g, algo, f[0], f[1], f[2], NULL, 1) == want;
    }
    ok &= fc_conv2d_fwd_direct_f64(g, d[0], d[1], NULL, d[2], 2) == want;
    ok &= fc_conv2d_bwd_data_gemm_f32(g, f[0], f[1], f[2], 2) == want;
    ok &= fc_conv2d_bwd_weight_winograd_f64(g, d[0], d[1], d[2], d[3], 2) == want;
    return ok;
}

/* The same for the pooling entry points that check every window. */
static int pool_entries_give(const fc_pool_geom *g, fc_status want, const bufs *B)
{
    int ok = 1;
    ok &= fc_maxpool2d_fwd_f32(g, B->f[0], B->f[1], B->idx, 1) == want;
    ok &= fc_avgpool2d_fwd_f32(g, B->f[0], B->f[1], 1) == want;
    ok &= fc_avgpool2d_bwd_f32(g, B->f[0], B->f[1], 1) == want;
    return ok;
}

static void test_conv_geom(void)
{
    bufs B = bufs_new();
    int n_ok = 0;
    for (int i = 0; i < 20000; i++) {
        fc_conv_geom g;
        /* drawn in a fixed order (argument evaluation order is unspecified) */
        static const int64_t lim[16][2] = {{0, 2}, {1, 3}, {1, 9}, {1, 9}, {1, 3}, {1, 4},
                                           {1, 4}, {1, 2}, {1, 3}, {1, 3}, {0, 3}, {0, 3},
                                           {0, 3}, {0, 3}, {1, 3}, {1, 3}};
        int64_t v[16];
        for (int j = 0; j < 16; j++) v[j] = rnd(lim[j][0], lim[j][1]);
        const int64_t G = v[7], C = G * v[1];       /* C and K multiples of groups */
        const fc_status st = fc_conv_geom_init(&g, v[0], C, v[2], v[3], G * v[4], v[5], v[6], G,
                                               v[8], v[9], v[10], v[11], v[12], v[13], v[14],
                                               v[15]);
        if (st != FC_OK) {
            CHECK(st == FC_EINVAL, "init of a small geometry: status %d", (int)st);
            continue;
        }
        n_ok++;
        CHECK(fc_conv_geom_check(&g, 0) == FC_OK && fc_conv_geom_check(&g, FC_GEOM_IM2COL) == FC_OK,
              "a geometry fc_conv_geom_init made fails the check");
        /* one field out of range: FC_EINVAL at the check and every entry point
         * (but im2col and col2im, which do not read K and groups) */
        fc_conv_geom b = g;
        const int64_t which = rnd(0, 12);
        const int kg = which == 4 || which == 7 || which == 12;
        switch (which) {
        case 0: b.N = -1; break;
        case 1: b.C = 0; break;
        case 2: b.H = 0; break;
        case 3: b.W = -2; break;
        case 4: b.K = 0; break;
        case 5: b.R = 0; break;
        case 6: b.S = -1; break;
        case 7: b.groups = 0; break;
        case 8: b.stride_h = 0; break;
        case 9: b.dil_w = 0; break;
        case 10: b.pad_h = -1; break;
        case 11: b.Q = 0; break;
        default: b.groups = C + 1; break;     /* does not divide C */
        }
        CHECK(fc_conv_geom_check(&b, 0) == FC_EINVAL, "bad field not caught");
        CHECK(fc_conv_geom_check(&b, FC_GEOM_IM2COL) == (kg ? FC_OK : FC_EINVAL),
              "im2col check, field %d", (int)which);
        CHECK(conv_entries_give(&b, FC_EINVAL, kg ? FC_OK : FC_EINVAL, &B),
              "an entry point takes a bad field (%d)", (int)which);
    }
    CHECK(n_ok > 1000, "too few valid random geometries (%d)", n_ok);
    CHECK(conv_entries_give(NULL, FC_EINVAL, FC_EINVAL, &B), "NULL geometry");

    /* sizes that do not fit: FC_EOVERFLOW, from init, the check and the kernels */
    fc_conv_geom g;
    CHECK(fc_conv_geom_init(&g, (int64_t)1 << 40, 1 << 12, 1 << 12, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0,
                            0, 1, 1) == FC_EOVERFLOW, "init: x too large");
    CHECK(fc_conv_geom_init(&g, 1, 1, 4, 4, 1, 3, 3, 1, 1, 1, INT64_MAX, 1, 0, 0, 1, 1)
          == FC_EOVERFLOW, "init: pads overflow");
    CHECK(fc_conv_geom_init(&g, 1, 1, 4, 4, 1, 9, 3, 1, 1, 1, 0, 0, 0, 0, 1, 1) == FC_EINVAL,
          "init: kernel larger than the padded input");
    CHECK(fc_conv_geom_init(&g, 1, 1, 4, 4, 1, 3, 3, 1, 1, 1, -1, 0, 0, 0, 1, 1) == FC_EINVAL,
          "init: negative pad");
    CHECK(fc_conv_geom_init(&g, 1, 1, 4, 4, 1, 3, 3, 1, 1, 1, 0, 0, 0, -1, 1, 1) == FC_EINVAL,
          "init: negative pad_right");
    CHECK(fc_conv_geom_init(&g, 2, 2, 6, 6, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1) == FC_OK, "init");
    fc_conv_geom b = g;
    b.N = INT64_MAX / 4;
    CHECK(fc_conv_geom_check(&b, 0) == FC_EOVERFLOW && conv_entries_give(&b, FC_EOVERFLOW, FC_EOVERFLOW, &B), "hand-filled N too large");
    b = g;
    b.P = INT64_MAX / 2;
    CHECK(fc_conv_geom_check(&b, 0) == FC_EOVERFLOW, "hand-filled P too large");
    b = g;
    b.dil_h = INT64_MAX / 2;         /* (P-1)*stride + dil*(R-1) + 1 does not fit */
    CHECK(fc_conv_geom_check(&b, 0) == FC_EOVERFLOW, "hand-filled dilation too large");
    /* the batch's column matrix is asked for by im2col / col2im only */
    fc_conv_geom_init(&g, 1, 1, 1 << 10, 1 << 10, 1, 1 << 9, 1 << 9, 1, 1, 1, 0, 0, 0, 0, 1, 1);
    b = g;
    b.N = (int64_t)1 << 30;
    CHECK(fc_conv_geom_check(&b, 0) == FC_OK && fc_conv_geom_check(&b, FC_GEOM_IM2COL)
          == FC_EOVERFLOW, "column matrix of the batch");
    CHECK(fc_im2col_f32(&b, B.f[0], B.f[1], 1) == FC_EOVERFLOW, "im2col: column matrix too large");

    /* Winograd takes 3x3, stride 1, dilation 1 only */
    fc_conv_geom_init(&g, 1, 2, 6, 6, 2, 5, 5, 1, 1, 1, 2, 2, 2, 2, 1, 1);
    CHECK(fc_conv2d_fwd_winograd_f32(&g, B.f[0], B.f[1], NULL, B.f[2], 1) == FC_EINVAL
          && fc_conv2d_fwd_f32(&g, FC_ALGO_WINOGRAD, B.f[0], B.f[1], NULL, B.f[2], 1) == FC_EINVAL
          && fc_conv2d_fwd_f32(&g, FC_ALGO_GEMM, B.f[0], B.f[1], NULL, B.f[2], 1) == FC_OK,
          "winograd on a 5x5 geometry");
    bufs_free(&B);
}

static void test_pool_geom(void)
{
    bufs B = bufs_new();
    int n_ok = 0;
    for (int i = 0; i < 20000; i++) {
        fc_pool_geom g;
        static const int64_t lim[12][2] = {{0, 2}, {1, 3}, {1, 9}, {1, 9}, {1, 4}, {1, 4},
                                           {1, 3}, {1, 3}, {0, 2}, {0, 2}, {0, 1}, {0, 1}};
        int64_t v[12];
        for (int j = 0; j < 12; j++) v[j] = rnd(lim[j][0], lim[j][1]);
        const fc_status st = fc_pool_geom_init(&g, v[0], v[1], v[2], v[3], v[4], v[5], v[6],
                                               v[7], v[8], v[9], 1, 1, (int)v[10], (int)v[11]);
        if (st != FC_OK) {
            CHECK(st == FC_EINVAL, "pool init of a small geometry: status %d", (int)st);
            continue;
        }
        n_ok++;
        CHECK(fc_pool_geom_check(&g, 0) == FC_OK && fc_pool_geom_check(&g, FC_GEOM_WINDOWS)
              == FC_OK, "a pooling geometry fc_pool_geom_init made fails the check");
        fc_pool_geom b = g;
        switch (rnd(0, 7)) {
        case 0: b.N = -1; break;
        case 1: b.C = 0; break;
        case 2: b.H = 0; break;
        case 3: b.kw = 0; break;
        case 4: b.stride_h = 0; break;
        case 5: b.dil_w = 0; break;
        case 6: b.pad_w = -1; break;
        default: b.P = 0; break;
        }
        CHECK(fc_pool_geom_check(&b, 0) == FC_EINVAL, "bad pooling field not caught");
        CHECK(pool_entries_give(&b, FC_EINVAL, &B)
              && fc_maxpool2d_bwd_f32(&b, B.f[0], B.idx, B.f[1], 1) == FC_EINVAL,
              "a pooling entry point takes a bad field");
    }
    CHECK(n_ok > 1000, "too few valid random pooling geometries (%d)", n_ok);
    CHECK(pool_entries_give(NULL, FC_EINVAL, &B), "NULL pooling geometry");

    /* a window wholly in the padding or between elements: H=2, kernel 2,
     * dilation 3, padding 1 (taps at -1 and 2); init takes it, the kernels
     * that need a real element in every window do not */
    fc_pool_geom g;
    CHECK(fc_pool_geom_init(&g, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1, 3, 3, 0, 1) == FC_OK, "init");
    CHECK(fc_pool_geom_check(&g, 0) == FC_OK && fc_pool_geom_check(&g, FC_GEOM_WINDOWS)
          == FC_EINVAL, "empty window");
    CHECK(fc_maxpool2d_fwd_f32(&g, B.f[0], B.f[1], B.idx, 1) == FC_EINVAL, "max pool: empty window");
    CHECK(fc_pool_geom_init(&g, 1, 1, 4, 4, 2, 2, 1, 1, 2, 2, 1, 1, 0, 1) == FC_EINVAL,
          "init: pad more than half the kernel");
    CHECK(fc_pool_geom_init(&g, 1, 1, 4, 4, 3, 2, 1, 1, 0, 0, INT64_MAX, 1, 0, 1)
          == FC_EOVERFLOW, "init: dilated kernel does not fit");
    CHECK(fc_pool_geom_init(&g, 1, 1, 4, 4, 2, 2, 1, 1, 0, 0, INT64_MAX, 1, 0, 1)
          == FC_EINVAL, "init: dilated kernel larger than the input");
    CHECK(fc_pool_geom_init(&g, 1, 1, 4, 4, 2, 2, 1, 1, 0, 0, 1, 1, 0, 1) == FC_OK, "init");
    fc_pool_geom b = g;
    b.N = INT64_MAX / 8;
    CHECK(fc_pool_geom_check(&b, 0) == FC_EOVERFLOW && pool_entries_give(&b, FC_EOVERFLOW, &B),
          "hand-filled N too large");
    bufs_free(&B);
}

/* ---- ISA level -------------------------------------------------------------- */

static void test_isa(void)
{
    const int prev = fc_isa_level();
    const int best = fc_cpu_has_avx512() ? FC_ISA_AVX512 : fc_cpu_has_avx2() ? FC_ISA_AVX2
                                                                             : FC_ISA_GENERIC;
    CHECK(prev >= FC_ISA_GENERIC && prev <= best, "level %d outside [0, %d]", prev, best);
    CHECK(fc_set_isa(-7) == FC_ISA_GENERIC && fc_isa_level() == FC_ISA_GENERIC, "set below");
    CHECK(fc_set_isa(99) == best && fc_isa_level() == best, "set above");
    for (int lv = FC_ISA_GENERIC; lv <= FC_ISA_AVX512; lv++)
        CHECK(fc_set_isa(lv) == (lv < best ? lv : best), "set %d", lv);
    CHECK(strcmp(fc_isa_name(FC_ISA_GENERIC), "generic") == 0
          && strcmp(fc_isa_name(FC_ISA_AVX2), "avx2") == 0
          && strcmp(fc_isa_name(FC_ISA_AVX512), "avx512") == 0
          && strcmp(fc_isa_name(7), "unknown") == 0, "names");
    fc_set_isa(prev);
}

/* ---- the per-pass entry points -------------------------------------------- */

#define DEFINE_DISPATCH(T, SFX)                                                        \
static void dispatch_case_##SFX(const fc_conv_geom *g)                                 \
{                                                                                      \
    const int64_t nx = g->N * g->C * g->H * g->W, ny = g->N * g->K * g->P * g->Q;      \
    const int64_t nw = g->K * (g->C / g->groups) * g->R * g->S;                        \
    T *x = malloc(sizeof(T) * (size_t)nx), *w = malloc(sizeof(T) * (size_t)nw);        \
    T *b = malloc(sizeof(T) * (size_t)g->K), *dy = malloc(sizeof(T) * (size_t)ny);     \
    T *o1 = malloc(sizeof(T) * (size_t)(nx + ny + nw + g->K));                          \
    T *o2 = malloc(sizeof(T) * (size_t)(nx + ny + nw + g->K));                          \
    const size_t no = sizeof(T) * (size_t)(nx + ny + nw + g->K);                        \
    for (int64_t i = 0; i < nx; i++) x[i] = (T)rnd(-4, 4);                             \
    for (int64_t i = 0; i < nw; i++) w[i] = (T)rnd(-4, 4);                             \
    for (int64_t i = 0; i < ny; i++) dy[i] = (T)rnd(-4, 4);                            \
    for (int64_t i = 0; i < g->K; i++) b[i] = (T)rnd(-4, 4);                           \
    for (int algo = FC_ALGO_DIRECT; algo <= FC_ALGO_WINOGRAD; algo++) {                \
        fc_status s1, s2;                                                              \
        for (int pass = 0; pass < 3; pass++) {                                         \
            memset(o1, 0x5A, no);                                                      \
            memset(o2, 0x5A, no);                                                      \
            if (pass == 0) {                                                           \
                s1 = fc_conv2d_fwd_##SFX(g, algo, x, w, b, o1, 2);                     \
                s2 = algo == FC_ALGO_DIRECT ? fc_conv2d_fwd_direct_##SFX(g, x, w, b, o2, 2) \
                   : algo == FC_ALGO_GEMM ? fc_conv2d_fwd_gemm_##SFX(g, x, w, b, o2, 2)     \
                   : fc_conv2d_fwd_winograd_##SFX(g, x, w, b, o2, 2);                  \
            } else if (pass == 1) {                                                    \
                s1 = fc_conv2d_bwd_data_##SFX(g, algo, dy, w, o1, 2);                  \
                s2 = algo == FC_ALGO_DIRECT ? fc_conv2d_bwd_data_direct_##SFX(g, dy, w, o2, 2) \
                   : algo == FC_ALGO_GEMM ? fc_conv2d_bwd_data_gemm_##SFX(g, dy, w, o2, 2)     \
                   : fc_conv2d_bwd_data_winograd_##SFX(g, dy, w, o2, 2);               \
            } else {                                                                   \
                s1 = fc_conv2d_bwd_weight_##SFX(g, algo, dy, x, o1, o1 + nw, 2);       \
                s2 = algo == FC_ALGO_DIRECT                                            \
                         ? fc_conv2d_bwd_weight_direct_##SFX(g, dy, x, o2, o2 + nw, 2) \
                   : algo == FC_ALGO_GEMM                                              \
                         ? fc_conv2d_bwd_weight_gemm_##SFX(g, dy, x, o2, o2 + nw, 2)   \
                         : fc_conv2d_bwd_weight_winograd_##SFX(g, dy, x, o2, o2 + nw, 2); \
            }                                                                          \
            CHECK(s1 == FC_OK && s2 == FC_OK && memcmp(o1, o2, no) == 0,               \
                  #SFX " dispatch algo %d pass %d: status %d / %d or results differ",  \
                  algo, pass, (int)s1, (int)s2);                                       \
        }                                                                              \
    }                                                                                  \
    for (int bad = -1; bad <= 3; bad += 4) {                                           \
        memset(o1, 0x5A, no);                                                          \
        memcpy(o2, o1, no);                                                            \
        CHECK(fc_conv2d_fwd_##SFX(g, bad, x, w, b, o1, 1) == FC_EINVAL                 \
              && fc_conv2d_bwd_data_##SFX(g, bad, dy, w, o1, 1) == FC_EINVAL           \
              && fc_conv2d_bwd_weight_##SFX(g, bad, dy, x, o1, o1 + nw, 1) == FC_EINVAL \
              && memcmp(o1, o2, no) == 0, #SFX " unknown algo %d", bad);               \
    }                                                                                  \
    free(x); free(w); free(b); free(dy); free(o1); free(o2);                           \
}
DEFINE_DISPATCH(float, f32)
DEFINE_DISPATCH(double, f64)

static void test_dispatch(void)
{
    for (int i = 0; i < 60; i++) {
        fc_conv_geom g;
        static const int64_t lim[10][2] = {{1, 2}, {1, 3}, {1, 4}, {1, 12}, {1, 12}, {1, 4},
                                           {0, 2}, {0, 2}, {0, 2}, {0, 2}};
        int64_t v[10];
        for (int j = 0; j < 10; j++) v[j] = rnd(lim[j][0], lim[j][1]);
        const int64_t G = v[0];
        if (fc_conv_geom_init(&g, v[1], G * v[2], v[3], v[4], G * v[5], 3, 3, G, 1, 1, v[6], v[7],
                              v[8], v[9], 1, 1) != FC_OK)
            continue;
        if (i % 2) dispatch_case_f32(&g);
        else dispatch_case_f64(&g);
    }
    /* an empty batch: the batch buffers may be NULL, dw and db are zeroed */
    fc_conv_geom g;
    float w[18], dw[18], db[2];
    fc_conv_geom_init(&g, 0, 1, 5, 5, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1);
    for (int algo = FC_ALGO_DIRECT; algo <= FC_ALGO_WINOGRAD; algo++) {
        for (int i = 0; i < 18; i++) w[i] = dw[i] = 1.0f;
        db[0] = db[1] = 1.0f;
        CHECK(fc_conv2d_fwd_f32(&g, algo, NULL, w, NULL, NULL, 1) == FC_OK
              && fc_conv2d_bwd_data_f32(&g, algo, NULL, w, NULL, 1) == FC_OK
              && fc_conv2d_bwd_weight_f32(&g, algo, NULL, NULL, dw, db, 1) == FC_OK,
              "N == 0, algo %d", algo);
        int zero = db[0] == 0.0f && db[1] == 0.0f;
        for (int i = 0; i < 18; i++) zero &= dw[i] == 0.0f;
        CHECK(zero, "N == 0 zeroes dw and db, algo %d", algo);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "isa") == 0) {
        printf("%s\n", fc_isa_name(fc_isa_level()));
        return 0;
    }
    test_interval_small();
    test_interval_edges();
    test_conv_geom();
    test_pool_geom();
    test_isa();
    const int prev = fc_isa_level();
    for (int lv = FC_ISA_GENERIC; lv <= FC_ISA_AVX512; lv++)
        if (fc_set_isa(lv) == lv) test_dispatch();
    fc_set_isa(prev);
    printf("%d checks, %d failures\n", n_check, n_fail);
    return n_fail != 0;
}
