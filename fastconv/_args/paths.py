"""Flags, data values and output paths: checked before any long work starts."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

def as_bool(value, name, allow_none=False):
    """``value`` as a Python bool (``True``/``False`` or a NumPy bool; ``None`` too when
    ``allow_none``, returned as None); ints, strings and other types are rejected."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    what = "True, False or None" if allow_none else "True or False"
    raise TypeError(f"{name} must be {what}, got {type(value).__name__} {value!r}")


def first_nonfinite(a, chunk=1 << 22):
    """``None`` when every value of the float array ``a`` is finite, else ``(index, value,
    rows)``: the index tuple of the first NaN or infinity in C order, its value, and how
    many rows (entries along the first axis) hold one. Scans ``chunk`` values at a time,
    so no temporary of ``a``'s size is made."""
    a = np.asarray(a)
    if a.dtype.kind not in "fc" or a.size == 0:
        return None
    if a.ndim == 0:
        return None if np.isfinite(a) else ((), a.item(), 1)
    flat = a.reshape(a.shape[0], -1)
    step = max(1, chunk // max(1, flat.shape[1]))
    for start in range(0, flat.shape[0], step):
        bad = ~np.isfinite(flat[start:start + step])
        if bad.any():
            r, c = np.unravel_index(int(np.argmax(bad)), bad.shape)
            index = (start + int(r),) + tuple(int(i) for i in np.unravel_index(c, a.shape[1:]))
            rows = int(np.count_nonzero(bad.any(axis=1)))
            for s in range(start + step, flat.shape[0], step):
                rows += int(np.count_nonzero(~np.isfinite(flat[s:s + step]).all(axis=1)))
            return index, a[index].item(), rows
    return None


def _first_existing(path):
    """The nearest of ``path`` and its ancestors that exists."""
    p = path
    while not os.path.lexists(p) and p.parent != p:
        p = p.parent
    return p


def _check_folder_usable(folder, name, path):
    """A file can be created in ``folder`` (which may not exist yet: then its nearest existing
    ancestor must be a writable folder), else ValueError naming option ``name``."""
    base = _first_existing(folder)
    if not base.is_dir():
        raise ValueError(f"{name} {path}: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        if base == folder:
            raise ValueError(f"{name} {path}: cannot write into the folder {base} (permission denied)")
        raise ValueError(f"{name} {path}: cannot create the folder {folder} (no write permission in {base})")


def _as_path(path, name):
    """``path`` (a non-empty str or os.PathLike) as (its text, its Path with ``~`` expanded)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike), got {type(path).__name__}")
    text = os.fspath(path)
    if not text:
        raise ValueError(f"{name} must not be empty")
    return text, Path(text).expanduser()


def output_file(path, name, default_name=None):
    """Check, before any work is done, that a file can be written at ``path`` (a str or
    os.PathLike); returns it as a Path.

    ``path`` naming an existing folder, or ending in a path separator, means a file called
    ``default_name`` inside that folder (a ValueError when ``default_name`` is None). The
    folder must exist or be creatable (its nearest existing ancestor a writable folder),
    and an existing file there is replaced. ``name`` (e.g. "--save") heads the error."""
    text, p = _as_path(path, name)
    if p.is_dir() or text.endswith((os.sep, "/")):
        if default_name is None:
            raise ValueError(f"{name} {text}: is a folder; give a file name")
        p = p / default_name
        if p.is_dir():
            raise ValueError(f"{name} {text}: {p} is a folder; give a file name")
    _check_folder_usable(p.parent, name, text)
    return p


def output_dir(path, name):
    """Check, before any work is done, that ``path`` is a folder or can be created as one;
    returns it as a Path (a ValueError headed by ``name`` when it is an existing file or
    sits under one, or cannot be created)."""
    text, p = _as_path(path, name)
    if p.exists() and not p.is_dir():
        raise ValueError(f"{name} {text}: is a file, not a folder")
    if not p.exists():
        _check_folder_usable(p, name, text)
    return p


def input_file(path, what, suffixes=None, expected=None):
    """``path`` (str or PathLike) as a :class:`~pathlib.Path` to an existing regular file
    whose suffix (any case) is one of ``suffixes`` (when given). ``what`` names it in the
    messages ("the model", "the input"); ``expected`` says what the file should be
    ("a .npy file (numpy.save)"). FileNotFoundError when nothing is there, ValueError
    for a folder or a wrong suffix."""
    _, p = _as_path(path, what)
    if not p.exists():
        raise FileNotFoundError(f"no such {what.split()[-1]} file: {path}")
    if not p.is_file():
        raise ValueError(f"{what} {path} is not a file")
    if suffixes is not None and p.suffix.lower() not in tuple(s.lower() for s in suffixes):
        want = expected or " or ".join(suffixes) + " file"
        raise ValueError(f"{what} {path} must be {want}")
    return p


def samples_array(x, what):
    """Check that the array ``x`` read from a file holds real numbers (integers or
    floats) with samples along its first axis, at least one; ValueError otherwise."""
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{what} is not an array file")
    if x.dtype.kind not in "iuf":
        raise ValueError(f"{what} has dtype {x.dtype}; a real numeric array is needed "
                         "(float32 or float64, or integers)")
    if x.ndim < 2:
        raise ValueError(f"{what} has shape {x.shape}; expected samples along the first axis, "
                         "e.g. (N, C, H, W) (for one image use x[None])")
    if x.shape[0] == 0:
        raise ValueError(f"{what} holds no samples (shape {x.shape})")
    return x
