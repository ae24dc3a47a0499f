"""The native in-place ReLU and clip (functional_prepared.relu_inplace / clip_inplace) that
ReLU and Clip (ReLU6) layers use when they write over the previous layer's output in eval
mode: bit for bit NumPy's maximum / clip, on edge values, at every size (the threaded
split included), with NumPy taking the arrays the kernels cannot."""

import itertools

import numpy as np
import pytest

import fastconv
from fastconv import _kernels as K
from fastconv import nn
from fastconv.functional_prepared import clip_inplace, relu_inplace

EDGE = np.array([-0.0, 0.0, np.nan, -np.nan, -1.0, 7.0, 6.0, -np.inf, np.inf, 1e-45, -1e-45,
                 3.5, -6.0, 5.999, 1e30, -1e30])
BOUNDS = [-0.0, 0.0, -1.0, 6.0, -np.inf, np.inf, 1e-45, -6.0]


def _bits(a):
    return a.view(f"u{a.itemsize}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 15, 16, 17, 1000, 200_003])
def test_relu_inplace_bits(dtype, n):
    x = np.resize(EDGE, n).astype(dtype)
    x[::7] = np.random.default_rng(n).standard_normal(x[::7].size)
    want = np.maximum(x, dtype(0))
    got = x.copy()
    assert relu_inplace(got) is got
    np.testing.assert_array_equal(_bits(got), _bits(want))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_inplace_bits(dtype):
    for n in (len(EDGE), 100_003):
        x = np.resize(EDGE, n).astype(dtype)
        for lo, hi in itertools.product(BOUNDS, BOUNDS):
            if not dtype(lo) <= dtype(hi):
                continue
            want = np.clip(x, dtype(lo), dtype(hi))
            got = x.copy()
            assert clip_inplace(got, lo, hi) is got
            np.testing.assert_array_equal(_bits(got), _bits(want), err_msg=f"lo={lo} hi={hi}")


def test_numpy_takes_what_the_kernel_cannot():
    base = np.linspace(-8, 8, 64, dtype=np.float32).reshape(8, 8)
    strided = base.copy()[:, ::2]                    # not contiguous
    want = np.clip(strided, 0, 6)
    assert np.array_equal(clip_inplace(strided, 0, 6), want)
    assert np.array_equal(strided, want)
    swapped = base.astype(">f4")                     # not native byte order
    assert np.array_equal(relu_inplace(swapped), np.maximum(base, 0))
    nan_bound = base.copy()                          # a NaN bound: NumPy's answer
    assert np.array_equal(clip_inplace(nan_bound, np.nan, 6), np.clip(base, np.nan, 6),
                          equal_nan=True)


def test_kernel_refuses_bad_bounds():
    x = np.zeros(4, np.float32)
    with pytest.raises(ValueError):
        K.clip_inplace(x, 1.0, 0.0, 1)
    with pytest.raises(ValueError):
        K.clip_inplace(x, np.nan, 1.0, 1)


@pytest.mark.parametrize("act", [nn.ReLU(), nn.Clip(0.0, 6.0), nn.ReLU6()])
def test_layers_in_eval_match_training_forward(act):
    """A Sequential in eval mode writes the activation over the conv's output (the in-place
    kernel); the result equals the activation's own forward bit for bit."""
    conv = nn.Conv2D(3, 8, 3, padding=1, seed=0)
    model = nn.Sequential(conv, act).eval()
    x = np.random.default_rng(1).standard_normal((2, 3, 9, 9)).astype(np.float32) * 5
    got = model.forward(x)
    want = type(act)(*([] if isinstance(act, (nn.ReLU, nn.ReLU6)) else [0.0, 6.0])).forward(conv.forward(x))
    np.testing.assert_array_equal(_bits(got), _bits(want))
    assert fastconv.get_backend() == "native"
