"""The layers of an int8 model (made by :func:`fastconv.quantize`): inference only.

Between layers the activations are uint8 arrays; each layer knows the scale and
zero point of its input and of its output (fixed at calibration), so nothing
but the bytes travels. 4-d activations travel in the C4 layout (N, ceil(C/4), H,
W, 4) of :mod:`fastconv.qfunctional` (4 channels of a pixel side by side, what
the int8 convolution reads in place); Flatten keeps that byte order, and the
Linear after it has its weight columns permuted to match when it is packed. The float32 <-> uint8 conversions happen only at the
model's edges (:class:`QuantizedModel`) and around a :class:`QFloat` island (a
layer with no int8 kernel, run in float32).

* :class:`QConv2D`, :class:`QLinear`: int8 weights (symmetric, one scale per
  output channel), int32 bias, the requantization (and a following ReLU)
  fused into the kernel's epilogue; ``out="uint8"`` or ``"float32"`` (the
  model's last layer writes float32 straight from the int32 accumulator);
* :class:`QMaxPool2D`, :class:`QReLU`, :class:`QFlatten`: on uint8 directly;
* :class:`QFloat`: dequantize, a float32 layer, quantize again.

Every array is a registered buffer (saved by ``state_dict``: int8 weights stay
int8); there are no parameters, and ``backward`` raises. The weights are packed
for the kernels on first use (and again if they change).
"""

from __future__ import annotations

import numpy as np

from . import qfunctional as qf
from ._args import conv_params, pair, pool_params
from .nn.init import fmt_pair
from .nn.module import Module

__all__ = ["QModule", "QuantizedModel", "QConv2D", "QLinear", "QMaxPool2D", "QReLU", "QFlatten",
           "QFloat", "nbytes_of", "fmt_bytes"]


def fmt_bytes(n):
    for unit, size in (("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def nbytes_of(module):
    """Bytes of every parameter and buffer of ``module`` as stored."""
    return sum(v.nbytes for v in module.state_dict().values())


class QModule(Module):
    """Base of the int8 layers: eval only, uint8 in (and out, unless ``out="float32"``).

    Inside :meth:`QuantizedModel.forward` the layers write their uint8 outputs into
    buffers they keep from one call to the next (``_reuse``), which saves the page
    faults of fresh memory on every forward; called on their own they return new arrays.
    """

    _reuse = False

    def __init__(self):
        super().__init__(np.float32)
        self.__dict__["_bufs"] = {}

    def _buffer(self, shape, dtype=np.uint8):
        """A kept buffer of that shape when reusing, else None (a fresh array)."""
        if not self._reuse:
            return None
        key = (tuple(shape), np.dtype(dtype).str)
        b = self._bufs.get(key)
        if b is None:
            self._bufs.clear()
            b = self._bufs[key] = np.empty(shape, dtype)
        return b

    def load_state_dict(self, state_dict, strict=True):
        out = super().load_state_dict(state_dict, strict)
        _invalidate(self)
        return out

    def backward(self, dy):
        raise RuntimeError(
            f"{type(self).__name__} is an int8 inference layer and has no backward: fine-tune "
            "the float model (fastconv.train.Trainer) and quantize it again"
        )

    def to(self, dtype):
        raise TypeError(f"{type(self).__name__} is an int8 layer: its dtype cannot be changed")

    def _set_q(self, name, scale, zero):
        self.register_buffer(name + "_scale", np.asarray(scale, np.float32).reshape(()))
        self.register_buffer(name + "_zero", np.asarray(zero, np.int32).reshape(()))

    def _qp(self, name):
        return float(getattr(self, name + "_scale")), int(getattr(self, name + "_zero"))

    def _check_u8(self, x, ndim=None):
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8:
            got = getattr(x, "dtype", type(x).__name__)
            raise TypeError(f"{self._short()} expects uint8 activations, got {got}; an int8 model "
                            "takes float32 input at its QuantizedModel")
        if ndim is not None and x.ndim != ndim:
            raise ValueError(f"{self._short()} expects a {ndim}-d input, got shape {x.shape}")
        return x


def _invalidate(module):
    """Forget the weights packed from the buffers (they were just overwritten)."""
    for m in module.modules():
        if isinstance(m, _QWeighted):
            m._packed = None


def to_nchw(x, layout):
    """A uint8 activation in ``layout`` (None: as it is; ("c4", C): C4 image with C
    channels; ("flat_c4", C, HW): a flattened C4 image) -> NCHW / (N, C*HW) order."""
    if layout is None:
        return x
    if layout[0] == "c4":
        return qf.from_c4(x, int(layout[1]))
    C, HW = int(layout[1]), int(layout[2])
    N = x.shape[0]
    Cq = -(-C // 4)
    return np.ascontiguousarray(x.reshape(N, Cq, HW, 4).transpose(0, 1, 3, 2)
                                .reshape(N, Cq * 4 * HW)[:, :C * HW])


def from_nchw(x, zero):
    """A uint8 NCHW image -> C4 (other shapes as they are)."""
    return qf.to_c4(x, zero) if x.ndim == 4 else x


def _conv_out_hw(hw, m):
    p = conv_params((1, m.in_channels) + tuple(hw), m.weight.shape, m.stride, m.padding,
                    m.dilation, m.groups)
    return p.P, p.Q


def _pool_out_hw(hw, m):
    p = pool_params((1, 1) + tuple(hw), m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)
    return p.P, p.Q


def _layout(v):
    return None if v is None else tuple(v)


def _qrepr(scale, zero):
    return f"u8(s={float(scale):.4g}, z={int(zero)})"


class _QWeighted(QModule):
    """Shared by QConv2D and QLinear: int8 weight, per-channel scale, int32 bias."""

    def __init__(self, w_shape, relu, out):
        super().__init__()
        if out not in ("uint8", "float32"):
            raise ValueError(f'out must be "uint8" or "float32", got {out!r}')
        self.relu = bool(relu)
        self.out = out
        M = w_shape[0]
        self.register_buffer("weight", np.zeros(w_shape, np.int8))
        self.register_buffer("weight_scale", np.ones(M, np.float32))
        self.register_buffer("bias", np.zeros(M, np.int32))
        self._set_q("in", 1.0, 0)
        self._set_q("out", 1.0, 0)
        self._packed = None
        self._packed_src = None

    def repack(self):
        """Pack the weights again on the next call (after changing ``weight`` in place;
        ``load_state_dict`` and ``set_quantized`` do it themselves)."""
        self._packed = None

    def set_quantized(self, weight, weight_scale, bias, in_qp, out_qp=None):
        """Fill the buffers (shapes checked); ``out_qp`` None for a float32 output."""
        for name, v in (("weight", weight), ("weight_scale", weight_scale), ("bias", bias)):
            cur = getattr(self, name)
            v = np.asarray(v)
            if v.shape != cur.shape:
                raise ValueError(f"{name} must have shape {cur.shape}, got {v.shape}")
            cur[...] = v
        self._set_q("in", *in_qp)
        if out_qp is not None:
            self._set_q("out", *out_qp)
        self._packed = None
        return self

    def _groups(self):
        return 1

    def _packing_weight(self):
        return self._packed_src

    def _kernel_args(self):
        """PackedWeights and the epilogue keywords, from the buffers."""
        if self._packed is None:
            self._packed_src = self.weight.copy()
            self._packed = qf.PackedWeights(self._packing_weight(), self._groups())
        s_in, z_in = self._qp("in")
        ws = self.weight_scale.astype(np.float64) * s_in
        if self.out == "uint8":
            s_out, z_out = self._qp("out")
            mult, zo = (ws / s_out).astype(np.float32), z_out
        else:
            mult, zo = ws.astype(np.float32), 0
        return self._packed, dict(a_zero=z_in, bias=self.bias, mult=mult, out=self.out,
                                  out_zero=zo, relu=self.relu)

    def _wrepr(self):
        w = self.weight
        nb = w.nbytes + self.weight_scale.nbytes + self.bias.nbytes
        zeros = 100.0 * np.count_nonzero(w == 0) / max(w.size, 1)
        s = f"int8 weights, {fmt_bytes(nb)}"
        if zeros >= 1.0:
            s += f", {zeros:.0f}% zeros"
        s += f", in {_qrepr(self.in_scale, self.in_zero)}"
        s += ", out float32" if self.out == "float32" else f", out {_qrepr(self.out_scale, self.out_zero)}"
        return s + (", relu" if self.relu else "")


class QConv2D(_QWeighted):
    """int8 convolution: uint8 (N, C, H, W) -> uint8 or float32 (N, K, P, Q)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, *, relu=False, out="uint8"):
        kh, kw = pair(kernel_size, "kernel_size")
        super().__init__((out_channels, in_channels // groups, kh, kw), relu, out)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = (kh, kw)
        self.stride = pair(stride, "stride")
        self.padding = padding if isinstance(padding, str) else pair(padding, "padding", minimum=0)
        self.dilation = pair(dilation, "dilation")
        self.groups = int(groups)

    def _groups(self):
        return self.groups

    def config(self):
        return dict(in_channels=self.in_channels, out_channels=self.out_channels,
                    kernel_size=list(self.kernel_size), stride=list(self.stride),
                    padding=self.padding if isinstance(self.padding, str) else list(self.padding),
                    dilation=list(self.dilation), groups=self.groups, relu=self.relu, out=self.out)

    def forward(self, x):
        """x: uint8 C4 (N, ceil(C/4), H, W, 4) -> uint8 C4, or float32 NCHW (out="float32")."""
        self._check_u8(x, 5)
        pw, epi = self._kernel_args()
        dest = None
        if self.out == "uint8" and self._reuse:
            P, Q = _conv_out_hw(x.shape[2:4], self)
            dest = self._buffer((x.shape[0], -(-self.out_channels // 4), P, Q, 4))
        return qf.qconv2d_c4(x, pw, stride=self.stride, padding=self.padding,
                             dilation=self.dilation, groups=self.groups,
                             out_layout="c4" if self.out == "uint8" else "nchw", dest=dest, **epi)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={fmt_pair(self.kernel_size)}, "
             f"stride={fmt_pair(self.stride)}")
        if self.padding not in ((0, 0), "valid"):
            s += f", padding={self.padding!r}" if isinstance(self.padding, str) else f", padding={fmt_pair(self.padding)}"
        if self.dilation != (1, 1):
            s += f", dilation={fmt_pair(self.dilation)}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ", " + self._wrepr()


class QLinear(_QWeighted):
    """int8 fully connected layer: uint8 (N, in_features) -> uint8 or float32 (N, out_features)."""

    def __init__(self, in_features, out_features, *, relu=False, out="uint8", in_c4=None):
        super().__init__((out_features, in_features), relu, out)
        self.in_features, self.out_features = int(in_features), int(out_features)
        # (C, HW): the input is a flattened C4 image of C channels of HW pixels
        self.in_c4 = None if in_c4 is None else (int(in_c4[0]), int(in_c4[1]))
        if self.in_c4 is not None and self.in_c4[0] * self.in_c4[1] != self.in_features:
            raise ValueError(f"in_c4={in_c4} does not match in_features={in_features}")

    def config(self):
        return dict(in_features=self.in_features, out_features=self.out_features, relu=self.relu,
                    out=self.out, in_c4=None if self.in_c4 is None else list(self.in_c4))

    def _packing_weight(self):
        if self.in_c4 is None:
            return self._packed_src
        C, HW = self.in_c4
        Cq = -(-C // 4)
        w = np.zeros((self.out_features, Cq * 4, HW), np.int8)
        w[:, :C] = self._packed_src.reshape(self.out_features, C, HW)
        return np.ascontiguousarray(w.reshape(-1, Cq, 4, HW).transpose(0, 1, 3, 2).reshape(self.out_features, -1))

    def forward(self, x):
        """x: uint8 (N, in_features) (a flattened C4 image when ``in_c4``)."""
        self._check_u8(x, 2)
        n_in = self.in_features if self.in_c4 is None else -(-self.in_c4[0] // 4) * 4 * self.in_c4[1]
        if x.shape[1] != n_in:
            raise ValueError(f"{self._short()} expects (N, {n_in}), got shape {x.shape}")
        pw, epi = self._kernel_args()
        dest = self._buffer((x.shape[0], self.out_features)) if self.out == "uint8" else None
        return qf.qlinear(x, pw, dest=dest, **epi)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, " + self._wrepr()


class QMaxPool2D(QModule):
    """Max pooling on uint8 (the scale and zero point carry over unchanged)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else pair(stride, "stride")
        self.padding = pair(padding, "padding", minimum=0)
        self.dilation = pair(dilation, "dilation")
        self.ceil_mode = bool(ceil_mode)

    def config(self):
        return dict(kernel_size=list(self.kernel_size), stride=list(self.stride),
                    padding=list(self.padding), dilation=list(self.dilation), ceil_mode=self.ceil_mode)

    def forward(self, x):
        """x: uint8 C4 (N, ceil(C/4), H, W, 4) -> uint8 C4."""
        self._check_u8(x, 5)
        out = None
        if self._reuse:
            out = self._buffer((x.shape[0], x.shape[1]) + _pool_out_hw(x.shape[2:4], self) + (4,))
        return qf.qmax_pool2d_c4(x, self.kernel_size, self.stride, self.padding, self.dilation,
                                 self.ceil_mode, out=out)

    def extra_repr(self):
        return f"kernel_size={fmt_pair(self.kernel_size)}, stride={fmt_pair(self.stride)}, uint8"


class QReLU(QModule):
    """ReLU on uint8: max(x, zero point)."""

    def __init__(self, zero=0):
        super().__init__()
        self._set_q("in", 1.0, zero)

    def config(self):
        return {}

    def forward(self, x):
        self._check_u8(x)
        return qf.qrelu(x, int(self.in_zero))

    def extra_repr(self):
        return f"uint8, zero={int(self.in_zero)}"


class QFlatten(QModule):
    """(N, d1, d2, ...) -> (N, d1*d2*...) on uint8 (a view)."""

    def config(self):
        return {}

    def forward(self, x):
        self._check_u8(x)
        return x.reshape(x.shape[0], -1)


class QFloat(QModule):
    """A layer with no int8 kernel, run in float32: dequantize its uint8 input (in
    ``in_layout``, see :func:`to_nchw`), run ``module`` (eval mode), quantize the output
    (a 4-d one to C4), or return float32 when ``out_qp`` is None (the model's last layer)."""

    def __init__(self, module, in_qp=(1.0, 0), out_qp=None, in_layout=None):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"module must be a fastconv.nn.Module, got {type(module).__name__}")
        self.module = module
        self.out = "float32" if out_qp is None else "uint8"
        self.in_layout = _layout(in_layout)
        self._set_q("in", *in_qp)
        self._set_q("out", *(out_qp or (1.0, 0)))

    def config(self):
        return dict(out=self.out, in_layout=None if self.in_layout is None else list(self.in_layout))

    def train(self, mode=True):
        super().train(mode)
        self.module.eval()          # always eval inside an int8 model
        return self

    def forward(self, x):
        self._check_u8(x)
        s, z = self._qp("in")
        y = self.module.forward(qf.dequantize_u8(to_nchw(x, self.in_layout), s, z))
        if self.out == "float32":
            return y
        s, z = self._qp("out")
        return from_nchw(qf.quantize_u8(np.ascontiguousarray(y, np.float32), s, z), z)

    def extra_repr(self):
        out = "float32" if self.out == "float32" else _qrepr(self.out_scale, self.out_zero)
        return f"float32 inside, in {_qrepr(self.in_scale, self.in_zero)}, out {out}"


class QuantizedModel(Module):
    """An int8 network: float32 in, float32 out. ``body`` runs on uint8; the input is
    quantized with the calibrated ``input`` scale / zero point, and a uint8 result
    dequantized with ``output``'s (when the last layer does not write float32)."""

    def __init__(self, body, *, method="minmax", per_channel=True, float_bytes=0, out_layout=None,
                 in_c4=True):
        super().__init__(np.float32)
        self.out_layout = _layout(out_layout)
        self.in_c4 = bool(in_c4)          # 4-d inputs enter in the C4 layout
        if not isinstance(body, Module):
            raise TypeError(f"body must be a fastconv.nn.Module, got {type(body).__name__}")
        self.body = body
        self.method = str(method)
        self.per_channel = bool(per_channel)
        self.float_bytes = int(float_bytes)
        self.register_buffer("input_scale", np.ones((), np.float32))
        self.register_buffer("input_zero", np.zeros((), np.int32))
        self.register_buffer("output_scale", np.ones((), np.float32))
        self.register_buffer("output_zero", np.zeros((), np.int32))
        self.eval()

    def config(self):
        return dict(method=self.method, per_channel=self.per_channel, float_bytes=self.float_bytes,
                    out_layout=None if self.out_layout is None else list(self.out_layout),
                    in_c4=self.in_c4)

    def set_edges(self, in_qp, out_qp=None):
        self.input_scale[...] = in_qp[0]
        self.input_zero[...] = in_qp[1]
        if out_qp is not None:
            self.output_scale[...] = out_qp[0]
            self.output_zero[...] = out_qp[1]
        return self

    def train(self, mode=True):
        super().train(mode)
        for m in self.modules():
            if isinstance(m, QFloat):
                m.module.eval()
        return self

    def to(self, dtype):
        raise TypeError("a QuantizedModel takes and returns float32: its dtype cannot be changed")

    def load_state_dict(self, state_dict, strict=True):
        out = super().load_state_dict(state_dict, strict)
        _invalidate(self)
        return out

    def forward(self, x):
        """x float32 (N, ...) -> float32 outputs."""
        self._check_input(x)
        z = int(self.input_zero)
        qms = [m for m in self.body.modules() if isinstance(m, QModule)]
        for m in qms:
            m.__dict__["_reuse"] = True
        try:
            s = float(self.input_scale)
            q = qf.quantize_u8_c4(x, s, z) if x.ndim == 4 and self.in_c4 else qf.quantize_u8(x, s, z)
            y = self.body.forward(q)
            if y.dtype == np.uint8:
                y = y.copy()          # (a kept buffer)
        finally:
            for m in qms:
                m.__dict__["_reuse"] = False
        if y.dtype == np.uint8:
            y = qf.dequantize_u8(to_nchw(y, self.out_layout), float(self.output_scale),
                                 int(self.output_zero))
        return y

    def backward(self, dy):
        raise RuntimeError("a QuantizedModel is inference only and has no backward: fine-tune the "
                           "float model (fastconv.train.Trainer) and quantize it again")

    def nbytes(self):
        return nbytes_of(self)

    def extra_repr(self):
        size = fmt_bytes(self.nbytes())
        if self.float_bytes:
            size += f" (float32: {fmt_bytes(self.float_bytes)}, {self.nbytes() / self.float_bytes:.2f}x)"
        chan = "per-channel" if self.per_channel else "per-tensor"
        return (f"int8 weights {chan}, uint8 activations ({self.method} calibration), {size}, "
                f"in {_qrepr(self.input_scale, self.input_zero)}")
