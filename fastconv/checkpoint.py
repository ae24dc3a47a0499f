"""The fastconv file format: model weights and resumable training checkpoints (.npz).

A file is an ``.npz`` archive written atomically (a temporary file in the same
folder, fsync, ``os.replace``: :func:`fastconv._fileio.atomic_write`) and read
with ``allow_pickle=False``. Arrays are stored as arrays: the model's
parameters and buffers under ``model/<name>``, the optimiser's and the
scheduler's arrays under ``optimizer/<i>`` and ``scheduler/<i>``. Everything
else is one JSON document (UTF-8 bytes, a uint8 array) under ``__meta__``:

* ``format``: the format version, :data:`FORMAT` (a reader refuses any other);
* ``kind``: ``"model"`` (:func:`save_model`) or ``"checkpoint"``
  (:func:`save_training_checkpoint`);
* ``fastconv``: the version that wrote it; ``model_class``; ``architecture``:
  ``[name, shape, dtype]`` of every entry of the model's ``state_dict``;
* a model file: ``metadata`` (the caller's dict, e.g. the CLI's builder name);
* a checkpoint: ``epoch``, ``seed``, ``history`` (a dict of lists),
  ``optimizer`` and ``scheduler`` (their state dicts, arrays replaced by
  ``{"__array__": key}``, tuples and dicts tagged so they round-trip exactly),
  ``plan`` (``{"epochs": total planned, "batch_size": ...}`` of the run that
  wrote it; absent in older files) and ``metadata`` (the trainer's dict, e.g.
  the CLI's options).

Nothing is ever pickled. Loading checks the stored architecture against the
model first and changes nothing unless everything fits.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from . import models
from ._version import __version__
from ._fileio import atomic_write
from .nn.module import Module

__all__ = [
    "FORMAT",
    "CheckpointError",
    "save_model",
    "load_model",
    "read_checkpoint",
    "read_metadata",
    "save_training_checkpoint",
    "load_training_checkpoint",
    "training_settings",
    "resume_conflicts",
]

#: Version of the file format written (and the only one read).
FORMAT = 1
_META_KEY = "__meta__"
_MODEL_PREFIX = "model/"
_OPT_PREFIX = "optimizer/"
_SCHED_PREFIX = "scheduler/"


#: Codecs of compressed models (registered by fastconv.compressed_io, which the package
#: imports): ``encode(model)`` gives ``(spec, arrays)`` for a model it handles (int8,
#: pruned, binary), else None; ``decode(spec, arrays, model, path)`` rebuilds the model
#: from the spec when ``model`` is None. So such files keep int8 weights as int8, binary
#: weights as bits, and load without the caller rebuilding the network.
MODEL_CODECS = []


class CheckpointError(ValueError):
    """A model or checkpoint file is unreadable, or does not fit the model it is loaded into."""


# ---------------------------------------------------------------- encoding


def _atomic_savez(path, arrays):
    """Write ``arrays`` as an .npz at ``path`` (exact name) atomically and durably."""
    return atomic_write(path, lambda f: np.savez(f, allow_pickle=False, **arrays), "wb", durable=True)


def _to_json(obj, prefix, arrays):
    """JSON-able copy of ``obj``; ndarrays go to ``arrays`` under keys starting with ``prefix``."""
    if isinstance(obj, np.ndarray):
        key = f"{prefix}{len(arrays)}"
        arrays[key] = np.asarray(obj, order="C")
        return {"__array__": key}
    if isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, str):
                raise TypeError(f"cannot store a dict key of type {type(k).__name__} ({k!r}) in a checkpoint")
        return {"__dict__": {k: _to_json(v, prefix, arrays) for k, v in obj.items()}}
    if isinstance(obj, tuple):
        return {"__tuple__": [_to_json(v, prefix, arrays) for v in obj]}
    if isinstance(obj, list):
        return [_to_json(v, prefix, arrays) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} ({obj!r}) in a checkpoint")


def _from_json(obj, arrays):
    if isinstance(obj, dict):
        if "__array__" in obj:
            return np.array(arrays[obj["__array__"]])
        if "__tuple__" in obj:
            return tuple(_from_json(v, arrays) for v in obj["__tuple__"])
        if "__dict__" in obj:
            return {k: _from_json(v, arrays) for k, v in obj["__dict__"].items()}
        return {k: _from_json(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_from_json(v, arrays) for v in obj]
    return obj


def _meta_array(meta):
    return np.frombuffer(json.dumps(meta, allow_nan=True).encode("utf-8"), dtype=np.uint8)


def _check_module(model):
    if not isinstance(model, Module):
        raise TypeError(f"model must be a fastconv.nn.Module, got {type(model).__name__}")


def _header(kind, model):
    return {
        "format": FORMAT,
        "kind": kind,
        "fastconv": __version__,
        "model_class": type(model).__name__,
        "architecture": [[k, list(v.shape), v.dtype.name] for k, v in model.state_dict().items()],
    }


def _model_arrays(model):
    return {_MODEL_PREFIX + k: np.asarray(v, order="C") for k, v in model.state_dict().items()}


# ---------------------------------------------------------------- decoding


def _read(path):
    """(meta dict, {key: array}) of a fastconv .npz file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such model or checkpoint file: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path}: not a readable .npz file ({exc})") from None
    if _META_KEY not in arrays:
        raise CheckpointError(f"{path}: not a fastconv model or checkpoint (no {_META_KEY!r} entry)")
    try:
        meta = json.loads(bytes(arrays.pop(_META_KEY)).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: corrupt metadata ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise CheckpointError(f"{path}: unsupported fastconv file format {found!r}")
    return meta, arrays


def _load_model_state(model, arrays, path):
    """Check the stored architecture against ``model`` and load it (all or nothing)."""
    _check_module(model)
    state = {k[len(_MODEL_PREFIX):]: v for k, v in arrays.items() if k.startswith(_MODEL_PREFIX)}
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k}: file {tuple(state[k].shape)} {state[k].dtype}, model {tuple(v.shape)} {v.dtype}"
        for k, v in own.items()
        if k in state and (state[k].shape != v.shape or state[k].dtype != v.dtype)
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if wrong:
            parts.append("different shape/dtype: " + "; ".join(wrong[:5]) + (" ..." if len(wrong) > 5 else ""))
        raise CheckpointError(
            f"{path} was saved from a different architecture than this {type(model).__name__} "
            f"({', '.join(parts)}); build the same model (layers, sizes, dtype) before loading"
        )
    model.load_state_dict(state)


# ---------------------------------------------------------------- model files


def save_model(model, path, metadata=None):
    """Save ``model``'s parameters and buffers to ``path`` (an .npz, written atomically).

    ``metadata``: an optional JSON-serialisable dict stored alongside (the CLI
    records the builder name and its arguments there, e.g.
    ``{"builder": "lenet5", "kwargs": {"in_channels": 1}}``, which lets
    :func:`load_model` rebuild the network without being given one).
    Returns the path.
    """
    _check_module(model)
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict or None, got {type(metadata).__name__}")
    arrays = _model_arrays(model)
    meta = _header("model", model)
    for codec in MODEL_CODECS:
        enc = codec.encode(model)
        if enc is not None:
            meta["module_spec"], state = enc
            arrays = {_MODEL_PREFIX + k: np.asarray(v, order="C") for k, v in state.items()}
            meta["architecture"] = [[k, list(v.shape), v.dtype.name] for k, v in state.items()]
            break
    meta["metadata"] = _to_json(metadata or {}, "unused/", {})
    arrays[_META_KEY] = _meta_array(meta)
    return _atomic_savez(path, arrays)


def load_model(path, model=None):
    """Load weights saved by :func:`save_model` (or a training checkpoint) into ``model``.

    The stored names, shapes and dtypes must match ``model`` exactly, else a
    :class:`CheckpointError` lists the differences and ``model`` is left
    unchanged. With ``model`` None, the network is rebuilt from the
    ``builder`` / ``kwargs`` metadata that the CLI stores (a
    :mod:`fastconv.models` name). Returns the model; predictions after
    loading are bitwise those of the saved model.
    """
    meta, arrays = _read(path)
    if meta.get("module_spec") is not None:
        state = {k[len(_MODEL_PREFIX):]: v for k, v in arrays.items() if k.startswith(_MODEL_PREFIX)}
        for codec in MODEL_CODECS:
            return codec.decode(meta["module_spec"], state, model, path)
        raise CheckpointError(f"{path} holds a compressed model: import fastconv to read it")
    if model is None:
        info = _from_json(meta.get("metadata", {}), {})
        builder = info.get("builder") if isinstance(info, dict) else None
        if builder is None:
            raise ValueError(
                f"{path} does not say how to build its network: pass the model, e.g. "
                "load_model(path, fastconv.models.lenet5())"
            )
        kwargs = dict(info.get("kwargs", {}))
        if "dtype" in kwargs:
            kwargs["dtype"] = np.dtype(kwargs["dtype"])
        model = models.get_model(builder, **kwargs)
    _load_model_state(model, arrays, path)
    return model


def read_checkpoint(path):
    """The JSON metadata of a model or checkpoint file (epoch, history, optimiser type, ...)."""
    meta, _ = _read(path)
    return meta


def read_metadata(path):
    """The ``metadata`` dict stored in a model file (:func:`save_model`) or a checkpoint
    (the trainer's ``metadata``), decoded; {} when there is none."""
    meta, _ = _read(path)
    info = _from_json(meta.get("metadata") or {}, {})
    return info if isinstance(info, dict) else {}


# ---------------------------------------------------------------- training checkpoints


def save_training_checkpoint(path, model, optimizer, scheduler=None, *, epoch, seed, history,
                             plan=None, metadata=None):
    """Write a resumable checkpoint to ``path`` (.npz, atomically): ``model``'s weights and
    buffers, ``optimizer``'s and ``scheduler``'s state (each a ``state_dict()``; a scheduler
    without one is not stored), the completed ``epoch``, the run's ``seed`` and ``history``
    (a dict of JSON-able values), its ``plan`` (``{"epochs": total, "batch_size": n}``) and
    ``metadata`` (a JSON-able dict, or None). Returns the path."""
    _check_module(model)
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict or None, got {type(metadata).__name__}")
    arrays = _model_arrays(model)
    opt_state = _to_json(optimizer.state_dict(), _OPT_PREFIX, arrays)
    sched_state = None
    if scheduler is not None and hasattr(scheduler, "state_dict"):
        sched_state = _to_json(scheduler.state_dict(), _SCHED_PREFIX, arrays)
    meta = _header("checkpoint", model)
    meta.update(epoch=epoch, seed=seed, optimizer=opt_state, scheduler=sched_state, history=history,
                plan=_to_json(plan, "unused/", {}), metadata=_to_json(metadata or {}, "unused/", {}))
    arrays[_META_KEY] = _meta_array(meta)
    return _atomic_savez(path, arrays)


def load_training_checkpoint(path, model, optimizer, scheduler=None):
    """Restore a checkpoint written by :func:`save_training_checkpoint` into ``model``,
    ``optimizer`` and ``scheduler``; returns ``{"epoch": int, "seed": int or None,
    "history": dict, "plan": dict or None, "metadata": dict}``.

    Everything is checked before anything is changed: a checkpoint of another
    architecture or optimiser is a :class:`CheckpointError` and leaves all three as
    they were.
    """
    meta, arrays = _read(path)
    if meta.get("kind") != "checkpoint":
        raise CheckpointError(
            f"{path} holds only model weights (saved by save_model), not a training checkpoint: "
            "use load_model(path, model) to load it"
        )
    before = model.state_dict()
    opt_state = _from_json(meta["optimizer"], arrays)
    _load_model_state(model, arrays, path)
    try:
        optimizer.load_state_dict(opt_state)
        if scheduler is not None and meta.get("scheduler") is not None:
            scheduler.load_state_dict(_from_json(meta["scheduler"], arrays))
    except (TypeError, ValueError, KeyError) as exc:
        model.load_state_dict(before)
        raise CheckpointError(f"{path}: cannot restore the optimiser or scheduler state: {exc}") from None
    return {"epoch": int(meta["epoch"]), "seed": meta.get("seed"), "history": meta.get("history", {}),
            "plan": _from_json(meta.get("plan"), {}), "metadata": _from_json(meta.get("metadata") or {}, {})}


# ---------------------------------------------------------------- resuming: the run's settings


class _NoArrays(dict):
    """Decoding without the arrays: each array reads as None."""

    def __missing__(self, key):
        return None


def training_settings(path):
    """What a checkpoint says about the run that wrote it, read without changing anything:
    ``{"epoch": completed epochs, "seed", "plan": {"epochs", "batch_size"} or None,
    "metadata": dict, "optimizer": {"type", "hyper", "initial_lr"} (its state_dict without
    the per-parameter state), "scheduler": its state_dict or None}``."""
    meta, _ = _read(path)
    if meta.get("kind") != "checkpoint":
        raise CheckpointError(
            f"{path} holds only model weights (saved by save_model), not a training checkpoint: "
            "use load_model(path, model) to load it"
        )
    opt = _from_json(meta.get("optimizer"), _NoArrays())
    opt = {k: opt.get(k) for k in ("type", "hyper", "initial_lr")} if isinstance(opt, dict) else {}
    return {
        "epoch": int(meta["epoch"]),
        "seed": meta.get("seed"),
        "plan": _from_json(meta.get("plan"), {}),
        "metadata": _from_json(meta.get("metadata") or {}, {}),
        "optimizer": opt,
        "scheduler": _from_json(meta.get("scheduler"), _NoArrays()),
    }


def _same(a, b):
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def resume_conflicts(settings, optimizer, scheduler):
    """How ``optimizer`` and ``scheduler`` (meant to continue the run of ``settings``,
    :func:`training_settings`) differ from that run's: a list of lines "what: yours, the
    checkpoint's run used theirs"; empty when they agree. Compared: the optimiser's type,
    initial learning rate and other settings; the scheduler's presence, type and settings,
    except its position (``last_epoch``) and its length ``T_max`` (see
    :meth:`fastconv.train.Trainer.fit` for how a schedule is re-planned)."""
    out = []
    theirs = settings.get("optimizer") or {}
    mine = optimizer.state_dict() if hasattr(optimizer, "state_dict") else {}
    if theirs.get("type") and mine.get("type") and theirs["type"] != mine["type"]:
        out.append(f"optimizer: yours is {mine['type']}, the checkpoint's run used {theirs['type']}")
    else:
        if "initial_lr" in mine and theirs.get("initial_lr") is not None \
                and not _same(mine["initial_lr"], theirs["initial_lr"]):
            out.append(f"lr: yours is {mine['initial_lr']:g}, the checkpoint's run used {theirs['initial_lr']:g}")
        for k, v in (mine.get("hyper") or {}).items():
            t = (theirs.get("hyper") or {}).get(k)
            if k != "lr" and t is not None and not _same(v, t):
                out.append(f"{k}: yours is {v!r}, the checkpoint's run used {t!r}")
    sched = settings.get("scheduler")
    if scheduler is None and sched is not None:
        out.append(f"scheduler: you pass none, the checkpoint's run used {sched.get('type')}")
    elif scheduler is not None and sched is None and hasattr(scheduler, "state_dict"):
        out.append(f"scheduler: yours is {type(scheduler).__name__}, the checkpoint's run used none")
    elif scheduler is not None and sched is not None and hasattr(scheduler, "state_dict"):
        ms = scheduler.state_dict()
        if ms.get("type") != sched.get("type"):
            out.append(f"scheduler: yours is {ms.get('type')}, the checkpoint's run used {sched.get('type')}")
        else:
            for k, v in ms.items():
                if k not in ("type", "last_epoch", "T_max", "base_lr") and k in sched \
                        and not _same(v, sched[k]):
                    out.append(f"scheduler {k}: yours is {v!r}, the checkpoint's run used {sched[k]!r}")
    return out
