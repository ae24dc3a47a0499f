"""PNG figures of a training run: learning curves, first-layer filters, feature maps.

Needs matplotlib, the optional ``plot`` extra (``pip install "fastconv[plot]"``).
matplotlib is imported only when a function here is called, and only its
object-oriented API with the Agg canvas is used, so nothing here changes the
process-wide pyplot backend or opens a window::

    from fastconv import plotting
    plotting.plot_history(history, "curves.png")
    plotting.plot_filters(model, "filters.png")
    plotting.plot_feature_maps(model, X_test[0], "maps")      # one PNG per layer
    plotting.save_all("plots", model, history, X_test[0])     # all of the above
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from .nn import Conv2D

__all__ = [
    "MissingMatplotlib",
    "require_matplotlib",
    "plot_history",
    "plot_filters",
    "plot_feature_maps",
    "save_all",
]

INSTALL_HINT = 'plotting needs matplotlib: install it with  pip install "fastconv[plot]"'


class MissingMatplotlib(ImportError):
    """matplotlib is not installed (the ``plot`` extra)."""


def require_matplotlib():
    """Import matplotlib or raise :class:`MissingMatplotlib` with the install command."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError as exc:
        raise MissingMatplotlib(f"{INSTALL_HINT} ({exc})") from None


def _figure(width, height):
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def _get(history, key):
    if isinstance(history, dict):
        return list(history.get(key, []))
    return list(getattr(history, key, []) or [])


def _curves(ax, train, val, name, scale=1.0):
    """Training (and validation) values per epoch on ``ax``, titled ``name``."""
    ax.plot(np.arange(1, len(train) + 1), scale * np.asarray(train), "o-", label="train")
    if val:
        ax.plot(np.arange(1, len(val) + 1), scale * np.asarray(val), "s-", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel(name + (" (%)" if scale == 100 else ""))
    ax.set_title(name)
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.xaxis.get_major_locator().set_params(integer=True)


def plot_history(history, path, title=None):
    """Loss (left) and accuracy (right) per epoch, training and validation, to ``path``.

    ``history``: a :class:`fastconv.train.History` or a dict with the lists
    ``loss``, ``accuracy`` and optionally ``val_loss``, ``val_accuracy``. Without
    accuracies (a regression run) only the loss is drawn.
    """
    loss, acc = _get(history, "loss"), _get(history, "accuracy")
    if not loss:
        raise ValueError("history has no epochs to plot (its loss list is empty)")
    val_loss, val_acc = _get(history, "val_loss"), _get(history, "val_accuracy")
    if acc:
        fig = _figure(10, 4)
        ax1, ax2 = fig.subplots(1, 2)
        _curves(ax2, acc, val_acc, "accuracy", 100)
    else:
        fig = _figure(5, 4)
        ax1 = fig.subplots(1, 1)
    _curves(ax1, loss, val_loss, "loss")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def _first_conv(model):
    for _, m in model.named_modules():
        if isinstance(m, Conv2D):
            return m
    return None


def _grid(n):
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    return rows, cols


def _normalise(img):
    lo, hi = float(np.min(img)), float(np.max(img))
    return (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)


def plot_filters(model, path, title=None):
    """The weights of the model's first Conv2D layer, one tile per output channel, to ``path``.

    Three-channel (RGB) filters are shown in colour, others as one grey image
    per filter (the mean over input channels when there are several).
    """
    conv = _first_conv(model)
    if conv is None:
        raise ValueError(f"{type(model).__name__} has no Conv2D layer whose filters could be shown")
    w = np.asarray(conv.weight.data, dtype=np.float64)  # (K, C, R, S)
    K, C = w.shape[:2]
    rows, cols = _grid(K)
    fig = _figure(max(3.0, 1.1 * cols), max(2.5, 1.1 * rows + 0.6))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for k, ax in enumerate(axes):
        ax.set_axis_off()
        if k >= K:
            continue
        if C == 3:
            ax.imshow(_normalise(w[k].transpose(1, 2, 0)), interpolation="nearest")
        else:
            f = w[k].mean(axis=0)
            m = float(np.max(np.abs(f))) or 1.0
            ax.imshow(f, cmap="coolwarm", vmin=-m, vmax=m, interpolation="nearest")
        ax.set_title(str(k), fontsize=7)
    fig.suptitle(title or f"first-layer filters: {K} x {C}x{w.shape[2]}x{w.shape[3]}")
    fig.tight_layout()
    return _save(fig, path)


def _layers(model):
    """The top-level stages to walk through: a container's children, else the model itself."""
    kids = list(model.named_children())
    return kids if kids else [("0", model)]


def _slug(text):
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()


def plot_feature_maps(model, image, folder, max_channels=32, prefix="feature_maps"):
    """Feed one image through the model stage by stage and draw every 4-d output.

    ``image``: (C, H, W) or (1, C, H, W) in the model's dtype. Writes
    ``<prefix>_00_input.png`` and one ``<prefix>_<i>_<layer>.png`` per stage
    whose output is still an image stack (at most ``max_channels`` channels
    each) into ``folder``; returns the list of paths. The model runs in eval
    mode and its mode is restored afterwards.
    """
    x = np.asarray(image)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"image must have shape (C, H, W) or (1, C, H, W), got {np.shape(image)}")
    x = np.ascontiguousarray(x, dtype=model.dtype)
    folder = Path(folder)
    paths = []

    def draw(maps, name, label):
        n = min(maps.shape[0], max_channels)
        rows, cols = _grid(n)
        fig = _figure(max(3.0, 1.2 * cols), max(2.5, 1.2 * rows + 0.6))
        axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
        for c, ax in enumerate(axes):
            ax.set_axis_off()
            if c < n:
                ax.imshow(maps[c], cmap="viridis", interpolation="nearest")
        shown = "" if n == maps.shape[0] else f", first {n} shown"
        fig.suptitle(f"{label}: {maps.shape[0]} x {maps.shape[1]}x{maps.shape[2]}{shown}")
        fig.tight_layout()
        paths.append(_save(fig, folder / name))

    if x.shape[1] == 3:
        fig = _figure(3, 3.3)
        ax = fig.subplots()
        ax.imshow(_normalise(x[0].transpose(1, 2, 0).astype(np.float64)), interpolation="nearest")
        ax.set_axis_off()
        fig.suptitle("input")
        paths.append(_save(fig, folder / f"{prefix}_00_input.png"))
    else:
        draw(x[0], f"{prefix}_00_input.png", "input")
    was = model.training
    model.eval()
    try:
        for i, (name, layer) in enumerate(_layers(model), start=1):
            x = layer.forward(x)
            if not isinstance(x, np.ndarray) or x.ndim != 4:
                break
            kind = type(layer).__name__
            draw(x[0], f"{prefix}_{i:02d}_{_slug(kind)}.png", f"layer {name} ({kind})")
    finally:
        model.train(was)
    return paths


def save_all(folder, model, history=None, image=None):
    """Write every figure into ``folder``: ``curves.png`` (if ``history``), ``filters.png``
    (if the model has a Conv2D) and the feature maps of ``image`` (if given). Returns the paths."""
    require_matplotlib()
    folder = Path(folder)
    out = []
    if history is not None:
        out.append(plot_history(history, folder / "curves.png"))
    if _first_conv(model) is not None:
        out.append(plot_filters(model, folder / "filters.png"))
    if image is not None:
        out.extend(plot_feature_maps(model, image, folder))
    return out
