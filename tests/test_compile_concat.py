"""fastconv.compile: concat branches written straight into the concat's output.

At batch 1 a channel concat's branches are contiguous blocks of its output, so
the op computing a branch writes there and no copy runs (plan.py,
``_concat_aliases``). These tests check which branches are aliased, that the
aliased plans compute what the model does, and that a branch read by anything
else, the network input and batches above 1 keep their copies.
"""

import copy

import numpy as np
import pytest

import fastconv
from fastconv import nn
from conftest import DTYPES

RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}


def _check(plan, model, x):
    want = copy.deepcopy(model).eval().forward(x)
    got = plan(x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0,
                               atol=RTOL[np.dtype(x.dtype)] * float(np.max(np.abs(want))))


def _x(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _fire(cin, sq, e1, e3, dt):
    """SqueezeNet's fire module: a 1x1 squeeze, then 1x1 and 3x3 expands concatenated."""
    return nn.Sequential(nn.Conv2D(cin, sq, 1, dtype=dt), nn.ReLU(),
                         nn.Concat(nn.Sequential(nn.Conv2D(sq, e1, 1, dtype=dt), nn.ReLU(), dtype=dt),
                                   nn.Sequential(nn.Conv2D(sq, e3, 3, padding=1, dtype=dt),
                                                 nn.ReLU(), dtype=dt), dtype=dt),
                         dtype=dt)


def _copies(c):
    return sum(name.startswith("copy") for name in c.names)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fire_modules_at_batch_1_copy_nothing(dtype):
    model = nn.Sequential(_fire(4, 3, 5, 6, dtype), nn.MaxPool2D(2), _fire(11, 4, 3, 7, dtype),
                          nn.GlobalAvgPool2D(), nn.Flatten(), nn.Linear(10, 3, dtype=dtype),
                          dtype=dtype, seed=3)
    plan = fastconv.compile(model)
    x = _x((1, 4, 9, 9), dtype)
    c = plan.compiled_for(x)
    assert _copies(c) == 0 and len(c.aliased) == 4
    _check(plan, model, x)
    _check(plan, model, x)            # the arena reused: nothing left from the first run
    x3 = _x((3, 4, 9, 9), dtype, seed=1)
    c3 = plan.compiled_for(x3)
    assert _copies(c3) == 4 and not c3.aliased      # whole-image blocks are not contiguous
    _check(plan, model, x3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nested_concat_as_network_output(dtype):
    # the inner concat's output is itself a branch of the outer one, which is the network's
    # output: every branch lands in the caller's array at its offset
    model = nn.Concat(nn.Conv2D(3, 2, 3, padding=1, dtype=dtype),
                      nn.Concat(nn.Sequential(nn.Conv2D(3, 5, 1, dtype=dtype), nn.ReLU6(), dtype=dtype),
                                nn.MaxPool2D(3, stride=1, padding=1), dtype=dtype),
                      nn.Sequential(nn.Conv2D(3, 4, 1, dtype=dtype), nn.Sigmoid(), dtype=dtype),
                      dtype=dtype, seed=4)
    plan = fastconv.compile(model)
    x = _x((1, 3, 6, 7), dtype, seed=2)
    c = plan.compiled_for(x)
    # the max pool reads the network input; every branch but the input itself is aliased
    assert _copies(c) == 0 and len(c.aliased) == 5
    _check(plan, model, x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_branch_read_elsewhere_or_the_input_keeps_its_copy(dtype):
    g = nn.Graph(inputs="x", outputs="y", nodes=[
        ("a", nn.Conv2D(3, 4, 3, padding=1), ["x"], ["a"]),
        ("b", nn.Conv2D(3, 2, 1), ["x"], ["b"]),
        ("cat", nn.Cat(axis=1), ["a", "b", "x"], ["c"]),
        ("r", nn.ReLU(), ["c"], ["r"]),
        ("d", nn.Conv2D(9, 4, 1), ["r"], ["d"]),
        ("add", nn.Add(), ["d", "a"], ["y"]),          # a is read again after the concat
    ], dtype=dtype, seed=5)
    plan = fastconv.compile(g)
    x = _x((1, 3, 5, 6), dtype, seed=3)
    c = plan.compiled_for(x)
    assert len(c.aliased) == 1
    assert _copies(c) == 2                            # a and x are copied, b is written in place
    _check(plan, g, x)


def test_tuned_plan_with_aliased_branches():
    # tune=True times each op by name: the op list no longer has one copy per branch
    model = _fire(6, 4, 8, 8, np.float32)
    model.seed = 0
    plan = fastconv.compile(model, tune=True)
    x = _x((1, 6, 10, 10), np.float32, seed=4)
    _check(plan, model, x)
    assert _copies(plan.compiled_for(x)) == 0
