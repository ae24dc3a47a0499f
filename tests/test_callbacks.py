"""fastconv.callbacks: EarlyStopping, ModelCheckpoint and the callback protocol, with Trainer."""

import numpy as np
import pytest

from fastconv.callbacks import EarlyStopping, ModelCheckpoint
from fastconv.checkpoint import read_checkpoint
from fastconv.train import History
from _trainkit import make_trainer, shapes_small, tiny_net  # noqa: F401  (shapes_small: a fixture)


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
    with pytest.raises(TypeError, match="patience"):
        EarlyStopping(patience=1.5)
    with pytest.raises(TypeError, match="patience"):
        EarlyStopping(patience=True)
    with pytest.raises(ValueError, match="min_delta"):
        EarlyStopping(min_delta=-0.1)
    with pytest.raises(ValueError, match="min_delta"):
        EarlyStopping(min_delta=float("inf"))
    with pytest.raises(TypeError, match="min_delta"):
        EarlyStopping(min_delta="0.1")
    with pytest.raises(TypeError, match="monitor"):
        EarlyStopping(monitor=None)
    es = EarlyStopping(patience=np.int64(2), min_delta=np.float32(0.5))
    assert type(es.patience) is int and es.patience == 2
    assert type(es.min_delta) is float and es.min_delta == 0.5
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


def test_model_checkpoint_arguments(tmp_path):
    cb = ModelCheckpoint(str(tmp_path / "ck.npz"), every=np.int32(3))
    assert cb.path == tmp_path / "ck.npz" and type(cb.every) is int and cb.every == 3
    assert repr(cb) == f"ModelCheckpoint({str(tmp_path / 'ck.npz')!r}, every=3)"
    with pytest.raises(ValueError, match="every"):
        ModelCheckpoint(tmp_path / "ck.npz", every=0)
    with pytest.raises(TypeError, match="every"):
        ModelCheckpoint(tmp_path / "ck.npz", every=1.0)
    with pytest.raises(TypeError, match="path"):
        ModelCheckpoint(3)


def test_model_checkpoint_writes_every_n_epochs_and_at_the_end(shapes_small, tmp_path):
    (X, y), _ = shapes_small
    path = tmp_path / "ck.npz"
    epochs_seen = []

    class Probe:  # runs after ModelCheckpoint in the same epoch: sees what it wrote
        def on_epoch_end(self, trainer, epoch, logs):
            epochs_seen.append(read_checkpoint(path)["epoch"] if path.exists() else None)

    make_trainer(tiny_net()).fit((X[:32], y[:32]), epochs=5, batch_size=32,
                                 callbacks=[ModelCheckpoint(path, every=2), Probe()])
    assert epochs_seen == [None, 2, 2, 4, 4]
    assert read_checkpoint(path)["epoch"] == 5  # and after the last epoch
