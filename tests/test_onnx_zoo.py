"""Model-zoo networks (benchmarks/zoo.py: torchvision's resnet18, mobilenet_v2 and
squeezenet1_1 layer for layer, a narrow VGG and AlexNet) exported by torch.onnx.export at
opset 11 and at the exporter's newest opset, with random weights and non-trivial
BatchNorm statistics:

- fastconv.onnx.load matches onnxruntime on the same file within 1e-4 of the output's
  largest magnitude (at a batch size other than the export's);
- fastconv.compile of the imported network matches its model.forward within 1e-5 relative;
- fastconv.onnx.save of the imported network, run in onnxruntime, matches the original
  file in onnxruntime within 1e-5 relative (the same engine on both files: what remains is
  the file's arithmetic), and model.forward within 1e-4 (two engines' float32 rounding
  over 50+ layers reaches 1e-5 on mobilenet_v2).

Small inputs keep the quick suite fast; the full 224x224 cases are marked slow.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import zoo  # noqa: E402

import fastconv  # noqa: E402
import fastconv.onnx as fonnx  # noqa: E402

#: the TorchScript exporter's newest opset
NEWEST = 20
IMPORT_TOL = 1e-4
PLAN_TOL = 1e-5
SAVE_TOL = 1e-5

#: (network, input side) for the quick suite: the smallest sides that keep every layer
#: (AlexNet's adaptive 6x6 pool needs its full 224 input; VGG at 128 exercises the
#: adaptive pool as a 2x2 AveragePool)
QUICK = [("resnet18", 64), ("mobilenet_v2", 64), ("squeezenet1_1", 64), ("vgg_small", 128),
         ("alexnet_small", 224)]
FULL = [("resnet18", 224), ("mobilenet_v2", 224), ("squeezenet1_1", 224)]


def _ort(path_or_bytes, x):
    sess = ort.InferenceSession(path_or_bytes, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _rel(a, b):
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max() / np.abs(b).max())


def _check_network(tmp_path, name, side, opset):
    path = zoo.export(zoo.build(name, seed=3), tmp_path / f"{name}.onnx", (1, 3, side, side), opset)
    x = np.random.default_rng(7).standard_normal((2, 3, side, side)).astype(np.float32)
    want = _ort(str(path), x)
    assert np.isfinite(want).all() and np.abs(want).max() > 1e-3   # a real signal reaches the end

    model = fonnx.load(path)
    y = model.forward(x)
    assert _rel(y, want) <= IMPORT_TOL

    plan = fastconv.compile(model)
    assert _rel(plan(x), y) <= PLAN_TOL
    assert _rel(plan(x[:1]), y[:1]) <= PLAN_TOL          # batch 1 takes other kernel paths

    back = tmp_path / f"{name}_back.onnx"
    fonnx.save(model, back, input_shape=(3, side, side))
    got = _ort(str(back), x)
    assert _rel(got, want) <= SAVE_TOL
    assert _rel(got, y) <= IMPORT_TOL


@pytest.mark.parametrize("opset", [11, NEWEST])
@pytest.mark.parametrize("name,side", QUICK)
def test_zoo_network_imports_compiles_and_exports(tmp_path, name, side, opset):
    _check_network(tmp_path, name, side, opset)


@pytest.mark.slow
@pytest.mark.parametrize("name,side", FULL)
def test_zoo_network_at_224(tmp_path, name, side):
    _check_network(tmp_path, name, side, NEWEST)


def test_zoo_networks_have_torchvision_shapes():
    """Parameter counts of torchvision's resnet18 / mobilenet_v2 / squeezenet1_1
    (1000 classes): the architectures are the real ones."""
    counts = {"resnet18": 11689512, "mobilenet_v2": 3504872, "squeezenet1_1": 1235496}
    for name, n in counts.items():
        assert sum(p.numel() for p in zoo.build(name).parameters()) == n, name


def test_compiled_graph_fuses_the_residual_blocks(tmp_path):
    """ResNet's conv + folded BN + residual add + ReLU is one plan step: the plan of the
    imported Graph has no standalone BatchNorm, add or activation step."""
    path = zoo.export(zoo.build("resnet18"), tmp_path / "r.onnx", (1, 3, 64, 64), 11)
    plan = fastconv.compile(fonnx.load(path))
    ops = [n.op for n in plan.fused.nodes]
    assert "bn" not in ops and "act" not in ops and "add" not in ops and "eltwise" not in ops
    assert ops.count("conv") == 20


def test_compiled_graph_refuses_what_it_cannot_run():
    """A Graph Add of operands of different shapes (broadcasting) is a clear error."""
    from fastconv import nn

    g = nn.Graph("x", "y", [("c", nn.Conv2D(2, 2, 1), ["x"], ["h"]),
                            ("m", nn.Mean((2, 3), keepdims=True), ["h"], ["s"]),
                            ("a", nn.Add(), ["h", "s"], ["y"])])
    x = np.ones((1, 2, 4, 4), np.float32)
    g.forward(x)                                   # broadcasting works un-compiled
    with pytest.raises(ValueError, match="equal shape"):
        fastconv.compile(g)(x)
    two = nn.Graph(["a", "b"], "y", [("add", nn.Add(), ["a", "b"], ["y"])])
    with pytest.raises(TypeError, match="one input and one output"):
        fastconv.compile(two)
