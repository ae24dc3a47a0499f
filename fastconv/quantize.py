"""Post-training int8 quantization: :func:`quantize` (``fastconv.quantize``).

    q = fastconv.quantize(model, calibration_images)    # a new model; `model` is untouched
    logits = q(x)                                        # float32 in, float32 out, int8 inside

Steps:

1. **BatchNorm folding**: a float32 copy of the model is made and every
   BatchNorm2D right after a Conv2D is folded into it (w' = w * gamma/sigma,
   b' = (b - mean) * gamma/sigma + beta, in float64).
2. **Calibration**: the copy runs (eval mode) over the calibration inputs and an
   observer on the model input and on every layer's output collects the range
   of the values (``method``): ``"minmax"`` the extremes; ``"percentile"`` the
   ``percentile``-th / (100 - ``percentile``)-th percentiles (outliers clipped);
   ``"entropy"`` the clipping threshold minimising the KL divergence between
   the histogram of the values and its 8-bit quantization (TensorRT's method).
   Each range (widened to contain 0) gives a uint8 scale and zero point.
3. **Conversion**: Conv2D / Linear get int8 weights, symmetric with one scale
   per output channel (``per_channel=True``) or one per tensor, and an int32
   bias; a ReLU right after one is fused into its epilogue (its output range
   is the observed one after the ReLU), as is the requantization to the next
   layer's uint8; MaxPool2D, ReLU, Flatten run on uint8, Dropout vanishes. Any
   other layer (average pooling, BatchNorm not after a conv, Residual, Concat,
   ...) runs as a float32 island (:class:`~fastconv.qlayers.QFloat`). The input
   is quantized once at the model's edge, and the last Conv2D / Linear writes
   float32 logits straight from its int32 accumulator.

The result is a :class:`~fastconv.qlayers.QuantizedModel` (eval only).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable

import numpy as np

from . import nn
from . import compressed_io  # noqa: F401  (registers the save/load codec of compressed models)
from ._args import MAX_K
from ._args import as_float, as_int
from .qlayers import QConv2D, QFlatten, QFloat, QLinear, QMaxPool2D, QReLU, QuantizedModel

__all__ = ["quantize", "fold_batchnorm", "METHODS", "Observer", "weight_qparams",
           "activation_qparams"]

#: Calibration methods.
METHODS = ("minmax", "percentile", "entropy")
#: Values each observer keeps (a uniform sample of what it saw) for percentile / entropy.
SAMPLE_SIZE = 1 << 18


# ---------------------------------------------------------------- BatchNorm folding


def _bn_affine(bn):
    mean = bn.running_mean.astype(np.float64)
    scale = 1.0 / np.sqrt(bn.running_var.astype(np.float64) + float(bn.eps))
    shift = -mean * scale
    if bn.affine:
        g = bn.weight.data.astype(np.float64)
        scale, shift = scale * g, shift * g + bn.bias.data.astype(np.float64)
    return scale, shift


def _fold_into(conv, bn):
    scale, shift = _bn_affine(bn)
    w = conv.weight.data.astype(np.float64) * scale[:, None, None, None]
    b = (np.zeros(conv.out_channels) if conv.bias is None else conv.bias.data.astype(np.float64))
    new = nn.Conv2D(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                    conv.padding, conv.dilation, conv.groups, bias=True, dtype=conv.dtype)
    new.weight.data[...] = w
    new.bias.data[...] = b * scale + shift
    return new


def _plain(m, cls):
    """m computes exactly as cls (an instance whose forward is cls's own: PrunedConv2D is a
    Conv2D, BinaryConv2D is not), as fastconv.inference's lowering decides."""
    return isinstance(m, cls) and type(m).forward is cls.forward


def _fold(m):
    if _plain(m, nn.Sequential):
        kids, out, i = list(m), [], 0
        while i < len(kids):
            k = kids[i]
            nxt = kids[i + 1] if i + 1 < len(kids) else None
            if _plain(k, nn.Conv2D) and _plain(nxt, nn.BatchNorm2D) and nxt.num_features == k.out_channels:
                out.append(_fold_into(k, nxt))
                i += 2
                continue
            out.append(_fold(k))
            i += 1
        s = nn.Sequential(*out) if out else m
        s.input_grad = m.input_grad
        return s
    if _plain(m, nn.Residual):
        r = nn.Residual(_fold(m.body), None if m.shortcut is None else _fold(m.shortcut))
        return r
    if _plain(m, nn.Concat):
        return nn.Concat(*[_fold(b) for b in m.children()], axis=m.axis)
    return m


def fold_batchnorm(model):
    """A float copy of ``model`` (eval mode) with every BatchNorm2D that directly
    follows a Conv2D in a Sequential folded into that convolution."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a fastconv.nn.Module, got {type(model).__name__}")
    return _fold(copy.deepcopy(model)).eval()


# ---------------------------------------------------------------- observers


def activation_qparams(lo, hi, levels=255):
    """uint8 scale and zero point mapping [lo, hi] (widened to contain 0) onto the
    levels 0 .. ``levels`` (255; 127 for ``reduce_range``, values up to twice the range
    still fit)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"the calibration run produced non-finite values (range [{lo}, {hi}])")
    scale = (hi - lo) / float(levels)
    if scale <= 1e-12:
        return 1.0, 0
    zero = int(min(levels, max(0, round(-lo / scale))))
    return float(np.float32(scale)), zero


def _kl_threshold(a, nbins=2048, levels=255):
    """TensorRT's entropy calibration on non-negative samples ``a``: the threshold whose
    clipped histogram is closest (KL divergence) to its quantization to ``levels`` levels."""
    a = a[a > 0]                    # exact zeros are exact in any scale: not part of the search
    amax = float(a.max()) if a.size else 0.0
    if amax <= 0:
        return 0.0
    hist, edges = np.histogram(a, bins=nbins, range=(0.0, amax))
    hist = hist.astype(np.float64)
    best, best_kl = nbins, np.inf
    for i in range(levels, nbins + 1, 8):
        p = hist[:i].copy()
        p[-1] += hist[i:].sum()
        nz = p > 0
        # merge the i bins into `levels` groups, spread each group's mass over its non-empty bins
        idx = (np.arange(i) * levels) // i
        mass = np.bincount(idx, weights=hist[:i], minlength=levels)
        cnt = np.bincount(idx, weights=(hist[:i] > 0).astype(np.float64), minlength=levels)
        q = np.where(nz, mass[idx] / np.maximum(cnt[idx], 1), 0.0)
        ps, qs = p.sum(), q.sum()
        if qs <= 0:
            continue
        pn, qn = p[nz] / ps, q[nz] / qs
        with np.errstate(divide="ignore"):
            kl = float(np.sum(pn * np.log(pn / np.maximum(qn, 1e-12))))
        if kl < best_kl:
            best, best_kl = i, kl
    return float(edges[best])


class Observer:
    """Collects what one tensor holds over the calibration batches."""

    def __init__(self, method, percentile, rng, levels=255):
        self.method, self.percentile, self.rng, self.levels = method, percentile, rng, levels
        self.lo, self.hi = np.inf, -np.inf
        self.samples = []
        self.kept = 0

    def update(self, y):
        y = np.asarray(y)
        if y.size == 0:
            return
        self.lo = min(self.lo, float(y.min()))
        self.hi = max(self.hi, float(y.max()))
        if self.method != "minmax":
            flat = y.reshape(-1)
            take = min(flat.size, max(SAMPLE_SIZE // 4, SAMPLE_SIZE - self.kept))
            if take < flat.size:
                flat = flat[self.rng.choice(flat.size, take, replace=False)]
            self.samples.append(np.asarray(flat, np.float32))
            self.kept += flat.size

    def qparams(self):
        if not np.isfinite(self.lo):
            raise ValueError("an observer saw no values: is the calibration set empty?")
        lo, hi = self.lo, self.hi
        if self.method == "percentile":
            s = np.concatenate(self.samples)
            lo = float(np.percentile(s, 100.0 - self.percentile)) if lo < 0 else lo
            hi = float(np.percentile(s, self.percentile))
        elif self.method == "entropy":
            s = np.concatenate(self.samples)
            t = _kl_threshold(np.abs(s)) if lo < 0 else _kl_threshold(s)
            lo, hi = max(lo, -t), min(hi, t)
        return activation_qparams(lo, hi, self.levels)


# ---------------------------------------------------------------- calibration run


def _batches(calibration, batch_size=128):
    if isinstance(calibration, np.ndarray):
        if calibration.ndim < 2 or calibration.shape[0] == 0:
            raise ValueError(f"calibration must hold at least one input (N, ...), got shape {calibration.shape}")
        for i in range(0, calibration.shape[0], batch_size):
            yield calibration[i:i + batch_size]
        return
    if not isinstance(calibration, Iterable) or isinstance(calibration, (str, bytes)):
        raise TypeError("calibration must be an array of inputs (N, C, H, W) or an iterable of "
                        f"batches, got {type(calibration).__name__}")
    n = 0
    for b in calibration:
        if isinstance(b, (tuple, list)) and len(b) >= 1:
            b = b[0]                                # (X, y) pairs: the inputs
        if not isinstance(b, np.ndarray):
            raise TypeError(f"calibration batches must be numpy arrays, got {type(b).__name__}")
        n += 1
        yield b
    if n == 0:
        raise ValueError("calibration is empty: give at least one batch of inputs")


def _run(m, x, obs, shapes):
    """Eval-mode forward of the folded float model, feeding every observer and
    recording each module's output shape (without the batch axis)."""
    if _plain(m, nn.Sequential):
        for k in m:
            x = _run(k, x, obs, shapes)
    elif _plain(m, nn.Residual):
        y = _run(m.body, x, obs, shapes)
        s = x if m.shortcut is None else _run(m.shortcut, x, obs, shapes)
        x = y + s
    elif _plain(m, nn.Concat):
        x = np.concatenate([_run(b, x, obs, shapes) for b in m.children()], axis=m.axis)
    else:
        x = m.forward(x)
    if id(m) in obs:
        obs[id(m)].update(x)
    shapes[id(m)] = x.shape[1:]
    return x


def _observe_all(m, obs, factory):
    obs[id(m)] = factory()
    for k in m.children():
        _observe_all(k, obs, factory)


# ---------------------------------------------------------------- conversion


def weight_qparams(w, per_channel=True):
    """(int8 weights, float32 scales (K,)): symmetric, |q| <= 127, one scale per output
    channel (or one for the tensor); an all-zero channel gets scale 1."""
    w64 = np.asarray(w, np.float64)
    K = w64.shape[0]
    amax = np.abs(w64.reshape(K, -1)).max(axis=1) if per_channel else np.full(K, np.abs(w64).max())
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    shape = (K,) + (1,) * (w64.ndim - 1)
    q = np.clip(np.rint(w64 / scale.astype(np.float64).reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


def _qbias(b, s_in, w_scale):
    if b is None:
        return np.zeros(w_scale.shape[0], np.int32)
    q = np.rint(np.asarray(b, np.float64) / (s_in * w_scale.astype(np.float64)))
    return np.clip(q, -(2**30), 2**30).astype(np.int32)


def _fits(m, lay):
    """The int8 kernels sum at most MAX_K products per output (exact int32 sums); a
    layer reading more stays float (an island)."""
    if isinstance(m, nn.Conv2D):
        k = -(-(m.in_channels // m.groups) // 4) * 4 * m.kernel_size[0] * m.kernel_size[1]
    elif lay is not None and lay[0] == "flat_c4":      # channels padded to 4
        k = -(-lay[1] // 4) * 4 * lay[2]
    else:
        k = m.in_features
    return k <= MAX_K


class _Converter:
    """Builds the int8 modules. Each step takes and returns the activation's uint8
    scale / zero point (``qp``; None: float32) and its layout (``lay``: ("c4", C) for a
    C4 image, ("flat_c4", C, HW) for a flattened one, None for a plain 2-d array)."""

    def __init__(self, obs, shapes, per_channel):
        self.obs, self.shapes, self.per_channel = obs, shapes, per_channel

    def qp(self, m):
        return self.obs[id(m)].qparams()

    def out_lay(self, m):
        shape = self.shapes[id(m)]
        return ("c4", int(shape[0])) if len(shape) == 3 else None

    def weighted(self, m, in_qp, lay, relu_mod, last):
        """QConv2D / QLinear for m (with a fused ReLU module or None)."""
        out = "float32" if last else "uint8"
        relu = relu_mod is not None
        out_qp = None if last else self.qp(relu_mod if relu else m)
        if isinstance(m, nn.Conv2D):
            q = QConv2D(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                        m.dilation, m.groups, relu=relu, out=out)
            out_lay = None if last else ("c4", m.out_channels)
        else:
            in_c4 = (lay[1], lay[2]) if lay is not None and lay[0] == "flat_c4" else None
            q = QLinear(m.in_features, m.out_features, relu=relu, out=out, in_c4=in_c4)
            out_lay = None
        wq, ws = weight_qparams(m.weight.data, self.per_channel)
        bias = None if m.bias is None else m.bias.data
        q.set_quantized(wq, ws, _qbias(bias, in_qp[0], ws), in_qp, out_qp)
        return q, out_qp, out_lay

    def island(self, m, in_qp, lay, last):
        out_qp = None if last else self.qp(m)
        return QFloat(m, in_qp, out_qp, lay), out_qp, (None if last else self.out_lay(m))

    def seq(self, m, in_qp, lay, last):
        kids = [k for k in m if not _plain(k, nn.Dropout)]
        out, qp, i = [], in_qp, 0
        while i < len(kids):
            k = kids[i]
            k_last = last and i == len(kids) - 1
            nxt = kids[i + 1] if i + 1 < len(kids) else None
            if (_plain(k, nn.Conv2D) and lay is not None and lay[0] == "c4"
                    or _plain(k, nn.Linear) and (lay is None or lay[0] != "c4")) and _fits(k, lay):
                relu = nxt if _plain(nxt, nn.ReLU) else None
                k_last = last and i + (2 if relu else 1) == len(kids)
                q, qp, lay = self.weighted(k, qp, lay, relu, k_last)
                i += 2 if relu else 1
            else:
                q, qp, lay = self.convert(k, qp, lay, k_last)
                i += 1
            out.append(q)
        return nn.Sequential(*out), qp, lay

    def convert(self, m, in_qp, lay, last):
        """(int8 module, its output qparams (None: float32), its output layout) for m."""
        if _plain(m, nn.Sequential):
            return self.seq(m, in_qp, lay, last)
        c4 = lay is not None and lay[0] == "c4"
        if (_plain(m, nn.Conv2D) and c4 or _plain(m, nn.Linear) and not c4) and _fits(m, lay):
            return self.weighted(m, in_qp, lay, None, last)
        if _plain(m, nn.MaxPool2D) and c4 and not last:
            return QMaxPool2D(m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode), in_qp, lay
        if _plain(m, nn.ReLU) and not last:
            return QReLU(in_qp[1]), in_qp, lay
        if _plain(m, nn.Flatten) and not last:
            if c4:   # the bytes stay in C4 order; the Linear after it is permuted to match
                hw = int(self.shapes[id(m)][0]) // int(lay[1])
                return QFlatten(), in_qp, ("flat_c4", lay[1], hw)
            return QFlatten(), in_qp, lay
        return self.island(m, in_qp, lay, last)


def quantize(model, calibration, *, per_channel=True, method="minmax", percentile=99.99,
             reduce_range=False, seed=0):
    """An int8 copy of ``model`` (a :class:`~fastconv.qlayers.QuantizedModel`; ``model``
    itself is not changed) calibrated on ``calibration``: an array of inputs (N, C, H, W)
    or an iterable of batches (arrays, or (X, y) pairs).

    ``per_channel``: one weight scale per output channel (default) or per tensor.
    ``method``: ``"minmax"``, ``"percentile"`` (clip at ``percentile``) or ``"entropy"``
    (KL divergence). ``seed``: the sampling of values for percentile / entropy.
    ``reduce_range``: calibrate the activations onto 7 bits (levels 0..127; larger
    values, up to twice the calibrated range, still fit in the uint8). On CPUs without
    AVX-512 VNNI the int8 kernels then skip their second pass over the activations'
    top bit (qops.h), about 2x faster, at some accuracy; the results are the same on
    every CPU either way.
    The result takes and returns float32; see the module docstring for what runs
    in int8.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a fastconv.nn.Module, got {type(model).__name__}")
    if isinstance(model, QuantizedModel):
        raise TypeError("model is already quantized")
    if not isinstance(per_channel, (bool, np.bool_)):
        raise TypeError(f"per_channel must be True or False, got {per_channel!r}")
    if not isinstance(reduce_range, (bool, np.bool_)):
        raise TypeError(f"reduce_range must be True or False, got {reduce_range!r}")
    levels = 127 if reduce_range else 255
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    percentile = as_float(percentile, "percentile", 50.0, 100.0, low_open=True)
    seed = as_int(seed, "seed", minimum=0)
    folded = fold_batchnorm(model)
    if folded.dtype != np.float32:
        folded.to(np.float32)
    rng = np.random.default_rng(seed)
    obs = {}
    _observe_all(folded, obs, lambda: Observer(method, percentile, rng, levels))
    # the network input: its range as it is (pixel values are no distribution to clip)
    in_obs = Observer("minmax" if method == "entropy" else method, percentile, rng, levels)
    shapes = {}
    in_shape = None
    for xb in _batches(calibration):
        xb = np.ascontiguousarray(xb, dtype=np.float32)
        in_obs.update(xb)
        in_shape = xb.shape[1:]
        _run(folded, xb, obs, shapes)
    in_qp = in_obs.qparams()
    # images enter in the C4 layout when a convolution reads them first (else, e.g. a
    # Flatten and a Linear, the padding of the channels to 4 would be wasted work)
    first = next((k for k in folded.modules() if not k._modules), None)
    in_lay = ("c4", int(in_shape[0])) if len(in_shape) == 3 and _plain(first, nn.Conv2D) else None
    body, out_qp, out_lay = _Converter(obs, shapes, bool(per_channel)).convert(folded, in_qp, in_lay, True)
    if not isinstance(body, nn.Sequential):
        body = nn.Sequential(body)
    q = QuantizedModel(body, method=method + (", 7-bit" if reduce_range else ""),
                       per_channel=per_channel, float_bytes=_float_bytes(model),
                       out_layout=out_lay if out_qp is not None else None, in_c4=in_lay is not None)
    q.set_edges(in_qp, out_qp)
    return q.eval()


def _float_bytes(model):
    """Bytes of the model's parameters and buffers as float32."""
    return sum(v.size * (4 if v.dtype.kind == "f" else v.dtype.itemsize)
               for v in model.state_dict().values())
