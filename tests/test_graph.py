"""nn.Graph and the layers it brought (elementwise joins, activations, shape layers).

Gradients are checked against float64 central differences of L = sum_k sum(y_k * r_k)
for every input and every parameter, on both backends, including branching,
fan-out (one value read by several nodes), multi-output nodes and broadcasting.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import nn
from fastconv.optim import SGD
from fastconv.train import Trainer

F64 = np.float64
EPS = 1e-6


@pytest.fixture(params=["native", "reference"])
def backend(request):
    with fastconv.use_backend(request.param):
        yield request.param


def _as_tuple(v):
    return v if isinstance(v, tuple) else (v,)


def gradcheck(module, *xs, seed=0, limit=30, rtol=1e-6, atol=1e-8, check_inputs=None):
    """Backward of ``module`` (any number of inputs and outputs) against central differences."""
    rng = np.random.default_rng(seed)
    module.input_grad = True
    ys = _as_tuple(module.forward(*xs))
    rs = [rng.standard_normal(y.shape) for y in ys]
    module.zero_grad()
    ys = _as_tuple(module.forward(*xs))
    dxs = module.backward(*rs)
    dxs = dxs if isinstance(dxs, tuple) else (dxs,)
    assert len(dxs) == len(xs)

    def loss():
        return float(sum(np.sum(y * r) for y, r in zip(_as_tuple(module.forward(*xs)), rs)))

    checks = [(f"input {i}", x, dx) for i, (x, dx) in enumerate(zip(xs, dxs))
              if check_inputs is None or i in check_inputs]
    checks += [(name, p.data, p.grad.copy()) for name, p in module.named_parameters()]
    for name, arr, analytic in checks:
        assert analytic is not None and analytic.shape == arr.shape, name
        size = arr.size
        flat = np.arange(size) if size <= limit else rng.choice(size, limit, replace=False)
        num, ana = [], []
        for i in flat:
            idx = np.unravel_index(i, arr.shape)
            orig = arr[idx]
            arr[idx] = orig + EPS
            lp = loss()
            arr[idx] = orig - EPS
            lm = loss()
            arr[idx] = orig
            num.append((lp - lm) / (2 * EPS))
            ana.append(analytic[idx])
        np.testing.assert_allclose(ana, num, rtol=rtol, atol=atol, err_msg=f"gradient of {name}")


def r64(rng, *shape):
    return rng.standard_normal(shape)


# ---------------------------------------------------------------- single layers


@pytest.mark.parametrize("cls", [nn.Add, nn.Sub, nn.Mul, nn.Div])
@pytest.mark.parametrize("shapes", [((2, 3, 4, 4), (2, 3, 4, 4)), ((2, 3, 4, 4), (1, 3, 1, 1)),
                                    ((3, 1, 4), (2, 1)), ((4,), (2, 3, 4))])
def test_binary_two_inputs(cls, shapes, rng):
    a, b = (r64(rng, *s) for s in shapes)
    if cls is nn.Div:
        b = np.sign(b) * (np.abs(b) + 0.5)
    layer = cls(dtype=F64)
    ref = {nn.Add: np.add, nn.Sub: np.subtract, nn.Mul: np.multiply, nn.Div: np.divide}[cls]
    np.testing.assert_array_equal(layer.forward(a, b), ref(a, b))
    gradcheck(layer, a, b)


@pytest.mark.parametrize("cls", [nn.Add, nn.Sub, nn.Mul, nn.Div, nn.MatMul])
@pytest.mark.parametrize("reverse", [False, True])
def test_binary_fixed_operand(cls, reverse, rng):
    if cls is nn.MatMul:
        x, c = (r64(rng, 3, 4), r64(rng, 4, 5)) if not reverse else (r64(rng, 2, 4, 5), r64(rng, 3, 4))
    else:
        x, c = r64(rng, 2, 3, 4, 4), np.abs(r64(rng, 3, 1, 1)) + 0.5
    layer = cls(c, reverse=reverse, dtype=F64)
    ops = {nn.Add: np.add, nn.Sub: np.subtract, nn.Mul: np.multiply, nn.Div: np.divide, nn.MatMul: np.matmul}
    want = ops[cls](c, x) if reverse else ops[cls](x, c)
    np.testing.assert_allclose(layer.forward(x), want, rtol=1e-12)
    if cls is nn.Div and reverse:
        x = np.sign(x) * (np.abs(x) + 0.5)
    gradcheck(layer, x)
    assert len(layer.parameters()) == 1
    frozen = cls(c, reverse=reverse, trainable=False, dtype=F64)
    assert frozen.parameters() == [] and "other" in frozen.state_dict()


def test_matmul_two_inputs_broadcast(rng):
    gradcheck(nn.MatMul(dtype=F64), r64(rng, 2, 3, 4), r64(rng, 4, 5))
    gradcheck(nn.MatMul(dtype=F64), r64(rng, 4), r64(rng, 2, 4, 3))
    gradcheck(nn.MatMul(dtype=F64), r64(rng, 2, 1, 3, 4), r64(rng, 3, 4, 2))


def test_cat_and_split(rng):
    a, b = r64(rng, 2, 3, 4), r64(rng, 2, 5, 4)
    cat = nn.Cat(axis=1, dtype=F64)
    np.testing.assert_array_equal(cat.forward(a, b), np.concatenate([a, b], 1))
    gradcheck(cat, a, b)
    sp = nn.Split((2, 3, 3), axis=-2, dtype=F64)
    outs = sp.forward(r64(rng, 2, 8, 3))
    assert [o.shape for o in outs] == [(2, 2, 3), (2, 3, 3), (2, 3, 3)]
    gradcheck(sp, r64(rng, 2, 8, 3))
    sp.forward(r64(rng, 2, 8, 3))
    dx = sp.backward(None, np.ones((2, 3, 3)), None)
    assert dx[:, :2].sum() == 0 and dx[:, 2:5].sum() == 18


@pytest.mark.parametrize("layer,shape", [
    (nn.Clip(-0.5, 0.7, dtype=F64), (2, 3, 4)),
    (nn.Clip(None, 0.3, dtype=F64), (5, 4)),
    (nn.ReLU6(dtype=F64), (2, 3, 4)),
    (nn.HardSigmoid(dtype=F64), (2, 3, 4)),
    (nn.HardSigmoid(0.2, 0.5, dtype=F64), (2, 3, 4)),
    (nn.HardSwish(dtype=F64), (2, 3, 4)),
    (nn.Softmax(1, dtype=F64), (2, 3, 4)),
    (nn.Softmax(dtype=F64), (3, 5)),
    (nn.LogSoftmax(-2, dtype=F64), (2, 3, 4)),
    (nn.Identity(dtype=F64), (2, 3)),
    (nn.Reshape((-1, 2, 6), dtype=F64), (2, 3, 4)),
    (nn.Transpose((0, 2, 3, 1), dtype=F64), (2, 3, 4, 5)),
    (nn.Slice((1, -1), (None, 0), (1, 3), (2, -1), dtype=F64), (2, 5, 3, 4)),
    (nn.Pad2D((1, 0, 2, 3), dtype=F64), (2, 3, 4, 5)),
    (nn.Pad2D(1, value=-7.0, dtype=F64), (3, 4, 5)),
    (nn.Mean((2, 3), keepdims=True, dtype=F64), (2, 3, 4, 5)),
    (nn.Mean((-1, 1), dtype=F64), (2, 3, 4, 5)),
])
def test_layer_gradients(layer, shape, rng):
    x = r64(rng, *shape) * 4     # spreads over the kinks of Clip / HardSigmoid / HardSwish
    gradcheck(layer, x)


def test_layer_forward_values(rng):
    x = np.linspace(-8, 8, 33).astype(np.float32)
    np.testing.assert_array_equal(nn.ReLU6().forward(x), np.clip(x, 0, 6))
    np.testing.assert_allclose(nn.HardSwish().forward(x), x * np.clip(x + 3, 0, 6) / 6, rtol=1e-6)
    np.testing.assert_allclose(nn.HardSigmoid(0.2, 0.5).forward(x), np.clip(0.2 * x + 0.5, 0, 1), rtol=1e-6)
    s = nn.Softmax(0).forward(x)
    assert s.dtype == np.float32 and abs(s.sum() - 1) < 1e-6
    y = nn.Slice((1,), (None,), (1,), (-2,)).forward(np.arange(12, dtype=np.float32).reshape(2, 6))
    np.testing.assert_array_equal(y, [[1], [7]])
    p = nn.Pad2D((1, 2, 0, 1)).forward(np.ones((1, 1, 2, 2), np.float32))
    assert p.shape == (1, 1, 3, 5) and p.sum() == 4


def test_layer_dtype_and_errors():
    with pytest.raises(TypeError, match="float64"):
        nn.Add().forward(np.ones(3), np.ones(3))
    with pytest.raises(TypeError, match="two inputs"):
        nn.Mul().forward(np.ones(3, np.float32))
    with pytest.raises(ValueError, match="broadcast"):
        nn.Add().forward(np.ones(3, np.float32), np.ones(4, np.float32))
    with pytest.raises(ValueError, match="at most one -1"):
        nn.Reshape((-1, -1))
    with pytest.raises(ValueError, match="permutation"):
        nn.Transpose((0, 0, 1))
    with pytest.raises(ValueError, match="min"):
        nn.Clip(2, 1)
    with pytest.raises(RuntimeError, match="before forward"):
        nn.Softmax().backward(np.ones(3, np.float32))
    layer = nn.Mul(np.ones(3)).to(np.float64)
    assert layer.other.dtype == np.float64


# ---------------------------------------------------------------- Graph


def _branchy(seed=0, dtype=F64):
    """x -> conv -> h; h fans out to relu and to a 1x1 conv; split/cat/mul/add joins."""
    s = np.random.SeedSequence(seed).spawn(4)
    return nn.Graph(inputs="x", outputs="y", nodes=[
        ("add", nn.Add(), ["r", "h"], ["s"]),        # given out of order on purpose
        ("c1", nn.Conv2D(2, 4, 3, padding=1, seed=s[0], dtype=dtype), ["x"], ["h"]),
        ("relu", nn.Tanh(dtype=dtype), ["h"], ["r"]),
        ("split", nn.Split((1, 3), axis=1, dtype=dtype), ["s"], ["s1", "s3"]),
        ("c2", nn.Conv2D(3, 1, 1, seed=s[1], dtype=dtype), ["s3"], ["t"]),
        ("mul", nn.Mul(), ["s1", "t"], ["m"]),
        ("cat", nn.Cat(1, dtype=dtype), ["m", "h", "x"], ["c"]),
        ("pool", nn.GlobalAvgPool2D(dtype=dtype), ["c"], ["g"]),
        ("fc", nn.Linear(7, 3, seed=s[2], dtype=dtype), ["g"], ["y"]),
    ], dtype=dtype)


def test_graph_forward_matches_manual(rng, backend):
    g = _branchy()
    x = r64(rng, 2, 2, 5, 5)
    y = g.forward(x)
    m = g._modules
    h = m["c1"].forward(x)
    s = np.tanh(h) + h
    t = m["c2"].forward(s[:, 1:])
    c = np.concatenate([s[:, :1] * t, h, x], 1)
    np.testing.assert_allclose(y, m["fc"].forward(c.mean(axis=(2, 3))), rtol=1e-12)
    assert [n for n, *_ in g.nodes][:3] == ["c1", "relu", "add"]


def test_graph_gradients_branching_fanout(rng, backend):
    gradcheck(_branchy(), r64(rng, 2, 2, 4, 4), limit=20)


def test_graph_multi_input_output(rng):
    g = nn.Graph(inputs=["a", "b"], outputs=["y", "z", "a"], nodes=[
        (nn.Mul(dtype=F64), ["a", "b"], ["p"]),
        (nn.Add(np.array([0.5, -1.0]), dtype=F64), ["p"], ["y"]),
        (nn.Softmax(dtype=F64), ["p"], ["z"]),
        (nn.Tanh(dtype=F64), ["b"], ["unused"]),
    ])
    gradcheck(g, r64(rng, 3, 2), r64(rng, 3, 2))
    g.input_grad = False
    g.zero_grad()
    g.forward(r64(rng, 3, 2), r64(rng, 3, 2))
    assert g.backward(np.ones((3, 2)), None, None) is None
    assert g._modules["1"].other.grad.tolist() == [3.0, 3.0]


def test_graph_input_grad_routing(rng):
    g = _branchy()
    g.input_grad = False
    g.forward(r64(rng, 1, 2, 4, 4))
    assert g._modules["c1"].input_grad is False and g._modules["add"].input_grad is True
    assert g.backward(np.ones((1, 3))) is None
    assert np.abs(g._modules["c1"].weight.grad).sum() > 0


def test_graph_validation():
    relu = nn.ReLU()
    with pytest.raises(ValueError, match="cycle"):
        nn.Graph("x", "b", [(nn.Add(), ["x", "b"], ["a"]), (nn.ReLU(), ["a"], ["b"])])
    with pytest.raises(ValueError, match="no graph input or node defines"):
        nn.Graph("x", "a", [(nn.Add(), ["x", "q"], ["a"])])
    with pytest.raises(ValueError, match="defined twice"):
        nn.Graph("x", "a", [(nn.ReLU(), ["x"], ["a"]), (nn.Tanh(), ["x"], ["a"])])
    with pytest.raises(ValueError, match="same module"):
        nn.Graph("x", "b", [(relu, ["x"], ["a"]), (relu, ["a"], ["b"])])
    with pytest.raises(ValueError, match="not a graph input or a node output"):
        nn.Graph("x", "z", [(nn.ReLU(), ["x"], ["a"])])
    with pytest.raises(ValueError, match="clashes"):
        nn.Graph("x", "a", [("forward", nn.ReLU(), ["x"], ["a"])])
    with pytest.raises(TypeError, match="different dtypes"):
        nn.Graph("x", "b", [(nn.ReLU(), ["x"], ["a"]), (nn.ReLU(dtype=F64), ["a"], ["b"])])
    g = nn.Graph("x", "a", [(nn.ReLU(), ["x"], ["a"])])
    with pytest.raises(RuntimeError, match="before forward"):
        g.backward(np.ones(2, np.float32))
    with pytest.raises(TypeError, match="1 input"):
        g.forward(np.ones(2, np.float32), np.ones(2, np.float32))


def test_graph_state_dict_modes_dtype(rng):
    g = nn.Graph("x", "y", [
        ("conv", nn.Conv2D(2, 3, 3, seed=0), ["x"], ["h"]),
        ("bn", nn.BatchNorm2D(3), ["h"], ["b"]),
        ("drop", nn.Dropout(0.5, seed=1), ["b"], ["y"]),
    ], seed=3)
    assert list(g.state_dict()) == ["conv.weight", "conv.bias", "bn.weight", "bn.bias",
                                    "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
    g.eval()
    assert not any(m.training for m in g.modules())
    g2 = nn.Graph("x", "y", [
        ("conv", nn.Conv2D(2, 3, 3), ["x"], ["h"]),
        ("bn", nn.BatchNorm2D(3), ["h"], ["b"]),
        ("drop", nn.Dropout(0.5), ["b"], ["y"]),
    ]).eval()
    g2.load_state_dict(g.state_dict())
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    np.testing.assert_array_equal(g.forward(x), g2.forward(x))
    g.to(F64)
    assert g.dtype == F64 and g._modules["conv"].weight.dtype == F64
    assert g.forward(x.astype(F64)).dtype == F64


def test_graph_trains_with_trainer(rng):
    g = nn.Graph("x", "y", [
        ("conv", nn.Conv2D(1, 4, 3, padding=1, seed=0), ["x"], ["h"]),
        ("act", nn.HardSwish(), ["h"], ["a"]),
        ("skip", nn.Add(), ["a", "h"], ["s"]),
        ("pool", nn.Mean((2, 3)), ["s"], ["p"]),
        ("fc", nn.Linear(4, 2, seed=1), ["p"], ["y"]),
    ])
    X = rng.standard_normal((32, 1, 6, 6)).astype(np.float32)
    y = (X.mean(axis=(1, 2, 3)) > 0).astype(np.int64)
    loss = nn.SoftmaxCrossEntropy()
    before = loss.forward(g.forward(X), y)
    tr = Trainer(g, loss, SGD(g.parameters(), lr=0.5), progress=False)
    tr.fit((X, y), epochs=5, batch_size=8)
    assert loss.forward(g.forward(X), y) < before
