"""The fastconv command: train, info, check (and the bench hook), in-process and as a subprocess."""

import os
import shutil
import subprocess
import sys
import types
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import fastconv
from fastconv import _kernels, cli
from fastconv.train import load_model
from conftest import subprocess_env

SMALL = ["--train-size", "300", "--test-size", "100", "--no-progress"]


def run_main(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


_env = subprocess_env


# ---------------------------------------------------------------- train


def test_train_small_run_saves_a_loadable_model(tmp_path, capsys):
    path = tmp_path / "out" / "m.npz"
    rc, out, err = run_main(["train", "--epochs", "1", "--save", str(path)] + SMALL, capsys)
    assert rc == 0, err
    assert "training lenet5 on shapes (300 training / 100 test images of 1x28x28, 10 classes)" in out
    assert "test accuracy: " in out and "training throughput: " in out and "images/second" in out
    assert f"model saved to {path}" in out
    assert err == ""  # --no-progress: no bar
    model = load_model(path)  # rebuilt from the stored builder name
    assert isinstance(model, fastconv.nn.Sequential)
    assert model.state_dict()["0.weight"].shape == (20, 1, 5, 5)


def test_train_prints_per_epoch_lines_and_uses_threads(tmp_path, capsys, threads):
    argv = ["train", "--epochs", "2", "--threads", "1", "--optimizer", "adam", "--batch-size", "50",
            "--save", str(tmp_path / "m.npz"), "--train-size", "100", "--test-size", "50"]
    rc, out, err = run_main(argv, capsys)
    assert rc == 0, err
    assert "epoch 1/2" in out and "epoch 2/2" in out and "val_acc" in out
    assert "Adam lr 0.001" in out
    if fastconv.openmp_enabled():
        assert fastconv.get_num_threads() == 1
        assert "1 thread," in out


def test_train_no_save_and_dtype(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_main(["train", "--epochs", "1", "--no-save", "--dtype", "float64"] + SMALL, capsys)
    assert rc == 0, err
    assert "model saved" not in out and "float64" in out
    assert list(tmp_path.iterdir()) == []


def test_train_default_save_path(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, _ = run_main(["train", "--epochs", "1"] + SMALL, capsys)
    assert rc == 0
    assert (tmp_path / "fastconv-lenet5-shapes.npz").is_file()
    assert "model saved to fastconv-lenet5-shapes.npz" in out


def test_train_checkpoint_and_resume(tmp_path, capsys):
    ck = tmp_path / "ck.npz"
    base = ["train", "--save", str(tmp_path / "m.npz"), "--checkpoint", str(ck)] + SMALL
    rc, _, err = run_main(base + ["--epochs", "1"], capsys)
    assert rc == 0, err
    rc, out, err = run_main(base + ["--epochs", "2", "--resume", str(ck)], capsys)
    assert rc == 0, err
    assert "test accuracy" in out
    rc, _, err = run_main(base + ["--epochs", "2", "--resume", str(tmp_path / "nope.npz")], capsys)
    assert rc == 2 and "cannot resume" in err and len(err.strip().splitlines()) == 1


def test_train_subprocess_python_m_shows_progress(tmp_path):
    path = tmp_path / "m.npz"
    proc = subprocess.run(
        [sys.executable, "-m", "fastconv", "train", "--epochs", "1", "--train-size", "200",
         "--test-size", "50", "--save", str(path)],
        capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy" in proc.stdout and "epoch 1/1" in proc.stdout
    assert "epoch 1/1" in proc.stderr  # the tqdm bar
    assert "Traceback" not in proc.stderr
    assert path.is_file()


def test_console_script_if_installed():
    exe = shutil.which("fastconv")
    if exe is None:
        pytest.skip("the fastconv console script is not on PATH (package not installed)")
    proc = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == f"fastconv {fastconv.__version__}"


def test_plot_writes_pngs(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    plots = tmp_path / "plots"
    argv = ["train", "--epochs", "2", "--save", str(tmp_path / "m.npz"), "--plot", str(plots)] + SMALL
    rc, out, err = run_main(argv, capsys)
    assert rc == 0, err
    names = sorted(p.name for p in plots.iterdir())
    assert "curves.png" in names and "filters.png" in names
    maps = [n for n in names if n.startswith("feature_maps_")]
    assert maps[0] == "feature_maps_00_input.png"
    assert any("conv2d" in n for n in maps) and any("maxpool2d" in n for n in maps)
    for n in names:
        assert (plots / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"{len(names)} figures written to {plots}" in out


def test_plot_without_matplotlib_is_a_clear_error(tmp_path, capsys, monkeypatch):
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    rc, out, err = run_main(["train", "--plot", str(tmp_path / "p")] + SMALL, capsys)
    assert rc == 2
    assert 'pip install "fastconv[plot]"' in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "epoch" not in out  # it failed before training


def test_missing_dataset_offline_is_one_line(tmp_path, capsys):
    rc, out, err = run_main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--no-download"],
                            capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastconv: error: cannot load the mnist dataset")
    assert str(tmp_path) in lines[0]


def test_download_failure_is_one_line(tmp_path, capsys, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    rc, out, err = run_main(["train", "--dataset", "fashion_mnist", "--data-dir", str(tmp_path)], capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "could not download" in lines[0] and "no network" in lines[0]
    assert "Traceback" not in err
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # no partial files


def test_usage_errors(capsys):
    assert cli.main([]) == 2
    rc, _, err = run_main(["train", "--epochs", "0"], capsys)
    assert rc == 2 and "--epochs" in err
    rc, _, err = run_main(["train", "--model", "alexnet"], capsys)
    assert rc == 2 and "invalid choice" in err
    rc, _, err = run_main(["train", "--lr", "-1"], capsys)
    assert rc == 2
    rc, out, _ = run_main(["--version"], capsys)
    assert rc == 0 and out.strip() == f"fastconv {fastconv.__version__}"
    rc, out, _ = run_main(["train", "--help"], capsys)
    assert rc == 0 and "--train-size" in out and "--plot" in out


def test_models_adapt_to_the_dataset_geometry():
    X = np.zeros((2, 3, 32, 32), np.float32)
    model, kwargs = cli._build_model("lenet5", X, 10, np.dtype(np.float32), 0)
    assert kwargs == {"in_channels": 3, "num_classes": 10, "input_size": 32}
    model.eval()
    assert model.forward(X).shape == (2, 10)
    model, _ = cli._build_model("vgg_small", np.zeros((1, 1, 28, 28), np.float32), 7, np.dtype(np.float32), 0)
    model.eval()
    assert model.forward(np.zeros((1, 1, 28, 28), np.float32)).shape == (1, 7)


# ---------------------------------------------------------------- info


def test_info(capsys):
    rc, out, _ = run_main(["info"], capsys)
    assert rc == 0
    assert f"fastconv {fastconv.__version__}" in out
    for word in ("compiler", "openmp", "threads", "cpu features"):
        assert word in out


# ---------------------------------------------------------------- check


def test_check_passes(capsys):
    rc, out, err = run_main(["check", "--cases", "5", "--seed", "3"], capsys)
    assert rc == 0, out + err
    lines = [ln for ln in out.splitlines() if ln.endswith(("OK", "FAIL")) or "FAIL" in ln]
    ops = {ln.split("  ")[0].strip() for ln in lines}
    for op in ("conv2d [im2col]", "conv2d [direct]", "conv2d_backward [im2col]", "conv2d_backward [direct]",
               "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward", "im2col",
               "col2im", "relu", "relu_backward"):
        assert op in ops, op
    assert all(ln.endswith("OK") for ln in lines)
    assert "all" in out.splitlines()[-1] and "match" in out


def test_check_fails_on_a_wrong_kernel(capsys, monkeypatch):
    original = _kernels.relu_fwd

    def wrong_relu(x, y, nthreads):
        original(x, y, nthreads)
        y[:1] += 1  # one wrong element

    monkeypatch.setattr(_kernels, "relu_fwd", wrong_relu)
    rc, out, _ = run_main(["check", "--cases", "3"], capsys)
    assert rc == 1
    status = {ln.split("  ")[0].strip(): ln.split()[-1] for ln in out.splitlines()
              if ln.endswith(("OK", "FAIL"))}
    assert status["relu"] == "FAIL"
    assert status["relu_backward"] == "OK" and status["conv2d [im2col]"] == "OK"
    assert "FAILED" in out and "relu" in out.splitlines()[-1]


def test_check_fails_on_a_crashing_kernel(capsys, monkeypatch):
    original = _kernels.conv2d_fwd

    def broken(algo, *args):
        if algo == _kernels.ALGO_DIRECT:
            raise MemoryError("boom")
        return original(algo, *args)

    monkeypatch.setattr(_kernels, "conv2d_fwd", broken)
    rc, out, _ = run_main(["check", "--cases", "2"], capsys)
    assert rc == 1
    line = next(ln for ln in out.splitlines() if ln.startswith("conv2d [direct]"))
    assert "FAIL" in line and "MemoryError: boom" in line


def test_check_float64_tolerance_is_tight(capsys, monkeypatch):
    original = _kernels.avgpool2d_fwd

    def slightly_off(geom, x, y, nthreads):
        original(geom, x, y, nthreads)
        y[:1] *= 1 + 1e-8  # invisible in float32, far beyond 1e-10 in float64

    monkeypatch.setattr(_kernels, "avgpool2d_fwd", slightly_off)
    rc, out, _ = run_main(["check", "--cases", "2"], capsys)
    assert rc == 1
    line = next(ln for ln in out.splitlines() if ln.startswith("avg_pool2d "))
    assert line.endswith("FAIL")


# ---------------------------------------------------------------- bench hook


def test_bench_main_is_wired_in(monkeypatch):
    calls = []
    fake = types.ModuleType("fastconv.bench")
    fake.main = lambda argv: calls.append(list(argv)) or 0
    monkeypatch.setitem(sys.modules, "fastconv.bench", fake)
    assert cli.main(["bench", "--quick", "x"]) == 0
    assert calls == [["--quick", "x"]]


def test_bench_add_parser_is_wired_in(monkeypatch):
    calls = []
    fake = types.ModuleType("fastconv.bench")

    def add_parser(sub):
        p = sub.add_parser("bench")
        p.add_argument("--rounds", type=int, default=1)
        p.set_defaults(func=lambda args: calls.append(args.rounds) or 0)
        return p

    fake.add_parser = add_parser
    fake.run = lambda cases="all": pytest.fail("run() is the benchmark API, not the CLI entry")
    monkeypatch.setitem(sys.modules, "fastconv.bench", fake)
    assert cli.main(["bench", "--rounds", "3"]) == 0
    assert calls == [3]


def test_train_keeps_freed_memory_unless_the_user_chose(monkeypatch):
    import platform

    from fastconv import cli

    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert cli._keep_freed_memory() is False          # the user's setting wins
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    result = cli._keep_freed_memory()
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert result is True
