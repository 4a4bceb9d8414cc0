"""The NotificationService servicer: decodes requests, calls a handler, encodes the answer.

The caller comes from the verified access token (`auth.caller()`); admin-only RPCs are refused
for others by kit's auth interceptor, from the contract's access option.
"""

from __future__ import annotations

from datetime import UTC

from emporium.notification.v1 import notification_service_pb2 as pb
from emporium.notification.v1 import notification_service_pb2_grpc
from google.protobuf import empty_pb2

from kit import auth, errors, paging
from services.notification import mapping
from services.notification.handlers import (
    NotificationHandlers,
    PreferenceHandlers,
    PushDeviceHandlers,
    TemplateHandlers,
)

LIST_DEFAULT, LIST_MAX = 20, 100


def _page_size(requested: int) -> int:
    if requested < 0 or requested > LIST_MAX:
        raise errors.InvalidArgument("page_size", f"must be between 0 and {LIST_MAX}")
    return requested or LIST_DEFAULT


def _required_id(value: str, field: str = "id") -> str:
    if not value.strip():
        raise errors.InvalidArgument(field, "is required")
    return value


class NotificationService(notification_service_pb2_grpc.NotificationServiceServicer):
    def __init__(
        self,
        notifications: NotificationHandlers,
        preferences: PreferenceHandlers,
        templates: TemplateHandlers,
        push_devices: PushDeviceHandlers,
    ) -> None:
        self.notifications = notifications
        self.preferences = preferences
        self.templates = templates
        self.push_devices = push_devices

    # --- history ------------------------------------------------------------------------------

    async def ListNotifications(self, request, context):
        size = _page_size(request.page_size)
        filters = {
            "channel": mapping.channel_of(request.channel, "channel"),
            "topic": mapping.topic_of(request.topic, "topic"),
            "state": mapping.state_of(request.state, "state"),
            "unread_only": request.unread_only,
        }
        scope = {
            "user_id": request.user_id,
            "channel": int(request.channel),
            "topic": int(request.topic),
            "state": int(request.state),
            "unread": request.unread_only,
        }
        cursor = paging.decode_page_token(request.page_token, scope)
        items, next_cursor = await self.notifications.list(
            auth.caller(),
            user_id=request.user_id,
            cursor=cursor if isinstance(cursor, dict) else None,
            limit=size,
            **filters,
        )
        return pb.ListNotificationsResponse(
            notifications=[mapping.notification_to_proto(n) for n in items],
            next_page_token=paging.encode_page_token(next_cursor, scope) if next_cursor else "",
        )

    async def GetNotification(self, request, context):
        n = await self.notifications.get(auth.caller(), _required_id(request.id))
        return mapping.notification_to_proto(n)

    async def MarkNotificationRead(self, request, context):
        n = await self.notifications.mark_read(auth.caller(), _required_id(request.id))
        return mapping.notification_to_proto(n)

    async def MarkAllNotificationsRead(self, request, context):
        end = (
            request.end_time.ToDatetime().replace(tzinfo=UTC)
            if request.HasField("end_time")
            else None
        )
        count = await self.notifications.mark_all_read(
            auth.caller(), mapping.channel_of(request.channel, "channel"), end
        )
        return pb.MarkAllNotificationsReadResponse(marked_count=count)

    async def CountUnreadNotifications(self, request, context):
        count = await self.notifications.count_unread(
            auth.caller(), mapping.channel_of(request.channel, "channel")
        )
        return pb.CountUnreadNotificationsResponse(unread_count=count)

    async def WatchNotifications(self, request, context):
        start = (
            request.start_time.ToDatetime().replace(tzinfo=UTC)
            if request.HasField("start_time")
            else None
        )
        async for n, count, version in self.notifications.watch(auth.caller(), start):
            yield pb.WatchNotificationsResponse(
                notification=mapping.notification_to_proto(n) if n else None,
                unread_count=count,
                unread_version=version,
            )

    # --- admin --------------------------------------------------------------------------------

    async def RetryNotification(self, request, context):
        n = await self.notifications.retry(auth.caller(), _required_id(request.id))
        return mapping.notification_to_proto(n)

    async def SendTestNotification(self, request, context):
        n = await self.notifications.send_test(
            request_id=request.request_id,
            channel=mapping.channel_of(request.channel, "channel") or _missing("channel"),
            user_id=request.user_id,
            address=request.address,
            template_id=request.template_id,
            variables=mapping.struct_to_dict(
                request.variables if request.HasField("variables") else None
            ),
            subject=request.subject,
            body=request.body,
        )
        return mapping.notification_to_proto(n)

    # --- preferences --------------------------------------------------------------------------

    async def GetNotificationPreferences(self, request, context):
        return mapping.preferences_to_proto(await self.preferences.get(auth.caller()))

    async def UpdateNotificationPreferences(self, request, context):
        if not request.HasField("notification_preferences"):
            raise errors.InvalidArgument("notification_preferences", "is required")
        updated = await self.preferences.update(
            auth.caller(),
            lambda current: mapping.apply_preferences_mask(
                current, request.notification_preferences, request.update_mask
            ),
        )
        return mapping.preferences_to_proto(updated)

    async def UnsubscribeNotificationTopic(self, request, context):
        topic = await self.preferences.unsubscribe(request.token)
        return pb.UnsubscribeNotificationTopicResponse(topic=int(topic))

    # --- templates ----------------------------------------------------------------------------

    async def CreateNotificationTemplate(self, request, context):
        if not request.HasField("notification_template"):
            raise errors.InvalidArgument("notification_template", "is required")
        template = mapping.template_from_proto(request.notification_template)
        created = await self.templates.create(template, request.request_id)
        return mapping.template_to_proto(created)

    async def GetNotificationTemplate(self, request, context):
        return mapping.template_to_proto(await self.templates.get(_required_id(request.id)))

    async def ListNotificationTemplates(self, request, context):
        size = _page_size(request.page_size)
        scope = {
            "event_type": request.event_type,
            "channel": int(request.channel),
            "locale": request.locale,
            "active": request.active_only,
        }
        cursor = paging.decode_page_token(request.page_token, scope)
        start = int(cursor.get("i", 0)) if isinstance(cursor, dict) else 0
        found = await self.templates.list(
            event_type=request.event_type,
            channel=mapping.channel_of(request.channel, "channel"),
            locale=request.locale,
            active_only=request.active_only,
        )
        page = found[start : start + size]
        more = start + size < len(found)
        return pb.ListNotificationTemplatesResponse(
            notification_templates=[mapping.template_to_proto(t) for t in page],
            next_page_token=paging.encode_page_token({"i": start + size}, scope) if more else "",
        )

    async def UpdateNotificationTemplate(self, request, context):
        if not request.HasField("notification_template"):
            raise errors.InvalidArgument("notification_template", "is required")
        updated = await self.templates.update(
            _required_id(request.id),
            lambda current: mapping.apply_template_mask(
                current, request.notification_template, request.update_mask
            ),
        )
        return mapping.template_to_proto(updated)

    async def DeleteNotificationTemplate(self, request, context):
        await self.templates.delete(_required_id(request.id))
        return empty_pb2.Empty()

    async def RenderNotificationTemplate(self, request, context):
        rendered = await self.templates.render(
            _required_id(request.id),
            mapping.struct_to_dict(request.variables if request.HasField("variables") else None),
        )
        return pb.RenderNotificationTemplateResponse(
            subject=rendered.subject, body=rendered.body, html_body=rendered.html_body
        )

    # --- push devices -------------------------------------------------------------------------

    async def CreatePushDevice(self, request, context):
        caller = auth.caller()
        if not request.HasField("push_device"):
            raise errors.InvalidArgument("push_device", "is required")
        d = request.push_device
        device = await self.push_devices.create(
            caller,
            platform=mapping.platform_of(d.platform),
            endpoint=d.token,
            p256dh=d.web_push_keys.p256dh,
            auth=d.web_push_keys.auth,
            display_name=d.display_name,
        )
        return mapping.push_device_to_proto(device)

    async def ListPushDevices(self, request, context):
        caller = auth.caller()
        size = _page_size(request.page_size)
        scope = {"user_id": caller.user_id}
        cursor = paging.decode_page_token(request.page_token, scope)
        start = int(cursor.get("i", 0)) if isinstance(cursor, dict) else 0
        found = await self.push_devices.list(caller)
        page = found[start : start + size]
        more = start + size < len(found)
        return pb.ListPushDevicesResponse(
            push_devices=[mapping.push_device_to_proto(d) for d in page],
            next_page_token=paging.encode_page_token({"i": start + size}, scope) if more else "",
        )

    async def DeletePushDevice(self, request, context):
        await self.push_devices.delete(auth.caller(), _required_id(request.id))
        return empty_pb2.Empty()

    async def GetWebPushConfig(self, request, context):
        return pb.WebPushConfig(vapid_public_key=self.push_devices.web_push_config())


def _missing(field: str):
    raise errors.InvalidArgument(field, "is required")
