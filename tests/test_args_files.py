"""The file validators of fastconv._args.paths: input_file and samples_array."""

import numpy as np
import pytest

from fastconv._args import input_file, samples_array


def test_input_file_accepts_an_existing_file_with_the_suffix(tmp_path):
    f = tmp_path / "x.NPY"
    np.save(tmp_path / "x.npy", np.zeros((1, 2)))
    (tmp_path / "x.npy").rename(f)
    assert input_file(str(f), "the input", (".npy",)) == f
    assert input_file(f, "the input") == f


@pytest.mark.parametrize("name,exc,message", [
    ("missing.npy", FileNotFoundError, "no such input file"),
    (".", ValueError, "is not a file"),
    ("data.txt", ValueError, "must be a .npy file (numpy.save)"),
])
def test_input_file_names_what_is_wrong(tmp_path, name, exc, message):
    (tmp_path / "data.txt").write_text("1 2 3")
    with pytest.raises(exc, match=message.replace("(", r"\(").replace(")", r"\)")):
        input_file(str(tmp_path / name), "the input", (".npy",), "a .npy file (numpy.save)")


@pytest.mark.parametrize("bad", [None, 3, ""])
def test_input_file_rejects_non_paths(bad):
    with pytest.raises((TypeError, ValueError)):
        input_file(bad, "the model")


def test_samples_array():
    x = np.ones((2, 3), np.float32)
    assert samples_array(x, "x") is x
    for bad, message in [(np.array(["a", "b"]).reshape(2, 1), "dtype"),
                         (np.ones(3), "samples along the first axis"),
                         (np.ones((0, 3)), "no samples"),
                         ({"a": 1}, "not an array")]:
        with pytest.raises(ValueError, match=message):
            samples_array(bad, "x")
