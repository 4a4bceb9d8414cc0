"""The notification service's MongoDB repositories (kit.mongo; FerretDB v1 locally).

Only what MongoDB and FerretDB v1 both do (kit/mongo.py): one document per notification with
its outbox events inside it (one update changes both), a unique index on the dedupe key
(source event, user, channel) that makes a redelivered event insert nothing, claims of due
notifications by find_one_and_update on (state, scheduled_time), `$inc` counters. No
transactions, change streams, TTL indexes or $lookup.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from kit.events import Event
from kit.mongo import MongoDatabase
from kit.outbox import MongoOutbox
from services.notification.domain import (
    Channel,
    Notification,
    Platform,
    Preferences,
    PushDevice,
    QuietHours,
    Recipient,
    State,
    Subscription,
    Topic,
)
from services.notification.ports import Cursor
from services.notification.rendering import Template

INDEXES = {
    "notifications": [
        IndexModel([("dedupe_key", ASCENDING)], name="dedupe", unique=True),
        IndexModel([("user_id", ASCENDING), ("create_time", DESCENDING)], name="by_user"),
        IndexModel([("state", ASCENDING), ("scheduled_time", ASCENDING)], name="due"),
    ],
    "recipients": [],
    "preferences": [IndexModel([("new_products", ASCENDING)], name="new_products")],
    "templates": [
        IndexModel(
            [("event_type", ASCENDING), ("channel", ASCENDING), ("locale", ASCENDING)], name="key"
        ),
        IndexModel([("request_id", ASCENDING)], name="request", unique=True, sparse=True),
    ],
    "fanouts": [],
    "inboxes": [],
    "push_devices": [
        IndexModel([("endpoint", ASCENDING)], name="endpoint", unique=True),
        IndexModel([("user_id", ASCENDING), ("create_time", DESCENDING)], name="by_user"),
    ],
}


def _aware(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


# --- notifications ----------------------------------------------------------------------------

_TIMES = ("create_time", "read_time", "send_time", "deliver_time", "scheduled_time")


def notification_document(n: Notification) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": n.id,
        "user_id": n.user_id,
        "channel": int(n.channel),
        "topic": int(n.topic),
        "state": int(n.state),
        "dedupe_key": n.dedupe_key,
        "subject": n.subject,
        "body": n.body,
        "html_body": n.html_body,
        "recipient": n.recipient,
        "template_id": n.template_id,
        "template_version": n.template_version,
        "failure_reason": n.failure_reason,
        "attempt_count": n.attempt_count,
        "source_event_id": n.source_event_id,
        "source_event_type": n.source_event_type,
        "test": n.test,
        "list_unsubscribe": n.list_unsubscribe,
        **{t: getattr(n, t) for t in _TIMES},
    }
    if n.sealed:
        doc["sealed"] = n.sealed
    return doc


def notification_of(doc: dict[str, Any]) -> Notification:
    return Notification(
        id=doc["_id"],
        user_id=doc["user_id"],
        channel=Channel(doc["channel"]),
        topic=Topic(doc["topic"]),
        state=State(doc["state"]),
        dedupe_key=doc["dedupe_key"],
        subject=doc.get("subject", ""),
        body=doc.get("body", ""),
        html_body=doc.get("html_body", ""),
        recipient=doc.get("recipient", ""),
        template_id=doc.get("template_id", ""),
        template_version=doc.get("template_version", 0),
        failure_reason=doc.get("failure_reason", ""),
        attempt_count=doc.get("attempt_count", 0),
        source_event_id=doc.get("source_event_id", ""),
        source_event_type=doc.get("source_event_type", ""),
        test=doc.get("test", False),
        list_unsubscribe=doc.get("list_unsubscribe", ""),
        sealed=bytes(doc.get("sealed") or b""),
        **{t: _aware(doc.get(t)) for t in _TIMES},
    )


def _filter(user_id, channel, topic, state, unread_only) -> dict[str, Any]:
    query: dict[str, Any] = {"user_id": user_id}
    if channel is not None:
        query["channel"] = int(channel)
    if topic is not None:
        query["topic"] = int(topic)
    if state is not None:
        query["state"] = int(state)
    if unread_only:
        query["read_time"] = None
        if state is None:
            query["state"] = {"$in": [int(State.SENT), int(State.DELIVERED)]}
    return query


class MongoNotificationRepository:
    def __init__(self, db: MongoDatabase) -> None:
        self._c = db["notifications"]
        self._inboxes = db["inboxes"]
        self.outbox = MongoOutbox(db, ["notifications", "fanouts"])

    @classmethod
    async def open(cls, db: MongoDatabase) -> MongoNotificationRepository:
        await db.ensure_indexes(INDEXES)
        repo = cls(db)
        await repo.outbox.ensure_indexes()
        return repo

    async def add(self, notification: Notification, events: Sequence[Event] = ()) -> bool:
        try:
            await self._c.insert_one(
                MongoOutbox.document(notification_document(notification), events)
            )
        except DuplicateKeyError:
            return False
        if events:
            self.outbox.notify()
        return True

    async def get(self, notification_id: str) -> Notification | None:
        doc = await self._c.find_one({"_id": notification_id}, {"_outbox": 0})
        return notification_of(doc) if doc else None

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
        query = _filter(user_id, channel, topic, state, unread_only)
        if cursor:
            t = datetime.fromtimestamp(cursor["t"] / 1000, UTC)
            query["$or"] = [
                {"create_time": {"$lt": t}},
                {"create_time": t, "_id": {"$lt": cursor["id"]}},
            ]
        found = self._c.find(query, {"_outbox": 0}).sort(
            [("create_time", DESCENDING), ("_id", DESCENDING)]
        )
        docs = [d async for d in found.limit(limit + 1)]
        items = [notification_of(d) for d in docs[:limit]]
        more = len(docs) > limit
        last = items[-1] if items and more else None
        next_cursor = (
            {"t": int(last.create_time.timestamp() * 1000), "id": last.id} if last else None
        )
        return items, next_cursor

    async def mark_read(self, notification_id: str, when: datetime) -> Notification | None:
        await self._c.update_one(
            {"_id": notification_id, "read_time": None}, {"$set": {"read_time": when}}
        )
        return await self.get(notification_id)

    async def mark_all_read(self, user_id, channel, end_time, when) -> int:
        query = _filter(user_id, channel, None, None, True)
        query["create_time"] = {"$lte": end_time}
        result = await self._c.update_many(query, {"$set": {"read_time": when}})
        return result.modified_count

    async def count_unread(self, user_id, channel=None) -> int:
        return await self._c.count_documents(_filter(user_id, channel, None, None, True))

    async def claim_due(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[Notification]:
        # A batch in two filtered queries (the due ids; then a compare-and-set on all of them,
        # which marks the ones this claim won with its token) and a read of each by `_id`.
        # On FerretDB v1 a filter other than `{_id: ...}` scans the whole collection, so one
        # findAndModify per notification made sending a scan per message (200 fan-out
        # notices took 285 s); a batch of 50 now costs two scans.
        due = {"state": int(State.QUEUED), "scheduled_time": {"$lte": now}}
        found = self._c.find(due, {"_id": 1}).sort([("scheduled_time", ASCENDING)])
        ids = [doc["_id"] async for doc in found.limit(limit)]
        if not ids:
            return []
        token = uuid.uuid4().hex
        await self._c.update_many(
            {"_id": {"$in": ids}, **due},
            {"$set": {"scheduled_time": lease_until, "claim": token}},
        )
        claimed = []
        for notification_id in ids:
            doc = await self._c.find_one({"_id": notification_id})
            if doc is not None and doc.get("claim") == token:
                claimed.append(notification_of(doc))
        return claimed

    async def save(self, notification: Notification, events: Sequence[Event] = ()) -> None:
        doc = notification_document(notification)
        doc.pop("_id")
        doc.pop("sealed", None)
        update: dict[str, Any] = {"$set": doc}
        if not notification.sealed:
            update["$unset"] = {"sealed": ""}
        else:
            update["$set"]["sealed"] = notification.sealed
        if events:
            update = MongoOutbox.push(update, events)
        await self._c.update_one({"_id": notification.id}, update)
        if events:
            self.outbox.notify()

    async def in_app_since(self, user_id, after, limit=100):
        found = self._c.find(
            {"user_id": user_id, "channel": int(Channel.IN_APP), "create_time": {"$gte": after}},
            {"_outbox": 0},
        ).sort([("create_time", ASCENDING), ("_id", ASCENDING)])
        return [notification_of(d) async for d in found.limit(limit)]

    async def anonymise(self, user_id: str) -> int:
        result = await self._c.update_many(
            {"user_id": user_id},
            {
                "$set": {
                    "user_id": "",
                    "recipient": "",
                    "subject": "",
                    "body": "",
                    "html_body": "",
                    "list_unsubscribe": "",
                },
                "$unset": {"sealed": ""},
            },
        )
        await self._inboxes.delete_one({"_id": user_id})
        return result.modified_count

    async def bump_inbox(self, user_id: str) -> int:
        doc = await self._inboxes.find_one_and_update(
            {"_id": user_id},
            {"$inc": {"version": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return int(doc["version"])

    async def inbox_version(self, user_id: str) -> int:
        doc = await self._inboxes.find_one({"_id": user_id})
        return int(doc["version"]) if doc else 0

    async def mark_delivered(self, notification_ids: Sequence[str], when: datetime) -> int:
        if not notification_ids:
            return 0
        result = await self._c.update_many(
            {"_id": {"$in": list(notification_ids)}, "state": int(State.SENT)},
            {"$set": {"state": int(State.DELIVERED), "deliver_time": when}},
        )
        return result.modified_count


# --- push devices -----------------------------------------------------------------------------


def _device_of(doc: dict[str, Any]) -> PushDevice:
    return PushDevice(
        id=doc["_id"],
        user_id=doc["user_id"],
        platform=Platform(doc["platform"]),
        endpoint=doc["endpoint"],
        p256dh=doc.get("p256dh", ""),
        auth=doc.get("auth", ""),
        display_name=doc.get("display_name", ""),
        create_time=_aware(doc.get("create_time")),
        last_send_time=_aware(doc.get("last_send_time")),
    )


class MongoPushDeviceRepository:
    """One document per endpoint (unique index): registering a known endpoint updates it."""

    def __init__(self, db: MongoDatabase) -> None:
        self._c = db["push_devices"]

    async def register(self, device: PushDevice) -> PushDevice:
        fields = {
            "user_id": device.user_id,
            "platform": int(device.platform),
            "p256dh": device.p256dh,
            "auth": device.auth,
            "display_name": device.display_name,
            "create_time": device.create_time,
        }
        for _ in range(2):  # a concurrent first registration of the endpoint: update it then
            try:
                doc = await self._c.find_one_and_update(
                    {"endpoint": device.endpoint},
                    {"$set": fields, "$setOnInsert": {"_id": device.id}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
                return _device_of(doc)
            except DuplicateKeyError:
                continue
        raise RuntimeError(f"cannot register push endpoint {device.endpoint!r}")

    async def get(self, device_id: str) -> PushDevice | None:
        doc = await self._c.find_one({"_id": device_id})
        return _device_of(doc) if doc else None

    async def by_endpoint(self, endpoint: str) -> PushDevice | None:
        doc = await self._c.find_one({"endpoint": endpoint})
        return _device_of(doc) if doc else None

    async def list(self, user_id: str) -> list[PushDevice]:
        found = self._c.find({"user_id": user_id}).sort(
            [("create_time", DESCENDING), ("_id", DESCENDING)]
        )
        return [_device_of(d) async for d in found]

    async def delete(self, device_id: str) -> bool:
        result = await self._c.delete_one({"_id": device_id})
        return result.deleted_count > 0

    async def sent(self, device_id: str, when: datetime) -> None:
        await self._c.update_one({"_id": device_id}, {"$set": {"last_send_time": when}})


# --- recipients -------------------------------------------------------------------------------


def _recipient_field(name: str, value: Any) -> Any:
    if name == "channels":
        return sorted(int(c) for c in value)
    if name == "roles":
        return list(value)
    return value


class MongoRecipientRepository:
    def __init__(self, db: MongoDatabase) -> None:
        self._c = db["recipients"]

    async def upsert(self, user_id: str, fields: dict[str, Any]) -> None:
        values = {k: _recipient_field(k, v) for k, v in fields.items()}
        await self._c.update_one({"_id": user_id}, {"$set": values}, upsert=True)

    async def get(self, user_id: str) -> Recipient | None:
        doc = await self._c.find_one({"_id": user_id})
        if doc is None:
            return None
        fields = {k: v for k, v in doc.items() if k in Recipient.__dataclass_fields__}
        if "channels" in fields:
            fields["channels"] = frozenset(Channel(c) for c in fields["channels"])
        if "roles" in fields:
            fields["roles"] = tuple(fields["roles"])
        return Recipient(user_id=user_id, **{k: v for k, v in fields.items() if k != "user_id"})

    async def delete(self, user_id: str) -> None:
        await self._c.delete_one({"_id": user_id})


# --- preferences ------------------------------------------------------------------------------


def preferences_document(p: Preferences) -> dict[str, Any]:
    topics = {
        topic.name: {
            "subscribed": sub.subscribed,
            "channels": sorted(int(c) for c in sub.channels),
            "category_ids": list(sub.category_ids),
        }
        for topic, sub in p.topics.items()
    }
    return {
        "_id": p.user_id,
        "topics": topics,
        # Denormalised for the fan-out query (an index on a plain field).
        "new_products": p.subscription(Topic.NEW_PRODUCTS).subscribed,
        "quiet_hours": {
            "enabled": p.quiet_hours.enabled,
            "start_minute": p.quiet_hours.start_minute,
            "end_minute": p.quiet_hours.end_minute,
        },
        "update_time": p.update_time,
    }


def preferences_of(doc: dict[str, Any]) -> Preferences:
    topics = {
        Topic[name]: Subscription(
            subscribed=sub["subscribed"],
            channels=frozenset(Channel(c) for c in sub.get("channels", [])),
            category_ids=tuple(sub.get("category_ids", [])),
        )
        for name, sub in doc.get("topics", {}).items()
    }
    quiet = doc.get("quiet_hours") or {}
    return Preferences(
        user_id=doc["_id"],
        topics=topics,
        quiet_hours=QuietHours(**quiet) if quiet else QuietHours(),
        update_time=_aware(doc.get("update_time")),
    )


class MongoPreferencesRepository:
    def __init__(self, db: MongoDatabase) -> None:
        self._c = db["preferences"]

    async def get(self, user_id: str) -> Preferences | None:
        doc = await self._c.find_one({"_id": user_id})
        return preferences_of(doc) if doc else None

    async def save(self, preferences: Preferences) -> None:
        doc = preferences_document(preferences)
        await self._c.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def delete(self, user_id: str) -> None:
        await self._c.delete_one({"_id": user_id})

    async def new_product_subscribers(self, after: str, limit: int) -> list[str]:
        found = self._c.find({"new_products": True, "_id": {"$gt": after}}, {"_id": 1})
        return [d["_id"] async for d in found.sort("_id", ASCENDING).limit(limit)]


# --- templates --------------------------------------------------------------------------------


def template_document(t: Template) -> dict[str, Any]:
    return {
        "_id": t.id,
        "event_type": t.event_type,
        "channel": int(t.channel),
        "locale": t.locale,
        "subject_template": t.subject_template,
        "body_template": t.body_template,
        "html_body_template": t.html_body_template,
        "display_name": t.display_name,
        "active": t.active,
        "version": t.version,
        "create_time": t.create_time,
        "update_time": t.update_time,
        "default": t.default,
    }


def template_of(doc: dict[str, Any]) -> Template:
    return Template(
        id=doc["_id"],
        event_type=doc["event_type"],
        channel=Channel(doc["channel"]),
        locale=doc["locale"],
        subject_template=doc.get("subject_template", ""),
        body_template=doc["body_template"],
        html_body_template=doc.get("html_body_template", ""),
        display_name=doc.get("display_name", ""),
        active=doc.get("active", False),
        version=doc.get("version", 1),
        create_time=_aware(doc.get("create_time")),
        update_time=_aware(doc.get("update_time")),
        default=doc.get("default", False),
    )


class MongoTemplateRepository:
    def __init__(self, db: MongoDatabase) -> None:
        self._c = db["templates"]

    async def _deactivate_others(self, t: Template) -> None:
        if t.active:
            await self._c.update_many(
                {
                    "event_type": t.event_type,
                    "channel": int(t.channel),
                    "locale": t.locale,
                    "_id": {"$ne": t.id},
                    "active": True,
                },
                {"$set": {"active": False}, "$inc": {"version": 1}},
            )

    async def add(self, template: Template, request_id: str = "") -> Template:
        doc = template_document(template)
        if request_id:
            doc["request_id"] = request_id
        try:
            await self._c.insert_one(doc)
        except DuplicateKeyError:
            key = {"request_id": request_id} if request_id else {"_id": template.id}
            existing = await self._c.find_one(key)
            return template_of(existing) if existing else template
        await self._deactivate_others(template)
        return template

    async def get(self, template_id: str) -> Template | None:
        doc = await self._c.find_one({"_id": template_id})
        return template_of(doc) if doc else None

    async def active(self, event_type: str, channel: Channel, locale: str) -> Template | None:
        doc = await self._c.find_one(
            {"event_type": event_type, "channel": int(channel), "locale": locale, "active": True}
        )
        return template_of(doc) if doc else None

    async def list(self) -> list[Template]:
        found = self._c.find({}).sort(
            [
                ("event_type", ASCENDING),
                ("channel", ASCENDING),
                ("locale", ASCENDING),
                ("_id", ASCENDING),
            ]
        )
        return [template_of(d) async for d in found]

    async def replace(self, template: Template, expected_version: int) -> bool:
        doc = template_document(template)
        result = await self._c.update_one(
            {"_id": template.id, "version": expected_version},
            {"$set": {k: v for k, v in doc.items() if k != "_id"}},
        )
        if result.matched_count:
            await self._deactivate_others(template)
        return bool(result.matched_count)

    async def delete(self, template_id: str) -> None:
        await self._c.delete_one({"_id": template_id})


class MongoFanOutRepository:
    def __init__(self, db: MongoDatabase, outbox: MongoOutbox) -> None:
        self._c = db["fanouts"]
        self._outbox = outbox

    async def record(self, source_event_id: str, events: Sequence[Event]) -> bool:
        doc = {"_id": source_event_id, "create_time": datetime.now(UTC)}
        try:
            await self._c.insert_one(MongoOutbox.document(doc, events))
        except DuplicateKeyError:
            return False
        self._outbox.notify()
        return True
