"""The layers' fast paths: prepared convolutions, the eval-mode GEMV of Linear and the
in-place activations of Sequential and Graph in eval mode.

Each fast path must give what the plain path gives (bit for bit where it runs the
same arithmetic), keep raising the same clear errors on bad input, and follow new
weights, shapes, dtypes and algorithm choices.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import _backend, _kernels, _tunetable, functional as F, nn, reference
from fastconv import functional_prepared as FP
from fastconv._args import conv_params
from fastconv.optim import SGD

F32, F64 = np.float32, np.float64


def _rng(seed=0):
    return np.random.default_rng(seed)


def _x(shape, dtype=F32, seed=0):
    return _rng(seed).standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------- prepared conv2d

CONVS = [
    # (x shape, in, out, kernel, stride, padding, dilation, groups)
    ((1, 1, 28, 28), 1, 6, 5, 1, 2, 1, 1),
    ((2, 6, 14, 14), 6, 16, 5, 1, 0, 1, 1),
    ((8, 16, 16, 16), 16, 16, 3, 1, 1, 1, 1),        # winograd by the built-in rule
    ((2, 8, 9, 11), 8, 8, 3, 2, 1, 1, 8),            # depthwise, strided
    ((1, 4, 10, 10), 4, 12, 3, 1, "same", 2, 2),
    ((3, 3, 7, 7), 3, 5, 1, 1, 0, 1, 1),
    ((0, 3, 7, 7), 3, 5, 3, 1, 1, 1, 1),             # empty batch
]


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("shape,cin,cout,k,s,p,d,g", CONVS)
def test_conv_layer_is_bitwise_the_function_api(dtype, shape, cin, cout, k, s, p, d, g):
    layer = nn.Conv2D(cin, cout, k, stride=s, padding=p, dilation=d, groups=g, dtype=dtype, seed=1)
    layer.bias.data[...] = _x(cout, dtype, seed=2)
    x = _x(shape, dtype)
    want = F.conv2d(x, layer.weight.data, layer.bias.data, stride=s, padding=p, dilation=d, groups=g)
    for mode in ("train", "eval"):
        getattr(layer, mode)()
        for _ in range(2):             # the first call prepares, the second reuses
            y = layer.forward(x)
            assert y.dtype == dtype and y.shape == want.shape
            np.testing.assert_array_equal(y, want)
    if shape[0]:
        tol = 1e-4 if dtype == F32 else 1e-10
        np.testing.assert_allclose(y, reference.conv2d(x, layer.weight.data, layer.bias.data, stride=s,
                                                       padding=p, dilation=d, groups=g), rtol=tol, atol=tol)


def test_conv_layer_takes_any_layout_and_never_writes_its_input():
    layer = nn.Conv2D(4, 6, 3, padding=1, seed=0)
    base = _x((2, 4, 9, 9))
    want = F.conv2d(base, layer.weight.data, layer.bias.data, padding=1)
    layer.forward(base)                                   # prepared on a contiguous input
    odd = np.asfortranarray(base)
    swapped = base.astype(">f4")
    strided = np.repeat(base, 2, axis=3)[:, :, :, ::2]
    for x in (odd, strided):
        before = x.copy()
        x.flags.writeable = False
        np.testing.assert_array_equal(layer.forward(x), want)
        np.testing.assert_array_equal(x, before)
    with pytest.raises(TypeError, match="expects float32 input"):
        layer.forward(swapped)


def test_conv_winograd_with_nonfinite_data_still_avoids_winograd():
    # auto picks Winograd for this geometry; inf in the input must make it take the GEMM
    # path on every call (Winograd's transforms would spread NaN), prepared or not
    layer = nn.Conv2D(16, 16, 3, padding=1, bias=False, seed=0)
    x = _x((8, 16, 16, 16))
    if FP.ConvCall(x, layer.weight.data, None, 1, 1, 1, 1).algo != "winograd":
        pytest.skip("the policy does not pick winograd here on this CPU")
    layer.forward(x)
    x[1, 3, 5, 5] = np.inf
    y = layer.forward(x)
    np.testing.assert_array_equal(y, F.conv2d(x, layer.weight.data, padding=1))
    want = reference.conv2d(x, layer.weight.data, padding=1)
    assert np.array_equal(np.isnan(y), np.isnan(want))


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_conv_layer_errors_are_raised_on_every_call(mode):
    layer = getattr(nn.Conv2D(3, 4, 5, seed=0), mode)()
    layer.forward(_x((1, 3, 8, 8)))           # a good call first: its geometry is prepared
    for _ in range(2):
        with pytest.raises(ValueError, match="kernel"):
            layer.forward(_x((1, 3, 4, 4)))  # smaller than the kernel
        with pytest.raises(ValueError, match="expects 3 input channels"):
            layer.forward(_x((1, 2, 8, 8)))
        with pytest.raises(ValueError, match="4-d input"):
            layer.forward(_x((3, 8, 8)))
        with pytest.raises(TypeError, match="expects float32 input, got float64"):
            layer.forward(_x((1, 3, 8, 8), F64))
        with pytest.raises(TypeError, match="numpy.ndarray"):
            layer.forward([[1.0]])
    # a weight replaced by one of another dtype: the function API's mixed-dtype error
    layer.weight.data = layer.weight.data.astype(F64)
    with pytest.raises(TypeError, match="never mixes dtypes"):
        layer.forward(_x((1, 3, 8, 8)))


def test_conv_layer_follows_new_weights_dtype_and_shape():
    layer = nn.Conv2D(3, 8, 3, padding=1, seed=0)
    x = _x((2, 3, 6, 6))
    layer.forward(x)
    # load_state_dict: new values in the same arrays
    other = nn.Conv2D(3, 8, 3, padding=1, seed=5)
    other.bias.data[...] = 0.5
    layer.load_state_dict(other.state_dict())
    np.testing.assert_array_equal(layer.forward(x), F.conv2d(x, other.weight.data, other.bias.data, padding=1))
    # an optimiser step
    layer.forward(x)
    layer.backward(np.ones((2, 8, 6, 6), F32))
    SGD(layer.parameters(), lr=0.1).step()
    np.testing.assert_array_equal(layer.forward(x),
                                  F.conv2d(x, layer.weight.data, layer.bias.data, padding=1))
    # a dtype change
    layer.to(F64)
    x64 = x.astype(F64)
    y = layer.forward(x64)
    assert y.dtype == F64
    np.testing.assert_array_equal(y, F.conv2d(x64, layer.weight.data, layer.bias.data, padding=1))
    # a new input shape
    x2 = _x((1, 3, 11, 7), F64)
    np.testing.assert_array_equal(layer.forward(x2), F.conv2d(x2, layer.weight.data, layer.bias.data, padding=1))


@pytest.fixture
def tune_file(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTCONV_TUNE_FILE", str(tmp_path / "tune.json"))
    _tunetable.forget()
    yield
    _tunetable.forget()


def test_conv_layer_follows_a_new_tuning_table(tune_file):
    layer = nn.Conv2D(16, 16, 3, padding=1, bias=False, seed=0)
    x = _x((8, 16, 16, 16))                # Winograd by the built-in rule
    w = layer.weight.data
    p = conv_params(x.shape, w.shape, 1, 1, 1, 1)
    by = {a: F.conv2d(x, w, padding=1, algo=a) for a in ("direct", "gemm", "winograd")}
    auto = FP.ConvCall(x, w, None, 1, 1, 1, 1).algo
    other = "direct" if auto != "direct" else "gemm"
    if np.array_equal(by[auto], by[other]):
        pytest.skip("the two algorithms agree bit for bit here: nothing to tell apart")
    np.testing.assert_array_equal(layer.forward(x), by[auto])
    _tunetable.write({_tunetable.key(p, "forward", F32): {"algo": other, "ms": {}}})
    np.testing.assert_array_equal(layer.forward(x), by[other])
    _tunetable.clear()
    np.testing.assert_array_equal(layer.forward(x), by[auto])


def test_conv_layer_follows_the_isa():
    if _kernels.isa() == "generic":
        pytest.skip("already generic")
    layer = nn.Conv2D(16, 32, 3, padding=1, seed=0)
    x = _x((2, 16, 10, 10))
    layer.forward(x)
    prev = _kernels.isa()
    _kernels.set_isa("generic")
    try:
        assert FP.ConvCall(x, layer.weight.data, layer.bias.data, 1, 1, 1, 1).algo == "im2col"
        np.testing.assert_array_equal(layer.forward(x), F.conv2d(x, layer.weight.data, layer.bias.data,
                                                                 padding=1))
        want_generic = F.conv2d(x, layer.weight.data, layer.bias.data, padding=1, algo="im2col")
        np.testing.assert_array_equal(layer.forward(x), want_generic)
    finally:
        _kernels.set_isa(prev)
    np.testing.assert_array_equal(layer.forward(x), F.conv2d(x, layer.weight.data, layer.bias.data,
                                                             padding=1))


def test_conv_layer_on_the_reference_backend_and_under_watch_calls_the_backend():
    layer = nn.Conv2D(3, 4, 3, seed=0)
    x = _x((1, 3, 6, 6))
    layer.forward(x)
    with fastconv.use_backend("reference"):
        np.testing.assert_array_equal(layer.forward(x),
                                      reference.conv2d(x, layer.weight.data, layer.bias.data))
    seen = []
    with _backend.watch(lambda name, args, kwargs: seen.append(name)):
        assert not _backend.plain_native()
        layer.forward(x)
    assert seen == ["conv2d"]
    assert _backend.plain_native()


# ---------------------------------------------------------------- Linear in eval mode


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 9])
def test_linear_eval_matches_training_path(dtype, n):
    layer = nn.Linear(37, 11, dtype=dtype, seed=0)
    layer.bias.data[...] = _x(11, dtype, seed=3)
    x = _x((n, 37), dtype)
    train = layer.forward(x)
    np.testing.assert_array_equal(train, F.linear(x, layer.weight.data, layer.bias.data))
    layer.eval()
    y = layer.forward(x)
    assert y.shape == (n, 11) and y.dtype == dtype
    tol = 1e-5 if dtype == F32 else 1e-12
    np.testing.assert_allclose(y, reference.linear(x, layer.weight.data, layer.bias.data), rtol=tol, atol=tol)
    if n > FP.GEMV_MAX_ROWS:
        np.testing.assert_array_equal(y, train)      # the GEMM path, as in training
    # backward after an eval forward still works
    dx = layer.backward(np.ones((n, 11), dtype))
    assert dx is None or dx.shape == (n, 37)
    # new weights are used at once
    layer.weight.data[...] *= 2
    np.testing.assert_allclose(layer.forward(x), reference.linear(x, layer.weight.data, layer.bias.data),
                               rtol=tol, atol=tol)


def test_linear_eval_errors_and_no_bias():
    layer = nn.Linear(5, 3, bias=False, seed=0).eval()
    x = _x((2, 5))
    np.testing.assert_allclose(layer.forward(x), x @ layer.weight.data.T, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match=r"2-d input \(N, 5\)"):
        layer.forward(_x((2, 4)))
    with pytest.raises(TypeError, match="expects float32 input"):
        layer.forward(x.astype(F64))
    layer.weight.data = layer.weight.data[:, :4].copy()
    with pytest.raises(ValueError, match="w must have shape"):
        layer.forward(x)


# ---------------------------------------------------------------- in-place activations


def _specials(dtype):
    v = np.array([-0.0, 0.0, np.nan, -np.nan, -1.5, 2.5, 6.0, 7.0, -np.inf, np.inf, 1e-30], dtype)
    return np.tile(v, 40).reshape(4, 11, 10)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_inplace_relu_and_clip_give_the_same_bits(dtype):
    x = _specials(dtype)
    for layer, want in ((nn.ReLU(dtype=dtype), F.relu(x)),
                        (nn.ReLU6(dtype=dtype), np.clip(x, dtype(0), dtype(6))),
                        (nn.Clip(min=-1.0, dtype=dtype), np.maximum(x, dtype(-1))),
                        (nn.Clip(max=2.0, dtype=dtype), np.minimum(x, dtype(2))),
                        (nn.Clip(dtype=dtype), x)):
        run = nn.module.inplace_forward(layer)
        assert run is not None
        y_plain = layer.forward(x)
        np.testing.assert_array_equal(y_plain.view(np.uint8), want.view(np.uint8))
        dy = _x(x.shape, dtype, seed=4)
        dx_plain = layer.backward(dy)
        buf = x.copy()
        y = run(buf)
        assert y is buf
        np.testing.assert_array_equal(y.view(np.uint8), want.view(np.uint8))
        np.testing.assert_array_equal(layer.backward(dy), dx_plain)


def test_clip_gradient_at_the_bounds():
    layer = nn.Clip(min=0.0, max=6.0, dtype=F64)
    x = np.array([-1.0, 0.0, 1e-300, 3.0, 6.0 - 1e-12, 6.0, 9.0, np.nan])
    layer.forward(x)
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx, [0, 0, 1, 1, 1, 0, 0, 0])


def _net(dtype=F32, seed=0):
    return nn.Sequential(
        nn.ReLU(),                                  # the caller's array: never overwritten
        nn.Conv2D(3, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2D(8, 8, 3, padding=1, groups=8), nn.ReLU6(),
        nn.MaxPool2D(2), nn.ReLU(),                  # after a pool: not in place
        nn.BatchNorm2D(8), nn.ReLU(),
        nn.Flatten(), nn.Linear(8 * 4 * 4, 10), nn.ReLU(),
        dtype=dtype, seed=seed)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_sequential_eval_equals_train_and_leaves_its_input_alone(dtype):
    net = _net(dtype)
    bn = net[7]
    bn.running_mean[...] = _x(8, dtype, seed=5)
    bn.running_var[...] = 1 + _x(8, dtype, seed=6) ** 2
    x = _x((6, 3, 8, 8), dtype)              # 6 rows: Linear takes the GEMM path in both modes
    before = x.copy()
    # the training-mode forward with BatchNorm's running statistics: the reference result
    bn.eval()
    want = net.forward(x)
    net.input_grad = True
    dy = _x(want.shape, dtype, seed=7)
    net.zero_grad()
    dx_want = net.backward(dy)
    g_want = [p.grad.copy() for p in net.parameters()]
    net.eval()
    y = net.forward(x)
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(x, before)
    net.zero_grad()
    np.testing.assert_array_equal(net.backward(dy), dx_want)
    for p, g in zip(net.parameters(), g_want):
        np.testing.assert_array_equal(p.grad, g)
    # and the eval forward did make the activations run in place
    acts = []
    for m in net:
        if isinstance(m, (nn.ReLU, nn.Clip)):
            f = type(m)._forward_inplace
            m.__dict__["_forward_inplace"] = (lambda x, m=m, f=f: (acts.append(m), f(m, x))[1])
    net.forward(x)
    for m in net:
        m.__dict__.pop("_forward_inplace", None)
    assert acts == [net[2], net[4], net[8], net[11]]


def test_sequential_does_not_overwrite_what_someone_else_holds():
    conv = nn.Conv2D(2, 3, 3, padding=1, seed=0)
    kept = []
    plain = conv.forward

    def hooked(x):
        y = plain(x)
        kept.append(y)
        return y

    net = nn.Sequential(conv, nn.ReLU()).eval()
    conv.forward = hooked                    # an instance-level hook keeps the conv output
    x = _x((1, 2, 5, 5))
    y = net.forward(x)
    assert (kept[0] < 0).any() and (y >= 0).all()
    np.testing.assert_array_equal(kept[0], F.conv2d(x, conv.weight.data, conv.bias.data, padding=1))


def _graph(dtype=F32):
    return nn.Graph(inputs="x", outputs=["y", "c2"], nodes=[
        ("c1", nn.Conv2D(3, 4, 3, padding=1), ["x"], ["a"]),
        ("r1", nn.ReLU(), ["a"], ["ra"]),               # a also feeds the add: not in place
        ("add", nn.Add(), ["ra", "a"], ["s"]),
        ("c2", nn.Conv2D(4, 4, 1), ["s"], ["c2"]),      # a graph output, and read by r2
        ("r2", nn.ReLU6(), ["c2"], ["r2"]),
        ("c3", nn.Conv2D(4, 4, 3, padding=1), ["r2"], ["b"]),
        ("r3", nn.ReLU(), ["b"], ["y"]),                # single use: in place
    ], dtype=dtype, seed=0)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_graph_eval_equals_train_with_fanout_and_outputs(dtype):
    g = _graph(dtype)
    x = _x((2, 3, 6, 6), dtype)
    g.input_grad = True
    want = g.forward(x)
    dys = [_x(w.shape, dtype, seed=8 + i) for i, w in enumerate(want)]
    g.zero_grad()
    dx_want = g.backward(*dys)
    grads = [p.grad.copy() for p in g.parameters()]
    g.eval()
    got = g.forward(x)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    assert (got[1] < 0).any()                 # c2 was not clipped in place
    g.zero_grad()
    np.testing.assert_array_equal(g.backward(*dys), dx_want)
    for p, gr in zip(g.parameters(), grads):
        np.testing.assert_array_equal(p.grad, gr)
    assert g._handover == (None, None, None, "add", None, "r2", "c3")


def test_eval_fusion_is_off_on_the_reference_backend_and_in_training():
    net = nn.Sequential(nn.Conv2D(2, 3, 3, padding=1), nn.ReLU(), seed=0)
    x = _x((1, 2, 5, 5))
    calls = []
    relu = net[1]
    relu.__dict__["_forward_inplace"] = lambda a: calls.append(1) or type(relu)._forward_inplace(relu, a)
    net.forward(x)
    with fastconv.use_backend("reference"):
        net.eval().forward(x)
    assert calls == []
    net.forward(x)
    assert calls == [1]


@pytest.mark.parametrize("dtype", [F32, F64])
def test_joins_hand_their_output_to_an_inplace_activation(dtype):
    # a residual join then ReLU (ResNet), and fixed-operand Add / Mul / Sub then an
    # activation: eval equals training, backward included, and the activations ran in place
    g = nn.Graph(inputs="x", outputs="y", nodes=[
        ("c1", nn.Conv2D(3, 3, 3, padding=1), ["x"], ["a"]),
        ("add", nn.Add(), ["a", "x"], ["s"]),
        ("r1", nn.ReLU(), ["s"], ["r"]),
        ("shift", nn.Sub(_x((1, 3, 1, 1), dtype, seed=11)), ["r"], ["t"]),
        ("r2", nn.ReLU6(), ["t"], ["u"]),
        ("scale", nn.Mul(_x((1, 3, 1, 1), dtype, seed=12)), ["u"], ["v"]),
        ("r3", nn.Clip(min=-0.5, max=0.5), ["v"], ["y"]),
    ], dtype=dtype, seed=0)
    x = _x((2, 3, 5, 5), dtype)
    g.input_grad = True
    want = g.forward(x)
    dy = _x(want.shape, dtype, seed=13)
    g.zero_grad()
    dx_want = g.backward(dy)
    grads = [p.grad.copy() for p in g.parameters()]
    g.eval()
    ran = []
    for name in ("r1", "r2", "r3"):
        m = g._modules[name]
        f = type(m)._forward_inplace
        m.__dict__["_forward_inplace"] = (lambda a, m=m, f=f, name=name: (ran.append(name), f(m, a))[1])
    y = g.forward(x)
    assert ran == ["r1", "r2", "r3"]
    np.testing.assert_array_equal(y, want)
    g.zero_grad()
    np.testing.assert_array_equal(g.backward(dy), dx_want)
    for p, gr in zip(g.parameters(), grads):
        np.testing.assert_array_equal(p.grad, gr)
    # Div's backward reads its output: it keeps it, so nothing overwrites it
    assert not nn.module.fresh_output(nn.Div())


# ---------------------------------------------------------------- max pooling in eval mode


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("geom", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                  dict(kernel_size=3, stride=2, ceil_mode=True)])
def test_maxpool_eval_skips_the_indices_and_backward_finds_them(dtype, geom):
    # eval mode computes the values only; a backward after it (input gradients of an eval
    # model) finds the argmax of the same input, so dx equals training mode's, ties included
    x = _rng(3).integers(-2, 3, (2, 3, 11, 13)).astype(dtype)
    pool = nn.MaxPool2D(**geom, dtype=dtype)
    pool.input_grad = True
    y_train = pool.forward(x)
    dy = _x(y_train.shape, dtype, seed=4)
    dx_train = pool.backward(dy)
    pool.eval()
    y = pool.forward(x)
    assert pool._idx is None                      # no indices were computed
    np.testing.assert_array_equal(y, y_train)
    np.testing.assert_array_equal(pool.backward(dy), dx_train)
    np.testing.assert_array_equal(pool.backward(dy), dx_train)   # again: indices kept
    with pytest.raises(ValueError):
        pool.backward(dy[:, :, :1])               # a wrong gradient shape, as in training
    pool.train()
    pool.forward(x)
    assert pool._idx is not None and pool._x is None


def test_maxpool_backward_without_forward_and_on_the_reference_backend():
    pool = nn.MaxPool2D(2)
    pool.eval()
    with pytest.raises(RuntimeError):
        pool.backward(np.zeros((1, 1, 2, 2), F32))
    x = _x((1, 2, 6, 6))
    pool.input_grad = True
    with _backend.use_backend("reference"):
        y = pool.forward(x)
        assert pool._idx is not None              # the backend's own call, with indices
        dx = pool.backward(np.ones_like(y))
    np.testing.assert_array_equal(dx, reference.max_pool2d_backward(
        np.ones_like(y), reference.max_pool2d(x, 2, return_indices=True)[1], x.shape))
