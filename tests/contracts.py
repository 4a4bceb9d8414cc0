"""Walks a FileDescriptorSet: every service, RPC, HTTP binding and commentable element."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from emporium.access.v1 import access_pb2
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2

# Field numbers in descriptor.proto, used to address elements in SourceCodeInfo paths.
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE = 4, 5, 6
_MSG_FIELD, _MSG_NESTED, _MSG_ENUM, _MSG_ONEOF = 2, 3, 4, 8
_ENUM_VALUE, _SERVICE_METHOD = 2, 2

_VARIABLE = re.compile(r"\{([^}=]+)(?:=([^}]*))?\}")


@dataclass(frozen=True)
class Element:
    """A message, field, enum, enum value, oneof, service or RPC, with its comment."""

    kind: str
    name: str
    file: str
    comment: str


@dataclass(frozen=True)
class Binding:
    """One HTTP rule of an RPC: verb and path template."""

    rpc: str
    verb: str
    path: str

    @property
    def shape(self) -> tuple[str, str]:
        """Verb and template with variable names erased: two equal shapes collide."""
        return self.verb, _VARIABLE.sub(lambda m: m.group(2) or "*", self.path)


@dataclass(frozen=True)
class Rpc:
    """A method of an Emporium service, with its options decoded."""

    name: str
    file: str
    comment: str
    method: descriptor_pb2.MethodDescriptorProto

    @property
    def bindings(self) -> list[Binding]:
        rule = self.method.options.Extensions[annotations_pb2.http]
        rules = [rule, *rule.additional_bindings] if rule.WhichOneof("pattern") else []
        return [_binding(self.name, r) for r in rules]

    @property
    def access(self) -> int:
        return self.method.options.Extensions[access_pb2.access]


def _binding(rpc: str, rule: http_pb2.HttpRule) -> Binding:
    verb = rule.WhichOneof("pattern")
    path = rule.custom.path if verb == "custom" else getattr(rule, verb)
    if verb == "custom":
        verb = rule.custom.kind.lower()
    return Binding(rpc, verb, path)


def own_files(fds: descriptor_pb2.FileDescriptorSet) -> list[descriptor_pb2.FileDescriptorProto]:
    """Emporium's own files, without the google/ imports."""
    return [f for f in fds.file if f.name.startswith("emporium/")]


def _comments(f: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    return {
        tuple(loc.path): (loc.leading_comments + loc.trailing_comments).strip()
        for loc in f.source_code_info.location
    }


def elements(fds: descriptor_pb2.FileDescriptorSet) -> Iterator[Element]:
    """Every commentable element of Emporium's own files."""
    for f in own_files(fds):
        comments = _comments(f)

        def element(kind: str, name: str, path: tuple[int, ...], f=f, c=comments) -> Element:
            return Element(kind, name, f.name, c.get(path, ""))

        def enum(e: descriptor_pb2.EnumDescriptorProto, scope: str, path: tuple[int, ...]):
            yield element("enum", f"{scope}.{e.name}", path)
            for i, v in enumerate(e.value):
                yield element("enum value", f"{scope}.{e.name}.{v.name}", (*path, _ENUM_VALUE, i))

        def message(m: descriptor_pb2.DescriptorProto, scope: str, path: tuple[int, ...]):
            name = f"{scope}.{m.name}"
            if m.options.map_entry:  # synthesised by protoc for map<,> fields
                return
            yield element("message", name, path)
            for i, fld in enumerate(m.field):
                yield element("field", f"{name}.{fld.name}", (*path, _MSG_FIELD, i))
            for i, o in enumerate(m.oneof_decl):
                if not any(fld.proto3_optional for fld in m.field if fld.oneof_index == i):
                    yield element("oneof", f"{name}.{o.name}", (*path, _MSG_ONEOF, i))
            for i, nested in enumerate(m.nested_type):
                yield from message(nested, name, (*path, _MSG_NESTED, i))
            for i, e in enumerate(m.enum_type):
                yield from enum(e, name, (*path, _MSG_ENUM, i))

        for i, m in enumerate(f.message_type):
            yield from message(m, f.package, (_FILE_MESSAGE, i))
        for i, e in enumerate(f.enum_type):
            yield from enum(e, f.package, (_FILE_ENUM, i))
        for i, s in enumerate(f.service):
            yield element("service", f"{f.package}.{s.name}", (_FILE_SERVICE, i))
            for j, m in enumerate(s.method):
                yield element(
                    "rpc", f"{f.package}.{s.name}.{m.name}", (_FILE_SERVICE, i, _SERVICE_METHOD, j)
                )


def rpcs(fds: descriptor_pb2.FileDescriptorSet) -> list[Rpc]:
    """Every RPC of every Emporium service."""
    found = []
    for f in own_files(fds):
        comments = _comments(f)
        for i, s in enumerate(f.service):
            for j, m in enumerate(s.method):
                comment = comments.get((_FILE_SERVICE, i, _SERVICE_METHOD, j), "")
                found.append(Rpc(f"{f.package}.{s.name}.{m.name}", f.name, comment, m))
    return found


def fields(
    fds: descriptor_pb2.FileDescriptorSet,
) -> Iterator[tuple[str, descriptor_pb2.FieldDescriptorProto]]:
    """Every field of every Emporium message, with the message's full name."""

    def walk(m: descriptor_pb2.DescriptorProto, scope: str):
        name = f"{scope}.{m.name}"
        for fld in m.field:
            yield name, fld
        for nested in m.nested_type:
            if not nested.options.map_entry:
                yield from walk(nested, name)

    for f in own_files(fds):
        for m in f.message_type:
            yield from walk(m, f.package)
