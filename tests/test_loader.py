"""fastconv._loader.BatchLoader: mini-batches of (X, y), in order or shuffled from a generator."""

import numpy as np
import pytest

from fastconv.data import BatchLoader


def arrays(n=10):
    X = np.arange(n * 6, dtype=np.float32).reshape(n, 1, 2, 3)
    return X, np.arange(n) % 4


@pytest.mark.parametrize("n, b, batches, last", [(10, 3, 4, 1), (10, 5, 2, 5), (10, 10, 1, 10),
                                                 (10, 64, 1, 10), (1, 1, 1, 1)])
def test_len_and_batch_sizes(n, b, batches, last):
    X, y = arrays(n)
    loader = BatchLoader(X, y, b)
    got = list(loader)
    assert len(loader) == len(got) == batches
    assert [len(xb) for xb, _ in got] == [b] * (batches - 1) + [last]
    dropped = BatchLoader(X, y, b, drop_last=True)
    assert len(dropped) == n // b == len(list(dropped))
    assert all(len(xb) == b for xb, _ in dropped)


def test_in_order_batches_are_views():
    X, y = arrays(10)
    got = list(BatchLoader(X, y, 4))
    assert np.array_equal(np.concatenate([xb for xb, _ in got]), X)
    assert np.array_equal(np.concatenate([yb for _, yb in got]), y)
    assert all(np.shares_memory(xb, X) and np.shares_memory(yb, y) for xb, yb in got)


def test_shuffled_batches_follow_the_generator_permutation():
    X, y = arrays(10)
    rng = np.random.default_rng([7, 1])
    got = list(BatchLoader(X, y, 4, shuffle=True, rng=rng))
    order = np.random.default_rng([7, 1]).permutation(10)
    assert [len(xb) for xb, _ in got] == [4, 4, 2]
    for i, (xb, yb) in enumerate(got):
        idx = order[4 * i:4 * i + 4]
        assert np.array_equal(xb, X[idx]) and np.array_equal(yb, y[idx])
        assert xb.flags.c_contiguous and not np.shares_memory(xb, X)
    # the generator is used as given (one permutation drawn), so the caller can keep drawing from it
    after = np.random.default_rng([7, 1])
    after.permutation(10)
    assert rng.random() == after.random()


def test_each_pass_reshuffles_and_int_seeds_reproduce():
    X, y = arrays(20)
    loader = BatchLoader(X, y, 20, shuffle=True, rng=3)
    first, second = next(iter(loader))[1], next(iter(loader))[1]
    assert sorted(first) == sorted(second) == sorted(y)
    assert not np.array_equal(next(iter(BatchLoader(X, None, 20, shuffle=True, rng=3)))[0],
                              next(iter(BatchLoader(X, None, 20, shuffle=True, rng=4)))[0])
    a = [xb for xb, _ in BatchLoader(X, y, 6, shuffle=True, rng=3)]
    b = [xb for xb, _ in BatchLoader(X, y, 6, shuffle=True, rng=3)]
    assert all(np.array_equal(u, v) for u, v in zip(a, b))


def test_without_labels_yields_none():
    X, _ = arrays(5)
    got = list(BatchLoader(X, batch_size=2))
    assert [yb for _, yb in got] == [None, None, None]


def test_bad_arguments():
    X, y = arrays(5)
    with pytest.raises(ValueError, match="batch_size"):
        BatchLoader(X, y, 0)
    with pytest.raises(TypeError, match="batch_size"):
        BatchLoader(X, y, 2.0)
    with pytest.raises(TypeError, match="batch_size"):
        BatchLoader(X, y, True)
    with pytest.raises(ValueError, match="one label per sample"):
        BatchLoader(X, y[:4], 2)
    with pytest.raises(TypeError, match="X must be a numpy.ndarray"):
        BatchLoader(list(X), y, 2)
    with pytest.raises(TypeError, match="y must be"):
        BatchLoader(X, list(y), 2)
    with pytest.raises(TypeError, match="rng"):
        BatchLoader(X, y, 2, shuffle=True, rng=1.5)
    with pytest.raises(ValueError, match="rng"):
        BatchLoader(X, y, 2, shuffle=True, rng=-1)
