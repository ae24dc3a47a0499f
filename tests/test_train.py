"""fastconv.train: Trainer fit / evaluate / predict, callbacks, checkpoints, save / load."""

import os
from pathlib import Path

import numpy as np
import pytest

from fastconv import data, models, nn, optim
from fastconv.train import (
    CheckpointError,
    EarlyStopping,
    History,
    ModelCheckpoint,
    Trainer,
    load_model,
    read_checkpoint,
    save_model,
)


@pytest.fixture(scope="module")
def shapes_small():
    return data.shapes_split(1200, 300, seed=3)


def tiny_net(dtype=np.float32, seed=0, classes=10, batchnorm=False):
    """A small conv net (fast): conv 1->4 3x3, [BatchNorm], ReLU, maxpool 2, flatten, linear."""
    layers = [nn.Conv2D(1, 4, 3, dtype=dtype)]
    if batchnorm:
        layers.append(nn.BatchNorm2D(4, dtype=dtype))
    layers += [nn.ReLU(dtype=dtype), nn.MaxPool2D(2, dtype=dtype), nn.Flatten(dtype=dtype),
               nn.Linear(4 * 13 * 13, classes, dtype=dtype)]
    return nn.Sequential(*layers, seed=seed)


def make_trainer(model, lr=0.05, momentum=0.9, scheduler=None, opt="sgd", **kw):
    if opt == "sgd":
        o = optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    else:
        o = optim.Adam(model.parameters(), lr=lr)
    sched = None
    if scheduler == "cosine":
        sched = optim.CosineLR(o, T_max=4)
    elif scheduler == "step":
        sched = optim.StepLR(o, step_size=2, gamma=0.5)
    kw.setdefault("progress", False)
    return Trainer(model, nn.SoftmaxCrossEntropy(), o, scheduler=sched, **kw)


def states_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(np.array_equal(sa[k], sb[k]) for k in sa)


# ---------------------------------------------------------------- fit / evaluate / predict


def test_fit_learns_shapes_and_fills_history(shapes_small):
    (X, y), (Xt, yt) = shapes_small
    X, y = X[:800], y[:800]
    model = models.lenet5(seed=0)
    trainer = make_trainer(model)
    h = trainer.fit((X, y), epochs=2, batch_size=64, val=(Xt, yt), seed=1)
    assert isinstance(h, History)
    assert h.epochs == 2 and trainer.epoch == 2 and not h.stopped_early
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_seconds"):
        assert len(h[key]) == 2, key
    assert set(h.keys()) >= {"loss", "accuracy", "val_loss", "val_accuracy", "images_per_second", "epochs"}
    assert h.images_per_second > 0
    assert h.train_images == 2 * len(X)
    assert h.loss[1] < h.loss[0]
    assert h.val_accuracy[-1] > 0.5  # chance is 0.1
    assert all(0.0 <= a <= 1.0 for a in h.accuracy + h.val_accuracy)
    d = h.to_dict()
    assert d["val_accuracy"] == h.val_accuracy and d["images_per_second"] == h.images_per_second
    # the model's mode and input_grad are what they were before fit
    assert model.training and model.input_grad is False
    # evaluate agrees with the last validation entry (same weights, eval mode)
    ev = trainer.evaluate((Xt, yt))
    assert set(ev) == {"loss", "accuracy", "n"} and ev["n"] == len(Xt)
    assert ev["accuracy"] == pytest.approx(h.val_accuracy[-1])
    assert ev["loss"] == pytest.approx(h.val_loss[-1], rel=1e-5)


def test_fit_without_val_has_empty_val_lists(shapes_small):
    (X, y), _ = shapes_small
    h = make_trainer(tiny_net()).fit((X[:100], y[:100]), epochs=1, batch_size=32)
    assert h.val_loss == [] and h.val_accuracy == [] and len(h.loss) == 1


def test_last_partial_batch_is_used(shapes_small):
    (X, y), _ = shapes_small
    sizes = []

    class Spy(nn.Module):
        def __init__(self, inner):
            super().__init__(inner.dtype)
            self.inner = inner

        def forward(self, x):
            sizes.append(x.shape[0])
            return self.inner.forward(x)

        def backward(self, dy):
            return self.inner.backward(dy)

    trainer = make_trainer(Spy(tiny_net()))
    trainer.fit((X[:70], y[:70]), epochs=1, batch_size=32)
    # first call is the one-image probe that checks the labels against the outputs
    assert sizes[1:] == [32, 32, 6]


def test_batches_are_shuffled_per_epoch_from_seed(shapes_small):
    (X, y), _ = shapes_small
    seen = []

    class Spy(nn.Module):
        def __init__(self, inner):
            super().__init__(inner.dtype)
            self.inner = inner

        def forward(self, x):
            if self.training:
                seen.append(x[:, 0, 14, :].copy())
            return self.inner.forward(x)

        def backward(self, dy):
            return self.inner.backward(dy)

    def run(seed):
        seen.clear()
        make_trainer(Spy(tiny_net())).fit((X[:64], y[:64]), epochs=2, batch_size=64, seed=seed)
        return [s.copy() for s in seen]

    a, b, c = run(0), run(0), run(1)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))  # same seed: same order
    assert not np.array_equal(a[0], a[1])  # a new order each epoch
    assert not np.array_equal(a[0], c[0])  # another seed: another order
    assert not np.array_equal(a[0], X[:64, 0, 14, :])  # shuffled, not the input order


def test_predict_probabilities_and_mode_restored(shapes_small):
    (X, y), (Xt, yt) = shapes_small
    model = tiny_net()
    trainer = make_trainer(model)
    trainer.fit((X[:300], y[:300]), epochs=1, batch_size=50)
    p = trainer.predict(Xt[:37], batch_size=10)
    assert p.shape == (37, 10) and p.dtype == np.float32
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    ev = trainer.evaluate((Xt[:37], yt[:37]))
    assert ev["accuracy"] == pytest.approx(np.mean(p.argmax(1) == yt[:37]))
    model.eval()
    trainer.predict(Xt[:5])
    trainer.evaluate((Xt[:5], yt[:5]))
    assert model.training is False
    model.train()
    trainer.predict(Xt[:5])
    assert model.training is True


def test_augment_is_applied_with_the_epoch_generator(shapes_small):
    (X, y), _ = shapes_small
    calls = []

    def aug(xb, rng):
        assert isinstance(rng, np.random.Generator)
        calls.append(len(xb))
        return xb[..., ::-1].copy()

    make_trainer(tiny_net(), augment=aug).fit((X[:50], y[:50]), epochs=2, batch_size=20)
    assert calls == [20, 20, 10] * 2
    with pytest.raises(TypeError, match="augment"):
        make_trainer(tiny_net(), augment=lambda xb, rng: xb[:1]).fit((X[:50], y[:50]), epochs=1)


def test_scheduler_steps_once_per_epoch(shapes_small):
    (X, y), _ = shapes_small
    trainer = make_trainer(tiny_net(), lr=0.1, scheduler="step")
    h = trainer.fit((X[:40], y[:40]), epochs=4, batch_size=20)
    assert h.lr == pytest.approx([0.1, 0.1, 0.05, 0.05])


# ---------------------------------------------------------------- validation


def test_bad_inputs_are_clear_errors(shapes_small):
    (X, y), _ = shapes_small
    X, y = X[:20], y[:20]
    trainer = make_trainer(tiny_net())
    with pytest.raises(TypeError, match=r"\(X, y\) pair"):
        trainer.fit(X, epochs=1)
    with pytest.raises(ValueError, match="4-d"):
        trainer.fit((X[:, 0], y), epochs=1)
    with pytest.raises(TypeError, match="float64 but the model is float32"):
        trainer.fit((X.astype(np.float64), y), epochs=1)
    with pytest.raises(TypeError, match="float array"):
        trainer.fit((X.astype(np.int32), y), epochs=1)
    with pytest.raises(TypeError, match="integer array"):
        trainer.fit((X, y.astype(np.float32)), epochs=1)
    with pytest.raises(ValueError, match="1-d array of 20 labels"):
        trainer.fit((X, y[:-1]), epochs=1)
    with pytest.raises(ValueError, match="1-d array of 20 labels"):
        trainer.fit((X, y[:, None]), epochs=1)
    bad = y.copy()
    bad[3] = 10
    with pytest.raises(ValueError, match=r"10 outputs; labels must be in \[0, 10\)"):
        trainer.fit((X, bad), epochs=1)
    bad[3] = -1
    with pytest.raises(ValueError, match="labels must be in"):
        trainer.evaluate((X, bad))
    with pytest.raises(ValueError, match="val: y holds labels"):
        trainer.fit((X, y), epochs=1, val=(X, y + 5))
    with pytest.raises(ValueError, match="no images"):
        trainer.fit((X[:0], y[:0]), epochs=1)
    with pytest.raises(ValueError, match="batch_size"):
        trainer.fit((X, y), epochs=1, batch_size=0)
    with pytest.raises(TypeError, match="epochs"):
        trainer.fit((X, y), epochs=1.5)
    with pytest.raises(ValueError, match="4-d"):
        trainer.predict(X[0])
    with pytest.raises(TypeError, match="callbacks"):
        trainer.fit((X, y), epochs=1, callbacks=[object()])
    with pytest.raises(TypeError, match="model"):
        Trainer("not a model", nn.SoftmaxCrossEntropy(), trainer.optimizer)
    assert trainer.epoch == 0  # nothing ran


def test_nonfinite_loss_stops_with_a_hint(shapes_small):
    (X, y), _ = shapes_small
    trainer = make_trainer(tiny_net(), lr=1e30, momentum=0.0)
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        with np.errstate(all="ignore"):
            trainer.fit((X[:64], y[:64]), epochs=3, batch_size=8)


# ---------------------------------------------------------------- progress output


def test_progress_false_prints_nothing(shapes_small, capfd):
    (X, y), (Xt, yt) = shapes_small
    trainer = make_trainer(tiny_net(), progress=False)
    trainer.fit((X[:64], y[:64]), epochs=1, batch_size=32, val=(Xt[:20], yt[:20]))
    trainer.evaluate((Xt[:20], yt[:20]))
    trainer.predict(Xt[:5])
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_progress_true_shows_bar_and_epoch_lines(shapes_small, capfd):
    (X, y), (Xt, yt) = shapes_small
    trainer = make_trainer(tiny_net(), progress=True)
    trainer.fit((X[:64], y[:64]), epochs=2, batch_size=32, val=(Xt[:20], yt[:20]))
    out, err = capfd.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("epoch 1/2") and "val_acc" in lines[0] and "img/s" in lines[0]
    assert "epoch 1/2" in err and "img" in err  # the tqdm bar on stderr (cleared at the end)


# ---------------------------------------------------------------- callbacks


class _Recorder:
    """Keeps the model's weights after every epoch."""

    def __init__(self):
        self.states = {}

    def on_epoch_end(self, trainer, epoch, logs):
        self.states[epoch] = trainer.model.state_dict()
        return False


def test_early_stopping_stops_and_restores_best(shapes_small):
    (X, y), _ = shapes_small
    model = tiny_net()
    trainer = make_trainer(model, lr=0.05, scheduler="cosine")
    rec = _Recorder()
    # the learning rate falls every epoch under the cosine schedule: as a "max" monitor it
    # is best at epoch 1 and never improves, so training stops after `patience` more epochs
    es = EarlyStopping(monitor="lr", mode="max", patience=2, restore_best=True)
    h = trainer.fit((X[:64], y[:64]), epochs=10, batch_size=32, callbacks=[rec, es])
    assert h.epochs == 3 and h.stopped_early and trainer.epoch == 3
    assert es.best_epoch == 1 and es.stopped_epoch == 3
    best = rec.states[1]
    assert all(np.array_equal(v, best[k]) for k, v in model.state_dict().items())
    assert not all(np.array_equal(v, rec.states[3][k]) for k, v in model.state_dict().items())


def test_early_stopping_keeps_last_weights_without_restore(shapes_small):
    (X, y), _ = shapes_small
    model = tiny_net()
    rec = _Recorder()
    es = EarlyStopping(monitor="lr", mode="max", patience=1, restore_best=False)
    h = make_trainer(model, scheduler="cosine").fit((X[:32], y[:32]), epochs=10, batch_size=32,
                                                    callbacks=[rec, es])
    assert h.epochs == 2
    assert all(np.array_equal(v, rec.states[2][k]) for k, v in model.state_dict().items())


class _FakeModel:
    def __init__(self):
        self.w = 0

    def state_dict(self):
        return {"w": self.w}

    def load_state_dict(self, d):
        self.w = d["w"]


class _FakeTrainer:
    def __init__(self):
        self.model = _FakeModel()


@pytest.mark.parametrize(
    "values, patience, min_delta, stop_at, best_epoch",
    [
        ([1.0, 0.5, 0.7, 0.8, 0.9], 2, 0.0, 4, 2),
        ([1.0, 0.5, 0.7, 0.4, 0.45, 0.46], 2, 0.0, 6, 4),
        ([1.0, 0.99, 0.98, 0.97], 2, 0.05, 3, 1),  # improvements smaller than min_delta do not count
        ([1.0, 0.9, 0.8, 0.7], 1, 0.0, None, 4),
        ([1.0, 1.0], 0, 0.0, 2, 1),
    ],
)
def test_early_stopping_rule(values, patience, min_delta, stop_at, best_epoch):
    es = EarlyStopping(monitor="val_loss", patience=patience, min_delta=min_delta)
    tr = _FakeTrainer()
    es.on_train_begin(tr)
    stopped = None
    for epoch, v in enumerate(values, start=1):
        tr.model.w = epoch
        if es.on_epoch_end(tr, epoch, {"val_loss": v}):
            stopped = epoch
            break
    assert stopped == stop_at
    assert es.best_epoch == best_epoch
    h = History(epochs=stopped or len(values))
    es.on_train_end(tr, h)
    assert tr.model.w == best_epoch  # restore_best


def test_early_stopping_accuracy_mode_and_errors(shapes_small):
    assert EarlyStopping(monitor="val_accuracy").mode == "max"
    assert EarlyStopping().mode == "min"
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="up")
    (X, y), _ = shapes_small
    with pytest.raises(ValueError, match="no val"):
        make_trainer(tiny_net()).fit((X[:32], y[:32]), epochs=2, callbacks=[EarlyStopping()])


def test_callback_stop_flag(shapes_small):
    (X, y), _ = shapes_small

    class StopAt2:
        def on_epoch_end(self, trainer, epoch, logs):
            assert {"loss", "accuracy", "lr"} <= set(logs)
            if epoch == 2:
                trainer.stop_training = True

    h = make_trainer(tiny_net()).fit((X[:32], y[:32]), epochs=5, batch_size=32, callbacks=[StopAt2()])
    assert h.epochs == 2 and h.stopped_early


# ---------------------------------------------------------------- checkpoints and resume


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
    with pytest.raises(FileNotFoundError):
        trainer.fit((X[:32], y[:32]), epochs=2, resume=tmp_path / "missing.npz")
    with pytest.warns(UserWarning, match="seed"):
        make_trainer(tiny_net()).fit((X[:32], y[:32]), epochs=2, batch_size=32, resume=ck, seed=3)


def states_equal_dict(a, b):
    return list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)


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


# ---------------------------------------------------------------- real data (slow)


def _mnist_dir():
    env = os.environ.get("FASTCONV_MNIST_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.mark.slow
def test_lenet5_reaches_98_percent_on_real_mnist():
    root = _mnist_dir()
    if not (root / "t10k-images-idx3-ubyte.gz").is_file() and not (root / "t10k-images-idx3-ubyte").is_file():
        pytest.skip(f"real MNIST digits not found in {root} (set FASTCONV_MNIST_DIR to the folder "
                    "holding t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz)")
    X, y = data.mnist(root=root, split="test", download=False)
    (Xtr, ytr), (Xte, yte) = (X[:8000], y[:8000]), (X[8000:], y[8000:])
    model = models.lenet5(seed=0)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    epochs = 5
    trainer = Trainer(model, nn.SoftmaxCrossEntropy(), opt, scheduler=optim.CosineLR(opt, T_max=epochs),
                      progress=False)

    class StopAt98:  # stop as soon as the goal is reached: the test is about reaching it
        def on_epoch_end(self, trainer, epoch, logs):
            return logs["val_accuracy"] >= 0.98

    h = trainer.fit((Xtr, ytr), epochs=epochs, batch_size=64, val=(Xte, yte), callbacks=[StopAt98()])
    acc = trainer.evaluate((Xte, yte))["accuracy"]
    assert h.epochs <= 5
    assert acc >= 0.98, f"test accuracy {acc:.4f} after {h.epochs} epochs (per epoch: {h.val_accuracy})"
