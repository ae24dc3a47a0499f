"""fastconv tune: the on-disk tuning cache that algo="auto" reads."""

import json
import threading

import numpy as np
import pytest

import fastconv
from fastconv import _backend, _dispatch, _tunetable, cli, functional as F, models, nn, reference, tune
from fastconv._args import conv_params


@pytest.fixture
def tune_file(tmp_path, monkeypatch):
    path = tmp_path / "cache" / "tune.json"
    monkeypatch.setenv("FASTCONV_TUNE_FILE", str(path))
    yield path
    _tunetable.forget()


def _small():
    return conv_params((2, 16, 10, 10), (16, 16, 3, 3), 1, 1, 1, 1)


def _nt(p):
    return fastconv._runtime.conv_threads(_dispatch.conv_work(p))


def test_tune_writes_winners_that_auto_then_uses(tune_file):
    p = _small()
    assert tune.lookup(p, "forward", np.float32) is None
    (got_p, res), = tune.tune([p], np.float32, repeat=1)
    assert got_p == p and set(res) == set(tune.PASSES)
    data = json.loads(tune_file.read_text())
    assert data["format"] == tune.FORMAT and data["machine"] == tune.machine()
    assert data["machine"].endswith(f"fastconv {fastconv.__version__}")
    assert len(data["entries"]) == 3
    for pass_, r in res.items():
        timed = {a: v for a, v in r["ms"].items() if v is not None}
        assert r["algo"] == min(timed, key=timed.get)
        assert set(r["ms"]) == set(tune.CANDIDATES)
        assert tune.lookup(p, pass_, np.float32) == r["algo"]
        backward = False if pass_ == "forward" else pass_
        assert _dispatch.choose_algo("auto", p, backward, np.float32) == r["algo"]
    # other dtypes are not covered by it; every thread count is (one choice keeps
    # auto bitwise reproducible across thread counts)
    assert tune.lookup(p, "forward", np.float64) is None
    assert all(v["threads"] == _nt(p) for v in tune.entries().values())


def test_auto_follows_the_file_and_stays_correct(tune_file):
    if fastconv._kernels.isa() == "generic":
        pytest.skip("without a SIMD GEMM the built-in rule picks im2col, not winograd")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 16, 12, 12)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((16, 16, 12, 12)).astype(np.float32)
    p = conv_params(x.shape, w.shape, 1, 1, 1, 1)
    assert _dispatch.choose_algo("auto", p, False, np.float32) == "winograd"   # the built-in rule
    entries = {_tunetable.key(p, pass_, np.float32): {"algo": "direct", "ms": {}} for pass_ in tune.PASSES}
    _tunetable.write(entries)
    for backward in (False, "weight", "data"):
        assert _dispatch.choose_algo("auto", p, backward, np.float32) == "direct"
    assert _dispatch.choose_algo("gemm", p, False, np.float32) == "gemm"      # explicit wins
    np.testing.assert_allclose(fastconv.conv2d(x, w, padding=1), reference.conv2d(x, w, padding=1),
                               rtol=1e-4, atol=1e-4)
    # the tuned choice holds at every thread count, so results stay bitwise identical
    prev = fastconv.set_num_threads(1)
    try:
        one = fastconv.conv2d_backward(dy, x, w, padding=1)
        fastconv.set_num_threads(2)
        for a, b in zip(one, fastconv.conv2d_backward(dy, x, w, padding=1)):
            np.testing.assert_array_equal(a, b)
    finally:
        fastconv.set_num_threads(prev)
    for g, r in zip(fastconv.conv2d_backward(dy, x, w, padding=1),
                    reference.conv2d_backward(dy, x, w, padding=1)):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("content", [
    "not json at all {",
    json.dumps([1, 2, 3]),
    json.dumps({"format": 999, "machine": "x", "entries": {}}),
])
def test_corrupt_or_foreign_files_are_ignored(tune_file, content):
    p = _small()
    tune_file.parent.mkdir(parents=True)
    tune_file.write_text(content)
    assert tune.lookup(p, "forward", np.float32) is None
    assert fastconv.conv2d(np.ones((2, 16, 10, 10), np.float32), np.ones((16, 16, 3, 3), np.float32),
                           padding=1).shape == (2, 16, 10, 10)


def test_entries_from_another_cpu_are_ignored(tune_file):
    p = _small()
    key = _tunetable.key(p, "forward", np.float32)
    tune_file.parent.mkdir(parents=True)
    tune_file.write_text(json.dumps({"format": tune.FORMAT, "machine": "another CPU | avx2 | fastconv 0.0",
                                     "entries": {key: {"algo": "direct"}}}))
    assert tune.lookup(p, "forward", np.float32) is None
    assert tune.entries() == {}


def test_cache_can_be_turned_off_and_cleared(tune_file, monkeypatch):
    p = _small()
    tune.tune([p], repeat=1)
    assert tune_file.exists() and tune.entries()
    assert tune.clear() is True and not tune_file.exists()
    assert tune.clear() is False
    monkeypatch.setenv("FASTCONV_TUNE_FILE", "")
    assert tune.cache_path() is None
    assert tune.lookup(p, "forward", np.float32) is None
    with pytest.raises(ValueError, match="turned off"):
        tune.tune([p], repeat=1)
    with pytest.raises(TypeError, match="float32 or float64"):
        monkeypatch.setenv("FASTCONV_TUNE_FILE", str(tune_file))
        tune.tune([p], np.int32)


def test_model_layers_lists_each_conv_geometry_once():
    layers = tune.model_layers(models.lenet5(), (4, 1, 28, 28))
    assert [(q.x_shape, q.w_shape) for q in layers] == [
        ((4, 1, 28, 28), (20, 1, 5, 5)), ((4, 20, 12, 12), (50, 20, 5, 5))]
    assert F.conv2d.__name__ == "conv2d"        # nothing was patched
    assert _backend.ops() is F                   # and the watch is over


def test_model_layers_sees_every_branch_and_restores_the_mode():
    model = models.resnet_small(width=8)
    layers = tune.model_layers(model, (2, 3, 16, 16))
    assert model.training                        # put back in training mode
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2D)]
    # the residual blocks' convolutions and the 1x1 projection shortcut are all seen
    assert {q.w_shape for q in layers} == {m.weight.shape for m in convs}
    assert len(layers) == len(set(layers)) < len(convs)   # repeated geometries listed once
    assert layers[0].x_shape == (2, 3, 16, 16)
    assert ((2, 16, 8, 8), (16, 16, 3, 3)) in [(q.x_shape, q.w_shape) for q in layers]  # after stride 2
    model.eval()
    tune.model_layers(model, (2, 3, 16, 16))
    assert not model.training


def test_backend_watch_sees_only_its_own_thread():
    x = np.ones((1, 1, 5, 5))
    seen = []
    mine, other = nn.Conv2D(1, 2, 3, dtype=np.float64, seed=0), nn.Conv2D(1, 2, 3, dtype=np.float64, seed=0)
    worker = threading.Thread(target=lambda: [other.forward(x) for _ in range(20)])
    with _backend.watch(lambda name, args, kwargs: seen.append((name, args[1].shape, kwargs))):
        worker.start()
        y = mine.forward(x)
        worker.join()
        mine.backward(np.ones_like(y))
    np.testing.assert_array_equal(y, other.forward(x))    # the op ran as usual
    assert [s[0] for s in seen] == ["conv2d", "conv2d_backward"]
    assert seen[0][1] == (2, 1, 3, 3) and seen[0][2]["padding"] == (0, 0)
    assert _backend.ops() is F
    with pytest.raises(TypeError, match="callable"):
        with _backend.watch("not a function"):
            pass


def test_cli_tune_show_clear(tune_file, capsys):
    rc = cli.main(["tune", "--model", "lenet5", "--batch", "2", "--repeat", "1", "--threads", "1"])
    out = capsys.readouterr().out
    assert rc == 0 and "2 layers tuned" in out and str(tune_file) in out
    assert len(tune.entries()) == 6
    rc = cli.main(["tune", "--show"])
    out = capsys.readouterr().out
    assert rc == 0 and "6 entries" in out and "forward float32 N2 C1 H28 W28" in out
    tune.show()
    assert capsys.readouterr().out == out        # the Python API prints the same listing
    rc = cli.main(["tune", "--clear"])
    assert rc == 0 and "deleted" in capsys.readouterr().out and not tune_file.exists()


def test_cli_tune_errors(tune_file, capsys):
    assert cli.main(["tune"]) == 2
    assert "--cases all" in capsys.readouterr().err
    assert cli.main(["tune", "--cases", "pool2_cifar"]) == 2
    assert "no convolution layer" in capsys.readouterr().err
    assert cli.main(["tune", "--cases", "nope"]) == 2
    capsys.readouterr()
    assert cli.main(["tune", "--model", "lenet5", "--input", "1,28"]) == 2
    assert "expected C,H,W" in capsys.readouterr().err


def test_the_table_follows_the_variables_naming_its_file(tmp_path, monkeypatch):
    # _where reads os.environ's own mapping: a change through os.environ (set, change, unset)
    # is seen at once, as os.environ.get would see it
    monkeypatch.setenv("FASTCONV_TUNE_FILE", str(tmp_path / "a.json"))
    _tunetable.forget()
    first = _tunetable.table()
    assert _tunetable.table() is first
    monkeypatch.setenv("FASTCONV_TUNE_FILE", str(tmp_path / "b.json"))
    second = _tunetable.table()
    assert second is not first and _tunetable.table() is second
    monkeypatch.delenv("FASTCONV_TUNE_FILE")
    assert _tunetable.table() is not second
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _tunetable.cache_path() == tmp_path / "xdg" / "fastconv" / "tune.json"
    third = _tunetable.table()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg2"))
    assert _tunetable.table() is not third
    _tunetable.forget()


def test_the_variables_are_read_from_a_plain_mapping_too(tmp_path, monkeypatch):
    # an os.environ replaced by a plain dict (no encoded mapping behind it) is read with .get
    env = {"FASTCONV_TUNE_FILE": str(tmp_path / "a.json")}
    monkeypatch.setattr(_tunetable.os, "environ", env)
    assert _tunetable._where() == (str(tmp_path / "a.json"), None, None)
    first = _tunetable.table()
    env["FASTCONV_TUNE_FILE"] = str(tmp_path / "b.json")
    assert _tunetable.table() is not first
    _tunetable.forget()
