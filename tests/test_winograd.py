"""Winograd convolution (algo="winograd": 3x3, stride 1, dilation 1) against the reference.

The forward pass and both gradients run the Winograd kernels (F(4x4,3x3) by
default, F(2x2,3x3) when the tile is set to 2); the bias gradient is a plain sum.
Winograd's transforms have inexact coefficients (1/3, 1/15), so results are
compared with the dtype tolerances of conftest.assert_close, never exactly,
except across thread counts, which must give bitwise identical results.
"""

import numpy as np
import pytest

import fastconv
from fastconv import _dispatch, _kernels
from fastconv import reference as ref
from fastconv._args import conv_params
from conftest import DTYPES, assert_close, randn

TILES = [4, 2]


@pytest.fixture
def tile():
    """Restore the Winograd tile size after a test changes it."""
    prev = _kernels.winograd_tile()
    yield
    _kernels.winograd_tile(prev)


@pytest.fixture
def isa():
    prev = _kernels.isa()
    yield
    _kernels.set_isa(prev)


def _arrays(rng, N, C, H, W, K, dtype, groups=1):
    x = randn(rng, (N, C, H, W), dtype)
    # He initialisation: outputs of order 1, as in a real network
    w = (rng.standard_normal((K, C // groups, 3, 3)) * np.sqrt(2.0 / (9 * C // groups))).astype(dtype)
    b = randn(rng, (K,), dtype)
    return x, w, b


def _ref_fwd(x, w, b, padding, groups=1):
    f = np.float64
    return ref.conv2d(x.astype(f), w.astype(f), None if b is None else b.astype(f),
                      padding=padding, groups=groups)


def _ref_dx(dy, x, w, padding, groups=1):
    f = np.float64
    return ref.conv2d_backward(dy.astype(f), x.astype(f), w.astype(f), padding=padding,
                               groups=groups)[0]


# (N, C, H, W, K, padding): sizes below, at and just above a tile, odd sizes,
# every padding up to 3 (more than the kernel: whole tiles of padding), 1..17 channels
SHAPES = [
    (1, 1, 1, 1, 1, 1),
    (1, 1, 3, 3, 1, 0),
    (2, 3, 2, 5, 4, 1),
    (3, 2, 4, 4, 3, 2),
    (1, 5, 6, 6, 7, 0),
    (2, 4, 7, 9, 5, 1),
    (1, 17, 11, 13, 16, 1),
    (3, 8, 13, 5, 17, 2),
    (2, 16, 9, 10, 8, (0, 2)),
    (1, 7, 3, 14, 9, (2, 1)),
    (2, 6, 5, 5, 6, 3),
    (1, 9, 12, 1, 2, 1),
]


@pytest.mark.parametrize("m", TILES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_reference(shape, dtype, m, tile):
    N, C, H, W, K, padding = shape
    _kernels.winograd_tile(m)
    rng = np.random.default_rng(abs(hash(shape)) % 2**32)
    x, w, b = _arrays(rng, N, C, H, W, K, dtype)
    for bias in (b, None):
        y = fastconv.conv2d(x, w, bias, padding=padding, algo="winograd")
        assert y.dtype == dtype
        assert_close(y, _ref_fwd(x, w, bias, padding), dtype)


@pytest.mark.parametrize("m", TILES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_matches_reference(shape, dtype, m, tile):
    N, C, H, W, K, padding = shape
    _kernels.winograd_tile(m)
    rng = np.random.default_rng(abs(hash(shape)) % 2**32 + 1)
    x, w, _ = _arrays(rng, N, C, H, W, K, dtype)
    dy = randn(rng, fastconv.conv2d(x, w, padding=padding).shape, dtype)
    dx, dw, db = fastconv.conv2d_backward(dy, x, w, padding=padding, algo="winograd")
    assert dx.dtype == dtype
    assert_close(dx, _ref_dx(dy, x, w, padding), dtype)
    f = np.float64
    _, dw_ref, db_ref = ref.conv2d_backward(dy.astype(f), x.astype(f), w.astype(f),
                                            padding=padding)
    assert_close(dw, dw_ref, dtype)
    assert_close(db, db_ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_groups(dtype):
    rng = np.random.default_rng(7)
    x, w, b = _arrays(rng, 2, 6, 9, 7, 9, dtype, groups=3)
    y = fastconv.conv2d(x, w, b, padding=1, groups=3, algo="winograd")
    assert_close(y, _ref_fwd(x, w, b, 1, groups=3), dtype)
    dy = randn(rng, y.shape, dtype)
    dx, _, _ = fastconv.conv2d_backward(dy, x, w, padding=1, groups=3, algo="winograd")
    assert_close(dx, _ref_dx(dy, x, w, 1, groups=3), dtype)


# Shapes that exercise each work schedule of csrc/winograd.c: small blocks
# private to a thread, large blocks shared by all threads (transformed filters
# above 1 MiB), tile rows split into segments (very wide images), many blocks.
SCHEDULES = [
    (3, 16, 21, 19, 24, 1),     # private blocks
    (2, 136, 6, 7, 130, 1),     # shared blocks
    (1, 130, 120, 60, 130, 1),  # two shared blocks
    (1, 2, 3, 1100, 3, 1),      # private, tile rows cut into segments
    (1, 96, 2, 2600, 96, 1),    # shared (F(4x4)), tile rows cut into segments
]


@pytest.mark.parametrize("m", TILES)
@pytest.mark.parametrize("shape", SCHEDULES)
def test_threads_give_bitwise_identical_results(shape, m, tile, threads):
    N, C, H, W, K, padding = shape
    _kernels.winograd_tile(m)
    rng = np.random.default_rng(11)
    x, w, b = _arrays(rng, N, C, H, W, K, np.float32)
    dy = randn(rng, fastconv.conv2d(x, w, padding=padding).shape, np.float32)
    out = []
    for n in (1, 2, 3):
        fastconv.set_num_threads(n)
        y = fastconv.conv2d(x, w, b, padding=padding, algo="winograd")
        dx, dw, _ = fastconv.conv2d_backward(dy, x, w, padding=padding, need_db=False,
                                             algo="winograd")
        out.append((y, dx, dw))
    for r in out[1:]:
        for a, e in zip(r, out[0]):
            np.testing.assert_array_equal(a, e)
    assert_close(out[0][0], _ref_fwd(x, w, b, padding), np.float32)
    # dx as the reference forward of dy with the kernel turned and transposed
    # (3x3, stride 1: padding 2 - p), far cheaper than reference.conv2d_backward here;
    # dw[k, c] as the reference forward of x[:, c] (batch as channels) with dy[:, k]
    # as the kernel (affordable for the smaller shapes only)
    w_t = np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
    assert_close(out[0][1], _ref_fwd(dy, w_t, None, 2 - padding), np.float32)
    if x.size <= 100_000:
        dw_ref = _ref_fwd(np.ascontiguousarray(x.transpose(1, 0, 2, 3)),
                          np.ascontiguousarray(dy.transpose(1, 0, 2, 3)), None, padding)
        assert_close(out[0][2], dw_ref.transpose(1, 0, 2, 3), np.float32)


@pytest.mark.parametrize("name", ["generic", "avx2", "avx512"])
def test_every_simd_variant(name, isa):
    if _kernels.set_isa(name) != name:
        pytest.skip(f"this CPU does not run {name}")
    rng = np.random.default_rng(5)
    x, w, b = _arrays(rng, 2, 20, 10, 11, 19, np.float32)
    y = fastconv.conv2d(x, w, b, padding=1, algo="winograd")
    assert_close(y, _ref_fwd(x, w, b, 1), np.float32)
    dy = randn(rng, y.shape, np.float32)
    dx, dw, db = fastconv.conv2d_backward(dy, x, w, padding=1, algo="winograd")
    f = np.float64
    ref_grads = ref.conv2d_backward(dy.astype(f), x.astype(f), w.astype(f), padding=1)
    for a, e in zip((dx, dw, db), ref_grads):
        assert_close(a, e, np.float32)


def _central_difference(f, a, idx, eps=1e-6):
    out = []
    for i in idx:
        old = a.flat[i]
        a.flat[i] = old + eps
        fp = f()
        a.flat[i] = old - eps
        fm = f()
        a.flat[i] = old
        out.append((fp - fm) / (2 * eps))
    return np.array(out)


@pytest.mark.parametrize("padding", [0, 1, 2])
def test_gradcheck_float64(padding):
    """Central differences of L = sum(conv2d(x, w, b) * g) match the Winograd gradients."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 7, 6))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    g = rng.standard_normal(fastconv.conv2d(x, w, padding=padding).shape)

    def loss():
        return float(np.sum(fastconv.conv2d(x, w, b, padding=padding, algo="winograd") * g))

    dx, dw, db = fastconv.conv2d_backward(g, x, w, padding=padding, algo="winograd")
    for grad, a, n in ((dx, x, 40), (dw, w, 30), (db, b, 4)):
        idx = rng.choice(a.size, n, replace=False)
        np.testing.assert_allclose(grad.flat[idx], _central_difference(loss, a, idx),
                                   rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kw, what", [
    (dict(w_shape=(4, 3, 5, 5)), "5x5"),
    (dict(w_shape=(4, 3, 1, 3)), "1x3"),
    (dict(stride=2), "stride (2, 2)"),
    (dict(stride=(1, 2)), "stride (1, 2)"),
    (dict(dilation=2), "dilation (2, 2)"),
])
def test_unsupported_geometry_is_rejected(kw, what):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 12, 12))
    w = rng.standard_normal(kw.pop("w_shape", (4, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"winograd.*3x3 kernel with stride 1 and dilation 1") as e:
        fastconv.conv2d(x, w, padding=1, algo="winograd", **kw)
    assert what in str(e.value)
    dy = fastconv.conv2d(x, w, padding=1, **kw)
    with pytest.raises(ValueError, match="winograd") as e:
        fastconv.conv2d_backward(dy, x, w, padding=1, algo="winograd", **kw)
    assert what in str(e.value)


@pytest.mark.parametrize("shape, kw, expected", [
    ((8, 64, 56, 56), dict(w=(64, 64, 3, 3), padding=1), True),      # resnet_3x3
    ((8, 256, 14, 14), dict(w=(256, 256, 3, 3), padding=1), True),   # resnet_c4
    ((8, 64, 56, 56), dict(w=(64, 64, 3, 3), padding=1, stride=2), False),
    ((8, 64, 56, 56), dict(w=(64, 64, 5, 5), padding=2), False),
    ((32, 3, 32, 32), dict(w=(32, 3, 3, 3), padding=1), False),      # few input channels
    ((8, 256, 7, 7), dict(w=(256, 256, 3, 3), padding=1), False),    # too few tiles
    ((8, 256, 28, 28), dict(w=(256, 1, 3, 3), padding=1, groups=256), False),
    ((4, 512, 28, 28), dict(w=(512, 512, 3, 3), padding=1), False),  # filters too large
])
def test_auto_choice(shape, kw, expected, isa):
    if _kernels.set_isa("avx2") == "generic":
        pytest.skip("auto uses im2col without a SIMD GEMM")
    w_shape = kw.pop("w")
    p = conv_params(shape, w_shape, kw.get("stride", 1), kw["padding"], 1, kw.get("groups", 1))
    assert (_dispatch.choose_algo("auto", p) == "winograd") == expected
    for pass_ in ("weight", "data", True):
        assert (_dispatch.choose_algo("auto", p, backward=pass_) == "winograd") == expected


def test_empty_batch_and_tile_setting():
    x = np.zeros((0, 3, 5, 5), np.float32)
    w = np.ones((2, 3, 3, 3), np.float32)
    assert fastconv.conv2d(x, w, padding=1, algo="winograd").shape == (0, 2, 5, 5)
    with pytest.raises(ValueError, match="2 or 4"):
        _kernels.winograd_tile(3)
