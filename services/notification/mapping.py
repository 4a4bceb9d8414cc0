"""Translation between the notification service's protobuf messages and its domain objects."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from emporium.notification.v1 import (
    notification_pb2,
    notification_preferences_pb2,
    notification_template_pb2,
    push_device_pb2,
)
from google.protobuf import field_mask_pb2, json_format, struct_pb2

from kit import errors
from kit.mapping import timestamp
from services.notification.domain import (
    Channel,
    Notification,
    Platform,
    Preferences,
    PushDevice,
    QuietHours,
    State,
    Subscription,
    Topic,
)
from services.notification.rendering import Template

N = notification_pb2.Notification
P = notification_preferences_pb2.NotificationPreferences
T = notification_template_pb2.NotificationTemplate

# Preference fields per topic, as the contract names them.
TOPIC_FIELDS = {
    Topic.ORDER_UPDATES: "order_updates",
    Topic.SHIPPING_UPDATES: "shipping_updates",
    Topic.NEW_PRODUCTS: "new_products",
    Topic.PRODUCT_REVIEWS: "product_reviews",
    Topic.MARKETING: "marketing",
}


def channel_of(value: int, field: str, *, allow_unspecified: bool = True) -> Channel | None:
    if value == 0 and allow_unspecified:
        return None
    try:
        return Channel(value)
    except ValueError:
        raise errors.InvalidArgument(field, "is not a known channel") from None


def topic_of(value: int, field: str) -> Topic | None:
    if value == 0:
        return None
    try:
        return Topic(value)
    except ValueError:
        raise errors.InvalidArgument(field, "is not a known topic") from None


def state_of(value: int, field: str) -> State | None:
    if value == 0:
        return None
    try:
        return State(value)
    except ValueError:
        raise errors.InvalidArgument(field, "is not a known state") from None


def notification_to_proto(n: Notification) -> notification_pb2.Notification:
    # html_body and the sealed content are never returned; both stay inside the service.
    return N(
        id=n.id,
        user_id=n.user_id,
        channel=int(n.channel),
        topic=int(n.topic),
        template_id=n.template_id,
        template_version=n.template_version,
        subject=n.subject,
        body=n.body,
        recipient=n.recipient,
        state=int(n.state),
        failure_reason=n.failure_reason,
        attempt_count=n.attempt_count,
        source_event_id=n.source_event_id,
        source_event_type=n.source_event_type,
        test=n.test,
        read_time=timestamp(n.read_time),
        create_time=timestamp(n.create_time),
        send_time=timestamp(n.send_time),
        deliver_time=timestamp(n.deliver_time),
        scheduled_time=timestamp(n.scheduled_time) if n.state == State.QUEUED else None,
    )


# --- preferences ------------------------------------------------------------------------------


def preferences_to_proto(p: Preferences) -> notification_preferences_pb2.NotificationPreferences:
    message = P(user_id=p.user_id, update_time=timestamp(p.update_time))
    for topic, name in TOPIC_FIELDS.items():
        sub = p.subscription(topic)
        field = getattr(message, name)
        field.subscribed = sub.subscribed
        field.channels.extend(sorted(int(c) for c in sub.channels))
        if topic == Topic.NEW_PRODUCTS:
            field.category_ids.extend(sub.category_ids)
    message.quiet_hours.enabled = p.quiet_hours.enabled
    message.quiet_hours.start_minute = p.quiet_hours.start_minute
    message.quiet_hours.end_minute = p.quiet_hours.end_minute
    return message


def preferences_from_proto(user_id: str, message: Any) -> Preferences:
    v = errors.Violations()
    topics: dict[Topic, Subscription] = {}
    for topic, name in TOPIC_FIELDS.items():
        field = getattr(message, name)
        channels = []
        for i, c in enumerate(field.channels):
            if c not in tuple(Channel):
                v.add(f"notification_preferences.{name}.channels[{i}]", "is not a known channel")
            else:
                channels.append(Channel(c))
        category_ids = tuple(field.category_ids) if topic == Topic.NEW_PRODUCTS else ()
        topics[topic] = Subscription(field.subscribed, frozenset(channels), category_ids)
    q = message.quiet_hours
    for name in ("start_minute", "end_minute"):
        value = getattr(q, name)
        v.check(
            0 <= value < 1440, f"notification_preferences.quiet_hours.{name}", "must be 0 to 1439"
        )
    v.raise_if_any()
    quiet = QuietHours(q.enabled, q.start_minute, q.end_minute) if q.enabled else QuietHours()
    return Preferences(user_id=user_id, topics=topics, quiet_hours=quiet)


def apply_preferences_mask(
    current: Preferences, requested: Any, mask: field_mask_pb2.FieldMask
) -> Preferences:
    """`current` with the fields of `requested` named in `mask` (every field when empty)."""
    paths = [p for p in mask.paths if p]
    merged = preferences_to_proto(current)
    if not paths:
        merged = P()
        merged.CopyFrom(requested)
    else:
        for path in paths:
            if not field_mask_pb2.FieldMask(paths=[path]).IsValidForDescriptor(
                P.DESCRIPTOR
            ) or path in (
                "user_id",
                "update_time",
            ):
                raise errors.InvalidArgument("update_mask", f"{path!r} is not an updatable field")
        field_mask_pb2.FieldMask(paths=paths).MergeMessage(
            requested, merged, replace_message_field=True, replace_repeated_field=True
        )
    return replace(preferences_from_proto(current.user_id, merged), update_time=current.update_time)


# --- templates --------------------------------------------------------------------------------


def template_to_proto(t: Template) -> notification_template_pb2.NotificationTemplate:
    from services.notification.samples import TOPICS

    return T(
        id=t.id,
        display_name=t.display_name,
        event_type=t.event_type,
        topic=int(TOPICS.get(t.event_type, Topic.UNSPECIFIED)),
        channel=int(t.channel),
        locale=t.locale,
        subject_template=t.subject_template,
        body_template=t.body_template,
        html_body_template=t.html_body_template,
        active=t.active,
        version=t.version,
        create_time=timestamp(t.create_time),
        update_time=timestamp(t.update_time),
    )


def template_from_proto(message: Any) -> Template:
    channel = channel_of(message.channel, "notification_template.channel")
    return (
        Template(
            id="",
            event_type=message.event_type,
            channel=channel or Channel.EMAIL,
            locale=message.locale,
            subject_template=message.subject_template,
            body_template=message.body_template,
            html_body_template=message.html_body_template,
            display_name=message.display_name,
            active=message.active,
        )
        if channel is not None
        else _missing_channel()
    )


def _missing_channel() -> Template:
    raise errors.InvalidArgument("notification_template.channel", "is required")


MUTABLE_TEMPLATE_FIELDS = (
    "display_name",
    "subject_template",
    "body_template",
    "html_body_template",
    "active",
)


def apply_template_mask(
    current: Template, requested: Any, mask: field_mask_pb2.FieldMask
) -> Template:
    paths = [p for p in mask.paths if p] or list(MUTABLE_TEMPLATE_FIELDS)
    changes = {}
    for path in paths:
        if path not in MUTABLE_TEMPLATE_FIELDS:
            raise errors.InvalidArgument("update_mask", f"{path!r} is immutable or unknown")
        changes[path] = getattr(requested, path)
    return replace(current, **changes)


def struct_to_dict(value: struct_pb2.Struct | None) -> dict[str, Any] | None:
    if value is None or not value.fields:
        return None
    return json_format.MessageToDict(value)


def platform_of(value: int) -> Platform | None:
    """The domain platform of a PushDevice.Platform value; None when unset; INVALID_ARGUMENT
    for a value this service does not know."""
    if value == push_device_pb2.PushDevice.PLATFORM_UNSPECIFIED:
        return None
    try:
        return Platform(value)
    except ValueError:
        raise errors.InvalidArgument("push_device.platform", "is not a known platform") from None


def push_device_to_proto(d: PushDevice) -> push_device_pb2.PushDevice:
    # The token (endpoint) and keys are INPUT_ONLY: never returned.
    return push_device_pb2.PushDevice(
        id=d.id,
        user_id=d.user_id,
        platform=int(d.platform),
        display_name=d.display_name,
        create_time=timestamp(d.create_time),
        last_send_time=timestamp(d.last_send_time),
    )
