"""fastconv.train: Trainer fit / evaluate / predict, input checks, progress output.

Callbacks are tested in test_callbacks.py, checkpoints and save / load in
test_checkpoint.py, the batch loader in test_loader.py.
"""

import io
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from fastconv import callbacks, checkpoint, data, models, nn, optim, train
from fastconv.train import History, Trainer
from _trainkit import make_trainer, shapes_small, tiny_net  # noqa: F401  (shapes_small: a fixture)


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


def test_batches_follow_the_epoch_generator_permutation(shapes_small):
    """Epoch e's batches are rows order[i:i + batch_size] of
    order = default_rng([seed, e]).permutation(N), the last one smaller."""
    (X, y), _ = shapes_small
    X, y = X[:50], y[:50]
    seen = []

    class Spy(nn.Module):
        def __init__(self, inner):
            super().__init__(inner.dtype)
            self.inner = inner

        def forward(self, x):
            if self.training:
                seen.append(x.copy())
            return self.inner.forward(x)

        def backward(self, dy):
            return self.inner.backward(dy)

    make_trainer(Spy(tiny_net())).fit((X, y), epochs=2, batch_size=16, seed=5)
    want = []
    for e in range(2):
        order = np.random.default_rng([5, e]).permutation(50)
        want += [X[order[i:i + 16]] for i in range(0, 50, 16)]
    assert [len(b) for b in seen] == [16, 16, 16, 2] * 2
    assert all(np.array_equal(a, b) for a, b in zip(seen, want))


def test_train_module_reexports_its_public_names():
    for name in ("Trainer", "History", "Callback", "EarlyStopping", "ModelCheckpoint", "save_model",
                 "load_model", "read_checkpoint", "CheckpointError"):
        assert name in train.__all__ and hasattr(train, name), name
    for name in ("Callback", "EarlyStopping", "ModelCheckpoint"):
        assert getattr(train, name) is getattr(callbacks, name)
    for name in ("save_model", "load_model", "read_checkpoint", "CheckpointError"):
        assert getattr(train, name) is getattr(checkpoint, name)


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


class _Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self):
        return True


def test_default_progress_draws_the_bar_only_on_a_terminal(shapes_small, capfd, monkeypatch):
    (X, y), _ = shapes_small
    model = tiny_net()
    trainer = Trainer(model, nn.SoftmaxCrossEntropy(), optim.SGD(model.parameters(), lr=0.01))
    assert trainer.progress is None and trainer.verbose is True  # the defaults: automatic bar, lines
    trainer.fit((X[:64], y[:64]), epochs=1, batch_size=32)
    out, err = capfd.readouterr()
    assert err == ""  # stderr is not a terminal: no bar, no \r frames in a log
    assert out.startswith("epoch 1/1")  # the per-epoch line stays
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    trainer.fit((X[:64], y[:64]), epochs=1, batch_size=32)
    assert "epoch 1/1" in term.getvalue() and "img" in term.getvalue()


def test_verbose_and_progress_are_separate(shapes_small, capfd, monkeypatch):
    (X, y), _ = shapes_small
    monkeypatch.setattr(sys, "stderr", _Terminal())
    trainer = make_trainer(tiny_net(), progress=False, verbose=True)  # lines, no bar
    trainer.fit((X[:64], y[:64]), epochs=2, batch_size=32)
    assert sys.stderr.getvalue() == ""
    assert capfd.readouterr().out.splitlines()[1].startswith("epoch 2/2")
    trainer = make_trainer(tiny_net(), progress=True, verbose=False)  # bar, no lines
    trainer.fit((X[:64], y[:64]), epochs=1, batch_size=32)
    assert capfd.readouterr().out == "" and "epoch 1/1" in sys.stderr.getvalue()
    with pytest.raises(TypeError, match="progress must be True, False or None"):
        make_trainer(tiny_net(), progress="yes")
    with pytest.raises(TypeError, match="verbose"):
        make_trainer(tiny_net(), verbose=1)


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
