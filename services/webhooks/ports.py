"""What the webhooks handlers need from the outside world (Protocols; adapters implement them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from kit.events import Event
from services.webhooks.domain import Attempt, Delivery, DeliveryState, Endpoint, EndpointState

Cursor = tuple[datetime, str]  # (create_time, id) of the last item of a page, newest first


class Clock(Protocol):
    def now(self) -> datetime: ...


class EndpointRepository(Protocol):
    """The endpoints, each one document (its outbox events inside it)."""

    async def insert(self, endpoint: Endpoint) -> bool:
        """Stores a new endpoint; False if one with its id exists (a retried create)."""
        ...

    async def get(self, endpoint_id: str) -> Endpoint | None: ...

    async def count(self) -> int: ...

    async def list(
        self,
        *,
        state: EndpointState | None,
        event_type: str | None,
        after: Cursor | None,
        limit: int,
    ) -> list[Endpoint]:
        """Newest first; `event_type` matches it by name or through "*"."""
        ...

    async def active(self) -> list[Endpoint]: ...

    async def replace(self, endpoint: Endpoint, expected_version: int) -> bool:
        """Writes `endpoint` if the stored one still has `expected_version` (compare-and-set)."""
        ...

    async def delete(self, endpoint_id: str) -> bool: ...

    async def failed(self, endpoint_id: str, now: datetime) -> None:
        """Starts the endpoint's failing period at `now` unless it has one."""
        ...

    async def succeeded(self, endpoint_id: str) -> None:
        """Ends the endpoint's failing period."""
        ...

    async def set_state(
        self, endpoint_id: str, state: EndpointState, now: datetime, events: Sequence[Event] = ()
    ) -> bool:
        """Moves an ACTIVE endpoint to `state` with `events` in its outbox; False if it was
        not ACTIVE (another replica got there first)."""
        ...


class DeliveryRepository(Protocol):
    """The deliveries, each one document; due ones are claimed with a lease."""

    async def add(self, delivery: Delivery) -> bool:
        """Stores a new delivery; False if its id exists (the event arrived before)."""
        ...

    async def get(self, delivery_id: str) -> Delivery | None: ...

    async def list(
        self,
        endpoint_id: str,
        *,
        state: DeliveryState | None,
        event_type: str | None,
        event_id: str | None,
        after: Cursor | None,
        limit: int,
    ) -> list[Delivery]: ...

    async def due(self, endpoint_id: str, now: datetime, limit: int) -> list[str]:
        """Ids of up to `limit` PENDING/RETRYING deliveries of the endpoint that are due and not
        leased, roughly oldest first (deliveries are not ordered; see the contract)."""
        ...

    async def any_due(self, now: datetime) -> bool:
        """Whether any endpoint has a delivery `due` would return (one query for all, which
        the dispatcher asks before asking each endpoint)."""
        ...

    async def claim(
        self, delivery_id: str, now: datetime, lease_until: datetime, owner: str
    ) -> Delivery | None:
        """Leases a due delivery to `owner` until `lease_until` (compare-and-set: of two
        claims, one wins); None if it is no longer due or someone else holds it."""
        ...

    async def record(
        self,
        delivery_id: str,
        owner: str,
        attempt: Attempt,
        state: DeliveryState,
        next_attempt_time: datetime | None,
        schedule_index: int,
    ) -> bool:
        """Appends the attempt and moves the delivery on, if `owner` still holds its lease."""
        ...

    async def redeliver(self, delivery_id: str, now: datetime) -> Delivery | None:
        """Back to PENDING, due now, schedule restarted; None if it is PENDING already."""
        ...

    async def redeliver_failed(
        self, endpoint_id: str, start: datetime, end: datetime, now: datetime
    ) -> int: ...

    async def delete_for_endpoint(self, endpoint_id: str) -> None: ...

    async def prune(self, before: datetime) -> int:
        """Deletes finished deliveries created before `before`; returns how many."""
        ...


@dataclass(frozen=True)
class Reply:
    status_code: int
    body: bytes
    headers: Any  # a case-insensitive mapping
    latency_seconds: float
    error: str


class Sender(Protocol):
    """Posts a signed request to an endpoint URL through the SSRF guard."""

    async def check_url(self, url: str) -> None:
        """INVALID_ARGUMENT naming `url` unless it may be stored (kit.ssrf)."""
        ...

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Reply: ...
