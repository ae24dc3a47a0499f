"""Inception and DenseNet blocks from fastconv.models: what each block does to the
shape, and a few training steps of both networks on the built-in shapes set.

    python examples/inception_densenet.py    (FASTCONV_EXAMPLE_SMALL=1: fewer images)
"""

import os

import numpy as np

from fastconv import data, models, nn, optim

small = bool(os.environ.get("FASTCONV_EXAMPLE_SMALL"))
n, steps = (32, 4) if small else (256, 20)

inc = models.inception_small(in_channels=3, num_classes=10)
x = np.zeros((1, 3, 32, 32), np.float32)
for layer in inc:
    y = layer.forward(x)
    kind = "Inception block (4 branches)" if isinstance(layer, nn.Concat) else type(layer).__name__
    print(f"inception  {kind:30s} {x.shape} -> {y.shape}")
    x = y

dense = models.densenet_small(in_channels=3, num_classes=10, growth_rate=12)
x = np.zeros((1, 3, 32, 32), np.float32)
for layer in dense:
    y = layer.forward(x)
    if isinstance(layer, nn.Concat):
        print(f"densenet   dense layer: {x.shape[1]} maps in, {y.shape[1]} out (+ growth 12)")
    x = y

(X, labels), _ = data.shapes_split(n, 8, seed=0)
for name in ("inception_small", "densenet_small"):
    net = models.get_model(name, in_channels=1, num_classes=10, seed=0)
    opt = optim.Adam(net.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for _ in range(steps):
        net.zero_grad()
        losses.append(loss_fn.forward(net.forward(X), labels))
        net.backward(loss_fn.backward())
        opt.step()
    print(f"{name}: {net.num_parameters()} parameters, loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    assert losses[-1] < losses[0]
print("ok")
