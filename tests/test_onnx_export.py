"""fastconv.onnx.save: fastconv models -> ONNX -> onnxruntime give the model's own
outputs (1e-5 of the largest magnitude), for the built-in models, every layer and
every container; the file reads back with fastconv.onnx.load to the same network."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import fastconv.onnx as fonnx  # noqa: E402
from fastconv import models, nn  # noqa: E402

RTOL = 1e-5


def randomize_bn(model, seed=0):
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2D):
            C = m.num_features
            m.running_mean[...] = rng.uniform(-0.5, 0.5, C)
            m.running_var[...] = rng.uniform(0.5, 2.0, C)
            if m.affine:
                m.weight.data[...] = rng.uniform(0.5, 1.5, C)
                m.bias.data[...] = rng.uniform(-0.5, 0.5, C)
    return model


def run_ort(path_or_bytes, *xs):
    src = str(path_or_bytes) if not isinstance(path_or_bytes, bytes) else path_or_bytes
    sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    return sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), xs)})


def rel_err(a, b):
    return float(np.abs(a - b).max()) / max(float(np.abs(b).max()), 1e-30)


def check_roundtrip(model, shapes, tmp_path, opset=fonnx.DEFAULT_OPSET, batch=3, seed=0):
    shapes = [shapes] if isinstance(shapes[0], int) else shapes
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal((batch,) + tuple(s)).astype(model.dtype) for s in shapes]
    path = fonnx.save(model, tmp_path / "m.onnx", shapes if len(shapes) > 1 else shapes[0], opset=opset)
    model.eval()
    want = model.forward(*xs)
    want = list(want) if isinstance(want, tuple) else [want]
    got = run_ort(path, *xs)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and rel_err(g, w) <= RTOL
    back = fonnx.load(path)
    again = back.forward(*xs)
    again = list(again) if isinstance(again, tuple) else [again]
    for a, w in zip(again, want):
        assert rel_err(a, w) <= 1e-6
    return path


@pytest.mark.parametrize("name", list(models.MODELS))
def test_builtin_models(name, tmp_path):
    model = randomize_bn(models.get_model(name))
    shape = (1, 28, 28) if name == "lenet5" else (3, 32, 32)
    check_roundtrip(model, shape, tmp_path)


def every_layer_net(seed=0):
    """One network holding every layer of fastconv.nn, in all four containers."""
    s = iter(np.random.SeedSequence(seed).spawn(32))
    block = nn.Graph(inputs="x", outputs="y", nodes=[
        ("split", nn.Split((4, 4), axis=1), ["x"], ["a", "b"]),
        ("sig", nn.Sigmoid(), ["b"], ["sb"]),
        ("mul", nn.Mul(), ["a", "sb"], ["m"]),
        ("sub", nn.Sub(np.linspace(-1, 1, 4).reshape(4, 1, 1), reverse=True), ["m"], ["d"]),
        ("div", nn.Div(np.full((1, 4, 1, 1), 2.0)), ["d"], ["q"]),
        ("add", nn.Add(), ["q", "a"], ["p"]),
        ("cat", nn.Cat(1), ["p", "b"], ["y"]),
    ])
    return nn.Sequential(
        nn.Conv2D(3, 8, 3, padding="same", seed=next(s)),
        nn.BatchNorm2D(8),
        nn.LeakyReLU(0.1),
        nn.Residual(nn.Sequential(nn.Conv2D(8, 8, 3, padding=2, dilation=2, groups=2, seed=next(s)),
                                  nn.ReLU6())),
        nn.Residual(nn.Sequential(nn.Conv2D(8, 8, 3, stride=2, padding=1, bias=False, seed=next(s)),
                                  nn.BatchNorm2D(8, affine=False)),
                    shortcut=nn.Sequential(nn.AvgPool2D(2, ceil_mode=True, count_include_pad=False),
                                           nn.Identity())),
        nn.Concat(nn.Sequential(nn.Pad2D((1, 0, 0, 1)), nn.MaxPool2D(2, stride=1)),
                  nn.Sequential(nn.Conv2D(8, 4, 1, seed=next(s)), nn.HardSwish(), nn.HardSigmoid(0.2, 0.4),
                                nn.Conv2D(4, 8, 1, seed=next(s)))),
        nn.Conv2D(16, 8, 1, seed=next(s)),
        nn.Tanh(),
        block,
        nn.Clip(-0.8, None),
        nn.MaxPool2D(3, stride=2, padding=1, ceil_mode=True),
        nn.AvgPool2D(3, stride=1, padding=1),
        nn.Transpose((0, 2, 3, 1)),
        nn.Slice((-1,), (None,), (3,), (-1,)),
        nn.Transpose((0, 3, 1, 2)),
        nn.Reshape((-1, 8, 3 * 3)),
        nn.Softmax(-1),
        nn.Reshape((-1, 8, 3, 3)),
        nn.Dropout(0.3, seed=next(s)),
        nn.Mean((2,), keepdims=True),
        nn.Flatten(),
        nn.MatMul(np.random.default_rng(1).standard_normal((24, 12))),
        nn.Linear(12, 6, seed=next(s)),
        nn.LogSoftmax(),
    )


@pytest.mark.parametrize("opset", [13, 17, 18, onnx.defs.onnx_opset_version()])
def test_every_layer_and_container(opset, tmp_path):
    model = randomize_bn(every_layer_net())
    model.train()
    check_roundtrip(model, (3, 10, 10), tmp_path, opset=opset)


def test_export_keeps_modes_and_uses_eval(tmp_path):
    model = randomize_bn(models.resnet_small(width=4))
    model.train()
    model[1].eval()                    # a mixed state must come back as it was
    modes = [m.training for m in model.modules()]
    stats = [b.copy() for _, b in model.named_buffers()]
    fonnx.save(model, tmp_path / "r.onnx", (3, 8, 8))
    assert [m.training for m in model.modules()] == modes
    assert all(np.array_equal(a, b) for a, (_, b) in zip(stats, model.named_buffers()))
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    got = run_ort(tmp_path / "r.onnx", x)[0]
    assert rel_err(got, model.eval().forward(x)) <= RTOL


def test_graph_with_two_inputs_and_outputs(tmp_path):
    g = nn.Graph(inputs=["img", "bias"], outputs=["logits", "feat"], nodes=[
        ("conv", nn.Conv2D(2, 4, 3, padding=1, seed=0), ["img"], ["c"]),
        ("add", nn.Add(), ["c", "bias"], ["s"]),
        ("relu", nn.ReLU(), ["s"], ["feat"]),
        ("pool", nn.GlobalAvgPool2D(), ["feat"], ["p"]),
        ("fc", nn.Linear(4, 3, seed=1), ["p"], ["logits"]),
    ])
    check_roundtrip(g, [(2, 5, 5), (4, 1, 1)], tmp_path)
    m = onnx.load(str(tmp_path / "m.onnx"))
    assert [i.name for i in m.graph.input] == ["img", "bias"]
    assert [o.name for o in m.graph.output] == ["logits", "feat"]


def test_float64_model(tmp_path):
    # (onnxruntime's CPU provider has no float64 Conv, so a dense network)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5, seed=0), nn.Tanh(), nn.Linear(5, 3, seed=1),
                          nn.Softmax(), dtype=np.float64)
    check_roundtrip(model, (3, 4), tmp_path)
    assert onnx.load(str(tmp_path / "m.onnx")).graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE


def test_file_is_valid_and_batch_is_free(tmp_path):
    path = fonnx.save(models.vgg_small(), tmp_path / "sub" / "v.onnx", (3, 32, 32))
    m = onnx.load(str(path))
    onnx.checker.check_model(m, full_check=True)
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    assert m.opset_import[0].version == fonnx.DEFAULT_OPSET
    assert sorted(p.name for p in path.parent.iterdir()) == ["v.onnx"]     # no temporary left


class Custom(nn.Module):
    def forward(self, x):
        return x


def test_errors_leave_existing_file(tmp_path):
    path = tmp_path / "keep.onnx"
    path.write_bytes(b"old")
    with pytest.raises(TypeError, match="Custom"):
        fonnx.save(nn.Sequential(nn.ReLU(), Custom()), path, (3,))
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["keep.onnx"]
    with pytest.raises(ValueError, match="opset"):
        fonnx.save(nn.ReLU(), path, (3,), opset=9)
    with pytest.raises(TypeError, match="input_shape"):
        fonnx.save(nn.ReLU(), path, None)
    with pytest.raises(ValueError, match=r"input of shape \(1, 3, 28, 28\).*without the batch axis"):
        fonnx.save(models.lenet5(), path, (3, 28, 28))     # lenet5 takes one channel
    with pytest.raises(ValueError, match=r"layer '0' \(Conv2D\) cannot run on input of shape \(1, 8, 1, 28, 28\)"):
        fonnx.save(models.lenet5(), path, (8, 1, 28, 28))  # the batch axis given too
    with pytest.raises(ValueError, match=r"the model \(Conv2D\) cannot run on input of shape \(1, 1, 3, 8, 8\)"):
        fonnx.save(nn.Conv2d(3, 4, 3), path, (1, 3, 8, 8))
    with pytest.raises(TypeError, match="fastconv.nn.Module"):
        fonnx.save("model", path, (3,))
    assert path.read_bytes() == b"old"


def test_graph_outputs_repeated_passthrough_and_read_inside(tmp_path):
    g = nn.Graph(inputs="x", outputs=["h", "y", "h", "x"], nodes=[
        ("tanh", nn.Tanh(), ["x"], ["h"]),
        ("mul", nn.Mul(), ["h", "x"], ["y"]),
    ])
    check_roundtrip(g, (4,), tmp_path)
    names = [o.name for o in onnx.load(str(tmp_path / "m.onnx")).graph.output]
    assert len(set(names)) == 4 and names[:2] == ["h", "y"]
