"""What the shipping handlers need from the outside world (adapters implement these)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from kit.events import Event
from services.shipping.domain import (
    OrderDetails,
    Rate,
    Shipment,
    ShipmentState,
    TrackingEvent,
)


class Clock(Protocol):
    def now(self) -> datetime: ...


class RateRepository(Protocol):
    async def all(self) -> list[Rate]:
        """Every rate, disabled ones included (the table is small)."""
        ...

    async def get(self, rate_id: str) -> Rate | None: ...

    async def create(self, rate: Rate) -> Rate:
        """Stores a new rate; with a request_id, returns the rate an earlier call stored."""
        ...

    async def insert_if_absent(self, rate: Rate) -> bool:
        """Stores `rate` unless a rate with its id exists (seeding)."""
        ...

    async def save(self, rate: Rate) -> None: ...

    async def delete(self, rate_id: str) -> bool: ...


@dataclass(frozen=True)
class Change:
    """A state change's effects, written after its compare-and-set (see Shipment.announced)."""

    events: tuple[Event, ...]
    tracking_event: TrackingEvent | None = None


class ShipmentRepository(Protocol):
    async def get(self, shipment_id: str) -> Shipment | None: ...

    async def create(self, shipment: Shipment, change: Change) -> bool:
        """Stores a new shipment unless one with its id exists (one per order); then writes
        the change. False if it existed."""
        ...

    async def transition(self, new: Shipment, expected_version: int, change: Change) -> bool:
        """Stores `new` if the stored version is still `expected_version`; then writes the
        change. False if another writer won."""
        ...

    async def announce(self, shipment: Shipment) -> None:
        """Writes the pending change of `shipment`'s version (events, tracking event); safe to
        repeat."""
        ...

    async def add_event(self, event: TrackingEvent) -> None:
        """Records a tracking event that changes no state."""
        ...

    async def event_by_request(self, shipment_id: str, request_id: str) -> TrackingEvent | None:
        """The tracking event recorded for a request id (an unannounced change's is not
        recorded yet)."""
        ...

    async def events(self, shipment_id: str) -> list[TrackingEvent]:
        """The shipment's tracking events, oldest first by event_time."""
        ...

    async def of_user(self, user_id: str) -> list[Shipment]:
        """The user's shipments, newest first."""
        ...

    async def in_states(
        self, states: Sequence[ShipmentState], *, changed_by: datetime | None = None
    ) -> list[Shipment]:
        """The shipments in these states (the carrier and the sweeper walk them); with
        `changed_by`, only those whose last change is not later than that."""
        ...

    async def unannounced(self) -> list[Shipment]:
        """Shipments whose last change is not announced yet."""
        ...


class OrderDetailsRepository(Protocol):
    async def get(self, order_id: str) -> OrderDetails | None: ...

    async def confirmed(self, details: OrderDetails) -> None:
        """Stores the user, destination, option and items of an order (OrderConfirmed)."""
        ...

    async def paid(self, order_id: str, user_id: str, payment_id: str) -> None: ...

    async def cancelled(self, order_id: str) -> None: ...


@dataclass(frozen=True)
class Label:
    tracking_number: str
    tracking_url: str


@dataclass(frozen=True)
class CarrierUpdate:
    """A step the carrier reports for a shipment."""

    carrier_event_id: str
    state: ShipmentState
    description: str
    location: str
    event_time: datetime


class Carrier(Protocol):
    """A carrier adapter: buys labels and reports progress."""

    code: str
    # How long after a shipment's last change the carrier can have news of it at the earliest:
    # shipments changed more recently are not even read (the simulator: its step).
    quiet: timedelta

    async def create_label(self, shipment: Shipment) -> Label: ...

    async def progress(self, shipment: Shipment, now: datetime) -> list[CarrierUpdate]:
        """The updates the carrier has for `shipment` by `now` that are not applied yet."""
        ...
