"""PyTorch's names and argument orders, as promised: a call copied from
``torch.nn.functional`` gives the same result here."""

import numpy as np
import pytest

import fastconv
from fastconv import reference

API = [fastconv, reference]


def _x(shape=(2, 3, 9, 8), seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("api", API, ids=["native", "reference"])
def test_im2col_positional_order_is_unfolds_dilation_padding_stride(api):
    x = _x()
    by_position = api.im2col(x, 3, 2, 1, 3)
    by_name = api.im2col(x, 3, dilation=2, padding=1, stride=3)
    np.testing.assert_array_equal(by_position, by_name)
    # dilation 2, padding 1, stride 3 on 9x8: P = (9+2-4-1)//3 + 1 = 3, Q = (8+2-4-1)//3 + 1 = 2
    # (stride 2 with dilation 3 would give P = (9+2-6-1)//2 + 1 = 3, Q = 2 too, but other values)
    assert by_position.shape == (2, 27, 6)
    # column (p, q) = (1, 0), row (c, r, s) = (0, 1, 2): x[0, 0, 1*3 - 1 + 1*2, 0*3 - 1 + 2*2]
    assert by_position[0, 1 * 3 + 2, 1 * 2 + 0] == x[0, 0, 4, 3]
    swapped = api.im2col(x, 3, stride=2, padding=1, dilation=3)
    assert not np.array_equal(by_position, swapped)


@pytest.mark.parametrize("api", API, ids=["native", "reference"])
def test_col2im_positional_order_is_folds_dilation_padding_stride(api):
    cols = _x((2, 27, 6))
    np.testing.assert_array_equal(api.col2im(cols, (9, 8), 3, 2, 1, 3),
                                  api.col2im(cols, (9, 8), 3, dilation=2, padding=1, stride=3))


@pytest.mark.parametrize("api", API, ids=["native", "reference"])
def test_torch_keyword_names_are_accepted(api):
    x, w, b = _x(), _x((4, 3, 3, 3), 1), _x((4,), 2)
    np.testing.assert_array_equal(api.conv2d(input=x, weight=w, bias=b, padding=1),
                                  api.conv2d(x, w, b, padding=1))
    dy = _x((2, 4, 9, 8), 3)
    for got, want in zip(api.conv2d_backward(grad_output=dy, input=x, weight=w, padding=1),
                         api.conv2d_backward(dy, x, w, padding=1)):
        np.testing.assert_array_equal(got, want)
    y, idx = api.max_pool2d(input=x, kernel_size=2, return_indices=True)
    np.testing.assert_array_equal(api.max_pool2d_backward(grad_output=y, indices=idx,
                                                          x_shape=x.shape),
                                  api.max_pool2d_backward(y, idx, x.shape))
    np.testing.assert_array_equal(api.avg_pool2d(input=x, kernel_size=3), api.avg_pool2d(x, 3))
    np.testing.assert_array_equal(api.relu(input=x), api.relu(x))
    np.testing.assert_array_equal(api.relu_backward(grad_output=x, input=x), api.relu_backward(x, x))
    np.testing.assert_array_equal(api.im2col(input=x, kernel_size=2), api.im2col(x, 2))
    cols = api.im2col(x, 2)
    np.testing.assert_array_equal(api.col2im(input=cols, output_size=(9, 8), kernel_size=2),
                                  api.col2im(cols, (9, 8), 2))
    x2, w2 = _x((5, 7), 4), _x((3, 7), 5)
    np.testing.assert_array_equal(api.linear(input=x2, weight=w2, bias=b[:3]),
                                  api.linear(x2, w2, b[:3]))


@pytest.mark.parametrize("api", API, ids=["native", "reference"])
def test_one_argument_under_two_names_is_a_type_error(api):
    x, w = _x(), _x((4, 3, 3, 3), 1)
    with pytest.raises(TypeError, match="both 'weight' and 'w'"):
        api.conv2d(x, w=w, weight=w)
    with pytest.raises(TypeError, match="both 'input' and 'x'"):
        api.relu(x=x, input=x)


def test_docstrings_name_the_torch_spellings():
    assert "``input=`` for ``x``" in fastconv.conv2d.__doc__
    assert "``input=`` for ``cols``" in fastconv.col2im.__doc__


def test_unfold_and_fold_match_torch_positionally():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = _x()
    cols = fastconv.im2col(x, 3, 2, 1, 3)
    np.testing.assert_allclose(cols, F.unfold(torch.from_numpy(x), 3, 2, 1, 3).numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(fastconv.col2im(cols, (9, 8), 3, 2, 1, 3),
                               F.fold(torch.from_numpy(cols), (9, 8), 3, 2, 1, 3).numpy(),
                               rtol=1e-12, atol=1e-12)


def test_layer_classes_answer_to_torchs_spellings():
    from fastconv import nn

    assert nn.Conv2d is nn.Conv2D and nn.MaxPool2d is nn.MaxPool2D
    assert nn.AvgPool2d is nn.AvgPool2D and nn.BatchNorm2d is nn.BatchNorm2D
    assert nn.CrossEntropyLoss is nn.SoftmaxCrossEntropy
    for name in ("Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm2d", "CrossEntropyLoss"):
        assert name in nn.__all__ and name in nn.__doc__


def test_nn_module_example_runs_as_written(capsys):
    from fastconv import nn

    doc = nn.__doc__
    block = doc[doc.index("Example::") + len("Example::"):doc.index("PyTorch's spellings")]
    code = "\n".join(line[4:] for line in block.strip("\n").splitlines())
    exec(compile(code, "fastconv.nn example", "exec"), {})
    out = capsys.readouterr().out.split()
    assert float(out[0]) > 0 and out[1:] == ["(8,", "1,", "3,", "3)"]


def test_every_layer_documents_forward_and_backward():
    from fastconv import nn

    for name in nn.__all__:
        cls = getattr(nn, name)
        if isinstance(cls, type) and issubclass(cls, (nn.Module, nn.Loss)):
            for meth in ("forward", "backward"):
                assert getattr(cls, meth).__doc__, f"{name}.{meth} has no docstring"


@pytest.mark.parametrize("api", API, ids=["native", "reference"])
def test_winograd_geometry_rule_is_the_same_in_both_apis(api):
    x, w = _x(), _x((4, 3, 3, 3), 1)
    with pytest.raises(ValueError, match="algo='winograd' needs a 3x3 kernel with stride 1"):
        api.conv2d(x, w, stride=2, algo="winograd")
    with pytest.raises(ValueError, match="algo='winograd' needs a 3x3 kernel with stride 1"):
        api.conv1d(_x((2, 3, 20)), _x((4, 3, 3), 2), algo="winograd")
