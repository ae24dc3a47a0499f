"""The on-disk tuning table that ``algo="auto"`` consults (written by ``fastconv tune``).

This module only stores and reads choices; :mod:`fastconv.tune` measures them
and :mod:`fastconv._dispatch` applies them.

The file is ``$FASTCONV_TUNE_FILE`` when that is set (an empty value turns the
table off), else ``$XDG_CACHE_HOME/fastconv/tune.json`` (by default
``~/.cache/fastconv/tune.json``). It records the CPU, its SIMD level and the
fastconv version it was measured with (:func:`machine`); entries from another
CPU or version are ignored. A missing, unreadable or corrupt file only means
"no tuning": a lookup never fails because of it.

Each entry maps a key (pass, dtype and geometry: :func:`key`) to
``{"algo": ..., "ms": {algo: ms}, "threads": n}``. The thread count is not part
of the key: one choice for every thread count keeps ``auto``'s results bitwise
identical whatever the thread count.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from . import _kernels, _runtime
from ._fileio import atomic_write
from ._version import __version__

__all__ = ["PASSES", "CANDIDATES", "FORMAT", "cache_path", "machine", "key", "lookup", "table", "entries",
           "clear", "forget", "write"]

#: The passes a choice is made for.
PASSES = ("forward", "weight", "data")
#: The algorithms a table entry may name (the whole-C ones; "im2col" runs in NumPy's BLAS).
CANDIDATES = ("direct", "gemm", "winograd")
#: The file format's version.
FORMAT = 1

_cache = None          # (where, {key: algo}) once loaded; where = the env that named the file


def cache_path():
    """The tuning file in use, or None when the table is turned off (``FASTCONV_TUNE_FILE=""``)."""
    env = os.environ.get("FASTCONV_TUNE_FILE")
    if env is not None:
        return Path(env) if env.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fastconv" / "tune.json"


def machine():
    """What a tuning result is valid for: CPU, SIMD level and fastconv version."""
    return f"{_runtime.cpu_name()} | {_kernels.isa()} | fastconv {__version__}"


def key(p, pass_, dtype):
    """The table key of geometry ``p`` (``fastconv._args.ConvParams``), pass and dtype."""
    # The thread count is not part of the key: one choice for every thread count
    # keeps auto's results bitwise identical whatever the thread count (each
    # algorithm's are). The count the layer was tuned at is stored in the entry.
    return (f"{pass_} {np.dtype(dtype).name} "
            f"N{p.N} C{p.C} H{p.H} W{p.W} K{p.K} R{p.R} S{p.S} g{p.groups} "
            f"s{p.stride[0]},{p.stride[1]} p{p.pad_top},{p.pad_bottom},{p.pad_left},{p.pad_right} "
            f"d{p.dilation[0]},{p.dilation[1]}")


def _file_entries(path):
    """The entries of the tuning file at ``path`` when it is in this format and was
    measured on this machine: {key: {"algo": ..., "ms": {algo: ms}, "threads": n}};
    else (absent, unreadable, corrupt, another CPU or version) {}."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("machine") != machine():
        return {}
    found = data.get("entries")
    return dict(found) if isinstance(found, dict) else {}


def _read(path):
    """{key: algo} of the usable entries of the file at ``path``."""
    out = {}
    for k, v in _file_entries(path).items():
        algo = v.get("algo") if isinstance(v, dict) else None
        if isinstance(k, str) and algo in CANDIDATES:
            out[k] = algo
    return out


_NAMES = ("FASTCONV_TUNE_FILE", "XDG_CACHE_HOME", "HOME")   # what cache_path reads


def _where():
    """The raw values of the variables :func:`cache_path` reads (None when unset). Asked on
    every prepared layer call, so it reads the mapping behind ``os.environ`` (CPython's
    ``_data``, keyed by ``encodekey``: the same values ``os.environ.get`` decodes) in about
    a tenth of the time; ``os.environ.get`` where that mapping is not there."""
    env = os.environ
    raw = getattr(env, "_data", None)
    encode = getattr(env, "encodekey", None)
    if type(raw) is dict and encode is not None:
        keys = _raw_keys.get(encode)
        if keys is None:
            keys = _raw_keys[encode] = tuple(encode(n) for n in _NAMES)
        return (raw.get(keys[0]), raw.get(keys[1]), raw.get(keys[2]))
    return tuple(env.get(n) for n in _NAMES)


_raw_keys = {}          # os.environ.encodekey -> the encoded _NAMES


def _load():
    """The table for the current file, read once per process (and again after a
    :func:`write` or :func:`clear`, or when the variables naming the file change)."""
    global _cache
    where = _where()
    if _cache is None or _cache[0] != where:
        path = cache_path()
        _cache = (where, {} if path is None else _read(path))
    return _cache[1]


def lookup(p, pass_, dtype):
    """The tuned algorithm for geometry ``p`` (``fastconv._args.ConvParams``), pass
    ``"forward"``, ``"weight"`` or ``"data"`` and dtype, whatever the thread count (see
    the module docstring); None when untuned."""
    table = _load()
    if not table:
        return None
    return table.get(key(p, pass_, dtype))


def table():
    """The table lookups answer from now ({key: algo}, read once as by :func:`lookup`). It is
    a new object whenever the table is read again, so a caller may keep it and compare by
    identity to learn whether a choice made from it is still current."""
    return _load()


def entries():
    """The tuning file's entries for this machine: {key: {"algo": ..., "ms": {algo: ms},
    "threads": n}} ({} when there is no usable file)."""
    path = cache_path()
    return {} if path is None else _file_entries(path)


def clear():
    """Delete the tuning file; returns True when there was one."""
    global _cache
    _cache = None
    path = cache_path()
    if path is None or not path.exists():
        return False
    path.unlink()
    return True


def forget():
    """Drop the table read into memory: the next lookup reads the file again."""
    global _cache
    _cache = None


def write(new_entries):
    """Merge ``new_entries`` ({key: entry}) into the file (atomically: a temporary file,
    then rename); returns its path. ValueError when the table is turned off."""
    path = cache_path()
    if path is None:
        raise ValueError("the tuning cache is turned off (FASTCONV_TUNE_FILE is empty)")
    merged = entries()
    merged.update(new_entries)
    data = {"format": FORMAT, "machine": machine(), "entries": merged}
    atomic_write(path, lambda f: json.dump(data, f, indent=1, sort_keys=True), "w")
    forget()
    return path
