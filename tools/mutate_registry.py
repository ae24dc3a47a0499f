"""The mutation registry and the patching helpers the catalogue (tools/mutations.py)
is written with; tools/mutate.py runs it. See tools/mutate.py for how a mutation runs."""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys

MUTATIONS = {}
_HITS = [0]


def _hit():
    _HITS[0] += 1


def mutation(name, finding, files, no_torch=False):
    """Register ``fn`` (which applies the mutation) under ``name``: ``finding`` is the
    issue-17 item it demonstrates, ``files`` the test files that should catch it."""
    def register(fn):
        MUTATIONS[name] = dict(apply=fn, finding=str(finding), files=list(files),
                               no_torch=no_torch, doc=(fn.__doc__ or "").strip())
        return fn
    return register


# ---- patching helpers ----------------------------------------------------------------

def _replace(module, attr, make):
    """module.attr = make(original); every fastconv module holding the same object
    (fastconv re-exports fastconv.functional's functions) gets the replacement too."""
    import fastconv

    orig = getattr(module, attr)
    new = make(orig)
    with contextlib.suppress(AttributeError, TypeError):
        functools.update_wrapper(new, orig)
    for mod in {id(m): m for m in (module, fastconv, *_fastconv_modules())}.values():
        if getattr(mod, attr, None) is orig:
            setattr(mod, attr, new)
    return orig


def _fastconv_modules():
    return [m for n, m in list(sys.modules.items()) if n == "fastconv" or n.startswith("fastconv.")]


def _public(attr, make):
    import fastconv.functional as F
    return _replace(F, attr, make)


def _args(fn, args, kwargs):
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    return bound.arguments


def _integer_valued(*arrays):
    """Every finite element of every array is an integer."""
    import numpy as np
    with np.errstate(invalid="ignore"):
        return all(np.array_equal(a[np.isfinite(a)], np.rint(a[np.isfinite(a)]))
                   for a in arrays if a is not None)


def _f32_real_data(a, *arrays):
    """float32 results of data that is not integer-valued. The mutations that measure the
    float32 tolerances act only there: integer-valued data makes every sum exact, is
    compared exactly elsewhere, and would catch them whatever the tolerances."""
    import numpy as np
    return a.dtype == np.float32 and not _integer_valued(*arrays)


def _backward_wrapper(change):
    """Wrap conv2d_backward; ``change(orig, a, dx, dw, db)`` returns the wrong (dx, dw, db)
    or None to leave the call alone."""
    def make(orig):
        def wrong(*args, **kwargs):
            dx, dw, db = orig(*args, **kwargs)
            out = change(orig, _args(orig, args, kwargs), dx, dw, db)
            if out is None:
                return dx, dw, db
            _hit()
            return out
        return wrong
    return make


def _again(orig, a, **changes):
    """Call conv2d_backward again with some arguments changed."""
    kw = dict(a)
    kw.update(changes)
    return orig(kw.pop("dy"), kw.pop("x"), kw.pop("w"), **kw)
