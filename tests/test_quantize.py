"""fastconv.quantize: BatchNorm folding, calibration, the int8 layers (bitwise against the
integer reference), float islands, save / load, the `fastconv compress` command, and
(slow) the accuracy of an int8 LeNet-5 on MNIST."""

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import fastconv
from fastconv import _kernels as K
from fastconv import cli, data, models, nn, optim
from fastconv import qfunctional as qf
from fastconv import reference as ref
from fastconv.checkpoint import CheckpointError
from fastconv.qlayers import QConv2D, QFloat, QLinear, QMaxPool2D, QuantizedModel
from fastconv.quantize import fold_batchnorm, weight_qparams
from fastconv.train import Trainer, load_model, save_model

MNIST = Path("/work/shared/data/mnist")


@pytest.fixture(scope="module")
def shapes():
    return data.shapes_split(1500, 300, seed=0)


@pytest.fixture(scope="module")
def lenet(shapes):
    (X, y), _ = shapes
    m = models.lenet5(seed=0)
    opt = optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    Trainer(m, nn.SoftmaxCrossEntropy(), opt, progress=False).fit((X, y), epochs=1, batch_size=64)
    return m.eval()


def _acc(model, X, y):
    return float(np.mean(model.forward(X).argmax(1) == y))


def test_lenet_int8_matches_float(lenet, shapes):
    (X, y), (Xt, yt) = shapes
    before = {k: v.copy() for k, v in lenet.state_dict().items()}
    q = fastconv.quantize(lenet, X[:300])
    assert all(np.array_equal(v, lenet.state_dict()[k]) for k, v in before.items())  # untouched
    out, want = q.forward(Xt), lenet.forward(Xt)
    assert out.dtype == np.float32 and out.shape == want.shape
    assert np.abs(out - want).max() < 0.1 * np.abs(want).max()
    assert np.mean(out.argmax(1) == want.argmax(1)) > 0.97
    assert abs(_acc(q, Xt, yt) - _acc(lenet, Xt, yt)) <= 0.02
    kinds = [type(m).__name__ for m in q.body]
    assert kinds == ["QConv2D", "QMaxPool2D", "QConv2D", "QMaxPool2D", "QFlatten", "QLinear", "QLinear"]
    assert [m.relu for m in q.body if isinstance(m, (QConv2D, QLinear))] == [True, True, True, False]
    assert q.body[-1].out == "float32" and q.body[0].out == "uint8"


def test_activations_stay_uint8_between_layers(lenet, shapes):
    _, (Xt, _) = shapes
    q = fastconv.quantize(lenet, Xt[:100])
    h = qf.quantize_u8_c4(Xt[:8], float(q.input_scale), int(q.input_zero))
    for layer in q.body[:-1]:
        h = layer.forward(h)
        assert h.dtype == np.uint8
    assert q.body[-1].forward(h).dtype == np.float32


def test_int8_layer_is_the_integer_reference(lenet, shapes):
    """A quantized layer's output is bitwise the NumPy integer reference on its buffers."""
    _, (Xt, _) = shapes
    q = fastconv.quantize(lenet, Xt[:100])
    conv = q.body[0]
    x = qf.quantize_u8(Xt[:4], float(q.input_scale), int(q.input_zero))
    s_in, s_out = float(conv.in_scale), float(conv.out_scale)
    mult = (conv.weight_scale.astype(np.float64) * s_in / s_out).astype(np.float32)
    want = ref.qconv2d(x, conv.weight, int(conv.in_zero), conv.bias, mult, "uint8",
                       int(conv.out_zero), True)
    got = qf.from_c4(conv.forward(qf.to_c4(x, int(q.input_zero))), conv.out_channels)
    np.testing.assert_array_equal(got, want)


def test_every_isa_gives_the_same_model_output(lenet, shapes):
    _, (Xt, _) = shapes
    q = fastconv.quantize(lenet, Xt[:100])
    outs = {}
    try:
        for isa in ("generic", "avx2", "avx512_vnni"):
            if K.set_qisa(isa) == isa:
                outs[isa] = q.forward(Xt[:16])
    finally:
        K.set_qisa(None)
    first = next(iter(outs.values()))
    for o in outs.values():
        np.testing.assert_array_equal(o, first)


@pytest.mark.parametrize("method", ["minmax", "percentile", "entropy"])
@pytest.mark.parametrize("per_channel", [True, False])
def test_methods_and_per_tensor(lenet, shapes, method, per_channel):
    (X, _), (Xt, yt) = shapes
    q = fastconv.quantize(lenet, X[:200], method=method, per_channel=per_channel)
    assert abs(_acc(q, Xt, yt) - _acc(lenet, Xt, yt)) <= 0.03
    assert q.method == method and q.per_channel == per_channel
    if not per_channel:
        assert len(set(q.body[0].weight_scale.tolist())) == 1


def test_reduce_range(lenet, shapes):
    (X, _), (Xt, yt) = shapes
    q = fastconv.quantize(lenet, X[:200], reduce_range=True)
    assert int(q.input_zero) <= 127 and "7-bit" in repr(q)
    assert abs(_acc(q, Xt, yt) - _acc(lenet, Xt, yt)) <= 0.03
    outs = []
    try:
        for isa in ("generic", "avx2", "avx512_vnni"):
            if K.set_qisa(isa) == isa:
                outs.append(q.forward(Xt[:16]))
    finally:
        K.set_qisa(None)
    for o in outs:
        np.testing.assert_array_equal(o, outs[0])


def test_calibration_forms(lenet, shapes):
    (X, y), _ = shapes
    a = fastconv.quantize(lenet, X[:128])
    b = fastconv.quantize(lenet, [X[:64], X[64:128]])
    c = fastconv.quantize(lenet, iter([(X[:64], y[:64]), (X[64:128], y[64:128])]))
    for other in (b, c):
        np.testing.assert_array_equal(a.forward(X[:8]), other.forward(X[:8]))
    with pytest.raises(ValueError, match="empty"):
        fastconv.quantize(lenet, [])
    with pytest.raises(TypeError, match="calibration"):
        fastconv.quantize(lenet, "images")
    with pytest.raises(ValueError, match="method"):
        fastconv.quantize(lenet, X[:8], method="kl")
    with pytest.raises(TypeError, match="already quantized"):
        fastconv.quantize(a, X[:8])


def test_weight_quantization_is_symmetric_per_channel():
    w = np.array([[1.0, -2.0, 0.5], [0.0, 0.0, 0.0], [3.0, 1.5, -0.01]])
    q, s = weight_qparams(w)
    np.testing.assert_allclose(s, [2 / 127, 1.0, 3 / 127], rtol=1e-6)
    assert q.dtype == np.int8 and q[0, 1] == -127 and q[2, 0] == 127 and not q[1].any()
    assert np.abs(q).max() <= 127


def test_batchnorm_is_folded(shapes):
    (X, _), _ = shapes
    m = nn.Sequential(nn.Conv2D(1, 6, 3, seed=1), nn.BatchNorm2D(6), nn.ReLU(), nn.Flatten(),
                      nn.Linear(6 * 26 * 26, 4, seed=2))
    m.train()
    m.forward(X[:64])                       # running statistics
    m.eval()
    f = fold_batchnorm(m)
    assert [type(k).__name__ for k in f] == ["Conv2D", "ReLU", "Flatten", "Linear"]
    np.testing.assert_allclose(f.forward(X[:8]), m.forward(X[:8]), rtol=1e-4, atol=1e-4)
    q = fastconv.quantize(m, X[:100])
    assert not any(isinstance(k, QFloat) for k in q.modules())
    assert np.abs(q.forward(X[:8]) - m.forward(X[:8])).max() < 0.05 * np.abs(m.forward(X[:8])).max()


def test_float_islands_and_residual_networks(shapes):
    (X, _), _ = shapes
    r = models.resnet_small(in_channels=1, seed=0).eval()
    q = fastconv.quantize(r, X[:64])
    assert any(isinstance(k, QConv2D) for k in q.modules())      # the stem runs int8
    assert any(isinstance(k, QFloat) for k in q.modules())       # residual blocks, pooling
    want = r.forward(X[:8])
    assert np.abs(q.forward(X[:8]) - want).max() < 0.1 * np.abs(want).max()
    s = nn.Sequential(nn.Conv2D(1, 6, 3, seed=1), nn.ReLU(), nn.AvgPool2D(2), nn.Conv2D(6, 5, 3, seed=2),
                      nn.Flatten(), nn.Sigmoid(), nn.Dropout(0.5), nn.Linear(5 * 11 * 11, 3, seed=3),
                      nn.ReLU(), nn.Tanh()).eval()
    qs = fastconv.quantize(s, X[:64])
    assert np.abs(qs.forward(X[:8]) - s.forward(X[:8])).max() < 0.05


def test_layers_beyond_the_int32_limit_stay_float():
    """More than 32768 products per output would not sum exactly in int32: such a layer
    becomes a float island, the rest stays int8."""
    m = nn.Sequential(nn.Conv2D(1, 4, 3, padding=1, seed=1), nn.ReLU(), nn.Flatten(),
                      nn.Linear(4 * 100 * 100, 10, seed=2)).eval()
    x = np.random.default_rng(0).random((4, 1, 100, 100)).astype(np.float32)
    q = fastconv.quantize(m, x)
    assert [type(k).__name__ for k in q.body] == ["QConv2D", "QFlatten", "QFloat"]
    assert np.abs(q.forward(x) - m.forward(x)).max() < 0.05 * np.abs(m.forward(x)).max()


def test_inference_only(lenet, shapes):
    (X, _), _ = shapes
    q = fastconv.quantize(lenet, X[:64])
    with pytest.raises(RuntimeError, match="inference"):
        q.backward(np.zeros((1, 10), np.float32))
    with pytest.raises(RuntimeError, match="no backward"):
        q.body[0].backward(np.zeros(1, np.float32))
    assert q.parameters() == []
    with pytest.raises(ValueError, match="empty"):
        optim.SGD(q.parameters(), lr=0.1)
    with pytest.raises(TypeError, match="float32"):
        q.to(np.float64)
    with pytest.raises(TypeError, match="uint8"):
        q.body[0].forward(X[:1])
    text = repr(q)
    assert "int8 weights per-channel" in text and "0.2" in text and "kB" in text
    assert "QConv2D(1, 20" in text and "u8(s=" in text


def test_compile_int8(lenet, shapes):
    (X, _), (Xt, _) = shapes
    q = fastconv.quantize(lenet, X[:64])
    plan = fastconv.compile(q)
    want = q.forward(Xt[:16])
    np.testing.assert_array_equal(plan(Xt[:16]), want)          # the same int8 kernels: bitwise
    np.testing.assert_array_equal(plan(Xt[:3]), q.forward(Xt[:3]))
    state = q.state_dict()                                       # a snapshot: later edits stay out
    state["body.0.weight"] = np.zeros_like(state["body.0.weight"])
    q.load_state_dict(state)
    assert not np.array_equal(q.forward(Xt[:16]), want)
    np.testing.assert_array_equal(plan(Xt[:16]), want)
    assert "QuantizedPlan" in repr(plan)
    with pytest.raises(ValueError, match="tune=True"):
        fastconv.compile(q, tune=True)
    with pytest.raises(TypeError, match="float32"):
        plan(Xt[:2].astype(np.float64))
    # several threads, each its own inputs, through one plan
    batches = [Xt[16 * i:16 * i + 16] for i in range(8)]
    expect = [plan(b) for b in batches]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            got = list(pool.map(plan, batches))
            for g, e in zip(got, expect):
                np.testing.assert_array_equal(g, e)


def test_save_and_load(lenet, shapes, tmp_path):
    (X, _), (Xt, _) = shapes
    q = fastconv.quantize(lenet, X[:64])
    fpath, qpath = tmp_path / "f.npz", tmp_path / "q.npz"
    save_model(lenet, fpath)
    save_model(q, qpath)
    assert os.path.getsize(qpath) <= 0.3 * os.path.getsize(fpath)
    with np.load(qpath) as z:
        assert z["model/body.0.weight"].dtype == np.int8
    q2 = load_model(qpath)
    assert isinstance(q2, QuantizedModel)
    np.testing.assert_array_equal(q2.forward(Xt), q.forward(Xt))
    q3 = fastconv.quantize(lenet, X[64:128])          # same structure, other ranges
    load_model(qpath, q3)
    np.testing.assert_array_equal(q3.forward(Xt), q.forward(Xt))
    with pytest.raises(CheckpointError, match="QuantizedModel"):
        load_model(qpath, models.lenet5())


def test_compress_command(lenet, tmp_path, capsys):
    src = tmp_path / "m.npz"
    save_model(lenet, src, metadata={"builder": "lenet5", "kwargs": {}})
    rc = cli.main(["compress", str(src), "--int8", "--prune", "0.5", "--finetune-epochs", "1",
                   "--dataset", "shapes", "--train-size", "600", "--test-size", "200",
                   "--calibration", "200"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "float32" in out and "pruned 50%" in out and "int8" in out and "images/s" in out
    saved = tmp_path / "m-pruned50-int8.npz"
    q = load_model(saved)
    assert isinstance(q, QuantizedModel) and q.body[0].out_channels == 10
    rc = cli.main(["compress", str(src)])
    assert rc == 2 and "nothing to do" in capsys.readouterr().err
    rc = cli.main(["compress", str(tmp_path / "missing.npz"), "--int8"])
    assert rc == 2 and "cannot load" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not (MNIST / "t10k-images-idx3-ubyte.gz").exists(), reason="no MNIST files")
def test_lenet_mnist_int8_loses_at_most_0_3_points():
    X, y = data.mnist(root=MNIST, split="test", download=False)
    Xtr, ytr, Xv, yv = X[:8000], y[:8000], X[8000:], y[8000:]
    m = models.lenet5(seed=0)
    opt = optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    Trainer(m, nn.SoftmaxCrossEntropy(), opt, scheduler=optim.CosineLR(opt, T_max=4),
            progress=False).fit((Xtr, ytr), epochs=4, batch_size=64)
    fa = _acc(m.eval(), Xv, yv)
    assert fa > 0.97
    for method in ("minmax", "percentile", "entropy"):
        qa = _acc(fastconv.quantize(m, Xtr[:1000], method=method), Xv, yv)
        assert fa - qa <= 0.003, (method, fa, qa)
