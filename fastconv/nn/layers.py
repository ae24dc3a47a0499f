"""The layers, one module per family, gathered here: :mod:`.conv`, :mod:`.pooling`,
:mod:`.activation`, :mod:`.dense`, :mod:`.normalization` (weight initialisation in
:mod:`.init`)."""

from .activation import LeakyReLU, ReLU, Sigmoid, Tanh
from .conv import Conv2D
from .dense import Dropout, Flatten, Linear
from .init import INITS, init_weight
from .normalization import BatchNorm2D
from .pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D

__all__ = [
    "INITS",
    "init_weight",
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
]
