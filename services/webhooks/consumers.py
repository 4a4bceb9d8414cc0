"""The events the webhooks service reacts to: every public event type (event_types.catalog()).

`subscriptions(deliveries)` maps each public event's message class to the fan-out: the
`webhooks` entry of kit.topology, derived from the descriptors (kit.topology.webhook_events),
not kept by hand; the bootstrap applies the topology and subscribes (kit.bus.Bus.subscribe).
The fan-out is naturally idempotent (a delivery's id derives from (endpoint, event) and is
inserted once), so a redelivered event adds nothing, and the consumer has no inbox.
"""

from __future__ import annotations

from google.protobuf.message import Message

from kit import events
from kit.events import Event, message_class
from services.webhooks import event_types
from services.webhooks.handlers import DeliveryHandlers

# Its entry in kit.topology.QUEUES: every event endpoints may subscribe to.
QUEUE = "webhooks"


def subscriptions(deliveries: DeliveryHandlers) -> dict[type[Message], events.TypedHandler]:
    """Every public event type -> the fan-out to the endpoints that subscribe to it."""

    async def on_public_event(message: Message, event: Event) -> None:
        await deliveries.fan_out(event)

    return {message_class(t.name): on_public_event for t in event_types.catalog()}
