"""The fastconv command: train, info, check, bench (tune: test_tune.py), in-process and as a subprocess."""

import ast
import os
import platform
import shutil
import struct
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import fastconv
import fastconv.bench
from fastconv import _kernels, cli, selftest
from fastconv.checkpoint import load_model
from fastconv.commands import _malloc
from fastconv.commands import train as train_cmd
from conftest import run_python, subprocess_env

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


def test_train_subprocess_python_m_draws_no_bar_into_a_log(tmp_path):
    path = tmp_path / "m.npz"
    proc = subprocess.run(
        [sys.executable, "-m", "fastconv", "train", "--epochs", "1", "--train-size", "200",
         "--test-size", "50", "--save", str(path)],
        capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy" in proc.stdout and "epoch 1/1" in proc.stdout  # the per-epoch line
    assert proc.stderr == ""  # stderr is not a terminal: no progress bar, no \r frames
    assert path.is_file()


def test_train_draws_the_progress_bar_on_a_terminal(tmp_path):
    """The bar is drawn when stderr is a terminal (here a pseudo-terminal)."""
    fcntl, termios = pytest.importorskip("fcntl"), pytest.importorskip("termios")
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    got = []

    def read():
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            got.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "fastconv", "train", "--epochs", "1", "--train-size", "200",
             "--test-size", "50", "--no-save"],
            stdout=subprocess.PIPE, stderr=slave, text=True, env=_env(), cwd=tmp_path, timeout=300)
    finally:
        os.close(slave)
        reader.join(timeout=30)
        os.close(master)
    err = b"".join(got).decode(errors="replace")
    assert proc.returncode == 0, err
    assert "epoch 1/1" in err and "img" in err  # the tqdm bar
    assert "epoch 1/1" in proc.stdout and "test accuracy" in proc.stdout


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
    model, kwargs = train_cmd.build_model("lenet5", X, 10, np.dtype(np.float32), 0)
    assert kwargs == {"in_channels": 3, "num_classes": 10, "input_size": 32}
    model.eval()
    assert model.forward(X).shape == (2, 10)
    model, _ = train_cmd.build_model("vgg_small", np.zeros((1, 1, 28, 28), np.float32), 7, np.dtype(np.float32), 0)
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
               "col2im", "relu", "relu_backward", "linear", "linear_backward"):
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


def test_check_covers_fastconvs_own_gemm(capsys, monkeypatch):
    """linear and linear_backward run on fastconv's GEMM: a wrong GEMM fails both."""
    if _kernels.isa() == "generic":
        pytest.skip("without a SIMD kernel, linear runs on NumPy's matmul")
    original = _kernels.gemm

    def wrong_gemm(*args):
        original(*args)
        args[10][:1] += 1  # c: one wrong element

    monkeypatch.setattr(_kernels, "gemm", wrong_gemm)
    rc, out, _ = run_main(["check", "--cases", "2"], capsys)
    assert rc == 1
    status = {ln.split("  ")[0].strip(): ln.split()[-1] for ln in out.splitlines()
              if ln.endswith(("OK", "FAIL"))}
    assert status["linear"] == "FAIL" and status["linear_backward"] == "FAIL"
    assert status["relu"] == "OK"


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


# ---------------------------------------------------------------- check: the selftest API


def test_selftest_run_checks_returns_one_result_per_op():
    results = selftest.run_checks(seed=1, cases=2)
    ops = [r.op for r in results]
    assert len(ops) == len(set(ops))
    assert ops[:2] == ["conv2d [im2col]", "conv2d_backward [im2col]"]
    assert ops[-4:] == ["relu", "relu_backward", "linear", "linear_backward"]
    for r in results:
        assert r.ok and r.crash is None, r
        assert set(r.errors) <= set(selftest.TOLERANCE)
        assert all(0.0 <= e <= selftest.TOLERANCE[dt] for dt, e in r.errors.items())
    # the relu kernels are exact
    by_op = {r.op: r for r in results}
    assert by_op["relu_backward"].errors == {"float32": 0.0, "float64": 0.0}
    assert set(by_op["linear"].errors) == {"float32", "float64"}
    strict = selftest.run_checks(seed=1, cases=2, tolerance={"float32": -1.0})
    assert not any(r.ok for r in strict)
    with pytest.raises(ValueError, match="cases"):
        selftest.run_checks(cases=0)
    with pytest.raises(TypeError, match="seed"):
        selftest.run_checks(seed=1.5)


def test_selftest_rel_err():
    a = np.array([1.0, 2.0, np.nan])
    assert selftest.rel_err(a, a.copy()) == 0.0
    assert selftest.rel_err(a, np.array([1.0, 2.5, np.nan])) == pytest.approx(0.5 / 2.5)
    assert selftest.rel_err(a, np.array([1.0, 2.0, 3.0])) == float("inf")
    assert selftest.rel_err(a[:2], a) == float("inf")
    assert selftest.rel_err(None, a) == float("inf") and selftest.rel_err(None, None) == 0.0
    assert selftest.rel_err(np.array([1, 2]), np.array([1, 3])) == float("inf")


# ---------------------------------------------------------------- bench: fastconv.bench.main


def test_bench_passes_its_arguments_to_bench_main(monkeypatch):
    calls = []
    monkeypatch.setattr(fastconv.bench, "main", lambda argv: calls.append(list(argv)) or 0)
    assert cli.main(["bench", "--quick", "x"]) == 0
    assert cli.main(["bench", "--help"]) == 0  # a leading option reaches bench.main untouched
    assert calls == [["--quick", "x"], ["--help"]]
    monkeypatch.setattr(fastconv.bench, "main", lambda argv: 3)
    assert cli.main(["bench"]) == 3


def test_bench_exits_and_interrupts_become_exit_codes(monkeypatch, capsys):
    def usage_error(argv):
        raise SystemExit(2)

    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(fastconv.bench, "main", usage_error)
    assert cli.main(["bench", "--nope"]) == 2
    monkeypatch.setattr(fastconv.bench, "main", interrupted)
    rc, _, err = run_main(["bench"], capsys)
    assert rc == 130 and err.strip() == "fastconv: interrupted"


def test_bench_real_help_and_usage_error(capsys):
    rc, out, _ = run_main(["bench", "--help"], capsys)
    assert rc == 0 and out.startswith("usage: fastconv bench") and "--quick" in out
    rc, _, err = run_main(["bench", "--cases", "nope", "--quiet"], capsys)
    assert rc == 2 and "unknown benchmark case 'nope'" in err
    rc, _, err = run_main(["bench", "--nosuch"], capsys)
    assert rc == 2 and "unrecognized arguments: --nosuch" in err
    rc, out, _ = run_main(["--help"], capsys)
    assert rc == 0
    for name in cli.COMMANDS:
        assert name in out
    assert "time fastconv against NumPy and PyTorch" in out


def test_train_keeps_freed_memory_unless_the_user_chose(monkeypatch):
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert _malloc.keep_freed_memory() is False          # the user's setting wins
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    result = _malloc.keep_freed_memory()
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert result is True


# ---------------------------------------------------------------- structure


_CLI_MODULES = ["cli.py", "selftest.py", "train.py", "_trainchecks.py", "checkpoint.py", "callbacks.py", "data/loader.py",
                "plotting.py"] + [f"commands/{p.name}" for p in
                                  (Path(fastconv.__file__).parent / "commands").glob("*.py")]


@pytest.mark.parametrize("name", _CLI_MODULES)
def test_fastconv_imports_only_at_module_level(name):
    """No fastconv import hides inside a function (an import circle would go unseen)."""
    tree = ast.parse((Path(fastconv.__file__).parent / name).read_text())
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom):
                    assert node.level == 0 and not (node.module or "").startswith("fastconv"), \
                        f"{name}:{node.lineno}"
                if isinstance(node, ast.Import):
                    assert not any(a.name.startswith("fastconv") for a in node.names), f"{name}:{node.lineno}"


def test_python_m_fastconv_version():
    proc = run_python(["-m", "fastconv", "--version"], timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == f"fastconv {fastconv.__version__}"
