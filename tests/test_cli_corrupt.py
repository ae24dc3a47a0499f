"""A damaged .npz (not a zip archive) given to any command that reads a model or a
checkpoint is one error line with exit code 2, never a traceback."""

import numpy as np
import pytest

from fastconv import cli


@pytest.mark.parametrize("argv,message", [
    (["evaluate", "{f}"], "cannot load the model"),
    (["compress", "{f}", "--int8"], "cannot load"),
    (["predict", "{f}", "--input", "{x}"], "cannot load the model"),
    (["train", "--resume", "{f}", "--no-progress"], "cannot resume from"),
], ids=["evaluate", "compress", "predict", "train-resume"])
def test_damaged_npz_is_one_line(tmp_path, capsys, argv, message, threads):
    f = tmp_path / "damaged.npz"
    f.write_bytes(b"PK\x03\x04 this is not a zip archive")
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 1, 28, 28), np.float32))
    rc = cli.main([a.format(f=f, x=x) for a in argv])
    out, err = capsys.readouterr()
    assert rc == 2 and message in err, err
    assert err.startswith("fastconv: error: ") and err.count("\n") == 1 and "Traceback" not in err
