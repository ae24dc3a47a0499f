"""The MPI world of this process: :func:`init`, :func:`rank`, :func:`size`, failing cleanly.

mpi4py is imported by :func:`init` only (never when fastconv is imported), and
only the world communicator is used. Before :func:`init` (or in a process no
launcher started) the world is one process: ``rank() == 0``, ``size() == 1``.
"""

from __future__ import annotations

import sys
import time

from .. import _env

__all__ = ["DistributedError", "init", "rank", "size", "local_size", "is_distributed", "launched",
           "world", "barrier", "fail"]

_HOW = 'pip install "fastconv[mpi]" (mpi4py and an MPI library from wheels)'


class DistributedError(RuntimeError):
    """Data-parallel training was asked for but cannot run (no mpi4py, no launcher, ...)."""


class _World:
    comm = None        # mpi4py's COMM_WORLD once init() ran
    MPI = None         # the mpi4py.MPI module
    rank = 0
    size = 1
    local_size = 1     # ranks on this machine


def launched():
    """``(launcher name, rank, size)`` when an MPI launcher started this process, else None
    (read from the launcher's environment variables by :func:`fastconv._env.mpi_launcher`)."""
    return _env.mpi_launcher()


def init(required=True):
    """Start MPI (once; later calls return at once) and return the world's size.

    A process started by an MPI launcher (``mpiexec -n 4 ...``, ``srun ...``)
    joins its job. ``required``: with no launcher, raise :class:`DistributedError`
    (True) or stay a world of one process without importing mpi4py (False).
    Also a :class:`DistributedError`: mpi4py missing, or an MPI library other than
    the launcher's (the job would be N separate one-process worlds).
    """
    if _World.comm is not None:
        return _World.size
    found = launched()
    if found is None:
        if required:
            raise DistributedError(
                "distributed training needs an MPI launcher: start the command with "
                "`mpiexec -n N ...` (or srun on Slurm); no launcher's variables (PMI_RANK, "
                "OMPI_COMM_WORLD_RANK, SLURM_PROCID, ...) are set in this process")
        return 1
    name, env_rank, env_size = found
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise DistributedError(f"distributed training needs mpi4py ({exc}): {_HOW}") from None
    comm = MPI.COMM_WORLD
    if comm.Get_size() != env_size:
        raise DistributedError(
            f"{name} started this process as rank {env_rank} of {env_size}, but mpi4py's MPI "
            f"({MPI.Get_library_version().splitlines()[0].strip()}) sees a world of "
            f"{comm.Get_size()}: launch with the mpiexec of the MPI library mpi4py uses "
            f"(for the wheels of {_HOW}: the mpiexec installed beside python)")
    _World.MPI = MPI
    _World.comm = comm
    _World.rank = comm.Get_rank()
    _World.size = comm.Get_size()
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    _World.local_size = node.Get_size()
    node.Free()
    return _World.size


def world():
    """mpi4py's world communicator after :func:`init`, else None."""
    return _World.comm


def rank():
    """This process's rank, 0 .. size()-1 (0 before :func:`init` or without MPI)."""
    return _World.rank


def size():
    """The number of processes of the job (1 before :func:`init` or without MPI)."""
    return _World.size


def local_size():
    """The number of processes of the job on this machine (1 without MPI): share the
    machine's cores among them (``fastconv train`` does, when --threads is not given)."""
    return _World.local_size


def is_distributed():
    """True when MPI is initialised with more than one process."""
    return _World.comm is not None and _World.size > 1


def barrier():
    """Wait until every rank gets here (nothing without MPI)."""
    if _World.comm is not None:
        _World.comm.Barrier()


def fail(exc, code=1, *, file=None, show_type=True):
    """Report ``exc`` as the failure of this rank and end the whole job: one line naming
    the rank and the error on stderr, then ``MPI_Abort`` (every rank exits with ``code``,
    none is left waiting in a collective). Without MPI: only the message, then
    ``SystemExit(code)``. ``show_type``: name the exception's type before its message
    (False for errors meant for the user, such as the command's usage errors)."""
    out = file or sys.stderr
    text = " ".join((str(exc).strip() or type(exc).__name__).split())
    where = f"rank {_World.rank} of {_World.size}"
    what = f"{type(exc).__name__}: {text}" if show_type else text
    out.write(f"fastconv: error: {where} failed: {what}\n")  # one write: lines of ranks do not mix
    out.flush()
    if _World.comm is not None and _World.size > 1:
        _let_launcher_forward(out)
        _World.comm.Abort(code)
    raise SystemExit(code)


def _let_launcher_forward(out, limit=1.0, pause=0.05):
    """Give the launcher time to forward the line just written before the job ends.

    A launcher reads each rank's stderr from a pipe; when the abort reaches it in the
    same instant as the line, it can end the job with the line unread (MPICH's
    mpiexec did, about 1 run in 50 here: the job failed with no message at all). So
    wait, at most ``limit`` seconds, until the pipe is empty (Linux: ``FIONREAD``),
    then ``pause`` more for the launcher to pass the line on. A stream that is not a
    pipe (a file, a terminal, none) costs only the pause."""
    deadline = time.monotonic() + limit
    try:
        import fcntl
        import termios
        fd = out.fileno()
        buf = bytearray(4)
        while time.monotonic() < deadline:
            fcntl.ioctl(fd, termios.FIONREAD, buf)
            if int.from_bytes(buf, sys.byteorder) == 0:
                break
            time.sleep(0.005)
    except (ImportError, AttributeError, OSError, ValueError):
        pass  # no fileno (a StringIO), no FIONREAD on this stream or OS: just the pause
    time.sleep(pause)
