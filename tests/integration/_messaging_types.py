"""Test-only event types, one per test: a unique proto name is a unique routing key.

Tests share the broker's `emporium.events` exchange with everything else running on the
machine (services, other test sessions). An event type made up per test, registered in
protobuf's default pool like a generated `_pb2` module would be, keeps each test's events out of
every other queue. Subprocesses make the same type from its name.
"""

from __future__ import annotations

import uuid

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

MESSAGE = "ThingHappened"


def new_type_name() -> str:
    """A fresh full proto name, e.g. `emporium.testab12cd34.v1.ThingHappened`."""
    return f"emporium.test{uuid.uuid4().hex[:12]}.v1.{MESSAGE}"


def probe_class(type_name: str) -> type[Message]:
    """The message class named `type_name` (fields: `thing_id` string, `n` int64)."""
    pool = descriptor_pool.Default()
    try:
        descriptor = pool.FindMessageTypeByName(type_name)
    except KeyError:
        package, _, message = type_name.rpartition(".")
        file = descriptor_pb2.FileDescriptorProto(
            name=f"{package.replace('.', '/')}/probe.proto", package=package, syntax="proto3"
        )
        fields = file.message_type.add(name=message)
        fields.field.add(
            name="thing_id",
            number=1,
            type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
            label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        )
        fields.field.add(
            name="n",
            number=2,
            type=descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
            label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        )
        pool.AddSerializedFile(file.SerializeToString())
        descriptor = pool.FindMessageTypeByName(type_name)
    return message_factory.GetMessageClass(descriptor)
