"""Atomic file writes shared by the checkpoints (train.py) and the tuning cache (tune.py)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


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
