"""The shipping service's Cassandra adapters: the rate table, shipments, tracking, order details.

Tables are in `schema.cql`. A shipment is created with INSERT ... IF NOT EXISTS (its id derives
from the order id: one per order) and changes state by compare-and-set on its version. A
conditional write cannot share a batch with the outbox (other partitions), so the change's
events and tracking event travel in the row itself (`pending`) and a LOGGED batch then writes
them (tracking rows, outbox rows, the listing rows) and marks the version announced. The
handlers finish a change a crash left unannounced (`announce` is safe to repeat: the rows are
upserts and the events keep their ids).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from kit.cassandra import CassandraSession, applied
from kit.events import Event
from kit.outbox import CassandraLease, CassandraOutbox, Relay
from services.shipping.domain import (
    FINAL_STATES,
    Address,
    Item,
    Money,
    OrderDetails,
    Rate,
    ServiceLevel,
    Shipment,
    ShipmentState,
    TrackingEvent,
    Window,
)
from services.shipping.ports import Change

RATE_COLUMNS = (
    "id, carrier, service_level, display_name, region_codes, currency, base_nanos, per_kg_nanos, "
    "max_weight_grams, min_business_days, max_business_days, disabled, create_time, update_time, "
    "request_id"
)
SHIPMENT_COLUMNS = (
    "id, order_id, user_id, shipping_option_id, carrier, service_level, tracking_number, "
    "tracking_url, destination, items, state, estimated_earliest, estimated_latest, create_time, "
    "update_time, last_event_time, version, announced, pending"
)
EVENT_COLUMNS = "shipment_id, event_time, id, state, description, location, create_time, request_id"
ACTIVE_BUCKET = 0


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


# --- rows <-> domain -------------------------------------------------------------------------


def _rate(row: Any) -> Rate:
    return Rate(
        id=row.id,
        carrier=row.carrier,
        service_level=ServiceLevel(row.service_level),
        display_name=row.display_name,
        region_codes=tuple(row.region_codes or ()),
        base_price=Money(row.currency, row.base_nanos or 0),
        price_per_kg=Money(row.currency, row.per_kg_nanos) if row.per_kg_nanos else None,
        max_weight_grams=row.max_weight_grams or 0,
        min_business_days=row.min_business_days or 0,
        max_business_days=row.max_business_days or 0,
        disabled=bool(row.disabled),
        create_time=_utc(row.create_time),  # type: ignore[arg-type]
        update_time=_utc(row.update_time),  # type: ignore[arg-type]
        request_id=row.request_id or "",
    )


def _rate_params(rate: Rate) -> tuple[Any, ...]:
    return (
        rate.id,
        rate.carrier,
        rate.service_level.value,
        rate.display_name,
        list(rate.region_codes),
        rate.base_price.currency,
        rate.base_price.nanos,
        rate.price_per_kg.nanos if rate.price_per_kg else None,
        rate.max_weight_grams,
        rate.min_business_days,
        rate.max_business_days,
        rate.disabled,
        rate.create_time,
        rate.update_time,
        rate.request_id,
    )


def _address_json(address: Address | None) -> str | None:
    if address is None:
        return None
    return json.dumps(
        {
            "region_code": address.region_code,
            "language_code": address.language_code,
            "postal_code": address.postal_code,
            "sorting_code": address.sorting_code,
            "administrative_area": address.administrative_area,
            "locality": address.locality,
            "sublocality": address.sublocality,
            "address_lines": list(address.address_lines),
            "recipients": list(address.recipients),
            "organization": address.organization,
        }
    )


def _address(raw: str | None) -> Address | None:
    if not raw:
        return None
    data = json.loads(raw)
    data["address_lines"] = tuple(data.get("address_lines") or ())
    data["recipients"] = tuple(data.get("recipients") or ())
    return Address(**data)


def _items_json(items: Sequence[Item]) -> str:
    return json.dumps([[i.product_id, i.quantity] for i in items])


def _items(raw: str | None) -> tuple[Item, ...]:
    return tuple(Item(p, q) for p, q in json.loads(raw or "[]"))


def _event_json(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "source": event.source,
        "time": event.time.isoformat(),
        "data": base64.b64encode(event.data).decode(),
        "headers": dict(event.headers),
    }


def _event(data: dict[str, Any]) -> Event:
    return Event(
        id=data["id"],
        type=data["type"],
        source=data["source"],
        time=datetime.fromisoformat(data["time"]),
        data=base64.b64decode(data["data"]),
        headers=dict(data.get("headers") or {}),
    )


def _tracking_json(event: TrackingEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "shipment_id": event.shipment_id,
        "state": event.state.value,
        "description": event.description,
        "location": event.location,
        "event_time": event.event_time.isoformat(),
        "create_time": event.create_time.isoformat(),
        "request_id": event.request_id,
    }


def _tracking(data: dict[str, Any]) -> TrackingEvent:
    return TrackingEvent(
        id=data["id"],
        shipment_id=data["shipment_id"],
        state=ShipmentState(data["state"]),
        description=data["description"],
        location=data["location"],
        event_time=datetime.fromisoformat(data["event_time"]),
        create_time=datetime.fromisoformat(data["create_time"]),
        request_id=data["request_id"],
    )


def _pending_json(version: int, change: Change) -> str:
    return json.dumps(
        {
            "version": version,
            "events": [_event_json(e) for e in change.events],
            "tracking": _tracking_json(change.tracking_event) if change.tracking_event else None,
        }
    )


def _pending(raw: str | None) -> tuple[int, Change]:
    if not raw:
        return 0, Change(())
    data = json.loads(raw)
    tracking = _tracking(data["tracking"]) if data.get("tracking") else None
    return int(data["version"]), Change(tuple(_event(e) for e in data["events"]), tracking)


def _shipment(row: Any) -> Shipment:
    estimated = None
    if row.estimated_earliest and row.estimated_latest:
        estimated = Window(
            date.fromisoformat(row.estimated_earliest), date.fromisoformat(row.estimated_latest)
        )
    return Shipment(
        id=row.id,
        order_id=row.order_id,
        user_id=row.user_id or "",
        shipping_option_id=row.shipping_option_id or "",
        carrier=row.carrier or "",
        service_level=ServiceLevel(row.service_level) if row.service_level else None,
        tracking_number=row.tracking_number or "",
        tracking_url=row.tracking_url or "",
        destination=_address(row.destination) or Address(),
        items=_items(row.items),
        state=ShipmentState(row.state),
        estimated=estimated,
        create_time=_utc(row.create_time),  # type: ignore[arg-type]
        update_time=_utc(row.update_time),  # type: ignore[arg-type]
        last_event_time=_utc(row.last_event_time),
        version=row.version or 0,
        announced=row.announced or 0,
    )


def _tracking_row(row: Any) -> TrackingEvent:
    return TrackingEvent(
        id=row.id,
        shipment_id=row.shipment_id,
        state=ShipmentState(row.state),
        description=row.description or "",
        location=row.location or "",
        event_time=_utc(row.event_time),  # type: ignore[arg-type]
        create_time=_utc(row.create_time),  # type: ignore[arg-type]
        request_id=row.request_id or "",
    )


# --- repositories ----------------------------------------------------------------------------


class CassandraRateRepository:
    def __init__(self, session: CassandraSession, q: dict[str, Any]) -> None:
        self._session = session
        self._q = q

    async def all(self) -> list[Rate]:
        return [_rate(r) for r in await self._session.execute(self._q["rates_all"])]

    async def get(self, rate_id: str) -> Rate | None:
        if not rate_id:
            return None  # an empty partition key is an error to Cassandra
        rows = await self._session.execute(self._q["rate_get"], (rate_id,))
        return _rate(rows[0]) if rows else None

    async def create(self, rate: Rate) -> Rate:
        if rate.request_id:
            rows = await self._session.execute(self._q["rate_claim"], (rate.request_id, rate.id))
            if not applied(rows):
                existing = await self.get(rows[0].rate_id)
                if existing is not None:
                    return existing
                # The first call died between its claim and its row: finish it.
                rate = Rate(**{**rate.__dict__, "id": rows[0].rate_id})
        await self._session.execute(self._q["rate_put"], _rate_params(rate))
        return rate

    async def insert_if_absent(self, rate: Rate) -> bool:
        return applied(await self._session.execute(self._q["rate_put_new"], _rate_params(rate)))

    async def save(self, rate: Rate) -> None:
        await self._session.execute(self._q["rate_put"], _rate_params(rate))

    async def delete(self, rate_id: str) -> bool:
        if await self.get(rate_id) is None:
            return False
        await self._session.execute(self._q["rate_delete"], (rate_id,))
        return True


class CassandraShipmentRepository:
    def __init__(
        self, session: CassandraSession, q: dict[str, Any], outbox: CassandraOutbox
    ) -> None:
        self._session = session
        self._q = q
        self.outbox = outbox

    async def _row(self, shipment_id: str) -> Any:
        if not shipment_id:
            return None
        rows = await self._session.execute(self._q["shipment_get"], (shipment_id,))
        return rows[0] if rows else None

    async def get(self, shipment_id: str) -> Shipment | None:
        row = await self._row(shipment_id)
        return _shipment(row) if row is not None else None

    async def create(self, shipment: Shipment, change: Change) -> bool:
        s = shipment
        params = (
            s.id,
            s.order_id,
            s.user_id,
            s.shipping_option_id,
            s.carrier,
            s.service_level.value if s.service_level else None,
            s.tracking_number,
            s.tracking_url,
            _address_json(s.destination),
            _items_json(s.items),
            s.state.value,
            s.estimated.earliest.isoformat() if s.estimated else None,
            s.estimated.latest.isoformat() if s.estimated else None,
            s.create_time,
            s.update_time,
            s.last_event_time,
            s.version,
            0,
            _pending_json(s.version, change),
        )
        if not applied(await self._session.execute(self._q["shipment_insert"], params)):
            return False
        await self.announce(s)
        return True

    async def transition(self, new: Shipment, expected_version: int, change: Change) -> bool:
        params = (
            new.state.value,
            new.estimated.earliest.isoformat() if new.estimated else None,
            new.estimated.latest.isoformat() if new.estimated else None,
            new.update_time,
            new.last_event_time,
            new.version,
            _pending_json(new.version, change),
            new.id,
            expected_version,
        )
        if not applied(await self._session.execute(self._q["shipment_cas"], params)):
            return False
        await self.announce(new)
        return True

    async def announce(self, shipment: Shipment) -> None:
        row = await self._row(shipment.id)
        if row is None:
            return
        current = _shipment(row)
        version, change = _pending(row.pending)
        if version != current.version or current.announced >= version:
            return
        batch = self._session.batch()
        event = change.tracking_event
        if event is not None:
            self._add_event_to(batch, event)
        batch.add(self._q["by_user_put"], (current.user_id, current.create_time, current.id))
        if current.state in FINAL_STATES:
            batch.add(self._q["active_delete"], (ACTIVE_BUCKET, current.id))
        else:
            batch.add(
                self._q["active_put"],
                (ACTIVE_BUCKET, current.id, current.state.value, current.update_time),
            )
        batch.add(self._q["announced"], (version, current.id))
        await self.outbox.write(batch, list(change.events), key=current.id)

    def _add_event_to(self, batch: Any, event: TrackingEvent) -> None:
        batch.add(
            self._q["event_put"],
            (
                event.shipment_id,
                event.event_time,
                event.id,
                event.state.value,
                event.description,
                event.location,
                event.create_time,
                event.request_id,
            ),
        )
        batch.add(
            self._q["event_request_put"],
            (event.shipment_id, event.request_id, event.event_time, event.id),
        )

    async def add_event(self, event: TrackingEvent) -> None:
        batch = self._session.batch()
        self._add_event_to(batch, event)
        await self._session.execute(batch)

    async def event_by_request(self, shipment_id: str, request_id: str) -> TrackingEvent | None:
        rows = await self._session.execute(self._q["event_request_get"], (shipment_id, request_id))
        if rows:
            found = await self._session.execute(
                self._q["event_get"], (shipment_id, rows[0].event_time, rows[0].id)
            )
            if found:
                return _tracking_row(found[0])
        return None

    async def events(self, shipment_id: str) -> list[TrackingEvent]:
        rows = await self._session.execute(self._q["events_of"], (shipment_id,))
        return [_tracking_row(r) for r in rows]

    async def _many(self, ids: Sequence[str]) -> list[Shipment]:
        rows = await self._session.execute(self._q["shipments_in"], (list(ids),)) if ids else []
        by_id = {r.id: _shipment(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    async def of_user(self, user_id: str) -> list[Shipment]:
        rows = await self._session.execute(self._q["by_user"], (user_id,))
        return await self._many([r.id for r in rows])

    async def _active(self) -> list[Shipment]:
        rows = await self._session.execute(self._q["active"], (ACTIVE_BUCKET,))
        return await self._many([r.id for r in rows])

    async def in_states(
        self, states: Sequence[ShipmentState], *, changed_by: datetime | None = None
    ) -> list[Shipment]:
        if changed_by is None:
            return [s for s in await self._active() if s.state in states]
        # The active row carries the state and change time it was announced with: the carrier
        # simulator polling every second reads only the shipments that may have moved (it
        # re-read every active shipment, ~28 reads per order). A row an unannounced change left
        # behind is older than the shipment, so it selects the shipment earlier, never later;
        # a row from before these columns (no state) is read too.
        wanted = {state.value for state in states}
        rows = await self._session.execute(self._q["active"], (ACTIVE_BUCKET,))
        ids = [
            r.id
            for r in rows
            if r.state is None
            or r.update_time is None
            or (r.state in wanted and _utc(r.update_time) <= changed_by)
        ]
        return [
            s for s in await self._many(ids) if s.state in states and s.update_time <= changed_by
        ]

    async def unannounced(self) -> list[Shipment]:
        return [s for s in await self._active() if s.announced < s.version]


class CassandraOrderDetailsRepository:
    def __init__(self, session: CassandraSession, q: dict[str, Any]) -> None:
        self._session = session
        self._q = q

    async def get(self, order_id: str) -> OrderDetails | None:
        if not order_id:
            return None
        rows = await self._session.execute(self._q["order_get"], (order_id,))
        if not rows:
            return None
        r = rows[0]
        return OrderDetails(
            order_id=r.order_id,
            user_id=r.user_id or "",
            destination=_address(r.destination),
            shipping_option_id=r.shipping_option_id or "",
            items=_items(r.items),
            payment_id=r.payment_id or "",
            paid=bool(r.paid),
            cancelled=bool(r.cancelled),
        )

    async def confirmed(self, details: OrderDetails) -> None:
        await self._session.execute(
            self._q["order_confirmed"],
            (
                details.user_id,
                _address_json(details.destination),
                details.shipping_option_id,
                _items_json(details.items),
                details.order_id,
            ),
        )

    async def paid(self, order_id: str, user_id: str, payment_id: str) -> None:
        await self._session.execute(self._q["order_paid"], (payment_id, order_id))
        if user_id:
            current = await self.get(order_id)
            if current is not None and not current.user_id:
                await self._session.execute(self._q["order_user"], (user_id, order_id))

    async def cancelled(self, order_id: str) -> None:
        await self._session.execute(self._q["order_cancelled"], (order_id,))


STATEMENTS = {
    "rates_all": f"SELECT {RATE_COLUMNS} FROM rates",
    "rate_get": f"SELECT {RATE_COLUMNS} FROM rates WHERE id = ?",
    "rate_put": f"INSERT INTO rates ({RATE_COLUMNS}) VALUES ({', '.join('?' * 15)})",
    "rate_put_new": (
        f"INSERT INTO rates ({RATE_COLUMNS}) VALUES ({', '.join('?' * 15)}) IF NOT EXISTS"
    ),
    "rate_delete": "DELETE FROM rates WHERE id = ?",
    "rate_claim": (
        "INSERT INTO rates_by_request (request_id, rate_id) VALUES (?, ?) IF NOT EXISTS"
    ),
    "shipment_get": f"SELECT {SHIPMENT_COLUMNS} FROM shipments WHERE id = ?",
    "shipments_in": f"SELECT {SHIPMENT_COLUMNS} FROM shipments WHERE id IN ?",
    "shipment_insert": (
        f"INSERT INTO shipments ({SHIPMENT_COLUMNS}) VALUES ({', '.join('?' * 19)}) IF NOT EXISTS"
    ),
    "shipment_cas": (
        "UPDATE shipments SET state = ?, estimated_earliest = ?, estimated_latest = ?, "
        "update_time = ?, last_event_time = ?, version = ?, pending = ? WHERE id = ? "
        "IF version = ?"
    ),
    "announced": "UPDATE shipments SET announced = ? WHERE id = ?",
    "by_user_put": "INSERT INTO shipments_by_user (user_id, create_time, id) VALUES (?, ?, ?)",
    "by_user": "SELECT id FROM shipments_by_user WHERE user_id = ?",
    "active_put": (
        "INSERT INTO active_shipments (bucket, id, state, update_time) VALUES (?, ?, ?, ?)"
    ),
    "active_delete": "DELETE FROM active_shipments WHERE bucket = ? AND id = ?",
    "active": "SELECT id, state, update_time FROM active_shipments WHERE bucket = ?",
    "event_put": f"INSERT INTO tracking_events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "event_get": (
        f"SELECT {EVENT_COLUMNS} FROM tracking_events "
        "WHERE shipment_id = ? AND event_time = ? AND id = ?"
    ),
    "events_of": f"SELECT {EVENT_COLUMNS} FROM tracking_events WHERE shipment_id = ?",
    "event_request_put": (
        "INSERT INTO tracking_events_by_request (shipment_id, request_id, event_time, id) "
        "VALUES (?, ?, ?, ?)"
    ),
    "event_request_get": (
        "SELECT event_time, id FROM tracking_events_by_request "
        "WHERE shipment_id = ? AND request_id = ?"
    ),
    "order_get": (
        "SELECT order_id, user_id, destination, shipping_option_id, items, payment_id, paid, "
        "cancelled FROM order_details WHERE order_id = ?"
    ),
    "order_confirmed": (
        "UPDATE order_details SET user_id = ?, destination = ?, shipping_option_id = ?, "
        "items = ? WHERE order_id = ?"
    ),
    "order_paid": "UPDATE order_details SET paid = true, payment_id = ? WHERE order_id = ?",
    "order_user": "UPDATE order_details SET user_id = ? WHERE order_id = ?",
    "order_cancelled": "UPDATE order_details SET cancelled = true WHERE order_id = ?",
}


@dataclass
class Stores:
    rates: CassandraRateRepository
    shipments: CassandraShipmentRepository
    orders: CassandraOrderDetailsRepository
    outbox: CassandraOutbox
    lease: CassandraLease

    def relay(self, bus: Any) -> Relay:
        return Relay(self.outbox, bus, lease=self.lease)


async def build(session: CassandraSession) -> Stores:
    outbox = await CassandraOutbox.open(session, create_table=True)
    q = {name: await session.prepare(cql) for name, cql in STATEMENTS.items()}
    return Stores(
        rates=CassandraRateRepository(session, q),
        shipments=CassandraShipmentRepository(session, q, outbox),
        orders=CassandraOrderDetailsRepository(session, q),
        outbox=outbox,
        lease=await CassandraLease.open(session),
    )
