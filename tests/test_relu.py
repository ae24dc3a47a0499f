"""Native ReLU forward/backward against the reference (and torch's NaN conventions)."""

import numpy as np
import pytest

import fastconv
from fastconv import reference as ref
from conftest import DTYPES, randn


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [0, 7, 1 << 18])      # empty, serial, and the threaded path
def test_relu_matches_reference(dtype, n, threads):
    rng = np.random.default_rng(3)
    x = randn(rng, (n,), dtype)
    dy = randn(rng, (n,), dtype)
    if n:
        x[:4] = [np.nan, 0.0, -0.0, -np.inf]
        dy[:6] = [1.0, 2.0, 3.0, 4.0, np.nan, np.inf]
    for t in (1, 2):
        fastconv.set_num_threads(t)
        y = fastconv.relu(x)
        np.testing.assert_array_equal(y, ref.relu(x))
        np.testing.assert_array_equal(fastconv.relu_backward(dy, x), ref.relu_backward(dy, x))


def test_relu_nan_conventions():
    x = np.array([np.nan, -1.0, 2.0, 0.0])
    dy = np.array([5.0, np.nan, 7.0, np.inf])
    y = fastconv.relu(x)
    assert np.isnan(y[0]) and y[1] == 0 and y[2] == 2 and y[3] == 0
    # No NaN/inf leaks where the gradient is exactly 0; NaN x passes dy (as torch).
    np.testing.assert_array_equal(fastconv.relu_backward(dy, x), [5.0, 0.0, 7.0, 0.0])


def test_relu_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.array([np.nan, -1.0, 2.0, 0.0, -0.0, np.inf])
    dy = np.array([5.0, np.nan, 7.0, np.inf, 1.0, 2.0])
    tx = torch.from_numpy(x).requires_grad_()
    torch.relu(tx).backward(torch.from_numpy(dy))
    np.testing.assert_array_equal(fastconv.relu(x), torch.relu(torch.from_numpy(x)).numpy())
    np.testing.assert_array_equal(fastconv.relu_backward(dy, x), tx.grad.numpy())


def test_relu_any_shape_and_layout():
    x = np.arange(-12.0, 12.0).reshape(2, 3, 4)[:, ::-1, ::2]
    np.testing.assert_array_equal(fastconv.relu(x), np.maximum(x, 0))
    assert fastconv.relu(x).shape == x.shape
