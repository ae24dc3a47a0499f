"""fastconv's defaults for other runtimes' variables (OMP_WAIT_POLICY,
OPENBLAS_THREAD_TIMEOUT) and fastconv.blas_info()."""

import json
import os

import numpy as np
import pytest

import fastconv
from fastconv import _env
from conftest import run_python, subprocess_env

_PROBE = ("import json, os, sys; {first}import fastconv; "
          "print(json.dumps({{k: os.environ.get(k) for k in "
          "('OMP_WAIT_POLICY', 'OPENBLAS_THREAD_TIMEOUT')}}))")


def _clean_env(**extra):
    env = subprocess_env(**extra)
    for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_THREAD_TIMEOUT"):
        if k not in extra:
            env.pop(k, None)
    return env


def _probe(first="", **extra):
    res = run_python(["-c", _PROBE.format(first=first)], env=_clean_env(**extra))
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_defaults_set_at_import_before_numpy():
    assert _probe() == {"OMP_WAIT_POLICY": "PASSIVE",
                        "OPENBLAS_THREAD_TIMEOUT": _env.OPENBLAS_TIMEOUT_DEFAULT}


def test_openblas_default_not_set_once_numpy_is_loaded():
    """OpenBLAS read its variables when NumPy loaded it: setting one then would only
    make the environment say something that is not in effect."""
    got = _probe(first="import numpy; ")
    assert got == {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": None}


def test_user_values_are_left_alone():
    got = _probe(OMP_WAIT_POLICY="active", OPENBLAS_THREAD_TIMEOUT="28")
    assert got == {"OMP_WAIT_POLICY": "active", "OPENBLAS_THREAD_TIMEOUT": "28"}
    assert _probe(GOMP_SPINCOUNT="1000")["OMP_WAIT_POLICY"] is None


def test_set_runtime_defaults_on_a_mapping():
    env = {}
    assert _env.set_runtime_defaults(env) == ["OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT"]
    assert env == {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "16"}
    env = {"GOMP_SPINCOUNT": "0"}
    assert _env.set_runtime_defaults(env, blas_loaded=True) == []
    assert env == {"GOMP_SPINCOUNT": "0"}


def test_blas_info_reports_numpy_openblas():
    info = fastconv.blas_info()
    assert isinstance(info, list)
    np_config = np.show_config(mode="dicts")
    blas = np_config.get("Build Dependencies", {}).get("blas", {}).get("name", "")
    if "openblas" not in blas.lower() or not os.path.exists("/proc/self/maps"):
        pytest.skip(f"NumPy's BLAS is {blas!r}, or no /proc here")
    assert info, "NumPy uses OpenBLAS but blas_info() found none"
    for entry in info:
        assert os.path.exists(entry["library"])
        assert entry["num_threads"] is None or entry["num_threads"] >= 1
        assert entry["thread_timeout"] == os.environ.get("OPENBLAS_THREAD_TIMEOUT")
