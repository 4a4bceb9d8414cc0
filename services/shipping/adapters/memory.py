"""In-memory fakes of the shipping ports, for unit tests; same behaviour as the Cassandra ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from kit.outbox import InMemoryOutbox
from services.shipping.domain import (
    OrderDetails,
    Rate,
    Shipment,
    ShipmentState,
    TrackingEvent,
)
from services.shipping.ports import Change


class InMemoryRateRepository:
    def __init__(self) -> None:
        self.rates: dict[str, Rate] = {}
        self.requests: dict[str, str] = {}

    async def all(self) -> list[Rate]:
        return list(self.rates.values())

    async def get(self, rate_id: str) -> Rate | None:
        return self.rates.get(rate_id)

    async def create(self, rate: Rate) -> Rate:
        if rate.request_id:
            claimed = self.requests.get(rate.request_id)
            if claimed is not None and claimed in self.rates:
                return self.rates[claimed]
            self.requests[rate.request_id] = rate.id
        self.rates[rate.id] = rate
        return rate

    async def insert_if_absent(self, rate: Rate) -> bool:
        if rate.id in self.rates:
            return False
        self.rates[rate.id] = rate
        return True

    async def save(self, rate: Rate) -> None:
        self.rates[rate.id] = rate

    async def delete(self, rate_id: str) -> bool:
        return self.rates.pop(rate_id, None) is not None


class InMemoryShipmentRepository:
    def __init__(self) -> None:
        self.shipments: dict[str, Shipment] = {}
        self.pending: dict[str, tuple[int, Change]] = {}
        self.tracking: dict[str, dict[str, TrackingEvent]] = {}
        self.outbox = InMemoryOutbox()
        # Tests set this to die after the compare-and-set, before the announcement.
        self.crash_before_announce = False

    async def get(self, shipment_id: str) -> Shipment | None:
        return self.shipments.get(shipment_id)

    async def create(self, shipment: Shipment, change: Change) -> bool:
        if shipment.id in self.shipments:
            return False
        self.shipments[shipment.id] = shipment
        self.pending[shipment.id] = (shipment.version, change)
        self._crash()
        await self.announce(shipment)
        return True

    async def transition(self, new: Shipment, expected_version: int, change: Change) -> bool:
        current = self.shipments.get(new.id)
        if current is None or current.version != expected_version:
            return False
        self.shipments[new.id] = new
        self.pending[new.id] = (new.version, change)
        self._crash()
        await self.announce(new)
        return True

    def _crash(self) -> None:
        if self.crash_before_announce:
            raise ConnectionError("the writer died before it announced the change")

    async def announce(self, shipment: Shipment) -> None:
        version, change = self.pending.get(shipment.id, (0, Change(())))
        if version != shipment.version:
            return
        if change.tracking_event is not None:
            await self.add_event(change.tracking_event)
        self.outbox.add(list(change.events), key=shipment.id)
        current = self.shipments[shipment.id]
        if current.version == version:
            self.shipments[shipment.id] = replace(current, announced=version)

    async def add_event(self, event: TrackingEvent) -> None:
        self.tracking.setdefault(event.shipment_id, {})[event.id] = event

    async def event_by_request(self, shipment_id: str, request_id: str) -> TrackingEvent | None:
        for event in self.tracking.get(shipment_id, {}).values():
            if event.request_id == request_id:
                return event
        return None

    async def events(self, shipment_id: str) -> list[TrackingEvent]:
        return sorted(
            self.tracking.get(shipment_id, {}).values(), key=lambda e: (e.event_time, e.id)
        )

    async def of_user(self, user_id: str) -> list[Shipment]:
        mine = [s for s in self.shipments.values() if s.user_id == user_id]
        return sorted(mine, key=lambda s: (s.create_time, s.id), reverse=True)

    async def in_states(
        self, states: Sequence[ShipmentState], *, changed_by: datetime | None = None
    ) -> list[Shipment]:
        # As on Cassandra: a shipment leaves the walked set once its final state is announced.
        return [
            s
            for s in self.shipments.values()
            if s.state in states
            and not (s.final and s.announced >= s.version)
            and (changed_by is None or s.update_time <= changed_by)
        ]

    async def unannounced(self) -> list[Shipment]:
        return [s for s in self.shipments.values() if s.announced < s.version]


class InMemoryOrderDetailsRepository:
    def __init__(self) -> None:
        self.orders: dict[str, OrderDetails] = {}

    async def get(self, order_id: str) -> OrderDetails | None:
        return self.orders.get(order_id)

    async def confirmed(self, details: OrderDetails) -> None:
        current = self.orders.get(details.order_id) or OrderDetails(details.order_id)
        self.orders[details.order_id] = replace(
            current,
            user_id=details.user_id or current.user_id,
            destination=details.destination,
            shipping_option_id=details.shipping_option_id,
            items=details.items,
        )

    async def paid(self, order_id: str, user_id: str, payment_id: str) -> None:
        current = self.orders.get(order_id) or OrderDetails(order_id)
        self.orders[order_id] = replace(
            current, user_id=current.user_id or user_id, payment_id=payment_id, paid=True
        )

    async def cancelled(self, order_id: str) -> None:
        current = self.orders.get(order_id) or OrderDetails(order_id)
        self.orders[order_id] = replace(current, cancelled=True)
