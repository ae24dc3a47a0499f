"""The raw-buffer kernel wrappers (conv2d_fwd, gemv, maxpool2d_fwd_values, relu_inplace,
clip_inplace): any C-contiguous float32 / float64 array, of any shape, the same results as
the flat arrays they were given before; every other buffer refused with a ValueError that
names it, before the kernel runs."""

import numpy as np
import pytest

from fastconv import _kernels as K
from fastconv import functional as F
from fastconv._args import conv_params, pool_params
from fastconv._dispatch import conv_geom
from fastconv.functional import _pool_geom

DTYPES = (np.float32, np.float64)


def _conv(dtype):
    rng = np.random.default_rng(0)
    p = conv_params((2, 3, 9, 8), (5, 3, 3, 3), 1, 1, 1, 1)
    x = rng.standard_normal((2, 3, 9, 8)).astype(dtype)
    w = rng.standard_normal((5, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    return p, x, w, b


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_forward_takes_arrays_of_any_shape(dtype):
    p, x, w, b = _conv(dtype)
    g = conv_geom(p)
    for algo in ("direct", "gemm"):
        flat = np.full(int(np.prod(p.y_shape)), np.nan, dtype)
        K.conv2d_fwd(K.ALGO_ID[algo], g, x.reshape(-1), w.reshape(-1), b, flat, 1)
        shaped = np.full(p.y_shape, np.nan, dtype)
        K.conv2d_fwd(K.ALGO_ID[algo], g, x, w, b, shaped, 1)
        np.testing.assert_array_equal(shaped.reshape(-1), flat)
        np.testing.assert_array_equal(shaped, F.conv2d(x, w, b, padding=1, algo=algo))


def test_conv_forward_refuses_bad_buffers_by_name():
    p, x, w, b = _conv(np.float32)
    g = conv_geom(p)
    y = np.zeros(p.y_shape, np.float32)
    aid = K.ALGO_ID["direct"]
    with pytest.raises(ValueError, match="buffer w: float64 where the call's other buffers are float32"):
        K.conv2d_fwd(aid, g, x, w.astype(np.float64), b, y, 1)
    with pytest.raises(ValueError, match="buffer x: a C-contiguous"):
        K.conv2d_fwd(aid, g, np.asfortranarray(x), w, b, y, 1)
    with pytest.raises(ValueError, match="buffer y: a writeable"):
        ro = y.copy()
        ro.flags.writeable = False
        K.conv2d_fwd(aid, g, x, w, b, ro, 1)
    with pytest.raises(ValueError, match="buffer b has 4 elements, the geometry needs 5"):
        K.conv2d_fwd(aid, g, x, w, b[:4], y, 1)
    with pytest.raises(ValueError, match="buffer x: float32 or float64 in native byte order"):
        K.conv2d_fwd(aid, g, x.astype(">f4"), w, b, y, 1)
    with pytest.raises(ValueError, match="buffer y: float32 or float64"):
        K.conv2d_fwd(aid, g, x, w, b, y.astype(np.int32), 1)
    with pytest.raises(ValueError, match="buffer x: a C-contiguous"):
        K.conv2d_fwd(aid, g, [1.0], w, b, y, 1)
    assert not y.any()      # nothing ran


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_values_take_arrays_of_any_shape(dtype):
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 7)).astype(dtype)
    p = pool_params(x.shape, (2, 2), (2, 2), (0, 0), (1, 1), False)
    y = np.full(p.y_shape, np.nan, dtype)
    K.maxpool2d_fwd_values(_pool_geom(p), x, y, 2)
    np.testing.assert_array_equal(y, F.max_pool2d(x, 2))
    with pytest.raises(ValueError, match="buffer y has"):
        K.maxpool2d_fwd_values(_pool_geom(p), x, y[:1], 1)
    with pytest.raises(ValueError, match="buffer y: float64 where"):
        K.maxpool2d_fwd_values(_pool_geom(p), x.astype(np.float32), y.astype(np.float64), 1)


def test_gemv_refuses_wrong_dimensions():
    w = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="must be 2-d and b 1-d"):
        K.gemv(w, np.zeros(4, np.float32), np.empty(0, np.float32), np.zeros((1, 3), np.float32), 1)
    with pytest.raises(ValueError, match="buffer y: a writeable"):
        K.gemv(w, np.zeros((1, 4), np.float32), np.empty(0, np.float32),
               np.zeros((3, 2), np.float32)[:, :1].T, 1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_in_place_activations_take_any_shape_and_refuse_the_rest(dtype):
    x = np.random.default_rng(2).standard_normal((2, 3, 5, 4)).astype(dtype)
    want = np.maximum(x, 0)
    K.relu_inplace(x, 1)
    np.testing.assert_array_equal(x, want)
    z = np.random.default_rng(3).standard_normal((4, 6)).astype(dtype) * 8
    want = np.clip(z, 0, 6)
    K.clip_inplace(z, 0.0, 6.0, 2)
    np.testing.assert_array_equal(z, want)
    ro = np.ones(4, dtype)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="buffer x: a writeable"):
        K.relu_inplace(ro, 1)
    with pytest.raises(ValueError, match="buffer x: a writeable"):
        K.clip_inplace(np.ones((4, 4), dtype)[:, ::2], 0.0, 1.0, 1)
    with pytest.raises(ValueError, match="got format 'i'"):
        K.relu_inplace(np.ones(4, np.int32), 1)
