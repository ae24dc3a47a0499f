"""Trainer.fit(resume=...): extending a run re-plans its schedule; settings that conflict with
the checkpoint's run are errors, never silently replaced."""

import math

import numpy as np
import pytest

from fastconv import nn, optim
from fastconv.checkpoint import CheckpointError, read_checkpoint, read_metadata, training_settings
from fastconv.train import Trainer
from _trainkit import shapes_small, states_equal_dict, tiny_net  # noqa: F401  (shapes_small: a fixture)


def _trainer(lr=0.05, momentum=0.9, T_max=2, scheduler=True, seed=5, **kw):
    model = tiny_net(np.float64, seed=seed)
    opt = optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    sched = optim.CosineLR(opt, T_max=T_max) if scheduler else None
    return Trainer(model, nn.SoftmaxCrossEntropy(), opt, scheduler=sched, progress=False, **kw)


def _cosine(lr, e, T):
    return lr * (1 + math.cos(math.pi * e / T)) / 2


@pytest.fixture
def data(shapes_small):
    (X, y), _ = shapes_small
    return X[:64].astype(np.float64), y[:64]


@pytest.fixture
def two_epochs(data, tmp_path):
    """A checkpoint of a finished 2-epoch run with a 2-epoch cosine schedule."""
    path = tmp_path / "c.npz"
    _trainer(metadata={"note": "run 1"}).fit(data, epochs=2, batch_size=16, checkpoint=path)
    return path


@pytest.mark.parametrize("T_max", [4, 2])  # planned for the new total, or the run's own objects
def test_extending_a_run_replans_its_schedule(data, two_epochs, T_max):
    assert training_settings(two_epochs)["plan"] == {"epochs": 2, "batch_size": 16}
    trainer = _trainer(T_max=T_max)
    h = trainer.fit(data, epochs=4, batch_size=16, resume=two_epochs)
    assert trainer.replanned == (2, 4) and trainer.scheduler.T_max == 4
    assert h.epochs == 4 and len(h.lr) == 4
    assert h.lr[:2] == pytest.approx([0.05, _cosine(0.05, 1, 2)])  # the first run's, as they were
    # epochs 3 and 4 at the 4-epoch schedule's rates, not at lr 0 and climbing back
    assert h.lr[2:] == pytest.approx([_cosine(0.05, 2, 4), _cosine(0.05, 3, 4)])
    assert min(h.lr[2:]) > 0.005


def test_a_resumed_unfinished_run_is_the_uninterrupted_run(data, tmp_path):
    full = _trainer(T_max=4)
    h_full = full.fit(data, epochs=4, batch_size=16)
    path = tmp_path / "c.npz"
    _trainer(T_max=4).fit(data, epochs=4, batch_size=16, checkpoint=path,
                          callbacks=[type("Stop", (), {"on_epoch_end": lambda s, t, e, logs: e == 2})()])
    trainer = _trainer(T_max=4)
    h = trainer.fit(data, epochs=4, batch_size=16, resume=path)
    assert trainer.replanned is None
    assert h.lr == h_full.lr and h.loss == h_full.loss
    assert states_equal_dict(trainer.model.state_dict(), full.model.state_dict())


def test_extending_in_process_with_resume_true(data):
    trainer = _trainer()
    trainer.fit(data, epochs=2, batch_size=16)
    h = trainer.fit(data, epochs=3, batch_size=16, resume=True)
    assert trainer.replanned == (2, 3)
    assert h.lr[2] == pytest.approx(_cosine(0.05, 2, 3))
    with pytest.raises(ValueError, match="completed 3 epochs"):
        trainer.fit(data, epochs=2, resume=True)


@pytest.mark.parametrize("kwargs, message", [
    ({"lr": 0.01}, r"lr: yours is 0.01, the checkpoint's run used 0.05"),
    ({"momentum": 0.5}, r"momentum: yours is 0.5, the checkpoint's run used 0.9"),
    ({"scheduler": False}, r"scheduler: you pass none, the checkpoint's run used CosineLR"),
    ({"T_max": 10}, r"scheduler T_max: yours is 10, the checkpoint's schedule has T_max=2 "
                    r"\(re-planned to the new total 4\)"),
])
def test_conflicting_settings_are_errors_and_change_nothing(data, two_epochs, kwargs, message):
    trainer = _trainer(seed=9, **kwargs)
    before = trainer.model.state_dict()
    lr = trainer.optimizer.lr
    with pytest.raises(CheckpointError, match=message):
        trainer.fit(data, epochs=4, batch_size=16, resume=two_epochs)
    assert states_equal_dict(trainer.model.state_dict(), before) and trainer.optimizer.lr == lr
    assert trainer.epoch == 0


def test_other_optimizer_type_and_fewer_epochs(data, two_epochs):
    model = tiny_net(np.float64, seed=5)
    opt = optim.Adam(model.parameters(), lr=0.05)
    adam = Trainer(model, nn.SoftmaxCrossEntropy(), opt, scheduler=optim.CosineLR(opt, T_max=4), progress=False)
    with pytest.raises(CheckpointError, match="optimizer: yours is Adam, the checkpoint's run used SGD"):
        adam.fit(data, epochs=4, resume=two_epochs)
    with pytest.raises(ValueError, match=r"has completed 2 epochs; epochs=1"):
        _trainer().fit(data, epochs=1, batch_size=16, resume=two_epochs)


def test_another_batch_size_warns(data, two_epochs):
    with pytest.warns(UserWarning, match="batch_size=16 with batch_size=32"):
        _trainer().fit(data, epochs=3, batch_size=32, resume=two_epochs)


def test_load_checkpoint_then_fit_resume_true_replans(data, two_epochs):
    trainer = _trainer(T_max=4)
    assert trainer.load_checkpoint(two_epochs, epochs=4) == 2
    assert trainer.replanned == (2, 4) and trainer.optimizer.lr == pytest.approx(_cosine(0.05, 2, 4))
    trainer.fit(data, epochs=4, batch_size=16, resume=True)
    assert trainer.replanned == (2, 4) and trainer.history.lr[2] == pytest.approx(_cosine(0.05, 2, 4))
    trainer = _trainer(T_max=5)
    assert trainer.load_checkpoint(two_epochs) == 2  # the new total is not known yet
    h = trainer.fit(data, epochs=5, batch_size=16, resume=True)
    assert trainer.replanned == (2, 5) and h.lr[2] == pytest.approx(_cosine(0.05, 2, 5))
    other = _trainer(T_max=7)
    other.load_checkpoint(two_epochs)
    with pytest.raises(CheckpointError, match="T_max: yours is 7"):
        other.fit(data, epochs=5, batch_size=16, resume=True)


def test_checkpoint_keeps_the_trainers_metadata_and_plan(two_epochs, data, tmp_path):
    assert read_metadata(two_epochs) == {"note": "run 1"}
    meta = read_checkpoint(two_epochs)
    assert meta["epoch"] == 2
    path = tmp_path / "c4.npz"
    _trainer().fit(data, epochs=3, batch_size=16, resume=two_epochs, checkpoint=path)
    assert training_settings(path)["plan"] == {"epochs": 3, "batch_size": 16}
    assert training_settings(path)["scheduler"]["T_max"] == 3
