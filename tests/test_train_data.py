"""fastconv.train: what the Trainer checks of its data (non-finite values), and regression."""

import numpy as np
import pytest

from fastconv import nn, optim
from fastconv._args import first_nonfinite
from fastconv.train import Trainer, evaluate
from _trainkit import make_trainer, shapes_small, tiny_net  # noqa: F401  (shapes_small: a fixture)


# ---------------------------------------------------------------- non-finite data


def test_nan_in_training_images_names_the_sample(shapes_small):
    (X, y), _ = shapes_small
    X = X[:64].copy()
    X[37, 0, 3, 5] = np.nan
    trainer = make_trainer(tiny_net())
    before = trainer.model.state_dict()
    with pytest.raises(ValueError, match=r"train: X\[37\] holds nan \(at train: X\[37, 0, 3, 5\]\)") as exc:
        trainer.fit((X, y[:64]), epochs=1, batch_size=16)
    assert "lower the learning rate" not in str(exc.value)
    assert trainer.epoch == 0 and all(np.array_equal(before[k], v) for k, v in trainer.model.state_dict().items())


def test_inf_in_validation_images_and_count(shapes_small):
    (X, y), (Xt, yt) = shapes_small
    Xt = Xt[:40].copy()
    Xt[3, 0, 0, 0] = np.inf
    Xt[20, 0, 1, 1] = -np.inf
    with pytest.raises(ValueError, match=r"val: X\[3\] holds inf .*2 samples hold a NaN or an infinity"):
        make_trainer(tiny_net()).fit((X[:32], y[:32]), epochs=1, val=(Xt, yt[:40]))
    with pytest.raises(ValueError, match=r"data: X\[3\] holds inf"):
        make_trainer(tiny_net()).evaluate((Xt, yt[:40]))


def test_first_nonfinite_scans_in_chunks():
    a = np.zeros((50, 3, 4), np.float32)
    assert first_nonfinite(a) is None
    a[41, 2, 1] = np.nan
    a[45, 0, 0] = np.inf
    assert first_nonfinite(a, chunk=24) == ((41, 2, 1), pytest.approx(np.nan, nan_ok=True), 2)
    assert first_nonfinite(np.array([1.0, -np.inf]))[:2] == ((1,), -np.inf)
    assert first_nonfinite(np.arange(5)) is None  # integers are always finite


# ---------------------------------------------------------------- regression


def _regression_data(n=96, seed=0, dtype=np.float64):
    """Images whose targets are two linear functions of the pixel sums (learnable by a small net)."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, 1, 28, 28)).astype(dtype)
    s = X.reshape(n, -1)
    y = np.stack([s[:, :392].mean(1) - 0.5, s[:, 392:].mean(1) - 0.5], axis=1) * 10
    return X, y.astype(dtype)


def _regressor(dtype=np.float64, outputs=2):
    return nn.Sequential(nn.Conv2D(1, 2, 3, dtype=dtype), nn.ReLU(dtype=dtype), nn.Flatten(dtype=dtype),
                         nn.Linear(2 * 26 * 26, outputs, dtype=dtype), seed=1)


def test_regression_with_mse_loss():
    X, y = _regression_data()
    model = _regressor()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    trainer = Trainer(model, nn.MSELoss(), opt, progress=False)
    h = trainer.fit((X, y), epochs=4, batch_size=16, val=(X[:32], y[:32]))
    assert h.accuracy == [] and h.val_accuracy == [] and len(h.loss) == len(h.val_loss) == 4
    assert h.loss[-1] < h.loss[0]
    ev = trainer.evaluate((X[:32], y[:32]))
    assert set(ev) == {"loss", "n"} and ev["loss"] == pytest.approx(h.val_loss[-1])
    pred = trainer.predict(X[:10])
    assert pred.shape == (10, 2)
    np.testing.assert_allclose(np.mean((pred - y[:10]) ** 2), evaluate(model, (X[:10], y[:10]))["loss"])


def test_regression_epoch_lines_have_no_accuracy(capsys):
    X, y = _regression_data(32)
    model = _regressor()
    trainer = Trainer(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01), progress=False, verbose=True)
    trainer.fit((X, y), epochs=1, batch_size=16, val=(X, y))
    line = capsys.readouterr().out.strip()
    assert line.startswith("epoch 1/1  loss ") and "val_loss" in line and "acc" not in line


def test_regression_target_errors_say_what_to_do(shapes_small):
    X, y = _regression_data(16)
    model = _regressor()
    trainer = Trainer(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01), progress=False)
    with pytest.raises(ValueError, match=r"output for one image has shape \(2,\).*\(N,\) \+ \(2,\)"):
        trainer.fit((X, y[:, 0]), epochs=1)
    with pytest.raises(TypeError, match="y.astype\\(numpy.float64\\)"):
        trainer.fit((X, y.astype(np.float32)), epochs=1)
    with pytest.raises(TypeError, match="for integer class labels use fastconv.nn.SoftmaxCrossEntropy"):
        trainer.fit((X, np.zeros(16, np.int64)), epochs=1)
    bad = y.copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match=r"train: y\[5\] holds nan"):
        trainer.fit((X, bad), epochs=1)
    # a classifier given float targets is told about regression losses
    (Xs, _), _ = shapes_small
    with pytest.raises(TypeError, match="use a regression loss such as fastconv.nn.MSELoss"):
        make_trainer(tiny_net()).fit((Xs[:8], np.zeros(8, np.float32)), epochs=1)


def test_task_from_the_targets_with_another_loss():
    """A loss the trainer does not know: float targets mean regression."""
    class L1(nn.Loss):
        def forward(self, pred, target):
            self._cache = np.sign(pred - target) / pred.size
            return float(np.mean(np.abs(pred - target)))

        def backward(self, grad=1.0):
            return self._cache * grad

    X, y = _regression_data(32)
    model = _regressor()
    trainer = Trainer(model, L1(), optim.SGD(model.parameters(), lr=0.01), progress=False)
    h = trainer.fit((X, y), epochs=1, batch_size=16)
    assert h.accuracy == [] and trainer.predict(X[:3]).shape == (3, 2)
    with pytest.raises(ValueError, match="task"):
        Trainer(model, L1(), optim.SGD(model.parameters(), lr=0.01), task="ranking")
