"""Atomic file writes shared by the checkpoints, saved models, downloads and the
tuning cache."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

_umask_lock = threading.Lock()


def _new_file_mode(path):
    """The mode a file written at ``path`` gets: the mode of the file it replaces, else
    what ``open()`` would give a new file (0o666 less the process umask, e.g. 0o644)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        pass
    with _umask_lock:  # the umask can only be read by setting it
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path, write, mode="wb", durable=False):
    """Write the file at ``path`` all at once or not at all.

    ``write(f)`` fills a temporary file in the same folder (opened with ``mode``), which then
    replaces ``path`` by a rename, so a reader sees the old file or the whole new one, never
    a part; on any error the temporary file is removed and the error raised. ``durable``:
    also flush the data and the rename to disk (fsync) before returning. Returns the Path.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        # mkstemp makes the file 0600; give it the usual mode instead.
        os.fchmod(fd, _new_file_mode(path))
        with os.fdopen(fd, mode) as f:
            write(f)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:
        try:  # make the rename itself durable (not possible everywhere)
            dfd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
    return path
