"""What the notification service's handlers need from the outside world, as Protocols."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from kit.events import Event
from services.notification.domain import (
    Channel,
    Notification,
    Preferences,
    PushDevice,
    Recipient,
    Rendered,
    State,
    Topic,
)
from services.notification.rendering import Template

# A listing cursor: {"t": create time in ms, "id": notification id}; None for the first page.
Cursor = dict[str, Any]


class NotificationRepository(Protocol):
    """The history: one document per notification, its outbox events inside it."""

    async def add(self, notification: Notification, events: Sequence[Event] = ()) -> bool:
        """Stores a new notification; False (and nothing written) when one with the same
        dedupe_key exists: the event was already handled for this user and channel."""
        ...

    async def get(self, notification_id: str) -> Notification | None: ...

    async def list(
        self,
        user_id: str,
        *,
        channel: Channel | None = None,
        topic: Topic | None = None,
        state: State | None = None,
        unread_only: bool = False,
        cursor: Cursor | None = None,
        limit: int = 20,
    ) -> tuple[list[Notification], Cursor | None]:
        """The user's notifications, newest first, and the cursor of the next page."""
        ...

    async def mark_read(self, notification_id: str, when: datetime) -> Notification | None:
        """Sets read_time unless set already; the notification after that, or None."""
        ...

    async def mark_all_read(
        self, user_id: str, channel: Channel | None, end_time: datetime, when: datetime
    ) -> int: ...

    async def count_unread(self, user_id: str, channel: Channel | None = None) -> int: ...

    async def claim_due(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[Notification]:
        """Up to `limit` QUEUED notifications whose scheduled_time has come, oldest first, each
        with its scheduled_time moved to lease_until so no other sender takes it meanwhile (a
        sender that dies frees them then). Two concurrent claims never return the same one."""
        ...

    async def save(self, notification: Notification, events: Sequence[Event] = ()) -> None:
        """Writes the notification's mutable fields and appends events to its outbox, in one
        single-document update."""
        ...

    async def in_app_since(
        self, user_id: str, after: datetime, limit: int = 100
    ) -> list[Notification]:
        """The user's in-app notifications created at or after `after`, oldest first."""
        ...

    async def anonymise(self, user_id: str) -> int:
        """Strips a deleted user's history of everything personal; returns how many."""
        ...

    async def bump_inbox(self, user_id: str) -> int:
        """Advances the version of the user's in-app inbox (unread count changes); returns it."""
        ...

    async def inbox_version(self, user_id: str) -> int: ...

    async def mark_delivered(self, notification_ids: Sequence[str], when: datetime) -> int:
        """Moves those of the notifications still SENT to DELIVERED (deliver_time `when`);
        returns how many changed. Read times and other states are left alone."""
        ...


class RecipientRepository(Protocol):
    """The projection of users (kit: UserRegistered, UserUpdated, UserSettingsUpdated ...)."""

    async def upsert(self, user_id: str, fields: dict[str, Any]) -> None:
        """Sets `fields` (Recipient attribute names) on the user's record, creating it."""
        ...

    async def get(self, user_id: str) -> Recipient | None: ...

    async def delete(self, user_id: str) -> None: ...


class PreferencesRepository(Protocol):
    async def get(self, user_id: str) -> Preferences | None: ...

    async def save(self, preferences: Preferences) -> None: ...

    async def delete(self, user_id: str) -> None: ...

    async def new_product_subscribers(self, after: str, limit: int) -> list[str]:
        """Ids of users subscribed to new products, in id order after `after`."""
        ...


class TemplateRepository(Protocol):
    async def add(self, template: Template, request_id: str = "") -> Template:
        """Stores a template (deactivating the active one of its key when it is active);
        with a request_id already used, returns the template that request created."""
        ...

    async def get(self, template_id: str) -> Template | None: ...

    async def active(self, event_type: str, channel: Channel, locale: str) -> Template | None: ...

    async def list(self) -> list[Template]: ...

    async def replace(self, template: Template, expected_version: int) -> bool:
        """Writes `template` if its stored version is still `expected_version`."""
        ...

    async def delete(self, template_id: str) -> None: ...


class FanOutRepository(Protocol):
    async def record(self, source_event_id: str, events: Sequence[Event]) -> bool:
        """Stores the batch events of one announcement once; False if already recorded."""
        ...


class PushDeviceRepository(Protocol):
    """The users' push devices, one per endpoint (a re-registered endpoint changes hands)."""

    async def register(self, device: PushDevice) -> PushDevice:
        """Stores `device`; when its endpoint is registered already, that record is given to
        device.user_id with the new keys and name (its id kept) and returned instead."""
        ...

    async def get(self, device_id: str) -> PushDevice | None: ...

    async def by_endpoint(self, endpoint: str) -> PushDevice | None: ...

    async def list(self, user_id: str) -> list[PushDevice]:
        """The user's devices, most recently registered first."""
        ...

    async def delete(self, device_id: str) -> bool: ...

    async def sent(self, device_id: str, when: datetime) -> None:
        """Records a push sent to the device."""
        ...


class Channels(Protocol):
    """Sends one rendered notification on its channel; raises domain.SendError."""

    async def send(self, notification: Notification, content: Rendered) -> None: ...
