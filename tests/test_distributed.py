"""fastconv.distributed: real 2-rank MPI jobs (``mpiexec -n 2``) against one process.

The jobs need mpi4py and an MPI launcher (``pip install "fastconv[mpi]"``); where
mpiexec cannot start a 2-rank job the MPI tests are skipped, saying why.
"""

import functools
import os
import textwrap
import time

import numpy as np
import pytest

from conftest import mpiexec_path, run_mpi, run_python, subprocess_env
from fastconv import _env
from fastconv.distributed import DataParallel, from_option, shard, shard_bounds

LAUNCHER_VARS = [v for _, r, s in _env.LAUNCHER_VARIABLES for v in (r, s)]


def clean_env(**extra):
    """The child's environment without any MPI launcher's variables (a process started
    by hand), one kernel thread."""
    env = subprocess_env(FASTCONV_NUM_THREADS="1")
    for v in LAUNCHER_VARS + ["PMI_FD", "PMI_PORT", "PMIX_NAMESPACE"]:
        env.pop(v, None)
    env.update(extra)
    return env


@functools.lru_cache(maxsize=None)
def _mpi_problem():
    if mpiexec_path() is None:
        return "no mpiexec on PATH or beside python (pip install \"fastconv[mpi]\")"
    try:
        res = run_mpi(2, ["-c", "from mpi4py import MPI; c = MPI.COMM_WORLD; "
                                "s = c.allreduce(1); c.Get_rank() or print(c.Get_size(), s)"],
                      env=clean_env(), timeout=60)
    except Exception as exc:  # noqa: BLE001 - any failure to start is a reason to skip
        return f"mpiexec -n 2 cannot start: {exc}"
    if res.returncode != 0 or res.stdout.split() != ["2", "2"]:  # world size, sum of ones
        return f"mpiexec -n 2 python (mpi4py) does not run a 2-rank job: {res.stderr.strip()[:300]}"
    return None


@pytest.fixture
def mpi():
    problem = _mpi_problem()
    if problem:
        pytest.skip(problem)


def mpi_script(tmp_path, body, n=2, timeout=120):
    path = tmp_path / "job.py"
    path.write_text(textwrap.dedent(body))
    return run_mpi(n, [str(path)], env=clean_env(), cwd=tmp_path, timeout=timeout)


def weights(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files if k.startswith("model/")}


def assert_same_weights(a, b, rtol):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        scale = np.abs(wa[k]).max()
        err = np.abs(wa[k] - wb[k]).max() / scale
        assert err <= rtol, f"{k}: relative difference {err:.3g} > {rtol}"


# ------------------------------------------------------------------ no MPI needed


def test_shard_bounds_cover_every_row_once():
    for n in (0, 1, 5, 45, 64):
        for size in (1, 2, 3, 7):
            bounds = [shard_bounds(n, r, size) for r in range(size)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(bounds[i][1] == bounds[i + 1][0] for i in range(size - 1))
            assert max(b - a for a, b in bounds) - min(b - a for a, b in bounds) <= 1
    X, y = np.arange(10)[:, None], np.arange(10)
    xs, ys = shard(X, y, rank=1, size=3)
    assert xs[:, 0].tolist() == ys.tolist() == [3, 4, 5]
    with pytest.raises(ValueError, match="rank must be in"):
        shard_bounds(10, 3, 3)
    with pytest.raises(ValueError, match="one row per row"):
        shard(X, y[:3])


def test_launcher_detection(monkeypatch):
    for v in LAUNCHER_VARS:
        monkeypatch.delenv(v, raising=False)
    assert _env.mpi_launcher() is None
    assert from_option(None) is None and from_option(False) is None
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "1")
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    assert _env.mpi_launcher() == ("Open MPI", 1, 4)
    monkeypatch.setenv("PMI_RANK", "0")
    monkeypatch.setenv("PMI_SIZE", "x")
    with pytest.raises(_env.EnvironmentVariableError, match="PMI_SIZE='x'"):
        _env.mpi_launcher()
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setenv("PMI_RANK", "2")
    with pytest.raises(_env.EnvironmentVariableError, match=r"a rank in \[0, PMI_SIZE=2\)"):
        _env.mpi_launcher()


def test_required_without_launcher_is_a_clear_error(monkeypatch):
    from fastconv.distributed import DistributedError

    for v in LAUNCHER_VARS:
        monkeypatch.delenv(v, raising=False)
    with pytest.raises(DistributedError, match="needs an MPI launcher: start the command with `mpiexec -n N"):
        DataParallel(required=True)
    with pytest.raises(TypeError, match="distributed must be None, True, False"):
        from_option("yes")


def _unread(fd):
    import fcntl
    import sys
    import termios

    buf = bytearray(4)
    fcntl.ioctl(fd, termios.FIONREAD, buf)
    return int.from_bytes(buf, sys.byteorder)


@pytest.mark.skipif(os.name != "posix", reason="FIONREAD on a pipe: POSIX only")
def test_failing_rank_waits_until_the_launcher_read_its_line():
    """Before MPI_Abort, fail() waits until the rank's stderr pipe is empty (MPICH's
    mpiexec could end the job with the line unread): it returns only once a reader took
    the line, at its limit when nobody reads, and at once on a stream that is no pipe."""
    import io
    import threading

    from fastconv.distributed import comm

    r, w = os.pipe()
    with os.fdopen(w, "w") as out, os.fdopen(r, "r") as inp:
        line = "fastconv: error: rank 1 of 2 failed: ValueError: boom\n"
        out.write(line)
        out.flush()
        got = []
        reader = threading.Thread(target=lambda: (time.sleep(0.2), got.append(inp.readline())))
        reader.start()
        comm._let_launcher_forward(out, limit=60.0, pause=0.0)
        assert _unread(w) == 0          # the reader had the line when the wait ended
        reader.join()
        assert got == [line]
        out.write("nobody reads this\n")
        out.flush()
        comm._let_launcher_forward(out, limit=0.05, pause=0.0)   # returns at the limit
        assert _unread(w) > 0
    comm._let_launcher_forward(io.StringIO(), limit=60.0, pause=0.0)


def test_cli_distributed_without_launcher(tmp_path):
    res = run_python(["-m", "fastconv", "train", "--distributed", "--epochs", "1", "--train-size", "64",
                      "--test-size", "32", "--no-save"], env=clean_env(), cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert res.stderr.startswith("fastconv: error: --distributed: distributed training needs an MPI "
                                 "launcher"), res.stderr
    assert res.stdout == ""


def test_cli_without_mpi4py_says_how_to_install_it(tmp_path):
    """A launcher's variables but no mpi4py (a stand-in package that fails to import)."""
    fake = tmp_path / "fake" / "mpi4py"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named mpi4py.MPI (stand-in)')\n")
    env = clean_env(PMI_RANK="0", PMI_SIZE="2")
    env["PYTHONPATH"] = str(fake.parent) + os.pathsep + env["PYTHONPATH"]
    res = run_python(["-m", "fastconv", "train", "--epochs", "1", "--no-save"], env=env, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert res.stderr.strip() == ("fastconv: error: distributed training needs mpi4py (No module named "
                                  'mpi4py.MPI (stand-in)): pip install "fastconv[mpi]" (mpi4py and an '
                                  "MPI library from wheels)")


# ------------------------------------------------------------------ 2-rank jobs

LENET = ["--model", "lenet5", "--dataset", "shapes", "--dtype", "float64", "--epochs", "2",
         "--train-size", "600", "--test-size", "150", "--batch-size", "45", "--lr", "0.05",
         "--no-progress"]


def test_lenet5_two_ranks_equal_one_process(mpi, tmp_path):
    """The issue's target: 2 ranks give the weights of one process within 1e-9 relative.
    600 images in batches of 45: the last batch of 15 splits 7 / 8, unevenly."""
    one = run_python(["-m", "fastconv", "train", *LENET, "--save", "one.npz"], env=clean_env(),
                     cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    two = run_mpi(2, ["-m", "fastconv", "train", *LENET, "--save", "two.npz"], env=clean_env(),
                  cwd=tmp_path)
    assert two.returncode == 0, two.stderr
    assert_same_weights(tmp_path / "one.npz", tmp_path / "two.npz", 1e-9)
    # rank 0 alone prints: each line once, and the per-epoch lines report the allreduce
    assert two.stdout.count("test accuracy:") == 1 and two.stdout.count("model saved to") == 1
    assert "2 ranks x 1 thread" in two.stdout
    assert two.stdout.count("allreduce ") == 2
    acc = [ln for ln in one.stdout.splitlines() if ln.startswith("test accuracy")]
    assert acc == [ln for ln in two.stdout.splitlines() if ln.startswith("test accuracy")]


def test_buckets_broadcast_and_allreduce(mpi, tmp_path):
    res = mpi_script(tmp_path, """
        import numpy as np
        from fastconv import distributed as dist, models
        dist.init()
        r, n = dist.rank(), dist.size()
        m = models.lenet5(dtype=np.float64, seed=r)          # different weights per rank
        dist.broadcast_parameters(m)
        ref = models.lenet5(dtype=np.float64, seed=0)
        assert all(np.array_equal(a.data, b.data) for a, b in zip(m.parameters(), ref.parameters()))
        grads = {}
        for k in range(n):
            g = np.random.default_rng([k, 7])
            grads[k] = [g.standard_normal(p.shape) for p in m.parameters()]
        for p, g in zip(m.parameters(), grads[r]):
            p.grad[...] = g
        # 431k float64 (3.4 MB) in buckets of at most 0.5 MB, backward order (a tensor larger
        # than a bucket gets one of its own): [fc2.b fc2.w fc1.b] [fc1.w] [conv2.b conv2.w conv1.b conv1.w]
        b = dist.allreduce_gradients(m, bucket_mb=0.5)
        assert [len(g) for g in b.groups] == [3, 1, 4] and b.calls == 3, ([len(g) for g in b.groups], b.calls)
        assert [buf.size for buf in b.buffers] == [5510, 400000, 25570]
        for i, p in enumerate(m.parameters()):
            want = sum(grads[k][i] for k in range(n)) / n
            np.testing.assert_allclose(p.grad, want, rtol=1e-15, atol=1e-15)
        one = dist.allreduce_gradients(models.lenet5(dtype=np.float64), average=False)
        assert one.num_buckets == 1
        print("OK", r)
    """)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("OK") == 2   # one per rank (their lines may interleave)


SYNC_BN_JOB = """
    import numpy as np
    from fastconv import distributed as dist, nn, optim
    from fastconv.train import Trainer

    def net():
        kw = dict(dtype=np.float64)
        return nn.Sequential(nn.Conv2D(1, 4, 3, padding=1, seed=1, **kw), nn.BatchNorm2D(4, **kw),
                             nn.ReLU(**kw), nn.Conv2D(4, 4, 3, seed=2, **kw), nn.BatchNorm2D(4, **kw),
                             nn.ReLU(**kw), nn.Flatten(**kw), nn.Linear(4 * 6 * 6, 3, seed=3, **kw))

    g = np.random.default_rng(0)
    X = g.standard_normal((41, 1, 8, 8))      # batches of 8: the last one, of 1, leaves rank 1 idle
    y = g.integers(0, 3, 41)

    def train(distributed):
        m = net()
        opt = optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        t = Trainer(m, nn.SoftmaxCrossEntropy(), opt, progress=False, verbose=False,
                    distributed=distributed)
        h = t.fit((X, y), epochs=2, batch_size=8, val=(X[:11], y[:11]), seed=3)
        return m, h

    sync, hs = train(dist.DataParallel(sync_batchnorm=True))
    # the allreduce overlapped with backward, in 4 buckets (of at most 2 KB): the same sums
    over, ho = train(dist.DataParallel(sync_batchnorm=True, overlap=True, bucket_mb=0.002))
    assert all("backward" not in mod.__dict__ for mod in over.modules())     # hooks removed
    local, _ = train(dist.DataParallel())
    # with local statistics, an idle rank and buckets that end inside a layer: same order of calls
    local_over, _ = train(dist.DataParallel(overlap=True, bucket_mb=0.0005))
    one, h1 = train(False)
    assert all(type(mod).__name__ != "SyncBatchNorm2D" for mod in sync.modules())
    def rel(a, b):   # relative to the array's largest value, or to 1 for a bias that stays ~0
        return max(np.abs(a[k] - b[k]).max() / max(np.abs(b[k]).max(), 1.0) for k in b)
    e_sync = rel(sync.state_dict(), one.state_dict())
    e_local = rel(local.state_dict(), one.state_dict())
    assert e_sync < 1e-9, e_sync
    assert rel(over.state_dict(), sync.state_dict()) == 0.0
    assert ho.loss == hs.loss
    assert rel(local_over.state_dict(), local.state_dict()) == 0.0
    assert e_local > 1e-6, e_local               # per-rank statistics do differ
    np.testing.assert_allclose(hs.loss, h1.loss, rtol=1e-9)
    np.testing.assert_allclose(hs.val_loss, h1.val_loss, rtol=1e-9)
    assert hs.val_accuracy == h1.val_accuracy and len(hs.allreduce_seconds) == 2
    print("OK", e_sync, e_local)
"""


def test_sync_batchnorm_and_overlap_equal_one_process(mpi, tmp_path):
    res = mpi_script(tmp_path, SYNC_BN_JOB)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("OK") == 2


def test_a_failing_rank_ends_the_job_naming_it(mpi, tmp_path):
    t0 = time.perf_counter()
    res = mpi_script(tmp_path, """
        import numpy as np
        from fastconv import distributed as dist, models, nn, optim
        from fastconv.train import Trainer

        calls = [0]
        def augment(xb, rng):
            calls[0] += 1
            if dist.rank() == 1 and calls[0] == 3:
                raise ValueError("boom in the augmentation")
            return xb

        g = np.random.default_rng(0)
        X, y = g.standard_normal((64, 1, 28, 28)).astype(np.float32), g.integers(0, 10, 64)
        m = models.lenet5()
        t = Trainer(m, nn.SoftmaxCrossEntropy(), optim.SGD(m.parameters(), lr=0.01), progress=False,
                    augment=augment)
        t.fit((X, y), epochs=5, batch_size=8)
        print("finished")
    """, timeout=60)
    assert res.returncode != 0
    assert "finished" not in res.stdout
    assert "fastconv: error: rank 1 of 2 failed: ValueError: boom in the augmentation" in res.stderr
    assert "Traceback" not in res.stderr
    assert time.perf_counter() - t0 < 60


def test_resume_with_another_number_of_ranks(mpi, tmp_path):
    """2 ranks train epoch 1 and checkpoint; one process resumes for epoch 2: the weights
    of one process running both epochs."""
    opts = list(LENET)
    opts[opts.index("--epochs") + 1] = "1"
    two = run_mpi(2, ["-m", "fastconv", "train", *opts, "--checkpoint", "ck.npz", "--no-save"],
                  env=clean_env(), cwd=tmp_path)
    assert two.returncode == 0, two.stderr
    res = run_python(["-m", "fastconv", "train", "--resume", "ck.npz", "--epochs", "2", "--no-progress",
                      "--save", "resumed.npz"], env=clean_env(), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    one = run_python(["-m", "fastconv", "train", *LENET, "--save", "one.npz"], env=clean_env(),
                     cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    assert_same_weights(tmp_path / "one.npz", tmp_path / "resumed.npz", 1e-9)


@pytest.mark.slow
def test_a_killed_rank_leaves_a_resumable_checkpoint(mpi, tmp_path):
    res = mpi_script(tmp_path, """
        import os, signal
        import numpy as np
        from fastconv import distributed as dist, models, nn, optim
        from fastconv.train import Trainer

        class Kill:
            def on_epoch_end(self, trainer, epoch, logs):
                if epoch == 2 and dist.rank() == 1:
                    os.kill(os.getpid(), signal.SIGKILL)

        g = np.random.default_rng(0)
        X, y = g.standard_normal((96, 1, 28, 28)), g.integers(0, 10, 96)
        m = models.lenet5(dtype=np.float64)
        t = Trainer(m, nn.SoftmaxCrossEntropy(), optim.SGD(m.parameters(), lr=0.01), progress=False)
        t.fit((X, y), epochs=6, batch_size=16, checkpoint="ck.npz", callbacks=[Kill()])
        print("finished")
    """, timeout=90)
    assert res.returncode != 0 and "finished" not in res.stdout
    from fastconv.checkpoint import read_checkpoint

    assert read_checkpoint(tmp_path / "ck.npz")["epoch"] in (1, 2, 3)
    # rank 0 may have been killed while writing the next checkpoint: only its temporary file is left
    others = [f for f in os.listdir(tmp_path) if f not in ("ck.npz", "job.py")]
    assert all(f.startswith(".ck.npz.") and f.endswith(".tmp") for f in others), others
    res = run_python(["-c", textwrap.dedent("""
        import numpy as np
        from fastconv import models, nn, optim
        from fastconv.train import Trainer
        g = np.random.default_rng(0)
        X, y = g.standard_normal((96, 1, 28, 28)), g.integers(0, 10, 96)
        m = models.lenet5(dtype=np.float64)
        t = Trainer(m, nn.SoftmaxCrossEntropy(), optim.SGD(m.parameters(), lr=0.01), progress=False)
        h = t.fit((X, y), epochs=6, batch_size=16, resume="ck.npz")
        print(h.epochs)
    """)], env=clean_env(), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["6"]
