"""A deformable convolution learning a shift: the target is a plain convolution of the
image moved by (1.5, -0.75) pixels; the deformable layer has the same weights and
learns its offsets (one (dy, dx) pair shared by every tap and pixel) by gradient
descent on dL/doffset, with bilinear sampling making the fractional shift learnable.

    python examples/deform_shift.py          (FASTCONV_EXAMPLE_SMALL=1: fewer steps)
"""

import os

import numpy as np

import fastconv
from fastconv import nn

small = bool(os.environ.get("FASTCONV_EXAMPLE_SMALL"))
steps = 60 if small else 200
rng = np.random.default_rng(0)
H = W = 24
# a smooth image, so that the loss is smooth in the shift
g = np.linspace(0, 4 * np.pi, H)
x = (np.sin(g)[:, None] * np.cos(0.7 * g)[None, :] + 0.5 * np.sin(1.3 * g)[None, :])
x = np.stack([x, x.T])[None]                               # (1, 2, H, W)
layer = nn.DeformConv2d(2, 4, 3, padding=1, dtype=np.float64, seed=1)
true_shift = np.array([1.5, -0.75])

# the target: the same convolution sampled at the shifted positions
off_true = np.broadcast_to(np.tile(true_shift, 9)[None, :, None, None], (1, 18, H, W)).copy()
target = fastconv.deform_conv2d(x, off_true, layer.weight.data, layer.bias.data, padding=1)

shift = np.zeros(2)
lr = 0.5
for step in range(steps):
    off = np.broadcast_to(np.tile(shift, 9)[None, :, None, None], (1, 18, H, W)).copy()
    y = layer.forward(x, off)
    diff = y - target
    loss = float(np.mean(diff ** 2))
    layer.backward(2 * diff / diff.size)
    # every tap and pixel shares the shift: its gradient is the sum of theirs
    grad = layer.offset_grad.reshape(1, 9, 2, H, W).sum(axis=(0, 1, 3, 4))
    shift -= lr * grad / np.maximum(1.0, np.abs(grad).max())
    if step % (steps // 5) == 0:
        print(f"step {step:3d}  loss {loss:.5f}  shift ({shift[0]:+.3f}, {shift[1]:+.3f})")
print(f"learned shift ({shift[0]:+.3f}, {shift[1]:+.3f}), true ({true_shift[0]:+.3f}, "
      f"{true_shift[1]:+.3f})")
assert np.abs(shift - true_shift).max() < (0.3 if small else 0.1)
print("ok")
