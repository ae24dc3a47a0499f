"""fastconv.onnx.load: every supported operator as a tiny ONNX graph (random weights),
run by onnxruntime and by fastconv, compared to 1e-5 of the output's largest magnitude;
the error cases; fine-tuning an imported model. Torch-exported networks are in
tests/test_onnx_torch.py.
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import fastconv.onnx as fonnx  # noqa: E402
from fastconv import nn  # noqa: E402
from fastconv.optim import SGD  # noqa: E402
from fastconv.train import Trainer  # noqa: E402

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

F = TensorProto.FLOAT
RTOL = 1e-5


def model_bytes(nodes, inputs, outputs=("y",), inits=None, opset=17):
    """A model of ``nodes``: inputs {name: shape}, float initializers {name: array}."""
    init = [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()]
    g = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info(k, F, list(s)) for k, s in inputs.items()],
        [helper.make_tensor_value_info(o, F, None) for o in outputs], init)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    try:   # the checker wants output shapes: let ONNX infer them where it can
        m = onnx.shape_inference.infer_shapes(m)
    except Exception:
        pass
    for o in m.graph.output:
        if not o.type.tensor_type.HasField("shape"):
            o.type.tensor_type.shape.dim.add().dim_param = "unknown"
    return m.SerializeToString()


def compare(data, feeds, rtol=RTOL, expect=None):
    """Run ``data`` in onnxruntime and in fastconv; return the fastconv model."""
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    want = sess.run(None, feeds)
    model = fonnx.load(data)
    assert not model.training
    got = model.forward(*feeds.values())
    got = list(got) if isinstance(got, tuple) else [got]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == np.float32
        scale = max(float(np.abs(w).max()), 1e-30)
        err = float(np.abs(g - w).max()) / scale
        assert err <= rtol, f"relative error {err:.3g}"
    if expect is not None:
        assert isinstance(model, expect)
    return model


def R(*shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed + sum(shape)).standard_normal(shape) * scale).astype(np.float32)


_NAMES = set()


def node(op, ins, outs=("y",), **attrs):
    name, k = f"my_{op.lower()}", 1
    while name in _NAMES:
        k += 1
        name = f"my_{op.lower()}{k}"
    _NAMES.add(name)
    return helper.make_node(op, list(ins), list(outs), name=name, **attrs)


X4 = (2, 4, 9, 9)


# ---------------------------------------------------------------- convolution


CONV_CASES = {
    "basic": (dict(pads=[1, 1, 1, 1]), (6, 4, 3, 3), True),
    "no_bias_stride": (dict(strides=[2, 1]), (6, 4, 3, 3), False),
    "groups": (dict(group=2, pads=[1, 0, 1, 0]), (6, 2, 3, 1), True),
    "depthwise": (dict(group=4, pads=[1, 1, 1, 1], strides=[2, 2]), (8, 1, 3, 3), True),
    "dilation": (dict(dilations=[2, 2], pads=[2, 2, 2, 2]), (3, 4, 3, 3), True),
    "asymmetric_pads": (dict(pads=[0, 1, 2, 1]), (3, 4, 3, 3), True),
    "same_upper": (dict(auto_pad="SAME_UPPER", strides=[2, 2]), (3, 4, 4, 4), True),
    "same_lower": (dict(auto_pad="SAME_LOWER", strides=[2, 2]), (3, 4, 4, 4), False),
    "valid": (dict(auto_pad="VALID"), (3, 4, 2, 5), True),
    "same_upper_stride1": (dict(auto_pad="SAME_UPPER", kernel_shape=[2, 3]), (3, 4, 2, 3), True),
}


@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv(case):
    attrs, wshape, bias = CONV_CASES[case]
    inits = {"W": R(*wshape, seed=1)}
    if bias:
        inits["B"] = R(wshape[0], seed=2)
    n = node("Conv", ["x", "W"] + (["B"] if bias else []), **attrs)
    model = compare(model_bytes([n], {"x": X4}, inits=inits), {"x": R(*X4)})
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2D)]
    assert len(convs) == 1 and convs[0].weight.requires_grad


# ---------------------------------------------------------------- activations


ACT_CASES = {
    "Relu": ([node("Relu", ["x"])], {}, 17),
    "LeakyRelu": ([node("LeakyRelu", ["x"], alpha=0.2)], {}, 17),
    "LeakyRelu_default": ([node("LeakyRelu", ["x"])], {}, 17),
    "Sigmoid": ([node("Sigmoid", ["x"])], {}, 17),
    "Tanh": ([node("Tanh", ["x"])], {}, 17),
    "HardSigmoid": ([node("HardSigmoid", ["x"])], {}, 17),
    "HardSigmoid_torch": ([node("HardSigmoid", ["x"], alpha=1 / 6, beta=0.5)], {}, 17),
    "HardSwish": ([node("HardSwish", ["x"])], {}, 17),
    "Clip_relu6": ([node("Clip", ["x", "lo", "hi"])], {"lo": np.float32(0), "hi": np.float32(6)}, 11),
    "Clip_min_max": ([node("Clip", ["x", "lo", "hi"])], {"lo": np.float32(-1), "hi": np.float32(2.5)}, 17),
    "Clip_min_only": ([node("Clip", ["x", "lo"])], {"lo": np.float32(-0.5)}, 13),
    "Clip_max_only": ([node("Clip", ["x", "", "hi"])], {"hi": np.float32(0.5)}, 13),
    "Softmax": ([node("Softmax", ["x"], axis=1)], {}, 13),
    "Softmax_last": ([node("Softmax", ["x"])], {}, 17),
    "Softmax_opset11_coerced": ([node("Softmax", ["x"], axis=1)], {}, 11),
    "LogSoftmax": ([node("LogSoftmax", ["x"], axis=2)], {}, 17),
    "Dropout": ([node("Dropout", ["x"])], {}, 17),
    "Identity": ([node("Identity", ["x"])], {}, 17),
}


@pytest.mark.parametrize("case", list(ACT_CASES))
def test_activation(case):
    nodes, inits, opset = ACT_CASES[case]
    x = R(*X4, scale=4.0)
    compare(model_bytes(nodes, {"x": X4}, inits=inits, opset=opset), {"x": x}, expect=nn.Sequential)


# ---------------------------------------------------------------- elementwise joins


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("form", ["two_inputs", "const_right", "const_left", "scalar_constant_node"])
def test_binary(op, form):
    a = R(2, 3, 4, 4)
    b = np.abs(R(1, 3, 1, 1, seed=5)) + 0.5
    if form == "two_inputs":
        data = model_bytes([node(op, ["a", "b"])], {"a": a.shape, "b": b.shape})
        model = compare(data, {"a": a, "b": b}, expect=nn.Graph)
        return
    if form == "scalar_constant_node":
        c = helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.float32(3.0)))
        data = model_bytes([c, node(op, ["a", "c"])], {"a": a.shape})
        model = compare(data, {"a": a}, expect=nn.Sequential)
        assert model.parameters() == []          # a Constant node is not trainable
        return
    ins = ["a", "B"] if form == "const_right" else ["B", "a"]
    if op == "Div" and form == "const_left":
        a = np.abs(a) + 0.5
    model = compare(model_bytes([node(op, ins)], {"a": a.shape}, inits={"B": b}), {"a": a})
    assert [p.shape for p in model.parameters()] == [b.shape]   # an initializer is


def test_concat_and_broadcast_chain():
    nodes = [node("Relu", ["a"], ["r"]), node("Concat", ["r", "b", "a"], ["c"], axis=1),
             node("Mul", ["c", "s"], ["y"])]
    data = model_bytes(nodes, {"a": (2, 3, 4, 4), "b": (2, 2, 4, 4)}, inits={"s": R(8, 1, 1, seed=3)})
    compare(data, {"a": R(2, 3, 4, 4), "b": R(2, 2, 4, 4, seed=1)})


# ---------------------------------------------------------------- pooling


POOL_CASES = {
    "max_k3s2p1": ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    "max_ceil": ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    "max_dilated": ("MaxPool", dict(kernel_shape=[2, 2], dilations=[2, 2], pads=[1, 1, 1, 1])),
    "max_asymmetric": ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[0, 1, 2, 1])),
    "max_wide_pad": ("MaxPool", dict(kernel_shape=[3, 3], pads=[2, 2, 2, 2])),
    "max_same_upper": ("MaxPool", dict(kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_UPPER")),
    "max_ceil_asym": ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 0, 1], ceil_mode=1)),
    "avg": ("AveragePool", dict(kernel_shape=[2, 2])),
    "avg_pad_include": ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                            count_include_pad=1)),
    "avg_pad_exclude": ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    "avg_ceil_include": ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                             ceil_mode=1, count_include_pad=1)),
    "avg_ceil_exclude": ("AveragePool", dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)),
    "avg_asym_include": ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[0, 1, 2, 1],
                                             count_include_pad=1)),
    "avg_asym_exclude": ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[0, 1, 2, 1])),
    "avg_same_upper_exclude": ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")),
    "avg_same_lower_include": ("AveragePool", dict(kernel_shape=[2, 2], auto_pad="SAME_LOWER",
                                                   count_include_pad=1)),
}


@pytest.mark.parametrize("case", list(POOL_CASES))
def test_pool(case):
    op, attrs = POOL_CASES[case]
    compare(model_bytes([node(op, ["x"], **attrs)], {"x": X4}), {"x": R(*X4)})


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pool(op):
    compare(model_bytes([node(op, ["x"])], {"x": X4}), {"x": R(*X4)})


@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("opset", [13, 18])
def test_reduce_mean(keepdims, opset):
    if opset >= 18:
        n, inits = node("ReduceMean", ["x", "axes"], keepdims=keepdims), {"axes": np.array([2, 3])}
    else:
        n, inits = node("ReduceMean", ["x"], axes=[2, 3], keepdims=keepdims), {}
    compare(model_bytes([n], {"x": X4}, inits=inits, opset=opset), {"x": R(*X4)})


# ---------------------------------------------------------------- normalisation, dense


@pytest.mark.parametrize("shape", [X4, (5, 4)])
def test_batchnorm(shape):
    inits = {"s": R(4, seed=1), "b": R(4, seed=2), "m": R(4, seed=3), "v": np.abs(R(4, seed=4)) + 0.5}
    n = node("BatchNormalization", ["x", "s", "b", "m", "v"], epsilon=1e-3)
    model = compare(model_bytes([n], {"x": shape}, inits=inits), {"x": R(*shape)})
    bn = [m for m in model.modules() if isinstance(m, nn.BatchNorm2D)][0]
    assert bn.eps == pytest.approx(1e-3) and np.allclose(bn.running_var, inits["v"])


GEMM_CASES = {
    "transB": (dict(transB=1), (5, 6), (5,)),
    "plain_alpha_beta": (dict(alpha=0.5, beta=2.0), (6, 5), (1, 5)),
    "transA": (dict(transA=1, transB=1), (5, 6), (5,)),
    "matrix_C": (dict(), (6, 5), (3, 5)),
    "no_C": (dict(transB=1), (5, 6), None),
}


@pytest.mark.parametrize("case", list(GEMM_CASES))
def test_gemm(case):
    attrs, bshape, cshape = GEMM_CASES[case]
    xshape = (6, 3) if attrs.get("transA") else (3, 6)
    inits = {"B": R(*bshape, seed=1)}
    if cshape:
        inits["C"] = R(*cshape, seed=2)
    n = node("Gemm", ["x", "B"] + (["C"] if cshape else []), **attrs)
    compare(model_bytes([n], {"x": xshape}, inits=inits), {"x": R(*xshape)})


def test_gemm_two_inputs():
    n = node("Gemm", ["a", "b", "C"], alpha=2.0, transB=1)
    data = model_bytes([n], {"a": (3, 4), "b": (5, 4)}, inits={"C": R(5, seed=1)})
    compare(data, {"a": R(3, 4), "b": R(5, 4, seed=2)})


@pytest.mark.parametrize("shapes", [((3, 6), (6, 4), True), ((2, 3, 6), (6, 4), True), ((2, 3, 6), (6, 4), False)])
def test_matmul(shapes):
    a, b, const = shapes
    if const:
        data = model_bytes([node("MatMul", ["a", "W"])], {"a": a}, inits={"W": R(*b, seed=1)})
        compare(data, {"a": R(*a)})
    else:
        compare(model_bytes([node("MatMul", ["a", "b"])], {"a": a, "b": b}), {"a": R(*a), "b": R(*b, seed=1)})


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("axis", [0, 1, 2, 3])
def test_flatten(axis):
    compare(model_bytes([node("Flatten", ["x"], axis=axis)], {"x": X4}), {"x": R(*X4)})


def test_reshape_transpose():
    nodes = [node("Reshape", ["x", "s"], ["r"]), node("Transpose", ["r"], ["t"], perm=[0, 2, 1, 3, 4]),
             node("Reshape", ["t", "s2"], ["y"])]
    inits = {"s": np.array([0, 2, 2, 9, -1]), "s2": np.array([2, -1, 9, 9])}
    model = compare(model_bytes(nodes, {"x": X4}, inits=inits), {"x": R(*X4)}, expect=nn.Sequential)
    assert model.forward(R(5, 4, 9, 9)).shape == (5, 4, 9, 9)   # the batch size stays free


def test_channel_shuffle_shape_subgraph():
    """x.view(b, g, c/g, h, w).transpose(1, 2).reshape(b, -1, h, w) written with Shape ops."""
    i64 = lambda *v: numpy_helper.from_array(np.array(v, np.int64))  # noqa: E731
    nodes = [
        node("Shape", ["x"], ["shp"]),
        node("Gather", ["shp", "zero"], ["n"], axis=0),
        node("Slice", ["shp", "two", "four"], ["hw"]),
        node("Gather", ["shp", "one"], ["c"], axis=0),
        node("Div", ["c", "g"], ["cg"]),
        node("Unsqueeze", ["n", "ax0"], ["n1"]),
        node("Unsqueeze", ["cg", "ax0"], ["cg1"]),
        node("Cast", ["cg1"], ["cg1c"], to=TensorProto.INT64),
        helper.make_node("Constant", [], ["g1"], value=i64(2)),
        node("Concat", ["n1", "g1", "cg1c", "hw"], ["s5"], axis=0),
        node("Reshape", ["x", "s5"], ["r"]),
        node("Transpose", ["r"], ["t"], perm=[0, 2, 1, 3, 4]),
        node("Concat", ["n1", "minus1", "hw"], ["s4"], axis=0),
        node("Reshape", ["t", "s4"], ["y0"]),
        node("Split", ["shp", "splits"], ["sa", "sb"], axis=0),
        node("ConstantOfShape", ["sa"], ["ones"], value=numpy_helper.from_array(np.array([1.5], np.float32))),
        node("Squeeze", ["ones", "ax0"], ["ones_sq"]),
        node("Mul", ["y0", "ones_sq"], ["y"]),
    ]
    inits = {"zero": np.array(0), "one": np.array(1), "g": np.array(2), "two": np.array([2]),
             "four": np.array([4]), "ax0": np.array([0]), "minus1": np.array([-1]),
             "splits": np.array([1, 3])}
    data = model_bytes(nodes, {"x": (1, 4, 3, 3)}, inits=inits, opset=13)
    model = compare(data, {"x": R(1, 4, 3, 3)})
    ref = R(3, 4, 3, 3, seed=9)
    want = ref.reshape(3, 2, 2, 3, 3).transpose(0, 2, 1, 3, 4).reshape(3, 4, 3, 3)
    # the ones constant was folded for batch 1 and broadcasts along the batch
    np.testing.assert_allclose(model.forward(ref), want * 1.5, rtol=1e-6)


@pytest.mark.parametrize("opset", [11, 13, 18])
def test_split_runtime(opset):
    if opset == 11:
        n, inits = node("Split", ["x"], ["a", "b"], axis=1, split=[1, 3]), {}
    elif opset == 13:
        n, inits = node("Split", ["x", "s"], ["a", "b"], axis=1), {"s": np.array([1, 3])}
    else:
        n, inits = node("Split", ["x"], ["a", "b"], axis=1, num_outputs=2), {}
    nodes = [n, node("Relu", ["a"], ["ra"]), node("Concat", ["b", "ra"], ["y"], axis=1)]
    compare(model_bytes(nodes, {"x": X4}, inits=inits, opset=opset), {"x": R(*X4)})


@pytest.mark.parametrize("args", [([1], [3], [1], [1]), ([-1], [-100], [3], [-2]), ([0, 2], [2, 100], [1, 2], None)])
def test_slice_runtime(args):
    starts, ends, axes, steps = args
    inits = {"st": np.array(starts), "en": np.array(ends), "ax": np.array(axes)}
    ins = ["x", "st", "en", "ax"]
    if steps is not None:
        inits["sp"] = np.array(steps)
        ins.append("sp")
    compare(model_bytes([node("Slice", ins)], {"x": X4}, inits=inits), {"x": R(*X4)})


@pytest.mark.parametrize("opset", [11, 13])
def test_unsqueeze_squeeze_runtime(opset):
    if opset == 11:
        nodes = [node("Unsqueeze", ["x"], ["u"], axes=[2]), node("Squeeze", ["u"], ["y"], axes=[2])]
        inits = {}
    else:
        nodes = [node("Unsqueeze", ["x", "a"], ["u"]), node("Squeeze", ["u", "a"], ["y"])]
        inits = {"a": np.array([2])}
    nodes.append(node("Relu", ["y"], ["z"]))
    data = model_bytes(nodes, {"x": (2, 5, 3)}, outputs=("z",), inits=inits, opset=opset)
    compare(data, {"x": R(2, 5, 3)})


def test_pad_op():
    inits = {"p": np.array([0, 0, 1, 2, 0, 0, 3, 0]), "v": np.float32(-2.0)}
    nodes = [node("Pad", ["x", "p", "v"], ["q"]), node("Conv", ["q", "W"])]
    compare(model_bytes(nodes, {"x": X4}, inits={**inits, "W": R(2, 4, 3, 3)}), {"x": R(*X4)})


def test_cast_to_float_is_identity():
    compare(model_bytes([node("Cast", ["x"], to=TensorProto.FLOAT)], {"x": X4}), {"x": R(*X4)})


# ---------------------------------------------------------------- fixed sizes, batch


def test_input_shape_argument_and_free_batch():
    nodes = [node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]), node("Flatten", ["c"], ["f"]),
             node("Gemm", ["f", "B"], transB=1)]
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", F, ["N", 2, "H", "W"])],
                          [helper.make_tensor_value_info("y", F, ["N", 4])],
                          [numpy_helper.from_array(R(3, 2, 3, 3), "W"), numpy_helper.from_array(R(4, 48), "B")])
    data = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    with pytest.raises(fonnx.ONNXError, match="input_shape"):
        fonnx.load(data)
    model = fonnx.load(data, input_shape=(2, 4, 4))
    x = R(7, 2, 4, 4)
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(model.forward(x), want, rtol=1e-5, atol=1e-5)
    assert isinstance(fonnx.load(data, input_shape=(1, 2, 4, 4)), nn.Sequential)


def test_load_path_and_model_proto(tmp_path):
    data = model_bytes([node("Relu", ["x"])], {"x": (1, 3)})
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    for src in (path, str(path), onnx.load_from_string(data)):
        np.testing.assert_array_equal(fonnx.load(src).forward(np.array([[-1, 0, 2]], np.float32)), [[0, 0, 2]])


# ---------------------------------------------------------------- errors


def test_unsupported_operator_names_op_and_node():
    data = model_bytes([node("Erf", ["x"])], {"x": (1, 3)})
    with pytest.raises(fonnx.UnsupportedOperator, match="'Erf'.*'my_erf'") as e:
        fonnx.load(data)
    assert e.value.op == "Erf" and e.value.node == "my_erf" and e.value.attribute is None


@pytest.mark.parametrize("n,inits,attribute", [
    (node("Pad", ["x", "p"], mode="reflect"), {"p": np.array([0, 0, 1, 1, 0, 0, 1, 1])}, "mode"),
    (node("MaxPool", ["x"], kernel_shape=[2, 2], storage_order=1), {}, "storage_order"),
    (node("Cast", ["x"], to=TensorProto.INT32), {}, "to"),
    (node("AveragePool", ["x"], kernel_shape=[2, 2], dilations=[2, 2]), {}, "dilations"),
    (node("Conv", ["x", "W"]), {"W": R(2, 4, 3, 3, 3)}, "kernel_shape"),
    (node("Reshape", ["x", "s"]), {"s": np.array([2, 5, -1])}, "shape"),
])
def test_unsupported_attribute(n, inits, attribute):
    data = model_bytes([n], {"x": X4}, inits=inits, opset=19)
    with pytest.raises(fonnx.UnsupportedOperator) as e:
        fonnx.load(data)
    assert e.value.attribute == attribute and e.value.op == n.op_type and e.value.node == n.name
    assert attribute in str(e.value) and n.name in str(e.value) and n.op_type in str(e.value)


def test_conv_weight_from_network_is_unsupported():
    data = model_bytes([node("Conv", ["x", "w"])], {"x": X4, "w": (2, 4, 3, 3)})
    with pytest.raises(fonnx.UnsupportedOperator, match="W"):
        fonnx.load(data)


@pytest.mark.parametrize("cut", [0.5, 0.9, 0.1])
def test_truncated_bytes(cut):
    data = model_bytes([node("Conv", ["x", "W"], ["c"]), node("Relu", ["c"])], {"x": X4},
                       inits={"W": R(2, 4, 3, 3)})
    with pytest.raises(fonnx.ONNXError):
        fonnx.load(data[:int(len(data) * cut)])


@pytest.mark.parametrize("junk", [b"", b"not an onnx file at all", bytes(range(256)) * 4])
def test_garbage_bytes(junk):
    with pytest.raises(ValueError):     # ONNXError is a ValueError
        fonnx.load(junk)


def test_missing_file_and_bad_type(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        fonnx.load(tmp_path / "nope.onnx")
    with pytest.raises(TypeError):
        fonnx.load(12)


def test_dangling_output_and_float16():
    data = model_bytes([node("Relu", ["x"], ["r"])], {"x": (1, 3)}, outputs=("r",))
    m = onnx.load_from_string(data)
    m.graph.output[0].name = "zzz"
    with pytest.raises(fonnx.ONNXError):
        fonnx.load(m.SerializeToString())
    m = onnx.load_from_string(data)
    m.graph.input[0].type.tensor_type.elem_type = TensorProto.FLOAT16
    m.graph.output[0].type.tensor_type.elem_type = TensorProto.FLOAT16
    with pytest.raises(fonnx.ONNXError, match="float32"):
        fonnx.load(m.SerializeToString())


# ---------------------------------------------------------------- fine-tuning


def test_finetune_imported_model():
    nodes = [node("Conv", ["x", "W", "b"], ["c"], pads=[1, 1, 1, 1]), node("Relu", ["c"], ["r"]),
             node("Add", ["r", "c"], ["s"]), node("GlobalAveragePool", ["s"], ["g"]),
             node("Flatten", ["g"], ["f"]), node("Gemm", ["f", "B", "C"], transB=1)]
    inits = {"W": R(4, 1, 3, 3, scale=0.5), "b": R(4, seed=1), "B": R(3, 4, seed=2), "C": R(3, seed=3)}
    model = fonnx.load(model_bytes(nodes, {"x": (1, 1, 6, 6)}, inits=inits))
    assert isinstance(model, nn.Graph) and len(model.parameters()) == 4
    rng = np.random.default_rng(0)
    X = rng.standard_normal((16, 1, 6, 6)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    loss = nn.SoftmaxCrossEntropy()
    before = loss.forward(model.forward(X), y)
    w0 = [p.data.copy() for p in model.parameters()]
    Trainer(model, loss, SGD(model.parameters(), lr=0.05), progress=False).fit((X, y), epochs=1, batch_size=16)
    model.eval()
    assert all(not np.array_equal(a, p.data) for a, p in zip(w0, model.parameters()))
    assert loss.forward(model.forward(X), y) < before


@pytest.mark.parametrize("opset", sorted({11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, onnx.defs.onnx_opset_version()}))
def test_small_cnn_every_opset(opset):
    """Conv, Relu, MaxPool, Pad(-inf), Flatten, Gemm, Softmax at every opset from 11 to the newest."""
    pads = np.array([0, 0, 0, 1, 0, 0, 1, 0])
    nodes = [node("Conv", ["x", "W", "b"], ["c"], pads=[1, 1, 1, 1]), node("Relu", ["c"], ["r"]),
             node("Pad", ["r", "p", "v"], ["q"]), node("MaxPool", ["q"], ["m"], kernel_shape=[2, 2], strides=[2, 2]),
             node("Flatten", ["m"], ["f"]), node("Gemm", ["f", "B", "C"], ["g"], transB=1),
             node("Softmax", ["g"], axis=1)]
    inits = {"W": R(3, 2, 3, 3), "b": R(3, seed=1), "p": pads, "v": np.float32(-np.inf),
             "B": R(4, 27, seed=2), "C": R(4, seed=3)}
    compare(model_bytes(nodes, {"x": (2, 2, 5, 5)}, inits=inits, opset=opset), {"x": R(2, 2, 5, 5)},
            expect=nn.Sequential)


def test_random_byte_flips_raise_value_errors_only():
    """Corrupted files (a few bytes changed) load or raise a ValueError, never anything else."""
    nodes = [node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]), node("Relu", ["c"], ["r"]),
             node("MaxPool", ["r"], ["m"], kernel_shape=[2, 2]), node("Flatten", ["m"], ["f"]),
             node("Gemm", ["f", "B"], transB=1)]
    data = model_bytes(nodes, {"x": (1, 2, 6, 6)}, inits={"W": R(3, 2, 3, 3), "B": R(4, 27)})
    rng = np.random.default_rng(0)
    for _ in range(300):
        b = bytearray(data)
        for _ in range(rng.integers(1, 4)):
            b[rng.integers(len(b))] = rng.integers(256)
        try:
            fonnx.load(bytes(b))
        except ValueError:
            pass


def test_constant_only_operator_on_data_is_unsupported():
    data = model_bytes([node("Pow", ["x", "e"])], {"x": (1, 3)}, inits={"e": np.float32(2)})
    with pytest.raises(fonnx.UnsupportedOperator, match="only on constants") as e:
        fonnx.load(data)
    assert e.value.op == "Pow" and e.value.node == "my_pow"
    assert "Pow" in fonnx.CONSTANT_OPS and "Pow" not in fonnx.SUPPORTED_OPS and "Conv" in fonnx.SUPPORTED_OPS
