"""fastconv.nn: layers, containers and losses with explicit forward / backward.

Every layer caches in ``forward`` what its ``backward`` needs; there is no
autograd graph. Convolution, pooling and ReLU run on the current backend
(:func:`fastconv.use_backend`: the native kernels or the NumPy reference).

Example::

    import numpy as np
    from fastconv import nn

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 1, 28, 28)).astype(np.float32)   # 4 grey 28x28 images
    labels = np.array([3, 1, 4, 1])
    net = nn.Sequential(nn.Conv2D(1, 8, 3, padding=1, seed=0), nn.ReLU(),
                        nn.MaxPool2D(2), nn.Flatten(), nn.Linear(8 * 14 * 14, 10, seed=1))
    loss_fn = nn.SoftmaxCrossEntropy()
    loss = loss_fn.forward(net.forward(x), labels)
    net.zero_grad()
    net.backward(loss_fn.backward())     # gradients are now in p.grad
    print(loss, net.parameters()[0].grad.shape)

PyTorch's spellings name the same classes: ``Conv2d`` is :class:`Conv2D`,
``MaxPool2d`` :class:`MaxPool2D`, ``AvgPool2d`` :class:`AvgPool2D`,
``BatchNorm2d`` :class:`BatchNorm2D`, ``CrossEntropyLoss``
:class:`SoftmaxCrossEntropy` (logits and integer labels, mean over the batch);
``Linear``, ``ReLU``, ``LeakyReLU``, ``Sigmoid``, ``Tanh``, ``Flatten``,
``Dropout``, ``Sequential`` and ``MSELoss`` are spelled alike.
"""

from .activation import Clip, HardSigmoid, HardSwish, Identity, LogSoftmax, ReLU6, Softmax
from .containers import Concat, Residual, Sequential
from .elementwise import Add, Cat, Div, MatMul, Mul, Sub
from .graph import Graph
from .layers import (
    INITS,
    AvgPool2D,
    BatchNorm2D,
    Conv2D,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    LeakyReLU,
    Linear,
    MaxPool2D,
    ReLU,
    Sigmoid,
    Tanh,
)
from .losses import Loss, MSELoss, SoftmaxCrossEntropy
from .conv_extra import Conv1D, ConvTranspose2D
from .deform import DeformConv2D
from .identity import Identity
from .pooling_extra import AdaptiveAvgPool2D, AdaptiveMaxPool2D, LPPool2D
from .module import Module, Parameter
from .shape import Mean, Pad2D, Reshape, Slice, Split, Transpose

# PyTorch's spellings of the same classes (aliases, not subclasses).
Conv2d = Conv2D
MaxPool2d = MaxPool2D
AvgPool2d = AvgPool2D
BatchNorm2d = BatchNorm2D
CrossEntropyLoss = SoftmaxCrossEntropy
ConvTranspose2d = ConvTranspose2D
AdaptiveAvgPool2d = AdaptiveAvgPool2D
AdaptiveMaxPool2d = AdaptiveMaxPool2D
LPPool2d = LPPool2D
Conv1d = Conv1D
DeformConv2d = DeformConv2D

__all__ = [
    "Module",
    "Parameter",
    "Conv2D",
    "MaxPool2D",
    "AvgPool2D",
    "GlobalAvgPool2D",
    "ReLU",
    "LeakyReLU",
    "Sigmoid",
    "Tanh",
    "Linear",
    "Flatten",
    "Dropout",
    "BatchNorm2D",
    "Sequential",
    "Residual",
    "Concat",
    "Graph",
    "Identity",
    "Clip",
    "ReLU6",
    "HardSigmoid",
    "HardSwish",
    "Softmax",
    "LogSoftmax",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "MatMul",
    "Cat",
    "Reshape",
    "Transpose",
    "Slice",
    "Split",
    "Pad2D",
    "Mean",
    "Loss",
    "SoftmaxCrossEntropy",
    "MSELoss",
    "INITS",
    "Conv2d",
    "MaxPool2d",
    "AvgPool2d",
    "BatchNorm2d",
    "CrossEntropyLoss",
    "ConvTranspose2D",
    "ConvTranspose2d",
    "AdaptiveAvgPool2D",
    "AdaptiveMaxPool2D",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "LPPool2D",
    "LPPool2d",
    "Conv1D",
    "Conv1d",
    "Identity",
    "DeformConv2D",
    "DeformConv2d",
]
