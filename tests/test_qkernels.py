"""The int8 kernels (csrc/qgemm.c, csrc/qconv.c via fastconv.qfunctional) against the
integer NumPy reference (fastconv.reference.q*): bitwise equal, for every ISA variant
this CPU runs (the others are skipped, with the reason)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastconv
from fastconv import _kernels as K
from fastconv import qfunctional as qf
from fastconv import reference as ref
from conftest import run_python, subprocess_env

ISAS = ["generic", "avx2", "avx512_vnni"]
OUTS = ["int32", "uint8", "float32"]


@pytest.fixture(params=ISAS)
def isa(request):
    """Force one int8 variant for the test (restored afterwards)."""
    got = K.set_qisa(request.param)
    try:
        if got != request.param:
            pytest.skip(f"this CPU cannot run the {request.param} int8 kernels "
                        f"(features: {K.cpu_features()}, avx512_vnni={K.cpu_has_avx512_vnni()})")
        yield request.param
    finally:
        K.set_qisa(None)


def _epi(rng, M):
    return dict(a_zero=int(rng.integers(0, 256)),
                bias=rng.integers(-5000, 5000, M).astype(np.int32),
                mult=(rng.random(M) * 0.004 + 1e-4).astype(np.float32),
                out_zero=int(rng.integers(0, 256)))


def _same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("M,Kd,N", [(1, 1, 1), (8, 4, 32), (13, 37, 71), (64, 300, 100), (3, 5, 2),
                                    (9, 0, 5), (17, 1000, 33)])
def test_gemm_and_linear_match_reference(isa, M, Kd, N):
    rng = np.random.default_rng(M * 1000 + Kd)
    w = rng.integers(-128, 128, (M, Kd)).astype(np.int8)
    a = rng.integers(0, 256, (Kd, N)).astype(np.uint8)
    e = _epi(rng, M)
    for out in OUTS:
        for relu in (False, True):
            kw = dict(e, out=out, relu=relu)
            _same(qf.qgemm(w, a, **kw), ref.qgemm(w, a, **kw))
            x = np.ascontiguousarray(a.T)
            _same(qf.qlinear(x, w, **kw), ref.qlinear(x, w, **kw))


def test_no_bias_and_saturation_corners(isa):
    """vpmaddubsw sums two u8*s8 products into int16 with saturation: 255*(-128)*2 would
    saturate; the split into 7 low bits + the high bit keeps every variant exact."""
    for wv in (-128, 127, -127):
        w = np.full((9, 64), wv, np.int8)
        for av in (255, 128, 127, 0):
            a = np.full((64, 40), av, np.uint8)
            _same(qf.qgemm(w, a, a_zero=0), ref.qgemm(w, a, a_zero=0))
            _same(qf.qgemm(w, a, a_zero=255), ref.qgemm(w, a, a_zero=255))
    rng = np.random.default_rng(7)
    w = rng.integers(-128, 128, (16, 100)).astype(np.int8)
    lo = rng.integers(0, 128, (100, 50)).astype(np.uint8)      # 7-bit activations: AVX2's fast path
    mixed = lo.copy()
    mixed[:, 40] |= 0x80                                           # one column panel with high bits
    for a in (lo, mixed):
        _same(qf.qgemm(w, a, 3), ref.qgemm(w, a, 3))


conv_cases = st.tuples(
    st.integers(0, 2), st.integers(1, 5), st.sampled_from([1, 1, 2]), st.integers(1, 6),
    st.integers(3, 20), st.integers(3, 20), st.integers(1, 3), st.integers(1, 3),
    st.sampled_from([1, 1, 2]), st.sampled_from([0, 1, 2, "same"]), st.sampled_from([1, 1, 2]),
    st.integers(0, 2**31 - 1))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=conv_cases)
def test_conv2d_matches_reference(isa, case):
    N, C, G, Kg, H, W, R, S, stride, padding, dil, seed = case
    if padding == "same":
        stride = 1
    rng = np.random.default_rng(seed)
    C *= G
    Kc = Kg * G
    x = rng.integers(0, 256, (N, C, H, W)).astype(np.uint8)
    w = rng.integers(-128, 128, (Kc, C // G, R, S)).astype(np.int8)
    geo = dict(stride=stride, padding=padding, dilation=dil, groups=G)
    e = _epi(rng, Kc)
    try:
        expect = ref.qconv2d(x, w, **e, out="uint8", relu=True, **geo)
    except ValueError:
        with pytest.raises(ValueError):
            qf.qconv2d(x, w, **e, out="uint8", relu=True, **geo)
        return
    _same(qf.qconv2d(x, w, **e, out="uint8", relu=True, **geo), expect)
    for out in ("int32", "float32"):
        _same(qf.qconv2d(x, w, **e, out=out, **geo), ref.qconv2d(x, w, **e, out=out, **geo))
    pad = e["a_zero"]
    _same(qf.qim2col(x, (R, S), dil, padding, stride, pad), ref.qim2col(x, (R, S), dil, padding, stride, pad))


def test_conv2d_vgg_like_layers(isa):
    rng = np.random.default_rng(1)
    for C, Kc, H in [(3, 32, 32), (32, 64, 16)]:
        x = rng.integers(0, 256, (2, C, H, H)).astype(np.uint8)
        w = rng.integers(-127, 128, (Kc, C, 3, 3)).astype(np.int8)
        e = _epi(rng, Kc)
        pw = qf.PackedWeights(w)
        _same(qf.qconv2d(x, pw, **e, out="uint8", relu=True, padding=1),
              ref.qconv2d(x, w, **e, out="uint8", relu=True, padding=1))


def test_results_do_not_depend_on_threads(isa):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (3, 8, 12, 12)).astype(np.uint8)
    w = rng.integers(-128, 128, (20, 8, 3, 3)).astype(np.int8)
    e = _epi(rng, 20)
    prev = fastconv.get_num_threads()
    try:
        outs = []
        for n in (1, 2, 3):
            fastconv.set_num_threads(n)
            outs.append(qf.qconv2d(x, w, **e, out="uint8", padding=1))
    finally:
        fastconv.set_num_threads(prev)
    for o in outs[1:]:
        _same(o, outs[0])


@pytest.mark.parametrize("kernel,stride,padding,dilation,ceil", [
    (2, None, 0, 1, False), (3, 2, 1, 1, False), (3, 2, 1, 1, True), (2, 1, 0, 2, False),
    ((2, 3), (1, 2), (1, 1), 1, True)])
def test_max_pool2d_and_relu(isa, kernel, stride, padding, dilation, ceil):
    rng = np.random.default_rng(3)
    for shape in [(2, 3, 9, 11), (1, 2, 64, 66), (1, 1, 5, 40)]:
        x = rng.integers(0, 256, shape).astype(np.uint8)
        _same(qf.qmax_pool2d(x, kernel, stride, padding, dilation, ceil),
              ref.qmax_pool2d(x, kernel, stride, padding, dilation, ceil))
    _same(qf.qrelu(x, 77), ref.qrelu(x, 77))


def test_max_pool2d_commutes_with_quantization():
    rng = np.random.default_rng(4)
    xf = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    q = qf.quantize_u8(xf, 0.03, 120)
    _same(qf.qmax_pool2d(q, 2), qf.quantize_u8(fastconv.max_pool2d(xf, 2), 0.03, 120))


def test_quantize_dequantize():
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((4, 3, 7, 5)) * 3).astype(np.float32)
    x[0, 0, 0, :4] = [np.nan, np.inf, -np.inf, 0.5 * 0.02]      # NaN -> 0; a tie rounds to even
    for scale, zp, axis in [(0.02, 128, None), ([0.02, 0.05, 0.1], [0, 100, 255], 1),
                            (np.full(5, 0.1), 7, -1)]:
        q = qf.quantize_u8(x, scale, zp, axis=axis)
        _same(q, ref.quantize_u8(x, scale, zp, axis=axis))
        _same(qf.dequantize_u8(q, scale, zp, axis=axis), ref.dequantize_u8(q, scale, zp, axis=axis))
    assert ref.quantize_u8(np.float32([np.nan]), 1.0, 3)[0] == 0


def test_reference_by_hand():
    w = np.array([[1, -2], [3, 4]], np.int8)
    a = np.array([[10, 0], [5, 255]], np.uint8)
    # acc = w . (a - 5) + bias
    acc = ref.qgemm(w, a, a_zero=5, bias=np.array([1, -1]))
    np.testing.assert_array_equal(acc, [[5 - 0 + 1, -5 - 500 + 1], [15 + 0 - 1, -15 + 1000 - 1]])
    y = ref.qgemm(w, a, a_zero=5, bias=np.array([1, -1]), mult=np.float32([0.5, 0.25]),
                  out="uint8", out_zero=10)
    # 6*0.5=3 ->13; -504*0.5=-252 -> clamp -10 -> 0; 14*0.25=3.5 -> 4 (half to even) -> 14;
    # 984*.25=246 -> clamp 245 -> 255
    np.testing.assert_array_equal(y, [[13, 0], [14, 255]])
    y = ref.qgemm(w, a, a_zero=5, mult=np.float32([1, 1]), out="float32", relu=True)
    np.testing.assert_array_equal(y, [[5, 0], [15, 985]])


def test_bad_arguments():
    w = np.zeros((4, 8), np.int8)
    a = np.zeros((8, 3), np.uint8)
    for mod in (qf, ref):
        with pytest.raises(TypeError, match="uint8"):
            mod.qgemm(w, a.astype(np.int8))
        with pytest.raises(TypeError, match="int8"):
            mod.qgemm(w.astype(np.int16), a)
        with pytest.raises(ValueError, match="a_zero"):
            mod.qgemm(w, a, a_zero=256)
        with pytest.raises(ValueError, match="mult"):
            mod.qgemm(w, a, out="uint8")
        with pytest.raises(ValueError, match="bias"):
            mod.qgemm(w, a, bias=np.full(4, 2**30 + 1))
        with pytest.raises(ValueError, match="out must be"):
            mod.qgemm(w, a, out="int8")
        with pytest.raises(ValueError, match="rows"):
            mod.qgemm(w, a[:5])
        with pytest.raises(ValueError, match="at most 32768"):
            mod.qlinear(np.zeros((1, 40000), np.uint8), np.zeros((1, 40000), np.int8))
        with pytest.raises(ValueError, match="zero_point"):
            mod.quantize_u8(np.zeros(3, np.float32), 0.1, 300)
        with pytest.raises(ValueError, match="positive"):
            mod.quantize_u8(np.zeros(3, np.float32), 0.0, 3)


def test_packed_weights():
    w = np.arange(-40, 40, dtype=np.int8).reshape(4, 2, 5, 2)
    pw = qf.PackedWeights(w, groups=2)
    assert pw.shape == w.shape and pw.rowsum.tolist() == w.reshape(4, -1).sum(1).tolist()
    with pytest.raises(ValueError, match="groups"):
        qf.qconv2d(np.zeros((1, 4, 6, 6), np.uint8), pw, groups=1)
    with pytest.raises(ValueError):
        pw.weight[0, 0, 0, 0] = 1                                    # read-only


def test_isa_control():
    assert K.qisa() in ISAS
    assert K.set_qisa("generic") == "generic"
    K.set_qisa(None)
    with pytest.raises(ValueError):
        K.set_qisa("sse")
    res = run_python(["-c", "from fastconv import _kernels as K; print(K.qisa())"],
                     env=subprocess_env(FASTCONV_ISA="generic"))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "generic"


c4_cases = st.tuples(
    st.integers(1, 2), st.integers(1, 9), st.sampled_from([1, 1, 2]), st.integers(1, 5),
    st.integers(3, 20), st.integers(3, 20), st.integers(1, 3), st.integers(1, 3),
    st.sampled_from([1, 1, 2]), st.sampled_from([0, 1, 2]), st.sampled_from([1, 1, 2]),
    st.sampled_from([256, 128]), st.integers(0, 2**31 - 1))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=c4_cases)
def test_c4_conv_matches_reference(isa, case):
    """The int8 layers' path: C4 input, C4 uint8 output (requantized and interleaved in
    registers by the SIMD kernels), also 7-bit activations (AVX2's single pass)."""
    N, C, G, Kg, H, W, R, S, stride, padding, dil, top, seed = case
    rng = np.random.default_rng(seed)
    C *= 4 * G if G > 1 else 1
    Kc = Kg * 4 * G if G > 1 else Kg * 3
    x = rng.integers(0, top, (N, C, H, W)).astype(np.uint8)
    w = rng.integers(-128, 128, (Kc, C // G, R, S)).astype(np.int8)
    geo = dict(stride=stride, padding=padding, dilation=dil, groups=G)
    e = _epi(rng, Kc)
    try:
        expect = ref.qconv2d_c4(ref.to_c4(x, e["a_zero"]), w, **e, relu=True, **geo)
    except ValueError:
        return
    x4 = qf.to_c4(x, e["a_zero"])
    _same(x4, ref.to_c4(x, e["a_zero"]))
    _same(qf.qconv2d_c4(x4, w, **e, relu=True, **geo), expect)
    _same(qf.qconv2d_c4(x4, w, **e, out="float32", out_layout="nchw", **geo),
          ref.qconv2d_c4(x4, w, **e, out="float32", out_layout="nchw", **geo))
    _same(qf.from_c4(x4, C), x)
    _same(qf.qmax_pool2d_c4(x4, 2, ceil_mode=True) if min(H, W) >= 2 else x4,
          ref.qmax_pool2d_c4(x4, 2, ceil_mode=True) if min(H, W) >= 2 else x4)


def test_quantize_into_c4(isa):
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((3, 5, 9, 33)) * 3).astype(np.float32)
    x.reshape(-1)[::5] = np.float32(0.5 * 0.02)                      # ties
    x[0, 0, 0, :3] = [np.nan, np.inf, -np.inf]
    _same(qf.quantize_u8_c4(x, 0.02, 100), ref.to_c4(ref.quantize_u8(x, 0.02, 100), 100))
    _same(qf.quantize_u8(x, 0.02, 100), ref.quantize_u8(x, 0.02, 100))
