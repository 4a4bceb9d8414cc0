"""The catalog of public event types, derived from the protos, and the JSON payload of an event.

Public events are the messages of every `<domain>_events.proto` in the descriptor set the
service is built with (gen/descriptor/emporium.binpb, which keeps the comments), except:

- events marked `(emporium.access.v1.internal_event)` (one-time secrets for the notification
  service);
- events with a field marked `(emporium.access.v1.personal_data)`, directly or in a message
  they contain (the user events that carry an email or a name);
- the webhooks service's own events (an endpoint is not told about its own suspension).

Nobody keeps a list: a new event in an `_events.proto` becomes subscribable, and is bound to the
service's queue, with the next build. The `_pb2` modules of the public events are imported so
that their messages decode (kit.events.message_class).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from emporium.access.v1 import access_pb2
from google.protobuf import descriptor_pb2, json_format
from google.protobuf.message import Message

from kit.events import Event, message_class

DESCRIPTOR_SET = Path(__file__).resolve().parents[2] / "gen/descriptor/emporium.binpb"
OWN_DOMAIN = "webhooks"
SAMPLE_TYPE = "emporium.order.v1.OrderPlaced"
_FILE_MESSAGE = 4


@dataclass(frozen=True)
class EventType:
    name: str
    description: str
    domain: str


def _comment(text: str) -> str:
    return " ".join(line.strip() for line in text.strip().splitlines() if line.strip())


def public_event_types(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> list[EventType]:
    """The public event types of a descriptor set, ordered by name (see the module doc)."""
    files = list(files)
    messages: dict[str, descriptor_pb2.DescriptorProto] = {}

    def index(prefix: str, items: Iterable[descriptor_pb2.DescriptorProto]) -> None:
        for m in items:
            messages[f"{prefix}.{m.name}"] = m
            index(f"{prefix}.{m.name}", m.nested_type)

    for f in files:
        index(f.package, f.message_type)

    def personal(name: str, seen: frozenset[str] = frozenset()) -> bool:
        message = messages.get(name)
        if message is None or name in seen:
            return False
        for fld in message.field:
            if fld.options.Extensions[access_pb2.personal_data]:
                return True
            if fld.type == fld.TYPE_MESSAGE and personal(fld.type_name.lstrip("."), seen | {name}):
                return True
        return False

    found: list[EventType] = []
    for f in files:
        if not f.name.endswith("_events.proto"):
            continue
        domain = domain_of(f.package + ".")
        if domain == OWN_DOMAIN:
            continue
        comments = {tuple(loc.path): loc.leading_comments for loc in f.source_code_info.location}
        for i, m in enumerate(f.message_type):
            name = f"{f.package}.{m.name}"
            if m.options.Extensions[access_pb2.internal_event] or personal(name):
                continue
            found.append(EventType(name, _comment(comments.get((_FILE_MESSAGE, i), "")), domain))
    return sorted(found, key=lambda t: t.name)


@cache
def catalog() -> tuple[EventType, ...]:
    """The public event types of the built descriptor set, their `_pb2` modules imported."""
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes()).file
    types = public_event_types(files)
    for f in files:
        if f.name.endswith("_events.proto"):
            importlib.import_module(f.name.removesuffix(".proto").replace("/", ".") + "_pb2")
    return tuple(types)


def domain_of(event_type: str) -> str:
    """The domain (and publishing service) of an event type: `order` for emporium.order.v1.X."""
    parts = event_type.split(".")
    return parts[1] if len(parts) > 2 else ""


def public_names() -> frozenset[str]:
    return frozenset(t.name for t in catalog())


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def payload(event_type: str, time: datetime, message: Message) -> str:
    """The request body: `{"type", "timestamp", "data"}`, data with proto field names."""
    data = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    body = {"type": event_type, "timestamp": _rfc3339(time), "data": data}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def event_payload(event: Event) -> str:
    return payload(event.type, event.time, event.decode())


def sample_payload(event_type: str, time: datetime) -> str:
    """A test delivery's body: the event type's message with every field at its default."""
    return payload(event_type, time, message_class(event_type)())
