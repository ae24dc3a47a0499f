/*
 * geom.c: shape arithmetic and validation for convolution and pooling.
 *
 * Every kernel trusts the geometry it is given, so all checking happens here,
 * once, before any loop runs: extents positive, groups dividing the channel
 * counts, the output at least 1x1, and every buffer's element count
 * representable in int64 (products are formed with overflow checks).
 */
#include "fc_internal.h"

/* *out = a * b, or FC_EOVERFLOW when the product does not fit (a, b >= 0). */
static fc_status mul_checked(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0) return FC_EINVAL;
    if (a != 0 && b > INT64_MAX / a) return FC_EOVERFLOW;
    *out = a * b;
    return FC_OK;
}

/* Product of n non-negative extents, overflow-checked. */
static fc_status prod_checked(int n, const int64_t *v, int64_t *out)
{
    int64_t acc = 1;
    for (int i = 0; i < n; i++) {
        fc_status st = mul_checked(acc, v[i], &acc);
        if (st != FC_OK) return st;
    }
    *out = acc;
    return FC_OK;
}

/* Output extent floor((in + pad_total - dil*(k-1) - 1)/stride) + 1, overflow-checked. */
static fc_status conv_out(int64_t in, int64_t pad_total, int64_t dil, int64_t k, int64_t stride,
                          int64_t *out)
{
    int64_t span;
    fc_status st = mul_checked(dil, k - 1, &span);
    if (st != FC_OK) return st;
    if (in > INT64_MAX - pad_total) return FC_EOVERFLOW;
    int64_t num = in + pad_total - span - 1;
    if (num < 0) return FC_EINVAL;           /* kernel larger than the padded input */
    *out = num / stride + 1;
    return FC_OK;
}

fc_status fc_conv_geom_init(fc_conv_geom *g, int64_t N, int64_t C, int64_t H, int64_t W,
                            int64_t K, int64_t R, int64_t S, int64_t groups,
                            int64_t stride_h, int64_t stride_w,
                            int64_t pad_top, int64_t pad_bottom,
                            int64_t pad_left, int64_t pad_right,
                            int64_t dil_h, int64_t dil_w)
{
    if (g == NULL) return FC_EINVAL;
    if (N < 0 || C < 1 || H < 1 || W < 1 || K < 1 || R < 1 || S < 1 || groups < 1)
        return FC_EINVAL;
    if (stride_h < 1 || stride_w < 1 || dil_h < 1 || dil_w < 1) return FC_EINVAL;
    if (pad_top < 0 || pad_bottom < 0 || pad_left < 0 || pad_right < 0) return FC_EINVAL;
    if (C % groups != 0 || K % groups != 0) return FC_EINVAL;
    if (pad_top > INT64_MAX - pad_bottom || pad_left > INT64_MAX - pad_right) return FC_EOVERFLOW;

    int64_t P, Q;
    fc_status st = conv_out(H, pad_top + pad_bottom, dil_h, R, stride_h, &P);
    if (st != FC_OK) return st;
    st = conv_out(W, pad_left + pad_right, dil_w, S, stride_w, &Q);
    if (st != FC_OK) return st;

    /* Every buffer a kernel may index, in elements, must fit (times 8 bytes). */
    int64_t n_elems;
    const int64_t xs[4] = {N, C, H, W}, ys[4] = {N, K, P, Q};
    const int64_t ws[4] = {K, C / groups, R, S};
    const int64_t cs[5] = {C, R, S, P, Q};
    const int64_t *all[4] = {xs, ys, ws, cs};
    const int lens[4] = {4, 4, 4, 5};
    for (int i = 0; i < 4; i++) {
        st = prod_checked(lens[i], all[i], &n_elems);
        if (st != FC_OK) return st;
        if (n_elems > INT64_MAX / 8) return FC_EOVERFLOW;
    }
    /* Largest input coordinate touched: (P-1)*stride + dil*(R-1), relative to -pad. */
    int64_t t;
    if (mul_checked(P - 1, stride_h, &t) != FC_OK || t > INT64_MAX / 2) return FC_EOVERFLOW;
    if (mul_checked(Q - 1, stride_w, &t) != FC_OK || t > INT64_MAX / 2) return FC_EOVERFLOW;

    g->N = N; g->C = C; g->H = H; g->W = W;
    g->K = K; g->R = R; g->S = S; g->groups = groups;
    g->stride_h = stride_h; g->stride_w = stride_w;
    g->pad_h = pad_top; g->pad_w = pad_left;
    g->dil_h = dil_h; g->dil_w = dil_w;
    g->P = P; g->Q = Q;
    return FC_OK;
}

/* Pooling output extent, PyTorch's rule: with ceil_mode the division rounds up,
 * but the last window must start inside the input or the left padding. */
static fc_status pool_out(int64_t in, int64_t pad, int64_t dil, int64_t k, int64_t stride,
                          int ceil_mode, int64_t *out)
{
    int64_t span;
    fc_status st = mul_checked(dil, k - 1, &span);
    if (st != FC_OK) return st;
    if (pad > (INT64_MAX - in) / 2 || stride > INT64_MAX - (in + 2 * pad)) return FC_EOVERFLOW;
    /* num may be negative: with ceil_mode a window larger than the padded
     * input still yields one output when it starts inside it (as PyTorch). */
    int64_t num = in + 2 * pad - span - 1 + (ceil_mode ? stride - 1 : 0);
    if (num < 0) return FC_EINVAL;
    int64_t o = num / stride + 1;
    if (ceil_mode && (o - 1) * stride >= in + pad) o--;
    if (o < 1) return FC_EINVAL;
    *out = o;
    return FC_OK;
}

fc_status fc_pool_geom_init(fc_pool_geom *g, int64_t N, int64_t C, int64_t H, int64_t W,
                            int64_t kh, int64_t kw, int64_t stride_h, int64_t stride_w,
                            int64_t pad_h, int64_t pad_w, int64_t dil_h, int64_t dil_w,
                            int ceil_mode, int count_include_pad)
{
    if (g == NULL) return FC_EINVAL;
    if (N < 0 || C < 1 || H < 1 || W < 1 || kh < 1 || kw < 1) return FC_EINVAL;
    if (stride_h < 1 || stride_w < 1 || dil_h < 1 || dil_w < 1) return FC_EINVAL;
    if (pad_h < 0 || pad_w < 0) return FC_EINVAL;
    int64_t eh, ew;
    if (mul_checked(dil_h, kh - 1, &eh) != FC_OK || mul_checked(dil_w, kw - 1, &ew) != FC_OK)
        return FC_EOVERFLOW;
    /* Padding at most half the dilated kernel: every window then holds a real element. */
    if (pad_h > (eh + 1) / 2 || pad_w > (ew + 1) / 2) return FC_EINVAL;
    int64_t P, Q;
    fc_status st = pool_out(H, pad_h, dil_h, kh, stride_h, ceil_mode, &P);
    if (st != FC_OK) return st;
    st = pool_out(W, pad_w, dil_w, kw, stride_w, ceil_mode, &Q);
    if (st != FC_OK) return st;
    int64_t n_elems;
    const int64_t xs[4] = {N, C, H, W}, ys[4] = {N, C, P, Q};
    if ((st = prod_checked(4, xs, &n_elems)) != FC_OK) return st;
    if (n_elems > INT64_MAX / 8) return FC_EOVERFLOW;
    if ((st = prod_checked(4, ys, &n_elems)) != FC_OK) return st;
    if (n_elems > INT64_MAX / 8) return FC_EOVERFLOW;

    g->N = N; g->C = C; g->H = H; g->W = W;
    g->kh = kh; g->kw = kw;
    g->stride_h = stride_h; g->stride_w = stride_w;
    g->pad_h = pad_h; g->pad_w = pad_w;
    g->dil_h = dil_h; g->dil_w = dil_w;
    g->P = P; g->Q = Q;
    g->count_include_pad = count_include_pad ? 1 : 0;
    return FC_OK;
}
