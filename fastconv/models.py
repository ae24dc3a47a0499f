"""Ready-made networks: lenet5, vgg_small, resnet_small, inception_small, densenet_small.

Each builder takes ``dtype`` (float32 or float64) and ``seed``; the same seed
gives the same weights (each layer gets its own seed, derived from ``seed``
in layer order). The returned network has ``input_grad = False``: its
``backward`` fills the parameter gradients and returns None, since nothing
before the first layer learns. Set ``model.input_grad = True`` to get the
gradient with respect to the input images.
"""

from __future__ import annotations

import numpy as np

from .nn import (
    AvgPool2D,
    BatchNorm2D,
    Concat,
    Conv2D,
    Flatten,
    GlobalAvgPool2D,
    Identity,
    Linear,
    MaxPool2D,
    ReLU,
    Residual,
    Sequential,
)
from ._args import as_dtype, as_int, spawn_seeds

__all__ = ["lenet5", "vgg_small", "resnet_small", "inception_small", "densenet_small",
           "MODELS", "get_model"]


class _Seeds:
    """Hands out child seeds derived from one seed, in call order."""

    def __init__(self, seed, n=64):
        self._seeds = iter(spawn_seeds(seed, n))

    def __call__(self):
        return next(self._seeds)


def _finish(model):
    model.input_grad = False
    return model


def _conv_out(size, k, stride=1, pad=0):
    return (size + 2 * pad - k) // stride + 1


def lenet5(in_channels=1, num_classes=10, input_size=28, *, dtype=np.float32, seed=0):
    """LeNet-5 in Caffe's variant (20 and 50 filters, 500 hidden units, ReLU and max
    pooling rather than LeCun's 6/16/120/84 with tanh and subsampling): conv 1->20 5x5, ReLU, maxpool 2,
    conv 20->50 5x5, ReLU, maxpool 2, flatten, linear 800->500, ReLU, linear 500->10
    (800 = 50*4*4 for the default 28x28 input; other ``input_size`` values change it).
    """
    dt = as_dtype(dtype)
    in_channels = as_int(in_channels, "in_channels")
    num_classes = as_int(num_classes, "num_classes")
    input_size = as_int(input_size, "input_size")
    s = _conv_out(_conv_out(input_size, 5) // 2, 5) // 2
    if _conv_out(input_size, 5) < 2 or s < 1:
        raise ValueError(f"lenet5 needs input_size >= 16, got {input_size}")
    seeds = _Seeds(seed)
    kw = dict(dtype=dt)
    return _finish(Sequential(
        Conv2D(in_channels, 20, 5, seed=seeds(), **kw),
        ReLU(**kw),
        MaxPool2D(2, **kw),
        Conv2D(20, 50, 5, seed=seeds(), **kw),
        ReLU(**kw),
        MaxPool2D(2, **kw),
        Flatten(**kw),
        Linear(50 * s * s, 500, seed=seeds(), **kw),
        ReLU(**kw),
        Linear(500, num_classes, seed=seeds(), **kw),
    ))


def vgg_small(in_channels=3, num_classes=10, input_size=32, *, dtype=np.float32, seed=0):
    """Small VGG (the benchmark layer set's vgg_small, BENCHMARKS.md): conv 3->32 3x3 p1, ReLU, conv 32->32 3x3 p1, ReLU,
    maxpool 2, conv 32->64 3x3 p1, ReLU, conv 64->64 3x3 p1, ReLU, maxpool 2, flatten,
    linear 4096->256, ReLU, linear 256->10 (4096 = 64*8*8 for the default 32x32 input).
    """
    dt = as_dtype(dtype)
    in_channels = as_int(in_channels, "in_channels")
    num_classes = as_int(num_classes, "num_classes")
    input_size = as_int(input_size, "input_size")
    s = input_size // 2 // 2
    if s < 1:
        raise ValueError(f"vgg_small needs input_size >= 4, got {input_size}")
    seeds = _Seeds(seed)
    kw = dict(dtype=dt)
    return _finish(Sequential(
        Conv2D(in_channels, 32, 3, padding=1, seed=seeds(), **kw),
        ReLU(**kw),
        Conv2D(32, 32, 3, padding=1, seed=seeds(), **kw),
        ReLU(**kw),
        MaxPool2D(2, **kw),
        Conv2D(32, 64, 3, padding=1, seed=seeds(), **kw),
        ReLU(**kw),
        Conv2D(64, 64, 3, padding=1, seed=seeds(), **kw),
        ReLU(**kw),
        MaxPool2D(2, **kw),
        Flatten(**kw),
        Linear(64 * s * s, 256, seed=seeds(), **kw),
        ReLU(**kw),
        Linear(256, num_classes, seed=seeds(), **kw),
    ))


def _basic_block(cin, cout, stride, seeds, kw):
    """Two 3x3 conv + BatchNorm layers with a skip connection, then ReLU.

    When the shape changes (stride 2 or cin != cout), the shortcut is a 1x1
    strided conv + BatchNorm projection.
    """
    body = Sequential(
        Conv2D(cin, cout, 3, stride=stride, padding=1, bias=False, seed=seeds(), **kw),
        BatchNorm2D(cout, **kw),
        ReLU(**kw),
        Conv2D(cout, cout, 3, padding=1, bias=False, seed=seeds(), **kw),
        BatchNorm2D(cout, **kw),
    )
    shortcut = None
    if stride != 1 or cin != cout:
        shortcut = Sequential(
            Conv2D(cin, cout, 1, stride=stride, bias=False, seed=seeds(), **kw),
            BatchNorm2D(cout, **kw),
        )
    return Sequential(Residual(body, shortcut), ReLU(**kw))


def resnet_small(in_channels=3, num_classes=10, width=16, *, dtype=np.float32, seed=0):
    """A small ResNet: a 3x3 conv stem (``width`` channels) + BatchNorm + ReLU, a basic
    residual block at ``width``, a downsampling block to ``2*width`` (stride 2, 1x1
    projection shortcut), a basic block at ``2*width``, global average pooling and a
    Linear classifier. Works for any input of at least 2x2 pixels.
    """
    dt = as_dtype(dtype)
    in_channels = as_int(in_channels, "in_channels")
    num_classes = as_int(num_classes, "num_classes")
    width = as_int(width, "width")
    seeds = _Seeds(seed)
    kw = dict(dtype=dt)
    w2 = 2 * width
    return _finish(Sequential(
        Conv2D(in_channels, width, 3, padding=1, bias=False, seed=seeds(), **kw),
        BatchNorm2D(width, **kw),
        ReLU(**kw),
        _basic_block(width, width, 1, seeds, kw),
        _basic_block(width, w2, 2, seeds, kw),
        _basic_block(w2, w2, 1, seeds, kw),
        GlobalAvgPool2D(**kw),
        Linear(w2, num_classes, seed=seeds(), **kw),
    ))


def _conv_bn_relu(cin, cout, k, seeds, kw, padding=0):
    return Sequential(Conv2D(cin, cout, k, padding=padding, bias=False, seed=seeds(), **kw),
                      BatchNorm2D(cout, **kw), ReLU(**kw))


def _inception(cin, c1, c3r, c3, c5r, c5, cp, seeds, kw):
    """An Inception block (GoogLeNet's): four branches on the same input, concatenated
    along the channels: 1x1; 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max pool (stride 1) -> 1x1.
    Output channels c1 + c3 + c5 + cp, same height and width."""
    return Concat(
        _conv_bn_relu(cin, c1, 1, seeds, kw),
        Sequential(_conv_bn_relu(cin, c3r, 1, seeds, kw), _conv_bn_relu(c3r, c3, 3, seeds, kw, 1)),
        Sequential(_conv_bn_relu(cin, c5r, 1, seeds, kw), _conv_bn_relu(c5r, c5, 5, seeds, kw, 2)),
        Sequential(MaxPool2D(3, stride=1, padding=1, **kw), _conv_bn_relu(cin, cp, 1, seeds, kw)),
    )


def inception_small(in_channels=3, num_classes=10, width=16, *, dtype=np.float32, seed=0):
    """A small GoogLeNet: a 3x3 conv stem (2*``width`` channels) + BatchNorm + ReLU, an
    Inception block (-> 3.5*``width`` channels), 2x2 max pooling, a second Inception block
    (-> 7*``width``), global average pooling and a Linear classifier. Every conv is
    followed by BatchNorm and ReLU. Made for 3x32x32 images; any input of at least 2x2.
    """
    dt = as_dtype(dtype)
    in_channels = as_int(in_channels, "in_channels")
    num_classes = as_int(num_classes, "num_classes")
    w = as_int(width, "width")
    seeds = _Seeds(seed)
    kw = dict(dtype=dt)
    c_a = w + w * 3 // 2 + w // 2 + w // 2            # 3.5 w (56 for w = 16)
    c_b = 2 * w + 3 * w + w + w                        # 7 w (112)
    return _finish(Sequential(
        _conv_bn_relu(in_channels, 2 * w, 3, seeds, kw, 1),
        _inception(2 * w, w, w, w * 3 // 2, w // 2, w // 2, w // 2, seeds, kw),
        MaxPool2D(2, **kw),
        _inception(c_a, 2 * w, 3 * w // 2, 3 * w, w // 2, w, w, seeds, kw),
        GlobalAvgPool2D(**kw),
        Linear(c_b, num_classes, seed=seeds(), **kw),
    ))


def _dense_layer(cin, growth, seeds, kw):
    """DenseNet's layer: the input and BN-ReLU-Conv3x3(input) side by side (cin + growth
    channels), so every later layer is fed the maps of all earlier ones."""
    body = Sequential(BatchNorm2D(cin, **kw), ReLU(**kw),
                      Conv2D(cin, growth, 3, padding=1, bias=False, seed=seeds(), **kw))
    return Concat(Identity(**kw), body)


def densenet_small(in_channels=3, num_classes=10, growth_rate=12, block_layers=(4, 4), *,
                   dtype=np.float32, seed=0):
    """A small DenseNet: a 3x3 conv stem (2*``growth_rate`` channels), dense blocks of
    ``block_layers`` layers (each adds ``growth_rate`` channels: BN-ReLU-Conv3x3 of the
    concatenation of every earlier map), between blocks a transition (BN-ReLU-Conv1x1
    halving the channels, 2x2 average pooling), then BN-ReLU, global average pooling and a
    Linear classifier. Made for 3x32x32 images; needs inputs of at least
    2**(len(block_layers) - 1) pixels a side.
    """
    dt = as_dtype(dtype)
    in_channels = as_int(in_channels, "in_channels")
    num_classes = as_int(num_classes, "num_classes")
    growth = as_int(growth_rate, "growth_rate")
    blocks = [as_int(n, "block_layers") for n in block_layers]
    if not blocks:
        raise ValueError("densenet_small needs at least one dense block")
    seeds = _Seeds(seed, 64 + 2 * sum(blocks))
    kw = dict(dtype=dt)
    c = 2 * growth
    layers = [Conv2D(in_channels, c, 3, padding=1, bias=False, seed=seeds(), **kw)]
    for b, n in enumerate(blocks):
        for _ in range(n):
            layers.append(_dense_layer(c, growth, seeds, kw))
            c += growth
        if b + 1 < len(blocks):
            layers += [BatchNorm2D(c, **kw), ReLU(**kw),
                       Conv2D(c, c // 2, 1, bias=False, seed=seeds(), **kw), AvgPool2D(2, **kw)]
            c //= 2
    layers += [BatchNorm2D(c, **kw), ReLU(**kw), GlobalAvgPool2D(**kw),
               Linear(c, num_classes, seed=seeds(), **kw)]
    return _finish(Sequential(*layers))


#: name -> builder, for the CLI and the trainer.
MODELS = {"lenet5": lenet5, "vgg_small": vgg_small, "resnet_small": resnet_small,
          "inception_small": inception_small, "densenet_small": densenet_small}


def get_model(name, **kwargs):
    """Build the model called ``name`` (one of :data:`MODELS`) with ``kwargs``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name](**kwargs)
