"""Environment variables, file modes and the import error of an unbuilt source tree."""

import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

import fastconv
from fastconv import _env, _fileio
from conftest import run_python, subprocess_env

_CALL = ("import numpy as np, fastconv; "
         "fastconv.conv2d(np.ones((1, 1, 3, 3), np.float32), np.ones((1, 1, 2, 2), np.float32))")


@pytest.mark.parametrize("name,value,expected", [
    ("FASTCONV_NUM_THREADS", "abc", "a positive integer"),
    ("FASTCONV_NUM_THREADS", "0", "a positive integer"),
    ("FASTCONV_NUM_THREADS", "-3", "a positive integer"),
    ("FASTCONV_ISA", "avx3", "one of generic, avx2, avx512"),
])
def test_bad_environment_variable_is_a_clear_error_at_the_first_call(name, value, expected):
    r = run_python(["-c", _CALL], env=subprocess_env(**{name: value}))
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("fastconv._env.EnvironmentVariableError")
    assert name in last and repr(value) in last and expected in last


def test_environment_checks_accept_good_values(monkeypatch):
    monkeypatch.setenv("FASTCONV_NUM_THREADS", " 3 ")
    monkeypatch.setenv("FASTCONV_ISA", "avx2")
    assert _env.num_threads() == 3 and _env.isa_cap() == "avx2"
    monkeypatch.setenv("FASTCONV_NUM_THREADS", "")
    monkeypatch.delenv("FASTCONV_ISA")
    assert _env.num_threads() is None and _env.isa_cap() is None
    _env.check()


def test_environment_error_is_a_value_error(monkeypatch):
    monkeypatch.setenv("FASTCONV_NUM_THREADS", "two")
    with pytest.raises(ValueError, match="FASTCONV_NUM_THREADS='two'"):
        _env.check()


def test_atomic_write_gives_the_usual_mode_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        p = _fileio.atomic_write(tmp_path / "a.bin", lambda f: f.write(b"x"))
        assert stat.S_IMODE(p.stat().st_mode) == 0o644
        os.umask(0o077)
        q = _fileio.atomic_write(tmp_path / "b.bin", lambda f: f.write(b"x"))
        assert stat.S_IMODE(q.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_atomic_write_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    p = tmp_path / "c.bin"
    p.write_bytes(b"old")
    p.chmod(0o640)
    _fileio.atomic_write(p, lambda f: f.write(b"new"))
    assert p.read_bytes() == b"new" and stat.S_IMODE(p.stat().st_mode) == 0o640


def test_unbuilt_source_tree_says_so_not_circular_import(tmp_path):
    pkg = Path(fastconv.__file__).resolve().parent
    shutil.copytree(pkg, tmp_path / "fastconv",
                    ignore=shutil.ignore_patterns("_kernels*.so", "_kernels*.pyd", "__pycache__"))
    # -S: no site-packages, so neither an installed nor an editable fastconv can supply
    # the extension; -c runs in tmp_path, the unbuilt tree first on sys.path, as a user
    # running Python in a fresh checkout.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = run_python(["-S", "-c", "import fastconv"], env=env, cwd=str(tmp_path))
    assert r.returncode != 0
    assert "circular import" not in r.stderr.splitlines()[-1]
    assert "not built" in r.stderr and "build_ext --inplace" in r.stderr
