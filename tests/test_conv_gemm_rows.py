"""The GEMM convolution's split by output channels (csrc/conv_gemm_rows.inc).

With fewer (image, group) pairs than threads and few output pixels (a batch-1 1x1
conv at 7x7 or 14x14), the forward pass gives each thread a band of output channels
instead of a share of the columns. One thread never takes that path, so comparing 2
and 3 threads with 1 thread, bit for bit, checks every band's rows, weights and bias;
the exact reference checks the answer itself.
"""

import numpy as np
import pytest

import fastconv
from fastconv import _kernels, _runtime
from conftest import DTYPES, gemm_isas, randn
from oracles import check_conv, conv_exact, grads


@pytest.fixture(autouse=True)
def small_work_threads(monkeypatch):
    """These cases are small: let them have every thread anyway."""
    monkeypatch.setattr(_runtime, "MIN_PARALLEL_CONV_WORK", 0)


# (N, C, H, W, K, R, S, groups): each takes the row split at 2 or 3 threads
CASES = [
    (1, 24, 7, 7, 200, 1, 1, 1),       # 1x1 at 7x7: two column tiles; 200 rows in bands
    (1, 40, 14, 14, 96, 1, 1, 1),      # 1x1 at 14x14: seven tiles of 32
    (1, 12, 9, 11, 131, 1, 1, 1),      # rows not a multiple of any micro-tile
    (1, 9, 8, 9, 90, 3, 3, 1),         # "valid" 3x3: the input read in place as lines
    (1, 16, 6, 6, 200, 1, 1, 2),       # two groups, one image: a split at 3 threads
    (2, 16, 5, 5, 100, 1, 1, 1),       # two images: a split at 3 threads only
]


@pytest.mark.parametrize("isa", gemm_isas())     # their micro-tiles (MR rows) differ
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c)))
def test_row_split_same_bits_as_one_thread(case, bias, dtype, isa, threads, isa_restore):
    _kernels.set_isa(isa)
    N, C, H, W, K, R, S, G = case
    rng = np.random.default_rng(7)
    x = randn(rng, (N, C, H, W), dtype)
    w = randn(rng, (K, C // G, R, S), dtype)
    b = randn(rng, (K,), dtype) if bias else None
    dy = randn(rng, (N, K, H - R + 1, W - S + 1), dtype)
    kw = dict(groups=G)
    results = []
    for n in (1, 2, 3):
        fastconv.set_num_threads(n)
        # backward-data of a stride-1 conv runs as a forward conv (the flipped weights)
        results.append((fastconv.conv2d(x, w, b, algo="gemm", **kw),)
                       + fastconv.conv2d_backward(dy, x, w, algo="gemm", **kw))
    for r in results[1:]:
        for got, want in zip(r, results[0]):
            assert (got is None) == (want is None)
            if got is not None:
                assert got.tobytes() == want.tobytes()
    check_conv(dict(y=results[1][0], **grads(results[1][1:])),
               conv_exact(x, w, b, dy, **kw), dtype, what="gemm rows")


def test_row_split_through_the_layer(threads):
    """A Conv2D layer's forward (the prepared call) at batch 1 takes the same path and
    gives the same bits as one thread."""
    fastconv.set_num_threads(1)
    layer = fastconv.nn.Conv2D(64, 160, 1, seed=3)
    x = randn(np.random.default_rng(2), (1, 64, 7, 7), np.float32)
    want = layer.forward(x)
    fastconv.set_num_threads(2)
    assert layer.forward(x).tobytes() == want.tobytes()
