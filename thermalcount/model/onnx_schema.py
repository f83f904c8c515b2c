"""The few messages of ``onnx.proto`` the onnxruntime path reads, without ``import onnx``.

``import onnx`` is most of a model's start-up (mostly ml_dtypes): on the 2-core development
VM, loaded, ``Model.load('default', backend='onnxruntime')`` took 1.8-2.5 s with it and
0.4-0.6 s without (2026-12-06). The onnxruntime backend only needs the graph's input, outputs, metadata and
node wiring (to cut the state-only copy), so it parses the model with these messages: the
same field numbers as onnx.proto, only the fields used here. Every other field is kept as an
unknown field and written back unchanged by ``SerializeToString``, so a pruned copy is still
the whole model to onnxruntime. The numpy backend interprets every node and keeps using
``onnx`` itself.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

#: onnx TensorProto.DataType values used by the contract, and names for messages.
FLOAT, INT64 = 1, 7
DATA_TYPE_NAMES = {1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
                   8: "string", 9: "bool", 10: "float16", 11: "double", 12: "uint32", 13: "uint64",
                   14: "complex64", 15: "complex128", 16: "bfloat16"}

_PACKAGE = "thermalcount_onnx_subset"
_OPTIONAL = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
_REPEATED = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
_T = descriptor_pb2.FieldDescriptorProto
#: message -> (field name, number, label, type, message type name or None); onnx.proto's numbers.
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
                    ("int64_data", 7, _REPEATED, _T.TYPE_INT64, None),
                    ("name", 8, _OPTIONAL, _T.TYPE_STRING, None),
                    ("raw_data", 9, _OPTIONAL, _T.TYPE_BYTES, None)],
    "NodeProto": [("input", 1, _REPEATED, _T.TYPE_STRING, None),
                  ("output", 2, _REPEATED, _T.TYPE_STRING, None),
                  ("name", 3, _OPTIONAL, _T.TYPE_STRING, None),
                  ("op_type", 4, _OPTIONAL, _T.TYPE_STRING, None),
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
            if type_name is not None:
                field.type_name = f".{_PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
            for name in _MESSAGES}


ModelProto = _message_classes()["ModelProto"]


def int64_values(tensor) -> list:
    """The values of an int64 initializer (raw little-endian bytes or ``int64_data``)."""
    if tensor.data_type != INT64:
        return []
    if tensor.raw_data:
        return [int.from_bytes(tensor.raw_data[i:i + 8], "little", signed=True)
                for i in range(0, len(tensor.raw_data), 8)]
    return list(tensor.int64_data)
