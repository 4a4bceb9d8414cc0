"""Protobuf <-> domain for the webhooks service."""

from __future__ import annotations

from datetime import timedelta

from emporium.webhooks.v1 import (
    webhook_delivery_pb2,
    webhook_endpoint_pb2,
    webhook_event_type_pb2,
)
from google.protobuf import duration_pb2

from kit import errors
from kit.mapping import timestamp
from services.webhooks.domain import Delivery, DeliveryState, Endpoint, EndpointState
from services.webhooks.event_types import EventType

PbEndpoint = webhook_endpoint_pb2.WebhookEndpoint
PbDelivery = webhook_delivery_pb2.WebhookDelivery

ENDPOINT_STATES = {
    EndpointState.ACTIVE: PbEndpoint.STATE_ACTIVE,
    EndpointState.DISABLED: PbEndpoint.STATE_DISABLED,
    EndpointState.SUSPENDED: PbEndpoint.STATE_SUSPENDED,
}
ENDPOINT_STATES_BACK = {v: k for k, v in ENDPOINT_STATES.items()}
DELIVERY_STATES = {
    DeliveryState.PENDING: PbDelivery.STATE_PENDING,
    DeliveryState.SUCCEEDED: PbDelivery.STATE_SUCCEEDED,
    DeliveryState.FAILED: PbDelivery.STATE_FAILED,
    DeliveryState.RETRYING: PbDelivery.STATE_RETRYING,
}
DELIVERY_STATES_BACK = {v: k for k, v in DELIVERY_STATES.items()}


def endpoint_state(value: int, field: str = "state") -> EndpointState | None:
    """None for STATE_UNSPECIFIED; INVALID_ARGUMENT for a number that is no state."""
    if value == PbEndpoint.STATE_UNSPECIFIED:
        return None
    try:
        return ENDPOINT_STATES_BACK[value]
    except KeyError:
        raise errors.InvalidArgument(field, "is not a known state") from None


def delivery_state(value: int) -> DeliveryState | None:
    if value == PbDelivery.STATE_UNSPECIFIED:
        return None
    try:
        return DELIVERY_STATES_BACK[value]
    except KeyError:
        raise errors.InvalidArgument("state", "is not a known state") from None


def endpoint_to_proto(e: Endpoint, *, with_secret: bool = False) -> PbEndpoint:
    return PbEndpoint(
        id=e.id,
        url=e.url,
        description=e.description,
        event_types=list(e.event_types),
        state=ENDPOINT_STATES[e.state],
        secret=e.secrets[0].value if with_secret else "",
        previous_secret_expire_time=timestamp(e.previous_secret_expire_time),
        create_time=timestamp(e.create_time),
        update_time=timestamp(e.update_time),
    )


def _duration(value: timedelta) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromTimedelta(value)
    return d


def delivery_to_proto(d: Delivery) -> PbDelivery:
    return PbDelivery(
        id=d.id,
        endpoint_id=d.endpoint_id,
        event_id=d.event_id,
        event_type=d.event_type,
        event_time=timestamp(d.event_time),
        payload=d.payload,
        state=DELIVERY_STATES[d.state],
        attempts=[
            PbDelivery.Attempt(
                response_status_code=a.status_code,
                response_body=a.body,
                latency=_duration(a.latency),
                error=a.error,
                attempt_time=timestamp(a.attempt_time),
            )
            for a in d.attempts
        ],
        next_attempt_time=(
            timestamp(d.next_attempt_time)
            if d.state in (DeliveryState.PENDING, DeliveryState.RETRYING)
            else None
        ),
        test=d.test,
        create_time=timestamp(d.create_time),
        update_time=timestamp(d.update_time),
    )


def event_type_to_proto(t: EventType) -> webhook_event_type_pb2.WebhookEventType:
    return webhook_event_type_pb2.WebhookEventType(
        name=t.name, description=t.description, domain=t.domain
    )
