"""fastconv's own GEMM (csrc/gemm.c) and the GEMM convolution (csrc/conv_gemm.c).

The GEMM is checked through its test-only binding ``fastconv._kernels.gemm``
against an exact float64 einsum, under every SIMD variant this CPU supports; the
convolution against the float64 NumPy reference of the same inputs, also under
every variant; both to the rounding bound of each element (tests/oracles.py), and
for bitwise independence of the thread count.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv
from fastconv import _kernels as K
from fastconv import reference as ref
from conftest import DTYPES, gemm_isas, run_python, subprocess_env
from oracles import Exact, assert_tolerance_rejects, check, check_conv, conv_exact, grads, \
    matmul_exact


ISAS = gemm_isas()


@pytest.fixture(params=ISAS)
def isa(request):
    prev = K.isa()
    assert K.set_isa(request.param) == request.param
    yield request.param
    K.set_isa(prev)


def _gemm(a, b, trans_a=False, trans_b=False, beta=0.0, c=None, nthreads=1):
    """C = op(a) @ op(b) (+ c when beta = 1) through fc_gemm, on C-contiguous 2-d arrays."""
    M, Kd = (a.shape[1], a.shape[0]) if trans_a else a.shape
    N = b.shape[0] if trans_b else b.shape[1]
    if c is None:
        c = np.full((M, N), np.nan, a.dtype)
    K.gemm(trans_a, trans_b, M, N, Kd, a.reshape(-1), a.shape[1], b.reshape(-1), b.shape[1],
           beta, c.reshape(-1), N, nthreads)
    return c


def _operands(rng, M, N, Kd, dtype, trans_a, trans_b):
    a = rng.standard_normal((Kd, M) if trans_a else (M, Kd)).astype(dtype)
    b = rng.standard_normal((N, Kd) if trans_b else (Kd, N)).astype(dtype)
    return a, b


def _exact(a, b, trans_a, trans_b, c0=None):
    e = matmul_exact(a, b, trans_a, trans_b)
    if c0 is None:
        return e
    return Exact(e.want + c0, e.mag + np.abs(c0.astype(np.float64)), e.depth + 1)


def _check(got, exact, dtype):
    check(got, exact, dtype, what=f"gemm (K={exact.depth})")


SHAPES = [
    (1, 1, 1), (1, 7, 3), (5, 1, 9), (3, 4, 1), (13, 17, 19), (14, 32, 8), (15, 33, 257),
    (29, 65, 70), (64, 196, 300), (7, 130, 513), (100, 3, 40), (2, 1000, 5),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M,N,Kd", SHAPES)
def test_gemm_matches_matmul(isa, M, N, Kd, dtype):
    rng = np.random.default_rng(M * 1000 + N * 10 + Kd)
    for trans_a in (False, True):
        for trans_b in (False, True):
            a, b = _operands(rng, M, N, Kd, dtype, trans_a, trans_b)
            got = _gemm(a, b, trans_a, trans_b)
            assert not np.isnan(got).any(), "beta = 0 must not read C (it held NaN)"
            _check(got, _exact(a, b, trans_a, trans_b), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_accumulates_with_beta_one(isa, dtype):
    rng = np.random.default_rng(7)
    for M, N, Kd in [(1, 1, 1), (17, 45, 33), (40, 70, 300)]:
        a, b = _operands(rng, M, N, Kd, dtype, False, True)
        c0 = rng.standard_normal((M, N)).astype(dtype)
        got = _gemm(a, b, trans_b=True, beta=1.0, c=c0.copy())
        _check(got, _exact(a, b, False, True, c0), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_k_zero(isa, dtype):
    c = np.full((3, 5), np.nan, dtype)
    K.gemm(False, False, 3, 5, 0, np.empty(0, dtype), 1, np.empty(0, dtype), 5, 0.0,
           c.reshape(-1), 5, 1)
    assert (c == 0).all()
    c = np.ones((3, 5), dtype)
    K.gemm(False, False, 3, 5, 0, np.empty(0, dtype), 1, np.empty(0, dtype), 5, 1.0,
           c.reshape(-1), 5, 1)
    assert (c == 1).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_leading_dimensions(isa, dtype):
    """Sub-matrices of larger arrays (lda, ldb, ldc past the row length); the rest of C
    is left alone."""
    rng = np.random.default_rng(3)
    A = rng.standard_normal((40, 50)).astype(dtype)
    B = rng.standard_normal((60, 70)).astype(dtype)
    C = np.full((30, 80), 7.0, dtype)
    M, N, Kd = 21, 37, 45
    K.gemm(False, False, M, N, Kd, A.reshape(-1), 50, B.reshape(-1), 70, 0.0, C.reshape(-1), 80, 1)
    _check(C[:M, :N], matmul_exact(A[:M, :Kd], B[:Kd, :N]), dtype)
    assert (C[:M, N:] == 7).all() and (C[M:] == 7).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_integer_valued_inputs_are_exact(isa, dtype):
    rng = np.random.default_rng(4)
    a = rng.integers(-4, 5, (37, 300)).astype(dtype)
    b = rng.integers(-4, 5, (300, 51)).astype(dtype)
    np.testing.assert_array_equal(_gemm(a, b), a.astype(np.int64) @ b.astype(np.int64))


@settings(max_examples=30, deadline=None)
@given(M=st.integers(1, 40), N=st.integers(1, 70), Kd=st.integers(1, 600),
       trans_a=st.booleans(), trans_b=st.booleans(), dtype=st.sampled_from(DTYPES),
       isa_name=st.sampled_from(ISAS))
def test_gemm_random_shapes(M, N, Kd, trans_a, trans_b, dtype, isa_name):
    prev = K.isa()
    K.set_isa(isa_name)
    try:
        rng = np.random.default_rng(M + 100 * N + 10000 * Kd)
        a, b = _operands(rng, M, N, Kd, dtype, trans_a, trans_b)
        _check(_gemm(a, b, trans_a, trans_b), _exact(a, b, trans_a, trans_b), dtype)
    finally:
        K.set_isa(prev)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_bitwise_independent_of_threads(isa, dtype):
    """Threads own blocks of C and never split K: 1, 2 and 3 threads agree bit for bit."""
    rng = np.random.default_rng(5)
    for M, N, Kd in [(200, 300, 700), (45, 1000, 260), (1000, 20, 300)]:
        for ta, tb in [(False, False), (True, True)]:
            a, b = _operands(rng, M, N, Kd, dtype, ta, tb)
            outs = [_gemm(a, b, ta, tb, nthreads=n) for n in (1, 2, 3)]
            for o in outs[1:]:
                np.testing.assert_array_equal(o, outs[0])


def test_gemm_rejects_bad_arguments():
    a = np.ones(12, np.float32)
    c = np.zeros(12, np.float32)
    with pytest.raises(ValueError):        # beta must be 0 or 1
        K.gemm(False, False, 3, 4, 3, a, 3, a, 4, 0.5, c, 4, 1)
    with pytest.raises(ValueError, match="a has"):
        K.gemm(False, False, 3, 4, 5, a, 5, a, 4, 0.0, c, 4, 1)
    with pytest.raises(ValueError, match="c has"):
        K.gemm(False, False, 4, 4, 3, a, 3, a, 4, 0.0, c, 4, 1)
    with pytest.raises(ValueError, match="M, N, K"):
        K.gemm(False, False, -1, 4, 3, a, 3, a, 4, 0.0, c, 4, 1)


def test_isa_control():
    prev = K.isa()
    assert prev in ("generic", "avx2", "avx512")
    try:
        assert K.set_isa("generic") == "generic"
        assert K.isa() == "generic"
        with pytest.raises(ValueError, match="isa must be one of"):
            K.set_isa("sse9")
        # asking for more than the CPU has gives the best it has
        assert K.set_isa("avx512") == ISAS[-1]
    finally:
        K.set_isa(prev)


def test_fastconv_isa_environment_variable_caps_the_variant():
    code = "import fastconv._kernels as K; print(K.isa())"
    for name in ISAS:
        out = run_python(["-c", code], env=subprocess_env(FASTCONV_ISA=name))
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == name


# ---- the GEMM convolution ---------------------------------------------------

CONV_CASES = [
    # N, C, H, W, K, R, S, stride, padding, dilation, groups
    (2, 3, 9, 11, 5, 3, 3, 1, 1, 1, 1),
    (3, 8, 13, 10, 16, 3, 3, 1, 1, 1, 1),         # backward-data as a flipped convolution
    (2, 8, 13, 10, 6, 3, 2, 2, 1, 1, 2),          # strided, groups: columns + col2im
    (1, 16, 12, 12, 20, 5, 5, 1, 0, 1, 1),        # "valid" 5x5: columns path
    (2, 12, 9, 9, 12, 3, 3, 1, 2, 2, 3),          # dilated, groups
    (2, 20, 7, 7, 24, 1, 1, 1, 0, 1, 1),          # 1x1: the input is the GEMM operand
    (2, 10, 8, 8, 7, 1, 1, 2, 0, 1, 1),           # 1x1 strided
    (1, 9, 17, 15, 11, 7, 5, (3, 2), (3, 1), (1, 2), 1),
    (4, 3, 5, 5, 2, 5, 5, 1, 0, 1, 1),            # output 1x1
    (2, 16, 6, 6, 8, 3, 3, 1, 4, 1, 1),           # padding larger than the kernel
    (1, 64, 1, 40, 33, 1, 3, 1, (0, 1), 1, 1),    # one row
    # "wide" mode (rows computed at the padded width, B read in place):
    (2, 16, 10, 12, 8, 3, 3, 1, 1, 1, 1),
    (2, 32, 15, 15, 16, 3, 3, 2, 1, 1, 1),        # strided: phase planes
    (1, 16, 12, 12, 8, 3, 3, 1, 2, 2, 1),         # dilated
    (2, 32, 9, 9, 16, 3, 3, 1, 1, 1, 2),          # groups
    # strided, more channels (backward-data columns in several chunks):
    (2, 16, 9, 9, 8, 1, 1, 2, 0, 1, 1),           # 1x1 stride 2: pixels no tap reaches
    (1, 16, 18, 16, 6, 3, 3, (3, 2), (2, 1), (2, 1), 1),
    (1, 16, 17, 16, 6, 4, 3, (3, 2), 1, (1, 2), 1),
    (2, 32, 11, 12, 8, 5, 5, 2, 2, 1, 2),
]


def _conv_arrays(case, dtype, seed=0):
    N, C, H, W, Kk, R, S, stride, padding, dilation, groups = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((Kk, C // groups, R, S)).astype(dtype)
    b = rng.standard_normal(Kk).astype(dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return x, w, b, kw


def _conv_exact(case, dtype):
    x, w, b, kw = _conv_arrays(case, dtype)
    y_shape = ref.conv2d(x, w, **kw).shape
    dy = np.random.default_rng(1).standard_normal(y_shape).astype(dtype)
    return x, w, b, dy, kw, conv_exact(x, w, b, dy, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_gemm_matches_reference(isa, case, dtype):
    x, w, b, dy, kw, exact = _conv_exact(case, dtype)
    got = dict(y=fastconv.conv2d(x, w, b, algo="gemm", **kw),
               **grads(fastconv.conv2d_backward(dy, x, w, algo="gemm", **kw)))
    check_conv(got, exact, dtype, what="gemm")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_tolerances_reject_a_1e_3_relative_error_on_every_conv_case(case, dtype):
    """On every case above, for y, dx, dw and db, the comparison would reject the exact
    result scaled by 1 + 1e-3, and the exact result with its largest element so scaled."""
    *_, exact = _conv_exact(case, dtype)
    for name, e in exact.items():
        assert_tolerance_rejects(e, dtype, what=name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M,N,Kd", SHAPES)
def test_tolerances_reject_a_1e_3_relative_error_on_every_gemm_shape(M, N, Kd, dtype):
    rng = np.random.default_rng(M * 1000 + N * 10 + Kd)
    for trans_a in (False, True):
        for trans_b in (False, True):
            a, b = _operands(rng, M, N, Kd, dtype, trans_a, trans_b)
            assert_tolerance_rejects(_exact(a, b, trans_a, trans_b), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_gemm_integer_inputs_exact_under_every_isa(dtype):
    rng = np.random.default_rng(2)
    x = rng.integers(-3, 4, (3, 8, 11, 9)).astype(dtype)
    w = rng.integers(-3, 4, (6, 4, 3, 3)).astype(dtype)
    kw = dict(stride=1, padding=1, groups=2)
    y_ref = ref.conv2d(x, w, **kw)
    dy = rng.integers(-3, 4, y_ref.shape).astype(dtype)
    grads_ref = ref.conv2d_backward(dy, x, w, **kw)
    prev = K.isa()
    try:
        for name in ISAS:
            K.set_isa(name)
            np.testing.assert_array_equal(fastconv.conv2d(x, w, algo="gemm", **kw), y_ref)
            for g, r in zip(fastconv.conv2d_backward(dy, x, w, algo="gemm", **kw), grads_ref):
                np.testing.assert_array_equal(g, r)
    finally:
        K.set_isa(prev)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [CONV_CASES[1], CONV_CASES[2], CONV_CASES[5]])
def test_conv_gemm_bitwise_independent_of_threads(isa, case, dtype, threads):
    x, w, b, kw = _conv_arrays(case, dtype, seed=3)
    x = np.concatenate([x] * 3)            # an odd batch: units split inside images
    runs = []
    for n in (1, 2, 3):
        fastconv.set_num_threads(n)
        y = fastconv.conv2d(x, w, b, algo="gemm", **kw)
        runs.append([y, *fastconv.conv2d_backward(y, x, w, algo="gemm", **kw)])
    for r in runs[1:]:
        for a, want in zip(r, runs[0]):
            np.testing.assert_array_equal(a, want)


def test_conv_gemm_single_image_many_threads(threads):
    """One image, more threads than images: the output columns are split."""
    x, w, b, kw = _conv_arrays((1, 16, 30, 30, 24, 3, 3, 1, 1, 1, 1), np.float64)
    fastconv.set_num_threads(1)
    one = [fastconv.conv2d(x, w, b, algo="gemm", **kw)]
    one += fastconv.conv2d_backward(one[0], x, w, algo="gemm", **kw)
    fastconv.set_num_threads(4)
    four = [fastconv.conv2d(x, w, b, algo="gemm", **kw)]
    four += fastconv.conv2d_backward(four[0], x, w, algo="gemm", **kw)
    for a, want in zip(four, one):
        np.testing.assert_array_equal(a, want)
    check_conv(dict(y=one[0], **grads(one[1:])), conv_exact(x, w, b, one[0], **kw), np.float64)


def test_conv_gemm_large_image_takes_channels_in_chunks():
    """An image whose padded slab passes the per-thread budget (16 MiB) is processed a
    chunk of channels at a time; the strided backward-data columns likewise. Integer
    data: every partial sum is exact, so the result must equal the float64 reference."""
    rng = np.random.default_rng(6)
    x = rng.integers(-2, 3, (1, 66, 250, 250)).astype(np.float32)
    w = rng.integers(-2, 3, (2, 66, 3, 3)).astype(np.float32)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    for stride in (1, 2):
        kw = dict(stride=stride, padding=1)
        y = fastconv.conv2d(x, w, algo="gemm", **kw)
        np.testing.assert_array_equal(y, ref.conv2d(x64, w64, **kw))
        dy = rng.integers(-2, 3, y.shape).astype(np.float32)
        got = fastconv.conv2d_backward(dy, x, w, algo="gemm", **kw)
        want = ref.conv2d_backward(dy.astype(np.float64), x64, w64, **kw)
        for g, r, name in zip(got, want, ("dx", "dw", "db")):
            assert g.dtype == np.float32
            np.testing.assert_array_equal(g, r, err_msg=name)


# Forward products whose rows (Kg output channels) are a multiple of 8 that a 14-row tile
# covers badly run on the AVX-512 8 x 48 float tile (gemm.c, fc_gemm_kernel_rows_f32);
# others on 14 x 32. Output widths around 16, 32, 48 and 96 columns exercise its masked last
# vector and its one-, two- and three-vector tiles; 1x1 stride 1 reads the input in place.
ROW_TILE_CASES = [
    # N, C, H, W, K, R, S, stride, padding, dilation, groups
    (2, 8, 4, 4, 8, 1, 1, 1, 0, 1, 1),            # 16 columns: one vector
    (1, 5, 7, 7, 16, 1, 1, 1, 0, 1, 1),           # 49: three vectors + 1
    (2, 12, 6, 8, 32, 3, 3, 1, 1, 1, 1),          # 48: one whole tile
    (1, 20, 9, 11, 64, 3, 3, 2, 1, 1, 1),         # 30: strided, masked second vector
    (1, 24, 10, 10, 128, 1, 1, 1, 0, 1, 1),       # 100 (Kg = 128)
    (2, 32, 10, 10, 128, 3, 3, 1, 1, 1, 2),       # groups: Kg = 64 each
    (1, 16, 13, 17, 96, 3, 3, 1, 1, 1, 1),        # Kg = 96: stays on 14 x 32
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ROW_TILE_CASES)
def test_conv_gemm_forward_row_tiles(case, dtype, threads):
    """Every SIMD variant and thread count: the forward within the rounding bound of the
    exact reference, and bitwise the same across variants that fuse each multiply-add
    (avx2, avx512: the tile shape never changes an element's chain) and thread counts."""
    x, w, b, kw = _conv_arrays(case, dtype, seed=5)
    exact = conv_exact(x, w, b, **kw)
    prev = K.isa()
    fused = {}
    try:
        for name in ISAS:
            K.set_isa(name)
            for n in (1, 2, 3):
                fastconv.set_num_threads(n)
                y = fastconv.conv2d(x, w, b, algo="gemm", **kw)
                check_conv(dict(y=y), exact, dtype, what=f"gemm {name} {n} threads")
                if name != "generic":
                    fused.setdefault("y", y)
                    assert y.tobytes() == fused["y"].tobytes(), (name, n)
    finally:
        K.set_isa(prev)
