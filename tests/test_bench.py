"""Smoke tests of the benchmark runner fastconv.bench (no timing is ever asserted)."""

import json
import time

import numpy as np
import pytest

import fastconv
from fastconv import _numpy_baseline as npb
from fastconv import _timing, bench
from fastconv import reference as ref
from fastconv.bench import runner
from conftest import run_python


@pytest.fixture
def small_peak(monkeypatch):
    """A small matmul for the peak measurement so the smoke test stays fast."""
    monkeypatch.setattr(runner, "PEAK_SIZE", 128)


@pytest.fixture
def interleaved(monkeypatch):
    """The ``interleave`` setting of every timing call the runner makes, in order."""
    seen = []
    measure = _timing.measure

    def spy(*args, interleave=False, **kwargs):
        seen.append(interleave)
        return measure(*args, interleave=interleave, **kwargs)

    monkeypatch.setattr(_timing, "measure", spy)
    return seen


@pytest.fixture
def restore_threads():
    prev = fastconv.get_num_threads()
    yield
    fastconv.set_num_threads(prev)


def test_select_cases():
    assert bench.select_cases("lenet_c1") == ["lenet_c1"]
    assert bench.select_cases("pool") == list(bench.POOL_CASES)
    assert bench.select_cases(["depthwise", "lenet_c1", "lenet_c1"]) == ["lenet_c1", "depthwise"]
    assert bench.select_cases("all") == list(bench.CONV_CASES) + list(bench.POOL_CASES) + list(bench.TRAIN_CASES)
    assert bench.select_cases("train,conv")[-3:] == ["lenet5", "vgg_small", "resnet_small"]
    with pytest.raises(ValueError, match="unknown benchmark case 'nope'"):
        bench.select_cases("lenet_c1,nope")
    with pytest.raises(ValueError, match="cases is empty"):
        bench.select_cases(" , ")


def test_bad_arguments():
    with pytest.raises(ValueError, match="repeat"):
        bench.run("lenet_c1", threads=1, repeat=0)
    with pytest.raises(ValueError, match="threads"):
        bench.run("lenet_c1", threads="1,x")
    with pytest.raises(ValueError, match="threads"):
        bench.run("lenet_c1", threads=[0])


def test_run_one_conv_case(small_peak, restore_threads, interleaved):
    prev = fastconv.get_num_threads()
    results = bench.run("lenet_c1", threads=1, repeat=1, quick=True, per_algo=True)
    assert fastconv.get_num_threads() == prev  # thread settings restored
    assert interleaved and not any(interleaved)  # samples in a row unless asked otherwise
    kinds = [r["kind"] for r in results]
    assert kinds == ["matmul", "conv", "conv"]
    peak = results[0]
    assert peak["threads"] == 1 and peak["gflops"] > 0
    fwd, step = results[1:]
    assert (fwd["pass"], step["pass"]) == ("fwd", "fwd+bwd")
    assert fwd["case"] == "lenet_c1" and fwd["shape"]["P"] == 24 and fwd["shape"]["Q"] == 24
    # FLOPs = 2 N K (C/groups) R S P Q forward, 3x that for forward + backward.
    assert fwd["gflop"] == pytest.approx(2 * 64 * 20 * 1 * 25 * 24 * 24 / 1e9)
    assert step["gflop"] == pytest.approx(3 * fwd["gflop"])
    algos = bench.conv_algos()
    assert "im2col" in algos and "direct" in algos and "auto" not in algos
    for r in (fwd, step):
        assert r["fastconv_s"] > 0 and r["numpy_s"] > 0
        assert r["speedup_vs_numpy"] == pytest.approx(r["numpy_s"] / r["fastconv_s"])
        assert r["peak_fraction"] == pytest.approx(r["fastconv_gflops"] / peak["gflops"])
        assert set(r["algo_s"]) <= set(algos) and "im2col" in r["algo_s"]
    # The forward's auto algorithm is not timed twice: it carries the auto time.
    assert fwd["algo"] in algos
    assert fwd["algo_s"][fwd["algo"]] == fwd["fastconv_s"]
    assert "winograd" not in fwd["algo_s"] or bench.algo_applies("lenet_c1", "winograd")
    json.dumps(results)  # serialisable as is

    table = bench.format_table(results)
    lines = table.splitlines()
    conv_header = next(l for l in lines if l.startswith("| layer"))
    cols = [c.strip() for c in conv_header.strip("|").split("|")]
    for needed in bench.CONV_COLUMNS + [f"{a} ms" for a in fwd["algo_s"]]:
        assert needed in cols
    for needed in ("fastconv ms", "numpy ms", "torch ms", "fastconv GFLOP/s", "% peak", "vs numpy", "vs torch"):
        assert needed in cols
    rows = [l for l in lines if l.startswith("| lenet_c1")]
    assert len(rows) == 2 and all(len(r.strip("|").split("|")) == len(cols) for r in rows)
    assert any(l.startswith("| threads | matmul") for l in lines)


def test_format_table_pool_and_train_rows():
    results = [
        {"kind": "pool", "case": "pool2_cifar", "op": "max", "threads": 2, "pass": "fwd",
         "fastconv_s": 0.001, "numpy_s": 0.004, "torch_s": None,
         "speedup_vs_numpy": 4.0, "speedup_vs_torch": None},
        {"kind": "train", "case": "lenet5", "threads": 2, "batch": 64, "fastconv_img_s": 640.0,
         "torch_img_s": 1280.0, "speedup_vs_torch": 0.5, "notes": ""},
        {"kind": "train", "case": "vgg_small", "threads": 2, "batch": 64, "fastconv_img_s": None,
         "torch_img_s": 100.0, "speedup_vs_torch": None, "notes": "fastconv skipped: reason"},
    ]
    table = bench.format_table(results)
    assert "| pooling | op | threads | pass | fastconv ms | numpy ms | torch ms | vs numpy | vs torch |" in table
    assert "| pool2_cifar | max | 2 | fwd | 1.000 | 4.000 | - | 4.00x | - |" in table
    assert "| lenet5 | 2 | 64 | 640 | 1280 | 0.50x |  |" in table
    assert "fastconv skipped: reason" in table


def test_cli_json(tmp_path, small_peak, restore_threads, capsys, interleaved):
    out = tmp_path / "bench.json"
    code = bench.main(["--quick", "--quiet", "--cases", "lenet_c1", "--threads", "1", "--repeat", "1",
                       "--no-per-algo", "--interleave", "--json", str(out)])
    assert code == 0
    assert interleaved and all(interleaved)   # --interleave reached every timing call
    assert runner.INTERLEAVE is False  # the round-robin setting does not outlive the run
    printed = capsys.readouterr().out
    assert "| layer |" in printed and "numpy" in printed
    data = json.loads(out.read_text())
    assert set(data) == {"environment", "arguments", "results"}
    assert data["environment"]["numpy"] == np.__version__
    assert [r["kind"] for r in data["results"]] == ["matmul", "conv", "conv"]
    assert data["results"][1]["algo_s"] == {}  # --no-per-algo


def test_algo_applies():
    assert bench.algo_applies("lenet_c1", "im2col")
    if "winograd" in bench.conv_algos():
        assert bench.algo_applies("cifar_c2", "winograd")       # 3x3, stride 1
        assert not bench.algo_applies("lenet_c1", "winograd")   # 5x5
        assert not bench.algo_applies("resnet_3x3s2", "winograd")  # stride 2


def test_cli_rejects_unknown_case(capsys):
    assert bench.main(["--cases", "nope", "--quiet"]) == 2
    assert "unknown benchmark case" in capsys.readouterr().err


def test_python_m_fastconv_bench():
    res = run_python(["-m", "fastconv.bench", "--cases", "nope", "--quiet"])
    assert res.returncode == 2, res.stderr
    assert "fastconv bench: error: unknown benchmark case 'nope'" in res.stderr
    res = run_python(["-m", "fastconv.bench", "--help"])
    assert res.returncode == 0 and "--interleave" in res.stdout


def test_measure_median_best_and_skipping():
    calls = []
    fast = lambda: calls.append(1)  # noqa: E731
    slow = lambda: time.sleep(_timing.SLOW_ABS + 0.05)  # noqa: E731
    times, skipped = _timing.measure({"fast": fast, "slow": slow}, 3, 0.001, optional={"slow": 2.0})
    assert times["slow"] is None and skipped["slow"].startswith("skipped: one call took")
    assert times["fast"] > 0 and len(calls) >= 2 + 3    # warm-up, calibration, 3 samples
    best, _ = _timing.measure({"fast": fast}, 3, 0.001, best=True)
    assert 0 < best["fast"]
    assert _timing.calibrate(fast, 0.0)[0] == 1           # a call already lasts min_time


def test_add_parser_registers_bench():
    import argparse

    parser = argparse.ArgumentParser(prog="fastconv")
    sub = parser.add_subparsers(dest="command")
    bench.add_parser(sub)
    args = parser.parse_args(["bench", "--threads", "1,2", "--cases", "conv", "--repeat", "3", "--quick"])
    assert args.command == "bench" and args.func is bench.run_from_args
    assert (args.threads, args.cases, args.repeat, args.quick, args.json) == ("1,2", "conv", 3, True, None)
    assert args.per_algo is None and args.interleave is False


# The NumPy pooling baseline of the benchmark agrees with the reference (the conv
# baseline is checked in test_numpy_baseline.py).
POOLS = [(2, 3, 8, 8, 2, 2, 0), (2, 3, 9, 11, 3, 2, 1), (1, 2, 7, 7, 3, 1, 1), (2, 2, 8, 9, (2, 3), (1, 2), (1, 0))]


@pytest.mark.parametrize("case", POOLS)
def test_numpy_pool_baseline_matches_reference(case):
    N, C, H, W, k, s, p = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W))
    y, arg = npb.max_pool2d_forward(x, k, s, p, return_indices=True)
    np.testing.assert_allclose(y, ref.max_pool2d(x, k, s, p))
    np.testing.assert_allclose(npb.max_pool2d_forward(x, k, s, p), y)
    dy = rng.standard_normal(y.shape)
    _, idx = ref.max_pool2d(x, k, s, p, return_indices=True)
    np.testing.assert_allclose(npb.max_pool2d_backward(dy, arg, x.shape, k, s, p),
                               ref.max_pool2d_backward(dy, idx, x.shape))
    np.testing.assert_allclose(npb.avg_pool2d_forward(x, k, s, p), ref.avg_pool2d(x, k, s, p))
    np.testing.assert_allclose(npb.avg_pool2d_backward(dy, x.shape, k, s, p),
                               ref.avg_pool2d_backward(dy, x.shape, k, s, p))


def test_benchmarks_md_carries_the_layer_set_of_the_code():
    """The layer set lives in the repository (fastconv/bench/cases.py) and BENCHMARKS.md
    shows exactly it; no document points at a file outside the repository."""
    from pathlib import Path

    from fastconv.bench.cases import layer_set_markdown

    root = Path(__file__).resolve().parents[1]
    bench_md = root / "BENCHMARKS.md"
    if not bench_md.is_file():
        pytest.skip("BENCHMARKS.md is not beside the tests (tests copied out of the tree)")
    assert layer_set_markdown() in bench_md.read_text()
    for path in [bench_md, root / "README.md", *root.joinpath("fastconv").rglob("*.py")]:
        assert "benchmark_layers.md" not in path.read_text(), path
