"""The layers: convolution, pooling, activations, Linear, Flatten, Dropout, BatchNorm2D.

Convolution, max/average pooling and ReLU call the current backend
(:func:`fastconv.use_backend`): the native kernels or the NumPy reference.
Everything else here is plain NumPy and runs the same code on both.

Weights are shaped as PyTorch's: Conv2D ``(out, in/groups, kh, kw)``, Linear
``(out, in)``. Initialisation (``init=``):

``"he_normal"`` (default)
    N(0, 2/fan_in): He / Kaiming normal, right for layers followed by ReLU;
``"he_uniform"``
    U(-sqrt(6/fan_in), sqrt(6/fan_in));
``"xavier_normal"``, ``"xavier_uniform"``
    Glorot, variance 2/(fan_in + fan_out), for Sigmoid / Tanh networks.

``fan_in`` is ``in/groups * kh * kw`` (Conv2D) or ``in`` (Linear) and
``fan_out`` is ``out * kh * kw`` or ``out``. Biases start at zero. The draws are
made in float64 from ``numpy.random.default_rng(seed)`` and then cast, so a
float32 and a float64 layer built with the same seed hold the same values up
to rounding.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _args
from .._backend import ops
from .._args import as_float, as_int, make_rng
from .module import Module, Parameter

__all__ = [
    "INITS",
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

INITS = ("he_normal", "he_uniform", "xavier_normal", "xavier_uniform")


def _check_init(init):
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    return init


def init_weight(rng, shape, fan_in, fan_out, init, dtype):
    """Draw an initial weight array (float64 draws, then cast to ``dtype``)."""
    if init == "he_normal":
        w = rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
    elif init == "he_uniform":
        bound = math.sqrt(6.0 / fan_in)
        w = rng.uniform(-bound, bound, shape)
    elif init == "xavier_normal":
        w = rng.standard_normal(shape) * math.sqrt(2.0 / (fan_in + fan_out))
    else:
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-bound, bound, shape)
    return np.ascontiguousarray(w, dtype=dtype)


def _fmt_pair(p):
    return p if isinstance(p, str) else f"({p[0]}, {p[1]})"


# ---------------------------------------------------------------- Conv2D


class Conv2D(Module):
    """2-d convolution layer (cross-correlation, as ``torch.nn.Conv2d``), NCHW.

    ``weight``: (out_channels, in_channels/groups, kh, kw); ``bias``: (out_channels,)
    or None. ``padding``: int, pair, ``"valid"`` or ``"same"`` (stride 1 only).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, *, init="he_normal", dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self.in_channels = as_int(in_channels, "in_channels")
        self.out_channels = as_int(out_channels, "out_channels")
        self.kernel_size = _args.pair(kernel_size, "kernel_size")
        self.stride = _args.pair(stride, "stride")
        self.dilation = _args.pair(dilation, "dilation")
        self.groups = as_int(groups, "groups")
        if self.in_channels % self.groups:
            raise ValueError(f"in_channels={self.in_channels} must be divisible by groups={self.groups}")
        if self.out_channels % self.groups:
            raise ValueError(f"out_channels={self.out_channels} must be divisible by groups={self.groups}")
        # validates padding (int, pair, "valid", "same" with stride 1)
        _args.conv_padding(padding, self.kernel_size, self.dilation, self.stride)
        self.padding = padding if isinstance(padding, str) else _args.pair(padding, "padding", minimum=0)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be True or False, got {bias!r}")
        self.init = _check_init(init)
        kh, kw = self.kernel_size
        self.weight = Parameter(np.zeros((self.out_channels, self.in_channels // self.groups, kh, kw),
                                         self.dtype))
        self.bias = Parameter(np.zeros(self.out_channels, self.dtype)) if bias else None
        self._x = None
        self._y_shape = None
        self.reset_parameters(seed)

    def reset_parameters(self, seed=None):
        rng = make_rng(seed)
        kh, kw = self.kernel_size
        fan_in = (self.in_channels // self.groups) * kh * kw
        fan_out = self.out_channels * kh * kw
        self.weight.data[...] = init_weight(rng, self.weight.shape, fan_in, fan_out, self.init, self.dtype)
        if self.bias is not None:
            self.bias.data[...] = 0
        return self

    def _conv_args(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups)

    def forward(self, x):
        self._check_input(x, 4, self.in_channels)
        b = None if self.bias is None else self.bias.data
        y = ops().conv2d(x, self.weight.data, b, **self._conv_args())
        self._x = x
        self._y_shape = y.shape
        return y

    def backward(self, dy):
        x = self._x
        if x is None:
            raise self._no_forward()
        self._check_grad(dy, self._y_shape)
        need_w = self.weight.requires_grad
        need_b = self.bias is not None and self.bias.requires_grad
        need_dx = bool(self.input_grad)
        if not (need_w or need_b or need_dx):
            return None
        dx, dw, db = ops().conv2d_backward(dy, x, self.weight.data, **self._conv_args(),
                                           need_dx=need_dx, need_db=need_b)
        if need_w:
            self.weight.grad += dw
        if need_b:
            self.bias.grad += db
        return dx if need_dx else None

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={_fmt_pair(self.kernel_size)}, "
             f"stride={_fmt_pair(self.stride)}")
        if self.padding not in ((0, 0), "valid"):
            s += f", padding={self.padding!r}" if isinstance(self.padding, str) else f", padding={_fmt_pair(self.padding)}"
        if self.dilation != (1, 1):
            s += f", dilation={_fmt_pair(self.dilation)}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


# ---------------------------------------------------------------- pooling


def _pool_args(kernel_size, stride, padding, dilation, ceil_mode):
    kernel = _args.pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else _args.pair(stride, "stride")
    padding = _args.pair(padding, "padding", minimum=0)
    dilation = _args.pair(dilation, "dilation")
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"ceil_mode must be True or False, got {ceil_mode!r}")
    for p, k, d in zip(padding, kernel, dilation):
        if 2 * p > d * (k - 1) + 1:
            raise ValueError(
                f"padding={padding} must be at most half the (dilated) kernel size {kernel}"
            )
    return kernel, stride, padding, dilation, bool(ceil_mode)


class MaxPool2D(Module):
    """Max pooling (as ``torch.nn.MaxPool2d``); ``stride`` defaults to ``kernel_size``.

    The gradient goes to exactly one element per window (the first maximum).
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
                 dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        (self.kernel_size, self.stride, self.padding, self.dilation,
         self.ceil_mode) = _pool_args(kernel_size, stride, padding, dilation, ceil_mode)
        self._idx = None
        self._x_shape = None

    def forward(self, x):
        self._check_input(x, 4)
        y, idx = ops().max_pool2d(x, self.kernel_size, stride=self.stride, padding=self.padding,
                                  dilation=self.dilation, ceil_mode=self.ceil_mode,
                                  return_indices=True)
        self._idx = idx
        self._x_shape = x.shape
        return y

    def backward(self, dy):
        if self._idx is None:
            raise self._no_forward()
        self._check_grad(dy, self._idx.shape)
        if not self.input_grad:
            return None
        return ops().max_pool2d_backward(dy, self._idx, self._x_shape)

    def extra_repr(self):
        s = f"kernel_size={_fmt_pair(self.kernel_size)}, stride={_fmt_pair(self.stride)}"
        if self.padding != (0, 0):
            s += f", padding={_fmt_pair(self.padding)}"
        if self.dilation != (1, 1):
            s += f", dilation={_fmt_pair(self.dilation)}"
        if self.ceil_mode:
            s += ", ceil_mode=True"
        return s


class AvgPool2D(Module):
    """Average pooling (as ``torch.nn.AvgPool2d``); ``stride`` defaults to ``kernel_size``."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 *, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        (self.kernel_size, self.stride, self.padding, _,
         self.ceil_mode) = _pool_args(kernel_size, stride, padding, 1, ceil_mode)
        if not isinstance(count_include_pad, (bool, np.bool_)):
            raise TypeError(f"count_include_pad must be True or False, got {count_include_pad!r}")
        self.count_include_pad = bool(count_include_pad)
        self._x_shape = None
        self._y_shape = None

    def _pool_kw(self):
        return dict(stride=self.stride, padding=self.padding, ceil_mode=self.ceil_mode,
                    count_include_pad=self.count_include_pad)

    def forward(self, x):
        self._check_input(x, 4)
        y = ops().avg_pool2d(x, self.kernel_size, **self._pool_kw())
        self._x_shape = x.shape
        self._y_shape = y.shape
        return y

    def backward(self, dy):
        if self._x_shape is None:
            raise self._no_forward()
        self._check_grad(dy, self._y_shape)
        if not self.input_grad:
            return None
        return ops().avg_pool2d_backward(dy, self._x_shape, self.kernel_size, **self._pool_kw())

    def extra_repr(self):
        s = f"kernel_size={_fmt_pair(self.kernel_size)}, stride={_fmt_pair(self.stride)}"
        if self.padding != (0, 0):
            s += f", padding={_fmt_pair(self.padding)}"
        if self.ceil_mode:
            s += ", ceil_mode=True"
        if not self.count_include_pad:
            s += ", count_include_pad=False"
        return s


class GlobalAvgPool2D(Module):
    """Mean over the spatial axes: (N, C, H, W) -> (N, C)."""

    def __init__(self, *, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self._x_shape = None

    def forward(self, x):
        self._check_input(x, 4)
        self._x_shape = x.shape
        return x.mean(axis=(2, 3))

    def backward(self, dy):
        if self._x_shape is None:
            raise self._no_forward()
        N, C, H, W = self._x_shape
        self._check_grad(dy, (N, C))
        if not self.input_grad:
            return None
        dx = np.empty(self._x_shape, self.dtype)
        dx[...] = (dy / (H * W))[:, :, None, None]
        return dx


# ---------------------------------------------------------------- activations


class ReLU(Module):
    """max(x, 0). Its backward passes dy where the input was > 0 (zero at exactly 0, as PyTorch)."""

    def __init__(self, *, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self._y = None

    def forward(self, x):
        self._check_input(x)
        y = ops().relu(x)
        # y > 0 exactly where x > 0, so the output is all backward needs (and it
        # is usually held by the next layer anyway).
        self._y = y
        return y

    def backward(self, dy):
        if self._y is None:
            raise self._no_forward()
        self._check_grad(dy, self._y.shape)
        if not self.input_grad:
            return None
        return ops().relu_backward(dy, self._y)


class LeakyReLU(Module):
    """x where x > 0, else negative_slope * x (as ``torch.nn.LeakyReLU``)."""

    def __init__(self, negative_slope=0.01, *, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self.negative_slope = as_float(negative_slope, "negative_slope")
        self._pos = None

    def forward(self, x):
        self._check_input(x)
        pos = x > 0
        self._pos = pos
        return np.where(pos, x, x * self.dtype.type(self.negative_slope))

    def backward(self, dy):
        if self._pos is None:
            raise self._no_forward()
        self._check_grad(dy, self._pos.shape)
        if not self.input_grad:
            return None
        return np.where(self._pos, dy, dy * self.dtype.type(self.negative_slope))

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    """1 / (1 + exp(-x)), computed without overflow for large |x|."""

    def __init__(self, *, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self._y = None

    def forward(self, x):
        self._check_input(x)
        e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
        y = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(self.dtype, copy=False)
        self._y = y
        return y

    def backward(self, dy):
        if self._y is None:
            raise self._no_forward()
        self._check_grad(dy, self._y.shape)
        if not self.input_grad:
            return None
        y = self._y
        return dy * y * (1 - y)


class Tanh(Module):
    """Hyperbolic tangent."""

    def __init__(self, *, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self._y = None

    def forward(self, x):
        self._check_input(x)
        y = np.tanh(x)
        self._y = y
        return y

    def backward(self, dy):
        if self._y is None:
            raise self._no_forward()
        self._check_grad(dy, self._y.shape)
        if not self.input_grad:
            return None
        y = self._y
        return dy * (1 - y * y)


# ---------------------------------------------------------------- Linear, Flatten


class Linear(Module):
    """Fully connected layer: y = x @ weight.T + bias; x (N, in_features) -> (N, out_features)."""

    def __init__(self, in_features, out_features, bias=True, *, init="he_normal",
                 dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self.in_features = as_int(in_features, "in_features")
        self.out_features = as_int(out_features, "out_features")
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be True or False, got {bias!r}")
        self.init = _check_init(init)
        self.weight = Parameter(np.zeros((self.out_features, self.in_features), self.dtype))
        self.bias = Parameter(np.zeros(self.out_features, self.dtype)) if bias else None
        self._x = None
        self.reset_parameters(seed)

    def reset_parameters(self, seed=None):
        rng = make_rng(seed)
        self.weight.data[...] = init_weight(rng, self.weight.shape, self.in_features,
                                            self.out_features, self.init, self.dtype)
        if self.bias is not None:
            self.bias.data[...] = 0
        return self

    def forward(self, x):
        self._check_input(x)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            msg = f"{self._short()} expects a 2-d input (N, {self.in_features}), got shape {x.shape}"
            if x.ndim > 2:
                msg += "; put a Flatten() layer before it"
            raise ValueError(msg)
        y = ops().linear(x, self.weight.data, None if self.bias is None else self.bias.data)
        self._x = x
        return y

    def backward(self, dy):
        x = self._x
        if x is None:
            raise self._no_forward()
        self._check_grad(dy, (x.shape[0], self.out_features))
        need_db = self.bias is not None and self.bias.requires_grad
        dx, dw, db = ops().linear_backward(dy, x, self.weight.data, need_dx=self.input_grad,
                                           need_db=need_db)
        if self.weight.requires_grad:
            self.weight.grad += dw
        if need_db:
            self.bias.grad += db
        return dx

    def extra_repr(self):
        s = f"in_features={self.in_features}, out_features={self.out_features}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1*d2*...)."""

    def __init__(self, *, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self._x_shape = None

    def forward(self, x):
        self._check_input(x)
        if x.ndim < 2:
            raise ValueError(f"{self._short()} expects an input with a batch axis (ndim >= 2), got shape {x.shape}")
        self._x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        if self._x_shape is None:
            raise self._no_forward()
        n = self._x_shape[0]
        self._check_grad(dy, (n, int(np.prod(self._x_shape[1:], dtype=np.int64))))
        if not self.input_grad:
            return None
        return dy.reshape(self._x_shape)


# ---------------------------------------------------------------- Dropout


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability ``p`` and scale
    the rest by 1/(1-p); in eval mode, the identity. The masks come from the layer's own
    generator, ``numpy.random.default_rng(seed)``.
    """

    def __init__(self, p=0.5, *, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self.p = as_float(p, "p", 0.0, 1.0)
        self._rng = make_rng(seed)
        self._mask = None
        self._shape = None

    def reset_parameters(self, seed=None):
        self._rng = make_rng(seed)
        return self

    def forward(self, x):
        self._check_input(x)
        self._shape = x.shape
        if not self.training or self.p == 0.0:
            self._mask = False  # identity
            return x
        if self.p == 1.0:
            mask = np.zeros(x.shape, self.dtype)
        else:
            keep = self._rng.random(x.shape) >= self.p
            mask = keep.astype(self.dtype) * self.dtype.type(1.0 / (1.0 - self.p))
        self._mask = mask
        return x * mask

    def backward(self, dy):
        if self._shape is None:
            raise self._no_forward()
        self._check_grad(dy, self._shape)
        if not self.input_grad:
            return None
        if self._mask is False:
            return dy
        return dy * self._mask

    def extra_repr(self):
        return f"p={self.p}"


# ---------------------------------------------------------------- BatchNorm2D


class BatchNorm2D(Module):
    """Batch normalisation over (N, H, W) per channel, as ``torch.nn.BatchNorm2d``.

    Training: normalise with the batch mean and biased variance, and update
    ``running_mean`` / ``running_var`` (with the unbiased variance) by
    ``running = (1 - momentum) * running + momentum * batch`` (``momentum=None``:
    cumulative average). Eval: normalise with the running statistics.
    ``weight`` (ones) and ``bias`` (zeros) exist when ``affine``.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, *,
                 dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self.num_features = as_int(num_features, "num_features")
        self.eps = as_float(eps, "eps", 0.0, None, low_open=True)
        self.momentum = None if momentum is None else as_float(momentum, "momentum", 0.0, 1.0)
        if not isinstance(affine, (bool, np.bool_)):
            raise TypeError(f"affine must be True or False, got {affine!r}")
        self.affine = bool(affine)
        C = self.num_features
        if self.affine:
            self.weight = Parameter(np.ones(C, self.dtype))
            self.bias = Parameter(np.zeros(C, self.dtype))
        else:
            self.weight = None
            self.bias = None
        self.register_buffer("running_mean", np.zeros(C, self.dtype))
        self.register_buffer("running_var", np.ones(C, self.dtype))
        self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        self._cache = None

    def reset_parameters(self, seed=None):
        if self.affine:
            self.weight.data[...] = 1
            self.bias.data[...] = 0
        self.running_mean[...] = 0
        self.running_var[...] = 1
        self.num_batches_tracked[...] = 0
        return self

    def forward(self, x):
        self._check_input(x, 4, self.num_features)
        N, C, H, W = x.shape
        if self.training:
            n = N * H * W
            if n < 2:
                raise ValueError(
                    f"{self._short()} in training mode needs more than one value per channel, "
                    f"got input shape {x.shape}"
                )
            mean = x.mean(axis=(0, 2, 3))
            xc = x - mean[:, None, None]
            var = np.square(xc).mean(axis=(0, 2, 3))
            invstd = 1 / np.sqrt(var + self.eps)
            xhat = xc * invstd[:, None, None]
            self.num_batches_tracked += 1
            f = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
            self.running_mean[...] = (1 - f) * self.running_mean + f * mean
            self.running_var[...] = (1 - f) * self.running_var + f * (var * (n / (n - 1)))
        else:
            invstd = 1 / np.sqrt(self.running_var + self.eps)
            xhat = (x - self.running_mean[:, None, None]) * invstd[:, None, None]
        if self.affine:
            y = xhat * self.weight.data[:, None, None] + self.bias.data[:, None, None]
        else:
            y = xhat
        self._cache = (xhat, invstd, bool(self.training))
        return y

    def backward(self, dy):
        if self._cache is None:
            raise self._no_forward()
        xhat, invstd, batch_stats = self._cache
        self._check_grad(dy, xhat.shape)
        sum_dy = dy.sum(axis=(0, 2, 3))
        sum_dy_xhat = np.einsum("nchw,nchw->c", dy, xhat)
        if self.affine:
            if self.weight.requires_grad:
                self.weight.grad += sum_dy_xhat
            if self.bias.requires_grad:
                self.bias.grad += sum_dy
        if not self.input_grad:
            return None
        scale = invstd if not self.affine else self.weight.data * invstd
        if not batch_stats:
            return dy * scale[:, None, None]
        N, C, H, W = dy.shape
        n = N * H * W
        dx = dy - (sum_dy / n)[:, None, None] - xhat * (sum_dy_xhat / n)[:, None, None]
        dx *= scale[:, None, None]
        return dx

    def extra_repr(self):
        s = f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
        if not self.affine:
            s += ", affine=False"
        return s
