"""The implementations timed for the inference cases: a :mod:`fastconv.models` network
(float32, seed 0, eval mode) through its compiled plan (:func:`fastconv.compile`), through
``model.forward``, and, when onnxruntime is installed, through an onnxruntime session on
the ONNX file :func:`fastconv.onnx.save` writes for it (the same weights, the same input).
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from .. import models
from .. import onnx as fc_onnx
from .._runtime import get_num_threads
from ..inference import compile as fc_compile
from .cases import INFER_CASES
from .onnxbench import engine_runners

__all__ = ["infer_impls"]


def infer_impls(name, batch, threads=None, engines=("onnxruntime",)):
    """``(info, impls, notes)`` for inference case ``name`` (an INFER_CASES key) at ``batch``.

    ``impls`` maps ``"plan"``, ``"forward"`` and each of ``engines`` that is installed and
    loads the exported file to an argument-less callable returning the output; ``notes``
    says why an engine is missing. ``info`` holds the input shape and, per implementation,
    the largest difference from ``model.forward``'s output relative to its largest
    magnitude (``rel_diff``). ``threads``: the engines' thread count (default fastconv's).
    """
    shape = INFER_CASES[name]
    model = models.get_model(name, seed=0).eval()
    x = np.random.default_rng(0).standard_normal((batch,) + shape).astype(np.float32)
    plan = fc_compile(model)
    impls = {"plan": lambda: plan(x), "forward": lambda: model.forward(x)}
    notes = {}
    if engines:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, f"{name}.onnx")
            try:
                fc_onnx.save(model, path, input_shape=shape)
            except ImportError as e:
                notes.update({k: f"no onnx package ({e})" for k in engines})
            else:
                for k, (run, note) in engine_runners(path, threads or get_num_threads(), engines).items():
                    if run is None:
                        notes[k] = note
                    else:
                        impls[k] = (lambda r: lambda: r(x))(run)
    want = np.asarray(model.forward(x), np.float64)
    scale = float(np.abs(want).max()) or 1.0
    rel = {k: float(np.abs(np.asarray(f(), np.float64) - want).max()) / scale for k, f in impls.items()}
    info = {"input": [batch, *shape], "rel_diff": rel}
    return info, impls, notes
