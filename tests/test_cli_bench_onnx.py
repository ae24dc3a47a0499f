"""fastconv bench --onnx FILE --batch 1,8: a small exported model through the compiled plan,
model.forward and onnxruntime, outputs compared; every bad argument a one-line error."""

import json
import sys

import pytest

import fastconv
from fastconv import cli
from fastconv.bench import onnxbench
from fastconv.models import get_model
from conftest import run_python

pytest.importorskip("onnx")


def run_main(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def lenet_onnx(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench_onnx")
    fastconv.onnx.save(get_model("lenet5", seed=1), d / "lenet.onnx", input_shape=(1, 28, 28))
    (d / "corrupt.onnx").write_bytes(b"\x0a\xff\xff not a model")
    (d / "model.npz").write_bytes(b"")
    return d


def _rows(rows, batch, engine):
    (r,) = [r for r in rows if r["batch"] == batch and r["engine"] == engine]
    return r


def test_run_onnx_agrees_with_onnxruntime_and_forward(lenet_onnx):
    pytest.importorskip("onnxruntime")
    rows = onnxbench.run_onnx(str(lenet_onnx / "lenet.onnx"), [1, 3], [1], repeat=1, min_time=1e-4)
    assert [(r["batch"], r["engine"]) for r in rows] == [(b, e) for b in (1, 3) for e in onnxbench.ENGINES]
    for b in (1, 3):
        for engine in ("plan", "onnxruntime"):
            r = _rows(rows, b, engine)
            assert r["seconds"] > 0 and r["rel_diff"] < 1e-5, r
        assert _rows(rows, b, "forward")["max_abs_diff"] == 0.0
        assert _rows(rows, b, "plan")["vs_ref"] == 1.0 and _rows(rows, b, "plan")["ref"] == "plan"
        assert "onnxruntime" in _rows(rows, b, "onnxruntime")["notes"]
        ov = _rows(rows, b, "openvino")
        try:
            import openvino  # noqa: F401
        except ImportError:
            assert ov["seconds"] is None and ov["notes"] == "not installed"


def test_ratios_come_from_the_shared_timer(lenet_onnx, monkeypatch):
    calls = []

    def fake_measure(fns, repeat, min_time=None, *a, **k):
        calls.append((list(fns), repeat))
        return {name: 0.001 * (i + 1) for i, name in enumerate(fns)}, {}

    monkeypatch.setattr(onnxbench._timing, "measure", fake_measure)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "openvino", None)     # (whether or not they are)
    rows = onnxbench.run_onnx(str(lenet_onnx / "lenet.onnx"), [2], [1], repeat=4)
    assert calls == [(["plan", "forward"], 4)]
    assert _rows(rows, 2, "forward")["vs_ref"] == pytest.approx(2.0)
    assert _rows(rows, 2, "forward")["images_per_s"] == pytest.approx(2 / 0.002)
    assert _rows(rows, 2, "onnxruntime")["notes"] == "not installed"
    table = onnxbench.format_onnx_table(rows)
    assert "| 1 | 2 | forward | 2.000 | 1000 | 2.00x | (ref) | (ref) |  |" in table
    assert "| 1 | 2 | onnxruntime | - | - | - | - | - | not installed |" in table


def test_cli_prints_the_table_and_writes_json(lenet_onnx, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    js = tmp_path / "r.json"
    rc, out, err = run_main(["bench", "--onnx", str(lenet_onnx / "lenet.onnx"), "--batch", "1,2", "--quick",
                             "--threads", "1", "--quiet", "--json", str(js)], capsys)
    assert rc == 0, err
    assert "| threads | batch | engine | ms | images/s | vs ref | max |diff| | rel diff | notes |" in out
    for b in (1, 2):
        for engine in ("plan", "forward", "onnxruntime", "openvino"):
            assert f"| 1 | {b} | {engine} |" in out
    data = json.loads(js.read_text())
    assert {r["batch"] for r in data["results"]} == {1, 2}
    assert all(r["rel_diff"] < 1e-5 for r in data["results"] if r["engine"] in ("plan", "onnxruntime"))


BAD = [
    (["--batch", "0"], "--batch must be a comma-separated list of positive ints"),
    (["--batch", "1,,8"], "--batch must be a comma-separated list of positive ints"),
    (["--batch", "-1"], "--batch must be a comma-separated list of positive ints"),
    (["--batch", "a"], "--batch must be a comma-separated list of positive ints"),
    (["--batch", "1.5"], "--batch must be a comma-separated list of positive ints"),
    (["--threads", "0"], "threads must be positive ints"),
    (["--repeat", "0"], "--repeat must be a positive int"),
    (["--cases", "conv"], "--cases and --onnx cannot be used together"),
    (["--input-shape", "1,x"], "--input-shape must be positive sizes"),
    (["--input-shape", "1,28"], "has 2 sizes"),
    (["--json", "/dev/null/x.json"], "--json /dev/null/x.json: /dev/null is a file, not a folder"),
]


@pytest.mark.parametrize("extra,message", BAD, ids=[" ".join(e) for e, _ in BAD])
def test_bad_arguments_are_one_line_exit_2(lenet_onnx, capsys, extra, message):
    rc, out, err = run_main(["bench", "--onnx", str(lenet_onnx / "lenet.onnx"), "--quiet"] + extra, capsys)
    assert rc == 2 and message in err, err
    assert err.count("\n") == 1 and out == ""


@pytest.mark.parametrize("name,message", [("nope.onnx", "no such model file"), ("model.npz", "must be an .onnx file"),
                                          ("corrupt.onnx", "is not a readable ONNX model"),
                                          (".", "is not a file")])
def test_bad_files_are_one_line_exit_2(lenet_onnx, capsys, name, message):
    rc, out, err = run_main(["bench", "--onnx", str(lenet_onnx / name), "--quiet"], capsys)
    assert rc == 2 and message in err, err
    assert err.startswith("fastconv bench: error: ") and err.count("\n") == 1 and out == ""


def test_onnx_options_need_onnx(capsys):
    for opt in (["--batch", "1"], ["--input-shape", "3,32,32"]):
        rc, _, err = run_main(["bench", "--quiet"] + opt, capsys)
        assert rc == 2 and f"{opt[0]} needs --onnx FILE" in err


def test_without_the_onnx_package(lenet_onnx, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    rc, _, err = run_main(["bench", "--onnx", str(lenet_onnx / "lenet.onnx"), "--quiet"], capsys)
    assert rc == 2 and "pip install 'fastconv[onnx]'" in err


def test_a_fixed_batch_file_names_the_shape(tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    path = tmp_path / "fixed.onnx"
    fastconv.onnx.save(get_model("lenet5", seed=1), path, input_shape=(1, 28, 28))
    m = onnx.load(str(path))
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1  # batch fixed at 1
    onnx.save(m, str(path))
    rc, _, err = run_main(["bench", "--onnx", str(path), "--batch", "1,4", "--quiet"], capsys)
    assert rc == 2 and "has shape (4, 1, 28, 28)" in err and "takes (1, 1, 28, 28) float32" in err


def test_as_a_child_process(lenet_onnx, tmp_path):
    res = run_python(["-m", "fastconv", "bench", "--onnx", str(lenet_onnx / "lenet.onnx"), "--batch", "1",
                      "--quick", "--threads", "1"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "| 1 | 1 | plan |" in res.stdout
    res = run_python(["-m", "fastconv", "bench", "--onnx", str(lenet_onnx / "lenet.onnx"), "--batch", "x"],
                     cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_free_sizes_need_input_shape(tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    path = tmp_path / "free.onnx"
    fastconv.onnx.save(get_model("lenet5", seed=1), path, input_shape=(1, 28, 28))
    m = onnx.load(str(path))
    for i in (2, 3):  # H and W left free
        m.graph.input[0].type.tensor_type.shape.dim[i].dim_param = "HW"[i - 2]
    onnx.save(m, str(path))
    rc, _, err = run_main(["bench", "--onnx", str(path), "--quiet"], capsys)
    assert rc == 2 and "takes (N, 1, ?, ?) float32: give the free sizes with --input-shape" in err
    rc, out, err = run_main(["bench", "--onnx", str(path), "--input-shape", "1,28,28", "--quick", "--quiet",
                             "--threads", "1"], capsys)
    assert rc == 0, err
    assert "| 1 | 1 | plan |" in out and "| 1 | 1 | forward |" in out
