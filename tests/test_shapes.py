"""Output sizes, ceil_mode and "same" padding against tables worked out by hand.

The native API and the reference share their shape arithmetic (fastconv/_args.py), so
comparing them cannot find a wrong rule; PyTorch can (tests/test_pool.py and
tests/test_reference.py, when torch is installed), and these tables can everywhere.
Each row's working is in its comment.
"""

import numpy as np
import pytest

import fastconv
from fastconv import reference as ref

CONV_ALGOS = ["im2col", "direct", "gemm"]

# Convolution: P = floor((H + 2p - d(k-1) - 1)/s) + 1
CONV_SIZES = [
    # (H, k, s, p, d, P)
    (5, 3, 1, 0, 1, 3),     # (5 - 2 - 1)/1 + 1 = 3
    (5, 3, 2, 1, 1, 3),     # (5 + 2 - 2 - 1)/2 = 2, + 1 = 3
    (6, 3, 2, 1, 1, 3),     # (6 + 2 - 3)/2 = 2.5 -> 2, + 1 = 3
    (7, 3, 2, 0, 1, 3),     # (7 - 3)/2 = 2, + 1 = 3
    (8, 3, 3, 1, 2, 2),     # (8 + 2 - 4 - 1)/3 = 5/3 -> 1, + 1 = 2
    (10, 4, 3, 2, 1, 4),    # (10 + 4 - 3 - 1)/3 = 10/3 -> 3, + 1 = 4
    (1, 1, 2, 0, 1, 1),     # (1 - 1)/2 = 0, + 1 = 1
    (9, 2, 4, 0, 3, 2),     # (9 - 3 - 1)/4 = 5/4 -> 1, + 1 = 2
    (4, 5, 1, 1, 1, 2),     # (4 + 2 - 4 - 1)/1 = 1, + 1 = 2
    (3, 3, 5, 0, 1, 1),     # (3 - 3)/5 = 0, + 1 = 1
]

# Kernels larger than the padded input: (H + 2p - d(k-1) - 1)/s + 1 < 1
CONV_TOO_BIG = [
    # (H, k, s, p, d)
    (4, 5, 1, 0, 1),        # (4 - 4 - 1) = -1 -> P = 0
    (5, 3, 1, 0, 3),        # dilated extent 7 > 5
    (2, 4, 2, 0, 1),        # (2 - 3 - 1)/2 = -1 -> P = 0
]


@pytest.mark.parametrize("H, k, s, p, d, P", CONV_SIZES)
def test_conv_output_size(H, k, s, p, d, P):
    # the rule along each axis: height from the table, width from the row's rule at W = H + 2
    Q = (H + 2 + 2 * p - d * (k - 1) - 1) // s + 1
    x = np.ones((1, 1, H, H + 2))
    w = np.ones((1, 1, k, k))
    kw = dict(stride=s, padding=p, dilation=d)
    assert ref.conv2d(x, w, **kw).shape == (1, 1, P, Q)
    for algo in CONV_ALGOS:
        assert fastconv.conv2d(x, w, algo=algo, **kw).shape == (1, 1, P, Q), algo
    assert fastconv.im2col(x, k, stride=s, padding=p, dilation=d).shape == (1, k * k, P * Q)


@pytest.mark.parametrize("H, k, s, p, d", CONV_TOO_BIG)
def test_conv_kernel_larger_than_padded_input_is_rejected(H, k, s, p, d):
    x = np.ones((1, 1, H, H))
    w = np.ones((1, 1, k, k))
    for api in (fastconv, ref):
        with pytest.raises(ValueError, match="larger than the padded input"):
            api.conv2d(x, w, stride=s, padding=p, dilation=d)


# "same": total padding d(k-1) per axis; the odd one extra goes at the bottom/right
SAME_PADDING = [
    # (k, d, top, bottom)
    (1, 1, 0, 0),           # total 0
    (2, 1, 0, 1),           # total 1: 0 top, 1 bottom
    (3, 1, 1, 1),           # total 2
    (4, 1, 1, 2),           # total 3
    (5, 1, 2, 2),           # total 4
    (3, 2, 2, 2),           # total 2*2 = 4
    (2, 3, 1, 2),           # total 3*1 = 3
    (4, 2, 3, 3),           # total 2*3 = 6
]


@pytest.mark.parametrize("k, d, top, bottom", SAME_PADDING)
def test_same_padding_size_and_placement(k, d, top, bottom):
    """A kernel that is 1 at tap (0, 0) and 0 elsewhere copies the padded input from the
    top-left corner: y[i, j] = x[i - top, j - left] (0 where that is padding). With
    the table's padding along the height and a kernel of width 1 along the width
    (padding 0 there), and then the transpose, this pins where the padding goes."""
    H, W = 7, 6
    x = np.arange(1.0, H * W + 1).reshape(1, 1, H, W)
    want = np.zeros((H, W))
    want[top:, :] = x[0, 0, : H - top, :]               # shifted down by `top` rows
    for shape, xx, ww in (((1, 1, k, 1), x, want), ((1, 1, 1, k), x.transpose(0, 1, 3, 2), want.T)):
        w = np.zeros(shape)
        w[0, 0, 0, 0] = 1.0
        kw = dict(padding="same", dilation=d)
        assert ref.conv2d(xx, w, **kw).shape == xx.shape
        np.testing.assert_array_equal(ref.conv2d(xx, w, **kw)[0, 0], ww)
        for algo in CONV_ALGOS:
            y = fastconv.conv2d(xx, w, algo=algo, **kw)
            assert y.shape == xx.shape, algo
            np.testing.assert_array_equal(y[0, 0], ww, err_msg=algo)
        # the gradient of x sees the same padding: dx = dy shifted back up by `top`
        dy = np.arange(1.0, xx.size + 1).reshape(xx.shape)
        dx = fastconv.conv2d_backward(dy, xx, w, **kw)[0]
        want_dx = np.zeros_like(dy)
        if xx is x:
            want_dx[..., : H - top, :] = dy[..., top:, :]
        else:
            want_dx[..., :, : H - top] = dy[..., :, top:]
        np.testing.assert_array_equal(dx, want_dx)
        np.testing.assert_array_equal(ref.conv2d_backward(dy, xx, w, **kw)[0], want_dx)
    assert top + bottom == d * (k - 1)


# Pooling (dilation d): floor mode P = floor((H + 2p - d(k-1) - 1)/s) + 1; ceil mode
# P = ceil((H + 2p - d(k-1) - 1)/s) + 1, less one when that last window would start in
# the right padding (at or after H + p): PyTorch's rule.
POOL_SIZES = [
    # (H, k, s, p, d, P floor, P ceil)
    (5, 2, 2, 0, 1, 2, 3),  # 3/2: floor 1 -> 2; ceil 2 -> 3, last start 4 < 5: kept
    (6, 2, 2, 0, 1, 3, 3),  # 4/2 = 2 -> 3 either way
    (7, 3, 2, 1, 1, 4, 4),  # 6/2 = 3 -> 4 either way
    (6, 3, 2, 1, 1, 3, 4),  # 5/2: floor 2 -> 3; ceil 3 -> 4, last start 6 < 6 + 1: kept
    (5, 2, 2, 1, 1, 3, 3),  # 5/2: floor 2 -> 3; ceil 3 -> 4, last start 6 >= 5 + 1: dropped
    (4, 3, 3, 1, 1, 2, 2),  # 3/3 = 1 -> 2 either way
    (7, 2, 3, 1, 1, 3, 3),  # 7/3: floor 2 -> 3; ceil 3 -> 4, last start 9 >= 8: dropped
    (8, 2, 3, 1, 1, 3, 3),  # 8/3: floor 2 -> 3; ceil 3 -> 4, last start 9 >= 9: dropped
    (10, 2, 3, 1, 1, 4, 4), # 10/3: floor 3 -> 4; ceil 4 -> 5, last start 12 >= 11: dropped
    (3, 2, 2, 0, 1, 1, 2),  # 1/2: floor 0 -> 1; ceil 1 -> 2, last start 2 < 3: kept
    (1, 2, 2, 1, 1, 1, 1),  # 1/2: floor 0 -> 1; ceil 1 -> 2, last start 2 >= 2: dropped
    (8, 3, 2, 1, 2, 3, 4),  # extent 5: 5/2: floor 2 -> 3; ceil 3 -> 4, last start 6 < 9: kept
    (7, 3, 2, 1, 2, 3, 3),  # extent 5: 4/2 = 2 -> 3 either way
]


@pytest.mark.parametrize("H, k, s, p, d, P_floor, P_ceil", POOL_SIZES)
def test_pool_output_size_and_ceil_mode(H, k, s, p, d, P_floor, P_ceil):
    x = np.random.default_rng(H * 100 + k * 10 + s).standard_normal((1, 2, H, H))
    for ceil_mode, P in ((False, P_floor), (True, P_ceil)):
        kw = dict(stride=s, padding=p, ceil_mode=ceil_mode)
        for api in (fastconv, ref):
            assert api.max_pool2d(x, k, dilation=d, **kw).shape == (1, 2, P, P)
            if d == 1:
                assert api.avg_pool2d(x, k, **kw).shape == (1, 2, P, P)


def test_ceil_mode_windows_hand_worked():
    """H = 5, kernel 2, stride 2, ceil_mode: windows start at 0, 2, 4; the last holds
    only x[4] (its other element lies past the input, not in padding): the max is x[4],
    and the average divides by 1 element (torch's rule: count the elements inside the
    input and the padding, never those past them)."""
    row = np.array([1.0, 5.0, 2.0, 3.0, 7.0])
    x = (row[:, None] * 10 + row[None, :]).reshape(1, 1, 5, 5)    # x[i, j] = 10 row[i] + row[j]
    # max over rows {0,1}, {2,3}, {4} of row values [1, 5, 2, 3, 7]: 5, 3, 7 (likewise columns)
    want_max = np.array([[55.0, 53.0, 57.0], [35.0, 33.0, 37.0], [75.0, 73.0, 77.0]])
    # means over the same windows: rows (1+5)/2 = 3, (2+3)/2 = 2.5, 7/1 = 7
    m = np.array([3.0, 2.5, 7.0])
    want_avg = m[:, None] * 10 + m[None, :]
    for api in (fastconv, ref):
        np.testing.assert_array_equal(api.max_pool2d(x, 2, ceil_mode=True)[0, 0], want_max)
        np.testing.assert_allclose(api.avg_pool2d(x, 2, ceil_mode=True)[0, 0], want_avg,
                                   rtol=1e-15)
        np.testing.assert_array_equal(api.max_pool2d(x, 2)[0, 0], want_max[:2, :2])
