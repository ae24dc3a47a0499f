"""Helpers of the training tests (test_train, test_callbacks, test_checkpoint): small nets,
a trainer factory, state comparisons and a small shapes data set."""

import numpy as np
import pytest

from fastconv import data, nn, optim
from fastconv.train import Trainer


@pytest.fixture(scope="module")
def shapes_small():
    return data.shapes_split(1200, 300, seed=3)


def tiny_net(dtype=np.float32, seed=0, classes=10, batchnorm=False):
    """A small conv net (fast): conv 1->4 3x3, [BatchNorm], ReLU, maxpool 2, flatten, linear."""
    layers = [nn.Conv2D(1, 4, 3, dtype=dtype)]
    if batchnorm:
        layers.append(nn.BatchNorm2D(4, dtype=dtype))
    layers += [nn.ReLU(dtype=dtype), nn.MaxPool2D(2, dtype=dtype), nn.Flatten(dtype=dtype),
               nn.Linear(4 * 13 * 13, classes, dtype=dtype)]
    return nn.Sequential(*layers, seed=seed)


def make_trainer(model, lr=0.05, momentum=0.9, scheduler=None, opt="sgd", **kw):
    if opt == "sgd":
        o = optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    else:
        o = optim.Adam(model.parameters(), lr=lr)
    sched = None
    if scheduler == "cosine":
        sched = optim.CosineLR(o, T_max=4)
    elif scheduler == "step":
        sched = optim.StepLR(o, step_size=2, gamma=0.5)
    kw.setdefault("progress", False)
    return Trainer(model, nn.SoftmaxCrossEntropy(), o, scheduler=sched, **kw)


def states_equal_dict(a, b):
    return list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)


def states_equal(a, b):
    return states_equal_dict(a.state_dict(), b.state_dict())
