"""The catalogue of mutations: each function below, registered with ``@mutation``,
replaces one part of fastconv by a plausible wrong version when the harness
(tools/mutate.py) applies it in a test run. Grouped by the issue-17 finding each
demonstrates."""

from __future__ import annotations

import contextlib
import os
import sys

from mutate_registry import (_again, _args, _backward_wrapper, _f32_real_data, _hit,
                             _integer_valued, _public, _replace, mutation)


# ---- 1. float32 tolerances -----------------------------------------------------------

F1 = ["test_conv.py", "test_gemm.py"]


@mutation("f32-conv-dx-1pct", 1, F1)
def _():
    """float32 conv2d_backward: dx 1% too large (non-integer data)."""
    def change(orig, a, dx, dw, db):
        if dx is not None and _f32_real_data(dx, a["dy"], a["x"], a["w"]):
            return dx * dx.dtype.type(1.01), dw, db
    _public("conv2d_backward", _backward_wrapper(change))


@mutation("f32-conv-dx-drop-channel", 1, F1)
def _():
    """float32 conv2d_backward: dx misses the last output channel's contribution."""
    def change(orig, a, dx, dw, db):
        if dx is not None and _f32_real_data(dx, a["dy"], a["x"], a["w"]):
            dy = a["dy"].copy()
            dy[:, -1] = 0
            return _again(orig, a, dy=dy, need_db=False)[0], dw, db
    _public("conv2d_backward", _backward_wrapper(change))


@mutation("f32-conv-dx-drop-tap", 1, F1)
def _():
    """float32 conv2d_backward: dx misses kernel tap (0, 0)."""
    def change(orig, a, dx, dw, db):
        if dx is not None and _f32_real_data(dx, a["dy"], a["x"], a["w"]):
            w = a["w"].copy()
            w[:, :, 0, 0] = 0
            return _again(orig, a, w=w, need_db=False)[0], dw, db
    _public("conv2d_backward", _backward_wrapper(change))


@mutation("f32-conv-dw-zero-row", 1, F1)
def _():
    """float32 conv2d_backward: dw's first row (output channel 0) zeroed."""
    def change(orig, a, dx, dw, db):
        if _f32_real_data(dw, a["dy"], a["x"], a["w"]):
            dw = dw.copy()
            dw[0] = 0
            return dx, dw, db
    _public("conv2d_backward", _backward_wrapper(change))


@mutation("f32-conv-dw-zero-kernel-row", 1, F1)
def _():
    """float32 conv2d_backward: dw's first kernel row (r = 0) zeroed."""
    def change(orig, a, dx, dw, db):
        if _f32_real_data(dw, a["dy"], a["x"], a["w"]):
            dw = dw.copy()
            dw[:, :, 0, :] = 0
            return dx, dw, db
    _public("conv2d_backward", _backward_wrapper(change))


@mutation("f32-conv-y-1e-3", 1, F1)
def _():
    """float32 conv2d: y 0.1% too large (non-integer data)."""
    def make(orig):
        def wrong(*args, **kwargs):
            y = orig(*args, **kwargs)
            a = _args(orig, args, kwargs)
            if _f32_real_data(y, a["x"], a["w"], a["b"]):
                _hit()
                y = y * y.dtype.type(1.001)
            return y
        return wrong
    _public("conv2d", make)


@mutation("f32-gemm-1e-3", 1, ["test_gemm.py"])
def _():
    """fastconv's own float32 GEMM (fastconv._kernels.gemm): C 0.1% too large."""
    import numpy as np
    import fastconv._kernels as K

    def make(orig):
        def wrong(trans_a, trans_b, M, N, Kd, a, lda, b, ldb, beta, c, ldc, nthreads):
            orig(trans_a, trans_b, M, N, Kd, a, lda, b, ldb, beta, c, ldc, nthreads)
            if c.dtype == np.float32 and not _integer_valued(a, b):
                _hit()
                for i in range(M):
                    c[i * ldc:i * ldc + N] *= np.float32(1.001)
        return wrong
    _replace(K, "gemm", make)


# ---- 2. checks that existed only against PyTorch ----------------------------------------

F2_OPT = ["test_optim.py"]
F2_SHAPE = ["test_shapes.py", "test_reference.py", "test_pool.py", "test_conv.py"]


def _sgd(nesterov_ignored=False, damp_first=False, damp_ignored=False, wd_after=False):
    import numpy as np
    from fastconv import optim

    def _update(self, p, st, lr):
        g = p.grad
        if self.weight_decay != 0 and not wd_after:
            g = g + self.weight_decay * p.data
        if self.momentum != 0:
            buf = st.get("momentum_buffer")
            damp = 0.0 if damp_ignored else self.dampening
            if buf is None:
                buf = st["momentum_buffer"] = np.array(g * (1 - damp if damp_first else 1), copy=True)
            else:
                buf *= self.momentum
                buf += (1 - damp) * g
            g = g + self.momentum * buf if self.nesterov and not nesterov_ignored else buf
        if self.weight_decay != 0 and wd_after:
            g = g + self.weight_decay * p.data
        _hit()
        p.data -= lr * g
    optim.SGD._update = _update


@mutation("sgd-nesterov-ignored", 2, F2_OPT, no_torch=True)
def _():
    """SGD(nesterov=True) takes the plain momentum step."""
    _sgd(nesterov_ignored=True)


@mutation("sgd-dampening-on-first-step", 2, F2_OPT, no_torch=True)
def _():
    """SGD dampens the first momentum buffer too (torch starts it at the raw gradient)."""
    _sgd(damp_first=True)


@mutation("sgd-dampening-ignored", 2, F2_OPT, no_torch=True)
def _():
    """SGD ignores dampening."""
    _sgd(damp_ignored=True)


@mutation("sgd-weight-decay-after-momentum", 2, F2_OPT, no_torch=True)
def _():
    """SGD adds weight decay after the momentum buffer instead of to the gradient."""
    _sgd(wd_after=True)


def _adam(no_bias_correction=False, eps_inside=False, decay_after=False, coupled=False):
    import math
    import numpy as np
    from fastconv import optim

    def _update(self, p, st, lr):
        b1, b2 = self.betas
        if not st:
            st["step"] = 0
            st["exp_avg"] = np.zeros_like(p.data)
            st["exp_avg_sq"] = np.zeros_like(p.data)
        st["step"] += 1
        t = st["step"]
        m, v = st["exp_avg"], st["exp_avg_sq"]
        g = p.grad
        decoupled = self._decoupled and not coupled
        if self.weight_decay != 0:
            if not decoupled:
                g = g + self.weight_decay * p.data
            elif not decay_after:
                p.data *= 1 - lr * self.weight_decay
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        c1, c2 = (1.0, 1.0) if no_bias_correction else (1 - b1**t, 1 - b2**t)
        if eps_inside:
            denom = np.sqrt(v / c2 + self.eps)
        else:
            denom = np.sqrt(v) / math.sqrt(c2) + self.eps
        p.data -= (lr / c1) * (m / denom)
        if self.weight_decay != 0 and decoupled and decay_after:
            p.data *= 1 - lr * self.weight_decay
        _hit()
    optim.Adam._update = _update


@mutation("adam-no-bias-correction", 2, F2_OPT, no_torch=True)
def _():
    """Adam without the 1/(1 - beta^t) bias corrections."""
    _adam(no_bias_correction=True)


@mutation("adam-eps-inside-sqrt", 2, F2_OPT, no_torch=True)
def _():
    """Adam divides by sqrt(vhat + eps) instead of sqrt(vhat) + eps."""
    _adam(eps_inside=True)


@mutation("adamw-decay-after-step", 2, F2_OPT, no_torch=True)
def _():
    """AdamW applies the decoupled decay after the Adam step instead of before."""
    _adam(decay_after=True)


@mutation("adamw-as-adam", 2, F2_OPT, no_torch=True)
def _():
    """AdamW adds its weight decay to the gradient (Adam's L2), not decoupled."""
    _adam(coupled=True)


@mutation("pool-ceil-keeps-window-in-padding", 2, F2_SHAPE, no_torch=True)
def _():
    """ceil_mode keeps a last window that would start in the right padding."""
    from fastconv._args import geometry as _args  # where conv_params / pool_params look

    def _pool_out(size, pad, dil, k, s, ceil_mode):
        _hit()
        num = size + 2 * pad - (dil * (k - 1) + 1)
        return max((num + (s - 1 if ceil_mode else 0)) // s + 1, 0)
    _args._pool_out = _pool_out


@mutation("same-padding-extra-top-left", 2, F2_SHAPE, no_torch=True)
def _():
    """padding="same" puts the odd extra row/column at the top/left."""
    from fastconv._args import geometry as _args  # where conv_params / pool_params look

    def make(orig):
        def wrong(padding, kernel, dilation, stride):
            if padding != "same":
                return orig(padding, kernel, dilation, stride)
            out = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                out += [total - total // 2, total // 2]
            _hit()
            return tuple(out)
        return wrong
    _replace(_args, "conv_padding", make)


@mutation("conv-out-size-ceil", 2, F2_SHAPE, no_torch=True)
def _():
    """Convolution output size rounds up instead of down."""
    from fastconv._args import geometry as _args  # where conv_params / pool_params look

    def out_size(size, pad_total, dilation, kernel, stride):
        _hit()
        return -(-(size + pad_total - dilation * (kernel - 1) - 1) // stride) + 1
    _args.out_size = out_size


# ---- 3. tests that could never run --------------------------------------------------------

@mutation("winograd-silent-fallback", 3, ["test_direct_edge.py"])
def _():
    """algo="winograd" on a geometry it does not take quietly runs algo="direct"."""
    def make(orig):
        def wrong(*args, **kwargs):
            try:
                return orig(*args, **kwargs)
            except ValueError as e:
                if "winograd" not in str(e):
                    raise
                _hit()
                a = _args(orig, args, kwargs)
                a["algo"] = "direct"
                return orig(**a)
        return wrong
    _public("conv2d", make)
    _public("conv2d_backward", make)


@mutation("baseline-pooling-missing", 3, ["test_numpy_baseline.py"])
def _():
    """The benchmark's NumPy baseline loses its pooling functions."""
    bench = os.environ.get("FASTCONV_MUTATION_BENCHMARKS")
    if bench and bench not in sys.path:
        sys.path.insert(0, bench)
    import numpy_conv
    for name in ("max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward",
                 "avg_pool2d_backward"):
        delattr(numpy_conv, name)
    _hit()


# ---- 4. "writes nothing" ---------------------------------------------------------------

@mutation("writes-inputs-before-raising", 4, ["test_errors.py"])
def _():
    """Every function (native and reference) writes into its array arguments before it
    raises an error."""
    import numpy as np
    import fastconv.functional as F
    from fastconv import reference as R

    def make(orig):
        def wrong(*args, **kwargs):
            try:
                return orig(*args, **kwargs)
            except Exception:
                for v in list(args) + list(kwargs.values()):
                    if (isinstance(v, np.ndarray) and v.size and v.flags.writeable
                            and v.dtype.kind in "biuf"):
                        v.flat[0] = v.flat[0] + 1 if v.dtype.kind != "b" else not v.flat[0]
                        _hit()
                raise
        return wrong
    for name in ("conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
                 "avg_pool2d_backward", "im2col", "col2im", "relu", "relu_backward"):
        _replace(F, name, make)
        _replace(R, name, make)


# ---- 5. the same code on both sides -----------------------------------------------------

F5_NN = ["test_nn_layers.py", "test_nn_gradcheck.py"]


@mutation("linear-bias-twice", 5, ["test_linear.py"], no_torch=True)
def _():
    """linear adds the bias twice and linear_backward doubles db, in the native function
    and the reference alike (consistent: gradient checks pass)."""
    import fastconv.functional as F
    from fastconv import reference as R

    def fwd(orig):
        def wrong(x, w, b=None):
            y = orig(x, w, b)
            if b is not None:
                _hit()
                y = y + b
            return y
        return wrong

    def bwd(orig):
        def wrong(*args, **kwargs):
            dx, dw, db = orig(*args, **kwargs)
            return dx, dw, None if db is None else 2 * db
        return wrong
    for mod in (F, R):
        _replace(mod, "linear", fwd)
        _replace(mod, "linear_backward", bwd)


@mutation("linear-f32-1e-3", 5, ["test_linear.py"])
def _():
    """Native float32 linear and linear_backward 0.1% too large (non-integer data)."""
    import numpy as np

    def fwd(orig):
        def wrong(x, w, b=None):
            y = orig(x, w, b)
            if _f32_real_data(y, x, w, b):
                _hit()
                y = y * np.float32(1.001)
            return y
        return wrong

    def bwd(orig):
        def wrong(dy, x, w, *args, **kwargs):
            out = orig(dy, x, w, *args, **kwargs)
            if _f32_real_data(out[1], dy, x, w):
                _hit()
                out = tuple(None if o is None else o * np.float32(1.001) for o in out)
            return out
        return wrong
    _public("linear", fwd)
    _public("linear_backward", bwd)


@mutation("large-image-direct-and-gemm-share-a-bug", 5, ["test_gemm.py"])
def _():
    """The direct and GEMM forward kernels both get the last output element of a large
    image wrong by 1 (a shared bug: they agree with each other)."""
    import fastconv._kernels as K

    shared = (K.ALGO_ID["direct"], K.ALGO_ID["gemm"])

    def make(orig):
        def wrong(algo, geom, x, w, b, y, nthreads):
            orig(algo, geom, x, w, b, y, nthreads)
            if algo in shared and x.size >= 2**21:
                _hit()
                y[-1] += 1
        return wrong
    _replace(K, "conv2d_fwd", make)


def _layer(cls_name, forward, backward):
    """Replace a layer's forward and backward by ``forward(orig, self, x)`` and
    ``backward(orig, self, dy)``, which wrap the real ones (so the argument checks, the
    "backward before forward" error and input_grad behave as before)."""
    from fastconv import nn
    cls = getattr(nn, cls_name)
    fwd, bwd = cls.forward, cls.backward

    def new_forward(self, x):
        _hit()
        return forward(fwd, self, x)

    def new_backward(self, dy):
        return backward(bwd, self, dy)
    cls.forward, cls.backward = new_forward, new_backward


def _times(a, factor):
    return None if a is None else a * a.dtype.type(factor)


@mutation("sigmoid-steeper", 5, F5_NN, no_torch=True)
def _():
    """Sigmoid computes s(1.1 x), with the matching gradient (consistent)."""
    _layer("Sigmoid", lambda f, self, x: f(self, x * x.dtype.type(1.1)),
           lambda b, self, dy: _times(b(self, dy), 1.1))


@mutation("tanh-scaled", 5, F5_NN, no_torch=True)
def _():
    """Tanh computes 1.01 tanh(x), with the matching gradient (consistent)."""
    _layer("Tanh", lambda f, self, x: _times(f(self, x), 1.01),
           lambda b, self, dy: _times(b(self, dy), 1.01))


@mutation("leaky-slope-squared", 5, F5_NN, no_torch=True)
def _():
    """LeakyReLU uses slope**2, forward and backward (consistent)."""
    def squared(call):
        def run(orig, self, a):
            slope = self.negative_slope
            self.negative_slope = slope ** 2
            try:
                return orig(self, a)
            finally:
                self.negative_slope = slope
        return run
    _layer("LeakyReLU", squared("forward"), squared("backward"))


@mutation("global-avg-pool-sums", 5, F5_NN, no_torch=True)
def _():
    """GlobalAvgPool2D sums instead of averaging, with the matching gradient."""
    _layer("GlobalAvgPool2D", lambda f, self, x: _times(f(self, x), x.shape[2] * x.shape[3]),
           lambda b, self, dy: _times(b(self, dy), self._x_shape[2] * self._x_shape[3]))


@mutation("flatten-fortran-order", 5, F5_NN, no_torch=True)
def _():
    """Flatten in Fortran order (and back), instead of C order."""
    def forward(f, self, x):
        f(self, x)
        return x.reshape(x.shape[0], -1, order="F")

    def backward(b, self, dy):
        dx = b(self, dy)
        return None if dx is None else dy.reshape(self._x_shape, order="F")
    _layer("Flatten", forward, backward)


@mutation("cross-entropy-temperature-2", 5, F5_NN, no_torch=True)
def _():
    """SoftmaxCrossEntropy of logits/2, with the matching gradient (consistent)."""
    from fastconv import nn
    cls = nn.SoftmaxCrossEntropy
    fwd, bwd = cls.forward, cls.backward

    def forward(self, logits, labels):
        _hit()
        return fwd(self, logits / 2, labels)

    def backward(self, grad=1.0):
        return bwd(self, grad) / 2
    cls.forward, cls.backward = forward, backward


@mutation("mse-sums", 5, F5_NN, no_torch=True)
def _():
    """MSELoss sums the squares instead of averaging, with the matching gradient."""
    from fastconv import nn
    cls = nn.MSELoss
    fwd, bwd = cls.forward, cls.backward

    def forward(self, pred, target):
        _hit()
        return fwd(self, pred, target) * pred.size

    def backward(self, grad=1.0):
        return bwd(self, grad) * self._cache.size
    cls.forward, cls.backward = forward, backward


# ---- 6. fuzzing ---------------------------------------------------------------------------

def _scale_kernels(algo):
    import fastconv._kernels as K

    aid = K.ALGO_ID[algo]

    def make(out_index):
        def wrap(orig):
            def wrong(*args):  # (algo, geom, ...): the per-pass binding
                orig(*args)
                if args[0] == aid:
                    _hit()
                    out = args[out_index]
                    out *= out.dtype.type(1.01)
            return wrong
        return wrap
    _replace(K, "conv2d_fwd", make(5))          # (algo, geom, x, w, b, y, nthreads)
    _replace(K, "conv2d_bwd_data", make(4))     # (algo, geom, dy, w, dx, nthreads)
    _replace(K, "conv2d_bwd_weight", make(4))   # (algo, geom, dy, x, dw, db, nthreads)


@mutation("gemm-kernels-1pct", 6, ["test_fuzz.py"])
def _():
    """The GEMM convolution kernels (all three passes) give results 1% too large."""
    _scale_kernels("gemm")


@mutation("winograd-kernels-1pct", 6, ["test_fuzz.py"])
def _():
    """The Winograd convolution kernels (all three passes) give results 1% too large."""
    _scale_kernels("winograd")


# ---- 7. weaker than their names ------------------------------------------------------------

@mutation("dw-summed-per-thread", 7, ["test_conv.py"])
def _():
    """With more than one thread, dw and db are summed as two half-batch partial sums
    (a reduction whose order depends on the thread count)."""
    import fastconv

    def change(orig, a, dx, dw, db):
        n = a["x"].shape[0]
        if fastconv.get_num_threads() < 2 or n < 2:
            return None
        h = n // 2
        lo = _again(orig, a, dy=a["dy"][:h], x=a["x"][:h], need_dx=False)
        hi = _again(orig, a, dy=a["dy"][h:], x=a["x"][h:], need_dx=False)
        return dx, lo[1] + hi[1], None if db is None else lo[2] + hi[2]
    _public("conv2d_backward", _backward_wrapper(change))


@mutation("threadpool-limits-ignored", 7, ["test_concurrency.py"])
def _():
    """threadpoolctl's limit does not reach the BLAS (threadpool_limits does nothing)."""
    import threadpoolctl

    @contextlib.contextmanager
    def threadpool_limits(*args, **kwargs):
        _hit()
        yield
    threadpoolctl.threadpool_limits = threadpool_limits
