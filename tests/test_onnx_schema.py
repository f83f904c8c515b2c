"""thermalcount.model.onnx_schema reads tensors and attributes as onnx itself does.

The runtime parses models with these messages instead of ``import onnx`` (start-up); here
onnx's own helpers are the reference, on tensors stored every way onnx.proto allows.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from thermalcount.errors import ModelError
from thermalcount.model import onnx_schema
from thermalcount.model.contract import default_model_path, parse_model

VALUES = {
    TensorProto.FLOAT: np.array([[1.5, -2.25, 3e-8], [np.inf, -0.0, 7.0]], np.float32),
    TensorProto.DOUBLE: np.array([[1.5, -2.25, 3e-300]], np.float64),
    TensorProto.FLOAT16: np.array([1.5, -2.0, 65504.0], np.float16),
    TensorProto.INT64: np.array([[-1, 64], [2**40, -(2**62)]], np.int64),
    TensorProto.INT32: np.array([-7, 2**31 - 1], np.int32),
    TensorProto.INT16: np.array([-7, 300], np.int16),
    TensorProto.INT8: np.array([-7, 100], np.int8),
    TensorProto.UINT8: np.array([0, 255], np.uint8),
    TensorProto.UINT16: np.array([0, 65535], np.uint16),
    TensorProto.UINT32: np.array([0, 2**32 - 1], np.uint32),
    TensorProto.UINT64: np.array([0, 2**64 - 1], np.uint64),
    TensorProto.BOOL: np.array([True, False, True]),
    TensorProto.COMPLEX64: np.array([1 + 2j, -3j], np.complex64),
}


def _light(tensor):
    """``tensor`` re-read through onnx_schema's messages (as the runtime reads a model)."""
    node = helper.make_node("Constant", [], ["c"], value=tensor)
    model = helper.make_model(helper.make_graph([node], "g", [], []))
    parsed = onnx_schema.ModelProto()
    parsed.ParseFromString(model.SerializeToString())
    return parsed.graph.node[0].attribute[0].t


@pytest.mark.parametrize("raw", [True, False], ids=["raw_data", "typed_field"])
@pytest.mark.parametrize("data_type", list(VALUES), ids=[TensorProto.DataType.Name(t) for t in VALUES])
def test_to_array_gives_what_numpy_helper_gives(data_type, raw):
    values = VALUES[data_type]
    tensor = helper.make_tensor("t", data_type, values.shape,
                                values.tobytes() if raw else values.reshape(-1).tolist(), raw=raw)
    expected = numpy_helper.to_array(tensor)
    got = onnx_schema.to_array(_light(tensor))
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert got.tobytes() == expected.tobytes()


def test_a_scalar_and_an_empty_tensor():
    for values in (np.array(2.5, np.float32), np.zeros((0, 3), np.float32)):
        tensor = numpy_helper.from_array(values, "t")
        got = onnx_schema.to_array(_light(tensor))
        assert got.shape == values.shape and got.dtype == values.dtype and np.array_equal(got, values)


def test_types_numpy_lacks_and_external_data_are_refused_in_one_line():
    bfloat = helper.make_tensor("t", TensorProto.BFLOAT16, [1], [1.0])
    with pytest.raises(ModelError, match="bfloat16 tensors.*--backend onnxruntime"):
        onnx_schema.to_array(_light(bfloat))
    external = numpy_helper.from_array(np.zeros(2, np.float32), "w")
    external.ClearField("raw_data")
    external.data_location = TensorProto.EXTERNAL
    external.external_data.add(key="location", value="weights.bin")
    with pytest.raises(ModelError, match="external file"):
        onnx_schema.to_array(_light(external))


def test_attribute_values_are_what_onnx_helper_gives():
    node = helper.make_node("Any", ["x"], ["y"], alpha=0.25, axis=-1, mode="constant", perm=[1, 0],
                            scales=[0.5, 2.0], names=["a", "b"],
                            value=numpy_helper.from_array(np.arange(6, dtype=np.int64).reshape(2, 3)))
    model = helper.make_model(helper.make_graph([node], "g", [], []))
    parsed = onnx_schema.ModelProto()
    parsed.ParseFromString(model.SerializeToString())
    for ours, theirs in zip(parsed.graph.node[0].attribute, node.attribute):
        assert ours.name == theirs.name
        value, expected = onnx_schema.attribute_value(ours), helper.get_attribute_value(theirs)
        if ours.name == "value":
            assert np.array_equal(onnx_schema.to_array(value), numpy_helper.to_array(expected))
        else:
            assert value == expected


def test_the_default_model_reads_the_same_both_ways():
    """Every initializer and attribute of the shipped graph, through both parsers."""
    path = default_model_path()
    data = path.read_bytes()
    light, full = parse_model(data, path, light=True), parse_model(data, path)
    for ours, theirs in zip(light.graph.initializer, full.graph.initializer, strict=True):
        expected = numpy_helper.to_array(theirs)
        got = onnx_schema.to_array(ours)
        assert ours.name == theirs.name and got.dtype == expected.dtype and got.tobytes() == expected.tobytes()
    for ours, theirs in zip(light.graph.node, full.graph.node, strict=True):
        got = {a.name: onnx_schema.attribute_value(a) for a in ours.attribute}
        expected = {a.name: helper.get_attribute_value(a) for a in theirs.attribute}
        assert got.keys() == expected.keys()
        for name, value in got.items():
            if hasattr(value, "raw_data"):  # a tensor
                assert np.array_equal(onnx_schema.to_array(value), numpy_helper.to_array(expected[name]))
            else:
                assert value == expected[name]
