"""L2 pooling next to max and average pooling, on one image of the built-in shapes set.

    python examples/lp_pooling.py            (FASTCONV_EXAMPLE_SMALL=1: a smaller image)

L2 pooling, sqrt(sum x^2) over each window, lies between the two: it rewards strong
responses like max pooling but every element of the window still gets a gradient.
"""

import os

import numpy as np

import fastconv
from fastconv import data

size = 16 if os.environ.get("FASTCONV_EXAMPLE_SMALL") else 28
X, y = data.shapes(n=1, seed=3, size=size)
img = X[:1]                                              # (1, 1, size, size)
k = 4
pools = {
    "max": fastconv.max_pool2d(img, k),
    "average": fastconv.avg_pool2d(img, k),
    "L2": fastconv.lp_pool2d(img, 2, k),
    "L2 / k": fastconv.lp_pool2d(img, 2, k) / k,          # the root mean square
}
print(f"image {img.shape[2]}x{img.shape[3]} (class {data.SHAPES_CLASSES[y[0]]}), "
      f"{k}x{k} windows -> {pools['max'].shape[2]}x{pools['max'].shape[3]}")
for name, out in pools.items():
    print(f"  {name:8s} mean {out.mean():.4f}  max {out.max():.4f}")
# average <= root mean square <= max, window by window
assert np.all(pools["average"] <= pools["L2 / k"] + 1e-6)
assert np.all(pools["L2 / k"] <= pools["max"] + 1e-6)

# Gradients: max pooling feeds one pixel per window, L2 pooling all of them (in
# proportion to their value), average pooling all of them equally.
dy = np.ones_like(pools["max"])
_, idx = fastconv.max_pool2d(img, k, return_indices=True)
grads = {"max": fastconv.max_pool2d_backward(dy, idx, img.shape),
         "average": fastconv.avg_pool2d_backward(dy, img.shape, k),
         "L2": fastconv.lp_pool2d_backward(dy, img, 2, k)}
for name, g in grads.items():
    print(f"  gradient of {name:8s} reaches {np.count_nonzero(g):4d} of {g.size} pixels")
print("ok")
