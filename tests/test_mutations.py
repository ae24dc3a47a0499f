"""The tests can fail: tools/mutate.py applies wrong versions of fastconv (a gradient 1%
too large, a dropped channel, a shape rule off by one, inputs written before an
error...) and each must make the test files meant to catch it fail.

The whole set takes several minutes, so it is marked slow (CI runs it); one cheap
mutation runs in the quick suite to show the harness itself works.
"""

from pathlib import Path

import pytest

from conftest import run_python

MUTATE = Path(__file__).resolve().parents[1] / "tools" / "mutate.py"


def _mutate(*args, timeout):
    """Run tools/mutate.py; it exits 0 only when the control run passes and every
    mutation it ran was caught."""
    r = run_python([str(MUTATE), *args], timeout=timeout)
    assert r.returncode == 0, f"{r.stdout[-6000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def test_one_mutation_is_caught():
    out = _mutate("threadpool-limits-ignored", timeout=300)
    assert "1 of 1 mutations caught" in out


@pytest.mark.slow
def test_every_mutation_is_caught():
    out = _mutate(timeout=3000)
    last = out.strip().splitlines()[-1]
    caught, total = last.split(" mutations caught")[0].split(" of ")
    assert caught == total and int(total) >= 30, out
