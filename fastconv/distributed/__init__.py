"""Data-parallel training over MPI: several processes, the result of one.

Install the optional extra (mpi4py and the MPICH library, both from wheels)::

    pip install "fastconv[mpi]"
    mpiexec -n 2 fastconv train --model vgg_small

``fastconv train`` and :class:`fastconv.train.Trainer` notice that an MPI
launcher (``mpiexec``, ``mpirun``, Slurm's ``srun``) started them with more
than one process and train data-parallel without any change (``--distributed``
/ ``Trainer(distributed=True)`` insists, and fails with a clear message when
mpi4py or the launcher is missing; ``distributed=False`` never does). mpi4py
is imported only then, never by ``import fastconv``.

Semantics (:class:`DataParallel`):

* every rank holds the whole data set and walks the same shuffled sequence of
  global batches (the same seed); ``batch_size`` is the *global* batch, split
  into contiguous blocks across the ranks (:func:`shard_bounds`);
* each rank's loss gradient is weighted by its share of the global batch (the
  loss is the mean over the global batch, also when the last batch does not
  split evenly), and the gradients are summed over the ranks in a few large
  buffers (:class:`GradientBuckets`, one ``MPI_Allreduce`` per step for every
  built-in model): with the same seed and global batch the weights equal those
  of the one-process run up to summation order (within 1e-9 relative in float64
  for LeNet-5). Dropout masks are drawn per rank, so models with Dropout differ;
* BatchNorm: by default each rank normalises with its own share's statistics
  (as PyTorch's DistributedDataParallel), and rank 0's running statistics are
  copied to the others after every epoch; ``DataParallel(sync_batchnorm=True)``
  (``fastconv train --sync-batchnorm``) uses the statistics of the whole global
  batch (:class:`SyncBatchNorm2D`), which matches one process;
* evaluation is sharded and the sums reduced; the progress bar, the per-epoch
  lines, plots, model files and checkpoints come from rank 0 only (checkpoints
  are written atomically, and a run resumes from one with any number of ranks);
* the per-epoch line and ``History.allreduce_seconds`` give the time spent in
  the gradient allreduce (waiting for the slowest rank included);
* a rank that raises ends the whole job: it prints ``rank R of N failed:
  <error>`` and calls ``MPI_Abort``, so no rank hangs in a collective.

For a training loop of your own: :func:`init`, :func:`broadcast_parameters`
once, :func:`shard` for your data, and :func:`allreduce_gradients` between
``backward`` and ``optimizer.step()``. See docs/distributed.md for the
allreduce volume of each built-in model and the cost on a cluster.
"""

from __future__ import annotations

from .comm import (
    DistributedError,
    barrier,
    fail,
    init,
    is_distributed,
    launched,
    local_size,
    rank,
    size,
)
from .grads import GradientBuckets, allreduce_gradients, broadcast_parameters, shard, shard_bounds
from .overlap import OverlappedBuckets
from .parallel import DataParallel, from_option
from .syncbn import SyncBatchNorm2D, convert_sync_batchnorm, restore_batchnorm

__all__ = [
    "DistributedError",
    "init",
    "rank",
    "size",
    "local_size",
    "is_distributed",
    "launched",
    "barrier",
    "fail",
    "broadcast_parameters",
    "allreduce_gradients",
    "GradientBuckets",
    "OverlappedBuckets",
    "shard",
    "shard_bounds",
    "DataParallel",
    "from_option",
    "SyncBatchNorm2D",
    "convert_sync_batchnorm",
    "restore_batchnorm",
]
