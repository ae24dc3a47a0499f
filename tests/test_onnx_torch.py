"""Networks built in PyTorch (torch.nn only), exported by torch.onnx.export at opsets 11
and 17, loaded by fastconv.onnx: outputs against onnxruntime and torch within 1e-4 of
the output's largest magnitude, at the export batch size and at another one."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
tn = torch.nn

import fastconv.onnx as fonnx  # noqa: E402
from fastconv import nn  # noqa: E402
from fastconv.optim import SGD  # noqa: E402

RTOL = 1e-4


class BasicBlock(tn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = tn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = tn.BatchNorm2d(cout)
        self.c2 = tn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = tn.BatchNorm2d(cout)
        self.sc = None
        if stride != 1 or cin != cout:
            self.sc = tn.Sequential(tn.Conv2d(cin, cout, 1, stride, bias=False), tn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.b2(self.c2(torch.relu(self.b1(self.c1(x)))))
        return torch.relu(y + (x if self.sc is None else self.sc(x)))


class ResNetLike(tn.Module):
    def __init__(self):
        super().__init__()
        self.stem = tn.Sequential(tn.Conv2d(3, 8, 3, 1, 1), tn.BatchNorm2d(8), tn.ReLU(), tn.MaxPool2d(3, 2, 1))
        self.layers = tn.Sequential(BasicBlock(8, 8, 1), BasicBlock(8, 16, 2))
        self.fc = tn.Linear(16, 10)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(tn.functional.adaptive_avg_pool2d(x, 1), 1))


class InvertedResidual(tn.Module):
    def __init__(self, cin, cout, stride, t):
        super().__init__()
        h = cin * t
        self.use_res = stride == 1 and cin == cout
        self.body = tn.Sequential(
            tn.Conv2d(cin, h, 1, bias=False), tn.BatchNorm2d(h), tn.ReLU6(),
            tn.Conv2d(h, h, 3, stride, 1, groups=h, bias=False), tn.BatchNorm2d(h), tn.ReLU6(),
            tn.Conv2d(h, cout, 1, bias=False), tn.BatchNorm2d(cout))

    def forward(self, x):
        return x + self.body(x) if self.use_res else self.body(x)


class MobileNetV2Like(tn.Module):
    def __init__(self):
        super().__init__()
        self.features = tn.Sequential(
            tn.Conv2d(3, 8, 3, 2, 1, bias=False), tn.BatchNorm2d(8), tn.ReLU6(),
            InvertedResidual(8, 8, 1, 1), InvertedResidual(8, 12, 2, 4), InvertedResidual(12, 12, 1, 4),
            tn.Conv2d(12, 32, 1), tn.Hardswish())
        self.classifier = tn.Sequential(tn.Dropout(0.2), tn.Linear(32, 10))

    def forward(self, x):
        return self.classifier(self.features(x).mean([2, 3]))


class Fire(tn.Module):
    def __init__(self, cin, squeeze, expand):
        super().__init__()
        self.s = tn.Conv2d(cin, squeeze, 1)
        self.e1 = tn.Conv2d(squeeze, expand, 1)
        self.e3 = tn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x):
        x = torch.relu(self.s(x))
        return torch.cat([torch.relu(self.e1(x)), torch.relu(self.e3(x))], 1)


class SqueezeNetLike(tn.Module):
    def __init__(self):
        super().__init__()
        self.features = tn.Sequential(
            tn.Conv2d(3, 16, 3, 2), tn.ReLU(), tn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(16, 4, 8), Fire(16, 4, 8), tn.MaxPool2d(3, 2, ceil_mode=True), Fire(16, 8, 16))
        self.classifier = tn.Sequential(tn.Dropout(0.5), tn.Conv2d(32, 10, 1), tn.ReLU(), tn.AdaptiveAvgPool2d(1))

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


def channel_shuffle(x, groups):
    b, c, h, w = x.size()
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).contiguous().view(b, -1, h, w)


class ShuffleNetLike(tn.Module):
    """ShuffleNetV2's unit: split the channels, convolve one half, concat, shuffle."""

    def __init__(self):
        super().__init__()
        self.stem = tn.Conv2d(3, 8, 3, 1, 1)
        self.dw = tn.Conv2d(4, 4, 3, 1, 1, groups=4)
        self.pw = tn.Conv2d(4, 4, 1)
        self.pool = tn.AvgPool2d(2)
        self.fc = tn.Linear(8, 5)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        a, b = x.chunk(2, dim=1)
        x = channel_shuffle(torch.cat([a, torch.relu(self.pw(self.dw(b)))], 1), 2)
        return torch.softmax(self.fc(self.pool(x).mean([2, 3])), dim=1)


class SqueezeExcite(tn.Module):
    def __init__(self):
        super().__init__()
        self.conv = tn.Conv2d(3, 16, 3, padding=1)
        self.f1 = tn.Conv2d(16, 4, 1)
        self.f2 = tn.Conv2d(4, 16, 1)
        self.fc = tn.Linear(16 * 8 * 8, 10)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        w = torch.sigmoid(self.f2(torch.relu(self.f1(tn.functional.adaptive_avg_pool2d(x, 1)))))
        x = x * w
        return self.fc(x.view(x.size(0), -1))


NETS = {"resnet": (ResNetLike, 32), "mobilenetv2": (MobileNetV2Like, 32), "squeezenet": (SqueezeNetLike, 33),
        "shufflenet": (ShuffleNetLike, 16), "squeeze_excite": (SqueezeExcite, 8)}


def build(name):
    cls, size = NETS[name]
    torch.manual_seed(0)
    net = cls().eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, tn.BatchNorm2d):       # non-trivial statistics
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return net, size


def export(net, x, opset, dynamic=True):
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw = dict(dynamic_axes={"x": {0: "N"}}) if dynamic else {}
        torch.onnx.export(net, (x,), f, opset_version=opset, dynamo=False, input_names=["x"], **kw)
    return f.getvalue()


def rel_err(a, b):
    return float(np.abs(a - b).max()) / max(float(np.abs(b).max()), 1e-30)


@pytest.mark.parametrize("opset", [11, 17])
@pytest.mark.parametrize("name", list(NETS))
def test_torch_exported(name, opset):
    net, size = build(name)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    data = export(net, x, opset)
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    model = fonnx.load(data)
    got = model.forward(x.numpy())
    assert rel_err(got, want) <= RTOL
    # another batch size than the one the shapes were folded for
    x5 = torch.randn(5, 3, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want5 = net(x5).numpy()
    assert rel_err(model.forward(x5.numpy()), want5) <= RTOL


def test_torch_fixed_batch_export_and_finetune():
    """An export without dynamic axes (batch fixed at 2) still runs other batch sizes, and
    one training step on it lowers the loss."""
    net, size = build("mobilenetv2")
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(3))
    model = fonnx.load(export(net, x, 17, dynamic=False))
    X = np.random.default_rng(0).standard_normal((8, 3, size, size)).astype(np.float32)
    with torch.no_grad():
        assert rel_err(model.forward(X), net(torch.from_numpy(X)).numpy()) <= RTOL
    y = np.arange(8) % 10
    loss = nn.SoftmaxCrossEntropy()
    before = loss.forward(model.forward(X), y)
    model.train()
    opt = SGD(model.parameters(), lr=0.01)
    for _ in range(3):
        loss.forward(model.forward(X), y)
        opt.zero_grad()
        model.backward(loss.backward())
        opt.step()
    model.eval()
    assert loss.forward(model.forward(X), y) < before


def test_roundtrip_imported_torch_net_to_onnx():
    """torch -> ONNX -> fastconv -> ONNX -> onnxruntime gives torch's output."""
    net, size = build("shufflenet")
    x = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(4))
    model = fonnx.load(export(net, x, 17))
    data = fonnx.to_model(model, (3, size, size)).SerializeToString()
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["x"]       # the imported Graph's input name
    got = sess.run(None, {"x": x.numpy()})[0]
    with torch.no_grad():
        assert rel_err(got, net(x).numpy()) <= RTOL
