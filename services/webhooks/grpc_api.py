"""The WebhooksService servicer: decodes requests, calls a handler, encodes the answer.

Every RPC is admin-only (the contract's ACCESS_ADMIN, checked by kit's auth interceptor and
again by each handler).
"""

from __future__ import annotations

from datetime import UTC, datetime

from emporium.webhooks.v1 import webhooks_service_pb2, webhooks_service_pb2_grpc
from google.protobuf import empty_pb2

from kit import auth, errors, paging
from services.webhooks import event_types, mapping
from services.webhooks.handlers import DeliveryHandlers, EndpointHandlers
from services.webhooks.ports import Cursor

LIST_DEFAULT, LIST_MAX = 20, 100


def _page_size(requested: int) -> int:
    if requested < 0 or requested > LIST_MAX:
        raise errors.InvalidArgument("page_size", f"must be between 0 and {LIST_MAX}")
    return requested or LIST_DEFAULT


def _cursor(token: str, scope: dict) -> Cursor | None:
    state = paging.decode_page_token(token, scope)
    if not state:
        return None
    if not isinstance(state, dict):
        raise errors.InvalidArgument("page_token", "is not a token of this list")
    try:
        return datetime.fromisoformat(state["t"]), str(state["id"])
    except (KeyError, TypeError, ValueError):
        raise errors.InvalidArgument("page_token", "is not a token of this list") from None


def _token(cursor: Cursor | None, scope: dict) -> str:
    if cursor is None:
        return ""
    return paging.encode_page_token({"t": cursor[0].isoformat(), "id": cursor[1]}, scope)


class WebhooksService(webhooks_service_pb2_grpc.WebhooksServiceServicer):
    def __init__(self, endpoints: EndpointHandlers, deliveries: DeliveryHandlers) -> None:
        self.endpoints = endpoints
        self.deliveries = deliveries

    async def CreateWebhookEndpoint(self, request, context):
        e = request.webhook_endpoint
        created = await self.endpoints.create(
            request.request_id,
            e.url,
            e.description,
            list(e.event_types),
            mapping.endpoint_state(e.state, "webhook_endpoint.state"),
        )
        return mapping.endpoint_to_proto(created, with_secret=True)

    async def ListWebhookEndpoints(self, request, context):
        size = _page_size(request.page_size)
        state = mapping.endpoint_state(request.state)
        scope = {"state": int(request.state), "event_type": request.event_type}
        rows, cursor = await self.endpoints.list(
            state, request.event_type, _cursor(request.page_token, scope), size
        )
        return webhooks_service_pb2.ListWebhookEndpointsResponse(
            webhook_endpoints=[mapping.endpoint_to_proto(e) for e in rows],
            next_page_token=_token(cursor, scope),
        )

    async def GetWebhookEndpoint(self, request, context):
        return mapping.endpoint_to_proto(await self.endpoints.get(request.id))

    async def UpdateWebhookEndpoint(self, request, context):
        e = request.webhook_endpoint
        updated = await self.endpoints.update(
            request.id,
            list(request.update_mask.paths),
            e.url,
            e.description,
            list(e.event_types),
            mapping.endpoint_state(e.state, "webhook_endpoint.state"),
        )
        return mapping.endpoint_to_proto(updated)

    async def DeleteWebhookEndpoint(self, request, context):
        await self.endpoints.delete(request.id)
        return empty_pb2.Empty()

    async def RotateWebhookSecret(self, request, context):
        overlap = (
            request.previous_secret_ttl.ToTimedelta()
            if request.HasField("previous_secret_ttl")
            else None
        )
        rotated = await self.endpoints.rotate(request.id, overlap)
        return mapping.endpoint_to_proto(rotated, with_secret=True)

    async def SendTestWebhook(self, request, context):
        delivery = await self.endpoints.send_test(request.id, request.event_type)
        return mapping.delivery_to_proto(delivery)

    async def RedeliverFailedWebhookDeliveries(self, request, context):
        start = (
            request.start_time.ToDatetime(tzinfo=UTC) if request.HasField("start_time") else None
        )
        end = request.end_time.ToDatetime(tzinfo=UTC) if request.HasField("end_time") else None
        count = await self.deliveries.redeliver_failed(request.id, start, end)
        return webhooks_service_pb2.RedeliverFailedWebhookDeliveriesResponse(
            redelivered_count=count
        )

    async def ListWebhookEventTypes(self, request, context):
        auth.require_admin()
        size = _page_size(request.page_size)
        scope = {"domain": request.domain}
        state = paging.decode_page_token(request.page_token, scope)
        after = state.get("name", "") if isinstance(state, dict) else ""
        rows = [
            t
            for t in event_types.catalog()
            if (not request.domain or t.domain == request.domain) and t.name > after
        ]
        page, more = rows[:size], len(rows) > size
        token = paging.encode_page_token({"name": page[-1].name}, scope) if more else ""
        return webhooks_service_pb2.ListWebhookEventTypesResponse(
            webhook_event_types=[mapping.event_type_to_proto(t) for t in page],
            next_page_token=token,
        )

    async def ListWebhookDeliveries(self, request, context):
        size = _page_size(request.page_size)
        state = mapping.delivery_state(request.state)
        scope = {
            "endpoint_id": request.endpoint_id,
            "state": int(request.state),
            "event_type": request.event_type,
            "event_id": request.event_id,
        }
        rows, cursor = await self.deliveries.list(
            request.endpoint_id,
            state,
            request.event_type,
            request.event_id,
            _cursor(request.page_token, scope),
            size,
        )
        return webhooks_service_pb2.ListWebhookDeliveriesResponse(
            webhook_deliveries=[mapping.delivery_to_proto(d) for d in rows],
            next_page_token=_token(cursor, scope),
        )

    async def GetWebhookDelivery(self, request, context):
        return mapping.delivery_to_proto(await self.deliveries.get(request.id))

    async def RedeliverWebhookEvent(self, request, context):
        return mapping.delivery_to_proto(await self.deliveries.redeliver(request.id))
