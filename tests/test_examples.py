"""The scripts in examples/ run to the end (small sizes: FASTCONV_EXAMPLE_SMALL=1), each
checking its own claim (pool ordering, falling loss, the learned shift) and printing ok."""

from pathlib import Path

import pytest

from conftest import run_python, subprocess_env

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


def test_examples_exist():
    names = {p.name for p in EXAMPLES}
    assert {"lp_pooling.py", "conv1d_sequence.py", "inception_densenet.py",
            "deform_shift.py"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path):
    assert len(path.read_text().splitlines()) < 80
    res = run_python([str(path)], env=subprocess_env(FASTCONV_EXAMPLE_SMALL="1"), timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.rstrip().endswith("ok")
