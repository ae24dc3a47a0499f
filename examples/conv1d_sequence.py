"""A small 1-d CNN on a synthetic sequence task: does a noisy sequence contain a
rising ramp (class 1) or a falling one (class 0)?

    python examples/conv1d_sequence.py       (FASTCONV_EXAMPLE_SMALL=1: fewer steps)
"""

import os

import numpy as np

from fastconv import nn, optim

small = bool(os.environ.get("FASTCONV_EXAMPLE_SMALL"))
rng = np.random.default_rng(0)
L, n, steps = (128, 64, 30) if small else (1000, 256, 150)


def batch(n):
    y = rng.integers(0, 2, n)
    x = 0.3 * rng.standard_normal((n, 1, L))
    ramp = np.linspace(-1, 1, 16)
    for i in range(n):
        at = rng.integers(0, L - 16)
        x[i, 0, at:at + 16] += ramp if y[i] else ramp[::-1]
    return x.astype(np.float32), y


class ToImage(nn.Module):
    """(N, C, L) -> (N, C, L, 1), so that 2-d adaptive pooling pools over time."""

    def forward(self, x):
        self._shape = x.shape
        return x[..., None]

    def backward(self, dy):
        return dy.reshape(self._shape)


net = nn.Sequential(
    nn.Conv1d(1, 16, 9, padding="same", seed=1), nn.ReLU(),
    nn.Conv1d(16, 16, 9, padding=4, stride=2, seed=2), nn.ReLU(),
    nn.Conv1d(16, 32, 5, padding="same", dilation=2, seed=3), nn.ReLU(),
    ToImage(), nn.AdaptiveMaxPool2d(1),                  # max over time
    nn.Flatten(), nn.Linear(32, 2, seed=4),
)
loss_fn = nn.CrossEntropyLoss()
opt = optim.Adam(net.parameters(), lr=3e-3)
losses = []
for step in range(steps):
    x, y = batch(n)
    net.zero_grad()
    losses.append(loss_fn.forward(net.forward(x), y))
    net.backward(loss_fn.backward())
    opt.step()
x, y = batch(256)
acc = float(np.mean(net.forward(x).argmax(axis=1) == y))
print(f"loss {np.mean(losses[:5]):.3f} -> {np.mean(losses[-5:]):.3f}, accuracy {acc:.2f}")
assert np.mean(losses[-5:]) < np.mean(losses[:5])
print("ok")
