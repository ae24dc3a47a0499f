"""fastconv's defaults for other runtimes' variables (GOMP_SPINCOUNT,
OMP_WAIT_POLICY, OPENBLAS_THREAD_TIMEOUT) and fastconv.blas_info()."""

import json
import os

import numpy as np
import pytest

import fastconv
from fastconv import _env
from conftest import run_python, subprocess_env

_PROBE = ("import json, os, sys; {first}import fastconv; "
          "print(json.dumps({{k: os.environ.get(k) for k in "
          "('GOMP_SPINCOUNT', 'OMP_WAIT_POLICY', 'OPENBLAS_THREAD_TIMEOUT')}}), "
          "fastconv._runtime.MIN_PARALLEL_CONV_WORK)")


def _clean_env(**extra):
    env = subprocess_env(**extra)
    for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_THREAD_TIMEOUT"):
        if k not in extra:
            env.pop(k, None)
    return env


def _probe(first="", **extra):
    """(the three variables after ``import fastconv``, the conv serial threshold)."""
    res = run_python(["-c", _PROBE.format(first=first)], env=_clean_env(**extra))
    assert res.returncode == 0, res.stderr
    got, threshold = res.stdout.strip().splitlines()[-1].rsplit(" ", 1)
    return json.loads(got), int(threshold)


_SPIN = 1 << 20      # the conv serial threshold when idle threads spin before sleeping
_SLEEP = 1 << 23     # ... when they sleep at once


def test_defaults_set_at_import_before_numpy():
    assert _probe() == ({"GOMP_SPINCOUNT": _env.GOMP_SPINCOUNT_DEFAULT,
                         "OMP_WAIT_POLICY": "PASSIVE",
                         "OPENBLAS_THREAD_TIMEOUT": _env.OPENBLAS_TIMEOUT_DEFAULT}, _SPIN)


def test_openblas_default_not_set_once_numpy_is_loaded():
    """OpenBLAS read its variables when NumPy loaded it: setting one then would only
    make the environment say something that is not in effect."""
    got, _ = _probe(first="import numpy; ")
    assert got == {"GOMP_SPINCOUNT": _env.GOMP_SPINCOUNT_DEFAULT,
                   "OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": None}


def test_user_values_are_left_alone_and_set_the_threshold():
    """The user's OpenMP wait settings stand, and the conv serial threshold follows
    what they mean: threads that sleep at once cost a wake-up per parallel call."""
    got, threshold = _probe(OMP_WAIT_POLICY="active", OPENBLAS_THREAD_TIMEOUT="28")
    assert got == {"GOMP_SPINCOUNT": None, "OMP_WAIT_POLICY": "active",
                   "OPENBLAS_THREAD_TIMEOUT": "28"}
    assert threshold == _SPIN
    got, threshold = _probe(OMP_WAIT_POLICY="passive")
    assert got["GOMP_SPINCOUNT"] is None and threshold == _SLEEP
    got, threshold = _probe(GOMP_SPINCOUNT="1000")
    assert got["OMP_WAIT_POLICY"] is None and threshold == _SPIN
    assert _probe(GOMP_SPINCOUNT="0")[1] == _SLEEP


@pytest.mark.parametrize("env, spins", [
    ({}, True),                                          # GNU OpenMP's own default spins
    ({"OMP_WAIT_POLICY": "PASSIVE"}, False),
    ({"OMP_WAIT_POLICY": " passive "}, False),
    ({"OMP_WAIT_POLICY": "active"}, True),
    ({"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "4000"}, True),   # the count wins
    ({"OMP_WAIT_POLICY": "active", "GOMP_SPINCOUNT": "0"}, False),
    ({"GOMP_SPINCOUNT": "2k"}, True),
    ({"GOMP_SPINCOUNT": "infinite"}, True),
    ({"OMP_WAIT_POLICY": "passive", "GOMP_SPINCOUNT": "lots"}, False),  # ignored, as GNU OpenMP does
])
def test_openmp_threads_spin_reads_the_variables_as_gnu_openmp_does(env, spins):
    assert _env.openmp_threads_spin(env) is spins


def test_set_runtime_defaults_on_a_mapping():
    env = {}
    assert _env.set_runtime_defaults(env) == ["GOMP_SPINCOUNT", "OMP_WAIT_POLICY",
                                              "OPENBLAS_THREAD_TIMEOUT"]
    assert env == {"GOMP_SPINCOUNT": "4000", "OMP_WAIT_POLICY": "PASSIVE",
                   "OPENBLAS_THREAD_TIMEOUT": "16"}
    assert _env.openmp_threads_spin(env)
    env = {"GOMP_SPINCOUNT": "0"}
    assert _env.set_runtime_defaults(env, blas_loaded=True) == []
    assert env == {"GOMP_SPINCOUNT": "0"}
    env = {"OMP_WAIT_POLICY": "passive"}
    assert _env.set_runtime_defaults(env, blas_loaded=True) == []
    assert env == {"OMP_WAIT_POLICY": "passive"}


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
