"""Every fastconv command reports a bad environment variable as one line and exit code 2."""

import pytest

from fastconv import _env, cli
from conftest import run_python, subprocess_env

COMMANDS = [["info"], ["check", "--cases", "1"], ["train", "--epochs", "1", "--no-save"],
            ["tune", "--show"], ["bench", "--help"], ["evaluate", "model.npz"]]


def _bad_values(tmp_path):
    (tmp_path / "afile").write_text("x")
    return {
        "FASTCONV_NUM_THREADS": ("abc", "a positive integer"),
        "FASTCONV_ISA": ("bogus", "one of generic, avx2, avx512"),
        "FASTCONV_TUNE_FILE": (str(tmp_path), "not a folder"),  # a folder: tune could never write it
        "FASTCONV_DATA": (str(tmp_path / "afile"), "not a file"),
    }


def _assert_one_line(rc, err, name, value, expected):
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"fastconv: error: environment variable {name}={value!r} is not valid")
    assert expected in lines[0]


@pytest.mark.parametrize("name", ["FASTCONV_NUM_THREADS", "FASTCONV_ISA", "FASTCONV_TUNE_FILE", "FASTCONV_DATA"])
def test_bad_variable_in_a_subprocess(name, tmp_path):
    value, expected = _bad_values(tmp_path)[name]
    for argv in (["info"], ["train", "--epochs", "1", "--no-save"]):
        r = run_python(["-m", "fastconv", *argv], env=subprocess_env(**{name: value}))
        _assert_one_line(r.returncode, r.stderr, name, value, expected)
        assert r.stdout == ""  # nothing ran


def test_every_command_checks_in_a_subprocess(tmp_path):
    for argv in COMMANDS:
        r = run_python(["-m", "fastconv", *argv], env=subprocess_env(FASTCONV_NUM_THREADS="0"))
        _assert_one_line(r.returncode, r.stderr, "FASTCONV_NUM_THREADS", "0", "a positive integer")


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: a[0])
def test_every_command_checks_every_variable(argv, tmp_path, monkeypatch, capsys):
    for name, (value, expected) in _bad_values(tmp_path).items():
        with monkeypatch.context() as m:
            m.setenv(name, value)
            rc = cli.main(argv)
            out, err = capsys.readouterr()
        _assert_one_line(rc, err, name, value, expected)


def test_path_variables_are_checked_only_on_request(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTCONV_TUNE_FILE", str(tmp_path))
    _env.check()  # the library: a tuning file that cannot be read only means "no tuning"
    with pytest.raises(_env.EnvironmentVariableError, match="FASTCONV_TUNE_FILE"):
        _env.check(paths=True)
    monkeypatch.setenv("FASTCONV_TUNE_FILE", str(tmp_path / "sub" / "tune.json"))
    monkeypatch.setenv("FASTCONV_DATA", str(tmp_path / "data"))  # to be created: fine
    _env.check(paths=True)
    assert _env.tune_file() == tmp_path / "sub" / "tune.json" and _env.data_dir() == tmp_path / "data"
    monkeypatch.setenv("FASTCONV_TUNE_FILE", "")
    assert _env.tune_file() is None
