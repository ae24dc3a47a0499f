"""The benchmark cases added for issues 12 and 14 (benchmarks/test_bench_ops.py and
test_bench_inference.py): their geometry, and that every implementation runs on them."""

import numpy as np
import pytest

from fastconv import bench, functional
from fastconv._args.geometry_extra import conv_transpose_params
from fastconv.bench import cases, opimpls
from fastconv.bench.env import import_torch
from fastconv.bench.inferimpls import infer_impls


@pytest.mark.parametrize("name", bench.CONVT_CASES)
def test_transposed_cases_are_the_adjoints_of_the_layer_set(name):
    N, Cin, H, W, Cout, R, S, stride, pad, opad, groups = bench.convt_case(name)
    base = bench.CONV_CASES[name[:-2]]
    assert (N, Cout, Cin, R, S, stride, pad, groups) == (base[0], base[1], base[4], base[5], base[6],
                                                          base[7], base[8], base[9])
    p = conv_transpose_params((N, Cin, H, W), (Cin, Cout // groups, R, S), stride, pad, opad, groups)
    # the output is the convolution case's input again: (N, C, H, W)
    assert tuple(p.y_shape) == (base[0], base[1], base[2], base[3])


def test_unknown_transposed_case():
    with pytest.raises(ValueError, match="unknown transposed convolution case 'nope'"):
        bench.convt_case("nope")


def test_op_impls_run_and_torch_computes_the_same(monkeypatch):
    torch = import_torch()
    monkeypatch.setitem(cases.CONV1D_CASES, "tiny", (2, 4, 50, 6, 3, 2, 1, 2))
    monkeypatch.setitem(opimpls.CONV1D_CASES, "tiny", (2, 4, 50, 6, 3, 2, 1, 2))
    info, impls = opimpls.conv1d_impls("tiny", torch)
    assert info["shape"]["L_out"] == 25 and info["flop_fwd"] == 2.0 * 2 * 6 * 2 * 3 * 25
    for fwd, step in impls.values():
        fwd()
        step()
    info, impls = opimpls.convt_impls("lenet_c2_t", torch)
    assert (info["shape"]["H_out"], info["shape"]["W_out"]) == (12, 12)
    for fwd, step in impls.values():
        fwd()
    if torch is not None:  # the case's data as the suite builds it: fastconv equals torch
        N, Cin, H, W, Cout, R, S, stride, pad, opad, groups = bench.convt_case("resnet_3x3s2_t")
        rng = np.random.default_rng(0)
        x = rng.standard_normal((1, Cin, H, W)).astype(np.float32)
        w = rng.standard_normal((Cin, Cout // groups, R, S)).astype(np.float32) / 30
        want = torch.nn.functional.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), None, stride,
                                                    pad, opad, groups).numpy()
        got = functional.conv_transpose2d(x, w, None, stride, pad, opad, groups)
        assert got.shape == (1, Cout, 56, 56)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_inference_impls_agree_with_forward():
    pytest.importorskip("onnx")
    info, impls, notes = infer_impls("lenet5", 2)
    assert info["input"] == [2, 1, 28, 28]
    assert info["rel_diff"]["forward"] == 0.0 and info["rel_diff"]["plan"] < 1e-5
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        assert "not installed" in notes["onnxruntime"]
    else:
        assert info["rel_diff"]["onnxruntime"] < 1e-5
    assert impls["plan"]().shape == (2, 10)
