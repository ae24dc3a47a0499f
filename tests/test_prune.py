"""fastconv.prune: structured pruning (channels removed through BatchNorm, Flatten, Residual
and Concat; equal to zeroing them), unstructured pruning (masks kept by the optimisers),
training, compiling, saving; (slow) a pruned LeNet-5 fine-tuned on MNIST."""

from pathlib import Path

import numpy as np
import pytest

import fastconv
from fastconv import data, models, nn, optim
from fastconv.prune import MaskedParameter, PrunedConv2D, PrunedLinear, sparsity
from fastconv.train import Trainer, load_model, save_model

MNIST = Path("/work/shared/data/mnist")


@pytest.fixture(scope="module")
def shapes():
    return data.shapes_split(800, 200, seed=1)


def _rand_bias(model, seed=0):
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv2D, nn.Linear)) and m.bias is not None:
            m.bias.data[...] = rng.normal(0, 0.1, m.bias.shape)
    return model


def _zeroed_twin(model, pruned):
    """The original model with the removed output channels' weights and biases zeroed:
    through ReLU and max pooling a zero channel contributes nothing, so it must compute
    what the pruned model computes."""
    twin = fastconv.prune(model, 0.0)           # a plain copy (nothing removed)
    for a, b in zip([m for m in twin.modules() if isinstance(m, (nn.Conv2D, nn.Linear))],
                    [m for m in pruned.modules() if isinstance(m, (nn.Conv2D, nn.Linear))]):
        w, kept_w = a.weight.data, b.weight.data
        # the kept output channels are those whose rows appear in the pruned layer
        n_out = kept_w.shape[0]
        if n_out < w.shape[0]:
            norms = np.abs(w.reshape(w.shape[0], -1).astype(np.float64)).sum(1)
            keep = np.sort(np.argsort(-norms, kind="stable")[:n_out])
            drop = np.setdiff1d(np.arange(w.shape[0]), keep)
            w[drop] = 0
            a.bias.data[drop] = 0
    return twin


@pytest.mark.parametrize("builder,shape", [("lenet5", (1, 28, 28)), ("vgg_small", (3, 32, 32))])
def test_structured_equals_zeroing_channels(builder, shape):
    model = _rand_bias(models.get_model(builder, seed=0)).eval()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    p = fastconv.prune(model, 0.5).eval()
    assert all(np.array_equal(v, model.state_dict()[k]) for k, v in before.items())
    convs = [m for m in p.modules() if isinstance(m, (nn.Conv2D, nn.Linear))]
    orig = [m for m in model.modules() if isinstance(m, (nn.Conv2D, nn.Linear))]
    for a, b in zip(convs[:-1], orig[:-1]):
        assert a.weight.shape[0] == max(1, round(b.weight.shape[0] / 2))
    assert convs[-1].weight.shape[0] == orig[-1].weight.shape[0]        # classes kept
    assert all(isinstance(m, (PrunedConv2D, PrunedLinear)) for m in convs)
    x = np.random.default_rng(0).standard_normal((4,) + shape).astype(np.float32)
    np.testing.assert_allclose(p.forward(x), _zeroed_twin(model, p).eval().forward(x),
                               rtol=1e-4, atol=1e-4)
    assert p.num_parameters() < 0.3 * model.num_parameters()
    assert "pruned from" in repr(p)


def test_l2_criterion_and_amounts():
    m = models.lenet5(seed=3).eval()
    for amount, crit in [(0.0, "l1"), (0.25, "l2"), (0.9, "l1")]:
        p = fastconv.prune(m, amount, criterion=crit)
        assert p[0].out_channels == max(1, round(20 * (1 - amount)))
        p.forward(np.zeros((1, 1, 28, 28), np.float32))
    with pytest.raises(ValueError, match="amount"):
        fastconv.prune(m, 1.0)
    with pytest.raises(ValueError, match="criterion"):
        fastconv.prune(m, 0.5, criterion="l0")
    with pytest.raises(TypeError, match="structured"):
        fastconv.prune(m, 0.5, structured="yes")


def test_batchnorm_and_residual_networks(shapes):
    (X, y), _ = shapes
    X3 = np.repeat(X[:, :, 2:26, 2:26], 3, axis=1)
    r = models.resnet_small(seed=0)
    r.train()
    r.forward(X3[:32])                          # running statistics
    p = fastconv.prune(r, 0.5)
    # the stem's channels survive through the identity-skip block consistently
    stem, bn = p[0], p[1]
    assert stem.out_channels == 8 and bn.num_features == 8
    block = p[3][0]
    assert block.body[0].in_channels == 8 and block.body[3].out_channels == 8
    assert block.body[0].out_channels == 8                              # inner layer pruned
    down = p[4][0]                                                      # projection shortcut
    assert down.body[3].out_channels == 32 and down.shortcut[0].out_channels == 32
    out = p.eval().forward(X3[:4])
    assert out.shape == (4, 10) and np.isfinite(out).all()
    opt = optim.SGD(p.parameters(), lr=0.01, momentum=0.9)
    Trainer(p, nn.SoftmaxCrossEntropy(), opt, progress=False).fit((X3[:128], y[:128]), epochs=1, batch_size=32)


def test_concat_branches():
    rng = np.random.default_rng(0)
    m = _rand_bias(nn.Sequential(
        nn.Conv2D(2, 8, 3, padding=1, seed=1), nn.ReLU(),
        nn.Concat(nn.Sequential(nn.Conv2D(8, 6, 1, seed=2), nn.ReLU()),
                  nn.Sequential(nn.Conv2D(8, 4, 3, padding=1, seed=3), nn.ReLU())),
        nn.MaxPool2D(2), nn.Flatten(), nn.Linear(10 * 4 * 4, 5, seed=4))).eval()
    p = fastconv.prune(m, 0.5).eval()
    assert p[0].out_channels == 4 and p[-1].in_features == 5 * 16
    x = rng.standard_normal((3, 2, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(p.forward(x), _zeroed_twin(m, p).eval().forward(x), rtol=1e-4, atol=1e-4)


def test_pruned_model_is_faster_shaped_and_compiles():
    m = models.vgg_small(seed=0).eval()
    p = fastconv.prune(m, 0.5).eval()
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)
    plan = fastconv.compile(p)
    np.testing.assert_allclose(plan(x), p.forward(x), rtol=1e-4, atol=1e-4)


def test_unstructured_masks_survive_training(shapes):
    (X, y), _ = shapes
    m = models.lenet5(seed=0)
    u = fastconv.prune(m, 0.6, structured=False)
    for layer in [k for k in u.modules() if isinstance(k, (nn.Conv2D, nn.Linear))]:
        assert isinstance(layer.weight, MaskedParameter)
        assert abs(np.mean(layer.weight.data == 0) - 0.6) < 0.01
    assert abs(sparsity(u) - 0.6) < 0.01
    assert "60.0% zeros" in repr(u) and "pruned" in repr(u[0].weight)
    zero = {id(k): k.weight.data == 0 for k in u.modules() if isinstance(k, (nn.Conv2D, nn.Linear))}
    for opt in (optim.SGD(u.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4),
                optim.Adam(u.parameters(), lr=1e-3)):
        Trainer(u, nn.SoftmaxCrossEntropy(), opt, progress=False).fit((X[:256], y[:256]), epochs=1,
                                                                      batch_size=32)
        for k in u.modules():
            if id(k) in zero:
                assert not k.weight.data[zero[id(k)]].any()
    np.testing.assert_allclose(fastconv.compile(u.eval())(X[:4]), u.forward(X[:4]), rtol=1e-4,
                               atol=1e-4)


def test_save_and_load(tmp_path, shapes):
    (X, _), _ = shapes
    m = models.lenet5(seed=0).eval()
    for kind, p in [("s", fastconv.prune(m, 0.5)), ("u", fastconv.prune(m, 0.5, structured=False))]:
        path = tmp_path / f"{kind}.npz"
        save_model(p, path)
        q = load_model(path).eval()
        np.testing.assert_array_equal(q.forward(X[:8]), p.eval().forward(X[:8]))
        assert type(q[0]) is PrunedConv2D
        if kind == "u":
            assert isinstance(q[0].weight, MaskedParameter)
            np.testing.assert_array_equal(q[0].weight.mask, p[0].weight.mask)


@pytest.mark.slow
@pytest.mark.skipif(not (MNIST / "t10k-images-idx3-ubyte.gz").exists(), reason="no MNIST files")
def test_lenet_mnist_pruned_half_within_one_point():
    X, y = data.mnist(root=MNIST, split="test", download=False)
    Xtr, ytr, Xv, yv = X[:8000], y[:8000], X[8000:], y[8000:]
    m = models.lenet5(seed=0)
    opt = optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    Trainer(m, nn.SoftmaxCrossEntropy(), opt, scheduler=optim.CosineLR(opt, T_max=4),
            progress=False).fit((Xtr, ytr), epochs=4, batch_size=64)
    acc = lambda mod: float(np.mean(mod.eval().forward(Xv).argmax(1) == yv))  # noqa: E731
    fa = acc(m)
    p = fastconv.prune(m, 0.5)
    opt = optim.SGD(p.parameters(), lr=0.01, momentum=0.9)
    Trainer(p, nn.SoftmaxCrossEntropy(), opt, progress=False).fit((Xtr, ytr), epochs=1,
                                                                  batch_size=64, seed=1)
    assert fa - acc(p) <= 0.01, (fa, acc(p))
