"""Shipping's use cases: quotes, the rate table, shipments and their tracking, the saga reactions.

Callable from the servicer (with the verified caller) and from the consumers and background
tasks (no caller). Shipments change state only by compare-and-set on their version; the change's
events (ShipmentCreated, ShipmentStatusChanged) and tracking event are written right after it
and the version is then marked announced. A writer that dies in between leaves the shipment
unannounced: the next writer of that shipment, or the sweeper, writes the same events again
(their ids derive from the shipment and version, so consumers deduplicate a repeat).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from kit import errors, paging, retry
from kit.auth import Principal
from kit.errors import Violations
from kit.events import Event
from services.shipping import domain, mapping
from services.shipping.domain import (
    BEFORE_HANDOVER,
    CARRIER,
    DESCRIPTION_MAX,
    DISPLAY_NAME_MAX,
    LOCATION_MAX,
    NANOS,
    REGION,
    REQUEST_ID_MAX,
    Address,
    Money,
    OrderDetails,
    Quote,
    Rate,
    ServiceLevel,
    Shipment,
    ShipmentState,
    TrackingEvent,
    Window,
)
from services.shipping.ports import (
    Carrier,
    Change,
    Clock,
    OrderDetailsRepository,
    RateRepository,
    ShipmentRepository,
)

log = logging.getLogger(__name__)

SOURCE = "shipping"
CARRIED = (ShipmentState.LABEL_CREATED, ShipmentState.IN_TRANSIT, ShipmentState.OUT_FOR_DELIVERY)
# How far ahead of our clock a carrier's event_time may be (clock skew) before it is refused.
FUTURE_SKEW = timedelta(minutes=1)
# Days assumed for a shipment whose rate was deleted between checkout and payment.
FALLBACK_DAYS = (3, 7)


@dataclass(frozen=True)
class RateInput:
    """The writable fields of a rate as a request carries them (None: not given)."""

    carrier: str = ""
    service_level: ServiceLevel | None = None
    display_name: str = ""
    region_codes: tuple[str, ...] = ()
    base_price: Money | None = None
    price_per_kg: Money | None = None
    max_weight_grams: int = 0
    min_business_days: int = 0
    max_business_days: int = 0
    disabled: bool = False


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_page_token: str


def _page(items: Sequence[Any], size: int, token: str, scope: Mapping[str, Any]) -> Page:
    cursor = paging.decode_page_token(token, scope)
    start = 0
    if isinstance(cursor, dict):
        start = int(cursor.get("offset", 0))
        if start < 0:
            raise errors.InvalidArgument("page_token", "is not valid")
    end = start + size
    following = paging.encode_page_token({"offset": end}, scope) if end < len(items) else ""
    return Page(list(items[start:end]), following)


# The rate table a new installation starts with (ids derived from the key, so replicas that
# seed at once write the same rows): UPS in the US, DHL in Europe and for a few more countries.
EU = ("AT", "BE", "DE", "DK", "ES", "FI", "FR", "IE", "IT", "NL", "PL", "PT", "SE")
DEFAULT_RATES = (
    # key, carrier, level, name, regions, base (cents), per kg (cents), max g, min, max days
    ("us-ground", "ups", ServiceLevel.STANDARD, "UPS Ground", ("US",), 599, 100, 30000, 3, 5),
    ("us-express", "ups", ServiceLevel.EXPRESS, "UPS Express", ("US",), 1499, 250, 30000, 1, 2),
    ("eu-standard", "dhl", ServiceLevel.STANDARD, "DHL Standard", EU, 899, 150, 31500, 3, 6),
    ("eu-express", "dhl", ServiceLevel.EXPRESS, "DHL Express", EU, 2499, 300, 31500, 1, 3),
    (
        "intl-standard",
        "dhl",
        ServiceLevel.STANDARD,
        "DHL International",
        ("AU", "CA", "CH", "GB", "JP", "MX", "NO", "NZ"),
        1999,
        400,
        20000,
        5,
        10,
    ),
)


class ShippingHandlers:
    def __init__(
        self,
        *,
        rates: RateRepository,
        shipments: ShipmentRepository,
        orders: OrderDetailsRepository,
        carriers: Mapping[str, Carrier],
        clock: Clock,
        currency: str = "USD",
        quote_ttl: timedelta = timedelta(minutes=30),
        default_carrier: str = "",
    ) -> None:
        self.rates = rates
        self.shipments = shipments
        self.orders = orders
        self.carriers = dict(carriers)
        self.clock = clock
        self.currency = currency
        self.quote_ttl = quote_ttl
        self.default_carrier = default_carrier or next(iter(self.carriers), "")
        # Wakes WatchShipment streams of this process at once (others poll).
        self._changed = asyncio.Condition()
        self.cas_attempts = 30

    # --- quotes -----------------------------------------------------------------------------

    @staticmethod
    def _region(violations: Violations, region_code: str, field: str) -> str:
        region = region_code.strip().upper()
        if not region:
            violations.add(field, "is required")
        elif not REGION.match(region):
            violations.add(field, "must be a CLDR region code such as US or DE")
        return region

    def _quote(self, rate: Rate, weight_grams: int, now: datetime) -> Quote:
        return Quote(
            rate=rate,
            price=rate.price(weight_grams),
            window=domain.delivery_window(
                now.date(), rate.min_business_days, rate.max_business_days
            ),
            expire_time=now + self.quote_ttl,
        )

    @staticmethod
    def _cheapest_first(quotes: list[Quote]) -> list[Quote]:
        return sorted(
            quotes,
            key=lambda q: (q.price.nanos, q.rate.max_business_days, q.rate.display_name, q.rate.id),
        )

    async def list_options(
        self, destination: Address, *, page_size: int = 0, page_token: str = ""
    ) -> Page:
        violations = Violations()
        region = self._region(violations, destination.region_code, "destination.region_code")
        violations.raise_if_any()
        size = paging.page_size(page_size, default=20, maximum=100)
        now = self.clock.now()
        quotes = [
            self._quote(rate, 0, now)
            for rate in await self.rates.all()
            if not rate.disabled and rate.ships_to(region)
        ]
        return _page(self._cheapest_first(quotes), size, page_token, {"region": region})

    async def quote(self, destination: Address, items: Sequence[tuple[int, int]]) -> list[Quote]:
        """Options for (quantity, unit weight in grams) items, priced on their total weight."""
        violations = Violations()
        region = self._region(violations, destination.region_code, "destination.region_code")
        if not items:
            violations.add("items", "must have at least one item")
        for i, (quantity, weight) in enumerate(items):
            violations.check(quantity >= 1, f"items[{i}].quantity", "must be at least 1")
            violations.check(weight >= 0, f"items[{i}].weight_grams", "must not be negative")
        violations.raise_if_any()
        weight = sum(quantity * grams for quantity, grams in items)
        now = self.clock.now()
        return self._cheapest_first(
            [
                self._quote(rate, weight, now)
                for rate in await self.rates.all()
                if not rate.disabled and rate.ships_to(region) and rate.carries(weight)
            ]
        )

    # --- the rate table ---------------------------------------------------------------------

    def _checked(self, wanted: RateInput) -> RateInput:
        """The input cleaned, or INVALID_ARGUMENT naming every bad field."""
        v = Violations()
        f = "shipping_rate."
        carrier = wanted.carrier.strip().lower()
        if not carrier:
            v.add(f + "carrier", "is required")
        elif not CARRIER.match(carrier) or carrier not in self.carriers:
            v.add(f + "carrier", f"has no carrier adapter (known: {', '.join(self.carriers)})")
        if wanted.service_level is None:
            v.add(f + "service_level", "is required")
        name = " ".join(wanted.display_name.split())
        if not name:
            v.add(f + "display_name", "is required")
        elif len(name) > DISPLAY_NAME_MAX:
            v.add(f + "display_name", f"must be at most {DISPLAY_NAME_MAX} characters")
        regions: list[str] = []
        for i, code in enumerate(wanted.region_codes):
            region = code.strip().upper()
            if not REGION.match(region):
                v.add(f"{f}region_codes[{i}]", "must be a CLDR region code such as US or DE")
            elif region not in regions:
                regions.append(region)
        base = wanted.base_price
        if base is None:
            v.add(f + "base_price", "is required")
        else:
            if len(base.currency) != 3 or not base.currency.isalpha():
                v.add(f + "base_price.currency_code", "must be an ISO 4217 currency code")
            if base.nanos < 0:
                v.add(f + "base_price", "must not be negative")
        per_kg = wanted.price_per_kg
        if per_kg is not None:
            if per_kg.nanos < 0:
                v.add(f + "price_per_kg", "must not be negative")
            if base is not None and per_kg.currency != base.currency:
                v.add(f + "price_per_kg.currency_code", "must be the currency of base_price")
        v.check(wanted.max_weight_grams >= 0, f + "max_weight_grams", "must not be negative")
        v.check(wanted.min_business_days >= 0, f + "min_business_days", "must not be negative")
        v.check(
            wanted.max_business_days >= wanted.min_business_days,
            f + "max_business_days",
            "must be at least min_business_days",
        )
        v.check(wanted.max_business_days <= 365, f + "max_business_days", "must be at most 365")
        v.raise_if_any()
        if per_kg is not None and per_kg.nanos == 0:
            per_kg = None
        return replace(
            wanted,
            carrier=carrier,
            display_name=name,
            region_codes=tuple(regions),
            price_per_kg=per_kg,
        )

    async def create_rate(self, wanted: RateInput, request_id: str = "") -> Rate:
        request_id = request_id.strip()
        if request_id and not domain.is_uuid(request_id):
            raise errors.InvalidArgument("request_id", "must be a UUID")
        clean = self._checked(wanted)
        now = self.clock.now()
        rate = Rate(
            id=domain.derived_id("rate", request_id) if request_id else str(uuid.uuid4()),
            carrier=clean.carrier,
            service_level=clean.service_level,  # type: ignore[arg-type]
            display_name=clean.display_name,
            region_codes=clean.region_codes,
            base_price=clean.base_price,  # type: ignore[arg-type]
            price_per_kg=clean.price_per_kg,
            max_weight_grams=clean.max_weight_grams,
            min_business_days=clean.min_business_days,
            max_business_days=clean.max_business_days,
            disabled=clean.disabled,
            create_time=now,
            update_time=now,
            request_id=request_id,
        )
        return await self.rates.create(rate)

    async def get_rate(self, rate_id: str) -> Rate:
        rate_id = rate_id.strip()
        rate = await self.rates.get(rate_id) if domain.is_uuid(rate_id) else None
        if rate is None:
            raise errors.NotFound(f"shipping rate {rate_id!r} does not exist")
        return rate

    async def list_rates(self, *, page_size: int = 0, page_token: str = "") -> Page:
        size = paging.page_size(page_size, default=20, maximum=100)
        rates = sorted(await self.rates.all(), key=Rate.sort_key)
        return _page(rates, size, page_token, {"rates": "all"})

    async def update_rate(self, rate_id: str, wanted: RateInput, paths: Sequence[str]) -> Rate:
        current = await self.get_rate(rate_id)
        v = Violations()
        for path in paths:
            if path in domain.OUTPUT_ONLY_RATE_FIELDS:
                v.add("update_mask", f"{path} is output only")
            elif path not in domain.UPDATABLE_RATE_FIELDS:
                v.add("update_mask", f"unknown field {path!r}")
        v.raise_if_any()
        merged = RateInput(
            carrier=current.carrier,
            service_level=current.service_level,
            display_name=current.display_name,
            region_codes=current.region_codes,
            base_price=current.base_price,
            price_per_kg=current.price_per_kg,
            max_weight_grams=current.max_weight_grams,
            min_business_days=current.min_business_days,
            max_business_days=current.max_business_days,
            disabled=current.disabled,
        )
        merged = replace(merged, **{p: getattr(wanted, p) for p in paths})
        clean = self._checked(merged)
        updated = replace(
            current,
            carrier=clean.carrier,
            service_level=clean.service_level,  # type: ignore[arg-type]
            display_name=clean.display_name,
            region_codes=clean.region_codes,
            base_price=clean.base_price,  # type: ignore[arg-type]
            price_per_kg=clean.price_per_kg,
            max_weight_grams=clean.max_weight_grams,
            min_business_days=clean.min_business_days,
            max_business_days=clean.max_business_days,
            disabled=clean.disabled,
            update_time=self.clock.now(),
        )
        await self.rates.save(updated)
        return updated

    async def delete_rate(self, rate_id: str) -> None:
        rate = await self.get_rate(rate_id)
        if not await self.rates.delete(rate.id):
            raise errors.NotFound(f"shipping rate {rate_id!r} does not exist")

    async def seed_default_rates(self) -> int:
        """Writes the default rate table if the table is empty; returns how many rates."""
        if await self.rates.all():
            return 0
        now = self.clock.now()
        written = 0
        for key, carrier, level, name, regions, base, per_kg, max_g, low, high in DEFAULT_RATES:
            if carrier not in self.carriers:
                continue
            rate = Rate(
                id=domain.derived_id("seed-rate", key),
                carrier=carrier,
                service_level=level,
                display_name=name,
                region_codes=regions,
                base_price=Money(self.currency, base * NANOS // 100),
                price_per_kg=Money(self.currency, per_kg * NANOS // 100),
                max_weight_grams=max_g,
                min_business_days=low,
                max_business_days=high,
                disabled=False,
                create_time=now,
                update_time=now,
            )
            written += await self.rates.insert_if_absent(rate)
        if written:
            log.info("seeded the rate table with %d default rates", written)
        return written

    # --- shipments: reads -------------------------------------------------------------------

    async def _shipment(self, shipment_id: str) -> Shipment | None:
        shipment_id = shipment_id.strip()
        if not domain.is_uuid(shipment_id):
            return None
        return await self.shipments.get(shipment_id)

    async def get_shipment(self, caller: Principal, shipment_id: str) -> Shipment:
        shipment = await self._shipment(shipment_id)
        if shipment is None or not (caller.admin or shipment.user_id == caller.user_id):
            raise errors.NotFound(f"shipment {shipment_id!r} does not exist")
        return shipment

    async def list_shipments(
        self,
        caller: Principal,
        *,
        page_size: int = 0,
        page_token: str = "",
        order_id: str = "",
        state: ShipmentState | None = None,
        user_id: str = "",
    ) -> Page:
        size = paging.page_size(page_size, default=20, maximum=100)
        user_id = user_id.strip() or caller.user_id
        if user_id != caller.user_id and not caller.admin:
            raise errors.PermissionDenied("only admins list other users' shipments")
        order_id = order_id.strip()
        found = [
            s
            for s in await self.shipments.of_user(user_id)
            if (not order_id or s.order_id == order_id) and (state is None or s.state is state)
        ]
        scope = {"user": user_id, "order": order_id, "state": state.value if state else ""}
        return _page(found, size, page_token, scope)

    async def list_events(
        self, caller: Principal, shipment_id: str, *, page_size: int = 0, page_token: str = ""
    ) -> Page:
        shipment = await self.get_shipment(caller, shipment_id)
        size = paging.page_size(page_size, default=50, maximum=100)
        events = await self.shipments.events(shipment.id)
        return _page(events, size, page_token, {"shipment": shipment.id})

    async def watch(
        self, caller: Principal, shipment_id: str, *, poll_seconds: float = 1.0
    ) -> AsyncIterator[tuple[Shipment, TrackingEvent | None]]:
        """The shipment now, then (shipment, event) per new tracking event, until final."""
        shipment = await self.get_shipment(caller, shipment_id)
        seen = {e.id for e in await self.shipments.events(shipment.id)}
        yield shipment, None
        while not shipment.final or shipment.announced < shipment.version:
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), poll_seconds)
            fresh = [e for e in await self.shipments.events(shipment.id) if e.id not in seen]
            current = await self.shipments.get(shipment.id)
            if current is not None:
                shipment = current
            for event in fresh:
                seen.add(event.id)
                yield shipment, event
            if shipment.final and not fresh and shipment.announced >= shipment.version:
                return

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- shipments: changes -----------------------------------------------------------------

    def _event(self, message: Any, shipment: Shipment) -> Event:
        kind = message.DESCRIPTOR.name
        return Event.of(
            message,
            SOURCE,
            id=domain.derived_id("event", shipment.id, str(shipment.version), kind),
        )

    async def _caught_up(self, shipment: Shipment) -> Shipment:
        """The shipment with its last change announced (finishing a dead writer's work)."""
        if shipment.announced < shipment.version:
            await self.shipments.announce(shipment)
            current = await self.shipments.get(shipment.id)
            return current or shipment
        return shipment

    async def add_tracking_event(
        self,
        shipment_id: str,
        request_id: str,
        *,
        state: ShipmentState | None,
        event_time: datetime | None,
        description: str = "",
        location: str = "",
        estimate: Window | None = None,
    ) -> TrackingEvent:
        v = Violations()
        request_id = request_id.strip()
        if not request_id:
            v.add("request_id", "is required")
        elif len(request_id) > REQUEST_ID_MAX:
            v.add("request_id", f"must be at most {REQUEST_ID_MAX} characters")
        if state is None:
            v.add("tracking_event.state", "is required")
        now = self.clock.now()
        if event_time is None:
            v.add("tracking_event.event_time", "is required")
        elif event_time > now + FUTURE_SKEW:
            v.add("tracking_event.event_time", "must not be in the future")
        description = " ".join(description.split())
        location = " ".join(location.split())
        v.check(
            len(description) <= DESCRIPTION_MAX,
            "tracking_event.description",
            f"must be at most {DESCRIPTION_MAX} characters",
        )
        v.check(
            len(location) <= LOCATION_MAX,
            "tracking_event.location",
            f"must be at most {LOCATION_MAX} characters",
        )
        if estimate is not None and estimate.latest < estimate.earliest:
            v.add("estimated_delivery.latest_date", "must not be before earliest_date")
        v.raise_if_any()
        if await self._shipment(shipment_id) is None:
            raise errors.NotFound(f"shipment {shipment_id!r} does not exist")
        return await self._apply(
            shipment_id.strip(),
            request_id,
            state,  # type: ignore[arg-type]
            event_time,  # type: ignore[arg-type]
            description,
            location,
            estimate,
        )

    async def _apply(
        self,
        shipment_id: str,
        request_id: str,
        state: ShipmentState,
        event_time: datetime,
        description: str,
        location: str,
        estimate: Window | None,
    ) -> TrackingEvent:
        for attempt in range(self.cas_attempts):
            current = await self.shipments.get(shipment_id)
            if current is None:
                raise errors.NotFound(f"shipment {shipment_id!r} does not exist")
            current = await self._caught_up(current)
            if current.announced < current.version:
                # A newer change came meanwhile, not announced yet: its tracking event may be
                # this request's. Look again once it is.
                await retry.contention_pause(attempt)
                continue
            done = await self.shipments.event_by_request(shipment_id, request_id)
            if done is not None:
                return done
            now = self.clock.now()
            event = TrackingEvent(
                id=domain.derived_id("tracking", shipment_id, request_id),
                shipment_id=shipment_id,
                state=state,
                description=description,
                location=location,
                event_time=event_time,
                create_time=now,
                request_id=request_id,
            )
            if current.last_event_time is not None and event_time < current.last_event_time:
                # Carriers report out of order: history only.
                await self.shipments.add_event(event)
                await self._notify()
                return event
            why = domain.transition_error(current.state, state)
            if why is not None:
                raise errors.FailedPrecondition(why)
            new = replace(
                current,
                state=state,
                estimated=estimate or current.estimated,
                update_time=now,
                last_event_time=event_time,
                version=current.version + 1,
            )
            events: tuple[Event, ...] = ()
            if state is not current.state:
                events = (self._event(mapping.status_changed(current.state, new, event), new),)
            if await self.shipments.transition(new, current.version, Change(events, event)):
                await self._notify()
                return event
            await retry.contention_pause(attempt)
        raise errors.Aborted("the shipment changed concurrently too often; retry")

    # --- the saga ---------------------------------------------------------------------------

    async def order_confirmed(self, details: OrderDetails) -> Shipment | None:
        """OrderConfirmed: keep where the order goes; ship it if it is already paid."""
        await self.orders.confirmed(
            replace(details, items=domain.merged_items(list(details.items)))
        )
        return await self._ship_if_ready(details.order_id)

    async def payment_succeeded(
        self, order_id: str, user_id: str, payment_id: str
    ) -> Shipment | None:
        """PaymentSucceeded: ship the order, once, as soon as its details are known."""
        await self.orders.paid(order_id, user_id, payment_id)
        return await self._ship_if_ready(order_id)

    async def order_cancelled(self, order_id: str) -> Shipment | None:
        """OrderCancelled: no shipment for it, or its shipment cancelled if still ours."""
        await self.orders.cancelled(order_id)
        return await self._cancel(order_id)

    async def _cancel(self, order_id: str) -> Shipment | None:
        shipment = await self.shipments.get(domain.shipment_id_of(order_id))
        if shipment is None:
            return None
        if shipment.state in BEFORE_HANDOVER:
            try:
                await self._apply(
                    shipment.id,
                    "order-cancelled",
                    ShipmentState.CANCELLED,
                    self.clock.now(),
                    "Cancelled because the order was cancelled",
                    "",
                    None,
                )
            except errors.FailedPrecondition as why:
                log.warning("shipment %s of cancelled order %s: %s", shipment.id, order_id, why)
        elif shipment.state is not ShipmentState.CANCELLED:
            log.warning(
                "order %s was cancelled but its shipment %s is %s: not cancelled",
                order_id,
                shipment.id,
                shipment.state.value,
            )
        return await self.shipments.get(shipment.id)

    async def _ship_if_ready(self, order_id: str) -> Shipment | None:
        details = await self.orders.get(order_id)
        if details is None or not details.paid or not details.confirmed or details.cancelled:
            return None
        shipment_id = domain.shipment_id_of(order_id)
        existing = await self.shipments.get(shipment_id)
        if existing is not None:
            return await self._caught_up(existing)
        option_id = details.shipping_option_id.strip()
        rate = await self.rates.get(option_id) if domain.is_uuid(option_id) else None
        if rate is not None and rate.carrier in self.carriers:
            carrier_code, level = rate.carrier, rate.service_level
            days = (rate.min_business_days, rate.max_business_days)
        else:
            log.warning(
                "order %s: shipping option %s is gone; shipping with %s",
                order_id,
                details.shipping_option_id,
                self.default_carrier,
            )
            carrier_code, level, days = self.default_carrier, None, FALLBACK_DAYS
        now = self.clock.now()
        shipment = Shipment(
            id=shipment_id,
            order_id=order_id,
            user_id=details.user_id,
            shipping_option_id=details.shipping_option_id,
            carrier=carrier_code,
            service_level=level,
            tracking_number="",
            tracking_url="",
            destination=details.destination or Address(),
            items=details.items,
            state=ShipmentState.PENDING,
            estimated=domain.delivery_window(now.date(), *days),
            create_time=now,
            update_time=now,
            last_event_time=now,
            version=1,
            announced=0,
        )
        label = await self.carriers[carrier_code].create_label(shipment)
        shipment = replace(
            shipment,
            tracking_number=label.tracking_number,
            tracking_url=label.tracking_url,
            state=ShipmentState.LABEL_CREATED,
        )
        tracking = TrackingEvent(
            id=domain.derived_id("tracking", shipment.id, "label-created"),
            shipment_id=shipment.id,
            state=ShipmentState.LABEL_CREATED,
            description="Shipping label created",
            location="",
            event_time=now,
            create_time=now,
            request_id="label-created",
        )
        change = Change((self._event(mapping.shipment_created(shipment), shipment),), tracking)
        created = await self.shipments.create(shipment, change)
        if created:
            log.info("shipment %s created for order %s", shipment.id, order_id)
            await self._notify()
        # An OrderCancelled handled meanwhile saw no shipment: cancel it here.
        details = await self.orders.get(order_id)
        if details is not None and details.cancelled:
            return await self._cancel(order_id)
        if created:
            return replace(shipment, announced=shipment.version)
        current = await self.shipments.get(shipment_id)
        return await self._caught_up(current) if current else None

    # --- background work --------------------------------------------------------------------

    async def advance(self) -> int:
        """One pass of the carriers' progress reports; returns how many changes applied."""
        applied = 0
        now = self.clock.now()
        if not self.carriers:
            return 0
        # Shipments changed within the quietest carrier's quiet time have no news: not read.
        quiet = min(carrier.quiet for carrier in self.carriers.values())
        for shipment in await self.shipments.in_states(CARRIED, changed_by=now - quiet):
            carrier = self.carriers.get(shipment.carrier)
            if carrier is None:
                continue
            try:
                for update in await carrier.progress(shipment, now):
                    await self._apply(
                        shipment.id,
                        update.carrier_event_id,
                        update.state,
                        min(update.event_time, now),
                        update.description,
                        update.location,
                        None,
                    )
                    applied += 1
            except errors.DomainError as why:
                log.info("carrier update of %s skipped: %s", shipment.id, why)
            except Exception:
                log.exception("carrier update of %s failed", shipment.id)
        return applied

    async def sweep(self) -> int:
        """Announces changes whose writer died before it did; returns how many."""
        done = 0
        for shipment in await self.shipments.unannounced():
            try:
                await self.shipments.announce(shipment)
                done += 1
            except Exception:
                log.exception("announcing shipment %s failed", shipment.id)
        if done:
            await self._notify()
        return done

    async def run_every(self, seconds: float, work: Any, what: str) -> None:
        while True:
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s failed", what)
            await asyncio.sleep(seconds)
