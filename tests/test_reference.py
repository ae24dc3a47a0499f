"""Tests of the NumPy reference (fastconv.reference), the oracle for every other test.

Three kinds of evidence:

1. hand-worked examples: small inputs whose outputs were computed on paper and
   are written literally below (the working is in the comments);
2. float64 central-difference gradient checks of every backward function, and
   the adjoint identity <im2col(x), c> == <x, col2im(c)>;
3. if PyTorch is installed, agreement with torch on random shapes (torch is a
   test oracle only, never a dependency).

Plus the argument checks: bad input raises the right exception with a clear message.
"""

import numpy as np
import pytest

from fastconv import reference as ref

A = np.array


def img(a):
    """A (1, 1, H, W) float64 image from a nested list."""
    return np.asarray(a, dtype=np.float64)[None, None]


# x3 = [[1, 2, 3],
#       [4, 5, 6],
#       [7, 8, 9]]      w2 = [[1, 2],
#                             [3, 4]]
X3 = img([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
W2 = img([[1, 2], [3, 4]])


# ---------------------------------------------------------------------------
# hand-worked convolution examples
# ---------------------------------------------------------------------------


def test_conv2d_plain():
    # y[p,q] = 1*x[p,q] + 2*x[p,q+1] + 3*x[p+1,q] + 4*x[p+1,q+1]
    # y[0,0] = 1 + 4 + 12 + 20 = 37, y[0,1] = 2 + 6 + 15 + 24 = 47,
    # y[1,0] = 4 + 10 + 21 + 32 = 67, y[1,1] = 5 + 12 + 24 + 36 = 77
    y = ref.conv2d(X3, W2)
    np.testing.assert_array_equal(y, img([[37, 47], [67, 77]]))
    yb = ref.conv2d(X3, W2, b=A([1.0]))
    np.testing.assert_array_equal(yb, img([[38, 48], [68, 78]]))


def test_conv2d_stride2_padding1():
    # padded 5x5 input, windows start at padded rows/cols 0 and 2; P = floor((3+2-1-1)/2)+1 = 2
    # (0,0): [[0,0],[0,1]] -> 4*1 = 4        (0,1): [[0,0],[2,3]] -> 3*2 + 4*3 = 18
    # (1,0): [[0,4],[0,7]] -> 2*4 + 4*7 = 36  (1,1): [[5,6],[8,9]] -> 77
    y = ref.conv2d(X3, W2, stride=2, padding=1)
    np.testing.assert_array_equal(y, img([[4, 18], [36, 77]]))


def test_conv2d_dilation2():
    # dilated kernel spans 3x3 and touches the corners 1, 3, 7, 9:
    # 1*1 + 2*3 + 3*7 + 4*9 = 64
    y = ref.conv2d(X3, W2, dilation=2)
    np.testing.assert_array_equal(y, img([[64]]))


def test_conv2d_same_even_kernel_pads_bottom_right():
    # 2x2 kernel: one row/column of padding in total, all of it at the bottom/right:
    #   1 2 3 0
    #   4 5 6 0
    #   7 8 9 0
    #   0 0 0 0
    # (0,2): [[3,0],[6,0]] -> 3 + 18 = 21   (1,2): [[6,0],[9,0]] -> 6 + 27 = 33
    # (2,0): [[7,8],[0,0]] -> 7 + 16 = 23   (2,1): [[8,9],[0,0]] -> 8 + 18 = 26   (2,2): 9
    y = ref.conv2d(X3, W2, padding="same")
    np.testing.assert_array_equal(y, img([[37, 47, 21], [67, 77, 33], [23, 26, 9]]))
    np.testing.assert_array_equal(ref.conv2d(X3, W2, padding="valid"), ref.conv2d(X3, W2))


def test_conv2d_groups2():
    # C=4 one-pixel channels [1, 2, 3, 4], K=2, groups=2, 1x1 kernels, w = [[1, 10], [100, 1000]]
    # output 0 sees channels 0,1: 1*1 + 10*2 = 21; output 1 sees channels 2,3: 100*3 + 1000*4 = 4300
    x = A([1.0, 2, 3, 4]).reshape(1, 4, 1, 1)
    w = A([[1.0, 10], [100, 1000]]).reshape(2, 2, 1, 1)
    y = ref.conv2d(x, w, groups=2)
    np.testing.assert_array_equal(y.ravel(), [21, 4300])
    # with groups=1 the same numbers would need a (2, 4) weight; check it mixes all four
    w1 = A([[1.0, 10, 0, 0], [0, 0, 100, 1000]]).reshape(2, 4, 1, 1)
    np.testing.assert_array_equal(ref.conv2d(x, w1), y)


def test_conv2d_backward_hand():
    # y = conv(X3, W2), dy = ones(2, 2):
    # db = 4; dw[r,s] = sum of the 2x2 block of x starting at (r,s):
    #   dw = [[1+2+4+5, 2+3+5+6], [4+5+7+8, 5+6+8+9]] = [[12, 16], [24, 28]]
    # dx[h,w] = sum of the weights that touch (h,w):
    #   [[1, 1+2, 2], [1+3, 1+2+3+4, 2+4], [3, 3+4, 4]]
    dy = np.ones((1, 1, 2, 2))
    dx, dw, db = ref.conv2d_backward(dy, X3, W2)
    np.testing.assert_array_equal(db, [4])
    np.testing.assert_array_equal(dw, img([[12, 16], [24, 28]]))
    np.testing.assert_array_equal(dx, img([[1, 3, 2], [4, 10, 6], [3, 7, 4]]))
    dx2, dw2, db2 = ref.conv2d_backward(dy, X3, W2, need_dx=False, need_db=False)
    assert dx2 is None and db2 is None
    np.testing.assert_array_equal(dw2, dw)


def test_conv2d_backward_hand_stride2_padding1():
    # dy = ones(2, 2) at stride 2, padding 1: each padded window gets the whole kernel,
    # the windows do not overlap, and the padding ring is cropped away:
    #   padded dxp = [[1,2,1,2,0],[3,4,3,4,0],[1,2,1,2,0],[3,4,3,4,0],[0,...]] -> dx = dxp[1:4, 1:4]
    dx, dw, db = ref.conv2d_backward(np.ones((1, 1, 2, 2)), X3, W2, stride=2, padding=1)
    np.testing.assert_array_equal(dx, img([[4, 3, 4], [2, 1, 2], [4, 3, 4]]))
    # dw[r,s] = sum over the 4 windows of the element at offset (r,s):
    # (0,0): 0+0+0+5 = 5  (0,1): 0+0+4+6 = 10  (1,0): 0+2+0+8 = 10  (1,1): 1+3+7+9 = 20
    np.testing.assert_array_equal(dw, img([[5, 10], [10, 20]]))
    np.testing.assert_array_equal(db, [4])


# ---------------------------------------------------------------------------
# im2col / col2im
# ---------------------------------------------------------------------------


def test_im2col_3x3():
    # row r*S + s holds x[p + r, q + s] for the 4 windows in order p*Q + q
    cols = ref.im2col(X3, 2)
    expected = A([[1, 2, 4, 5], [2, 3, 5, 6], [4, 5, 7, 8], [5, 6, 8, 9]], dtype=float)
    np.testing.assert_array_equal(cols, expected[None])


def test_im2col_3x3_stride2_padding1():
    # windows of the padded input (see test_conv2d_stride2_padding1), flattened row-major
    # into columns: (0,0)=[0,0,0,1], (0,1)=[0,0,2,3], (1,0)=[0,4,0,7], (1,1)=[5,6,8,9]
    cols = ref.im2col(X3, 2, stride=2, padding=1)
    expected = A([[0, 0, 0, 5], [0, 0, 4, 6], [0, 2, 0, 8], [1, 3, 7, 9]], dtype=float)
    np.testing.assert_array_equal(cols, expected[None])
    # and the convolution is the matrix product with the flattened kernel
    np.testing.assert_array_equal(W2.reshape(1, 4) @ cols[0], ref.conv2d(X3, W2, stride=2, padding=1).reshape(1, 4))


def test_col2im_3x3_sums_overlaps():
    # every element is counted once per window that covers it
    x = ref.col2im(np.ones((1, 4, 4)), (3, 3), 2)
    np.testing.assert_array_equal(x, img([[1, 2, 1], [2, 4, 2], [1, 2, 1]]))
    # col2im(im2col(x)) = x * coverage
    np.testing.assert_array_equal(ref.col2im(ref.im2col(X3, 2), 3, 2), X3 * x)


def test_im2col_string_padding_like_conv():
    # "same" and "valid" mean what they mean for conv2d
    x = np.arange(2 * 5 * 4, dtype=np.float64).reshape(1, 2, 5, 4)
    np.testing.assert_array_equal(ref.im2col(x, 3, padding="same"), ref.im2col(x, 3, padding=1))
    np.testing.assert_array_equal(ref.im2col(x, 3, padding="valid"), ref.im2col(x, 3))


def test_im2col_multichannel_row_order():
    # row index is c*R*S + r*S + s
    x = np.arange(2 * 2 * 2, dtype=np.float64).reshape(1, 2, 2, 2)
    cols = ref.im2col(x, 2)  # one window
    np.testing.assert_array_equal(cols[0, :, 0], np.arange(8))


# ---------------------------------------------------------------------------
# max pooling
# ---------------------------------------------------------------------------


def test_max_pool_ties_take_first():
    y, idx = ref.max_pool2d(img([[1, 3], [3, 2]]), 2, return_indices=True)
    assert y.ravel().tolist() == [3] and idx.ravel().tolist() == [1]
    assert idx.dtype == np.int64


def test_max_pool_nan_propagates_first_nan():
    y, idx = ref.max_pool2d(img([[1, np.nan], [np.nan, 5]]), 2, return_indices=True)
    assert np.isnan(y).all() and idx.ravel().tolist() == [1]
    y, idx = ref.max_pool2d(img([[1, 2], [np.nan, 5]]), 2, return_indices=True)
    assert np.isnan(y).all() and idx.ravel().tolist() == [2]
    # a NaN after the maximum still wins
    y, idx = ref.max_pool2d(img([[9, 2], [3, np.nan]]), 2, return_indices=True)
    assert np.isnan(y).all() and idx.ravel().tolist() == [3]


def test_max_pool_all_neg_inf_never_selects_padding():
    # 2x2 of -inf, kernel 2, stride 2, padding 1: four windows, each holding exactly one
    # real element (the rest is padding); the index must point at it.
    x = img([[-np.inf, -np.inf], [-np.inf, -np.inf]])
    y, idx = ref.max_pool2d(x, 2, stride=2, padding=1, return_indices=True)
    assert np.all(y == -np.inf)
    np.testing.assert_array_equal(idx[0, 0], [[0, 1], [2, 3]])


def test_max_pool_padding_is_not_zero():
    # negative input, kernel 2, stride 1, padding 1 -> 3x3 output; padding never wins
    # (a zero padding would give 0 everywhere on the border).
    #   windows' real elements:  {-1} {-1,-2} {-2} / {-1,-3} all {-2,-4} / {-3} {-3,-4} {-4}
    x = img([[-1, -2], [-3, -4]])
    y, idx = ref.max_pool2d(x, 2, stride=1, padding=1, return_indices=True)
    np.testing.assert_array_equal(y, img([[-1, -1, -2], [-1, -1, -2], [-3, -3, -4]]))
    np.testing.assert_array_equal(idx[0, 0], [[0, 0, 1], [0, 0, 1], [2, 2, 3]])


def test_max_pool_ceil_mode():
    # 3x3, kernel 2, stride 2: floor gives one window; ceil gives 2x2, the last
    # windows hanging off the bottom/right (they start inside the input, so they count)
    y, idx = ref.max_pool2d(X3, 2, return_indices=True)
    np.testing.assert_array_equal(y, img([[5]]))
    np.testing.assert_array_equal(idx, [[[[4]]]])
    y, idx = ref.max_pool2d(X3, 2, ceil_mode=True, return_indices=True)
    np.testing.assert_array_equal(y, img([[5, 6], [8, 9]]))
    np.testing.assert_array_equal(idx[0, 0], [[4, 5], [7, 8]])


def test_max_pool_dilation_and_stride_default():
    # dilation 2: taps are the corners 1, 3, 7, 9
    y, idx = ref.max_pool2d(img([[1, 30, 3], [40, 50, 60], [7, 80, 9]]), 2, dilation=2, return_indices=True)
    assert y.ravel().tolist() == [9] and idx.ravel().tolist() == [8]
    # stride defaults to kernel_size: 4x4 -> 2x2 non-overlapping windows
    x = img(np.arange(16).reshape(4, 4))
    np.testing.assert_array_equal(ref.max_pool2d(x, 2), img([[5, 7], [13, 15]]))
    np.testing.assert_array_equal(ref.max_pool2d(x, 2, stride=2), ref.max_pool2d(x, 2))


def test_max_pool_backward_hand():
    # x = [1, 5, 2], kernel (1, 2), stride 1: both windows pick the 5 (idx 1); dy = [1, 2]
    x = img([[1, 5, 2]])
    y, idx = ref.max_pool2d(x, (1, 2), stride=1, return_indices=True)
    np.testing.assert_array_equal(idx.ravel(), [1, 1])
    dx = ref.max_pool2d_backward(img([[1, 2]]), idx, x.shape)
    np.testing.assert_array_equal(dx, img([[0, 3, 0]]))


def test_max_pool_window_only_padding_rejected():
    # H=1, kernel 2, dilation 2, padding 1: the taps of the only row-window are rows -1 and 1,
    # both padding; there is no element an index could point at.
    with pytest.raises(ValueError, match="covers only padding"):
        ref.max_pool2d(np.ones((1, 1, 1, 3)), 2, stride=1, padding=1, dilation=2)


# ---------------------------------------------------------------------------
# average pooling
# ---------------------------------------------------------------------------


def test_avg_pool_padding_count_include_pad():
    # X3, kernel 2, stride 2, padding 1 -> 2x2 windows of the padded 5x5 input.
    # sums: (0,0) 1, (0,1) 2+3 = 5, (1,0) 4+7 = 11, (1,1) 5+6+8+9 = 28
    # include pad: every window has 4 elements -> /4
    y = ref.avg_pool2d(X3, 2, stride=2, padding=1)
    np.testing.assert_array_equal(y, img([[0.25, 1.25], [2.75, 7]]))
    # exclude pad: real elements per window [[1, 2], [2, 4]]
    y = ref.avg_pool2d(X3, 2, stride=2, padding=1, count_include_pad=False)
    np.testing.assert_array_equal(y, img([[1, 2.5], [5.5, 7]]))


def test_avg_pool_ceil_mode_divisor():
    # x[h, w] = 4h + w + 1 (4x4), kernel 3, stride 2, padding 1, ceil_mode -> 3x3 output.
    # Window rows in input coordinates: [-1, 2), [1, 4), [3, 6). The last one hangs past
    # the padded extent [-1, 5) and is clipped to [3, 5) for the divisor.
    # real rows: {0,1}, {1,2,3}, {3}; same for columns.
    # sums: [[14, 30, 12], [57, 99, 36], [27, 45, 16]]
    # include pad: rows per window [3, 3, 2] -> divisors [[9,9,6],[9,9,6],[6,6,4]]
    # exclude pad: rows per window [2, 3, 1] -> divisors [[4,6,2],[6,9,3],[2,3,1]]
    x = img(np.arange(1, 17).reshape(4, 4))
    y = ref.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True)
    expected = A([[14 / 9, 30 / 9, 2], [57 / 9, 11, 6], [4.5, 7.5, 4]])
    np.testing.assert_allclose(y[0, 0], expected, rtol=1e-15)
    y = ref.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
    np.testing.assert_array_equal(y[0, 0], [[3.5, 5, 6], [9.5, 11, 12], [13.5, 15, 16]])


def test_avg_pool_ceil_mode_no_padding():
    # X3, kernel 2, stride 2, ceil_mode: windows [[1,2,4,5], [3,6], [7,8], [9]]
    y = ref.avg_pool2d(X3, 2, ceil_mode=True)
    np.testing.assert_array_equal(y, img([[3, 4.5], [7.5, 9]]))


def test_avg_pool_backward_hand():
    # X3, kernel 2, stride 1, dy = ones: each element gets 1/4 per window covering it
    dx = ref.avg_pool2d_backward(np.ones((1, 1, 2, 2)), X3.shape, 2, stride=1)
    np.testing.assert_array_equal(dx, img([[0.25, 0.5, 0.25], [0.5, 1, 0.5], [0.25, 0.5, 0.25]]))
    # exclude pad, padding 1, stride 2 (see test_avg_pool_padding_count_include_pad):
    # divisors [[1,2],[2,4]]; element (0,0) alone in window (0,0) -> 1; (1,1) in window (1,1) -> 1/4
    dx = ref.avg_pool2d_backward(np.ones((1, 1, 2, 2)), X3.shape, 2, 2, 1, count_include_pad=False)
    np.testing.assert_array_equal(dx, img([[1, 0.5, 0.5], [0.5, 0.25, 0.25], [0.5, 0.25, 0.25]]))


# ---------------------------------------------------------------------------
# relu
# ---------------------------------------------------------------------------


def test_relu_hand():
    np.testing.assert_array_equal(ref.relu(A([-1.0, 0.0, 2.0, np.nan])), [0, 0, 2, np.nan])
    np.testing.assert_array_equal(ref.relu_backward(A([1.0, 2, 3, 4]), A([-1.0, 0, 2, 5])), [0, 0, 3, 4])
    x32 = A([[-1.0, 3.0]], dtype=np.float32)
    assert ref.relu(x32).dtype == np.float32
    assert ref.relu_backward(x32, x32).dtype == np.float32


# ---------------------------------------------------------------------------
# dtype, layout, no writes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_dtypes(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 6, 5)).astype(dtype)
    w = rng.standard_normal((6, 2, 3, 3)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    y = ref.conv2d(x, w, b, padding=1, groups=2)
    assert y.dtype == dtype
    dx, dw, db = ref.conv2d_backward(y, x, w, padding=1, groups=2)
    assert dx.dtype == dw.dtype == db.dtype == dtype
    yp, idx = ref.max_pool2d(x, 2, return_indices=True)
    assert yp.dtype == dtype and idx.dtype == np.int64
    assert ref.max_pool2d_backward(yp, idx, x.shape).dtype == dtype
    ya = ref.avg_pool2d(x, 2)
    assert ya.dtype == dtype
    assert ref.avg_pool2d_backward(ya, x.shape, 2).dtype == dtype
    cols = ref.im2col(x, 3)
    assert cols.dtype == dtype and ref.col2im(cols, (6, 5), 3).dtype == dtype


def test_any_layout_same_result_and_inputs_untouched():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 7, 6))
    w = rng.standard_normal((4, 3, 3, 2))
    y = ref.conv2d(x, w, stride=(2, 1), padding=1)
    # Fortran order, negative strides, read-only
    xf = np.asfortranarray(x)
    xr = x[:, :, ::-1, ::-1].copy()[:, :, ::-1, ::-1]
    for xx in (xf, xr):
        xx.flags.writeable = False
        np.testing.assert_allclose(ref.conv2d(xx, w, stride=(2, 1), padding=1), y, rtol=1e-12, atol=1e-12)
    x0, w0 = x.copy(), w.copy()
    ref.conv2d_backward(y, x, w, stride=(2, 1), padding=1)
    ref.max_pool2d(x, 2, return_indices=True)
    ref.avg_pool2d(x, 2)
    ref.im2col(x, 2)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)


# ---------------------------------------------------------------------------
# finite-difference gradient checks (float64, central differences)
# ---------------------------------------------------------------------------


def numerical_grad(f, a, eps=1e-6):
    """d f / d a for scalar f, by central differences (a is modified in place and restored)."""
    g = np.zeros_like(a)
    flat, gflat = a.reshape(-1), g.reshape(-1)  # views of a and g
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return g


CONV_GRAD_CASES = [
    # (N, C, H, W, K, R, S, stride, padding, dilation, groups)
    (2, 2, 5, 4, 3, 3, 2, 1, 0, 1, 1),
    (1, 4, 6, 5, 4, 3, 3, (2, 1), (1, 2), 1, 2),
    (1, 3, 7, 6, 2, 2, 3, 1, "same", (2, 1), 1),
    (2, 2, 6, 6, 2, 3, 3, 2, 1, 2, 2),
]


@pytest.mark.parametrize("case", CONV_GRAD_CASES)
def test_conv2d_backward_numerical(case):
    N, C, H, W, K, R, S, stride, padding, dilation, groups = case
    rng = np.random.default_rng(2)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((K, C // groups, R, S))
    b = rng.standard_normal(K)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    g = rng.standard_normal(ref.conv2d(x, w, b, **kw).shape)

    def loss():
        return float(np.sum(ref.conv2d(x, w, b, **kw) * g))

    dx, dw, db = ref.conv2d_backward(g, x, w, **kw)
    np.testing.assert_allclose(dx, numerical_grad(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dw, numerical_grad(loss, w), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(db, numerical_grad(loss, b), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "kernel, stride, padding, dilation, ceil_mode",
    [(2, None, 0, 1, False), (3, 2, 1, 1, True), ((2, 3), (1, 2), (1, 1), (2, 1), False), (3, 1, 1, 1, False)],
)
def test_max_pool_backward_numerical(kernel, stride, padding, dilation, ceil_mode):
    rng = np.random.default_rng(3)
    shape = (2, 2, 6, 5)
    # distinct values at least 0.1 apart: a 1e-6 nudge never changes which element wins
    x = rng.permutation(np.arange(np.prod(shape)) * 0.1).reshape(shape)
    kw = dict(stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    y, idx = ref.max_pool2d(x, kernel, return_indices=True, **kw)
    g = rng.standard_normal(y.shape)
    num = numerical_grad(lambda: float(np.sum(ref.max_pool2d(x, kernel, **kw) * g)), x)
    np.testing.assert_allclose(ref.max_pool2d_backward(g, idx, x.shape), num, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize(
    "kernel, stride, padding, ceil_mode",
    [(2, None, 0, False), (3, 2, 1, True), ((2, 3), (1, 2), (1, 1), False), (3, 2, 0, True)],
)
def test_avg_pool_backward_numerical(kernel, stride, padding, ceil_mode, count_include_pad):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 2, 6, 5))
    kw = dict(stride=stride, padding=padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    g = rng.standard_normal(ref.avg_pool2d(x, kernel, **kw).shape)
    num = numerical_grad(lambda: float(np.sum(ref.avg_pool2d(x, kernel, **kw) * g)), x)
    np.testing.assert_allclose(ref.avg_pool2d_backward(g, x.shape, kernel, **kw), num, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "kernel, stride, padding, dilation",
    [(2, 1, 0, 1), (3, 2, 1, 1), ((2, 3), (2, 1), (0, 2), (2, 1)), (1, 3, 0, 1)],
)
def test_col2im_is_adjoint_of_im2col(kernel, stride, padding, dilation):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 7, 6))
    cols = ref.im2col(x, kernel, stride, padding, dilation)
    c = rng.standard_normal(cols.shape)
    back = ref.col2im(c, (7, 6), kernel, stride, padding, dilation)
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(cols * c), np.sum(x * back), rtol=1e-12)


def test_relu_backward_numerical():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 4))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink
    g = rng.standard_normal(x.shape)
    num = numerical_grad(lambda: float(np.sum(ref.relu(x) * g)), x)
    np.testing.assert_allclose(ref.relu_backward(g, x), num, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------
# agreement with PyTorch (optional)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


TORCH_CONV_CASES = [
    # (N, C, H, W, K, R, S, stride, padding, dilation, groups)
    (2, 3, 8, 7, 4, 3, 3, 1, 1, 1, 1),
    (1, 4, 9, 9, 6, 3, 2, (2, 3), (1, 0), (1, 2), 2),
    (2, 6, 7, 8, 6, 3, 3, 1, "same", 2, 6),
    (1, 2, 6, 6, 3, 2, 2, 1, "same", 1, 1),
    (3, 4, 10, 5, 8, 1, 3, 2, "valid", 1, 4),
    (1, 3, 11, 11, 2, 5, 5, 3, 2, 1, 1),
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("case", TORCH_CONV_CASES)
def test_conv_matches_torch(torch, case):
    F = torch.nn.functional
    N, C, H, W, K, R, S, stride, padding, dilation, groups = case
    rng = np.random.default_rng(7)
    x, w, b = rng.standard_normal((N, C, H, W)), rng.standard_normal((K, C // groups, R, S)), rng.standard_normal(K)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y = ref.conv2d(x, w, b, **kw)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = F.conv2d(xt, wt, bt, **kw)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-10)
    dy = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(dy))
    dx, dw, db = ref.conv2d_backward(dy, x, w, **kw)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dw, wt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(db, bt.grad.numpy(), rtol=1e-10, atol=1e-10)


TORCH_POOL_CASES = [
    # (H, W, kernel, stride, padding, dilation, ceil_mode)
    (8, 8, 2, None, 0, 1, False),
    (7, 9, 3, 2, 1, 1, True),
    (7, 6, (2, 3), (1, 2), (1, 1), (2, 1), False),
    (5, 5, 3, 2, 1, 1, False),
    (6, 7, 2, 3, 1, 1, True),
    (9, 8, 3, 2, 1, 2, True),
]


@pytest.mark.parametrize("case", TORCH_POOL_CASES)
def test_max_pool_matches_torch(torch, case):
    F = torch.nn.functional
    H, W, kernel, stride, padding, dilation, ceil_mode = case
    rng = np.random.default_rng(8)
    # small integers: plenty of ties, whose first-maximum rule torch shares; some -inf
    x = rng.integers(-3, 4, (2, 3, H, W)).astype(np.float64)
    x[rng.random(x.shape) < 0.1] = -np.inf
    kw = dict(stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    y, idx = ref.max_pool2d(x, kernel, return_indices=True, **kw)
    xt = torch.tensor(x, requires_grad=True)
    yt, it = F.max_pool2d(xt, kernel, return_indices=True, **kw)
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(idx, it.numpy())
    dy = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(ref.max_pool2d_backward(dy, idx, x.shape), xt.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("case", [c for c in TORCH_POOL_CASES if c[5] == 1])
def test_avg_pool_matches_torch(torch, case, count_include_pad):
    F = torch.nn.functional
    H, W, kernel, stride, padding, _, ceil_mode = case
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, H, W))
    kw = dict(stride=stride, padding=padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    y = ref.avg_pool2d(x, kernel, **kw)
    xt = torch.tensor(x, requires_grad=True)
    yt = F.avg_pool2d(xt, kernel, **kw)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(dy))
    dx = ref.avg_pool2d_backward(dy, x.shape, kernel, **kw)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "H, W, kernel, stride, padding, dilation",
    [(5, 5, 2, 1, 0, 1), (7, 6, 3, 2, 1, 1), (8, 7, (2, 3), (1, 2), (2, 0), (2, 1)), (6, 6, 1, 2, 0, 1)],
)
def test_im2col_col2im_match_torch(torch, H, W, kernel, stride, padding, dilation):
    F = torch.nn.functional
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 3, H, W))
    cols = ref.im2col(x, kernel, stride=stride, padding=padding, dilation=dilation)
    np.testing.assert_array_equal(cols, F.unfold(torch.tensor(x), kernel, dilation, padding, stride).numpy())
    c = rng.standard_normal(cols.shape)
    expected = F.fold(torch.tensor(c), (H, W), kernel, dilation, padding, stride).numpy()
    np.testing.assert_allclose(ref.col2im(c, (H, W), kernel, stride=stride, padding=padding, dilation=dilation), expected, rtol=1e-12, atol=1e-12)


def test_relu_matches_torch(torch):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 4, 5))
    x[0, 0, :2] = [0.0, np.nan]
    np.testing.assert_array_equal(ref.relu(x), torch.relu(torch.tensor(x)).numpy())
    # the gradient at NaN is a convention (here dy * (NaN > 0) = 0; torch passes dy through)
    x[0, 0, 1] = -1.0
    dy = rng.standard_normal(x.shape)
    xt = torch.tensor(x, requires_grad=True)
    torch.relu(xt).backward(torch.tensor(dy))
    np.testing.assert_array_equal(ref.relu_backward(dy, x), xt.grad.numpy())


# ---------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------

X = np.zeros((1, 4, 5, 5))
WT = np.zeros((2, 4, 3, 3))


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: ref.conv2d(X[0], WT), ValueError, "x must be a 4-d array"),
        (lambda: ref.conv2d(X, WT[0]), ValueError, "w must be a 4-d array"),
        (lambda: ref.conv2d(X, np.zeros((2, 3, 3, 3))), ValueError, r"expected w.shape\[1\] == C/groups = 4"),
        (lambda: ref.conv2d(np.zeros((1, 3, 5, 5)), np.zeros((2, 1, 3, 3)), groups=2), ValueError, "not divisible by groups=2"),
        (lambda: ref.conv2d(X, np.zeros((3, 2, 3, 3)), groups=2), ValueError, "3 output channels.*groups=2"),
        (lambda: ref.conv2d(X, WT, stride=0), ValueError, "stride must be positive"),
        (lambda: ref.conv2d(X, WT, dilation=(1, 0)), ValueError, "dilation must be positive"),
        (lambda: ref.conv2d(X, WT, padding=-1), ValueError, "padding must be >= 0"),
        (lambda: ref.conv2d(X, WT, padding="same", stride=2), ValueError, 'padding="same" needs stride 1'),
        (lambda: ref.conv2d(X, WT, padding="full"), ValueError, "padding must be"),
        (lambda: ref.conv2d(X, np.zeros((2, 4, 7, 7))), ValueError, "larger than the padded input"),
        (lambda: ref.conv2d(X, WT, b=np.zeros(3)), ValueError, r"b must have shape \(2,\)"),
        (lambda: ref.conv2d(X, WT, algo="fft"), ValueError, "algo must be"),
        (lambda: ref.conv2d(X, WT, stride=1.5), TypeError, "stride must be an int"),
        (lambda: ref.conv2d(X, WT, groups=True), TypeError, "groups must be an int"),
        (lambda: ref.conv2d(X.astype(np.float32), WT), TypeError, "has dtype"),
        (lambda: ref.conv2d(X, WT, b=np.zeros(2, np.float32)), TypeError, "has dtype"),
        (lambda: ref.conv2d(X.astype(np.int64), WT), TypeError, "float32 or float64"),
        (lambda: ref.conv2d(X.tolist(), WT), TypeError, "numpy.ndarray"),
        (lambda: ref.conv2d_backward(np.zeros((1, 2, 4, 4)), X, WT), ValueError, r"dy must have shape \(1, 2, 3, 3\)"),
        (lambda: ref.conv2d_backward(np.zeros((1, 2, 3, 3), np.float32), X, WT), TypeError, "has dtype"),
        (lambda: ref.conv2d_backward(np.zeros((1, 2, 3, 3)), X, WT, algo=None), ValueError, "algo must be"),
        (lambda: ref.max_pool2d(X[0], 2), ValueError, "x must be a 4-d array"),
        (lambda: ref.max_pool2d(X, 2, padding=2), ValueError, "at most half"),
        (lambda: ref.max_pool2d(X, 0), ValueError, "kernel_size must be positive"),
        (lambda: ref.max_pool2d(X, 2, stride=0), ValueError, "stride must be positive"),
        (lambda: ref.max_pool2d(X, 2, padding=-1), ValueError, "padding must be >= 0"),
        (lambda: ref.max_pool2d(X, 6), ValueError, "larger than the padded input"),
        (lambda: ref.max_pool2d(X, 2, ceil_mode=1), TypeError, "ceil_mode must be a bool"),
        (lambda: ref.max_pool2d(X.astype(np.int32), 2), TypeError, "float32 or float64"),
        (lambda: ref.avg_pool2d(X, 3, padding=2), ValueError, "at most half"),
        (lambda: ref.avg_pool2d(X, (2, 2, 2)), ValueError, "kernel_size must be an int or a pair"),
        (lambda: ref.avg_pool2d_backward(np.zeros((1, 4, 3, 3)), X.shape, 2), ValueError, r"dy must have shape \(1, 4, 2, 2\)"),
        (lambda: ref.avg_pool2d_backward(np.zeros((1, 4, 2, 2)), (1, 4, 5), 2), ValueError, "x_shape must be a tuple of 4"),
        (lambda: ref.im2col(X, 2, padding=(1, -1)), ValueError, "padding must be >= 0"),
        (lambda: ref.im2col(X, 6), ValueError, "larger than the padded input"),
        (lambda: ref.col2im(np.zeros((1, 36, 8)), (5, 5), 3), ValueError, r"cols.shape\[2\] = 8 does not match the 3x3 = 9 windows"),
        (lambda: ref.col2im(np.zeros((1, 10, 9)), (5, 5), 3), ValueError, r"multiple of the kernel area 3\*3 = 9"),
        (lambda: ref.col2im(np.zeros((36, 9)), (5, 5), 3), ValueError, "cols must be a 3-d array"),
        (lambda: ref.relu(np.zeros(3, np.int64)), TypeError, "float32 or float64"),
        (lambda: ref.relu_backward(np.zeros(3), np.zeros(4)), ValueError, r"dy must have shape \(4,\)"),
        (lambda: ref.relu_backward(np.zeros(3), np.zeros(3, np.float32)), TypeError, "has dtype"),
    ],
)
def test_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_max_pool_backward_bad_idx():
    dy = np.ones((1, 4, 2, 2))
    idx = np.zeros((1, 4, 2, 2), dtype=np.int64)
    np.testing.assert_array_equal(ref.max_pool2d_backward(dy, idx.astype(np.int32), X.shape), ref.max_pool2d_backward(dy, idx, X.shape))
    np.testing.assert_array_equal(ref.max_pool2d_backward(dy, idx.astype(np.uint8), X.shape), ref.max_pool2d_backward(dy, idx, X.shape))
    with pytest.raises(TypeError, match="idx must be an integer array"):
        ref.max_pool2d_backward(dy, idx.astype(np.float64), X.shape)
    with pytest.raises(TypeError, match="idx must be an integer array"):
        ref.max_pool2d_backward(dy, idx.astype(bool), X.shape)
    with pytest.raises(ValueError, match=r"idx must have shape \(1, 4, 2, 2\)"):
        ref.max_pool2d_backward(dy, idx[:, :2], X.shape)
    with pytest.raises(ValueError, match=r"\[0, 25\)"):
        ref.max_pool2d_backward(dy, idx + 25, X.shape)
    with pytest.raises(ValueError, match=r"\[0, 25\)"):
        ref.max_pool2d_backward(dy, idx - 1, X.shape)
    with pytest.raises(ValueError, match=r"\[0, 25\)"):
        ref.max_pool2d_backward(dy, idx.astype(np.uint64) + 2**63, X.shape)
    with pytest.raises(ValueError, match=r"does not match x_shape \(1, 3, 5, 5\) in \(N, C\)"):
        ref.max_pool2d_backward(dy, idx, (1, 3, 5, 5))
    with pytest.raises(TypeError, match="x_shape must be a tuple of 4 ints"):
        ref.max_pool2d_backward(dy, idx, (1, 4, 5.0, 5))
    with pytest.raises(TypeError, match="idx must be a numpy.ndarray"):
        ref.max_pool2d_backward(dy, idx.tolist(), X.shape)
    with pytest.raises(TypeError, match="float32 or float64"):
        ref.max_pool2d_backward(dy.astype(np.int64), idx, X.shape)
