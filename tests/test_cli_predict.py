"""fastconv predict: .npz and .onnx models on a .npy input, compared with model.eval().forward;
every bad input a one-line error with exit code 2 and nothing written."""

import sys

import numpy as np
import pytest

import fastconv
from fastconv import cli
from fastconv.checkpoint import save_model
from fastconv.commands import predict as predict_cmd
from fastconv.models import get_model
from conftest import run_python

pytest.importorskip("onnx")


def run_main(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def _rel_err(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)) / max(1e-30, np.max(np.abs(b))))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("predict")
    rng = np.random.default_rng(7)
    lenet = get_model("lenet5", seed=3)
    save_model(lenet, d / "lenet.npz", metadata={"builder": "lenet5", "kwargs": {"seed": 3}})
    # as `fastconv train` writes it: the builder's sizes recorded
    save_model(lenet, d / "trained.npz", metadata={"builder": "lenet5", "kwargs": {
        "in_channels": 1, "num_classes": 10, "input_size": 28, "dtype": "float32"}})
    lenet64 = get_model("lenet5", seed=4, dtype=np.float64)
    save_model(lenet64, d / "lenet64.npz", metadata={"builder": "lenet5", "kwargs": {"dtype": "float64"}})
    fastconv.onnx.save(lenet, d / "lenet.onnx", input_shape=(1, 28, 28))
    resnet = get_model("resnet_small", seed=5)
    fastconv.onnx.save(resnet, d / "resnet.onnx", input_shape=(3, 32, 32))
    x = rng.standard_normal((37, 1, 28, 28)).astype(np.float32)
    np.save(d / "x.npy", x)
    np.save(d / "x64.npy", x.astype(np.float64))
    np.save(d / "x8.npy", rng.integers(0, 255, (5, 1, 28, 28), dtype=np.uint8))
    np.save(d / "rgb.npy", rng.standard_normal((6, 3, 32, 32)).astype(np.float32))
    np.save(d / "wrong_c.npy", np.zeros((4, 3, 28, 28), np.float32))
    np.save(d / "wrong_hw.npy", np.zeros((4, 1, 32, 32), np.float32))
    np.save(d / "flat.npy", np.zeros(10, np.float32))
    np.save(d / "empty.npy", np.zeros((0, 1, 28, 28), np.float32))
    np.save(d / "obj.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    np.save(d / "complex.npy", np.zeros((2, 1, 28, 28), np.complex64))
    np.save(d / "text.npy", np.array([["a"]]))
    (d / "corrupt.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (d / "corrupt.onnx").write_bytes(b"\x08\x07garbage that is not a protobuf \xff\xff")
    (d / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    (d / "model.pt").write_bytes(b"x")
    np.savez(d / "plain.npz", a=np.zeros(3))
    (d / "x.txt").write_text("1 2 3")
    (d / "afile").write_text("")
    return {"dir": d, "lenet": lenet.eval(), "lenet64": lenet64.eval(), "resnet": resnet.eval(), "x": x}


def test_npz_matches_forward_compiled_and_not(files, tmp_path, capsys):
    d, x = files["dir"], files["x"]
    want = files["lenet"].forward(x).astype(np.float64)
    for flag, rtol in (("--compiled", 1e-5), ("--no-compiled", 1e-6)):
        out = tmp_path / f"y{flag}.npy"
        rc, stdout, err = run_main(["predict", str(d / "lenet.npz"), "--input", str(d / "x.npy"),
                                    "--batch-size", "8", "--output", str(out), flag], capsys)
        assert rc == 0, err
        y = np.load(out)
        assert y.shape == (37, 10) and y.dtype == np.float32
        assert _rel_err(y, want) < rtol
        assert ("compiled plan" if flag == "--compiled" else "model.forward") in stdout
        assert "37 samples of 1x28x28, batch size 8" in stdout and "output: shape (37, 10), float32" in stdout
        classes = " ".join(str(c) for c in np.argmax(y, axis=1)[:predict_cmd.SHOW])
        assert f"predicted classes (argmax of 10): {classes} ... (first 20 of 37" in stdout
        assert f"outputs saved to {out}" in stdout


def test_npz_float64_is_tight_and_integer_input_is_converted(files, tmp_path, capsys):
    d = files["dir"]
    out = tmp_path / "y.npy"
    rc, _, err = run_main(["predict", str(d / "lenet64.npz"), "--input", str(d / "x64.npy"),
                           "--output", str(out)], capsys)
    assert rc == 0, err
    y = np.load(out)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, files["lenet64"].forward(np.load(d / "x64.npy")), rtol=1e-12, atol=1e-12)
    # uint8 converts exactly to float32: accepted, and the same as the converted array
    rc, _, err = run_main(["predict", str(d / "lenet.npz"), "--input", str(d / "x8.npy"),
                           "--output", str(out), "--no-compiled"], capsys)
    assert rc == 0, err
    x8 = np.load(d / "x8.npy").astype(np.float32)
    np.testing.assert_allclose(np.load(out), files["lenet"].forward(x8), rtol=1e-6, atol=1e-6 * np.abs(
        files["lenet"].forward(x8)).max())


@pytest.mark.parametrize("batch", ["16", "100"])
def test_onnx_matches_the_exported_model(files, tmp_path, capsys, batch, threads):
    d, x = files["dir"], files["x"]
    out = tmp_path / "y.npy"
    rc, stdout, err = run_main(["predict", str(d / "lenet.onnx"), "--input", str(d / "x.npy"),
                                "--batch-size", batch, "--output", str(out), "--threads", "1"], capsys)
    assert rc == 0, err
    assert "ONNX (N, 1, 28, 28) float32" in stdout and "1 threads" in stdout
    assert _rel_err(np.load(out), files["lenet"].forward(x).astype(np.float64)) < 1e-5


def test_onnx_graph_runs_compiled(files, tmp_path, capsys):
    d = files["dir"]
    out = tmp_path / "y.npy"
    rgb = np.load(d / "rgb.npy")
    rc, stdout, err = run_main(["predict", str(d / "resnet.onnx"), "--input", str(d / "rgb.npy"),
                                "--batch-size", "4", "--output", str(out), "--compiled"], capsys)
    assert rc == 0, err
    assert "compiled plan" in stdout
    assert _rel_err(np.load(out), files["resnet"].forward(rgb).astype(np.float64)) < 1e-5


BAD = [
    (["nope.npz", "--input", "x.npy"], "no such model file"),
    (["model.pt", "--input", "x.npy"], "must be a .npz file"),
    (["afile", "--input", "x.npy"], "must be a .npz file"),
    (["corrupt.npz", "--input", "x.npy"], "cannot load the model"),
    (["plain.npz", "--input", "x.npy"], "not a fastconv model"),
    (["corrupt.onnx", "--input", "x.npy"], "is not a readable ONNX model"),
    (["lenet.npz", "--input", "nope.npy"], "no such input file"),
    (["lenet.npz", "--input", "x.txt"], "must be a .npy file"),
    (["lenet.npz", "--input", "corrupt.npy"], "not a readable .npy file"),
    (["lenet.npz", "--input", "obj.npy"], "holds Python objects (object dtype)"),
    (["lenet.npz", "--input", "complex.npy"], "has dtype complex64"),
    (["lenet.npz", "--input", "text.npy"], "a real numeric array is needed"),
    (["lenet.npz", "--input", "x64.npy"], "is float64 but the model computes in float32"),
    (["lenet.onnx", "--input", "x64.npy"], "is float64 but the model computes in float32"),
    (["lenet.npz", "--input", "wrong_c.npy"], "expects 1 input channels"),
    (["trained.npz", "--input", "wrong_c.npy"], "samples of 3x28x28; trained.npz takes 1x28x28"),
    (["trained.npz", "--input", "wrong_hw.npy"], "samples of 1x32x32; trained.npz takes 1x28x28"),
    (["lenet.npz", "--input", "wrong_hw.npy"], "does not fit"),
    (["lenet.onnx", "--input", "wrong_c.npy"], "takes (N, 1, 28, 28) float32"),
    (["lenet.onnx", "--input", "wrong_hw.npy"], "takes (N, 1, 28, 28) float32"),
    (["lenet.npz", "--input", "flat.npy"], "expected samples along the first axis"),
    (["lenet.npz", "--input", "empty.npy"], "holds no samples"),
    (["lenet.npz", "--input", "x.npy", "--output", "OUT.txt"], "must end in .npy"),
    (["lenet.npz", "--input", "x.npy", "--output", "afile/y.npy"], "is a file, not a folder"),
]


@pytest.mark.parametrize("argv,message", BAD, ids=[f"{a[0]}-{a[2]}-{m[:18]}" for a, m in BAD])
def test_bad_input_is_one_line_exit_2(files, capsys, monkeypatch, argv, message):
    d = files["dir"]
    monkeypatch.chdir(d)
    out = d / "out_should_not_exist.npy"
    argv = list(argv) if "--output" in argv else list(argv) + ["--output", str(out)]
    rc, stdout, err = run_main(["predict"] + argv, capsys)
    assert rc == 2
    assert message in err, err
    assert err.startswith("fastconv: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert stdout == "" and not out.exists()


@pytest.mark.parametrize("value", ["0", "-3", "x", "1.5"])
def test_batch_size_and_threads_must_be_positive_ints(files, capsys, value, threads):
    d = files["dir"]
    for opt in ("--batch-size", "--threads"):
        rc, _, err = run_main(["predict", str(d / "lenet.npz"), "--input", str(d / "x.npy"), opt, value], capsys)
        assert rc == 2 and f"argument {opt}: expected a positive integer, got '{value}'" in err


def test_input_is_required(files, capsys):
    rc, _, err = run_main(["predict", str(files["dir"] / "lenet.npz")], capsys)
    assert rc == 2 and "--input" in err


def test_onnx_without_the_onnx_package_says_how_to_install(files, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    d = files["dir"]
    rc, _, err = run_main(["predict", str(d / "lenet.onnx"), "--input", str(d / "x.npy")], capsys)
    assert rc == 2 and "pip install 'fastconv[onnx]'" in err and err.count("\n") == 1


def test_as_a_child_process(files, tmp_path):
    d = files["dir"]
    out = tmp_path / "y.npy"
    res = run_python(["-m", "fastconv", "predict", str(d / "lenet.onnx"), "--input", str(d / "x.npy"),
                      "--output", str(out)], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "predicted classes" in res.stdout
    assert _rel_err(np.load(out), files["lenet"].forward(files["x"]).astype(np.float64)) < 1e-5
    res = run_python(["-m", "fastconv", "predict", str(d / "lenet.npz"), "--input", str(d / "obj.npy")],
                     cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr and res.stderr.count("\n") == 1


def test_int8_model_runs_compiled(files, tmp_path, capsys):
    d, x = files["dir"], files["x"]
    q = fastconv.quantize(files["lenet"], x[:16])
    save_model(q, tmp_path / "q.npz")
    out = tmp_path / "y.npy"
    rc, stdout, err = run_main(["predict", str(tmp_path / "q.npz"), "--input", str(d / "x.npy"),
                                "--batch-size", "10", "--output", str(out)], capsys)
    assert rc == 0, err
    assert "QuantizedModel" in stdout and "compiled plan" in stdout
    np.testing.assert_array_equal(np.load(out), q.forward(x))   # the same int8 kernels


def test_uncompilable_network_falls_back_unless_compiled_is_asked(files, tmp_path, capsys,
                                                                   monkeypatch):
    from fastconv.commands import predict

    def refuse(model):
        raise TypeError("fastconv.compile cannot lower model.3 (Odd): supported are ...")

    monkeypatch.setattr(predict, "fc_compile", refuse)
    d, x = files["dir"], files["x"]
    out = tmp_path / "y.npy"
    rc, stdout, err = run_main(["predict", str(d / "lenet.npz"), "--input", str(d / "x.npy"),
                                "--output", str(out)], capsys)
    assert rc == 0, err
    assert "model.forward (not compilable: fastconv.compile cannot lower model.3 (Odd))" in stdout
    np.testing.assert_allclose(np.load(out), files["lenet"].forward(x), rtol=1e-6, atol=1e-6)
    out.unlink()
    rc, _, err = run_main(["predict", str(d / "lenet.npz"), "--input", str(d / "x.npy"),
                           "--output", str(out), "--compiled"], capsys)
    assert rc == 2 and "--compiled:" in err and "cannot be compiled" in err and "Odd" in err
    assert not out.exists()
