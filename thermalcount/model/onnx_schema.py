"""The few messages of ``onnx.proto`` the runtime reads, without ``import onnx``.

``import onnx`` is most of a model's start-up (mostly ml_dtypes): on the 2-core development
VM, loaded, ``Model.load('default', backend='onnxruntime')`` took 1.8-2.5 s with it and
0.4-0.6 s without (2026-12-06); with the numpy backend 0.81 s against 0.17 s (load ~2.7,
medians of 11 interleaved, docs/performance.md).
Both backends parse the model with these messages: the same field numbers as onnx.proto, only
the fields used here. onnxruntime needs the graph's input, outputs, metadata and node wiring
(to cut the state-only copy); the numpy backend also reads each node's attributes and the
initializers' values (:func:`attribute_value`, :func:`to_array`, which give what
``onnx.helper.get_attribute_value`` and ``onnx.numpy_helper.to_array`` give for the types a
runtime graph uses). Every other field is kept as an unknown field and written back unchanged
by ``SerializeToString``, so a pruned copy is still the whole model to onnxruntime.
"""

from __future__ import annotations

import sys

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from thermalcount.errors import ModelError

#: onnx TensorProto.DataType values used by the contract, and names for messages.
FLOAT, INT64 = 1, 7
DATA_TYPE_NAMES = {1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
                   8: "string", 9: "bool", 10: "float16", 11: "double", 12: "uint32", 13: "uint64",
                   14: "complex64", 15: "complex128", 16: "bfloat16"}

_PACKAGE = "thermalcount_onnx_subset"
_OPTIONAL = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
_REPEATED = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
_T = descriptor_pb2.FieldDescriptorProto
_PACKED = "packed"  # a repeated number written packed, as onnx.proto declares it
#: message -> (field name, number, label, type, message type name, _PACKED or None);
#: onnx.proto's numbers.
_MESSAGES = {
    "StringStringEntryProto": [("key", 1, _OPTIONAL, _T.TYPE_STRING, None),
                               ("value", 2, _OPTIONAL, _T.TYPE_STRING, None)],
    "OperatorSetIdProto": [("domain", 1, _OPTIONAL, _T.TYPE_STRING, None),
                           ("version", 2, _OPTIONAL, _T.TYPE_INT64, None)],
    "Dimension": [("dim_value", 1, _OPTIONAL, _T.TYPE_INT64, None),
                  ("dim_param", 2, _OPTIONAL, _T.TYPE_STRING, None)],
    "TensorShapeProto": [("dim", 1, _REPEATED, _T.TYPE_MESSAGE, "Dimension")],
    "TensorTypeProto": [("elem_type", 1, _OPTIONAL, _T.TYPE_INT32, None),
                        ("shape", 2, _OPTIONAL, _T.TYPE_MESSAGE, "TensorShapeProto")],
    "TypeProto": [("tensor_type", 1, _OPTIONAL, _T.TYPE_MESSAGE, "TensorTypeProto")],
    "ValueInfoProto": [("name", 1, _OPTIONAL, _T.TYPE_STRING, None),
                       ("type", 2, _OPTIONAL, _T.TYPE_MESSAGE, "TypeProto")],
    "TensorProto": [("dims", 1, _REPEATED, _T.TYPE_INT64, None),
                    ("data_type", 2, _OPTIONAL, _T.TYPE_INT32, None),
                    ("float_data", 4, _REPEATED, _T.TYPE_FLOAT, _PACKED),
                    ("int32_data", 5, _REPEATED, _T.TYPE_INT32, _PACKED),
                    ("string_data", 6, _REPEATED, _T.TYPE_BYTES, None),
                    ("int64_data", 7, _REPEATED, _T.TYPE_INT64, _PACKED),
                    ("name", 8, _OPTIONAL, _T.TYPE_STRING, None),
                    ("raw_data", 9, _OPTIONAL, _T.TYPE_BYTES, None),
                    ("double_data", 10, _REPEATED, _T.TYPE_DOUBLE, _PACKED),
                    ("uint64_data", 11, _REPEATED, _T.TYPE_UINT64, _PACKED),
                    ("data_location", 14, _OPTIONAL, _T.TYPE_INT32, None)],
    # A Constant's value and the attributes of the contract's operators; a sub-graph (g,
    # graphs), a sparse tensor or a type proto stay unknown fields: no runtime operator has one.
    "AttributeProto": [("name", 1, _OPTIONAL, _T.TYPE_STRING, None),
                       ("f", 2, _OPTIONAL, _T.TYPE_FLOAT, None),
                       ("i", 3, _OPTIONAL, _T.TYPE_INT64, None),
                       ("s", 4, _OPTIONAL, _T.TYPE_BYTES, None),
                       ("t", 5, _OPTIONAL, _T.TYPE_MESSAGE, "TensorProto"),
                       ("floats", 7, _REPEATED, _T.TYPE_FLOAT, None),
                       ("ints", 8, _REPEATED, _T.TYPE_INT64, None),
                       ("strings", 9, _REPEATED, _T.TYPE_BYTES, None),
                       ("tensors", 10, _REPEATED, _T.TYPE_MESSAGE, "TensorProto"),
                       ("type", 20, _OPTIONAL, _T.TYPE_INT32, None),
                       ("ref_attr_name", 21, _OPTIONAL, _T.TYPE_STRING, None)],
    "NodeProto": [("input", 1, _REPEATED, _T.TYPE_STRING, None),
                  ("output", 2, _REPEATED, _T.TYPE_STRING, None),
                  ("name", 3, _OPTIONAL, _T.TYPE_STRING, None),
                  ("op_type", 4, _OPTIONAL, _T.TYPE_STRING, None),
                  ("attribute", 5, _REPEATED, _T.TYPE_MESSAGE, "AttributeProto"),
                  ("domain", 7, _OPTIONAL, _T.TYPE_STRING, None)],
    "GraphProto": [("node", 1, _REPEATED, _T.TYPE_MESSAGE, "NodeProto"),
                   ("name", 2, _OPTIONAL, _T.TYPE_STRING, None),
                   ("initializer", 5, _REPEATED, _T.TYPE_MESSAGE, "TensorProto"),
                   ("input", 11, _REPEATED, _T.TYPE_MESSAGE, "ValueInfoProto"),
                   ("output", 12, _REPEATED, _T.TYPE_MESSAGE, "ValueInfoProto"),
                   ("value_info", 13, _REPEATED, _T.TYPE_MESSAGE, "ValueInfoProto")],
    "ModelProto": [("ir_version", 1, _OPTIONAL, _T.TYPE_INT64, None),
                   ("graph", 7, _OPTIONAL, _T.TYPE_MESSAGE, "GraphProto"),
                   ("opset_import", 8, _REPEATED, _T.TYPE_MESSAGE, "OperatorSetIdProto"),
                   ("metadata_props", 14, _REPEATED, _T.TYPE_MESSAGE, "StringStringEntryProto")],
}


def _message_classes() -> dict:
    file = descriptor_pb2.FileDescriptorProto(name=f"{_PACKAGE}.proto", package=_PACKAGE, syntax="proto2")
    for name, fields in _MESSAGES.items():
        message = file.message_type.add(name=name)
        for field_name, number, label, kind, type_name in fields:
            field = message.field.add(name=field_name, number=number, label=label, type=kind)
            if type_name == _PACKED:
                field.options.packed = True
            elif type_name is not None:
                field.type_name = f".{_PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
            for name in _MESSAGES}


ModelProto = _message_classes()["ModelProto"]


#: onnx TensorProto.DataType -> numpy dtype, for the types numpy has natively (bfloat16 and
#: the float8/4-bit types would need ml_dtypes, which is what this module avoids importing).
NUMPY_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32,
                7: np.int64, 8: np.object_, 9: np.bool_, 10: np.float16, 11: np.float64,
                12: np.uint32, 13: np.uint64, 14: np.complex64, 15: np.complex128}
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
# Where each type keeps its values when they are not in raw_data (onnx.proto's comments).
_INT32_STORED = {2, 3, 4, 5, 6, 9, 10}  # as int32 (float16 as its uint16 bits)
_UINT64_STORED = {12, 13}

# AttributeProto.AttributeType values.
_ATTRIBUTE_FIELDS = {1: "f", 2: "i", 3: "s", 4: "t", 6: "floats", 7: "ints", 8: "strings", 9: "tensors"}


def numpy_dtype(data_type: int):
    """The numpy dtype of an onnx element type; ModelError for one numpy does not have."""
    dtype = NUMPY_DTYPES.get(data_type)
    if dtype is None:
        name = DATA_TYPE_NAMES.get(data_type, f"type {data_type}")
        raise ModelError(f"the model holds {name} tensors, which the numpy backend does not read; "
                         "use --backend onnxruntime or re-export the model")
    return np.dtype(dtype)


def to_array(tensor) -> np.ndarray:
    """A TensorProto's values, as ``onnx.numpy_helper.to_array`` gives them for these types
    (raw little-endian bytes as a read-only view, else the typed field converted)."""
    dtype = numpy_dtype(tensor.data_type)
    dims = tuple(tensor.dims)
    if tensor.data_location == _EXTERNAL:
        raise ModelError(f"tensor {tensor.name!r} keeps its values in an external file; the runtime "
                         "reads self-contained models only: re-export the model")
    if dtype == np.object_:
        return np.asarray([s.decode("utf-8") for s in tensor.string_data]).astype(object).reshape(dims)
    if tensor.HasField("raw_data"):
        values = np.frombuffer(tensor.raw_data, dtype=dtype.newbyteorder("<"))
        if sys.byteorder == "big":
            values = values.astype(dtype)
        return values.reshape(dims)
    if tensor.data_type in _INT32_STORED:
        stored = np.array(tensor.int32_data, dtype=np.int32)
        if dtype == np.float16:
            return stored.view(np.uint32).astype(np.uint16).reshape(dims).view(np.float16)
        if dtype == np.bool_:
            return stored.view(np.uint32).astype(np.uint8).view(np.bool_).reshape(dims)
        return stored.astype(dtype).reshape(dims)
    if tensor.data_type in _UINT64_STORED:
        return np.asarray(tensor.uint64_data, dtype=np.uint64).astype(dtype).reshape(dims)
    if tensor.data_type in (1, 14):
        stored = np.asarray(tensor.float_data, dtype=np.float32)
    elif tensor.data_type in (11, 15):
        stored = np.asarray(tensor.double_data, dtype=np.float64)
    else:  # int64
        return np.asarray(tensor.int64_data, dtype=np.int64).reshape(dims)
    if dtype.kind == "c":
        return stored.view(dtype).reshape(dims)
    return stored.reshape(dims)


def attribute_value(attribute):
    """An AttributeProto's value, as ``onnx.helper.get_attribute_value`` gives it: a number,
    bytes, a TensorProto, or a list of them; None for an undefined one."""
    if attribute.ref_attr_name:
        raise ModelError(f"attribute {attribute.name!r} refers to a function's attribute; "
                         "the runtime runs plain graphs only: re-export the model")
    if attribute.type == 0:
        return None
    field = _ATTRIBUTE_FIELDS.get(attribute.type)
    if field is None:
        raise ModelError(f"attribute {attribute.name!r} is of a kind (type {attribute.type}) no "
                         "operator of the runtime takes; re-export the model")
    value = getattr(attribute, field)
    return list(value) if attribute.type >= 6 else value


def int64_values(tensor) -> list:
    """The values of an int64 initializer (raw little-endian bytes or ``int64_data``)."""
    if tensor.data_type != INT64:
        return []
    if tensor.raw_data:
        return [int.from_bytes(tensor.raw_data[i:i + 8], "little", signed=True)
                for i in range(0, len(tensor.raw_data), 8)]
    return list(tensor.int64_data)
