"""The catalog of event types endpoints may subscribe to, and the JSON payload of an event.

The types are the `webhooks` queue's in kit.topology (`webhook_events()`): the messages of every
`<domain>_events.proto` except those marked `(emporium.access.v1.internal_event)` (one-time
secrets), those with a field marked `(emporium.access.v1.personal_data)` directly or in a
message they hold (the user events that carry an email or a name), and the webhooks service's
own. Nobody keeps a list: a new event in an `_events.proto` becomes subscribable, and is bound
to the queue, with the next build. Descriptions are the messages' leading comments, read from
the descriptor set the service is built with (gen/descriptor/emporium.binpb keeps them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from google.protobuf import descriptor_pb2, json_format
from google.protobuf.message import Message

from kit import topology
from kit.events import Event, message_class

QUEUE = "webhooks"
DESCRIPTOR_SET = Path(__file__).resolve().parents[2] / "gen/descriptor/emporium.binpb"
SAMPLE_TYPE = "emporium.order.v1.OrderPlaced"
_FILE_MESSAGE = 4


@dataclass(frozen=True)
class EventType:
    name: str
    description: str
    domain: str


def _comment(text: str) -> str:
    return " ".join(line.strip() for line in text.strip().splitlines() if line.strip())


def described(
    names: Iterable[str], files: Iterable[descriptor_pb2.FileDescriptorProto]
) -> list[EventType]:
    """The event types `names`, ordered by name, with the leading comments of their messages."""
    comments: dict[str, str] = {}
    for f in files:
        locations = {tuple(loc.path): loc.leading_comments for loc in f.source_code_info.location}
        for i, m in enumerate(f.message_type):
            comments[f"{f.package}.{m.name}"] = locations.get((_FILE_MESSAGE, i), "")
    return [EventType(n, _comment(comments.get(n, "")), domain_of(n)) for n in sorted(names)]


@cache
def catalog() -> tuple[EventType, ...]:
    """The event types endpoints may subscribe to: the `webhooks` queue's (kit.topology)."""
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes()).file
    return tuple(described(topology.event_types(QUEUE), files))


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
