"""The model builders, and seeded training runs: native against reference, frozen layers."""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import models, nn, optim

F32, F64 = np.float32, np.float64


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Many small kernel calls: on a busy machine, OpenMP thread hand-offs would
    # dominate. The multi-threaded kernels are compared in test_nn_layers.py.
    prev = fastconv.set_num_threads(1)
    yield
    fastconv.set_num_threads(prev)


def test_lenet5_exactly_as_specified():
    m = models.lenet5()
    kinds = [type(layer).__name__ for layer in m]
    assert kinds == ["Conv2D", "ReLU", "MaxPool2D", "Conv2D", "ReLU", "MaxPool2D", "Flatten", "Linear",
                     "ReLU", "Linear"]
    assert m[0].weight.shape == (20, 1, 5, 5) and m[0].padding == (0, 0) and m[0].stride == (1, 1)
    assert m[3].weight.shape == (50, 20, 5, 5)
    assert m[2].kernel_size == m[2].stride == (2, 2) == m[5].kernel_size
    assert m[7].weight.shape == (500, 800) and m[9].weight.shape == (10, 500)
    assert m.num_parameters() == 520 + 25050 + 400500 + 5010
    assert all(p.dtype == F32 for p in m.parameters())
    y = m.forward(np.zeros((2, 1, 28, 28), F32))
    assert y.shape == (2, 10)
    assert m.input_grad is False  # the first layer does not compute its input gradient
    assert m.backward(np.ones((2, 10), F32)) is None
    m3 = models.lenet5(in_channels=3, num_classes=7, input_size=32)
    assert m3[0].weight.shape == (20, 3, 5, 5) and m3[7].weight.shape == (500, 50 * 5 * 5)
    assert m3.forward(np.zeros((1, 3, 32, 32), F32)).shape == (1, 7)


def test_vgg_small_exactly_as_specified():
    m = models.vgg_small()
    kinds = [type(layer).__name__ for layer in m]
    assert kinds == ["Conv2D", "ReLU", "Conv2D", "ReLU", "MaxPool2D", "Conv2D", "ReLU", "Conv2D", "ReLU",
                     "MaxPool2D", "Flatten", "Linear", "ReLU", "Linear"]
    convs = [layer for layer in m if isinstance(layer, nn.Conv2D)]
    assert [c.weight.shape for c in convs] == [(32, 3, 3, 3), (32, 32, 3, 3), (64, 32, 3, 3), (64, 64, 3, 3)]
    assert all(c.padding == (1, 1) and c.stride == (1, 1) for c in convs)
    assert m[11].weight.shape == (256, 4096) and m[13].weight.shape == (10, 256)
    assert m.forward(np.zeros((2, 3, 32, 32), F32)).shape == (2, 10)
    g = models.vgg_small(in_channels=1, num_classes=5, input_size=28)
    assert g[11].weight.shape == (256, 64 * 7 * 7)
    assert g.forward(np.zeros((1, 1, 28, 28), F32)).shape == (1, 5)


def test_resnet_small_structure_and_gradients():
    m = models.resnet_small(dtype=F64, seed=1)
    mods = list(m.modules())
    residuals = [x for x in mods if isinstance(x, nn.Residual)]
    assert len(residuals) == 3
    assert sum(r.shortcut is not None for r in residuals) == 1
    proj = next(r.shortcut for r in residuals if r.shortcut is not None)
    assert proj[0].kernel_size == (1, 1) and proj[0].stride == (2, 2)
    assert any(isinstance(x, nn.BatchNorm2D) for x in mods)
    assert isinstance(m[-2], nn.GlobalAvgPool2D) and isinstance(m[-1], nn.Linear)
    x = np.random.default_rng(0).standard_normal((4, 3, 8, 8))
    y = m.forward(x)
    assert y.shape == (4, 10)
    loss_fn = nn.SoftmaxCrossEntropy()
    loss_fn.forward(y, np.array([0, 1, 2, 3]))
    assert m.backward(loss_fn.backward()) is None
    assert all(p.grad.any() for p in m.parameters())
    m.input_grad = True
    m.forward(x)
    assert m.backward(loss_fn.backward()).shape == x.shape
    assert models.resnet_small(in_channels=1, num_classes=4, width=8).forward(
        np.zeros((2, 1, 12, 12), F32)).shape == (2, 4)


def test_seeds_and_dtypes():
    for build in (models.lenet5, models.vgg_small, models.resnet_small):
        a, b, c = build(seed=3), build(seed=3), build(seed=4)
        sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
        assert all(np.array_equal(sa[k], sb[k]) for k in sa)
        assert not all(np.array_equal(sa[k], sc[k]) for k in sa)
        d = build(seed=3, dtype=F64)
        assert all(m.dtype == F64 for m in d.modules())
        np.testing.assert_array_equal(d.state_dict()[next(iter(sa))].astype(F32), sa[next(iter(sa))])
    with pytest.raises(ValueError, match="unknown model 'lenet'"):
        models.get_model("lenet")
    assert isinstance(models.get_model("lenet5", num_classes=3), nn.Sequential)
    with pytest.raises(ValueError, match="input_size >= 16"):
        models.lenet5(input_size=12)
    with pytest.raises(TypeError, match="dtype must be"):
        models.vgg_small(dtype=np.int8)


def _train(model, steps, backend, data, lr=0.05):
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    loss_fn = nn.SoftmaxCrossEntropy()
    losses = []
    with fastconv.use_backend(backend):
        for step in range(steps):
            x, labels = data[step % len(data)]
            opt.zero_grad()
            losses.append(loss_fn.forward(model.forward(x), labels))
            model.backward(loss_fn.backward())
            opt.step()
    return np.array(losses)


def _data(n_batches, batch=16, dtype=F64, shape=(1, 28, 28), classes=10):
    rng = np.random.default_rng(2024)
    return [(rng.standard_normal((batch,) + shape).astype(dtype), rng.integers(0, classes, batch))
            for _ in range(n_batches)]


def test_lenet5_trains_the_same_on_both_backends():
    """A seeded LeNet-5 trained for 10 steps in float64: same losses and weights within 1e-9."""
    data = _data(2, batch=8)
    native = models.lenet5(dtype=F64, seed=7)
    reference = models.lenet5(dtype=F64, seed=7)
    ln = _train(native, 10, "native", data)
    lr_ = _train(reference, 10, "reference", data)
    assert np.all(np.isfinite(ln)) and ln[-1] < ln[0]
    np.testing.assert_allclose(ln, lr_, rtol=1e-9)
    sn, sr = native.state_dict(), reference.state_dict()
    for k in sn:
        np.testing.assert_allclose(sn[k], sr[k], rtol=1e-9, atol=1e-12, err_msg=k)
    changed = models.lenet5(dtype=F64, seed=7).state_dict()
    assert all(not np.array_equal(sn[k], changed[k]) for k in sn)


def test_resnet_small_trains_the_same_on_both_backends():
    data = _data(2, batch=4, shape=(3, 8, 8))
    a = models.resnet_small(dtype=F64, seed=5, width=4)
    b = models.resnet_small(dtype=F64, seed=5, width=4)
    la = _train(a, 3, "native", data)
    lb = _train(b, 3, "reference", data)
    np.testing.assert_allclose(la, lb, rtol=1e-9)
    sa, sb = a.state_dict(), b.state_dict()
    for k in sa:
        np.testing.assert_allclose(sa[k], sb[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_frozen_layers_unchanged_after_training():
    model = models.lenet5(dtype=F32, seed=1)
    model[0].freeze()
    model[3].freeze()
    before = model.state_dict()
    losses = _train(model, 4, "native", _data(2, batch=8, dtype=F32))
    assert np.all(np.isfinite(losses))
    after = model.state_dict()
    for k in ("0.weight", "0.bias", "3.weight", "3.bias"):
        np.testing.assert_array_equal(after[k], before[k])
    for k in ("7.weight", "7.bias", "9.weight", "9.bias"):
        assert not np.array_equal(after[k], before[k])
    assert not model[0].weight.grad.any() and not model[3].weight.grad.any()
    model.unfreeze()
    _train(model, 1, "native", _data(1, batch=8, dtype=F32))
    assert not np.array_equal(model.state_dict()["0.weight"], before["0.weight"])


def test_dropout_and_batchnorm_in_a_model_train_vs_eval():
    net = nn.Sequential(nn.Conv2D(1, 4, 3, padding=1, dtype=F64, seed=0), nn.BatchNorm2D(4, dtype=F64),
                        nn.ReLU(dtype=F64), nn.Flatten(dtype=F64), nn.Dropout(0.5, dtype=F64, seed=1),
                        nn.Linear(4 * 6 * 6, 3, dtype=F64, seed=2))
    x = np.random.default_rng(0).standard_normal((5, 1, 6, 6))
    t1, t2 = net.forward(x), net.forward(x)
    assert not np.allclose(t1, t2)  # new dropout mask, and batch statistics moved the running ones
    net.eval()
    e1, e2 = net.forward(x), net.forward(x)
    np.testing.assert_array_equal(e1, e2)  # deterministic in eval
    single = net.forward(x[:1])
    np.testing.assert_allclose(single, e1[:1], rtol=1e-12)  # running stats: no batch dependence
