"""fastconv train (resume, output paths, output controls, data errors) and fastconv evaluate."""

import math
import os
import urllib.error
import urllib.request

import numpy as np
import pytest

from fastconv import cli, models
from fastconv.checkpoint import read_checkpoint, read_metadata, save_model

SMALL = ["--train-size", "300", "--test-size", "100", "--no-progress"]


def run_main(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def one_error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastconv: error: "), err
    return lines[0]


# ---------------------------------------------------------------- resume


def test_resume_extends_the_run_and_replans_the_schedule(tmp_path, capsys):
    ck = tmp_path / "c.npz"
    rc, _, err = run_main(["train", "--epochs", "2", "--checkpoint", str(ck), "--lr", "0.01", "--no-save"]
                          + SMALL, capsys)
    assert rc == 0, err
    rc, out, err = run_main(["train", "--epochs", "4", "--resume", str(ck), "--checkpoint", str(ck),
                             "--lr", "0.01", "--no-save"] + SMALL, capsys)
    assert rc == 0, err
    assert "4 epochs" in out and "lr 0.01" in out
    assert "resuming from" in out and "training epochs 3-4" in out
    assert "the run is extended from 2 to 4 epochs: the cosine schedule is re-planned over 4 epochs" in out
    lrs = read_checkpoint(ck)["history"]["lr"]
    want = [0.01 * (1 + math.cos(math.pi * e / T)) / 2 for e, T in ((0, 2), (1, 2), (2, 4), (3, 4))]
    assert lrs == pytest.approx(want)  # epoch 3 is not at lr 0


def test_resume_takes_the_runs_options_and_refuses_other_values(tmp_path, capsys):
    ck = tmp_path / "c.npz"
    first = ["train", "--epochs", "1", "--optimizer", "adam", "--batch-size", "32", "--seed", "4",
             "--checkpoint", str(ck), "--no-save", "--train-size", "200", "--test-size", "50"]
    rc, _, err = run_main(first, capsys)
    assert rc == 0, err
    # options left out come from the checkpoint
    rc, out, err = run_main(["train", "--epochs", "2", "--resume", str(ck), "--no-save", "--no-progress"], capsys)
    assert rc == 0, err
    assert "Adam lr 0.001" in out and "batch 32" in out and "200 training" in out
    # options given with other values are one error naming each, before any training
    rc, out, err = run_main(["train", "--epochs", "3", "--resume", str(ck), "--lr", "0.01", "--model",
                             "vgg_small", "--batch-size", "32", "--no-save"], capsys)
    assert rc == 2 and "epoch" not in out
    line = one_error_line(err)
    assert "--lr 0.01 (the run used 0.001)" in line and "--model vgg_small (the run used lenet5)" in line
    assert "--batch-size" not in line  # the same value is no conflict
    rc, _, err = run_main(["train", "--resume", str(ck), "--momentum", "0.5", "--no-save"], capsys)
    assert rc == 2 and "--momentum applies to --optimizer sgd only" in one_error_line(err)
    rc, out, err = run_main(["train", "--resume", str(ck), "--epochs", "1", "--no-save", "--no-progress"], capsys)
    assert rc == 0, err  # all epochs done: nothing to train, the model is still evaluated
    assert "nothing left to train" in out and "test accuracy" in out
    rc, _, err = run_main(["train", "--resume", str(tmp_path / "nope.npz"), "--no-save"], capsys)
    assert rc == 2 and "cannot resume" in one_error_line(err)


# ---------------------------------------------------------------- output paths, checked first


def test_save_into_a_folder_uses_the_default_name(tmp_path, capsys):
    (tmp_path / "models").mkdir()
    for arg, folder in (("models", tmp_path / "models"), ("new/", tmp_path / "new")):
        rc, out, err = run_main(["train", "--epochs", "1", "--save", f"{tmp_path}/{arg}"] + SMALL, capsys)
        assert rc == 0, err
        assert (folder / "fastconv-lenet5-shapes.npz").is_file()
        assert f"model saved to {folder / 'fastconv-lenet5-shapes.npz'}" in out


def test_bad_output_paths_fail_before_training(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    (tmp_path / "dir").mkdir()
    cases = [
        (["--plot", str(afile)], "--plot", "is a file, not a folder"),
        (["--save", str(afile / "m.npz")], "--save", "is a file, not a folder"),
        (["--checkpoint", str(tmp_path / "dir")], "--checkpoint", "is a folder"),
        (["--checkpoint", str(afile / "sub" / "c.npz")], "--checkpoint", "is a file, not a folder"),
        (["--save", str(tmp_path / "m.npz"), "--checkpoint", str(tmp_path / "m.npz")], "--save and --checkpoint",
         "same file"),
    ]
    for extra, option, message in cases:
        rc, out, err = run_main(["train", "--epochs", "1"] + extra + SMALL, capsys)
        assert rc == 2, extra
        line = one_error_line(err)
        assert option in line and message in line, line
        assert "epoch" not in out and "test accuracy" not in out  # nothing was trained
    assert afile.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["afile", "dir"]


def test_saved_model_gets_the_umask_mode(tmp_path, capsys):
    old = os.umask(0o022)
    try:
        rc, _, err = run_main(["train", "--epochs", "1", "--save", str(tmp_path / "m.npz"),
                               "--checkpoint", str(tmp_path / "c.npz")] + SMALL, capsys)
    finally:
        os.umask(old)
    assert rc == 0, err
    assert (tmp_path / "m.npz").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "c.npz").stat().st_mode & 0o777 == 0o644


# ---------------------------------------------------------------- output controls


def test_no_progress_keeps_the_epoch_lines_and_quiet_drops_them(tmp_path, capsys):
    base = ["train", "--epochs", "2", "--no-save", "--train-size", "200", "--test-size", "50"]
    rc, out, err = run_main(base + ["--no-progress"], capsys)
    assert rc == 0 and err == ""
    assert "training lenet5" in out and "epoch 1/2" in out and "epoch 2/2" in out
    rc, out, err = run_main(base + ["--quiet"], capsys)
    assert rc == 0 and err == ""
    assert "epoch" not in out and "training lenet5" not in out
    assert out.startswith("test accuracy: ") and "total time" in out


# ---------------------------------------------------------------- data errors in the command's words


def test_offline_error_names_the_commands_options(tmp_path, capsys):
    rc, _, err = run_main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--no-download"], capsys)
    assert rc == 2
    line = one_error_line(err)
    assert "cannot load the mnist dataset" in line and str(tmp_path) in line
    assert "--data-dir" in line and "drop --no-download" in line
    assert "root=" not in line and "download=True" not in line and "fastconv.data" not in line


def test_failed_download_leaves_no_folder_it_created(tmp_path, capsys, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    (tmp_path / "kept").mkdir()
    for data_dir in (tmp_path / "cache" / "mnist", tmp_path / "kept"):
        rc, _, err = run_main(["train", "--dataset", "mnist", "--data-dir", str(data_dir)], capsys)
        assert rc == 2
        line = one_error_line(err)
        assert "could not download" in line and "--data-dir" in line and "root=" not in line
    assert not (tmp_path / "cache").exists()  # created by the call: removed
    assert (tmp_path / "kept").is_dir()  # there before: kept


# ---------------------------------------------------------------- fastconv evaluate


def test_evaluate_a_saved_model(tmp_path, capsys):
    path = tmp_path / "m.npz"
    rc, out, err = run_main(["train", "--epochs", "1", "--save", str(path), "--checkpoint",
                             str(tmp_path / "c.npz")] + SMALL, capsys)
    assert rc == 0, err
    trained = next(ln for ln in out.splitlines() if ln.startswith("test accuracy: "))
    assert read_metadata(path)["dataset"] == "shapes"
    rc, out, err = run_main(["evaluate", str(path)], capsys)
    assert rc == 0, err
    assert "evaluating" in out and "lenet5" in out and "shapes test split (100 images)" in out
    assert trained in out  # the same test set as the training run drew: the same accuracy and loss
    rc, out, err = run_main(["evaluate", str(tmp_path / "c.npz"), "--split", "train", "--batch-size", "64"],
                            capsys)
    assert rc == 0, err
    assert "train accuracy: " in out and "(300 images" in out


def test_evaluate_errors_are_one_line(tmp_path, capsys):
    rc, _, err = run_main(["evaluate", str(tmp_path / "missing.npz")], capsys)
    assert rc == 2 and "cannot load the model" in one_error_line(err)
    bare = save_model(models.lenet5(), tmp_path / "bare.npz")  # no metadata: cannot be rebuilt
    rc, _, err = run_main(["evaluate", str(bare), "--dataset", "shapes"], capsys)
    assert rc == 2 and "cannot rebuild the network" in one_error_line(err)
    meta = {"builder": "lenet5", "kwargs": {"in_channels": 1, "num_classes": 10, "input_size": 28}}
    nodata = save_model(models.lenet5(), tmp_path / "nodata.npz", metadata=meta)
    rc, _, err = run_main(["evaluate", str(nodata)], capsys)
    assert rc == 2 and "--dataset" in one_error_line(err)
    rc, _, err = run_main(["evaluate", str(nodata), "--dataset", "mnist", "--data-dir", str(tmp_path),
                           "--no-download"], capsys)
    assert rc == 2 and "drop --no-download" in one_error_line(err)


def test_evaluate_checks_the_image_geometry(tmp_path, capsys, monkeypatch):
    meta = {"builder": "lenet5", "kwargs": {"in_channels": 1, "num_classes": 10, "input_size": 28},
            "dataset": "cifar10"}
    path = save_model(models.lenet5(), tmp_path / "m.npz", metadata=meta)
    fake = (np.zeros((4, 3, 32, 32), np.float32), np.zeros(4, np.int64))
    monkeypatch.setattr("fastconv.data.cifar10", lambda **kw: fake)
    rc, _, err = run_main(["evaluate", str(path)], capsys)
    assert rc == 2 and "takes 1-channel images of 28x28; cifar10 has 3x32x32" in one_error_line(err)
