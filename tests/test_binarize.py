"""fastconv.binarize: sign(w) * mean|w| weights, the straight-through gradient, training,
1-bit storage; (slow) a binary-weight LeNet-5 on MNIST."""

import os
from pathlib import Path

import numpy as np
import pytest

import fastconv
from fastconv import data, models, nn, optim
from fastconv.binarize import BinaryConv2D, BinaryLinear, binary_to_float, binary_weight
from fastconv.train import Trainer, load_model, save_model

MNIST = Path("/work/shared/data/mnist")


def test_binary_weight():
    w = np.array([[0.5, -1.0, 0.0], [2.0, -2.0, 2.0]], np.float32)
    wb, alpha = binary_weight(w)
    np.testing.assert_allclose(alpha, [0.5, 2.0])
    np.testing.assert_array_equal(wb, [[0.5, -0.5, 0.5], [2.0, -2.0, 2.0]])   # sign(0) = +1
    again, a2 = binary_weight(wb)                                              # a fixed point
    np.testing.assert_array_equal(again, wb)
    np.testing.assert_array_equal(a2, alpha)


def test_layers_are_replaced_and_compute_with_binary_weights():
    m = models.lenet5(seed=0)
    before = {k: v.copy() for k, v in m.state_dict().items()}
    b = fastconv.binarize(m)
    assert all(np.array_equal(v, m.state_dict()[k]) for k, v in before.items())
    assert [type(k).__name__ for k in b if isinstance(k, (nn.Conv2D, nn.Linear))] == \
        ["BinaryConv2D", "BinaryConv2D", "BinaryLinear", "BinaryLinear"]
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    want = fastconv.conv2d(x, binary_weight(b[0].weight.data)[0], b[0].bias.data)
    np.testing.assert_allclose(b[0].forward(x), want, rtol=1e-6)
    f = binary_to_float(b)
    assert not any(isinstance(k, (BinaryConv2D, BinaryLinear)) for k in f.modules())
    np.testing.assert_allclose(fastconv.compile(f)(x), b.eval().forward(x), rtol=1e-4, atol=1e-4)
    # the binary model compiles as it is: the plan convolves with sign(w) * alpha
    np.testing.assert_allclose(fastconv.compile(b)(x), b.eval().forward(x), rtol=1e-5, atol=1e-5)
    assert not np.allclose(fastconv.compile(b)(x), m.eval().forward(x), atol=1e-3)
    kept = fastconv.binarize(m, keep_first=True, keep_last=True)
    assert type(kept[0]) is nn.Conv2D and type(kept[9]) is nn.Linear
    assert type(kept[3]) is BinaryConv2D and type(kept[7]) is BinaryLinear
    assert "1-bit weights" in repr(b)


@pytest.mark.parametrize("layer", ["conv", "linear"])
def test_straight_through_gradient(layer):
    rng = np.random.default_rng(1)
    if layer == "conv":
        m = BinaryConv2D(2, 3, 3, seed=0, dtype=np.float64)
        x = rng.standard_normal((2, 2, 5, 5))
    else:
        m = BinaryLinear(4, 3, seed=0, dtype=np.float64)
        x = rng.standard_normal((5, 4))
    m.weight.data[...] = rng.uniform(-1.6, 1.6, m.weight.shape)       # some beyond the clip
    y = m.forward(x)
    dy = rng.standard_normal(y.shape)
    m.zero_grad()
    dx = m.backward(dy)
    wb = binary_weight(m.weight.data)[0]
    if layer == "conv":
        dxw, dwb, _ = fastconv.conv2d_backward(dy, x, wb)
    else:
        dxw, dwb, _ = fastconv.linear_backward(dy, x, wb)
    np.testing.assert_allclose(dx, dxw)
    np.testing.assert_allclose(m.weight.grad, np.where(np.abs(m.weight.data) <= 1, dwb, 0))
    assert (m.weight.grad[np.abs(m.weight.data) > 1] == 0).all()


def test_training_lowers_the_loss():
    (X, y), _ = data.shapes_split(512, 10, seed=2)
    b = fastconv.binarize(models.lenet5(seed=0))
    loss = nn.SoftmaxCrossEntropy()
    first = loss.forward(b.eval().forward(X), y)
    Trainer(b, loss, optim.Adam(b.parameters(), lr=1e-3), progress=False).fit((X, y), epochs=2, batch_size=32)
    assert loss.forward(b.eval().forward(X), y) < first


def test_saved_packed_one_bit_per_weight(tmp_path):
    m = models.lenet5(seed=0)
    b = fastconv.binarize(m)
    fpath, bpath = tmp_path / "f.npz", tmp_path / "b.npz"
    save_model(m, fpath)
    save_model(b, bpath)
    with np.load(bpath) as z:
        bits = z["model/7.weight_bits"]
        assert bits.dtype == np.uint8 and bits.size == (800 * 500 + 7) // 8
        assert "model/7.weight" not in z.files
    assert os.path.getsize(bpath) < 0.05 * os.path.getsize(fpath)
    x = np.random.default_rng(0).standard_normal((4, 1, 28, 28)).astype(np.float32)
    b2 = load_model(bpath)
    np.testing.assert_array_equal(b2.eval().forward(x), b.eval().forward(x))
    np.testing.assert_array_equal(b2[0].weight.data, binary_weight(b[0].weight.data)[0])


@pytest.mark.slow
@pytest.mark.skipif(not (MNIST / "t10k-images-idx3-ubyte.gz").exists(), reason="no MNIST files")
def test_binary_lenet_mnist_reaches_97_percent():
    X, y = data.mnist(root=MNIST, split="test", download=False)
    Xtr, ytr, Xv, yv = X[:8000], y[:8000], X[8000:], y[8000:]
    b = fastconv.binarize(models.lenet5(seed=0))
    opt = optim.Adam(b.parameters(), lr=1e-3)
    Trainer(b, nn.SoftmaxCrossEntropy(), opt, scheduler=optim.CosineLR(opt, T_max=5),
            progress=False).fit((Xtr, ytr), epochs=5, batch_size=64)
    acc = float(np.mean(b.eval().forward(Xv).argmax(1) == yv))
    assert acc >= 0.97, acc
