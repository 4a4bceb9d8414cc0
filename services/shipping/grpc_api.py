"""The ShippingService servicer: decodes requests, calls a handler, encodes the answer."""

from __future__ import annotations

from emporium.shipping.v1 import shipping_service_pb2 as S
from emporium.shipping.v1 import shipping_service_pb2_grpc
from google.protobuf import empty_pb2

from kit import auth
from kit.errors import InvalidArgument, Violations
from services.shipping import domain, mapping
from services.shipping.handlers import RateInput, ShippingHandlers

NANOS_MAX = 999_999_999


def _money(violations: Violations, field: str, money) -> domain.Money:
    """A google.type.Money checked as the type's comment asks (nanos range and sign)."""
    if not -NANOS_MAX <= money.nanos <= NANOS_MAX:
        violations.add(f"{field}.nanos", "must be from -999,999,999 to +999,999,999")
    elif (money.units > 0 and money.nanos < 0) or (money.units < 0 and money.nanos > 0):
        violations.add(f"{field}.nanos", "must have the sign of units")
    return mapping.money_from_proto(money)


def _rate_input(rate) -> RateInput:
    violations = Violations()
    base = (
        _money(violations, "shipping_rate.base_price", rate.base_price)
        if rate.HasField("base_price")
        else None
    )
    per_kg = (
        _money(violations, "shipping_rate.price_per_kg", rate.price_per_kg)
        if rate.HasField("price_per_kg")
        else None
    )
    level = mapping.level_from_proto(rate.service_level)
    violations.raise_if_any()
    return RateInput(
        carrier=rate.carrier,
        service_level=level,
        display_name=rate.display_name,
        region_codes=tuple(rate.region_codes),
        base_price=base,
        price_per_kg=per_kg,
        max_weight_grams=rate.max_weight_grams,
        min_business_days=rate.min_business_days,
        max_business_days=rate.max_business_days,
        disabled=rate.disabled,
    )


def _set_fields(rate) -> list[str]:
    """The fields of a ShippingRate that are set, as an update without a mask changes them."""
    return [f.name for f, _ in rate.ListFields() if f.name in domain.UPDATABLE_RATE_FIELDS]


class ShippingService(shipping_service_pb2_grpc.ShippingServiceServicer):
    def __init__(self, handlers: ShippingHandlers, *, watch_poll_seconds: float = 1.0) -> None:
        self.handlers = handlers
        self.watch_poll_seconds = watch_poll_seconds

    async def ListShippingOptions(self, request, context):
        page = await self.handlers.list_options(
            mapping.address_from_proto(request.destination),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return S.ListShippingOptionsResponse(
            shipping_options=[mapping.option_to_proto(q) for q in page.items],
            next_page_token=page.next_page_token,
        )

    async def QuoteShippingOptions(self, request, context):
        quotes = await self.handlers.quote(
            mapping.address_from_proto(request.destination),
            [(item.quantity, item.weight_grams) for item in request.items],
        )
        return S.QuoteShippingOptionsResponse(
            shipping_options=[mapping.option_to_proto(q) for q in quotes]
        )

    async def CreateShippingRate(self, request, context):
        auth.require_admin()
        rate = await self.handlers.create_rate(
            _rate_input(request.shipping_rate), request.request_id
        )
        return mapping.rate_to_proto(rate)

    async def GetShippingRate(self, request, context):
        auth.require_admin()
        return mapping.rate_to_proto(await self.handlers.get_rate(request.id))

    async def ListShippingRates(self, request, context):
        auth.require_admin()
        page = await self.handlers.list_rates(
            page_size=request.page_size, page_token=request.page_token
        )
        return S.ListShippingRatesResponse(
            shipping_rates=[mapping.rate_to_proto(r) for r in page.items],
            next_page_token=page.next_page_token,
        )

    async def UpdateShippingRate(self, request, context):
        auth.require_admin()
        paths = list(request.update_mask.paths) or _set_fields(request.shipping_rate)
        rate = await self.handlers.update_rate(
            request.id, _rate_input(request.shipping_rate), paths
        )
        return mapping.rate_to_proto(rate)

    async def DeleteShippingRate(self, request, context):
        auth.require_admin()
        await self.handlers.delete_rate(request.id)
        return empty_pb2.Empty()

    async def GetShipment(self, request, context):
        shipment = await self.handlers.get_shipment(auth.caller(), request.id)
        return mapping.shipment_to_proto(shipment)

    async def ListShipments(self, request, context):
        state = mapping.state_from_proto(request.state) if request.state else None
        page = await self.handlers.list_shipments(
            auth.caller(),
            page_size=request.page_size,
            page_token=request.page_token,
            order_id=request.order_id,
            state=state,
            user_id=request.user_id,
        )
        return S.ListShipmentsResponse(
            shipments=[mapping.shipment_to_proto(s) for s in page.items],
            next_page_token=page.next_page_token,
        )

    async def WatchShipment(self, request, context):
        async for shipment, event in self.handlers.watch(
            auth.caller(), request.id, poll_seconds=self.watch_poll_seconds
        ):
            yield S.WatchShipmentResponse(
                shipment=mapping.shipment_to_proto(shipment),
                tracking_event=mapping.tracking_to_proto(event) if event else None,
            )

    async def AddTrackingEvent(self, request, context):
        auth.require_admin()
        wanted = request.tracking_event
        estimate = None
        if request.HasField("estimated_delivery"):
            try:
                estimate = mapping.window_from_proto(request.estimated_delivery)
            except ValueError:
                raise InvalidArgument("estimated_delivery", "must hold two valid dates") from None
        event = await self.handlers.add_tracking_event(
            request.shipment_id,
            request.request_id,
            state=mapping.state_from_proto(wanted.state),
            event_time=(
                mapping.from_timestamp(wanted.event_time) if wanted.HasField("event_time") else None
            ),
            description=wanted.description,
            location=wanted.location,
            estimate=estimate,
        )
        return mapping.tracking_to_proto(event)

    async def ListTrackingEvents(self, request, context):
        page = await self.handlers.list_events(
            auth.caller(),
            request.shipment_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return S.ListTrackingEventsResponse(
            tracking_events=[mapping.tracking_to_proto(e) for e in page.items],
            next_page_token=page.next_page_token,
        )
