"""tf.train.Example / SequenceExample message classes without importing TensorFlow.

Importing ``tensorflow.core.example`` loads all of TensorFlow (seconds); the engine only
needs the message layouts, so it builds them from their descriptors in a private pool.
The wire format is TensorFlow's (tensorflow/core/example/{example,feature}.proto); tests
check that bytes round-trip with TensorFlow's own classes.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_LABEL_OPTIONAL = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
_LABEL_REPEATED = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
_T = descriptor_pb2.FieldDescriptorProto


def _message(file: descriptor_pb2.FileDescriptorProto, name: str, fields, oneofs=()):
    msg = file.message_type.add(name=name)
    for oneof in oneofs:
        msg.oneof_decl.add(name=oneof)
    for fname, number, ftype, label, type_name, extra in fields:
        field = msg.field.add(name=fname, number=number, type=ftype, label=label)
        if type_name:
            field.type_name = type_name
        if extra.get("packed"):
            field.options.packed = True
        if "oneof" in extra:
            field.oneof_index = extra["oneof"]
    return msg


def _build_pool() -> descriptor_pool.DescriptorPool:
    fp = descriptor_pb2.FileDescriptorProto(name="examplegen/tf_example.proto", package="tensorflow",
                                            syntax="proto3")
    _message(fp, "BytesList", [("value", 1, _T.TYPE_BYTES, _LABEL_REPEATED, None, {})])
    _message(fp, "FloatList", [("value", 1, _T.TYPE_FLOAT, _LABEL_REPEATED, None, {"packed": True})])
    _message(fp, "Int64List", [("value", 1, _T.TYPE_INT64, _LABEL_REPEATED, None, {"packed": True})])
    _message(fp, "Feature", [
        ("bytes_list", 1, _T.TYPE_MESSAGE, _LABEL_OPTIONAL, ".tensorflow.BytesList", {"oneof": 0}),
        ("float_list", 2, _T.TYPE_MESSAGE, _LABEL_OPTIONAL, ".tensorflow.FloatList", {"oneof": 0}),
        ("int64_list", 3, _T.TYPE_MESSAGE, _LABEL_OPTIONAL, ".tensorflow.Int64List", {"oneof": 0}),
    ], oneofs=["kind"])

    def map_message(name: str, value_type: str):
        msg = fp.message_type.add(name=name)
        entry = msg.nested_type.add(name="FeatureEntry" if name == "Features" else "FeatureListEntry")
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=_T.TYPE_STRING, label=_LABEL_OPTIONAL)
        entry.field.add(name="value", number=2, type=_T.TYPE_MESSAGE, label=_LABEL_OPTIONAL,
                        type_name=value_type)
        field_name = "feature" if name == "Features" else "feature_list"
        msg.field.add(name=field_name, number=1, type=_T.TYPE_MESSAGE, label=_LABEL_REPEATED,
                      type_name=f".tensorflow.{name}.{entry.name}")

    map_message("Features", ".tensorflow.Feature")
    _message(fp, "FeatureList", [("feature", 1, _T.TYPE_MESSAGE, _LABEL_REPEATED, ".tensorflow.Feature", {})])
    map_message("FeatureLists", ".tensorflow.FeatureList")
    _message(fp, "Example", [("features", 1, _T.TYPE_MESSAGE, _LABEL_OPTIONAL, ".tensorflow.Features", {})])
    _message(fp, "SequenceExample", [
        ("context", 1, _T.TYPE_MESSAGE, _LABEL_OPTIONAL, ".tensorflow.Features", {}),
        ("feature_lists", 2, _T.TYPE_MESSAGE, _LABEL_OPTIONAL, ".tensorflow.FeatureLists", {}),
    ])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fp)
    return pool


_POOL = _build_pool()


def _cls(name: str):
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"tensorflow.{name}"))


Example = _cls("Example")
SequenceExample = _cls("SequenceExample")
Features = _cls("Features")
Feature = _cls("Feature")
