"""fastconv.checkpoint: training checkpoints and resume, save_model / load_model, the file format."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from fastconv import models, optim
from fastconv.callbacks import ModelCheckpoint
from fastconv.checkpoint import (
    FORMAT,
    CheckpointError,
    load_model,
    load_training_checkpoint,
    read_checkpoint,
    save_model,
    save_training_checkpoint,
)
from _trainkit import make_trainer, shapes_small, states_equal, states_equal_dict, tiny_net  # noqa: F401


@pytest.mark.parametrize("opt, scheduler", [("sgd", "cosine"), ("adam", "step")])
def test_resume_equals_uninterrupted_run_bitwise(shapes_small, tmp_path, opt, scheduler):
    (X, y), (Xt, yt) = shapes_small
    X, y, Xt, yt = X[:160].astype(np.float64), y[:160], Xt[:40].astype(np.float64), yt[:40]
    lr = 0.05 if opt == "sgd" else 0.01

    def fresh():
        return make_trainer(tiny_net(np.float64, seed=5, batchnorm=True), lr=lr, opt=opt, scheduler=scheduler)

    full = fresh()
    h_full = full.fit((X, y), epochs=4, batch_size=32, val=(Xt, yt), seed=7)

    ckpt = tmp_path / "run.npz"
    first = fresh()
    first.fit((X, y), epochs=2, batch_size=32, val=(Xt, yt), seed=7, checkpoint=ckpt)
    assert ckpt.is_file()
    assert os.listdir(tmp_path) == ["run.npz"]  # no temporary files left behind
    meta = read_checkpoint(ckpt)
    assert meta["kind"] == "checkpoint" and meta["epoch"] == 2 and meta["seed"] == 7
    assert len(meta["history"]["loss"]) == 2

    second = fresh()  # a new process would start like this: new model, new optimiser
    h = second.fit((X, y), epochs=4, batch_size=32, val=(Xt, yt), seed=7, resume=ckpt)
    assert h.epochs == 4 and second.epoch == 4
    assert states_equal(second.model, full.model)
    assert h.loss == h_full.loss and h.val_loss == h_full.val_loss and h.lr == h_full.lr
    assert second.optimizer.lr == full.optimizer.lr

    # the same through load_checkpoint + resume=True
    third = fresh()
    assert third.load_checkpoint(ckpt) == 2
    third.fit((X, y), epochs=4, batch_size=32, val=(Xt, yt), seed=7, resume=True)
    assert states_equal(third.model, full.model)


def test_checkpoint_every_and_model_checkpoint(shapes_small, tmp_path):
    (X, y), _ = shapes_small
    path = tmp_path / "sub" / "ck.npz"
    trainer = make_trainer(tiny_net())
    trainer.fit((X[:32], y[:32]), epochs=3, batch_size=32, callbacks=[ModelCheckpoint(path, every=2)])
    assert read_checkpoint(path)["epoch"] == 3  # every 2 epochs, and after the last one
    with pytest.raises(ValueError, match="every"):
        ModelCheckpoint(path, every=0)


def test_checkpoint_write_is_atomic(shapes_small, tmp_path, monkeypatch):
    (X, y), _ = shapes_small
    trainer = make_trainer(tiny_net())
    trainer.fit((X[:32], y[:32]), epochs=1, batch_size=32)
    path = tmp_path / "ck.npz"
    trainer.save_checkpoint(path)
    before = path.read_bytes()

    def broken_savez(f, *args, **kwargs):
        f.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    trainer.epoch = 99
    with pytest.raises(OSError, match="disk full"):
        trainer.save_checkpoint(path)
    monkeypatch.undo()
    assert path.read_bytes() == before  # the previous checkpoint is intact
    assert os.listdir(tmp_path) == ["ck.npz"]  # and the temporary file is gone
    assert read_checkpoint(path)["epoch"] == 1


def test_checkpoint_holds_no_pickles(shapes_small, tmp_path):
    (X, y), _ = shapes_small
    trainer = make_trainer(tiny_net(batchnorm=True), opt="adam", scheduler="cosine")
    trainer.fit((X[:32], y[:32]), epochs=1, batch_size=16)
    path = tmp_path / "ck.npz"
    trainer.save_checkpoint(path)
    with np.load(path, allow_pickle=False) as z:
        for k in z.files:
            assert z[k].dtype != object
        keys = set(z.files)
    assert "__meta__" in keys and any(k.startswith("model/") for k in keys)
    assert any(k.startswith("optimizer/") for k in keys)


def test_resume_errors(shapes_small, tmp_path):
    (X, y), _ = shapes_small
    trainer = make_trainer(tiny_net())
    trainer.fit((X[:32], y[:32]), epochs=1, batch_size=32)
    ck = tmp_path / "ck.npz"
    trainer.save_checkpoint(ck)
    # another architecture
    other = make_trainer(tiny_net(classes=5))
    before = other.model.state_dict()
    with pytest.raises(CheckpointError, match="different architecture"):
        other.load_checkpoint(ck)
    assert states_equal_dict(other.model.state_dict(), before)
    # another optimiser type: nothing changes
    adam = make_trainer(tiny_net(seed=9), opt="adam")
    before = adam.model.state_dict()
    with pytest.raises(CheckpointError, match="optimiser"):
        adam.load_checkpoint(ck)
    assert states_equal_dict(adam.model.state_dict(), before)
    # a weights-only file is not a checkpoint
    save_model(trainer.model, tmp_path / "w.npz")
    with pytest.raises(CheckpointError, match="load_model"):
        trainer.load_checkpoint(tmp_path / "w.npz")
    # not a fastconv file / missing file
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a fastconv"):
        trainer.load_checkpoint(tmp_path / "x.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not a readable"):
        trainer.load_checkpoint(tmp_path / "junk.npz")
    whole = (tmp_path / "w.npz").read_bytes()       # a zip archive cut short: BadZipFile inside
    (tmp_path / "cut.npz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(CheckpointError, match="not a readable"):
        trainer.load_checkpoint(tmp_path / "cut.npz")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_model(tmp_path / "cut.npz")
    with pytest.raises(FileNotFoundError):
        trainer.fit((X[:32], y[:32]), epochs=2, resume=tmp_path / "missing.npz")
    with pytest.warns(UserWarning, match="seed"):
        make_trainer(tiny_net()).fit((X[:32], y[:32]), epochs=2, batch_size=32, resume=ck, seed=3)


# ---------------------------------------------------------------- save / load


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_gives_identical_predictions(shapes_small, tmp_path, dtype):
    (X, y), (Xt, yt) = shapes_small
    X, Xt = X[:200].astype(dtype), Xt[:50].astype(dtype)
    model = models.lenet5(dtype=dtype, seed=0)
    trainer = make_trainer(model)
    trainer.fit((X, y[:200]), epochs=1, batch_size=50)
    want = trainer.predict(Xt)
    path = save_model(model, tmp_path / "m.npz", metadata={"builder": "lenet5", "kwargs": {"dtype": np.dtype(dtype).name}})
    assert Path(path).is_file()

    other = models.lenet5(dtype=dtype, seed=123)
    assert not np.array_equal(make_trainer(other).predict(Xt), want)
    assert load_model(path, other) is other
    got = make_trainer(other).predict(Xt)
    assert np.array_equal(got, want)  # bitwise

    rebuilt = load_model(path)  # from the stored builder metadata
    assert np.array_equal(make_trainer(rebuilt).predict(Xt), want)


def test_load_model_wrong_architecture_is_clear(tmp_path):
    model = models.lenet5(seed=0)
    path = save_model(model, tmp_path / "m.npz")
    vgg = models.vgg_small(in_channels=1, input_size=28, seed=0)
    before = vgg.state_dict()
    with pytest.raises(CheckpointError, match="different architecture"):
        load_model(path, vgg)
    assert states_equal_dict(vgg.state_dict(), before)
    wide = models.lenet5(num_classes=7, seed=0)
    with pytest.raises(CheckpointError, match=r"different shape/dtype: 9\.weight"):
        load_model(path, wide)
    with pytest.raises(CheckpointError, match="float64"):
        load_model(path, models.lenet5(dtype=np.float64))
    with pytest.raises(ValueError, match="pass the model"):
        load_model(path)  # no builder metadata
    with pytest.raises(TypeError, match="Module"):
        save_model("model", tmp_path / "x.npz")


def test_training_checkpoint_functions_round_trip(tmp_path):
    model = tiny_net(np.float64, seed=1, batchnorm=True)
    opt = optim.Adam(model.parameters(), lr=0.01)
    sched = optim.StepLR(opt, step_size=1, gamma=0.5)
    trainer = make_trainer(model)
    trainer.optimizer, trainer.scheduler = opt, sched
    X = np.random.default_rng(0).standard_normal((8, 1, 28, 28))
    trainer.fit((X, np.arange(8) % 10), epochs=1, batch_size=4)
    history = {"loss": [1.5], "epochs": 1}
    path = save_training_checkpoint(tmp_path / "ck.npz", model, opt, sched, epoch=3, seed=11, history=history)
    meta = read_checkpoint(path)
    assert meta["format"] == FORMAT and meta["kind"] == "checkpoint" and meta["epoch"] == 3

    other = tiny_net(np.float64, seed=2, batchnorm=True)
    opt2 = optim.Adam(other.parameters(), lr=0.5)
    sched2 = optim.StepLR(opt2, step_size=1, gamma=0.5)
    state = load_training_checkpoint(path, other, opt2, sched2)
    assert state == {"epoch": 3, "seed": 11, "history": history, "plan": None, "metadata": {}}
    assert states_equal(other, model)
    assert opt2.lr == opt.lr and sched2.state_dict() == sched.state_dict()
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["step_count"] == s2["step_count"]
    for a, b in zip(s1["state"], s2["state"]):
        assert all(np.array_equal(a[k], b[k]) for k in a)


def test_file_format_is_versioned(tmp_path):
    path = save_model(tiny_net(), tmp_path / "m.npz")
    assert read_checkpoint(path)["format"] == FORMAT == 1
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays["__meta__"]).decode())
    meta["format"] = FORMAT + 1
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(tmp_path / "future.npz", **arrays)
    with pytest.raises(CheckpointError, match=f"unsupported fastconv file format {FORMAT + 1}"):
        load_model(tmp_path / "future.npz", tiny_net())
    arrays["__meta__"] = np.frombuffer(b"[1, 2]", dtype=np.uint8)
    np.savez(tmp_path / "list.npz", **arrays)
    with pytest.raises(CheckpointError, match="unsupported fastconv file format None"):
        read_checkpoint(tmp_path / "list.npz")
    arrays["__meta__"] = np.frombuffer(b"{not json", dtype=np.uint8)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(CheckpointError, match="corrupt metadata"):
        read_checkpoint(tmp_path / "bad.npz")
