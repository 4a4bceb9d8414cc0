"""In-memory repositories and channels for unit tests.

They pass the same contract tests as the MongoDB ones (tests/integration/
test_notification_on_mongo.py); events go to a kit InMemoryOutbox.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from kit.events import Event
from kit.outbox import InMemoryOutbox
from services.notification.domain import (
    Channel,
    Notification,
    Platform,
    Preferences,
    PushDevice,
    Recipient,
    Rendered,
    SendError,
    State,
    Topic,
)
from services.notification.ports import Cursor
from services.notification.rendering import Template


def _key(n: Notification) -> tuple[int, str]:
    return (int(n.create_time.timestamp() * 1000), n.id)


class InMemoryNotificationRepository:
    def __init__(self) -> None:
        self.items: dict[str, Notification] = {}
        self.inboxes: dict[str, int] = {}
        self.outbox = InMemoryOutbox()
        self.published: list[Event] = []

    def _events(self, events: Sequence[Event]) -> None:
        if events:
            self.outbox.add(events)
            self.published.extend(events)
            self.outbox.notify()

    async def add(self, notification: Notification, events: Sequence[Event] = ()) -> bool:
        if any(n.dedupe_key == notification.dedupe_key for n in self.items.values()):
            return False
        self.items[notification.id] = notification
        self._events(events)
        return True

    async def get(self, notification_id: str) -> Notification | None:
        return self.items.get(notification_id)

    def _matches(self, n, user_id, channel, topic, state, unread_only) -> bool:
        return (
            n.user_id == user_id
            and (channel is None or n.channel == channel)
            and (topic is None or n.topic == topic)
            and (state is None or n.state == state)
            and (not unread_only or n.unread)
        )

    async def list(
        self,
        user_id,
        *,
        channel=None,
        topic=None,
        state=None,
        unread_only=False,
        cursor: Cursor | None = None,
        limit=20,
    ):
        found = sorted(
            (
                n
                for n in self.items.values()
                if self._matches(n, user_id, channel, topic, state, unread_only)
            ),
            key=_key,
            reverse=True,
        )
        if cursor:
            found = [n for n in found if _key(n) < (cursor["t"], cursor["id"])]
        page = found[:limit]
        more = len(found) > limit
        next_cursor = {"t": _key(page[-1])[0], "id": page[-1].id} if page and more else None
        return page, next_cursor

    async def mark_read(self, notification_id: str, when: datetime) -> Notification | None:
        n = self.items.get(notification_id)
        if n is not None and n.read_time is None:
            n = self.items[notification_id] = replace(n, read_time=when)
        return n

    async def mark_all_read(self, user_id, channel, end_time, when) -> int:
        count = 0
        for n in list(self.items.values()):
            if self._matches(n, user_id, channel, None, None, True) and n.create_time <= end_time:
                self.items[n.id] = replace(n, read_time=when)
                count += 1
        return count

    async def count_unread(self, user_id, channel=None) -> int:
        return sum(
            self._matches(n, user_id, channel, None, None, True) for n in self.items.values()
        )

    async def claim_due(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[Notification]:
        due = [
            n
            for n in self.items.values()
            if n.state == State.QUEUED and n.scheduled_time is not None and n.scheduled_time <= now
        ]
        claimed = []
        for n in sorted(due, key=lambda n: n.scheduled_time)[:limit]:
            claimed.append(replace(n, scheduled_time=lease_until))
            self.items[n.id] = claimed[-1]
        return claimed

    async def save(self, notification: Notification, events: Sequence[Event] = ()) -> None:
        self.items[notification.id] = notification
        self._events(events)

    async def in_app_since(self, user_id, after, limit=100):
        found = sorted(
            (
                n
                for n in self.items.values()
                if n.user_id == user_id and n.channel == Channel.IN_APP and n.create_time >= after
            ),
            key=_key,
        )
        return found[:limit]

    async def anonymise(self, user_id: str) -> int:
        count = 0
        for n in list(self.items.values()):
            if n.user_id == user_id:
                self.items[n.id] = replace(
                    n,
                    user_id="",
                    recipient="",
                    subject="",
                    body="",
                    html_body="",
                    list_unsubscribe="",
                    sealed=b"",
                )
                count += 1
        self.inboxes.pop(user_id, None)
        return count

    async def bump_inbox(self, user_id: str) -> int:
        self.inboxes[user_id] = self.inboxes.get(user_id, 0) + 1
        return self.inboxes[user_id]

    async def inbox_version(self, user_id: str) -> int:
        return self.inboxes.get(user_id, 0)

    async def mark_delivered(self, notification_ids: Sequence[str], when: datetime) -> int:
        count = 0
        for nid in notification_ids:
            n = self.items.get(nid)
            if n is not None and n.state == State.SENT:
                self.items[nid] = replace(n, state=State.DELIVERED, deliver_time=when)
                count += 1
        return count


class InMemoryPushDeviceRepository:
    def __init__(self) -> None:
        self.items: dict[str, PushDevice] = {}

    async def register(self, device: PushDevice) -> PushDevice:
        existing = await self.by_endpoint(device.endpoint)
        if existing is not None:
            device = replace(device, id=existing.id, last_send_time=existing.last_send_time)
        self.items[device.id] = device
        return device

    async def get(self, device_id: str) -> PushDevice | None:
        return self.items.get(device_id)

    async def by_endpoint(self, endpoint: str) -> PushDevice | None:
        return next((d for d in self.items.values() if d.endpoint == endpoint), None)

    async def list(self, user_id: str) -> list[PushDevice]:
        mine = [d for d in self.items.values() if d.user_id == user_id]
        return sorted(mine, key=lambda d: (d.create_time or datetime.min, d.id), reverse=True)

    async def delete(self, device_id: str) -> bool:
        return self.items.pop(device_id, None) is not None

    async def sent(self, device_id: str, when: datetime) -> None:
        if device_id in self.items:
            self.items[device_id] = replace(self.items[device_id], last_send_time=when)


class InMemoryRecipientRepository:
    def __init__(self) -> None:
        self.items: dict[str, Recipient] = {}

    async def upsert(self, user_id: str, values: dict[str, Any]) -> None:
        known = {f.name for f in fields(Recipient)}
        current = self.items.get(user_id) or Recipient(user_id=user_id)
        values = {k: v for k, v in values.items() if k in known}
        if "channels" in values:
            values["channels"] = frozenset(values["channels"])
        if "roles" in values:
            values["roles"] = tuple(values["roles"])
        self.items[user_id] = replace(current, **values)

    async def get(self, user_id: str) -> Recipient | None:
        return self.items.get(user_id)

    async def delete(self, user_id: str) -> None:
        self.items.pop(user_id, None)


class InMemoryPreferencesRepository:
    def __init__(self) -> None:
        self.items: dict[str, Preferences] = {}

    async def get(self, user_id: str) -> Preferences | None:
        return self.items.get(user_id)

    async def save(self, preferences: Preferences) -> None:
        self.items[preferences.user_id] = preferences

    async def delete(self, user_id: str) -> None:
        self.items.pop(user_id, None)

    async def new_product_subscribers(self, after: str, limit: int) -> list[str]:
        ids = sorted(
            uid
            for uid, p in self.items.items()
            if uid > after and p.subscription(Topic.NEW_PRODUCTS).subscribed
        )
        return ids[:limit]


class InMemoryTemplateRepository:
    def __init__(self) -> None:
        self.items: dict[str, Template] = {}
        self.requests: dict[str, str] = {}

    def _deactivate_others(self, t: Template) -> None:
        if not t.active:
            return
        for other in list(self.items.values()):
            if (
                other.id != t.id
                and other.active
                and (other.event_type, other.channel, other.locale)
                == (t.event_type, t.channel, t.locale)
            ):
                self.items[other.id] = replace(other, active=False, version=other.version + 1)

    async def add(self, template: Template, request_id: str = "") -> Template:
        if request_id and request_id in self.requests:
            return self.items[self.requests[request_id]]
        if template.id in self.items:
            return self.items[template.id]
        self.items[template.id] = template
        if request_id:
            self.requests[request_id] = template.id
        self._deactivate_others(template)
        return template

    async def get(self, template_id: str) -> Template | None:
        return self.items.get(template_id)

    async def active(self, event_type: str, channel: Channel, locale: str) -> Template | None:
        for t in self.items.values():
            if t.active and (t.event_type, t.channel, t.locale) == (event_type, channel, locale):
                return t
        return None

    async def list(self) -> list[Template]:
        return sorted(
            self.items.values(), key=lambda t: (t.event_type, int(t.channel), t.locale, t.id)
        )

    async def replace(self, template: Template, expected_version: int) -> bool:
        stored = self.items.get(template.id)
        if stored is None or stored.version != expected_version:
            return False
        self.items[template.id] = template
        self._deactivate_others(template)
        return True

    async def delete(self, template_id: str) -> None:
        self.items.pop(template_id, None)


class InMemoryFanOutRepository:
    def __init__(self, outbox: InMemoryOutbox) -> None:
        self.recorded: set[str] = set()
        self._outbox = outbox
        self.published: list[Event] = []

    async def record(self, source_event_id: str, events: Sequence[Event]) -> bool:
        if source_event_id in self.recorded:
            return False
        self.recorded.add(source_event_id)
        self._outbox.add(events)
        self.published.extend(events)
        self._outbox.notify()
        return True


class RecordingChannels:
    """A channel fake: records what it sends; `fail` makes the next sends raise SendError."""

    available = (Channel.EMAIL, Channel.SMS, Channel.IN_APP)

    def __init__(self) -> None:
        self.sent: list[tuple[Notification, Rendered]] = []
        self.failures: list[SendError] = []

    def fail(self, reason: str, *, permanent: bool, times: int = 1) -> None:
        self.failures.extend(SendError(reason, permanent=permanent) for _ in range(times))

    async def send(self, notification: Notification, content: Rendered) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((notification, content))


class RecordingPushService:
    """The push channel's fake (ports.Channels for Channel.PUSH): answers as a push service
    would, per endpoint (`answers`, 201 by default), through the same rules as WebPushSender
    (adapters/webpush.py), and keeps what devices received, decrypted, in `received`."""

    def __init__(self, devices: Any, clock: Any) -> None:
        self.devices = devices
        self.clock = clock
        self.answers: dict[str, int] = {}
        self.received: list[tuple[str, dict[str, Any]]] = []

    async def send(self, notification: Notification, content: Rendered) -> None:
        from services.notification.adapters import webpush

        devices = [
            d
            for d in await self.devices.list(notification.user_id)
            if d.platform == Platform.WEB_PUSH
        ]
        if not devices:
            raise SendError("no push device", permanent=True)
        data = json.loads(webpush.payload(notification, content))
        outcomes = []
        for device in devices:
            status = self.answers.get(device.endpoint, 201)
            if 200 <= status < 300:
                self.received.append((device.endpoint, data))
            outcomes.append((device, webpush.decide(device, status, "")))
        await webpush.settle(self.devices, outcomes, self.clock.now())


class MovableClock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime | None = None) -> None:
        self.value = now or datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.value

    def advance(self, **delta: float) -> None:
        self.value += timedelta(**delta)
