"""inception_small and densenet_small: shapes for any channels / classes, registration in
MODELS (so `fastconv train --model` offers them), a falling loss on the shapes set, the
Identity layer and the models' gradients against finite differences."""

import numpy as np
import pytest

import fastconv
from fastconv import data, models, nn, optim
from conftest import run_python
from _fd import check_grads

NAMES = ["inception_small", "densenet_small"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("in_channels,num_classes,size", [(3, 10, 32), (1, 4, 28), (5, 2, 9)])
def test_shapes(name, in_channels, num_classes, size):
    m = models.get_model(name, in_channels=in_channels, num_classes=num_classes, seed=0)
    assert name in models.MODELS and m.input_grad is False
    y = m.forward(np.zeros((2, in_channels, size, size), np.float32))
    assert y.shape == (2, num_classes) and y.dtype == np.float32


def test_blocks_are_built_as_described():
    inc = models.inception_small()
    block = inc[1]
    assert isinstance(block, nn.Concat) and len(list(block.children())) == 4
    assert block.forward(np.zeros((1, 32, 8, 8), np.float32)).shape == (1, 56, 8, 8)
    dense = models.densenet_small(growth_rate=6, block_layers=(3, 2))
    layers = [m for m in dense if isinstance(m, nn.Concat)]
    assert len(layers) == 5
    assert all(isinstance(next(iter(c.children())), nn.Identity) for c in layers)
    x = np.ones((1, 12, 4, 4), np.float32)
    out = layers[0].forward(x)
    assert out.shape == (1, 18, 4, 4) and np.array_equal(out[:, :12], x)
    with pytest.raises(ValueError):
        models.densenet_small(block_layers=())


@pytest.mark.parametrize("name", NAMES)
def test_loss_falls_on_shapes(name):
    (X, y), _ = data.shapes_split(48, 8, seed=0)
    m = models.get_model(name, in_channels=1, num_classes=10, seed=1)
    opt = optim.Adam(m.parameters(), lr=2e-3)
    loss_fn = nn.SoftmaxCrossEntropy()
    losses = []
    for _ in range(6):
        m.zero_grad()
        losses.append(loss_fn.forward(m.forward(X), y))
        m.backward(loss_fn.backward())
        opt.step()
    assert losses[-1] < losses[0] - 0.05, losses


@pytest.mark.parametrize("name", NAMES)
def test_gradients_against_finite_differences(name):
    rng = np.random.default_rng(0)
    kw = dict(width=4) if name == "inception_small" else dict(growth_rate=3, block_layers=(2, 1))
    m = models.get_model(name, in_channels=2, num_classes=3, dtype=np.float64, seed=2, **kw)
    m.input_grad = True
    m.eval()                      # BatchNorm with running statistics: a fixed function
    x = rng.standard_normal((2, 2, 6, 6))
    r = rng.standard_normal((2, 3))
    m.zero_grad()
    m.forward(x)
    dx = m.backward(r)
    params = m.parameters()
    check_grads(lambda: float(np.sum(m.forward(x) * r)), [dx] + [p.grad.copy() for p in params],
                [x] + [p.data for p in params], rng, limit=6, rtol=1e-5, atol=1e-7)


def test_identity_layer():
    layer = nn.Identity(dtype=np.float64)
    x = np.arange(6.0).reshape(2, 3)
    assert layer.forward(x) is x
    assert layer.backward(x) is x
    layer.input_grad = False
    assert layer.backward(x) is None
    with pytest.raises(TypeError):
        layer.forward(x.astype(np.float32))


def test_cli_trains_inception_small(tmp_path):
    res = run_python(["-m", "fastconv", "train", "--model", "inception_small", "--epochs", "1",
                      "--train-size", "64", "--test-size", "32", "--batch-size", "32",
                      "--no-save", "--no-progress", "--threads", "1"], timeout=240)
    assert res.returncode == 0, res.stderr
    assert "inception_small" in res.stdout + res.stderr
